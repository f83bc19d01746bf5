//! The engine end to end on the simulated estate, in paused time.

use super::*;
use tokio::sync::broadcast;

use crate::{
    event_log::Published,
    protocol::{ActionDetails, ActionKind, ActionStatus, AgentType, Envelope, FaultKind, Verification},
};

fn engine(seed: u64) -> Engine {
    Engine::new(EngineConfig {
        seed: Some(seed),
        ..EngineConfig::default()
    })
    .unwrap()
}

/// Receives live events until `stop` matches one (inclusive).
async fn collect_until(
    live: &mut broadcast::Receiver<Arc<Published>>,
    stop: impl Fn(&ServerMessage) -> bool,
) -> Vec<Arc<Published>> {
    let mut events = Vec::new();
    loop {
        let event = live.recv().await.expect("the log outlives the test");
        let done = stop(&event.message);
        events.push(event);
        if done {
            return events;
        }
    }
}

/// The metrics published once no incident is active any more.
fn is_settled(m: &ServerMessage) -> bool {
    matches!(m, ServerMessage::PerformanceMetrics { metrics } if metrics.incidents_active == 0)
}

#[tokio::test(start_paused = true)]
async fn an_incident_passes_every_agent_in_order_then_resolves() {
    let engine = engine(7);
    let Feed { start, mut live } = engine.feed(None);
    assert!(matches!(start, FeedStart::Snapshot(ref s) if s.last_seq == 0));
    let incident = engine.trigger_scenario("database_cascade", None).unwrap();
    let events = collect_until(&mut live, is_settled).await;

    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "gap-free");
    assert!(matches!(&events[0].message, ServerMessage::IncidentCreated { incident: i } if i.id == incident.id));
    assert!(
        matches!(&events[1].message, ServerMessage::PerformanceMetrics { metrics } if metrics.incidents_active == 1)
    );

    let actions: Vec<(AgentType, ActionStatus, ActionDetails)> = events
        .iter()
        .filter_map(|e| match &e.message {
            ServerMessage::AgentAction { action, .. } => {
                Some((action.agent_type, action.status, action.details.clone()))
            }
            _ => None,
        })
        .collect();
    // Every action starts, then completes, before the next one starts.
    for pair in actions.chunks(2) {
        assert_eq!(
            (pair[0].0, pair[0].1),
            (pair[1].0, ActionStatus::InProgress),
            "{pair:?}"
        );
        assert_eq!(pair[1].1, ActionStatus::Completed, "{pair:?}");
    }
    let agents: Vec<AgentType> = actions.iter().step_by(2).map(|a| a.0).collect();
    assert_eq!(
        agents[..3],
        [AgentType::Detection, AgentType::Diagnosis, AgentType::Prediction]
    );
    assert_eq!(agents.last(), Some(&AgentType::Communication));
    assert!(agents[3..agents.len() - 1].iter().all(|a| *a == AgentType::Resolution));
    let finished = || actions.iter().filter(|a| a.1 == ActionStatus::Completed).map(|a| &a.2);
    let top = finished()
        .find_map(|d| match d {
            ActionDetails::Diagnosis(diagnosis) => diagnosis.hypotheses.first(),
            _ => None,
        })
        .expect("a diagnosis");
    assert_eq!(
        (top.root.fault, top.root.service.as_str()),
        (FaultKind::ConnectionPoolExhaustion, "postgres-primary"),
        "{actions:#?}"
    );
    assert!(finished().any(|d| matches!(d, ActionDetails::Vote(v) if v.tally.as_ref().is_some_and(|t| t.passed))));
    assert!(finished().any(|d| matches!(
        d,
        ActionDetails::Step(s) if s.step == 1 && s.action == ActionKind::ScaleConnectionPool
            && s.target == "postgres-primary" && s.error.is_none()
    )));
    assert!(finished().any(|d| matches!(d, ActionDetails::Verification(v) if v.verified == Some(true))));
    let consensus = events
        .iter()
        .find_map(|e| match &e.message {
            ServerMessage::Consensus { round, .. } => Some(round.clone()),
            _ => None,
        })
        .expect("a consensus round");
    assert!(consensus.passed && consensus.approvals >= consensus.quorum);
    assert!(events.iter().any(|e| matches!(
        &e.message,
        ServerMessage::ConfigChange { change, .. } if change.key == "pool_size" && change.service == "postgres-primary"
    )));

    for e in &events {
        if let ServerMessage::AgentAction { action, .. } = &e.message
            && action.status == ActionStatus::Completed
        {
            let c = action.confidence.expect("completed actions carry confidence");
            assert!((0.0..=1.0).contains(&c));
            assert!(action.duration_ms.unwrap() > 0);
        }
    }

    let ServerMessage::IncidentStatus {
        status,
        resolution_time,
        cost_savings,
        ..
    } = &events[events.len() - 2].message
    else {
        panic!("expected incident_status before the metrics");
    };
    assert_eq!(*status, IncidentStatus::Resolved);
    // Seed 000: about 18 s per incident at speed 1.0; ours also waits
    // for recovery to show in telemetry.
    let mttr = resolution_time.unwrap();
    assert!((14.0..=30.0).contains(&mttr), "{mttr}");
    let expected_savings = engine.impact().cost_savings(Severity::Critical, 3, mttr);
    assert_eq!(*cost_savings, Some(expected_savings));

    let timeline: Vec<Envelope> = events.iter().map(|e| Envelope::clone(e)).collect();
    assert_eq!(
        crate::protocol::cause_stories(&timeline),
        [],
        "one cause: the page tells it as the root cause"
    );

    let metrics = engine.metrics();
    assert_eq!(metrics.incidents_resolved, 1);
    assert_eq!(metrics.success_rate, 1.0);
    assert_eq!(metrics.avg_mttr, mttr);
    assert_eq!(metrics.incidents_active, 0);
    assert_eq!(metrics.mttr_by_scenario.get("database_cascade"), Some(&mttr));
    // Seed 000's phase timings: detection 0.8–2.1 s, then diagnosis 3–3.5 s.
    assert!((0.8..=2.1).contains(&metrics.avg_time_to_detect), "{metrics:?}");
    let diagnosis = metrics.avg_time_to_diagnose - metrics.avg_time_to_detect;
    assert!((2.9..=3.6).contains(&diagnosis), "{metrics:?}");
    let closed = engine.incident(incident.id).unwrap();
    assert_eq!(closed.status, IncidentStatus::Resolved);
    assert_eq!(
        closed.root_cause.as_deref(),
        Some("connection-pool exhaustion on postgres-primary")
    );
    assert!(closed.report.unwrap().contains("## Root cause"));
    // The shared estate really recovered.
    assert_eq!(engine.with_twin(|estate| estate.slos_met(4)), Some(true));
}

