//! Test fixtures shared by the reducer's tests (`state`, `swarm_state`,
//! `estate_map`): events, incidents, actions and services with plain,
//! predictable fields that each test then adjusts.

use chrono::Utc;
use engine::protocol::{
    ActionDetails, ActionKind, ActionStatus, Affected, AgentAction, AgentType, Diagnosis, Envelope, FaultKind,
    HealthState, Hypothesis, Incident, IncidentStatus, Metric, MetricEvidence, Plan, PlannedStep, Remediation,
    RootCause, ServerMessage, ServiceTelemetry, Severity, Started, Vote,
};
use uuid::Uuid;

/// `message` as the log's event number `seq`, sent now.
pub fn at(seq: u64, message: ServerMessage) -> Envelope {
    Envelope {
        seq,
        ts: Utc::now(),
        message,
    }
}

/// An active, high-severity incident on `api-gateway`.
pub fn incident(id: u128) -> Incident {
    Incident {
        id: Uuid::from_u128(id),
        title: format!("Incident {id}"),
        severity: Severity::High,
        affected_services: vec!["api-gateway".into()],
        scenario_id: None,
        status: IncidentStatus::Active,
        created_at: Utc::now(),
        finished_at: None,
        resolution_time: None,
        cost_savings: None,
        root_cause: None,
        report: None,
    }
}

/// `agent`'s action `action` on `incident`; a finished one has a duration
/// and a confidence.
pub fn action(incident: u128, action: u128, agent: AgentType, status: ActionStatus) -> ServerMessage {
    ServerMessage::AgentAction {
        incident_id: Uuid::from_u128(incident),
        action: AgentAction {
            agent_type: agent,
            action_id: Uuid::from_u128(action),
            description: format!("{agent:?} {status:?}"),
            timestamp: Utc::now(),
            status,
            details: ActionDetails::Started(Started {
                task: None,
                services: None,
            }),
            duration_ms: (status != ActionStatus::InProgress).then_some(1200),
            confidence: (status != ActionStatus::InProgress).then_some(0.9),
            queries: Vec::new(),
        },
    }
}

/// `message`, an agent action, with `details` instead.
pub fn with_details(message: ServerMessage, details: ActionDetails) -> ServerMessage {
    match message {
        ServerMessage::AgentAction {
            incident_id,
            mut action,
        } => {
            action.details = details;
            ServerMessage::AgentAction { incident_id, action }
        }
        other => other,
    }
}

/// A hypothesis of pool exhaustion at `service`, with some evidence.
pub fn hypothesis(service: &str, confidence: f64) -> Hypothesis {
    Hypothesis {
        root: RootCause {
            service: service.into(),
            fault: FaultKind::ConnectionPoolExhaustion,
        },
        score: confidence,
        confidence,
        signature_match: 0.9,
        coverage: 0.8,
        evidence: vec![
            MetricEvidence {
                metric: Metric::PoolUsage,
                sigma: 14.2,
            };
            12
        ],
        path: vec!["api-gateway".into(), service.into()],
        memory: None,
    }
}

/// A diagnosis rooted at `root` whose blast radius is `radius`.
pub fn diagnosis(root: &str, radius: &[&str]) -> Diagnosis {
    Diagnosis {
        hypotheses: vec![hypothesis(root, 0.8), hypothesis("redis-cache", 0.2)],
        blast_radius: radius
            .iter()
            .map(|s| Affected {
                service: (*s).into(),
                health: HealthState::Degraded,
                root: *s == root,
            })
            .collect(),
        anomalous: radius.iter().map(|s| (*s).into()).collect(),
        ..Diagnosis::default()
    }
}

/// A vote on restarting `target`.
pub fn vote(target: &str) -> ActionDetails {
    ActionDetails::Vote(Vote {
        vote_on: Plan {
            root: RootCause {
                service: target.into(),
                fault: FaultKind::CacheFailure,
            },
            playbook: "Cache failure playbook".into(),
            steps: vec![PlannedStep {
                remediation: Remediation {
                    kind: ActionKind::RestartCache,
                    target: target.into(),
                },
                seconds: 2.0,
            }],
            watch: vec![target.into()],
        },
        tally: None,
    })
}

/// A service in `state` that calls nothing.
pub fn service(name: &str, state: HealthState) -> ServiceTelemetry {
    ServiceTelemetry {
        name: name.into(),
        kind: "database".into(),
        state,
        in_rotation: true,
        owned: true,
        p99_ms: 12.0,
        error_rate: 0.001,
        rps: 1000.0,
        cpu: 0.4,
        depends_on: Vec::new(),
        breakers: Vec::new(),
    }
}
