//! The sentence each message is for people, written once: the dashboard's
//! feed shows these, the orchestrator puts the same words in the incident
//! report's timeline, and the server stores an agent action's as its
//! `description` ([`AgentAction::describe`], from its typed details).

use super::{
    ActionDetails, ActionStatus, AgentAction, Approval, DetectionFindings, Diagnosis, FixOutcome, MemoryEntry,
    PolicyDecision, PolicyStage, PolicyVerdict, Prediction, Readiness, SafetyChecks, ServerMessage, Started, Step,
    Task, Verification,
};

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
            Self::AlertReceived { alert, .. } => alert.describe(),
            Self::LeaseTakenOver {
                kind,
                previous_owner,
                owner,
                lease_epoch,
                ..
            } => format!(
                "Instance {previous_owner} stopped renewing this {kind}'s lease; {owner} took it over \
                 (lease epoch {lease_epoch}) and interrupted it"
            ),
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

impl AgentAction {
    /// The sentence this action is for people: the feed's line, the
    /// report's timeline entry, the log line. The server stores it as
    /// `description`.
    pub fn describe(&self) -> String {
        let agent = self.agent_type;
        let status = self.status;
        match &self.details {
            ActionDetails::Started(started) => describe_task(started),
            ActionDetails::Detection(findings) => describe_detection(findings),
            ActionDetails::Diagnosis(diagnosis) => describe_diagnosis(diagnosis),
            ActionDetails::Prediction(prediction) => describe_prediction(prediction),
            ActionDetails::Readiness(Readiness { ready: true }) => "Plan ready for the vote".into(),
            ActionDetails::Readiness(Readiness { ready: false }) => "Nothing to remediate".into(),
            ActionDetails::StatusPage(page) => format!("Status page: {} \"{}\"", page.status_page, page.title),
            ActionDetails::CircuitOpen(open) => format!(
                "{} circuit open ({:.1}s left): not sending more work to a failing agent",
                agent.label(),
                open.open_for_seconds
            ),
            ActionDetails::Crashed(crash) => format!("{} crashed mid-job (attempt {})", agent.label(), crash.attempt),
            ActionDetails::Vote(vote) => match &vote.tally {
                None => format!("Putting the plan to a vote: {}", vote.vote_on.summary()),
                Some(tally) => format!("Consensus: {}", tally.line()),
            },
            ActionDetails::SafetyChecks(checks) => describe_checks(checks, status),
            ActionDetails::Step(step) => describe_step(step, status),
            ActionDetails::Verification(verification) => describe_verification(verification),
            ActionDetails::Rollback(rollback) if rollback.rolled_back.is_empty() => {
                format!("Rolling back {} step(s) in reverse", rollback.steps)
            }
            ActionDetails::Rollback(rollback) => format!("Rolled back: {}", rollback.rolled_back.join(", ")),
            ActionDetails::ClaimWait(wait) if status == ActionStatus::InProgress => {
                format!("Waiting: incident {} is already remediating {}", wait.holder, wait.root)
            }
            ActionDetails::ClaimWait(wait) => {
                format!(
                    "Done waiting for incident {} on {}; looking again",
                    wait.holder, wait.root
                )
            }
            ActionDetails::Report(report) => report.status_page.clone(),
            ActionDetails::EstateUnreadable(unreadable) => format!(
                "Could not read the estate (attempt {} of {}): {}",
                unreadable.attempt, unreadable.of, unreadable.reason
            ),
            ActionDetails::Advice(advice) => format!(
                "Advisory: proposing {}; nothing is run on this estate, people act on it",
                advice.proposed.summary()
            ),
            ActionDetails::Omitted(_) => self.description.clone(),
        }
    }
}