/// Two faults at once: the crash loop (the larger harm) is named and fixed
/// first, verified on what it alone explains; then the CPU surge; and the
/// incident resolves only when both are fixed and the estate is healthy.
#[tokio::test(start_paused = true)]
async fn two_faults_are_fixed_cause_by_cause_the_larger_harm_first() {
    let engine = engine(3);
    let Feed { mut live, .. } = engine.feed(None);
    let incident = engine.trigger_scenario("compound_crash_loop_cpu_surge", None).unwrap();
    let events = collect_until(&mut live, is_settled).await;
    let finished: Vec<&ActionDetails> = (events.iter())
        .filter_map(|e| match &e.message {
            ServerMessage::AgentAction { action, .. } if action.status != ActionStatus::InProgress => {
                Some(&action.details)
            }
            _ => None,
        })
        .collect();
    let first = finished
        .iter()
        .find_map(|d| match d {
            ActionDetails::Diagnosis(diagnosis) => Some(diagnosis),
            _ => None,
        })
        .expect("a diagnosis");
    let causes: Vec<String> = first.causes.iter().map(|c| c.root.label()).collect();
    assert_eq!(
        causes,
        ["crash loop on payment-service", "CPU saturation on user-service"],
        "{:?}",
        first.causes
    );
    let plans: Vec<String> = (finished.iter())
        .filter_map(|d| match d {
            ActionDetails::Vote(vote) if vote.tally.is_some() => Some(vote.vote_on.root.label()),
            _ => None,
        })
        .collect();
    assert_eq!(
        plans,
        ["crash loop on payment-service", "CPU saturation on user-service"],
        "one plan per cause, the larger harm first"
    );
    let verifications: Vec<&Verification> = (finished.iter())
        .filter_map(|d| match d {
            ActionDetails::Verification(v) if v.verified.is_some() => Some(v),
            _ => None,
        })
        .collect();
    let crash = verifications.first().expect("the crash loop's fix verified");
    assert!(crash.watch.contains(&"payment-service".to_owned()), "{:?}", crash.watch);
    assert!(
        !crash.watch.contains(&"user-service".to_owned()),
        "the first cause is verified on what it alone explains: {:?}",
        crash.watch
    );
    // The incident's page: each cause with its own evidence and steps.
    let timeline: Vec<Envelope> = events.iter().map(|e| Envelope::clone(e)).collect();
    let stories = crate::protocol::cause_stories(&timeline);
    let told: Vec<(String, bool)> = stories.iter().map(|s| (s.cause.root.label(), s.fixed)).collect();
    assert_eq!(
        told,
        [
            ("crash loop on payment-service".to_owned(), true),
            ("CPU saturation on user-service".to_owned(), true)
        ]
    );
    for story in &stories {
        let evidence = &story.hypothesis.as_ref().expect("its hypothesis").evidence;
        assert!(!evidence.is_empty(), "{story:?}");
        let targets: Vec<&str> = (story.steps.iter())
            .filter_map(|a| match &a.details {
                ActionDetails::Step(step) => Some(step.target.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(targets, [story.cause.root.service.as_str()], "its own steps only");
    }
    let closed = engine.incident(incident.id).unwrap();
    assert_eq!(closed.status, IncidentStatus::Resolved);
    assert!(
        closed
            .report
            .as_deref()
            .unwrap_or_default()
            .contains("2 causes remedied one by one"),
        "{:?}",
        closed.report
    );
    assert_eq!(engine.with_twin(|estate| estate.slos_met(4)), Some(true));
}

#[tokio::test(start_paused = true)]
async fn a_compromised_voter_is_outvoted_and_named_in_the_dissent() {
    let engine = engine(9);
    let mut live = engine.feed(None).live;
    engine.trigger_scenario("byzantine_cascade", None).unwrap();
    let events = collect_until(&mut live, is_settled).await;
    let round = events
        .iter()
        .find_map(|e| match &e.message {
            ServerMessage::Consensus { round, .. } => Some(round.clone()),
            _ => None,
        })
        .unwrap();
    assert!(round.passed);
    assert_eq!(round.dissent, [AgentType::Prediction]);
    let liar = round.votes.iter().find(|v| v.agent == AgentType::Prediction).unwrap();
    assert_eq!(liar.injected_fault.as_deref(), Some("adversarial"));
    assert_eq!(engine.metrics().incidents_resolved, 1);
}

#[tokio::test(start_paused = true)]
async fn an_incident_with_nothing_behind_it_is_closed_without_action() {
    let engine = engine(10);
    let mut live = engine.feed(None).live;
    let request = IncidentRequest {
        title: IncidentTitle::parse("Users report slowness").unwrap(),
        severity: Severity::Low,
        affected_services: vec![ServiceName::parse("api-gateway", "affected_services").unwrap()],
        scenario_id: None,
    };
    let incident = engine.open_incident(request).unwrap();
    let events = collect_until(&mut live, is_settled).await;
    assert!(events.iter().any(|e| matches!(
        &e.message,
        ServerMessage::AgentAction { action, .. }
            if matches!(&action.details, ActionDetails::Detection(d) if d.anomalies_detected == 0)
    )));
    assert!(
        !events
            .iter()
            .any(|e| matches!(&e.message, ServerMessage::Consensus { .. }))
    );
    let closed = engine.incident(incident.id).unwrap();
    assert_eq!(closed.status, IncidentStatus::Resolved);
    assert!(closed.report.unwrap().contains("No remediation was attempted"));
}

#[tokio::test(start_paused = true)]
async fn two_incidents_on_one_estate_never_act_twice_on_the_same_root() {
    let engine = engine(12);
    let mut live = engine.feed(None).live;
    let cascade = engine.trigger_scenario("database_cascade", None).unwrap();
    let crash = engine.trigger_scenario("service_down", None).unwrap();
    let mut closed = 0;
    let mut events = Vec::new();
    while closed < 2 {
        let event = live.recv().await.unwrap();
        if matches!(event.message, ServerMessage::IncidentStatus { .. }) {
            closed += 1;
        }
        events.push(event);
    }
    for id in [cascade.id, crash.id] {
        let incident = engine.incident(id).unwrap();
        assert_eq!(
            incident.status,
            IncidentStatus::Resolved,
            "{}",
            incident.report.unwrap_or_default()
        );
    }
    assert_eq!(engine.with_twin(|e| e.slos_met(4)), Some(true));
    // The bad release was rolled back once, not once per incident.
    let rollbacks = engine
        .with_twin(|e| {
            e.config_history()
                .iter()
                .filter(|c| c.service == "order-service" && c.key == "deploy" && c.cause == "rollback_deploy")
                .count()
        })
        .unwrap();
    assert_eq!(rollbacks, 1);
    assert!(events.iter().any(|e| matches!(
        &e.message,
        ServerMessage::AgentAction { action, .. } if matches!(&action.details, ActionDetails::ClaimWait(_))
            || matches!(&action.details, ActionDetails::Verification(v) if v.root_recovered.is_some())
    )));
}

#[tokio::test(start_paused = true)]
async fn past_the_limit_new_incidents_are_refused_at_capacity_until_some_close() {
    let engine = Engine::new(EngineConfig {
        seed: Some(13),
        max_active_incidents: 2,
        ..EngineConfig::default()
    })
    .unwrap();
    let mut live = engine.feed(None).live;
    engine.trigger_scenario("service_down", None).unwrap();
    engine.trigger_scenario("api_slowdown", None).unwrap();
    let refused = engine.trigger_scenario("data_drift", None).unwrap_err();
    assert_eq!(refused, SubmitError::AtCapacity { limit: 2 });
    assert!(refused.to_string().starts_with("at capacity"));
    // Nothing of the refused scenario reached the estate.
    assert_eq!(
        engine.with_twin(|e| e.has_active_fault(crate::twin::FaultKind::DataDrift, "ml-model-service")),
        Some(false)
    );
    collect_until(&mut live, is_settled).await;
    engine.trigger_scenario("data_drift", None).unwrap();
}

fn chaotic(seed: u64, agent_failure_rate: f64) -> Engine {
    Engine::new(EngineConfig {
        seed: Some(seed),
        agent_failure_rate,
        ..EngineConfig::default()
    })
    .unwrap()
}

#[tokio::test(start_paused = true)]
async fn crashed_agent_jobs_are_retried_and_the_incident_still_resolves() {
    let engine = chaotic(14, 0.3);
    let mut live = engine.feed(None).live;
    let incident = engine.trigger_scenario("database_cascade", None).unwrap();
    let events = collect_until(&mut live, is_settled).await;
    let crashed = events
        .iter()
        .filter(|e| {
            matches!(
                &e.message,
                ServerMessage::AgentAction { action, .. }
                    if action.status == ActionStatus::Failed && matches!(action.details, ActionDetails::Crashed(_))
            )
        })
        .count();
    assert!(crashed > 0, "at a 30% failure rate some job fails");
    assert_eq!(engine.incident(incident.id).unwrap().status, IncidentStatus::Resolved);
    let failures: u64 = engine.swarm_stats().iter().map(|s| s.failures).sum();
    assert_eq!(failures, crashed as u64);
}

#[tokio::test(start_paused = true)]
async fn an_agent_that_always_fails_opens_its_circuit_and_the_incident_escalates() {
    let engine = chaotic(15, 1.0);
    let mut live = engine.feed(None).live;
    let incident = engine.trigger_scenario("service_down", None).unwrap();
    let events = collect_until(&mut live, is_settled).await;
    assert_eq!(engine.incident(incident.id).unwrap().status, IncidentStatus::Failed);
    assert!(events.iter().any(|e| matches!(
        &e.message,
        ServerMessage::AgentAction { action, .. } if matches!(action.details, ActionDetails::CircuitOpen(_))
    )));
    let detection = &engine.swarm_stats()[0];
    assert_eq!(detection.breaker, crate::protocol::BreakerState::Open);
    // Nothing was done to the estate by an incident that could not see it.
    assert!(
        !events
            .iter()
            .any(|e| matches!(&e.message, ServerMessage::ConfigChange { .. }))
    );
}

#[tokio::test(start_paused = true)]
async fn speed_compresses_wall_time_but_not_reported_mttr() {
    let slow = engine(3);
    let fast = Engine::new(EngineConfig {
        seed: Some(3),
        speed: Speed::new(100.0).unwrap(),
        ..EngineConfig::default()
    })
    .unwrap();
    let mut results = Vec::new();
    for engine in [slow, fast] {
        let mut live = engine.feed(None).live;
        let started = tokio::time::Instant::now();
        engine.trigger_scenario("api_slowdown", None).unwrap();
        collect_until(&mut live, is_settled).await;
        results.push((started.elapsed(), engine.metrics().avg_mttr));
    }
    let ((slow_wall, slow_mttr), (fast_wall, fast_mttr)) = (results[0], results[1]);
    assert!(slow_wall > fast_wall * 90, "{slow_wall:?} vs {fast_wall:?}");
    assert_eq!(slow_mttr, fast_mttr);
}

#[tokio::test(start_paused = true)]
async fn shutdown_drains_within_grace_then_refuses_new_incidents() {
    let engine = engine(1);
    let incident = engine.trigger_scenario("service_down", None).unwrap();
    let report = engine.shutdown(Duration::from_secs(60)).await;
    assert_eq!(
        report,
        ShutdownReport {
            drained: 1,
            interrupted: 0
        }
    );
    assert_eq!(engine.incident(incident.id).unwrap().status, IncidentStatus::Resolved);
    assert_eq!(
        engine.trigger_scenario("service_down", None),
        Err(SubmitError::ShuttingDown)
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_interrupts_what_outlives_the_grace_period_visibly() {
    let engine = engine(2);
    let mut live = engine.feed(None).live;
    let incident = engine.trigger_scenario("database_cascade", None).unwrap();
    let report = engine.shutdown(Duration::from_secs(5)).await;
    assert_eq!(
        report,
        ShutdownReport {
            drained: 0,
            interrupted: 1
        }
    );
    let events = collect_until(&mut live, is_settled).await;
    assert!(events.iter().any(|e| matches!(
        e.message,
        ServerMessage::IncidentStatus { status: IncidentStatus::Interrupted, incident_id, .. } if incident_id == incident.id
    )));
    let metrics = engine.metrics();
    assert_eq!((metrics.incidents_failed, metrics.incidents_active), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn a_client_resumes_with_exactly_what_it_missed_or_gets_a_snapshot() {
    let engine = engine(4);
    let FeedStart::Snapshot(first) = engine.feed(None).start else {
        panic!("a fresh client starts with a snapshot");
    };
    let mut live = engine.feed(None).live;
    engine.trigger_scenario("api_slowdown", None).unwrap();
    let all = collect_until(&mut live, is_settled).await;

    let resumed = engine.feed(Some(Resume {
        epoch: first.epoch,
        since: 5,
    }));
    let FeedStart::Replay(missed) = resumed.start else {
        panic!("the log still has everything after seq 5");
    };
    assert_eq!(
        missed.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (6..=all.len() as u64).collect::<Vec<_>>()
    );

    let other_run = engine.feed(Some(Resume {
        epoch: Uuid::nil(),
        since: 5,
    }));
    assert!(matches!(other_run.start, FeedStart::Snapshot(ref s) if s.last_seq == all.len() as u64));
    let ahead = engine.feed(Some(Resume {
        epoch: first.epoch,
        since: 10_000,
    }));
    assert!(matches!(ahead.start, FeedStart::Snapshot(_)));
}

#[tokio::test]
async fn an_unknown_scenario_is_refused_with_a_suggestion() {
    let err = engine(5).trigger_scenario("api_slowdwn", None).unwrap_err();
    assert_eq!(
        err,
        SubmitError::UnknownScenario {
            id: "api_slowdwn".into(),
            suggestion: Some("api_slowdown".into())
        }
    );
    assert!(err.to_string().contains("did you mean `api_slowdown`"));
}
