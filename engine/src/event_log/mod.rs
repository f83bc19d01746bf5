//! The event log: every message a dashboard receives is appended here first,
//! given the next sequence number, then fanned out to live subscribers.
//!
//! Two modes, one contract:
//! - in memory (tests, evaluation, benchmarks): `append` stamps and
//!   publishes at once;
//! - durable (the server): `append` queues the message, and a writer task
//!   hands batches to a [`Journal`], which stores them and assigns their
//!   `seq`; only then are they published. A crash can lose a message that
//!   was never shown to anyone, never one that was.
//!
//! - shared (several instances on one PostgreSQL): the writer stores as in
//!   durable mode but publishes nothing; a tailer reads the shared log after
//!   its cursor (woken by the store's notifications, by the writer, and by a
//!   short tick) and publishes what every instance wrote, its own included,
//!   so every instance's dashboards see one order (`shared.rs`).
//!
//! Either way:
//! - `seq` grows by exactly one per event, with no gaps;
//! - subscribers see events in `seq` order;
//! - [`EventLog::subscribe_since`] returns a backlog and a live receiver
//!   that meet with no gap and no duplicate;
//! - the [`Projection`] (what a snapshot shows) is updated under the same
//!   lock as the fan-out, so a snapshot reflects exactly the events up to
//!   its `last_seq`, never one later.
//!
//! [`Journal`]: crate::journal::Journal

mod projection;
mod shared;
mod subscription;
mod writer;

#[cfg(test)]
mod tests;

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
};

use chrono::Utc;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::{
    journal::Unsequenced,
    protocol::{Envelope, ServerMessage},
};
pub use projection::{Projection, is_feed_event};
pub use shared::Tailing;
pub use subscription::Subscription;
pub use writer::StoreRefusal;
use writer::Writer;

/// An event as the log fans it out: the envelope, and its JSON, encoded
/// once and shared by every connection that sends it (a thousand dashboards
/// must not mean a thousand encodings). Derefs to the [`Envelope`].
#[derive(Debug)]
pub struct Published {
    envelope: Envelope,
    json: std::sync::OnceLock<Arc<str>>,
}

impl Published {
    fn new(envelope: Envelope) -> Self {
        Self {
            envelope,
            json: std::sync::OnceLock::new(),
        }
    }

    /// The envelope as JSON text, encoded on first use.
    pub fn json(&self) -> Arc<str> {
        self.json
            .get_or_init(|| {
                serde_json::to_string(&self.envelope)
                    .expect("protocol types always serialize")
                    .into()
            })
            .clone()
    }
}

impl std::ops::Deref for Published {
    type Target = Envelope;

    fn deref(&self) -> &Envelope {
        &self.envelope
    }
}

/// Everything behind the log's one lock.
struct LogState {
    /// The newest `seq` published; 0 when the log is empty.
    last_seq: u64,
    /// The newest published events, oldest first.
    retained: VecDeque<Arc<Published>>,
    /// What a snapshot shows, as of `last_seq`.
    projection: Projection,
    /// Durable mode: messages waiting for the writer, oldest first, with
    /// when each was appended (for the append-to-broadcast latency).
    pending: Vec<(Unsequenced, tokio::time::Instant)>,
    /// Messages ever appended, published or not.
    appended: u64,
    /// Shared mode: batches this instance stored that the tail has not
    /// passed yet, oldest first, as (last `seq` stored, when each message
    /// was appended), so a flush waits until its events come back through
    /// the tail, and the append-to-broadcast delay is measured.
    stored: VecDeque<(u64, Vec<tokio::time::Instant>)>,
}

struct Inner {
    /// Sequence counter, retained events and projection, under one lock so
    /// that the order of `seq` is the order of fan-out.
    state: Mutex<LogState>,
    /// How many events to keep for replay.
    retain: usize,
    /// Fan-out to live subscribers.
    sender: broadcast::Sender<Arc<Published>>,
    /// Identifies this log, so clients of another log resync.
    epoch: Uuid,
    /// Set in durable mode.
    writer: Option<Writer>,
    /// Set in shared mode: how the tail is followed.
    shared: Option<shared::Shared>,
}

