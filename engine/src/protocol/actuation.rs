//! Actions out: what Antibody sends an actuator for one approved step, what
//! the actuator answers, and what an incident's record keeps of it.
//!
//! The same [`ActionOrder`] goes to the standalone twin's `POST
//! /api/actions` and to a runbook system's webhook (StackStorm, Rundeck, a
//! CI job); a receiver answers with an [`ActionReceipt`], and may report
//! the outcome later with an [`ActionResult`] on the order's callback.
//! Every order carries an idempotency key: a receiver applies a key once
//! and answers a repeat with its first receipt.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{ConfigChangeEvent, Remediation};

/// One approved step, as Antibody sends it to an actuator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ActionOrder {
    /// What to do, to which service.
    pub remediation: Remediation,
    /// The incident the step belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident_id: Option<Uuid>,
    /// The step's place in its plan, from 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
    /// The plan's steps in all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub of: Option<usize>,
    /// Who let the plan run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalNote>,
    /// Where to POST the outcome ([`ActionResult`], signed like the order),
    /// for a receiver that answers later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    /// The receiver's own parameters for this remediation, from the
    /// estate's actuator map (a StackStorm action's, a Rundeck job's
    /// options).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub parameters: serde_json::Value,
}

impl ActionOrder {
    /// An order for `remediation` alone: no incident, place, approval,
    /// callback or parameters yet.
    pub fn of(remediation: Remediation) -> Self {
        Self {
            remediation,
            incident_id: None,
            step: None,
            of: None,
            approval: None,
            callback_url: None,
            parameters: serde_json::Value::Null,
        }
    }
}

/// Who let a plan run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ApprovalNote {
    /// `policy` (the policy let it run unattended) or `person`.
    pub by: String,
    /// The person's name, or the policy rule that decided.
    pub who: String,
}

/// Where an action stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ActionOutcome {
    /// Accepted; the outcome comes later (callback or status URL).
    Pending,
    /// Carried out.
    Succeeded,
    /// Could not be carried out.
    Failed,
    /// Carried out, then taken back.
    Undone,
}

impl ActionOutcome {
    /// The wire name, as in `"succeeded"`.
    pub fn as_str(self) -> &'static str {
        super::wire_name(&self)
    }
}

/// What an actuator answered for one order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActionReceipt {
    /// The receiver's id for the action (its status and undo are addressed
    /// by it).
    pub id: String,
    /// The key the order was sent with.
    pub idempotency_key: String,
    /// What was ordered.
    pub remediation: Remediation,
    /// Where it stands.
    pub status: ActionOutcome,
    /// Why it failed, or what the receiver said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The configuration it changed (a receiver that knows).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<ConfigChangeEvent>,
    /// Side effects people should know about.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub side_effects: Vec<String>,
}

/// How an action ended, as a runbook system reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FinalOutcome {
    Succeeded,
    Failed,
}

impl From<FinalOutcome> for ActionOutcome {
    fn from(outcome: FinalOutcome) -> Self {
        match outcome {
            FinalOutcome::Succeeded => Self::Succeeded,
            FinalOutcome::Failed => Self::Failed,
        }
    }
}

/// An action's outcome as a runbook system reports it on the callback
/// (`POST /api/actions/{id}/result`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ActionResult {
    /// How it ended.
    pub status: FinalOutcome,
    /// What the runbook said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The exact request an actuator sends for a step, as people see it before
/// approval and in the audit log (the dry-run form: the signature is made
/// at send time and not shown).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActuatorRequest {
    /// Which actuator: `embedded twin`, `twin`, or `webhook`.
    pub actuator: String,
    /// The HTTP method (`APPLY` for the embedded twin, which is in-process).
    pub method: String,
    /// Where it goes.
    pub url: String,
    /// The key every attempt carries (the step's action id).
    pub idempotency_key: String,
    /// The body.
    pub body: ActionOrder,
}

/// A step's actuation on an incident's record: the request, and the
/// receipt once there is one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Actuation {
    /// What was (or would be) sent.
    pub request: ActuatorRequest,
    /// What came back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<ActionReceipt>,
    /// Attempts made to deliver it (retries share the idempotency key).
    #[serde(default)]
    pub attempts: u32,
}