fn describe_task(started: &Started) -> String {
    match started.task {
        Some(Task::ScanTelemetry) => format!(
            "Scanning telemetry of {} services against baselines",
            started.services.unwrap_or_default()
        ),
        Some(Task::RankHypotheses) => "Ranking root-cause hypotheses".into(),
        Some(Task::ConfirmKnownRoot) => "Confirming the root cause of similar past incidents".into(),
        Some(Task::ProjectImpact) => "Projecting cascade, time to breach and business impact".into(),
        Some(Task::Reexamine) => "Re-examining the estate's telemetry".into(),
        Some(Task::RankRemaining) => "Ranking what is left".into(),
        Some(Task::RecheckWarning) => "Re-checking a warning inside every objective".into(),
        Some(Task::RecheckReport) => "Looking again: nothing in the telemetry explains the report yet".into(),
        Some(Task::WriteReport) => "Writing the incident report and notifications".into(),
        None => "Working".into(),
    }
}

fn describe_detection(findings: &DetectionFindings) -> String {
    let Some(top) = findings.top_anomalies.first() else {
        let warned: Vec<String> = (findings.warnings.iter())
            .map(|w| format!("{} on {} ({})", w.monitor, w.service, w.detail))
            .collect();
        return match warned.is_empty() {
            true => format!("Nothing anomalous found across {} metrics", findings.metrics_analyzed),
            false => format!(
                "Nothing anomalous across {} metrics, inside every objective, but watching: {}",
                findings.metrics_analyzed,
                warned.join("; ")
            ),
        };
    };
    let mut line = format!(
        "{} anomalies on {} service(s); strongest {} {} at {:.1}σ",
        findings.anomalies_detected,
        findings.anomalous_services.len(),
        top.service,
        top.metric.as_str(),
        top.sigma,
    );
    if let Some(pattern) = &findings.pattern_matched {
        line.push_str(&format!("; looks like {} on {}", pattern.pattern, pattern.service));
    }
    for breach in &findings.monitor_breaches {
        line.push_str(&format!(
            "; {} on {} ({})",
            breach.monitor, breach.service, breach.detail
        ));
    }
    if !findings.recall.similar.is_empty() {
        line.push_str(&format!(
            "; resembles {} past incident(s) (best {:.0}% similar)",
            findings.recall.similar.len(),
            findings.recall.best_similarity() * 100.0
        ));
    }
    line
}

fn describe_diagnosis(diagnosis: &Diagnosis) -> String {
    let memory = memory_line(diagnosis);
    match diagnosis.hypotheses.first() {
        None if !diagnosis.skipped.is_empty() => format!("Every candidate fix failed on similar incidents{memory}"),
        None if diagnosis.anomalous.is_empty() => "No root cause to find: telemetry is within baselines".into(),
        None => format!(
            "No known fault explains the anomalies on {}",
            diagnosis.anomalous.join(", ")
        ),
        Some(_) if diagnosis.causes.len() > 1 => format!(
            "{} causes at once, the larger harm first: {}{memory}",
            diagnosis.causes.len(),
            (diagnosis.causes.iter())
                .map(|c| format!("{} (harm {})", c.root.label(), c.impact))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        Some(top) => format!(
            "Root cause: {} ({:.0}% confident){}{memory}",
            top.label(),
            top.confidence * 100.0,
            diagnosis
                .hypotheses
                .get(1)
                .map(|h| format!("; next: {}", h.label()))
                .unwrap_or_default()
        ),
    }
}

/// What the incident memory added to a diagnosis, as a tail for its line.
fn memory_line(diagnosis: &Diagnosis) -> String {
    let mut line = String::new();
    if diagnosis.similar_incidents == 0 {
        return line;
    }
    line.push_str(&format!(
        "; matched {} similar incident{}",
        diagnosis.similar_incidents,
        if diagnosis.similar_incidents == 1 { "" } else { "s" }
    ));
    if let Some(record) = diagnosis.hypotheses.first().and_then(|h| h.memory.as_ref()) {
        line.push_str(&format!("; last fix succeeded {}/{}", record.healed, record.tried));
    }
    for h in &diagnosis.skipped {
        if let Some(record) = &h.memory {
            line.push_str(&format!(
                "; skipped {}: failed {}/{}",
                h.label(),
                record.tried,
                record.tried
            ));
        }
    }
    line
}

fn describe_prediction(prediction: &Prediction) -> String {
    let breached = prediction.breaches.iter().filter(|b| b.seconds == 0.0).count();
    let next = prediction.breaches.iter().find(|b| b.seconds > 0.0);
    format!(
        "Impact ${:.0}/min; {breached} objective(s) breached{}{}",
        prediction.impact_per_minute,
        next.map(|b| format!(", {} {} in {:.0}s", b.service, b.objective, b.seconds))
            .unwrap_or_default(),
        prediction
            .cascade
            .first()
            .map(|c| format!("; {} at {:.0}% risk of cascade", c.service, c.probability * 100.0))
            .unwrap_or_default()
    )
}

fn describe_checks(checks: &SafetyChecks, status: ActionStatus) -> String {
    if status == ActionStatus::InProgress {
        return "Running safety checks".into();
    }
    let failed: Vec<&str> = checks
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.detail.as_str())
        .collect();
    if failed.is_empty() {
        let passed: Vec<String> = checks.checks.iter().map(|c| c.name.replace('_', " ")).collect();
        format!("Safety checks passed: {}", passed.join(", "))
    } else {
        format!("Safety check failed: {}", failed.join("; "))
    }
}

