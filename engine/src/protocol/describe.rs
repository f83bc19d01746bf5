//! The sentence each message is for people, written once: the dashboard's
//! feed shows these, and the orchestrator puts the same words in the
//! incident report's timeline. An agent action's sentence is
//! [`AgentAction::describe`](super::AgentAction::describe), beside its
//! payloads.

use super::{Approval, FixOutcome, MemoryEntry, PolicyDecision, PolicyStage, PolicyVerdict, ServerMessage};

impl PolicyDecision {
    /// "Policy: a person must approve (critical-wide): touches 6 services".
    pub fn describe(&self) -> String {
        match (self.stage, self.stale, self.verdict) {
            (PolicyStage::PreExecution, true, _) => format!("Approval stale, not run: {}", self.reason),
            (PolicyStage::PreExecution, false, _) => "Approval re-checked before running: still holds".to_owned(),
            (PolicyStage::Proposal, _, PolicyVerdict::Auto) => {
                format!("Policy auto-approved the plan ({}): {}", self.rule, self.reason)
            }
            (PolicyStage::Proposal, _, PolicyVerdict::Human) => {
                format!("Policy: a person must approve ({}): {}", self.rule, self.reason)
            }
            (PolicyStage::Proposal, _, PolicyVerdict::Deny) => {
                format!("Policy denied the plan ({}): {}", self.rule, self.reason)
            }
        }
    }

    /// The decision's one-word outcome: `auto`, `human`, `deny`, `stale`
    /// or `holds`.
    pub fn outcome_word(&self) -> &'static str {
        match (self.stage, self.stale) {
            (PolicyStage::PreExecution, true) => "stale",
            (PolicyStage::PreExecution, false) => "holds",
            (PolicyStage::Proposal, _) => self.verdict.as_str(),
        }
    }
}

impl Approval {
    /// The request as asked: "Waiting for on-call to approve: …", or on an
    /// escalation "No answer in 60 s: escalated to team-lead".
    pub fn describe_request(&self) -> String {
        if self.level == 0 {
            format!("Waiting for {} to approve: {}", self.approver, self.proposal.plan)
        } else {
            format!(
                "No answer in {:.0} s: escalated to {}",
                self.timeout_seconds, self.approver
            )
        }
    }
}

impl MemoryEntry {
    /// "Remembered as a signature of 12 series; healed by … on …".
    pub fn describe(&self) -> String {
        let failed = self.fixes.iter().filter(|f| f.outcome == FixOutcome::Failed).count();
        let mut line = format!("Remembered as a signature of {} series", self.features.len());
        if let Some(fix) = self.healing_fix() {
            line.push_str(&format!("; healed by {} on {}", fix.playbook, fix.service));
        }
        if failed > 0 {
            line.push_str(&format!("; {failed} fix(es) that failed will not be repeated"));
        }
        line
    }
}

impl ServerMessage {
    /// The activity feed's line for this message; `None` for messages the
    /// feed does not show (figures, health, votes, which the agents'
    /// actions tell).
    pub fn describe(&self) -> Option<String> {
        Some(match self {
            Self::IncidentCreated { incident } => format!(
                "Incident opened: {} ({}, {})",
                incident.title,
                incident.severity.as_str(),
                incident.affected_services.join(", ")
            ),
            Self::AgentAction { action, .. } => action.description.clone(),
            Self::IncidentStatus {
                status,
                resolution_time,
                cost_savings,
                ..
            } => {
                let mut line = format!("Incident {}", status.as_str());
                if let Some(seconds) = resolution_time {
                    line.push_str(&format!(" after {seconds:.1} s"));
                }
                if let Some(savings) = cost_savings {
                    line.push_str(&format!(", saving {}", format_dollars(*savings)));
                }
                line
            }
            Self::PolicyDecision { decision, .. } => decision.describe(),
            Self::ApprovalRequested { approval } => approval.describe_request(),
            Self::ApprovalDecided { approval } => approval.outcome(),
            Self::MemoryRecorded { entry, .. } => entry.describe(),
            Self::PerformanceMetrics { .. }
            | Self::Consensus { .. }
            | Self::SwarmStats { .. }
            | Self::TwinHealth { .. }
            | Self::ConfigChange { .. }
            | Self::TimelineProgress { .. }
            | Self::MemoryCleared { .. }
            | Self::Resync { .. }
            | Self::Snapshot { .. } => return None,
        })
    }
}

/// `$1,234,567` style, rounded to whole dollars.
pub fn format_dollars(amount: f64) -> String {
    let whole = amount.round().max(0.0) as u64;
    let digits = whole.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    out.push('$');
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
