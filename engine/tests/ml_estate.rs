//! Seed 003's four ML playbooks end to end under paused time, with the
//! default policy and a person on call: detect (the seed's monitor) →
//! propose → policy → approve (when asked) → execute → verify → record →
//! learn. And safe mode's own exit, published once the spike is over.

use std::{sync::Arc, time::Duration};

use engine::{
    Engine, EngineConfig,
    governance::{HumanDecision, Policy},
    protocol::{ActionDetails, IncidentStatus, PolicyVerdict, ServerMessage},
};

fn engine(seed: u64) -> Engine {
    let engine = Engine::new(EngineConfig {
        seed: Some(seed),
        policy: Arc::new(Policy::builtin("default").unwrap()),
        ..EngineConfig::default()
    })
    .unwrap();
    engine.start_health_reports();
    engine
}

/// Everything one incident published, until it closed; approves whatever
/// waits for a person, as the on-call engineer would.
async fn run_to_close(engine: &Engine, scenario: &str) -> Vec<ServerMessage> {
    let mut live = engine.feed(None).live;
    let id = engine.trigger_scenario(scenario, None).unwrap().id;
    let mut seen = Vec::new();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(3_600), live.recv())
            .await
            .expect("the incident closes within a simulated hour")
            .unwrap();
        if let ServerMessage::ApprovalRequested { approval } = &event.message
            && approval.incident_id == id
        {
            engine
                .approvals()
                .decide(
                    approval.approval_id,
                    HumanDecision {
                        approve: true,
                        approver: "on-call".into(),
                        comment: None,
                        at: chrono::Utc::now(),
                    },
                )
                .unwrap();
        }
        let closed = matches!(&event.message,
            ServerMessage::IncidentStatus { incident_id, status, .. } if *incident_id == id && status.is_terminal());
        seen.push(event.message.clone());
        if closed {
            return seen;
        }
    }
}

#[tokio::test(start_paused = true)]
async fn each_ml_playbook_runs_end_to_end_within_the_seeds_mttr_target() {
    // (scenario, the seed's monitor, the action, MTTR target in seconds)
    let cases = [
        ("latency_slo_breach", "Latency SLO breach", "enable_safe_mode", 60.0),
        ("model_accuracy_drop", "Performance drop", "rollback_model", 120.0),
        ("data_drift", "Data drift", "trigger_retraining", 300.0),
        ("agent_heartbeat_loss", "Agent down", "restart_agent", 60.0),
    ];
    for (n, (scenario, monitor, action, target)) in cases.into_iter().enumerate() {
        let engine = engine(40 + n as u64);
        let events = run_to_close(&engine, scenario).await;
        let lines: Vec<String> = events
            .iter()
            .filter_map(|m| match m {
                ServerMessage::AgentAction { action, .. } if action.duration_ms.is_some() => {
                    Some(format!("{}: {}", action.agent_type.as_str(), action.description))
                }
                _ => None,
            })
            .collect();
        let found = |matches: &dyn Fn(&ActionDetails) -> bool| {
            events
                .iter()
                .any(|m| matches!(m, ServerMessage::AgentAction { action, .. } if matches(&action.details)))
        };
        assert!(
            found(
                &|d| matches!(d, ActionDetails::Detection(d) if d.monitor_breaches.iter().any(|b| b.monitor == monitor))
            ),
            "{scenario}: the monitor fired\n{lines:#?}"
        );
        let decision = events
            .iter()
            .find_map(|m| match m {
                ServerMessage::PolicyDecision { decision, .. } => Some(decision.clone()),
                _ => None,
            })
            .expect("policy decided");
        assert!(
            decision.input.actions.iter().any(|a| a == action),
            "{scenario}: {decision:?}"
        );
        if action == "trigger_retraining" {
            assert_eq!(decision.verdict, PolicyVerdict::Human, "retraining needs a person");
            assert!(
                events
                    .iter()
                    .any(|m| matches!(m, ServerMessage::ApprovalDecided { .. }))
            );
        }
        assert!(
            events.iter().any(|m| matches!(m, ServerMessage::ConfigChange { .. })),
            "{scenario}: executed"
        );
        assert!(
            found(&|d| matches!(d, ActionDetails::Verification(v) if v.verified == Some(true))),
            "{scenario}\n{lines:#?}"
        );
        let (status, seconds) = events
            .iter()
            .find_map(|m| match m {
                ServerMessage::IncidentStatus {
                    status,
                    resolution_time: Some(s),
                    ..
                } => Some((*status, *s)),
                _ => None,
            })
            .unwrap();
        assert_eq!(status, IncidentStatus::Resolved, "{scenario}\n{lines:#?}");
        println!("{scenario}: {seconds:.1} s (target < {target} s)");
        assert!(
            seconds < target,
            "{scenario}: MTTR {seconds} s against the seed's {target} s"
        );
        assert!(
            events.iter().any(|m| matches!(m, ServerMessage::MemoryRecorded { .. })),
            "{scenario}: learned"
        );
        assert_eq!(engine.memory().len(), 1);
        engine.shutdown(Duration::from_secs(1)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn the_model_leaves_safe_mode_by_itself_once_the_spike_is_over_and_says_so() {
    let engine = engine(7);
    let mut live = engine.feed(None).live;
    run_to_close(&engine, "latency_slo_breach").await;
    let exit = loop {
        let event = tokio::time::timeout(Duration::from_secs(600), live.recv())
            .await
            .expect("safe mode is left within the spike's 90 s and the probe's 10")
            .unwrap();
        if let ServerMessage::ConfigChange { incident_id, change } = &event.message
            && change.key == "safe_mode"
            && change.to == "false"
        {
            break (*incident_id, change.clone());
        }
    };
    assert_eq!(exit.0, None, "the estate's own change, not an incident's");
    assert_eq!(exit.1.service, "ml-model-service");
    assert!(exit.1.cause.contains("root cause gone"), "{}", exit.1.cause);
    assert_eq!(
        engine.with_twin(|e| e.service_named("ml-model-service").unwrap().config.safe_mode),
        Some(false)
    );
    engine.shutdown(Duration::from_secs(1)).await;
}
