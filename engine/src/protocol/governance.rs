//! Governance on the wire: what policy decided about a plan, and the human
//! approvals it asked for (`policy_decision`, `approval_requested`,
//! `approval_decided`), plus the audit log's rows.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Severity;

/// What a policy rule says to do with a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PolicyVerdict {
    /// Run it now.
    Auto,
    /// Run it only once a person approves.
    Human,
    /// Never run it.
    Deny,
}

impl PolicyVerdict {
    /// The wire name (serde's).
    pub fn as_str(self) -> &'static str {
        crate::protocol::wire_name(&self)
    }
}

/// When a policy decision was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PolicyStage {
    /// When the swarm proposed the plan, after the vote.
    Proposal,
    /// Right before running a plan a person approved: the estate and the
    /// plan are looked at again, and a stale approval does not run.
    PreExecution,
}

/// The facts a policy decision looks at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PolicyInput {
    /// The plan's actions, as in `failover_database`.
    pub actions: Vec<String>,
    /// Whether any step cannot be undone (restarts, flushes, renewals).
    pub irreversible: bool,
    /// The incident's severity.
    pub severity: Severity,
    /// Services in the diagnosed blast radius.
    pub blast_radius: u32,
    /// The diagnosis's confidence in the root cause the plan treats, 0..=1.
    pub confidence: f64,
}

/// One policy decision, with its reason: every plan gets one before it may
/// run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PolicyDecision {
    /// When it was taken.
    pub stage: PolicyStage,
    /// The plan, for people.
    pub plan: String,
    /// What to do with it.
    pub verdict: PolicyVerdict,
    /// The rule that matched (`default` when none did).
    pub rule: String,
    /// Why, in the rule's words, or why an approval went stale.
    pub reason: String,
    /// The policy's revision, so an audit can tell which rules applied.
    pub revision: String,
    /// The facts it looked at.
    pub input: PolicyInput,
    /// The approval it concerns (pre-execution checks of approved plans).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_id: Option<Uuid>,
    /// Set when a pre-execution check found an approved plan stale; it did
    /// not run.
    #[serde(default)]
    pub stale: bool,
}

/// A course of action a person can approve: seed 001's "decision support",
/// with a success probability and a time estimate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApprovalOption {
    /// The root cause it treats, as in "connection-pool exhaustion on postgres-primary".
    pub hypothesis: String,
    /// The plan, for people.
    pub plan: String,
    /// The steps, in order.
    pub steps: Vec<String>,
    /// The diagnosis's confidence that this root cause is the true one,
    /// which is the chance the plan heals the estate, 0..=1.
    pub success_probability: f64,
    /// Simulated seconds the steps and their verification take.
    pub estimate_seconds: f64,
    /// The exact request each step would send, in the dry-run form (each
    /// step's idempotency key is its action's id, assigned when it runs).
    /// The browser does not decode them (their decoder would ship in the
    /// initial bundle): the incident page and the REST API show them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(not(feature = "runtime"), serde(skip_deserializing))]
    pub requests: Vec<super::ActuatorRequest>,
}

/// Where an approval request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ApprovalState {
    /// Waiting for the current approver.
    Pending,
    /// A person approved it.
    Approved,
    /// A person rejected it.
    Rejected,
    /// Every approver timed out, and the policy's safe default applied.
    Expired,
    /// The incident ended (shutdown) before anyone decided.
    Withdrawn,
}

impl ApprovalState {
    /// The wire name (serde's).
    pub fn as_str(self) -> &'static str {
        crate::protocol::wire_name(&self)
    }
}

