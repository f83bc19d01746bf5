//! Never twice: a step the last run sent through an actuator and never saw
//! finish (the server was killed mid-step) is reconciled from the
//! receiver's record under its idempotency key, not sent again. Its
//! incident is interrupted as any other the last run left open; the step's
//! record ends with what the estate says happened.

use tracing::{info, warn};
use uuid::Uuid;

use crate::{
    actuator::HttpActuator,
    event_log::EventLog,
    protocol::{ActionDetails, ActionOutcome, ActionReceipt, ActionStatus, AgentAction, Envelope, ServerMessage},
};

/// The steps in `tail` that were announced with a request and never
/// finished, for incidents in `unfinished`.
pub(super) fn dangling_steps(tail: &[Envelope], unfinished: &[Uuid]) -> Vec<(Uuid, AgentAction)> {
    let mut open: Vec<(Uuid, AgentAction)> = Vec::new();
    for event in tail {
        let ServerMessage::AgentAction { incident_id, action } = &event.message else {
            continue;
        };
        if !unfinished.contains(incident_id) {
            continue;
        }
        open.retain(|(_, announced)| announced.action_id != action.action_id);
        let sent = matches!(&action.details, ActionDetails::Step(step) if step.actuation.is_some());
        if sent && action.status == ActionStatus::InProgress {
            open.push((*incident_id, action.clone()));
        }
    }
    open
}

/// Asks the actuator what became of each dangling step and records it.
pub(super) async fn reconcile(log: EventLog, actuator: HttpActuator, dangling: Vec<(Uuid, AgentAction)>) {
    for (incident_id, mut action) in dangling {
        let ActionDetails::Step(mut step) = action.details.clone() else {
            unreachable!("only steps dangle")
        };
        let mut actuation = step.actuation.take().expect("a sent step has its request");
        let request = &actuation.request;
        // The receipt if one came back before the kill; else the key,
        // which a receiver that keeps its ledger by key (the twin) finds.
        let known = actuation.receipt.clone().unwrap_or_else(|| ActionReceipt {
            id: request.idempotency_key.clone(),
            idempotency_key: request.idempotency_key.clone(),
            remediation: request.body.remediation.clone(),
            status: ActionOutcome::Pending,
            detail: None,
            changes: Vec::new(),
            side_effects: Vec::new(),
        });
        let name = actuator.name().to_owned();
        let (status, error) = match actuator.status(&known).await {
            Ok(receipt) => {
                let outcome = receipt.status;
                actuation.receipt = Some(receipt);
                match outcome {
                    ActionOutcome::Succeeded => (ActionStatus::Completed, None),
                    other => (
                        ActionStatus::Failed,
                        Some(format!(
                            "reconciled after a restart: the {name} reports it {}",
                            other.as_str()
                        )),
                    ),
                }
            }
            Err(why) => (
                ActionStatus::Failed,
                Some(format!(
                    "reconciled after a restart: its outcome could not be read ({why}); check the {name} before acting again"
                )),
            ),
        };
        match &error {
            None => {
                info!(incident = %incident_id, key = %request.idempotency_key, "a step cut short by the restart had been carried out")
            }
            Some(error) => warn!(incident = %incident_id, key = %request.idempotency_key, "{error}"),
        }
        step.error = error;
        step.actuation = Some(actuation);
        action.details = ActionDetails::Step(step);
        action.status = status;
        action.description = action.describe();
        log.append(ServerMessage::AgentAction { incident_id, action });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ActionKind, ActionOrder, Actuation, ActuatorRequest, AgentType, Remediation, Step};

    fn step(id: u128, status: ActionStatus, sent: bool) -> AgentAction {
        let remediation = Remediation {
            kind: ActionKind::ScaleConnectionPool,
            target: "postgres-primary".into(),
        };
        AgentAction {
            agent_type: AgentType::Resolution,
            action_id: Uuid::from_u128(id),
            description: String::new(),
            timestamp: chrono::Utc::now(),
            status,
            details: ActionDetails::Step(Step {
                step: 1,
                of: 1,
                action: remediation.kind,
                target: remediation.target.clone(),
                changes: Vec::new(),
                side_effects: Vec::new(),
                error: None,
                actuation: sent.then(|| {
                    Box::new(Actuation {
                        request: ActuatorRequest {
                            actuator: "twin".into(),
                            method: "POST".into(),
                            url: "http://twin/api/actions".into(),
                            idempotency_key: id.to_string(),
                            body: ActionOrder::of(remediation),
                        },
                        receipt: None,
                        attempts: 0,
                    })
                }),
            }),
            duration_ms: None,
            confidence: None,
            queries: Vec::new(),
        }
    }

    fn event(seq: u64, incident: u128, action: AgentAction) -> Envelope {
        Envelope {
            seq,
            ts: chrono::Utc::now(),
            message: ServerMessage::AgentAction {
                incident_id: Uuid::from_u128(incident),
                action,
            },
        }
    }

    #[test]
    fn only_sent_steps_of_unfinished_incidents_that_never_finished_dangle() {
        let tail = [
            event(1, 1, step(10, ActionStatus::InProgress, true)),
            event(2, 1, step(10, ActionStatus::Completed, true)),
            event(3, 1, step(11, ActionStatus::InProgress, true)),
            event(4, 1, step(12, ActionStatus::InProgress, false)),
            event(5, 2, step(13, ActionStatus::InProgress, true)),
        ];
        let dangling = dangling_steps(&tail, &[Uuid::from_u128(1)]);
        let ids: Vec<_> = dangling.iter().map(|(_, a)| a.action_id).collect();
        assert_eq!(
            ids,
            [Uuid::from_u128(11)],
            "finished, in-process and other incidents' steps do not"
        );
    }
}
