//! Shared mode: several instances append to one store, and each publishes
//! only what it reads back from it.
//!
//! The writer stores batches as in durable mode (the store assigns `seq`
//! under one row lock, so commit order is `seq` order) but publishes
//! nothing. The tailer follows the store from the log's `last_seq`: woken
//! by the store's notifications (`pg_notify` in the append transaction,
//! received on a LISTEN connection), by the writer after each batch, after
//! the LISTEN connection reconnects, and on a short tick. A lost
//! notification therefore costs at most a tick, never an event: the cursor
//! is the log's own `last_seq`, not the notification's payload.
//!
//! Local and remote events take this one path, so every dashboard on every
//! instance sees one order, and a `flush` returns once its events came
//! back through the tail.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::Notify;
use tracing::{error, warn};

use super::{EventLog, LogStart, writer::Writer};
use crate::{
    cluster::Leases,
    journal::{Journal, Stored, Tailed, Unsequenced},
    protocol::Envelope,
};

/// Most events read from the store in one query while catching up.
const TAIL_PAGE: usize = 1_000;

/// How an instance follows the shared log.
pub struct Tailing {
    /// Woken by the store's notifications, and after the LISTEN connection
    /// reconnects (see `store::Store::listen`).
    pub wake: Arc<Notify>,
    /// How often to catch up without being woken: the most a lost
    /// notification costs.
    pub tick: Duration,
    /// The leases this instance holds; the log fences events with them.
    pub leases: Leases,
}

/// Called with each event another instance wrote, in `seq` order, once
/// published.
type RemoteHook = Box<dyn Fn(&Envelope) + Send + Sync>;

/// The shared mode's part of the log.
pub(super) struct Shared {
    /// The leases events are fenced with.
    pub(super) leases: Leases,
    /// Wakes the tailer.
    wake: Arc<Notify>,
    /// How often the tailer catches up unwoken.
    tick: Duration,
    /// What the engine does with another instance's events.
    remote: Mutex<Option<RemoteHook>>,
}

impl EventLog {
    /// A log over a store that other instances share: stored like a durable
    /// log, published from the store's tail. Spawns the writer and the
    /// tailer, so it must be called within a tokio runtime.
    pub fn shared(
        retain: usize,
        fanout_capacity: usize,
        commit_window: Duration,
        start: LogStart,
        journal: Arc<dyn Journal>,
        tailing: Tailing,
    ) -> Self {
        let writer = Writer::new(Arc::clone(&journal), fanout_capacity, commit_window);
        let shared = Shared {
            leases: tailing.leases,
            wake: tailing.wake,
            tick: tailing.tick,
            remote: Mutex::new(None),
        };
        let log = Self::build(retain, fanout_capacity, start, Some(writer), Some(shared));
        tokio::spawn(log.clone().write_batches());
        tokio::spawn(log.clone().follow(journal));
        log
    }

    /// Whether this log follows a store other instances share.
    pub fn is_shared(&self) -> bool {
        self.inner.shared.is_some()
    }

    /// Sets what happens with each event another instance wrote (shared
    /// mode): the engine applies it to what it keeps in memory.
    pub fn on_remote(&self, hook: impl Fn(&Envelope) + Send + Sync + 'static) {
        if let Some(shared) = &self.inner.shared {
            *shared.remote.lock().expect("hook lock poisoned") = Some(Box::new(hook));
        }
    }

    /// The leases this instance holds (shared mode).
    pub fn leases(&self) -> Option<&Leases> {
        self.inner.shared.as_ref().map(|shared| &shared.leases)
    }

    /// The tailer: catches up whenever woken, and every tick regardless.
    async fn follow(self, journal: Arc<dyn Journal>) {
        let shared = self.inner.shared.as_ref().expect("only shared logs follow");
        let writer = self.inner.writer.as_ref().expect("shared logs write");
        loop {
            tokio::select! {
                () = shared.wake.notified() => {}
                () = tokio::time::sleep(shared.tick) => {}
                () = writer.stopped() => return,
            }
            // A page is published at once, so no larger than the writer's
            // batch (half a subscriber's queue), with a yield between pages
            // for subscribers to drain, as the writer does.
            let page = TAIL_PAGE.min(writer.max_batch);
            while let Some(read) = self.catch_up_once(journal.as_ref(), page).await {
                if read < page {
                    break;
                }
                tokio::task::yield_now().await;
            }
        }
    }

