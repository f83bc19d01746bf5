//! The reading side of the log: subscriptions that resume after a known
//! `seq`, views of the projection, and replay of retained events.
//!
//! Each of these reads under the log's one lock, which is what guarantees a
//! backlog and its live stream meet with no gap and no duplicate.

use std::sync::Arc;

use tokio::sync::broadcast;

use super::{EventLog, Projection, Published};
use crate::protocol::Envelope;

/// A live subscription that starts after a known `seq`.
pub struct Subscription {
    /// Retained events after the requested `seq`, oldest first.
    pub backlog: Vec<Arc<Published>>,
    /// False when events after the requested `seq` were no longer retained,
    /// so the backlog starts later than asked.
    pub complete: bool,
    /// Every event appended after the backlog.
    pub live: broadcast::Receiver<Arc<Published>>,
}

impl EventLog {
    /// Subscribes to every event after `since`.
    pub fn subscribe_since(&self, since: u64) -> Subscription {
        let state = self.lock();
        // Subscribing under the lock means no publish can fall between the
        // backlog and the live stream.
        let live = self.inner.sender.subscribe();
        let oldest = state.retained.front().map_or(state.last_seq + 1, |e| e.seq);
        let backlog: Vec<_> = state.retained.iter().filter(|e| e.seq > since).cloned().collect();
        Subscription {
            // A `since` beyond the newest event comes from another run of
            // the log: the client's view cannot be patched, only replaced.
            complete: since + 1 >= oldest && since <= state.last_seq,
            backlog,
            live,
        }
    }

    /// A view of the projection, without subscribing.
    pub fn project<R>(&self, view: impl FnOnce(&Projection) -> R) -> R {
        view(&self.lock().projection)
    }

    /// The projection and its `seq`, and a receiver for every event after
    /// it, all at one instant.
    pub fn project_and_subscribe<R>(
        &self,
        view: impl FnOnce(u64, &Projection) -> R,
    ) -> (R, broadcast::Receiver<Arc<Published>>) {
        let state = self.lock();
        let live = self.inner.sender.subscribe();
        (view(state.last_seq, &state.projection), live)
    }

    /// Retained events after `since`, oldest first, at most `limit`; `None`
    /// when some of them are no longer retained.
    pub fn since(&self, since: u64, limit: usize) -> Option<Vec<Envelope>> {
        let state = self.lock();
        let oldest = state.retained.front().map_or(state.last_seq + 1, |e| e.seq);
        (since + 1 >= oldest).then(|| {
            state
                .retained
                .iter()
                .filter(|e| e.seq > since)
                .take(limit)
                .map(|e| e.envelope.clone())
                .collect()
        })
    }

    /// Every retained event, oldest first.
    pub fn retained(&self) -> Vec<Envelope> {
        self.lock().retained.iter().map(|e| e.envelope.clone()).collect()
    }
}
