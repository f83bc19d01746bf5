//! Every kind of details round-trips, and old details read by their keys.

use super::*;
use crate::protocol::{ActionKind, FaultKind};

pub(crate) fn plan() -> Plan {
    Plan {
        root: RootCause {
            service: "postgres-primary".into(),
            fault: FaultKind::ConnectionPoolExhaustion,
        },
        playbook: "Connection pool exhaustion playbook".into(),
        steps: vec![PlannedStep {
            remediation: Remediation {
                kind: ActionKind::ScaleConnectionPool,
                target: "postgres-primary".into(),
            },
            seconds: 2.0,
        }],
        watch: vec!["api-gateway".into()],
    }
}

pub(crate) fn step(error: Option<&str>) -> Step {
    Step {
        step: 1,
        of: 2,
        action: ActionKind::ScaleConnectionPool,
        target: "postgres-primary".into(),
        changes: Vec::new(),
        side_effects: Vec::new(),
        error: error.map(str::to_owned),
        actuation: None,
    }
}

/// One of every kind.
fn samples() -> Vec<ActionDetails> {
    vec![
        ActionDetails::Started(Started {
            task: Some(Task::ScanTelemetry),
            services: Some(17),
        }),
        ActionDetails::Detection(DetectionFindings {
            metrics_analyzed: 180,
            anomalies_detected: 3,
            monitor_breaches: Vec::new(),
            warnings: Vec::new(),
            anomalous_services: vec!["postgres-primary".into()],
            top_anomalies: vec![Anomaly {
                service: "postgres-primary".into(),
                metric: Metric::PoolUsage,
                value: 1.0,
                baseline: 0.4,
                sigma: 14.0,
            }],
            pattern_matched: Some(PatternMatch {
                pattern: "Connection pool exhaustion".into(),
                service: "postgres-primary".into(),
                score: 0.9,
            }),
            recall: Recall::default(),
        }),
        ActionDetails::Diagnosis(Diagnosis {
            blast_radius: vec![Affected {
                service: "postgres-primary".into(),
                health: HealthState::Down,
                root: true,
            }],
            ..Diagnosis::default()
        }),
        ActionDetails::Prediction(Prediction {
            impact_per_minute: 120.0,
            ..Prediction::default()
        }),
        ActionDetails::Readiness(Readiness { ready: true }),
        ActionDetails::StatusPage(StatusPage {
            status_page: "investigating".into(),
            audience: vec!["on_call".into()],
            title: "Pool".into(),
        }),
        ActionDetails::CircuitOpen(CircuitOpen {
            attempt: 2,
            open_for_seconds: 4.5,
        }),
        ActionDetails::Crashed(Crashed { attempt: 1, of: 5 }),
        ActionDetails::Vote(Vote {
            vote_on: plan(),
            tally: None,
        }),
        ActionDetails::SafetyChecks(SafetyChecks { checks: Vec::new() }),
        ActionDetails::Step(step(None)),
        ActionDetails::Verification(Verification {
            watch: vec!["api-gateway".into()],
            window_seconds: 4,
            verified: Some(false),
            outstanding: vec!["api-gateway: p99 812 ms".into()],
            root_recovered: None,
            watched_seconds: Some(30.0),
        }),
        ActionDetails::Rollback(Rollback {
            steps: 1,
            rolled_back: vec!["Scale connection pool on postgres-primary".into()],
            receipts: Vec::new(),
        }),
        ActionDetails::ClaimWait(ClaimWait {
            holder: Uuid::from_u128(9),
            root: "postgres-primary".into(),
        }),
        ActionDetails::Report(Report {
            status_page: "Resolved".into(),
            report_chars: 900,
            webhook: false,
        }),
        ActionDetails::Omitted(Omitted { of: "vote".into() }),
    ]
}

