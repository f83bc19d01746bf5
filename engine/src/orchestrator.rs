//! The orchestrator: one task per incident, taking it through the five
//! agents in order (detection, diagnosis, prediction, resolution,
//! communication) and publishing every step.
//!
//! This is the foundation's phase logic. Its timing follows seed 000's
//! measured ranges, and its figures are computed from the incident and the
//! impact model. It does not yet observe telemetry: the agents that reason
//! from the twin replace [`plan`], and keep [`run`]'s contract (each action
//! `in_progress`, then `completed` with `duration_ms` and `confidence`; then
//! `incident_status`; then `performance_metrics`).

use std::{ops::Range, time::Duration};

use rand::{Rng, rngs::StdRng};
use serde_json::json;
use tracing::info;

use crate::{
    Engine,
    catalog::Playbook,
    protocol::{ActionStatus, AgentAction, AgentType, Incident, IncidentStatus, ServerMessage, Severity},
};

/// Seed 000's measured duration ranges at speed 1.0, in seconds.
const DETECTION_SECONDS: Range<f64> = 0.8..2.1;
const DIAGNOSIS_SECONDS: Range<f64> = 3.0..3.5;
const PREDICTION_SECONDS: Range<f64> = 2.5..3.0;
const COMMUNICATION_SECONDS: Range<f64> = 0.3..0.5;
/// Each playbook step takes its nominal time, give or take this share.
const STEP_JITTER: f64 = 0.07;

/// One agent action to perform: what to say before and after, and how long
/// it takes.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedAction {
    pub agent: AgentType,
    /// Description while in progress.
    pub started: String,
    /// Description once completed.
    pub completed: String,
    /// Facts the action starts from.
    pub details: serde_json::Value,
    /// Facts the action produced, merged into `details` on completion.
    pub outcome: serde_json::Value,
    /// Simulated time the action takes.
    pub duration: Duration,
    /// Confidence reported on completion.
    pub confidence: f64,
}

/// Foundation heuristic, until agents read telemetry: signals are stronger
/// for severe incidents, and a wider blast radius leaves more candidate
/// causes, so less certainty. Later phases compound earlier uncertainty.
fn heuristic_confidence(agent: AgentType, severity: Severity, services: usize) -> f64 {
    let signal = match severity {
        Severity::Critical => 0.94,
        Severity::High => 0.90,
        Severity::Medium => 0.84,
        Severity::Low => 0.78,
    };
    let compounding = match agent {
        AgentType::Detection | AgentType::Communication => 1.0,
        AgentType::Resolution => 0.99,
        AgentType::Diagnosis => 0.97,
        AgentType::Prediction => 0.93,
    };
    let spread = 0.02 * services.saturating_sub(1) as f64;
    ((signal * compounding - spread).clamp(0.5, 0.99) * 100.0).round() / 100.0
}

fn seconds(rng: &mut StdRng, range: Range<f64>) -> Duration {
    Duration::from_secs_f64(rng.random_range(range))
}