/// Where a log starts: empty, or where a store left off.
#[derive(Debug, Clone, Default)]
pub struct LogStart {
    /// The log's identity.
    pub epoch: Uuid,
    /// The newest stored `seq`.
    pub last_seq: u64,
    /// The newest stored events, oldest first.
    pub tail: Vec<Envelope>,
    /// The snapshot's state as of `last_seq`.
    pub projection: Projection,
}

/// Appends, retains and fans out events. A cheap-to-clone handle.
#[derive(Clone)]
pub struct EventLog {
    inner: Arc<Inner>,
}

impl EventLog {
    /// An in-memory log: `retain` events are kept for replay; a live
    /// subscriber may fall up to `fanout_capacity` events behind before it
    /// is told it lagged.
    pub fn new(retain: usize, fanout_capacity: usize) -> Self {
        Self::build(
            retain,
            fanout_capacity,
            LogStart {
                epoch: Uuid::new_v4(),
                projection: Projection::new(crate::SNAPSHOT_INCIDENTS, crate::SNAPSHOT_EVENTS),
                ..LogStart::default()
            },
            None,
            None,
        )
    }

    fn build(
        retain: usize,
        fanout_capacity: usize,
        start: LogStart,
        writer: Option<Writer>,
        shared: Option<shared::Shared>,
    ) -> Self {
        let (sender, _) = broadcast::channel(fanout_capacity.max(1));
        let retain = retain.max(1);
        let skip = start.tail.len().saturating_sub(retain);
        let retained: VecDeque<Arc<Published>> = start
            .tail
            .into_iter()
            .skip(skip)
            .map(|e| Arc::new(Published::new(e)))
            .collect();
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(LogState {
                    last_seq: start.last_seq,
                    retained,
                    projection: start.projection,
                    pending: Vec::new(),
                    appended: 0,
                    stored: VecDeque::new(),
                }),
                retain,
                sender,
                epoch: start.epoch,
                writer,
                shared,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LogState> {
        self.inner.state.lock().expect("event log lock poisoned")
    }

    /// The log's identity.
    pub fn epoch(&self) -> Uuid {
        self.inner.epoch
    }

    /// Records `message`. In memory it is stamped and published at once;
    /// in durable mode it is queued for the writer. Never waits on a
    /// subscriber or on the store.
    pub fn append(&self, message: ServerMessage) {
        let mut state = self.lock();
        state.appended += 1;
        match &self.inner.writer {
            None => {
                let seq = state.last_seq + 1;
                self.publish(
                    &mut state,
                    Envelope {
                        seq,
                        ts: Utc::now(),
                        message,
                    },
                );
            }
            Some(writer) => {
                let fence = (self.inner.shared.as_ref()).and_then(|shared| shared.leases.fence_for(&message));
                let event = Unsequenced {
                    ts: Utc::now(),
                    message,
                    fence,
                };
                state.pending.push((event, tokio::time::Instant::now()));
                writer.wake.notify_one();
            }
        }
    }

    /// Stamps nothing: `envelope.seq` must be the next `seq`. Retains,
    /// projects and fans out, under the caller's lock.
    fn publish(&self, state: &mut LogState, envelope: Envelope) {
        state.last_seq = envelope.seq;
        state.projection.apply(&envelope);
        let envelope = Arc::new(Published::new(envelope));
        if state.retained.len() == self.inner.retain {
            state.retained.pop_front();
        }
        state.retained.push_back(envelope.clone());
        // No receivers is fine: nobody is watching.
        let _ = self.inner.sender.send(envelope);
    }

    /// The newest `seq` published, 0 when the log is empty.
    pub fn last_seq(&self) -> u64 {
        self.lock().last_seq
    }
}
