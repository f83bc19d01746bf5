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
//! Either way:
//! - `seq` grows by exactly one per event, with no gaps;
//! - subscribers see events in `seq` order;
//! - [`EventLog::subscribe_since`] returns a backlog and a live receiver
//!   that meet with no gap and no duplicate;
//! - the [`Projection`] (what a snapshot shows) is updated under the same
//!   lock as the fan-out, so a snapshot reflects exactly the events up to
//!   its `last_seq`, never one later.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use chrono::Utc;
use rand::{Rng, SeedableRng, rngs::SmallRng};
use tokio::sync::{Notify, broadcast, watch};
use tokio_util::sync::CancellationToken;
use tracing::error;
use uuid::Uuid;

use crate::{
    journal::{Journal, Unsequenced},
    protocol::{AgentStats, Envelope, Incident, PerformanceMetrics, ServerMessage, ServiceTelemetry},
};

/// The writer's jitter: from the OS, so writers sharing a store do not
/// retry in lockstep; fixed in this crate's tests, so timings reproduce.
fn jitter_rng() -> SmallRng {
    if cfg!(test) {
        SmallRng::seed_from_u64(0)
    } else {
        SmallRng::from_os_rng()
    }
}

/// Backoff while the store refuses batches.
const STORE_BACKOFF: crate::protocol::Backoff = crate::protocol::Backoff {
    base: Duration::from_millis(100),
    cap: Duration::from_secs(3),
};

/// Most events a writer hands to the journal in one transaction.
const MAX_BATCH: usize = 4_096;

/// The batch size for a fan-out of `capacity`: a batch is published at
/// once, so one larger than a subscriber's queue would overflow even a
/// subscriber that keeps up. Half the queue leaves room for the next.
fn batch_limit(capacity: usize) -> usize {
    MAX_BATCH.min(capacity / 2).max(1)
}

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

/// The store has refused the writer's batches since `for_how_long` ago:
/// nothing appended since is published, and every `flush` waits.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreRefusal {
    /// Since the first refusal of the batch still being retried.
    pub for_how_long: Duration,
    /// Attempts refused in a row.
    pub attempts: u32,
    /// The store's reason, last time.
    pub reason: String,
}

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

/// Whether an event belongs in the activity feed.
pub fn is_feed_event(message: &ServerMessage) -> bool {
    matches!(
        message,
        ServerMessage::IncidentCreated { .. }
            | ServerMessage::AgentAction { .. }
            | ServerMessage::IncidentStatus { .. }
            | ServerMessage::PolicyDecision { .. }
            | ServerMessage::ApprovalRequested { .. }
            | ServerMessage::ApprovalDecided { .. }
            | ServerMessage::MemoryRecorded { .. }
    )
}

/// What a snapshot shows, kept current event by event.
#[derive(Debug, Clone, Default)]
pub struct Projection {
    /// The newest incidents, newest first.
    pub incidents: VecDeque<Incident>,
    /// The newest feed events, oldest first.
    pub recent: VecDeque<Envelope>,
    /// The latest impact-meter figures.
    pub metrics: PerformanceMetrics,
    /// The latest estate report (empty before the first).
    pub twin: Vec<ServiceTelemetry>,
    /// The latest agent-bus report (empty before the first).
    pub swarm: Vec<AgentStats>,
    /// The newest timeline runs, newest first.
    pub timelines: VecDeque<crate::protocol::TimelineRun>,
    /// Pending approvals and the latest decided ones, newest first.
    pub approvals: VecDeque<crate::protocol::Approval>,
    /// How many incidents and feed events to keep.
    incident_cap: usize,
    event_cap: usize,
}

impl Projection {
    /// An empty projection keeping `incident_cap` incidents and `event_cap`
    /// feed events.
    pub fn new(incident_cap: usize, event_cap: usize) -> Self {
        Self {
            incident_cap,
            event_cap,
            ..Self::default()
        }
    }

