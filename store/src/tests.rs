//! The store's suite, run on both backends: a real SQLite file, and a real
//! PostgreSQL database when `ANTIBODY_TEST_POSTGRES_URL` names a server
//! (`cargo xtask test` starts a throwaway one). Without it the PostgreSQL
//! half is skipped with a warning, unless `ANTIBODY_REQUIRE_POSTGRES` is
//! set, when it fails.

use chrono::Utc;
use engine::{
    journal::{Journal, Unsequenced},
    protocol::{
        ActionDetails, ActionKind, ConsensusRound, ConsensusVote, Incident, IncidentStatus, PerformanceMetrics,
        Rollback, SafetyChecks, ServerMessage, Severity, Step, VoteChoice,
    },
};
use uuid::Uuid;

use crate::{IncidentFilter, Store, sqlite_path};

/// A fresh, empty database, and what keeps it alive.
struct Db {
    url: String,
    _dir: Option<tempfile::TempDir>,
}

impl Db {
    fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self {
            url: format!("sqlite://{}/nested/antibody.db", dir.path().display()),
            _dir: Some(dir),
        }
    }

    /// A new database on the test server, or `None` (loudly) without one.
    async fn postgres() -> Option<Self> {
        let Ok(admin) = std::env::var("ANTIBODY_TEST_POSTGRES_URL") else {
            assert!(
                std::env::var_os("ANTIBODY_REQUIRE_POSTGRES").is_none(),
                "ANTIBODY_REQUIRE_POSTGRES is set but ANTIBODY_TEST_POSTGRES_URL is not"
            );
            eprintln!("!!! SKIPPED on PostgreSQL: set ANTIBODY_TEST_POSTGRES_URL (cargo xtask test does)");
            return None;
        };
        sqlx::any::install_default_drivers();
        let name = format!("antibody_test_{}", Uuid::new_v4().simple());
        let pool = sqlx::AnyPool::connect(&admin)
            .await
            .expect("the test PostgreSQL answers");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        let base = admin.rsplit_once('/').expect("the URL names a database").0;
        Some(Self {
            url: format!("{base}/{name}"),
            _dir: None,
        })
    }

    async fn open(&self) -> Store {
        Store::connect(&self.url).await.expect("a fresh store opens")
    }
}

/// Runs each named suite function on SQLite and on PostgreSQL.
macro_rules! on_both_backends {
    ($($suite:ident),* $(,)?) => {$(
        mod $suite {
            #[tokio::test]
            async fn sqlite() {
                super::$suite(super::Db::sqlite()).await;
            }

            #[tokio::test]
            async fn postgres() {
                if let Some(db) = super::Db::postgres().await {
                    super::$suite(db).await;
                }
            }
        }
    )*};
}

on_both_backends!(
    seqs_are_consecutive_across_batches_and_events_round_trip,
    a_large_batch_is_stored_whole,
    incidents_and_totals_are_projected_from_events,
    a_reopened_store_recovers_where_it_left_off,
    concurrent_writers_never_share_a_seq,
    the_audit_log_is_projected_from_governance_events,
    the_incident_memory_is_projected_bounded_and_cleared,
    analytics_are_computed_from_a_seeded_store,
    a_figure_missing_once_is_stored_when_present_later,
);

fn incident(n: u128, scenario: &str, severity: Severity) -> Incident {
    Incident {
        id: Uuid::from_u128(n),
        title: format!("incident {n}"),
        severity,
        affected_services: vec!["api-gateway".into(), "order-service".into()],
        scenario_id: Some(scenario.into()),
        status: IncidentStatus::Active,
        created_at: Utc::now(),
        finished_at: None,
        resolution_time: None,
        cost_savings: None,
        root_cause: None,
        report: None,
    }
}

fn event(message: ServerMessage) -> Unsequenced {
    Unsequenced::now(message)
}

fn created(n: u128, scenario: &str, severity: Severity) -> Unsequenced {
    event(ServerMessage::IncidentCreated {
        incident: incident(n, scenario, severity),
    })
}

fn closed(n: u128, status: IncidentStatus, seconds: f64, savings: Option<f64>) -> Unsequenced {
    event(ServerMessage::IncidentStatus {
        incident_id: Uuid::from_u128(n),
        status,
        resolution_time: Some(seconds),
        cost_savings: savings,
        root_cause: Some("connection pool exhaustion on postgres-primary".into()),
        report: Some("# Report".into()),
        time_to_detect: Some(2.0),
        time_to_diagnose: Some(5.0),
    })
}

fn metrics() -> Unsequenced {
    event(ServerMessage::PerformanceMetrics {
        metrics: PerformanceMetrics::default(),
    })
}