/// A human decision point: a plan policy will not run without a person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Approval {
    /// Identifies the request; stays the same across escalations.
    pub approval_id: Uuid,
    /// The incident.
    pub incident_id: Uuid,
    /// The incident's title.
    pub incident_title: String,
    /// The incident's severity.
    pub severity: Severity,
    /// The plan the swarm voted for.
    pub proposal: ApprovalOption,
    /// The other hypotheses' plans, most likely first.
    pub alternatives: Vec<ApprovalOption>,
    /// What the agents saw: anomalies, the evidence for the root cause, the
    /// predicted cost of waiting.
    pub evidence: Vec<String>,
    /// The policy rule that asked for a person, and its reason.
    pub rule: String,
    pub reason: String,
    /// Who is asked now.
    pub approver: String,
    /// Index of `approver` in `escalation`.
    pub level: u32,
    /// Who is asked, in order; after the last one times out, `on_timeout`.
    pub escalation: Vec<String>,
    /// Simulated seconds each approver has.
    pub timeout_seconds: f64,
    /// When the current approver's time runs out (wall clock, at the
    /// engine's speed).
    pub expires_at: DateTime<Utc>,
    /// The safe default once everyone timed out: `auto` runs the plan,
    /// `deny` does not.
    pub on_timeout: PolicyVerdict,
    /// When the first approver was asked.
    pub requested_at: DateTime<Utc>,
    /// Where it is.
    pub state: ApprovalState,
    /// Who decided: a person's name, `policy (timeout)`, or a demo's
    /// `autopilot (demo)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    /// When.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<DateTime<Utc>>,
    /// The decider's words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Simulated seconds from the request to the decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waited_seconds: Option<f64>,
    /// On a demo server: when its autopilot approves the plan unless a
    /// person decides first (wall clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autopilot_at: Option<DateTime<Utc>>,
}

impl Approval {
    /// Whether the plan may run, by this decision.
    pub fn allows(&self) -> bool {
        match self.state {
            ApprovalState::Approved => true,
            ApprovalState::Expired => self.on_timeout == PolicyVerdict::Auto,
            _ => false,
        }
    }

    /// Where it stands, in words: "Approved by alice after 20.0 s: go".
    pub fn outcome(&self) -> String {
        let who = self.decided_by.as_deref().unwrap_or("nobody");
        let after = self
            .waited_seconds
            .map(|s| format!(" after {s:.1} s"))
            .unwrap_or_default();
        let base = match self.state {
            ApprovalState::Pending => format!("Waiting for {}", self.approver),
            ApprovalState::Approved => format!("Approved by {who}{after}"),
            ApprovalState::Rejected => format!("Rejected by {who}{after}"),
            ApprovalState::Expired => format!("Expired{after}"),
            ApprovalState::Withdrawn => format!("Withdrawn ({who})"),
        };
        match self.comment.as_deref().filter(|c| !c.is_empty()) {
            Some(comment) => format!("{base}: {comment}"),
            None => base,
        }
    }

    /// Folds a newer version of the same approval, or a new one, into a list
    /// kept newest first and at most `cap` long; decided approvals leave
    /// before pending ones.
    pub fn upsert_into(self, list: &mut std::collections::VecDeque<Approval>, cap: usize) {
        if let Some(existing) = list.iter_mut().find(|a| a.approval_id == self.approval_id) {
            *existing = self;
            return;
        }
        list.push_front(self);
        while list.len() > cap {
            match list.iter().rposition(|a| a.state != ApprovalState::Pending) {
                Some(oldest_decided) => list.remove(oldest_decided),
                None => list.pop_back(),
            };
        }
    }
}

/// One row of the audit log: who or what decided about a plan, when, why,
/// and on what evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    /// The event it was recorded from.
    pub seq: u64,
    /// When.
    pub at: DateTime<Utc>,
    /// The incident.
    pub incident_id: Uuid,
    /// The approval, when a person was asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_id: Option<Uuid>,
    /// `policy_decision`, `approval_requested`, `approval_escalated` or
    /// `approval_decided`.
    pub kind: String,
    /// Who or what: `policy:<rule>`, a person's name, `policy (timeout)`.
    pub actor: String,
    /// The outcome: `auto`, `human`, `deny`, `stale`, `pending`, `approved`, …
    pub decision: String,
    /// Why.
    pub reason: String,
    /// The plan.
    pub plan: String,
    /// The facts the decision stood on (the policy input, or the approval's
    /// evidence).
    pub evidence: serde_json::Value,
}

