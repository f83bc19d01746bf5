//! The event log: every message a dashboard receives is appended here first,
//! given the next sequence number, then fanned out to live subscribers.
//!
//! This is the in-memory log of the foundation; it keeps the newest
//! `retain` events for replay. The durable store replaces the retention,
//! not the contract:
//! - `seq` starts at 1 and grows by exactly one per event;
//! - subscribers see events in `seq` order;
//! - [`EventLog::subscribe_since`] returns a backlog and a live receiver
//!   that meet with no gap and no duplicate.

use std::{collections::VecDeque, sync::Arc, sync::Mutex};

use chrono::Utc;
use tokio::sync::broadcast;

use crate::protocol::{Envelope, ServerMessage};

/// A live subscription that starts after a known `seq`.
pub struct Subscription {
    /// Retained events after the requested `seq`, oldest first.
    pub backlog: Vec<Arc<Envelope>>,
    /// False when events after the requested `seq` were no longer retained,
    /// so the backlog starts later than asked.
    pub complete: bool,
    /// Every event appended after the backlog.
    pub live: broadcast::Receiver<Arc<Envelope>>,
}

struct LogState {
    /// The `seq` the next event gets.
    next_seq: u64,
    /// The newest events, oldest first.
    retained: VecDeque<Arc<Envelope>>,
}

/// Appends, retains and fans out events. Shared behind the engine handle.
pub struct EventLog {
    /// Sequence counter and retained events, under one lock so that the
    /// order of `seq` is the order of fan-out.
    state: Mutex<LogState>,
    /// How many events to keep for replay.
    retain: usize,
    /// Fan-out to live subscribers.
    sender: broadcast::Sender<Arc<Envelope>>,
}

impl EventLog {
    /// `retain` events are kept for replay; a live subscriber may fall up to
    /// `fanout_capacity` events behind before it is told it lagged.
    pub fn new(retain: usize, fanout_capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(fanout_capacity.max(1));
        Self {
            state: Mutex::new(LogState {
                next_seq: 1,
                retained: VecDeque::with_capacity(retain.min(4096)),
            }),
            retain: retain.max(1),
            sender,
        }
    }

    /// Stamps `message` with the next `seq` and the current time, keeps it,
    /// and sends it to every live subscriber. Never waits on a subscriber.
    pub fn append(&self, message: ServerMessage) -> Arc<Envelope> {
        let mut state = self.state.lock().expect("event log lock poisoned");
        let envelope = Arc::new(Envelope {
            seq: state.next_seq,
            ts: Utc::now(),
            message,
        });
        state.next_seq += 1;
        if state.retained.len() == self.retain {
            state.retained.pop_front();
        }
        state.retained.push_back(envelope.clone());
        // No receivers is fine: nobody is watching.
        let _ = self.sender.send(envelope.clone());
        envelope
    }

    /// The newest `seq` appended, 0 when the log is empty.
    pub fn last_seq(&self) -> u64 {
        self.state.lock().expect("event log lock poisoned").next_seq - 1
    }

    /// Subscribes to every event after `since`.
    pub fn subscribe_since(&self, since: u64) -> Subscription {
        let state = self.state.lock().expect("event log lock poisoned");
        // Subscribing under the lock means no append can fall between the
        // backlog and the live stream.
        let live = self.sender.subscribe();
        let oldest = state.retained.front().map_or(state.next_seq, |e| e.seq);
        let backlog: Vec<_> = state.retained.iter().filter(|e| e.seq > since).cloned().collect();
        Subscription {
            // A `since` beyond the newest event comes from another run of
            // the log: the client's view cannot be patched, only replaced.
            complete: since + 1 >= oldest && since < state.next_seq,
            backlog,
            live,
        }
    }