    /// Reads and publishes one page after the log's `last_seq`; how many
    /// events it read, or `None` when the store could not be read (the next
    /// tick tries again).
    async fn catch_up_once(&self, journal: &dyn Journal, limit: usize) -> Option<usize> {
        let after = self.last_seq();
        let page = match journal.read_after(after, limit).await {
            Ok(page) => page,
            Err(reason) => {
                metrics::counter!("antibody_event_tail_failures_total").increment(1);
                warn!(%reason, after, "could not read the shared log; trying again");
                return None;
            }
        };
        let read = page.len();
        let (remote, done) = self.publish_tailed(page);
        if let Some(writer) = &self.inner.writer
            && done > 0
        {
            writer.published.send_modify(|published| *published += done);
        }
        if !remote.is_empty() {
            let shared = self.inner.shared.as_ref().expect("only shared logs follow");
            if let Some(hook) = shared.remote.lock().expect("hook lock poisoned").as_ref() {
                remote.iter().for_each(hook);
            }
        }
        Some(read)
    }

    /// Publishes a page read from the tail, in order, under the log's lock;
    /// returns another instance's events (for the engine) and how many
    /// appended messages of this instance's are now published.
    fn publish_tailed(&self, page: Vec<Tailed>) -> (Vec<Envelope>, u64) {
        let delay = metrics::histogram!("antibody_event_tail_delay_seconds");
        let mut remote = Vec::new();
        let mut state = self.lock();
        for Tailed { envelope, local } in page {
            if envelope.seq <= state.last_seq {
                continue;
            }
            if envelope.seq != state.last_seq + 1 {
                // Commit order is seq order (the head row's lock is held to
                // the commit), so a hole is never transient: a seq was
                // taken without its event. Showing it would leave every
                // dashboard a gap no resume can fill.
                let reason = format!(
                    "the shared log holds seq {} where {} was next: a seq was taken without its event; \
                     publishing stopped rather than show a gap",
                    envelope.seq,
                    state.last_seq + 1
                );
                error!("{reason}");
                if let Some(writer) = &self.inner.writer {
                    writer.halt_with(reason);
                }
                break;
            }
            delay.record(
                (chrono::Utc::now() - envelope.ts)
                    .to_std()
                    .unwrap_or_default()
                    .as_secs_f64(),
            );
            if !local {
                remote.push(envelope.clone());
            }
            self.publish(&mut state, envelope);
        }
        let mut done = 0;
        while let Some((last, _)) = state.stored.front() {
            if *last > state.last_seq {
                break;
            }
            let (_, appended_at) = state.stored.pop_front().expect("just seen");
            done += appended_at.len() as u64;
            record_broadcast_delay(&appended_at);
        }
        (remote, done)
    }

    /// Shared mode: a batch of messages appended at `appended_at` was
    /// stored as `stored` says; they count as published once the tail
    /// passes them.
    pub(super) fn stored_here(&self, writer: &Writer, stored: &Stored, appended_at: Vec<tokio::time::Instant>) {
        let shared = self.inner.shared.as_ref().expect("only shared logs tail");
        let count = appended_at.len();
        let accepted = (count - stored.refused.len()) as u64;
        let done = {
            let mut state = self.lock();
            let last = stored.first + accepted - 1;
            if accepted == 0 || last <= state.last_seq {
                record_broadcast_delay(&appended_at);
                count as u64
            } else {
                state.stored.push_back((last, appended_at));
                0
            }
        };
        if done > 0 {
            writer.published.send_modify(|published| *published += done);
        }
        shared.wake.notify_one();
    }
}

/// How long each message waited from its append to its broadcast.
fn record_broadcast_delay(appended_at: &[tokio::time::Instant]) {
    let delay = metrics::histogram!("antibody_event_broadcast_delay_seconds");
    for at in appended_at {
        delay.record(at.elapsed().as_secs_f64());
    }
}

/// Says which events of `batch` their fence refused: the writer lost the
/// lease (it paused, and another instance took over).
pub(super) fn report_refused(batch: &[Unsequenced], stored: &Stored) {
    for &index in &stored.refused {
        let event = &batch[index];
        metrics::counter!("antibody_event_store_fenced_total").increment(1);
        warn!(
            kind = event.message.kind(),
            incident = ?event.message.incident_id(),
            fence = ?event.fence,
            "the store refused an event: this instance no longer holds its lease"
        );
    }
}