/// How many approvals a snapshot and a dashboard keep: every pending one
/// fits, since an incident waits on at most one.
pub const SNAPSHOT_APPROVALS: usize = 20;

impl AuditEntry {
    /// The audit row an event implies, if any: policy decisions, approval
    /// requests and escalations, and decisions.
    pub fn from_event(seq: u64, at: DateTime<Utc>, message: &super::ServerMessage) -> Option<Self> {
        use super::ServerMessage;
        match message {
            ServerMessage::PolicyDecision { incident_id, decision } => {
                Some(Self::from_policy_decision(seq, at, *incident_id, decision))
            }
            // Level 0 is the first approver; any later level is an escalation.
            ServerMessage::ApprovalRequested { approval } if approval.level == 0 => Some(Self::from_approval(
                seq,
                at,
                approval,
                "approval_requested",
                format!("policy:{}", approval.rule),
                format!("{}; asking {}", approval.reason, approval.approver),
                serde_json::json!({
                    "evidence": approval.evidence,
                    "proposal": approval.proposal,
                    "alternatives": approval.alternatives,
                }),
            )),
            ServerMessage::ApprovalRequested { approval } => Some(Self::from_approval(
                seq,
                at,
                approval,
                "approval_escalated",
                "policy (timeout)".to_owned(),
                escalation_reason(approval),
                serde_json::json!({ "level": approval.level }),
            )),
            ServerMessage::ApprovalDecided { approval } => Some(Self::from_approval(
                seq,
                at,
                approval,
                "approval_decided",
                approval.decided_by.clone().unwrap_or_else(|| "unknown".to_owned()),
                approval.comment.clone().unwrap_or_default(),
                serde_json::json!({ "waited_seconds": approval.waited_seconds, "level": approval.level }),
            )),
            _ => None,
        }
    }

    /// The row of a policy decision about a plan of `incident_id`, with the
    /// facts it looked at as evidence.
    fn from_policy_decision(seq: u64, at: DateTime<Utc>, incident_id: Uuid, decision: &PolicyDecision) -> Self {
        Self {
            seq,
            at,
            incident_id,
            approval_id: decision.approval_id,
            kind: "policy_decision".to_owned(),
            actor: format!("policy:{}", decision.rule),
            decision: if decision.stale {
                "stale"
            } else {
                decision.verdict.as_str()
            }
            .to_owned(),
            reason: decision.reason.clone(),
            plan: decision.plan.clone(),
            evidence: serde_json::json!({
                "stage": decision.stage,
                "revision": decision.revision,
                "input": decision.input,
            }),
        }
    }

    /// The row of an approval event (`kind`): its decision is the
    /// approval's state.
    fn from_approval(
        seq: u64,
        at: DateTime<Utc>,
        approval: &Approval,
        kind: &str,
        actor: String,
        reason: String,
        evidence: serde_json::Value,
    ) -> Self {
        Self {
            seq,
            at,
            incident_id: approval.incident_id,
            approval_id: Some(approval.approval_id),
            kind: kind.to_owned(),
            actor,
            decision: approval.state.as_str().to_owned(),
            reason,
            plan: approval.proposal.plan.clone(),
            evidence,
        }
    }
}

/// Why an approval moved to its current approver: who before them did not
/// answer, and for how long.
fn escalation_reason(approval: &Approval) -> String {
    format!(
        "no answer from {} in {:.0}s; asking {}",
        approval
            .escalation
            .get((approval.level as usize).saturating_sub(1))
            .map_or("the previous approver", String::as_str),
        approval.timeout_seconds,
        approval.approver
    )
}