#[test]
fn sqlite_urls_name_their_file() {
    assert_eq!(sqlite_path("sqlite://data/antibody.db"), Some("data/antibody.db"));
    assert_eq!(sqlite_path("sqlite:///tmp/a.db?mode=rwc"), Some("/tmp/a.db"));
    assert_eq!(sqlite_path("sqlite::memory:"), None);
    assert!(
        crate::Backend::of("mysql://x")
            .unwrap_err()
            .to_string()
            .contains("ANTIBODY_DATABASE_URL")
    );
}

async fn seqs_are_consecutive_across_batches_and_events_round_trip(db: Db) {
    let store = db.open().await;
    assert_eq!(store.append(&[metrics(), metrics()]).await.unwrap().first, 1);
    assert_eq!(
        store
            .append(&[created(1, "api_slowdown", Severity::High)])
            .await
            .unwrap()
            .first,
        3
    );
    let page = store.events_since(0, 10).await.unwrap();
    assert_eq!(page.last_seq, 3);
    assert_eq!(page.events.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(
        matches!(&page.events[2].message, ServerMessage::IncidentCreated { incident } if incident.id == Uuid::from_u128(1))
    );
    assert_eq!(store.events_since(2, 10).await.unwrap().events.len(), 1);
    assert_eq!(
        store.events_since(0, 2).await.unwrap().events.len(),
        2,
        "the limit holds"
    );
}

async fn a_large_batch_is_stored_whole(db: Db) {
    let store = db.open().await;
    let batch: Vec<_> = (0..2_500).map(|_| metrics()).collect();
    assert_eq!(store.append(&batch).await.unwrap().first, 1);
    assert_eq!(store.head().await.unwrap().1, 2_500);
    let tail = store.events_since(2_490, 100).await.unwrap().events;
    assert_eq!(
        tail.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (2_491..=2_500).collect::<Vec<_>>()
    );
}

async fn incidents_and_totals_are_projected_from_events(db: Db) {
    let store = db.open().await;
    let round = ConsensusRound {
        plan: "scale the pool".into(),
        voters: 5,
        tolerated: 1,
        quorum: 3,
        approvals: 1,
        rejections: 0,
        silent: 0,
        passed: false,
        dissent: vec![],
        votes: vec![ConsensusVote {
            agent: engine::protocol::AgentType::Diagnosis,
            choice: VoteChoice::Approve,
            reason: "pool at 100%".into(),
            injected_fault: None,
        }],
    };
    store
        .append(&[
            created(1, "database_cascade", Severity::Critical),
            created(2, "database_cascade", Severity::High),
            created(3, "api_slowdown", Severity::Low),
            event(ServerMessage::Consensus {
                incident_id: Uuid::from_u128(1),
                round,
            }),
            closed(1, IncidentStatus::Resolved, 18.0, Some(1_000.0)),
            closed(2, IncidentStatus::Resolved, 12.0, Some(500.0)),
            closed(3, IncidentStatus::Failed, 90.0, None),
        ])
        .await
        .unwrap();
    let totals = store.totals().await.unwrap();
    assert_eq!((totals.resolved, totals.failed), (2, 1));
    assert_eq!(totals.total_mttr, 30.0);
    assert_eq!(totals.total_savings, 1_500.0);
    assert_eq!(totals.by_scenario["database_cascade"], (2, 30.0));
    assert_eq!(totals.phase_samples, 3);
    let metrics = totals.metrics(0);
    assert_eq!(metrics.avg_mttr, 15.0);
    assert!((metrics.success_rate - 2.0 / 3.0).abs() < 1e-9);

    let detail = store.incident(Uuid::from_u128(1)).await.unwrap().unwrap();
    assert_eq!(detail.incident.status, IncidentStatus::Resolved);
    assert_eq!(detail.incident.report.as_deref(), Some("# Report"));
    assert!(detail.incident.finished_at.is_some());
    assert_eq!(detail.timeline.len(), 3, "created, the vote, the status");
    assert_eq!(detail.votes.len(), 1);
    assert!(store.incident(Uuid::from_u128(9)).await.unwrap().is_none());

    let filter = |status, severity, scenario: Option<&str>, limit, offset| IncidentFilter {
        status,
        severity,
        scenario: scenario.map(str::to_owned),
        limit,
        offset,
    };
    let all = store.incidents(&filter(None, None, None, 2, 0)).await.unwrap();
    assert_eq!(all.total, 3);
    assert_eq!(
        all.items.iter().map(|i| i.id.as_u128()).collect::<Vec<_>>(),
        [3, 2],
        "newest first"
    );
    let rest = store.incidents(&filter(None, None, None, 2, 2)).await.unwrap();
    assert_eq!(rest.items.iter().map(|i| i.id.as_u128()).collect::<Vec<_>>(), [1]);
    let resolved = store
        .incidents(&filter(
            Some(IncidentStatus::Resolved),
            None,
            Some("database_cascade"),
            10,
            0,
        ))
        .await
        .unwrap();
    assert_eq!(resolved.total, 2);
    let critical = store
        .incidents(&filter(None, Some(Severity::Critical), None, 10, 0))
        .await
        .unwrap();
    assert_eq!(critical.items.iter().map(|i| i.id.as_u128()).collect::<Vec<_>>(), [1]);
}

/// sqlx 0.8.6's `Any` driver binds a missing `f64` as a PostgreSQL `real`;
/// a statement first prepared that way then refused every present `f64`
/// on the same connection ("incorrect binary data format"), and the event
/// writer retried that batch forever.
async fn a_figure_missing_once_is_stored_when_present_later(db: Db) {
    let store = db.open().await;
    // The pool hands its connections out in turn: with eight of each, every
    // connection prepares the update with the figure missing first.
    const EACH: u128 = 8;
    for n in 0..EACH {
        store
            .append(&[
                created(n, "database_cascade", Severity::High),
                closed(n, IncidentStatus::Failed, 40.0, None),
            ])
            .await
            .unwrap();
    }
    for n in EACH..2 * EACH {
        store
            .append(&[
                created(n, "database_cascade", Severity::High),
                closed(n, IncidentStatus::Resolved, 12.0, Some(750.0)),
            ])
            .await
            .unwrap();
    }
    let totals = store.totals().await.unwrap();
    assert_eq!((totals.resolved, totals.failed), (8, 8));
    assert_eq!(totals.total_savings, 8.0 * 750.0);
    let resolved = store.incident(Uuid::from_u128(EACH)).await.unwrap().unwrap();
    assert_eq!(resolved.incident.cost_savings, Some(750.0));
    let failed = store.incident(Uuid::from_u128(0)).await.unwrap().unwrap();
    assert_eq!(failed.incident.cost_savings, None);
}

async fn a_reopened_store_recovers_where_it_left_off(db: Db) {
    let epoch = {
        let store = db.open().await;
        store
            .append(&[
                created(1, "service_down", Severity::Critical),
                created(2, "api_slowdown", Severity::Medium),
                closed(1, IncidentStatus::Resolved, 15.0, Some(100.0)),
            ])
            .await
            .unwrap();
        let epoch = store.head().await.unwrap().0;
        store.close().await;
        epoch
    };
    let store = db.open().await;
    let recovered = store.recover(2, 50, 100).await.unwrap();
    assert_eq!(recovered.epoch, epoch, "the epoch survives a restart");
    assert_eq!(recovered.last_seq, 3);
    assert_eq!(recovered.tail.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 3]);
    assert_eq!(recovered.incidents.len(), 2);
    assert_eq!(
        recovered.unfinished.iter().map(|i| i.id.as_u128()).collect::<Vec<_>>(),
        [2],
        "the incident left active is found"
    );
    assert_eq!(recovered.totals.resolved, 1);
    assert_eq!(store.append(&[metrics()]).await.unwrap().first, 4, "seq continues");
}

