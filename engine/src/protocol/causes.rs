//! An incident's causes as its page tells them: each cause diagnosis named,
//! with its own evidence and the steps resolution took for it, read back
//! from the incident's events.

use serde::{Deserialize, Serialize};

use super::{
    ActionDetails, ActionStatus, AgentAction, AgentType, Cause, Envelope, Hypothesis, RootCause, ServerMessage,
};

/// One cause of an incident, and what was done about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CauseStory {
    /// The cause, as the diagnosis that first named it published it.
    pub cause: Cause,
    /// Its hypothesis in that diagnosis: its evidence and call path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hypothesis: Option<Hypothesis>,
    /// Resolution's finished actions while a plan for it ran: the safety
    /// checks, the steps, the verification, any rollback.
    #[serde(default)]
    pub steps: Vec<AgentAction>,
    /// A plan for it was verified: the cause, or the whole estate, recovered.
    #[serde(default)]
    pub fixed: bool,
}

/// The causes diagnoses named in `timeline` (an incident's events, oldest
/// first), in the order they were named: the first diagnosis's, largest
/// harm first, then any a re-examination found. Empty unless some diagnosis
/// named two causes or more: one cause is the incident's root cause, which
/// its page already shows.
pub fn cause_stories(timeline: &[Envelope]) -> Vec<CauseStory> {
    let mut stories: Vec<CauseStory> = Vec::new();
    let mut several = false;
    // The root of the plan most recently put to the vote.
    let mut planned: Option<RootCause> = None;
    for action in finished_actions(timeline) {
        match &action.details {
            ActionDetails::Diagnosis(diagnosis) => {
                several |= diagnosis.causes.len() > 1;
                for cause in &diagnosis.causes {
                    if !stories.iter().any(|s| s.cause.root == cause.root) {
                        stories.push(CauseStory {
                            cause: cause.clone(),
                            hypothesis: diagnosis.hypotheses.iter().find(|h| h.root == cause.root).cloned(),
                            steps: Vec::new(),
                            fixed: false,
                        });
                    }
                }
            }
            ActionDetails::Vote(vote) => planned = Some(vote.vote_on.root.clone()),
            details if action.agent_type == AgentType::Resolution && is_a_step(details) => {
                let Some(story) = stories.iter_mut().find(|s| Some(&s.cause.root) == planned.as_ref()) else {
                    continue;
                };
                if let ActionDetails::Verification(v) = details {
                    story.fixed |= v.verified == Some(true)
                        || v.root_recovered.as_deref() == Some(story.cause.root.service.as_str());
                }
                story.steps.push(action.clone());
            }
            _ => {}
        }
    }
    if several { stories } else { Vec::new() }
}

/// The agent actions of `timeline` that finished (completed or failed).
fn finished_actions(timeline: &[Envelope]) -> impl Iterator<Item = &AgentAction> {
    timeline.iter().filter_map(|event| match &event.message {
        ServerMessage::AgentAction { action, .. } if action.status != ActionStatus::InProgress => Some(action),
        _ => None,
    })
}

/// Whether `details` are part of carrying out a plan.
fn is_a_step(details: &ActionDetails) -> bool {
    matches!(
        details,
        ActionDetails::SafetyChecks(_)
            | ActionDetails::Step(_)
            | ActionDetails::Verification(_)
            | ActionDetails::Rollback(_)
    )
}
