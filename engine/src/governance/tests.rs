use std::{sync::Arc, time::Duration};

use chrono::Utc;
use uuid::Uuid;

use super::*;
use crate::{
    Engine, EngineConfig,
    protocol::{ActionDetails, ActionStatus, ApprovalState, IncidentStatus, PolicyStage, ServerMessage},
    twin::Remediation,
};

fn facts(actions: &[ActionKind], severity: Severity, blast_radius: usize, confidence: f64) -> PolicyInput {
    input(actions, severity, blast_radius, confidence)
}

#[test]
fn the_built_in_policies_parse_and_are_listed() {
    assert_eq!(Policy::builtin_names(), vec!["autonomous", "default"]);
    for name in Policy::builtin_names() {
        let policy = Policy::builtin(name).unwrap();
        assert_eq!(policy.name, name);
        assert!(!policy.approval.escalation.is_empty());
    }
    let unknown = Policy::builtin("lenient").unwrap_err().to_string();
    assert!(unknown.contains("autonomous, default"), "{unknown}");
}

/// The default policy's matrix: action type × severity × blast radius ×
/// confidence, one row per rule and the rows that fall through.
#[test]
fn the_default_policy_auto_approves_low_risk_and_asks_a_person_for_destructive_or_wide() {
    use ActionKind::*;
    use PolicyVerdict::*;
    use Severity::*;
    let policy = Policy::builtin("default").unwrap();
    type Row<'a> = (&'a [ActionKind], Severity, usize, f64, PolicyVerdict, &'a str);
    let cases: &[Row] = &[
        (&[RollbackDeploy], High, 2, 0.9, Auto, "default"),
        (
            &[ScaleConnectionPool, EnableCircuitBreaker],
            High,
            6,
            0.9,
            Auto,
            "default",
        ),
        (&[EnableCircuitBreaker], Critical, 3, 0.9, Auto, "default"),
        (&[RollbackDeploy], Critical, 4, 0.9, Auto, "default"),
        (
            &[ScaleConnectionPool, EnableCircuitBreaker],
            Critical,
            5,
            0.9,
            Human,
            "wide-critical-changes-need-a-person",
        ),
        (
            &[FailoverDatabase],
            Low,
            1,
            0.99,
            Human,
            "destructive-actions-need-a-person",
        ),
        (
            &[FlushCache],
            Medium,
            1,
            0.99,
            Human,
            "destructive-actions-need-a-person",
        ),
        (
            &[TriggerRetraining],
            High,
            1,
            0.99,
            Human,
            "destructive-actions-need-a-person",
        ),
        (
            &[RestartInstances],
            Critical,
            1,
            0.9,
            Human,
            "irreversible-critical-changes-need-a-person",
        ),
        (&[RestartInstances], High, 1, 0.9, Auto, "default"),
        (&[RollbackDeploy], Medium, 1, 0.35, Auto, "default"),
        (
            &[RollbackDeploy],
            Medium,
            1,
            0.25,
            Human,
            "unsure-diagnosis-needs-a-person",
        ),
        (&[FailoverDatabase], Critical, 9, 0.05, Deny, "no-action-on-a-guess"),
        (&[RollbackDeploy], Low, 1, 0.09, Deny, "no-action-on-a-guess"),
        (&[RollbackDeploy], Low, 1, 0.1, Human, "unsure-diagnosis-needs-a-person"),
    ];
    for (actions, severity, blast, confidence, verdict, rule) in cases {
        let ruling = policy.decide(&facts(actions, *severity, *blast, *confidence));
        assert_eq!(
            (ruling.verdict, ruling.rule.as_str()),
            (*verdict, *rule),
            "{actions:?} {severity:?} blast {blast} confidence {confidence}"
        );
        assert!(!ruling.reason.is_empty());
    }
}