#[tokio::test]
async fn an_in_memory_store_keeps_its_one_database() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    store.append(&[metrics()]).await.unwrap();
    store.ping().await.unwrap();
    assert_eq!(store.events_since(0, 10).await.unwrap().events.len(), 1);
    assert_eq!(store.append(&[metrics()]).await.unwrap().first, 2);
}

#[tokio::test]
async fn a_sqlite_file_commits_as_durably_as_asked() {
    let dir = tempfile::tempdir().unwrap();
    for (sync, pragma) in [(crate::SqliteSync::Full, 2), (crate::SqliteSync::Normal, 1)] {
        let url = format!("sqlite://{}/{pragma}.db", dir.path().display());
        let store = Store::connect_with(&url, sync).await.unwrap();
        // Every pooled connection is set up alike: check several at once.
        let mut held = Vec::new();
        for _ in 0..3 {
            let mut connection = store.pool.acquire().await.unwrap();
            let (synchronous,): (i32,) = sqlx::query_as("PRAGMA synchronous")
                .fetch_one(&mut *connection)
                .await
                .unwrap();
            let (journal,): (String,) = sqlx::query_as("PRAGMA journal_mode")
                .fetch_one(&mut *connection)
                .await
                .unwrap();
            assert_eq!((synchronous, journal.as_str()), (pragma, "wal"), "{sync:?}");
            held.push(connection);
        }
        drop(held);
        store.close().await;
    }
}

