//! The durable mode's writer: a task that hands pending messages to the
//! [`Journal`] in batches (group commit), retries while the store refuses
//! them, and publishes each batch only once it is stored.
//!
//! Batching is natural: an idle writer commits a lone event at once, and
//! what is appended while a transaction runs goes into the next one, so
//! the batch grows with the load and never waits at low load (as
//! PostgreSQL's `commit_delay` applies only when others are committing).
//! A commit window may add a wait on top (`ANTIBODY_COMMIT_WINDOW`, off by
//! default): it trades latency for fewer transactions.
//!
//! Kept apart from the log proper because it is the only part that waits on
//! the store; everything else is a few steps under the log's lock.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use rand::{Rng, SeedableRng, rngs::SmallRng};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use tracing::error;

use super::{EventLog, LogStart};
use crate::{
    journal::{Journal, Stored, Unsequenced},
    protocol::Envelope,
};

/// The writer's jitter: from the OS, so writers sharing a store do not
/// retry in lockstep; fixed in this crate's tests, so timings reproduce.
pub(super) fn jitter_rng() -> SmallRng {
    if cfg!(test) {
        SmallRng::seed_from_u64(0)
    } else {
        SmallRng::from_os_rng()
    }
}

/// Backoff while the store refuses batches.
pub(super) const STORE_BACKOFF: crate::protocol::Backoff = crate::protocol::Backoff {
    base: Duration::from_millis(100),
    cap: Duration::from_secs(3),
};

/// Most events a writer hands to the journal in one transaction.
pub(super) const MAX_BATCH: usize = 4_096;

/// The batch size for a fan-out of `capacity`: a batch is published at
/// once, so one larger than a subscriber's queue would overflow even a
/// subscriber that keeps up. Half the queue leaves room for the next.
pub(super) fn batch_limit(capacity: usize) -> usize {
    MAX_BATCH.min(capacity / 2).max(1)
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

/// The durable mode's writer side.
pub(super) struct Writer {
    /// Where batches go.
    journal: Arc<dyn Journal>,
    /// Wakes the writer when messages are pending.
    pub(super) wake: Notify,
    /// Ends the commit window early: someone waits on a flush.
    hurry: Notify,
    /// How many appended messages are durable and published (or refused
    /// by their fence).
    pub(super) published: watch::Sender<u64>,
    /// Stops the writer once everything pending is written.
    stop: CancellationToken,
    /// Most events per transaction (see [`batch_limit`]).
    pub(super) max_batch: usize,
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

impl Writer {
    pub(super) fn new(journal: Arc<dyn Journal>, fanout_capacity: usize, commit_window: Duration) -> Self {
        Self {
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
        }
    }

    /// Stops publishing for good, saying why.
    pub(super) fn halt_with(&self, reason: String) {
        metrics::gauge!("antibody_event_log_halted").set(1.0);
        *self.halted.lock().expect("halt lock poisoned") = Some(reason);
        self.halt.cancel();
    }

    /// Resolves once the writer has stopped for good (closed or halted).
    pub(super) async fn stopped(&self) {
        tokio::select! {
            () = self.stop.cancelled() => {}
            () = self.halt.cancelled() => {}
        }
    }
}

impl EventLog {
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
        let writer = Writer::new(journal, fanout_capacity, commit_window);
        let log = Self::build(retain, fanout_capacity, start, Some(writer), None);
        tokio::spawn(log.clone().write_batches());
        log
    }

    /// The durable mode's writer: hands pending messages to the journal in
    /// batches, retrying until it takes them, then publishes them.
    pub(super) async fn write_batches(self) {
        let writer = self.inner.writer.as_ref().expect("only durable logs write");
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
            let stored = self.store(writer, &batch, &mut jitter).await;
            metrics::histogram!("antibody_event_store_write_seconds").record(writing.elapsed().as_secs_f64());
            metrics::histogram!("antibody_event_store_batch_events").record(batch.len() as f64);
            super::shared::report_refused(&batch, &stored);
            let count = batch.len() as u64;
            if self.inner.shared.is_some() {
                // Published when the tail reads it back.
                self.stored_here(writer, &stored, appended_at);
                continue;
            }
            let first = stored.first;
            let batch: Vec<Unsequenced> = (batch.into_iter().enumerate())
                .filter(|(index, _)| !stored.refused.contains(index))
                .map(|(_, event)| event)
                .collect();
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
                    writer.halt_with(reason);
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

    /// Hands `batch` to the journal, retrying (slower each time, and saying
    /// so) until it takes it; returns where it put the events.
    async fn store(&self, writer: &Writer, batch: &[Unsequenced], jitter: &mut SmallRng) -> Stored {
        let mut failures = 0u32;
        loop {
            match writer.journal.append(batch).await {
                Ok(first) => {
                    *writer.refusal.lock().expect("refusal lock poisoned") = None;
                    metrics::gauge!("antibody_event_store_refusing").set(0.0);
                    return first;
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
        }
    }

    /// The optional commit window: waits until the oldest pending event
    /// has waited `commit_window`, the batch is full, or someone flushes.
    /// Zero (the default) returns at once: the batch is then whatever
    /// piled up while the last transaction ran.
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
}