fn describe_step(step: &Step, status: ActionStatus) -> String {
    let (n, of) = (step.step, step.of);
    let line = match (status, &step.error) {
        (_, Some(error)) => format!("Step {n}/{of} failed: {error}"),
        (ActionStatus::InProgress, None) => format!("Step {n}/{of}: {}", step.label()),
        (_, None) => format!("Step {n}/{of} complete: {}", step.label()),
    };
    // Only the server writes descriptions; the browser never decodes a
    // step's actuation, so this stays out of its bundle.
    #[cfg(feature = "runtime")]
    if let Some(actuation) = step.actuation.as_deref() {
        return line + &describe_actuation(actuation);
    }
    line
}

/// How a step went out, for a step through an actuator outside the
/// engine: " (twin: POST … , receipt act-3 succeeded, 2 attempts)".
#[cfg(feature = "runtime")]
fn describe_actuation(actuation: &super::Actuation) -> String {
    let request = &actuation.request;
    if request.actuator == "embedded twin" {
        return String::new();
    }
    let mut parts = vec![format!("{}: {} {}", request.actuator, request.method, request.url)];
    if let Some(receipt) = &actuation.receipt {
        parts.push(format!("receipt {} {}", receipt.id, receipt.status.as_str()));
    }
    if actuation.attempts > 1 {
        parts.push(format!("{} attempts", actuation.attempts));
    }
    format!(" ({})", parts.join(", "))
}