    /// The newest `seq`, the newest retained events that `keep` accepts (up
    /// to `limit`, oldest first), and a receiver for every event after them,
    /// all at one instant.
    pub fn view_and_subscribe(
        &self,
        limit: usize,
        keep: impl Fn(&Envelope) -> bool,
    ) -> (u64, Vec<Envelope>, broadcast::Receiver<Arc<Envelope>>) {
        let state = self.state.lock().expect("event log lock poisoned");
        let live = self.sender.subscribe();
        (state.next_seq - 1, Self::pick_recent(&state, limit, keep), live)
    }

    /// The newest retained events that `keep` accepts, up to `limit`, oldest
    /// first.
    pub fn recent(&self, limit: usize, keep: impl Fn(&Envelope) -> bool) -> Vec<Envelope> {
        let state = self.state.lock().expect("event log lock poisoned");
        Self::pick_recent(&state, limit, keep)
    }

    fn pick_recent(state: &LogState, limit: usize, keep: impl Fn(&Envelope) -> bool) -> Vec<Envelope> {
        let mut picked: Vec<Envelope> = state
            .retained
            .iter()
            .rev()
            .filter(|e| keep(e))
            .take(limit)
            .map(|e| (**e).clone())
            .collect();
        picked.reverse();
        picked
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::PerformanceMetrics;
    use proptest::prelude::*;

    fn message() -> ServerMessage {
        ServerMessage::PerformanceMetrics {
            metrics: PerformanceMetrics::default(),
        }
    }

    #[test]
    fn seq_starts_at_one_and_has_no_gaps() {
        let log = EventLog::new(10, 10);
        assert_eq!(log.last_seq(), 0);
        let seqs: Vec<u64> = (0..5).map(|_| log.append(message()).seq).collect();
        assert_eq!(seqs, [1, 2, 3, 4, 5]);
        assert_eq!(log.last_seq(), 5);
    }

    #[test]
    fn a_late_subscriber_gets_only_what_it_missed_then_live() {
        let log = EventLog::new(10, 10);
        for _ in 0..4 {
            log.append(message());
        }
        let mut sub = log.subscribe_since(2);
        assert!(sub.complete);
        assert_eq!(sub.backlog.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 4]);
        log.append(message());
        assert_eq!(sub.live.try_recv().unwrap().seq, 5);
        assert!(sub.live.try_recv().is_err());
    }

    #[test]
    fn a_subscriber_older_than_retention_is_told_its_backlog_is_incomplete() {
        let log = EventLog::new(3, 10);
        for _ in 0..6 {
            log.append(message());
        }
        let sub = log.subscribe_since(1);
        assert!(!sub.complete);
        assert_eq!(sub.backlog.iter().map(|e| e.seq).collect::<Vec<_>>(), [4, 5, 6]);
        assert!(log.subscribe_since(3).complete);
        assert!(log.subscribe_since(6).complete);
        let from_another_run = log.subscribe_since(60);
        assert!(from_another_run.backlog.is_empty());
        assert!(!from_another_run.complete);
    }

    proptest! {
        /// Whatever the interleaving of appends and subscriptions, a
        /// subscriber's backlog followed by its live stream is exactly the
        /// log after its `since`: no gap, no duplicate.
        #[test]
        fn backlog_and_live_meet_exactly(ops in proptest::collection::vec(0u8..4, 1..60)) {
            let log = EventLog::new(1000, 1000);
            let mut subs = Vec::new();
            for op in ops {
                if op == 0 {
                    let since = log.last_seq().saturating_sub(2);
                    subs.push((since, log.subscribe_since(since)));
                } else {
                    log.append(message());
                }
            }
            let last = log.last_seq();
            for (since, mut sub) in subs {
                let mut seen: Vec<u64> = sub.backlog.iter().map(|e| e.seq).collect();
                while let Ok(e) = sub.live.try_recv() {
                    seen.push(e.seq);
                }
                prop_assert_eq!(seen, ((since + 1)..=last).collect::<Vec<_>>());
            }
        }
    }
}