#[test]
fn the_autonomous_policy_runs_everything() {
    let policy = Policy::builtin("autonomous").unwrap();
    let ruling = policy.decide(&facts(&[ActionKind::FailoverDatabase], Severity::Critical, 12, 0.05));
    assert_eq!(ruling.verdict, PolicyVerdict::Auto);
}

const MINIMAL: &str = r#"
revision = "t1"
[approval]
timeout_seconds = 10
escalation = ["primary", "secondary"]
on_timeout = "deny"
[default]
decision = "human"
reason = "test: always ask"
"#;

#[test]
fn a_broken_policy_is_refused_with_the_reason() {
    assert!(Policy::parse("ok", MINIMAL).is_ok());
    let broken = [
        (MINIMAL.replace("revision", "revison"), "revison"),
        (
            MINIMAL.replace("on_timeout = \"deny\"", "on_timeout = \"human\""),
            "nobody is left",
        ),
        (
            MINIMAL.replace("timeout_seconds = 10", "timeout_seconds = 0"),
            "positive",
        ),
        (
            MINIMAL.replace("[\"primary\", \"secondary\"]", "[]"),
            "at least one approver",
        ),
        (MINIMAL.replace("decision = \"human\"", "decision = \"maybe\""), "maybe"),
        (
            format!(
                "{MINIMAL}\n[[rule]]\nname = \"r\"\nactions = [\"reboot_universe\"]\ndecision = \"auto\"\nreason = \"x\"\n"
            ),
            "reboot_universe",
        ),
        (
            format!("{MINIMAL}\n[[rule]]\nname = \"r\"\nconfidence_below = 1.5\ndecision = \"auto\"\nreason = \"x\"\n"),
            "confidence_below",
        ),
        (
            format!(
                "{MINIMAL}\n[[rule]]\nname = \"r\"\ndecision = \"auto\"\nreason = \"x\"\n[[rule]]\nname = \"r\"\ndecision = \"deny\"\nreason = \"y\"\n"
            ),
            "used twice",
        ),
    ];
    for (text, needle) in broken {
        let error = Policy::parse("broken.toml", &text).unwrap_err().to_string();
        assert!(error.starts_with("policy `broken.toml`: "), "{error}");
        assert!(error.contains(needle), "expected {needle:?} in {error}");
    }
}