/// Two writers on one database (two server instances sharing a store):
/// every event gets its own `seq`, and together they leave no gap.
async fn concurrent_writers_never_share_a_seq(db: Db) {
    let (a, b) = (db.open().await, db.open().await);
    let write = |store: Store| async move {
        let mut firsts = Vec::new();
        for _ in 0..20 {
            firsts.push(store.append(&[metrics(), metrics(), metrics()]).await.unwrap().first);
        }
        firsts
    };
    let (from_a, from_b) = tokio::join!(write(a.clone()), write(b));
    let mut starts: Vec<u64> = from_a.into_iter().chain(from_b).collect();
    starts.sort_unstable();
    assert_eq!(
        starts,
        (0..40).map(|i| 1 + 3 * i).collect::<Vec<u64>>(),
        "batches interleave whole"
    );
    let all = a.events_since(0, 1_000).await.unwrap();
    assert_eq!(all.events.len(), 120);
    assert_eq!(all.last_seq, 120);
}

fn approval(n: u128, level: u32, state: engine::protocol::ApprovalState) -> engine::protocol::Approval {
    use engine::protocol::{Approval, ApprovalOption, PolicyVerdict};
    Approval {
        approval_id: Uuid::from_u128(1_000 + n),
        incident_id: Uuid::from_u128(n),
        incident_title: format!("incident {n}"),
        severity: Severity::Critical,
        proposal: ApprovalOption {
            hypothesis: "connection-pool exhaustion on postgres-primary".into(),
            plan: "scale the pool".into(),
            steps: vec!["Scale connection pool on postgres-primary".into()],
            success_probability: 0.48,
            estimate_seconds: 5.2,
            requests: Vec::new(),
        },
        alternatives: vec![],
        evidence: vec!["postgres-primary pool_usage +191.8σ from baseline".into()],
        rule: "wide".into(),
        reason: "wide and critical".into(),
        approver: ["on-call SRE", "incident commander"][level as usize].into(),
        level,
        escalation: vec!["on-call SRE".into(), "incident commander".into()],
        timeout_seconds: 60.0,
        expires_at: Utc::now(),
        on_timeout: PolicyVerdict::Deny,
        requested_at: Utc::now(),
        state,
        decided_by: (state != engine::protocol::ApprovalState::Pending).then(|| "alice".into()),
        decided_at: None,
        comment: (state != engine::protocol::ApprovalState::Pending).then(|| "go".into()),
        waited_seconds: None,
        autopilot_at: None,
    }
}