#[test]
fn every_kind_is_tagged_first_and_reads_back_in_any_key_order() {
    for details in samples() {
        let text = serde_json::to_string(&details).unwrap();
        assert!(
            text.starts_with(&format!("{{\"kind\":\"{}\"", details.kind())),
            "{text}"
        );
        let streamed: ActionDetails = serde_json::from_str(&text).unwrap();
        assert_eq!(streamed, details, "{text}");
        // A Value sorts its keys: `kind` may come after the payload's.
        let sorted: ActionDetails = serde_json::from_value(serde_json::to_value(&details).unwrap()).unwrap();
        assert_eq!(sorted, details);
    }
}

#[test]
fn an_unknown_kind_is_refused_by_name() {
    let error = serde_json::from_str::<ActionDetails>(r#"{"kind":"teleport","to":"mars"}"#).unwrap_err();
    assert!(
        error.to_string().contains("unknown action details kind `teleport`"),
        "{error}"
    );
}

#[test]
fn details_written_before_kinds_read_by_their_keys() {
    let read = |json: serde_json::Value| serde_json::from_value::<ActionDetails>(json).unwrap();
    let started = read(serde_json::json!({}));
    assert_eq!(started.kind(), "started");
    let ActionDetails::Step(step) = read(serde_json::json!({
        "step": 1, "of": 2, "action": "scale_connection_pool", "target": "postgres-primary",
        "changes": [{"tick": 612, "service": "postgres-primary", "key": "pool_size", "from": "50", "to": "100", "cause": "scale_connection_pool"}],
        "side_effects": [],
    })) else {
        panic!("a step");
    };
    assert_eq!((step.step, step.of, step.changes[0].to.as_str()), (1, 2, "100"));
    let ActionDetails::Vote(vote) = read(serde_json::json!({
        "vote_on": serde_json::to_value(plan()).unwrap(), "approvals": 5, "quorum": 4, "passed": true,
    })) else {
        panic!("a vote");
    };
    assert_eq!(vote.vote_on, plan());
    for (keys, kind) in [
        (&["attempt", "of"][..], "crashed"),
        (&["attempt", "circuit"], "circuit_open"),
        (&["holder", "root"], "claim_wait"),
        (&["outstanding", "verified", "watch"], "verification"),
        (&["rolled_back"], "rollback"),
        (&["report_chars", "status_page", "webhook"], "report"),
        (&["audience", "status_page"], "status_page"),
        (&["blast_radius", "hypotheses", "skipped"], "diagnosis"),
        (&["breaches", "cascade", "impact_per_minute", "losses"], "prediction"),
    ] {
        assert_eq!(legacy_kind(keys), Some(kind), "{keys:?}");
    }
    assert_eq!(legacy_kind(&["nonsense"]), None);
}

#[test]
fn each_of_several_causes_is_verified_on_what_it_alone_explains() {
    let root = |service: &str, fault| RootCause {
        service: service.into(),
        fault,
    };
    let crash = root("payment-service", FaultKind::CrashLoop);
    let surge = root("user-service", FaultKind::CpuSaturation);
    let cause = |root: &RootCause, explains: &[&str]| Cause {
        root: root.clone(),
        impact: 1.0,
        explains: explains.iter().map(|s| (*s).to_owned()).collect(),
    };
    let mut diagnosis = Diagnosis {
        causes: vec![cause(&crash, &["payment-service", "order-service", "api-gateway"])],
        ..Diagnosis::default()
    };
    assert_eq!(
        diagnosis.watched_for_cause(&crash),
        None,
        "one cause: the whole watch list"
    );
    diagnosis.causes.push(cause(&surge, &["user-service", "api-gateway"]));
    assert_eq!(
        diagnosis.watched_for_cause(&crash).unwrap(),
        ["payment-service", "order-service"],
        "the gateway both reach proves neither"
    );
    assert_eq!(diagnosis.watched_for_cause(&surge).unwrap(), ["user-service"]);
    assert_eq!(
        diagnosis.watched_for_cause(&root("redis-cache", FaultKind::CacheFailure)),
        None
    );
    let left: Vec<&RootCause> = diagnosis
        .causes_left(std::slice::from_ref(&crash))
        .map(|c| &c.root)
        .collect();
    assert_eq!(left, [&surge]);
}