/// The actions for `incident`, in order.
pub fn plan(engine: &Engine, incident: &Incident, playbook: &Playbook, rng: &mut StdRng) -> Vec<PlannedAction> {
    let services = incident.affected_services.len();
    let listed = incident.affected_services.join(", ");
    let severity = incident.severity;
    let confidence = |agent| heuristic_confidence(agent, severity, services);
    let cost = engine.impact().cost(severity);
    let exposure_per_minute =
        cost.cost_per_minute * (1.0 + engine.impact().blast_factor * services.saturating_sub(1) as f64);

    let mut actions = vec![
        PlannedAction {
            agent: AgentType::Detection,
            started: format!("Triaging a {} incident across {services} service(s)", severity.as_str()),
            completed: format!("Triage complete: {} severity on {listed}", severity.as_str()),
            details: json!({ "services": incident.affected_services, "severity": severity }),
            outcome: json!({ "services_flagged": services }),
            duration: seconds(rng, DETECTION_SECONDS),
            confidence: confidence(AgentType::Detection),
        },
        PlannedAction {
            agent: AgentType::Diagnosis,
            started: format!("Mapping the blast radius of \"{}\"", incident.title),
            completed: format!("Blast radius mapped: {services} service(s) ({listed})"),
            details: json!({ "title": incident.title }),
            outcome: json!({ "blast_radius": incident.affected_services }),
            duration: seconds(rng, DIAGNOSIS_SECONDS),
            confidence: confidence(AgentType::Diagnosis),
        },
        PlannedAction {
            agent: AgentType::Prediction,
            started: "Estimating business exposure".to_owned(),
            completed: format!(
                "Exposure ${exposure_per_minute:.0}/min; a manual response takes ~{:.0} min",
                cost.manual_mttr_minutes
            ),
            details: json!({ "severity": severity, "services": services }),
            outcome: json!({
                "exposure_per_minute": exposure_per_minute,
                "manual_mttr_minutes": cost.manual_mttr_minutes,
            }),
            duration: seconds(rng, PREDICTION_SECONDS),
            confidence: confidence(AgentType::Prediction),
        },
    ];
    let steps = playbook.steps.len();
    for (i, step) in playbook.steps.iter().enumerate() {
        let jitter = rng.random_range(1.0 - STEP_JITTER..1.0 + STEP_JITTER);
        actions.push(PlannedAction {
            agent: AgentType::Resolution,
            started: format!("Step {}/{steps}: {}", i + 1, step.action),
            completed: format!("Step {}/{steps} complete: {}", i + 1, step.action),
            details: json!({ "playbook": playbook.id, "step": i + 1, "of": steps, "action": step.action }),
            outcome: json!({}),
            duration: Duration::from_secs_f64(step.seconds * jitter),
            confidence: confidence(AgentType::Resolution),
        });
    }
    actions.push(PlannedAction {
        agent: AgentType::Communication,
        started: "Composing the incident summary".to_owned(),
        completed: "Incident summary composed".to_owned(),
        details: json!({ "audience": ["status_page", "on_call"] }),
        outcome: json!({
            "summary": format!(
                "{} ({}) on {listed}: mitigated with the \"{}\" playbook in {steps} steps.",
                incident.title,
                severity.as_str(),
                playbook.name
            ),
        }),
        duration: seconds(rng, COMMUNICATION_SECONDS),
        confidence: confidence(AgentType::Communication),
    });
    actions
}

fn merge(mut details: serde_json::Value, outcome: serde_json::Value) -> serde_json::Value {
    if let (Some(details), serde_json::Value::Object(outcome)) = (details.as_object_mut(), outcome) {
        details.extend(outcome);
    }
    details
}

/// Takes `incident` through every planned action, then closes it. Stops
/// early, marking it interrupted, when the engine is told to interrupt.
pub(crate) async fn run(engine: Engine, incident: Incident, playbook: Playbook, mut rng: StdRng) {
    let clock = engine.clock();
    // Simulated time is the sum of what the agents spent, not wall time
    // multiplied by the speed: at high speeds the timer's millisecond
    // granularity would otherwise be multiplied into the figures.
    let mut elapsed = Duration::ZERO;
    let interrupt = engine.interrupt_token();
    for planned in plan(&engine, &incident, &playbook, &mut rng) {
        let mut action = AgentAction {
            agent_type: planned.agent,
            action_id: uuid::Builder::from_random_bytes(rng.random()).into_uuid(),
            description: planned.started,
            timestamp: chrono::Utc::now(),
            status: ActionStatus::InProgress,
            details: planned.details,
            duration_ms: None,
            confidence: None,
        };
        engine.publish(ServerMessage::AgentAction {
            incident_id: incident.id,
            action: action.clone(),
        });
        let action_started = clock.start();
        tokio::select! {
            () = clock.sleep(planned.duration) => {}
            () = interrupt.cancelled() => {
                info!(agent = planned.agent.as_str(), "interrupted by shutdown");
                engine.finish(incident.id, IncidentStatus::Interrupted, elapsed + clock.elapsed(action_started));
                return;
            }
        }
        action.status = ActionStatus::Completed;
        action.description = planned.completed;
        action.details = merge(action.details, planned.outcome);
        elapsed += planned.duration;
        action.duration_ms = Some(planned.duration.as_millis() as u64);
        action.confidence = Some(planned.confidence);
        info!(
            agent = planned.agent.as_str(),
            duration_ms = action.duration_ms,
            "{}",
            action.description
        );
        engine.publish(ServerMessage::AgentAction {
            incident_id: incident.id,
            action,
        });
    }
    engine.finish(incident.id, IncidentStatus::Resolved, elapsed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confidence_falls_with_blast_radius_and_rises_with_severity() {
        let narrow = heuristic_confidence(AgentType::Diagnosis, Severity::High, 1);
        let wide = heuristic_confidence(AgentType::Diagnosis, Severity::High, 6);
        assert!(narrow > wide);
        let severe = heuristic_confidence(AgentType::Detection, Severity::Critical, 2);
        let mild = heuristic_confidence(AgentType::Detection, Severity::Low, 2);
        assert!(severe > mild);
        for agent in AgentType::ALL {
            let c = heuristic_confidence(agent, Severity::Low, 32);
            assert!((0.5..=0.99).contains(&c));
        }
    }
}