async fn the_audit_log_is_projected_from_governance_events(db: Db) {
    use engine::protocol::{ApprovalState, PolicyDecision, PolicyInput, PolicyStage, PolicyVerdict};
    let store = db.open().await;
    let decision = |stage, stale| {
        event(ServerMessage::PolicyDecision {
            incident_id: Uuid::from_u128(1),
            decision: PolicyDecision {
                stage,
                plan: "scale the pool".into(),
                verdict: PolicyVerdict::Human,
                rule: "wide".into(),
                reason: "wide and critical".into(),
                revision: "r1".into(),
                input: PolicyInput {
                    actions: vec!["scale_connection_pool".into()],
                    irreversible: false,
                    severity: Severity::Critical,
                    blast_radius: 6,
                    confidence: 0.48,
                },
                approval_id: None,
                stale,
            },
        })
    };
    store
        .append_batch(&[
            created(1, "database_cascade", Severity::Critical),
            created(2, "service_down", Severity::High),
            decision(PolicyStage::Proposal, false),
            event(ServerMessage::ApprovalRequested {
                approval: approval(1, 0, ApprovalState::Pending),
            }),
            event(ServerMessage::ApprovalRequested {
                approval: approval(1, 1, ApprovalState::Pending),
            }),
            event(ServerMessage::ApprovalDecided {
                approval: approval(1, 1, ApprovalState::Approved),
            }),
            decision(PolicyStage::PreExecution, true),
            metrics(),
        ])
        .await
        .unwrap();

    let all = store
        .audit_log(&crate::AuditFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let rows: Vec<(u64, &str, &str, &str)> = all
        .iter()
        .map(|e| (e.seq, e.kind.as_str(), e.actor.as_str(), e.decision.as_str()))
        .collect();
    assert_eq!(
        rows,
        vec![
            (7, "policy_decision", "policy:wide", "stale"),
            (6, "approval_decided", "alice", "approved"),
            (5, "approval_escalated", "policy (timeout)", "pending"),
            (4, "approval_requested", "policy:wide", "pending"),
            (3, "policy_decision", "policy:wide", "human"),
        ]
    );
    assert_eq!(
        all[3].evidence["evidence"][0],
        "postgres-primary pool_usage +191.8σ from baseline"
    );
    assert_eq!(all[4].evidence["input"]["blast_radius"], 6);
    assert!(
        all[2]
            .reason
            .contains("no answer from on-call SRE in 60s; asking incident commander")
    );

    let by_approval = store
        .audit_log(&crate::AuditFilter {
            approval_id: Some(Uuid::from_u128(1_001)),
            before_seq: Some(6),
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_approval.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![5]);
    let other = store
        .audit_log(&crate::AuditFilter {
            incident_id: Some(Uuid::from_u128(2)),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(other.is_empty());
    let detail = store.incident(Uuid::from_u128(1)).await.unwrap().unwrap();
    assert_eq!(
        detail.audit.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![3, 4, 5, 6, 7]
    );
}

fn remembered(n: u128, evicted: &[u128]) -> Unsequenced {
    use engine::protocol::{FixOutcome, FixRecord, MemoryEntry, SignatureFeature};
    event(ServerMessage::MemoryRecorded {
        entry: MemoryEntry {
            incident_id: Uuid::from_u128(n),
            recorded_at: Utc::now(),
            scenario_id: Some("cache_failure".into()),
            features: vec![SignatureFeature {
                service: "redis-cache".into(),
                metric: "error_rate".into(),
                sigma: 9.5,
            }],
            fixes: vec![FixRecord {
                service: "redis-cache".into(),
                fault: "cache_failure".into(),
                playbook: "Cache failure".into(),
                actions: vec!["restart_service".into()],
                outcome: if n.is_multiple_of(2) {
                    FixOutcome::Failed
                } else {
                    FixOutcome::Healed
                },
            }],
            resolution_seconds: 10.0 + n as f64,
        },
        evicted: evicted.iter().map(|id| Uuid::from_u128(*id)).collect(),
    })
}

async fn the_incident_memory_is_projected_bounded_and_cleared(db: Db) {
    let store = db.open().await;
    store
        .append(&[remembered(1, &[]), remembered(2, &[]), remembered(3, &[1])])
        .await
        .unwrap();
    let ids = |entries: Vec<engine::protocol::MemoryEntry>| {
        entries.iter().map(|e| e.incident_id.as_u128()).collect::<Vec<_>>()
    };
    assert_eq!(
        ids(store.memory(10).await.unwrap()),
        [2, 3],
        "oldest first, the evicted one gone"
    );
    assert_eq!(ids(store.memory(1).await.unwrap()), [3], "the newest within the limit");
    let entry = &store.memory(10).await.unwrap()[1];
    assert_eq!(entry.fixes[0].actions, ["restart_service"]);
    assert_eq!(entry.resolution_seconds, 13.0);
    store.close().await;

    let store = db.open().await;
    assert_eq!(
        ids(store.recover(10, 10, 10).await.unwrap().memory),
        [2, 3],
        "memory survives a restart"
    );
    store
        .append(&[event(ServerMessage::MemoryCleared {
            removed: 2,
            by: "api".into(),
        })])
        .await
        .unwrap();
    assert!(store.memory(10).await.unwrap().is_empty());
    store.append(&[remembered(4, &[])]).await.unwrap();
    assert_eq!(
        ids(store.memory(10).await.unwrap()),
        [4],
        "what comes after a clear is kept"
    );
}

/// A finished step of `of`, applying `action`.
fn step(step: usize, of: usize, action: engine::protocol::ActionKind) -> engine::protocol::ActionDetails {
    engine::protocol::ActionDetails::Step(engine::protocol::Step {
        step,
        of,
        action,
        target: "recommendation-model".into(),
        changes: Vec::new(),
        side_effects: Vec::new(),
        error: None,
        actuation: None,
    })
}

fn resolution(
    n: u128,
    status: engine::protocol::ActionStatus,
    details: engine::protocol::ActionDetails,
) -> Unsequenced {
    event(ServerMessage::AgentAction {
        incident_id: Uuid::from_u128(n),
        action: engine::protocol::AgentAction {
            agent_type: engine::protocol::AgentType::Resolution,
            action_id: Uuid::new_v4(),
            description: "step".into(),
            timestamp: Utc::now(),
            status,
            details,
            duration_ms: Some(100),
            confidence: Some(0.9),
            queries: Vec::new(),
        },
    })
}

fn model_report(p99_ms: f64, rps: f64) -> Unsequenced {
    let service = |name: &str, kind: &str, p99_ms: f64, rps: f64| engine::protocol::ServiceTelemetry {
        name: name.into(),
        kind: kind.into(),
        state: engine::protocol::HealthState::Healthy,
        in_rotation: true,
        owned: true,
        p99_ms,
        error_rate: 0.0,
        rps,
        cpu: 0.3,
        depends_on: Vec::new(),
        breakers: Vec::new(),
    };
    event(ServerMessage::TwinHealth {
        services: vec![
            service("ml-model-service", "model", p99_ms, rps),
            // Not the model: its latency must not count.
            service("api-gateway", "gateway", 5_000.0, 1_000.0),
        ],
    })
}

async fn analytics_are_computed_from_a_seeded_store(db: Db) {
    use engine::protocol::ActionStatus::{Completed, Failed};
    let store = db.open().await;
    let empty = store.analytics().await.unwrap();
    assert_eq!(empty.healing_success_rate, None);
    assert_eq!(empty.false_positive_rate, None);
    assert_eq!(empty.latency_slo_compliance, None);
    store
        .append(&[
            created(1, "data_drift", Severity::High),
            created(2, "data_drift", Severity::High),
            created(3, "latency_slo_breach", Severity::High),
            created(4, "latency_slo_breach", Severity::High),
            created(5, "latency_slo_breach", Severity::High),
            closed(1, IncidentStatus::Resolved, 100.0, None),
            closed(2, IncidentStatus::Resolved, 50.0, None),
            closed(3, IncidentStatus::Resolved, 30.0, None),
            closed(4, IncidentStatus::Failed, 90.0, None),
            closed(5, IncidentStatus::Interrupted, 5.0, None),
            // Incident 4 ran three steps; two were rolled back.
            resolution(4, Completed, step(1, 2, ActionKind::ScaleOut)),
            resolution(4, Completed, step(2, 2, ActionKind::RestartInstances)),
            resolution(
                4,
                Completed,
                ActionDetails::Rollback(Rollback {
                    steps: 2,
                    rolled_back: vec!["restart".into(), "scale out".into()],
                    receipts: Vec::new(),
                }),
            ),
            resolution(4, Completed, step(1, 1, ActionKind::EnableSafeMode)),
            // A failed step changed nothing; safety checks are not steps.
            resolution(
                4,
                Failed,
                match step(1, 1, ActionKind::RollbackModel) {
                    ActionDetails::Step(failed) => ActionDetails::Step(Step {
                        error: Some("no earlier version".into()),
                        ..failed
                    }),
                    _ => unreachable!(),
                },
            ),
            resolution(
                1,
                Completed,
                ActionDetails::SafetyChecks(SafetyChecks { checks: Vec::new() }),
            ),
            resolution(1, Completed, step(1, 1, ActionKind::TriggerRetraining)),
            // 3 of 4 model requests within 300 ms: 300 rps fine, 100 slow.
            model_report(120.0, 300.0),
            model_report(900.0, 100.0),
        ])
        .await
        .unwrap();
    let analytics = store.analytics().await.unwrap();
    assert_eq!((analytics.resolved, analytics.failed, analytics.interrupted), (3, 1, 1));
    assert_eq!(analytics.healing_success_rate, Some(0.75));
    let mttr: Vec<(&str, u64, f64)> = analytics
        .mttr_by_type
        .iter()
        .map(|t| (t.incident_type.as_str(), t.resolved, t.mttr_seconds))
        .collect();
    assert_eq!(mttr, [("data_drift", 2, 75.0), ("latency_slo_breach", 1, 30.0)]);
    assert_eq!((analytics.steps_run, analytics.steps_rolled_back), (4, 2));
    assert_eq!(analytics.false_positive_rate, Some(0.5));
    assert_eq!(analytics.health_reports, 2);
    assert_eq!(analytics.latency_slo_compliance, Some(0.75));
    let recent: Vec<(u128, IncidentStatus)> = analytics
        .recent
        .iter()
        .map(|r| (r.resolution_seconds as u128, r.status))
        .collect();
    assert_eq!(
        recent,
        [
            (100, IncidentStatus::Resolved),
            (50, IncidentStatus::Resolved),
            (30, IncidentStatus::Resolved),
            (90, IncidentStatus::Failed)
        ],
        "oldest first, interrupted left out"
    );
    store.close().await;
    let reopened = db.open().await;
    assert_eq!(
        reopened.analytics().await.unwrap(),
        analytics,
        "the same after a restart"
    );
}

/// A database written by main at cf31d9e (before payloads were typed):
/// nine incidents at speed 40 with agent crashes, a claim wait and a
/// rollback, made by `antibody` from that commit. Its details carry no
/// `kind`; the reader infers it.
const LEGACY_DATABASE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/main-cf31d9e.db");

#[tokio::test]
async fn a_database_written_before_typed_payloads_still_reads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("antibody.db");
    std::fs::copy(LEGACY_DATABASE, &path).unwrap();
    let store = Store::connect(&format!("sqlite://{}", path.display())).await.unwrap();
    let recovered = store.recover(200, 50, 100).await.unwrap();
    assert_eq!(recovered.last_seq, 411);

    // Every event reads, and every action's details have a kind.
    let page = store.events_since(0, 1000).await.unwrap();
    assert_eq!(page.events.len(), 411);
    let mut kinds = std::collections::BTreeMap::<&str, usize>::new();
    for event in &page.events {
        if let ServerMessage::AgentAction { action, .. } = &event.message {
            *kinds.entry(action.details.kind()).or_default() += 1;
        }
    }
    for kind in [
        "started",
        "detection",
        "diagnosis",
        "prediction",
        "vote",
        "safety_checks",
        "step",
        "verification",
        "rollback",
        "claim_wait",
        "crashed",
        "report",
    ] {
        assert!(kinds.contains_key(kind), "no `{kind}` among {kinds:?}");
    }

    // Each incident's page: typed hypotheses, votes, steps with their numbers.
    let incidents = store
        .incidents(&IncidentFilter {
            limit: 50,
            ..IncidentFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(incidents.total, 9);
    let mut votes = 0;
    for incident in &incidents.items {
        let detail = store.incident(incident.id).await.unwrap().unwrap();
        assert_eq!(detail.incident.status, IncidentStatus::Resolved);
        let top = detail.hypotheses.first().expect("a diagnosed incident has hypotheses");
        assert!(!top.root.service.is_empty() && !top.evidence.is_empty(), "{top:?}");
        // (One waited on another's claim on its root, and that fix was its.)
        votes += detail.votes.len();
        let steps: Vec<&Step> = detail
            .actions
            .iter()
            .filter_map(|a| match &a.details {
                ActionDetails::Step(step) => Some(step),
                _ => None,
            })
            .collect();
        assert!(steps.iter().all(|s| (1..=s.of).contains(&s.step)), "{steps:?}");
    }

    assert_eq!(votes, 8);

    // Analytics count the old steps and the one rollback's.
    let analytics = store.analytics().await.unwrap();
    assert_eq!(analytics.steps_run, 11);
    assert!(analytics.steps_rolled_back >= 1, "{analytics:?}");
}

/// Two instances on one PostgreSQL, `a` and `b`, with 1-second leases.
async fn two_instances() -> Option<(Store, Store, Db)> {
    let db = Db::postgres().await?;
    let twin = "the twin at http://twin:9100";
    let a = db
        .open()
        .await
        .join(twin, std::time::Duration::from_secs(1))
        .await
        .unwrap();
    let b = db
        .open()
        .await
        .join(twin, std::time::Duration::from_secs(1))
        .await
        .unwrap();
    Some((a, b, db))
}

fn fenced(message: ServerMessage, fence: engine::journal::Fence) -> Unsequenced {
    Unsequenced {
        fence: Some(fence),
        ..event(message)
    }
}

#[tokio::test]
async fn a_lease_fences_its_subject_s_events_until_another_instance_takes_it_over() {
    use engine::{
        cluster::Coordination,
        journal::{Fence, LeaseKind},
    };
    let Some((a, b, _db)) = two_instances().await else {
        return;
    };
    let subject = Uuid::from_u128(1);
    let opened = a
        .append(&[fenced(
            created(1, "api_slowdown", Severity::High).message,
            Fence::Open {
                subject,
                kind: LeaseKind::Incident,
            },
        )])
        .await
        .unwrap();
    assert!(opened.refused.is_empty());
    let holds = |epoch| Fence::Holds { subject, epoch };
    // The owner writes at its epoch; a wrong epoch is refused alone, and
    // takes no seq.
    let stored = a
        .append(&[
            fenced(metrics().message, holds(1)),
            fenced(metrics().message, holds(7)),
            metrics(),
        ])
        .await
        .unwrap();
    assert_eq!((stored.first, stored.refused), (2, vec![1]));
    assert_eq!(a.head().await.unwrap().1, 3, "a refused event takes no seq");

    // Not expired yet: nobody takes it.
    assert!(b.take_over_expired().await.unwrap().is_empty());
    assert!(a.renew(&[(subject, 1)]).await.unwrap().is_empty(), "renewed, not lost");
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    // An owner never takes its own expired lease over: it renews it.
    assert!(a.take_over_expired().await.unwrap().is_empty());
    let taken = b.take_over_expired().await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!((taken[0].subject, taken[0].epoch), (subject, 2));
    assert_eq!(taken[0].previous_owner, a.instance().unwrap());
    assert!(b.take_over_expired().await.unwrap().is_empty(), "taken once");

    // The old owner's writes are refused from now on; it learns it lost.
    let late = a.append(&[fenced(metrics().message, holds(1))]).await.unwrap();
    assert_eq!(late.refused, vec![0]);
    assert_eq!(a.renew(&[(subject, 1)]).await.unwrap(), vec![(subject, 1)]);
    // The new owner's pass, and its final event releases the lease.
    let end = b
        .append(&[fenced(
            closed(1, IncidentStatus::Interrupted, 1.0, None).message,
            holds(2),
        )])
        .await
        .unwrap();
    assert!(end.refused.is_empty());
    let after = b.append(&[fenced(metrics().message, holds(2))]).await.unwrap();
    assert_eq!(after.refused, vec![0], "released with its final event");

    // Every instance tails the same log, and knows its own events.
    let mine: Vec<bool> = b.tail_after(0, 100).await.unwrap().iter().map(|t| t.local).collect();
    assert_eq!(mine, vec![false, false, false, true]);
}

#[tokio::test]
async fn an_approval_s_decision_is_claimed_once_across_instances() {
    use engine::{cluster::Coordination, protocol::ApprovalState};
    let Some((a, b, _db)) = two_instances().await else {
        return;
    };
    let option = engine::protocol::ApprovalOption {
        hypothesis: "pool exhaustion on postgres-primary".into(),
        plan: "raise the pool".into(),
        steps: vec!["scale_connection_pool on postgres-primary".into()],
        success_probability: 0.5,
        estimate_seconds: 30.0,
        requests: Vec::new(),
    };
    let approval = engine::protocol::Approval {
        approval_id: Uuid::from_u128(9),
        incident_id: Uuid::from_u128(1),
        incident_title: "t".into(),
        severity: Severity::Critical,
        proposal: option,
        alternatives: Vec::new(),
        evidence: Vec::new(),
        rule: "r".into(),
        reason: "r".into(),
        approver: "on-call SRE".into(),
        level: 0,
        escalation: vec!["on-call SRE".into()],
        timeout_seconds: 60.0,
        expires_at: Utc::now(),
        on_timeout: engine::protocol::PolicyVerdict::Deny,
        requested_at: Utc::now(),
        state: ApprovalState::Approved,
        decided_by: Some("bea".into()),
        decided_at: Some(Utc::now()),
        comment: None,
        waited_seconds: None,
        autopilot_at: None,
    };
    let rejected = engine::protocol::Approval {
        state: ApprovalState::Rejected,
        decided_by: Some("cal".into()),
        ..approval.clone()
    };
    let (first, second) = tokio::join!(a.claim_decision(&approval), b.claim_decision(&rejected));
    let (first, second) = (first.unwrap(), second.unwrap());
    assert!(
        first.is_ok() != second.is_ok(),
        "exactly one wins: {first:?} {second:?}"
    );
    let recorded = a.decision(approval.approval_id).await.unwrap().unwrap();
    let loser = first.err().or(second.err()).unwrap();
    assert_eq!(loser, recorded, "the loser is told the winner's decision");
}

#[tokio::test]
async fn a_second_instance_of_the_embedded_twin_is_refused_a_shared_database() {
    let Some(db) = Db::postgres().await else { return };
    use engine::cluster::Coordination;
    let ttl = std::time::Duration::from_secs(1);
    let live = db.open().await.join(crate::EMBEDDED_ESTATE, ttl).await.unwrap();
    // Alive: it keeps its heartbeat fresh, as its engine does.
    let heartbeat = tokio::spawn(async move {
        loop {
            live.renew(&[]).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    });
    let refused = db.open().await.join(crate::EMBEDDED_ESTATE, ttl).await.err().unwrap();
    assert!(refused.to_string().contains("embedded twin"), "{refused}");
    let other = db
        .open()
        .await
        .join("the twin at http://elsewhere", ttl)
        .await
        .err()
        .unwrap();
    assert!(other.to_string().contains("runs the embedded twin"), "{other}");
    // Killed, it stops counting once its heartbeat is a lease time old.
    heartbeat.abort();
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    db.open().await.join(crate::EMBEDDED_ESTATE, ttl).await.unwrap();
}