#[test]
fn a_policy_loads_from_a_file_or_says_what_it_looked_for() {
    let dir = std::env::temp_dir().join(format!("antibody-policy-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("strict.toml");
    std::fs::write(&path, MINIMAL).unwrap();
    let policy = Policy::load(path.to_str().unwrap()).unwrap();
    assert_eq!(policy.revision, "t1");
    assert_eq!(Policy::load("default").unwrap().name, "default");
    let missing = Policy::load("/nonexistent/policy.toml").unwrap_err().to_string();
    assert!(
        missing.contains("not a built-in policy (autonomous, default)"),
        "{missing}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

fn approval(id: Uuid) -> crate::protocol::Approval {
    let option = crate::protocol::ApprovalOption {
        hypothesis: "h".into(),
        plan: "p".into(),
        steps: vec![],
        success_probability: 0.5,
        estimate_seconds: 1.0,
        requests: Vec::new(),
    };
    crate::protocol::Approval {
        approval_id: id,
        incident_id: Uuid::nil(),
        incident_title: "t".into(),
        severity: Severity::High,
        proposal: option,
        alternatives: vec![],
        evidence: vec![],
        rule: "r".into(),
        reason: "r".into(),
        approver: "a".into(),
        level: 0,
        escalation: vec!["a".into()],
        timeout_seconds: 1.0,
        expires_at: Utc::now(),
        on_timeout: PolicyVerdict::Deny,
        requested_at: Utc::now(),
        state: ApprovalState::Pending,
        decided_by: None,
        decided_at: None,
        comment: None,
        waited_seconds: None,
        autopilot_at: None,
    }
}

fn by(name: &str, approve: bool) -> HumanDecision {
    HumanDecision {
        approve,
        approver: name.into(),
        comment: None,
        at: Utc::now(),
    }
}

#[tokio::test]
async fn an_approval_is_decided_exactly_once() {
    let approvals = Approvals::default();
    let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
    let reply = approvals.open(approval(first));
    let _other = approvals.open(approval(second));
    assert_eq!(approvals.pending().len(), 2);

    approvals.decide(first, by("alice", true)).unwrap();
    assert_eq!(reply.await.unwrap().approver, "alice");
    assert_eq!(
        approvals.decide(first, by("bob", false)),
        Err(DecideError::AlreadyDecided {
            id: first,
            state: ApprovalState::Approved
        })
    );
    // The timeout lost the race: nothing to close.
    assert!(approvals.close(first, ApprovalState::Expired).is_none());

    // The timeout won: a late person is told so.
    assert!(approvals.close(second, ApprovalState::Expired).is_some());
    assert_eq!(
        approvals.decide(second, by("carol", true)),
        Err(DecideError::AlreadyDecided {
            id: second,
            state: ApprovalState::Expired
        })
    );
    let unknown = Uuid::new_v4();
    assert_eq!(
        approvals.decide(unknown, by("dave", true)),
        Err(DecideError::Unknown(unknown))
    );
    assert!(approvals.pending().is_empty());
}

// ---- End to end, on the engine, under paused time ----

fn governed(policy: Policy) -> Engine {
    Engine::new(EngineConfig {
        seed: Some(11),
        policy: Arc::new(policy),
        ..EngineConfig::default()
    })
    .unwrap()
}

/// Receives events until `stop` matches one (inclusive).
async fn until(
    live: &mut tokio::sync::broadcast::Receiver<Arc<crate::event_log::Published>>,
    seen: &mut Vec<ServerMessage>,
    stop: impl Fn(&ServerMessage) -> bool,
) -> ServerMessage {
    loop {
        let event = live.recv().await.expect("the log outlives the test");
        seen.push(event.message.clone());
        if stop(&event.message) {
            return event.message.clone();
        }
    }
}

fn settled(m: &ServerMessage) -> bool {
    matches!(m, ServerMessage::IncidentStatus { status, .. } if status.is_terminal())
}

fn steps_run(seen: &[ServerMessage]) -> usize {
    seen.iter()
        .filter(|m| {
            matches!(m, ServerMessage::AgentAction { action, .. }
                if action.status == ActionStatus::Completed && matches!(action.details, ActionDetails::Step(_)))
        })
        .count()
}

fn config_changes(seen: &[ServerMessage]) -> usize {
    seen.iter()
        .filter(|m| matches!(m, ServerMessage::ConfigChange { .. }))
        .count()
}

#[tokio::test(start_paused = true)]
async fn a_wide_critical_plan_waits_for_a_person_then_runs_once_approved() {
    let engine = governed(Policy::builtin("default").unwrap());
    let mut live = engine.feed(None).live;
    let incident = engine.trigger_scenario("database_cascade", None).unwrap();
    let mut seen = Vec::new();

    let requested = until(&mut live, &mut seen, |m| {
        matches!(m, ServerMessage::ApprovalRequested { .. })
    })
    .await;
    let ServerMessage::ApprovalRequested { approval } = requested else {
        unreachable!()
    };
    // Policy asked, with its reason, and nothing ran before a person spoke.
    let proposal = seen
        .iter()
        .find_map(|m| match m {
            ServerMessage::PolicyDecision { decision, .. } => Some(decision.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(proposal.stage, PolicyStage::Proposal);
    assert_eq!(proposal.verdict, PolicyVerdict::Human);
    assert_eq!(proposal.rule, "wide-critical-changes-need-a-person");
    assert!(proposal.input.blast_radius >= 5, "{:?}", proposal.input);
    assert_eq!((steps_run(&seen), config_changes(&seen)), (0, 0));
    assert_eq!(approval.incident_id, incident.id);
    assert_eq!(approval.approver, "on-call SRE");
    assert!(
        approval.proposal.hypothesis.contains("postgres-primary"),
        "{:?}",
        approval.proposal
    );
    assert!(
        approval
            .alternatives
            .iter()
            .all(|a| a.success_probability < approval.proposal.success_probability),
        "{approval:#?}"
    );
    assert!(!approval.evidence.is_empty());
    assert_eq!(engine.approvals().pending(), vec![approval.clone()]);
    assert_eq!(engine.snapshot().approvals, vec![approval.clone()]);

    // Twenty simulated seconds later, alice approves.
    tokio::time::sleep(Duration::from_secs(20)).await;
    engine
        .approvals()
        .decide(
            approval.approval_id,
            HumanDecision {
                approve: true,
                approver: "alice".into(),
                comment: Some("pool exhaustion, go".into()),
                at: Utc::now(),
            },
        )
        .unwrap();
    let end = until(&mut live, &mut seen, settled).await;
    assert!(matches!(
        end,
        ServerMessage::IncidentStatus {
            status: IncidentStatus::Resolved,
            ..
        }
    ));

    let decided_at = seen
        .iter()
        .position(|m| matches!(m, ServerMessage::ApprovalDecided { .. }))
        .unwrap();
    let ServerMessage::ApprovalDecided { approval: decided } = &seen[decided_at] else {
        unreachable!()
    };
    assert_eq!(decided.state, ApprovalState::Approved);
    assert_eq!(decided.decided_by.as_deref(), Some("alice"));
    let waited = decided.waited_seconds.unwrap();
    assert!((19.9..=20.1).contains(&waited), "{waited}");
    // The re-check came between the decision and the first step.
    let recheck = seen
        .iter()
        .position(|m| matches!(m, ServerMessage::PolicyDecision { decision, .. } if decision.stage == PolicyStage::PreExecution))
        .unwrap();
    let first_step = seen
        .iter()
        .position(
            |m| matches!(m, ServerMessage::AgentAction { action, .. } if matches!(&action.details, ActionDetails::Step(s) if s.step == 1)),
        )
        .unwrap();
    assert!(decided_at < recheck && recheck < first_step);
    assert_eq!(steps_run(&seen[..decided_at]), 0);
    assert!(steps_run(&seen) >= 1);

    engine.flush().await;
    let audit = engine.audit(incident.id).unwrap();
    assert_eq!(audit.approval_wait.as_secs(), 20);
    let ServerMessage::IncidentStatus {
        report: Some(report), ..
    } = end
    else {
        unreachable!()
    };
    assert!(
        report.contains("Approved by alice after 20.0 s: pool exhaustion, go"),
        "{report}"
    );
    assert!(engine.snapshot().approvals[0].state == ApprovalState::Approved);
}

/// Policy says a person must approve, and nobody does: the request climbs
/// the escalation chain, expires into the safe default, and not one step
/// runs, for any hypothesis.
#[tokio::test(start_paused = true)]
async fn without_an_approval_nothing_ever_runs() {
    let engine = governed(Policy::parse("always-ask", MINIMAL).unwrap());
    let mut live = engine.feed(None).live;
    let incident = engine.trigger_scenario("service_down", None).unwrap();
    let mut seen = Vec::new();
    let end = until(&mut live, &mut seen, settled).await;
    assert!(
        matches!(&end, ServerMessage::IncidentStatus { status: IncidentStatus::Failed, report: Some(r), .. }
            if r.contains("handed over to the on-call engineer")),
        "{end:?}"
    );
    assert_eq!(
        (steps_run(&seen), config_changes(&seen)),
        (0, 0),
        "a step ran unapproved"
    );

    let requests: Vec<_> = seen
        .iter()
        .filter_map(|m| match m {
            ServerMessage::ApprovalRequested { approval } => {
                Some((approval.approval_id, approval.level, approval.approver.clone()))
            }
            _ => None,
        })
        .collect();
    let decisions: Vec<_> = seen
        .iter()
        .filter_map(|m| match m {
            ServerMessage::ApprovalDecided { approval } => Some(approval.clone()),
            _ => None,
        })
        .collect();
    // The safe default hands the incident to people: no other plan is tried.
    assert_eq!(decisions.len(), 1);
    for decided in &decisions {
        assert_eq!(decided.state, ApprovalState::Expired);
        assert_eq!(decided.decided_by.as_deref(), Some("policy (timeout)"));
        // Ten simulated seconds for each of the two approvers.
        assert_eq!(decided.waited_seconds, Some(20.0));
        let asked: Vec<_> = requests
            .iter()
            .filter(|(id, ..)| *id == decided.approval_id)
            .map(|(_, level, who)| (*level, who.as_str()))
            .collect();
        assert_eq!(asked, vec![(0, "primary"), (1, "secondary")]);
    }
    engine.flush().await;
    assert_eq!(
        engine.audit(incident.id).unwrap().approval_wait,
        Duration::from_secs(20 * decisions.len() as u64)
    );
}

#[tokio::test(start_paused = true)]
async fn a_rejected_plan_does_not_run() {
    let engine = governed(Policy::parse("always-ask", MINIMAL).unwrap());
    let mut live = engine.feed(None).live;
    engine.trigger_scenario("service_down", None).unwrap();
    let mut seen = Vec::new();
    loop {
        let message = until(&mut live, &mut seen, |m| {
            matches!(m, ServerMessage::ApprovalRequested { .. }) || settled(m)
        })
        .await;
        match message {
            ServerMessage::ApprovalRequested { approval } => {
                engine
                    .approvals()
                    .decide(approval.approval_id, by("bob", false))
                    .unwrap();
            }
            _ => break,
        }
    }
    assert_eq!((steps_run(&seen), config_changes(&seen)), (0, 0));
    assert!(
        seen.iter()
            .any(|m| matches!(m, ServerMessage::ApprovalDecided { approval }
        if approval.state == ApprovalState::Rejected && approval.decided_by.as_deref() == Some("bob")))
    );
}

/// The trouble goes away while the plan waits (someone fixed it by hand):
/// the approval arrives stale, and the approved plan does not run.
#[tokio::test(start_paused = true)]
async fn a_stale_approval_does_not_run() {
    let engine = governed(Policy::builtin("default").unwrap());
    let mut live = engine.feed(None).live;
    engine.trigger_scenario("database_cascade", None).unwrap();
    let mut seen = Vec::new();
    let ServerMessage::ApprovalRequested { approval } = until(&mut live, &mut seen, |m| {
        matches!(m, ServerMessage::ApprovalRequested { .. })
    })
    .await
    else {
        unreachable!()
    };
    // An engineer doubles the pool by hand; telemetry recovers.
    engine
        .with_twin(|estate| {
            estate.apply(&Remediation {
                kind: ActionKind::ScaleConnectionPool,
                target: "postgres-primary".into(),
            })
        })
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(30)).await;
    engine
        .approvals()
        .decide(approval.approval_id, by("alice", true))
        .unwrap();
    let end = until(&mut live, &mut seen, settled).await;

    let recheck = seen
        .iter()
        .find_map(|m| match m {
            ServerMessage::PolicyDecision { decision, .. } if decision.stage == PolicyStage::PreExecution => {
                Some(decision.clone())
            }
            _ => None,
        })
        .unwrap();
    assert!(recheck.stale, "{recheck:?}");
    assert_eq!(recheck.approval_id, Some(approval.approval_id));
    assert!(recheck.reason.contains("cleared"), "{}", recheck.reason);
    assert_eq!(steps_run(&seen), 0, "the stale plan ran");
    assert!(
        matches!(end, ServerMessage::IncidentStatus { status: IncidentStatus::Resolved, report: Some(ref r), .. }
        if r.contains("nothing was run")),
        "{end:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_shutdown_withdraws_a_pending_approval() {
    let engine = governed(Policy::builtin("default").unwrap());
    let mut live = engine.feed(None).live;
    engine.trigger_scenario("database_cascade", None).unwrap();
    let mut seen = Vec::new();
    until(&mut live, &mut seen, |m| {
        matches!(m, ServerMessage::ApprovalRequested { .. })
    })
    .await;
    engine.shutdown(Duration::ZERO).await;
    let withdrawn = until(&mut live, &mut seen, |m| {
        matches!(m, ServerMessage::ApprovalDecided { .. })
    })
    .await;
    assert!(
        matches!(withdrawn, ServerMessage::ApprovalDecided { approval } if approval.state == ApprovalState::Withdrawn)
    );
    assert!(engine.approvals().pending().is_empty());
    assert_eq!(steps_run(&seen), 0);
}

/// An engine that asks a person about every plan, with a demo's 3 s autopilot.
fn autopiloted() -> Engine {
    Engine::new(EngineConfig {
        seed: Some(11),
        policy: Arc::new(Policy::parse("always-ask", MINIMAL).unwrap()),
        autopilot: Some(Duration::from_secs(3)),
        ..EngineConfig::default()
    })
    .unwrap()
}

/// A demo's autopilot approves a waiting plan after its countdown, named
/// as the autopilot in the decision, and the plan runs.
#[tokio::test(start_paused = true)]
async fn a_demos_autopilot_approves_after_its_countdown_and_says_so() {
    let engine = autopiloted();
    let mut live = engine.feed(None).live;
    engine.trigger_scenario("service_down", None).unwrap();
    let mut seen = Vec::new();
    let ServerMessage::ApprovalRequested { approval: asked } = until(&mut live, &mut seen, |m| {
        matches!(m, ServerMessage::ApprovalRequested { .. })
    })
    .await
    else {
        unreachable!()
    };
    let countdown = asked.autopilot_at.expect("the request shows the autopilot's deadline") - asked.requested_at;
    assert_eq!(countdown.num_seconds(), 3);
    let asked_at = tokio::time::Instant::now();
    let ServerMessage::ApprovalDecided { approval } = until(&mut live, &mut seen, |m| {
        matches!(m, ServerMessage::ApprovalDecided { .. })
    })
    .await
    else {
        unreachable!()
    };
    // Before the policy's own timeout (10 s), after the countdown.
    assert_eq!(asked_at.elapsed().as_secs(), 3);
    assert_eq!(approval.state, ApprovalState::Approved);
    assert_eq!(approval.decided_by.as_deref(), Some(crate::governance::AUTOPILOT));
    assert!(approval.comment.unwrap().contains("autopilot"));
    until(&mut live, &mut seen, settled).await;
    assert!(steps_run(&seen) > 0, "the approved plan ran");
}

/// A person who decides within the countdown wins; the autopilot stays out.
#[tokio::test(start_paused = true)]
async fn a_person_deciding_first_leaves_the_autopilot_nothing() {
    let engine = autopiloted();
    let mut live = engine.feed(None).live;
    engine.trigger_scenario("service_down", None).unwrap();
    let mut seen = Vec::new();
    while let ServerMessage::ApprovalRequested { approval } = until(&mut live, &mut seen, |m| {
        matches!(m, ServerMessage::ApprovalRequested { .. }) || settled(m)
    })
    .await
    {
        // Late in the countdown, but within it.
        tokio::time::sleep(Duration::from_millis(2_900)).await;
        engine
            .approvals()
            .decide(approval.approval_id, by("carol", false))
            .unwrap();
    }
    let deciders: Vec<_> = seen
        .iter()
        .filter_map(|m| match m {
            ServerMessage::ApprovalDecided { approval } => approval.decided_by.clone(),
            _ => None,
        })
        .collect();
    assert!(!deciders.is_empty());
    assert!(deciders.iter().all(|d| d == "carol"), "{deciders:?}");
}