fn describe_verification(verification: &Verification) -> String {
    let watch = verification.watch.join(", ");
    let outstanding = verification.outstanding.join("; ");
    match (verification.verified, &verification.root_recovered) {
        (None, _) => format!("Verifying recovery of {watch} from telemetry"),
        (Some(true), _) => format!(
            "Recovery verified: {watch} within objectives for {}s",
            verification.window_seconds
        ),
        (Some(false), Some(root)) => format!("{root} recovered, but trouble remains elsewhere: {outstanding}"),
        (Some(false), None) => format!(
            "No recovery after {:.0}s: {outstanding}",
            verification.watched_seconds.unwrap_or_default()
        ),
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::protocol::{
        AgentType, Cause, FaultKind, FixTrackRecord, Hypothesis, RootCause, SafetyCheck, Tally, Vote,
        findings::tests::{plan, step},
    };

    fn described(status: ActionStatus, details: ActionDetails) -> String {
        AgentAction {
            agent_type: AgentType::Resolution,
            action_id: Uuid::nil(),
            description: String::new(),
            timestamp: chrono::DateTime::UNIX_EPOCH,
            status,
            details,
            duration_ms: None,
            confidence: None,
            queries: Vec::new(),
        }
        .describe()
    }

    #[test]
    fn a_step_is_described_by_its_place_its_action_and_its_outcome() {
        let step_of = |error| ActionDetails::Step(step(error));
        assert_eq!(
            described(ActionStatus::InProgress, step_of(None)),
            "Step 1/2: Scale connection pool on postgres-primary"
        );
        assert_eq!(
            described(ActionStatus::Completed, step_of(None)),
            "Step 1/2 complete: Scale connection pool on postgres-primary"
        );
        assert_eq!(
            described(ActionStatus::Failed, step_of(Some("no pool to scale"))),
            "Step 1/2 failed: no pool to scale"
        );
    }

    #[test]
    fn a_vote_is_described_by_its_plan_then_by_its_count() {
        let mut vote = Vote {
            vote_on: plan(),
            tally: None,
        };
        assert_eq!(
            described(ActionStatus::InProgress, ActionDetails::Vote(vote.clone())),
            "Putting the plan to a vote: Connection pool exhaustion playbook for postgres-primary: \
             Scale connection pool on postgres-primary"
        );
        vote.tally = Some(Tally {
            approvals: 4,
            voters: 5,
            quorum: 4,
            tolerated: 1,
            passed: true,
            dissent: vec![AgentType::Prediction],
        });
        assert_eq!(
            described(ActionStatus::Completed, ActionDetails::Vote(vote)),
            "Consensus: Approved 4/5 (quorum 4, tolerates 1 faulty); dissent: prediction"
        );
    }

    #[test]
    fn safety_checks_name_what_passed_or_what_failed() {
        let check = |name: &str, passed, detail: &str| SafetyCheck {
            name: name.into(),
            passed,
            detail: detail.into(),
        };
        let passed = SafetyChecks {
            checks: vec![
                check("backup_verified", true, "no stateful service is touched"),
                check("targets_owned", true, "every target is ours to change"),
            ],
        };
        assert_eq!(
            described(ActionStatus::Completed, ActionDetails::SafetyChecks(passed)),
            "Safety checks passed: backup verified, targets owned"
        );
        let failed = SafetyChecks {
            checks: vec![check("targets_owned", false, "`stripe` is a third party")],
        };
        assert_eq!(
            described(ActionStatus::Failed, ActionDetails::SafetyChecks(failed)),
            "Safety check failed: `stripe` is a third party"
        );
    }

    #[test]
    fn a_diagnosis_says_what_memory_added() {
        let mut top = Hypothesis {
            root: RootCause {
                service: "redis-cache".into(),
                fault: FaultKind::CacheFailure,
            },
            score: 0.9,
            confidence: 0.9,
            signature_match: 0.9,
            coverage: 0.9,
            evidence: Vec::new(),
            path: Vec::new(),
            memory: None,
        };
        let cold = Diagnosis {
            hypotheses: vec![top.clone()],
            ..Diagnosis::default()
        };
        assert_eq!(
            described(ActionStatus::Completed, ActionDetails::Diagnosis(cold)),
            "Root cause: cache failure on redis-cache (90% confident)"
        );
        top.memory = Some(FixTrackRecord {
            service: "redis-cache".into(),
            fault: "cache_failure".into(),
            tried: 4,
            healed: 4,
        });
        let warm = Diagnosis {
            hypotheses: vec![top.clone()],
            similar_incidents: 4,
            ..Diagnosis::default()
        };
        let compound = Diagnosis {
            hypotheses: vec![top.clone()],
            causes: vec![
                Cause {
                    root: top.root.clone(),
                    impact: 4.5,
                    explains: vec!["redis-cache".into()],
                },
                Cause {
                    root: RootCause {
                        service: "user-service".into(),
                        fault: FaultKind::CpuSaturation,
                    },
                    impact: 1.0,
                    explains: vec!["user-service".into()],
                },
            ],
            ..Diagnosis::default()
        };
        assert_eq!(
            described(ActionStatus::Completed, ActionDetails::Diagnosis(compound)),
            "2 causes at once, the larger harm first: cache failure on redis-cache (harm 4.5); \
             CPU saturation on user-service (harm 1)"
        );
        assert_eq!(
            described(ActionStatus::Completed, ActionDetails::Diagnosis(warm)),
            "Root cause: cache failure on redis-cache (90% confident); matched 4 similar incidents; \
             last fix succeeded 4/4"
        );
    }
}