    /// Folds one event in.
    pub fn apply(&mut self, envelope: &Envelope) {
        match &envelope.message {
            ServerMessage::IncidentCreated { incident } => {
                self.incidents.push_front(incident.clone());
                self.incidents.truncate(self.incident_cap);
            }
            ServerMessage::IncidentStatus { incident_id, .. } => {
                if let Some(incident) = self.incidents.iter_mut().find(|i| i.id == *incident_id) {
                    incident.apply_status(&envelope.message, envelope.ts);
                }
            }
            ServerMessage::PerformanceMetrics { metrics } => self.metrics = metrics.clone(),
            ServerMessage::TwinHealth { services } => self.twin = services.clone(),
            ServerMessage::SwarmStats { agents } => self.swarm = agents.clone(),
            ServerMessage::TimelineProgress { run } => run.upsert_into(&mut self.timelines),
            ServerMessage::ApprovalRequested { approval } | ServerMessage::ApprovalDecided { approval } => approval
                .clone()
                .upsert_into(&mut self.approvals, crate::protocol::SNAPSHOT_APPROVALS),
            _ => {}
        }
        if is_feed_event(&envelope.message) {
            if self.recent.len() == self.event_cap {
                self.recent.pop_front();
            }
            self.recent.push_back(envelope.clone());
        }
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
}

/// The durable mode's writer side.
struct Writer {
    /// Where batches go.
    journal: Arc<dyn Journal>,
    /// Wakes the writer when messages are pending.
    wake: Notify,
    /// Ends the commit window early: someone waits on a flush.
    hurry: Notify,
    /// How many appended messages are durable and published.
    published: watch::Sender<u64>,
    /// Stops the writer once everything pending is written.
    stop: CancellationToken,
    /// Most events per transaction (see [`batch_limit`]).
    max_batch: usize,
    /// How long the oldest pending event may wait for company before its
    /// batch is written (group commit; zero writes at once).
    commit_window: Duration,
    /// While the store refuses batches: since when, how often, and why.
    refusal: Mutex<Option<(tokio::time::Instant, u32, String)>>,
    /// Why publishing stopped for good, once it has: the store numbered a
    /// batch other than right after the last `seq` published.
    halted: Mutex<Option<String>>,
    /// Cancelled when publishing stops, so nobody waits on a flush forever.
    halt: CancellationToken,
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
        )
    }

    /// A durable log over `journal`, continuing from `start`: a batch is
    /// written once its oldest event has waited `commit_window` (or it is
    /// full). Spawns the writer, so it must be called within a tokio runtime.
    pub fn durable(
        retain: usize,
        fanout_capacity: usize,
        commit_window: Duration,
        start: LogStart,
        journal: Arc<dyn Journal>,
    ) -> Self {
        let writer = Writer {
            journal,
            wake: Notify::new(),
            hurry: Notify::new(),
            published: watch::channel(0).0,
            stop: CancellationToken::new(),
            max_batch: batch_limit(fanout_capacity),
            commit_window,
            refusal: Mutex::new(None),
            halted: Mutex::new(None),
            halt: CancellationToken::new(),
        };
        let log = Self::build(retain, fanout_capacity, start, Some(writer));
        tokio::spawn(log.clone().write_batches());
        log
    }

    fn build(retain: usize, fanout_capacity: usize, start: LogStart, writer: Option<Writer>) -> Self {
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
                }),
                retain,
                sender,
                epoch: start.epoch,
                writer,
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
                let event = Unsequenced {
                    ts: Utc::now(),
                    message,
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

    /// The durable mode's writer: hands pending messages to the journal in
    /// batches, retrying until it takes them, then publishes them.
    async fn write_batches(self) {
        let writer = self.inner.writer.as_ref().expect("only durable logs write");
        let mut failures = 0u32;
        let mut jitter = jitter_rng();
        loop {
            self.gather(writer).await;
            let (batch, appended_at): (Vec<Unsequenced>, Vec<tokio::time::Instant>) = {
                let mut state = self.lock();
                let take = state.pending.len().min(writer.max_batch);
                state.pending.drain(..take).unzip()
            };
            if batch.is_empty() {
                tokio::select! {
                    () = writer.wake.notified() => continue,
                    () = writer.stop.cancelled() => {
                        if self.lock().pending.is_empty() {
                            return;
                        }
                        continue;
                    }
                }
            }
            let writing = Instant::now();
            let first = loop {
                match writer.journal.append(&batch).await {
                    Ok(first) => {
                        failures = 0;
                        *writer.refusal.lock().expect("refusal lock poisoned") = None;
                        metrics::gauge!("antibody_event_store_refusing").set(0.0);
                        break first;
                    }
                    Err(reason) => {
                        failures += 1;
                        {
                            let mut refusal = writer.refusal.lock().expect("refusal lock poisoned");
                            let since = refusal
                                .as_ref()
                                .map_or_else(tokio::time::Instant::now, |(since, ..)| *since);
                            *refusal = Some((since, failures, reason.to_string()));
                        }
                        metrics::gauge!("antibody_event_store_refusing").set(1.0);
                        // Nothing is published until it is stored; keep
                        // trying, slower each time, and say so.
                        error!(%reason, failures, events = batch.len(), "the event store refused a batch; retrying");
                        tokio::time::sleep(STORE_BACKOFF.wait(failures - 1, jitter.random())).await;
                    }
                }
            };
            metrics::histogram!("antibody_event_store_write_seconds").record(writing.elapsed().as_secs_f64());
            metrics::histogram!("antibody_event_store_batch_events").record(batch.len() as f64);
            let count = batch.len() as u64;
            {
                let mut state = self.lock();
                if first != state.last_seq + 1 {
                    // Another writer shares the store. Publishing this batch
                    // would show every dashboard a gap (or a repeat) that
                    // no resume can fill: stop, and say why. The batch is
                    // stored; a restart publishes from the store.
                    let reason = format!(
                        "the store numbered a batch from seq {first}, where {} was next: another writer shares \
                         the event store; publishing stopped rather than show a gap",
                        state.last_seq + 1
                    );
                    error!(expected = state.last_seq + 1, got = first, "{reason}");
                    metrics::gauge!("antibody_event_log_halted").set(1.0);
                    *writer.halted.lock().expect("halt lock poisoned") = Some(reason);
                    writer.halt.cancel();
                    return;
                }
                for (offset, event) in batch.into_iter().enumerate() {
                    let envelope = Envelope {
                        seq: first + offset as u64,
                        ts: event.ts,
                        message: event.message,
                    };
                    self.publish(&mut state, envelope);
                }
            }
            let delay = metrics::histogram!("antibody_event_broadcast_delay_seconds");
            for at in appended_at {
                delay.record(at.elapsed().as_secs_f64());
            }
            writer.published.send_modify(|published| *published += count);
            // Let subscribers drain this batch before the next one lands.
            tokio::task::yield_now().await;
        }
    }

    /// Group commit: waits until the oldest pending event has waited
    /// `commit_window`, the batch is full, or someone flushes. Under
    /// load, one transaction and one flush per connection then carry
    /// several events: fewer fsyncs and far fewer socket writes, for a
    /// bounded extra delay.
    async fn gather(&self, writer: &Writer) {
        if writer.commit_window.is_zero() {
            return;
        }
        let due = {
            let state = self.lock();
            match state.pending.first() {
                Some((_, oldest)) if state.pending.len() < writer.max_batch => *oldest + writer.commit_window,
                _ => return,
            }
        };
        tokio::select! {
            () = tokio::time::sleep_until(due) => {}
            () = writer.hurry.notified() => {}
        }
    }

    /// Whether the store is refusing the writer's batches (never, in memory).
    pub fn store_refusal(&self) -> Option<StoreRefusal> {
        let writer = self.inner.writer.as_ref()?;
        let refusal = writer.refusal.lock().expect("refusal lock poisoned");
        refusal.as_ref().map(|(since, attempts, reason)| StoreRefusal {
            for_how_long: since.elapsed(),
            attempts: *attempts,
            reason: reason.clone(),
        })
    }

    /// Waits until every message appended so far is durable and published
    /// (at once in memory). Someone is waiting, so the commit window is cut
    /// short.
    pub async fn flush(&self) {
        let Some(writer) = &self.inner.writer else { return };
        let target = self.lock().appended;
        writer.hurry.notify_one();
        let mut published = writer.published.subscribe();
        // A halted log publishes nothing more: waiting would be forever.
        tokio::select! {
            _ = published.wait_for(|&n| n >= target) => {}
            () = writer.halt.cancelled() => {}
        }
    }

    /// Why publishing stopped for good, if it has (never, in memory).
    pub fn halted(&self) -> Option<String> {
        let writer = self.inner.writer.as_ref()?;
        writer.halted.lock().expect("halt lock poisoned").clone()
    }

    /// Flushes, then stops the writer.
    pub async fn close(&self) {
        self.flush().await;
        if let Some(writer) = &self.inner.writer {
            writer.stop.cancel();
            writer.wake.notify_one();
        }
    }

    /// The newest `seq` published, 0 when the log is empty.
    pub fn last_seq(&self) -> u64 {
        self.lock().last_seq
    }

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
        (0..5).for_each(|_| log.append(message()));
        let seqs: Vec<u64> = log.since(0, 10).unwrap().iter().map(|e| e.seq).collect();
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

    /// A journal in memory that refuses its first `refusals` batches.
    #[derive(Default)]
    struct FakeJournal {
        stored: Mutex<Vec<Envelope>>,
        refusals: Mutex<u32>,
        /// The seq the store is at when the log starts.
        offset: u64,
        /// The size of each batch stored.
        batches: Mutex<Vec<usize>>,
    }

    impl Journal for FakeJournal {
        fn keep_telemetry<'a>(
            &'a self,
            _telemetry: &'a crate::protocol::IncidentTelemetry,
        ) -> crate::journal::JournalFuture<'a, ()> {
            Box::pin(async { Ok(()) })
        }

        fn append<'a>(&'a self, batch: &'a [Unsequenced]) -> crate::journal::JournalFuture<'a, u64> {
            Box::pin(async move {
                let mut refusals = self.refusals.lock().unwrap();
                if *refusals > 0 {
                    *refusals -= 1;
                    return Err(crate::journal::JournalError("disk full".into()));
                }
                self.batches.lock().unwrap().push(batch.len());
                let mut stored = self.stored.lock().unwrap();
                let first = self.offset + stored.len() as u64 + 1;
                for (i, e) in batch.iter().enumerate() {
                    stored.push(Envelope {
                        seq: first + i as u64,
                        ts: e.ts,
                        message: e.message.clone(),
                    });
                }
                Ok(first)
            })
        }
    }

    fn durable(journal: Arc<FakeJournal>, last_seq: u64) -> EventLog {
        let start = LogStart {
            epoch: Uuid::from_u128(7),
            last_seq,
            tail: Vec::new(),
            projection: Projection::new(5, 5),
        };
        EventLog::durable(10, 100, Duration::ZERO, start, journal)
    }

    #[tokio::test(start_paused = true)]
    async fn a_durable_log_publishes_only_what_the_journal_stored_in_its_order() {
        let journal = Arc::new(FakeJournal {
            refusals: Mutex::new(2),
            offset: 40,
            ..FakeJournal::default()
        });
        let log = durable(journal.clone(), 40);
        let mut live = log.subscribe_since(40).live;
        for _ in 0..3 {
            log.append(message());
        }
        assert!(live.try_recv().is_err(), "nothing is published before it is stored");
        assert_eq!(log.last_seq(), 40);
        log.flush().await;
        let stored: Vec<u64> = journal.stored.lock().unwrap().iter().map(|e| e.seq).collect();
        assert_eq!(stored, [41, 42, 43], "the refused batches were retried, not lost");
        let seen: Vec<u64> = std::iter::from_fn(|| live.try_recv().ok()).map(|e| e.seq).collect();
        assert_eq!(seen, stored);
        assert_eq!(log.last_seq(), 43);
        assert_eq!(log.epoch(), Uuid::from_u128(7));
        log.close().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusing_store_is_reported_until_it_takes_the_batch() {
        let journal = Arc::new(FakeJournal {
            refusals: Mutex::new(3),
            ..FakeJournal::default()
        });
        let log = durable(journal.clone(), 0);
        assert_eq!(log.store_refusal(), None);
        log.append(message());
        // The first refusal at once, then a retry after each backoff wait
        // (paused time; the tests' jitter is reproducible): the attempts
        // made by 150 ms are the first plus every retry due by then.
        let mut jitter = jitter_rng();
        let mut due = Duration::ZERO;
        let mut expected = 1;
        for retry in 0..3 {
            due += STORE_BACKOFF.wait(retry, rand::Rng::random(&mut jitter));
            if due > Duration::from_millis(150) {
                break;
            }
            expected += 1;
        }
        assert!(expected <= 3, "the store still refuses at 150 ms");
        tokio::time::sleep(Duration::from_millis(150)).await;
        let refusal = log.store_refusal().expect("the store refuses");
        assert_eq!((refusal.attempts, refusal.reason.as_str()), (expected, "disk full"));
        assert!(refusal.for_how_long >= Duration::from_millis(100), "{refusal:?}");
        assert_eq!(log.last_seq(), 0, "nothing is published unstored");
        log.flush().await;
        assert_eq!(log.store_refusal(), None, "the store took it");
        assert_eq!(log.last_seq(), 1);
        log.close().await;
        assert_eq!(EventLog::new(3, 10).store_refusal(), None, "memory never refuses");
    }

    #[tokio::test(start_paused = true)]
    async fn a_seq_that_does_not_follow_stops_publishing_instead_of_showing_a_gap() {
        // The store is at 40, but this log last published 38: another
        // writer took 39 and 40.
        let journal = Arc::new(FakeJournal {
            offset: 40,
            ..FakeJournal::default()
        });
        let log = durable(journal.clone(), 38);
        let mut live = log.subscribe_since(38).live;
        log.append(message());
        log.flush().await;
        assert_eq!(journal.stored.lock().unwrap().len(), 1, "the batch is stored");
        assert!(live.try_recv().is_err(), "but never published past the gap");
        assert_eq!(log.last_seq(), 38);
        let reason = log.halted().expect("halted");
        assert!(reason.contains("seq 41, where 39 was next"), "{reason}");
        // Later appends are not published either, and flushes return.
        log.append(message());
        log.flush().await;
        assert!(live.try_recv().is_err());
        assert_eq!(EventLog::new(3, 10).halted(), None, "memory never halts");
    }

    #[tokio::test(start_paused = true)]
    async fn events_wait_out_the_commit_window_together_unless_someone_flushes() {
        let journal = Arc::new(FakeJournal::default());
        let start = LogStart {
            epoch: Uuid::from_u128(7),
            projection: Projection::new(5, 5),
            ..LogStart::default()
        };
        let log = EventLog::durable(100, 100, Duration::from_millis(20), start, journal.clone());
        log.append(message());
        tokio::time::sleep(Duration::from_millis(12)).await;
        log.append(message());
        log.append(message());
        tokio::time::sleep(Duration::from_millis(7)).await;
        assert!(journal.batches.lock().unwrap().is_empty(), "the window is still open");
        tokio::time::sleep(Duration::from_millis(2)).await;
        assert_eq!(*journal.batches.lock().unwrap(), [3], "one transaction for the window");
        assert_eq!(log.last_seq(), 3);

        // Someone waiting on a flush (an API call, a close) does not wait
        // the window out.
        log.append(message());
        let flushing = tokio::time::Instant::now();
        log.flush().await;
        assert!(flushing.elapsed() < Duration::from_millis(20));
        assert_eq!(*journal.batches.lock().unwrap(), [3, 1]);
        log.close().await;
    }

    #[test]
    fn a_batch_never_outgrows_a_subscribers_queue() {
        assert_eq!(batch_limit(16), 8);
        assert_eq!(batch_limit(1), 1);
        assert_eq!(batch_limit(1 << 20), MAX_BATCH);
    }

    #[tokio::test(start_paused = true)]
    async fn a_subscriber_that_keeps_up_never_lags_behind_large_bursts() {
        let journal = Arc::new(FakeJournal::default());
        let start = LogStart {
            epoch: Uuid::from_u128(7),
            projection: Projection::new(5, 5),
            ..LogStart::default()
        };
        let log = EventLog::durable(100, 16, Duration::ZERO, start, journal);
        let mut live = log.subscribe_since(0).live;
        for _ in 0..200 {
            log.append(message());
        }
        let mut seen = 0;
        while seen < 200 {
            let event = live.recv().await.expect("never lagged");
            seen += 1;
            assert_eq!(event.seq, seen);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_snapshot_reflects_exactly_the_published_events() {
        let journal = Arc::new(FakeJournal::default());
        let log = durable(journal, 0);
        log.append(ServerMessage::IncidentCreated {
            incident: Incident {
                id: Uuid::from_u128(1),
                title: "Database Cascade".into(),
                severity: crate::protocol::Severity::Critical,
                affected_services: vec!["api-gateway".into()],
                scenario_id: None,
                status: crate::protocol::IncidentStatus::Active,
                created_at: Utc::now(),
                finished_at: None,
                resolution_time: None,
                cost_savings: None,
                root_cause: None,
                report: None,
            },
        });
        let (pending_view, _) = log.project_and_subscribe(|seq, p| (seq, p.incidents.len()));
        assert_eq!(pending_view, (0, 0), "queued, not yet stored: not in the snapshot");
        log.flush().await;
        let ((seq, incidents), _) = log.project_and_subscribe(|seq, p| (seq, p.incidents.len()));
        assert_eq!((seq, incidents), (1, 1));
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
