//! The log's contract, tested in both modes: `seq` without gaps, backlogs
//! that meet the live stream exactly, and a durable writer that publishes
//! only what the store took, in the store's order.

use std::time::Duration;

use proptest::prelude::*;

use super::{
    writer::{MAX_BATCH, STORE_BACKOFF, batch_limit, jitter_rng},
    *,
};
use crate::{
    journal::Journal,
    protocol::{Incident, PerformanceMetrics},
};

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
    /// How long each transaction takes (paused time), as a disk's sync.
    commit_takes: Duration,
}

impl Journal for FakeJournal {
    fn keep_telemetry<'a>(
        &'a self,
        _telemetry: &'a crate::protocol::IncidentTelemetry,
    ) -> crate::journal::JournalFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }

    fn read_after(&self, _after: u64, _limit: usize) -> crate::journal::JournalFuture<'_, Vec<crate::journal::Tailed>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn append<'a>(&'a self, batch: &'a [Unsequenced]) -> crate::journal::JournalFuture<'a, crate::journal::Stored> {
        Box::pin(async move {
            tokio::time::sleep(self.commit_takes).await;
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
            Ok(crate::journal::Stored::all(first))
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

#[tokio::test(start_paused = true)]
async fn an_idle_writer_commits_at_once_and_batches_only_what_piles_up_meanwhile() {
    let journal = Arc::new(FakeJournal {
        commit_takes: Duration::from_millis(4),
        ..FakeJournal::default()
    });
    let log = durable(journal.clone(), 0);
    let mut live = log.subscribe_since(0).live;
    let appended = tokio::time::Instant::now();
    log.append(message());
    let first = live.recv().await.unwrap();
    assert_eq!(first.seq, 1);
    assert_eq!(
        appended.elapsed(),
        Duration::from_millis(4),
        "no wait for company: the commit alone"
    );

    // Five events while a transaction runs share the next one.
    log.append(message());
    tokio::time::sleep(Duration::from_millis(1)).await;
    for _ in 0..5 {
        log.append(message());
    }
    log.flush().await;
    assert_eq!(*journal.batches.lock().unwrap(), [1, 1, 5]);
    assert_eq!(log.last_seq(), 7);
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
