//! Test fixtures shared by the reducer's tests (`state`, `swarm_state`,
//! `estate_map`): events, incidents, actions and services with plain,
//! predictable fields that each test then adjusts.

use chrono::Utc;
use engine::protocol::{
    ActionStatus, AgentAction, AgentType, Envelope, HealthState, Incident, IncidentStatus, ServerMessage,
    ServiceTelemetry, Severity,
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
            details: serde_json::json!({}),
            duration_ms: (status != ActionStatus::InProgress).then_some(1200),
            confidence: (status != ActionStatus::InProgress).then_some(0.9),
        },
    }
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
