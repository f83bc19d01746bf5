//! What each agent action worked from or produced, typed: the `details` of
//! an `agent_action`. One variant of [`ActionDetails`] per kind of action,
//! tagged by `kind` inside the object (seed 000 keeps `details` an object),
//! and one [`AgentAction::describe`] that turns an action into the sentence
//! the feed, the report and the logs show. The server writes that sentence
//! into `description` from the same function, so no sentence is written
//! twice.
//!
//! Old logs (written before the payloads were typed) carry no `kind`; the
//! reader infers it from the keys each kind always had
//! ([`legacy_kind`]), and the field names are the old ones, so an old
//! database still reads.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    ActionStatus, AgentAction, AgentType, ConfigChangeEvent, FixTrackRecord, HealthState, Metric, Recall, Remediation,
    RootCause,
};

/// A metric far from its baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Anomaly {
    /// The service.
    pub service: String,
    /// The metric.
    pub metric: Metric,
    /// Its recent mean.
    pub value: f64,
    /// Its baseline mean.
    pub baseline: f64,
    /// Deviation in sigma, positive in the harmful direction.
    pub sigma: f64,
}

/// A monitor's absolute threshold crossed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MonitorBreach {
    /// The monitor, as in `Data drift`.
    pub monitor: String,
    /// The service.
    pub service: String,
    /// The metric.
    pub metric: Metric,
    /// The reading that crossed (the mean of the window).
    pub value: f64,
    /// "feature_psi 5.930 > 0.2".
    pub detail: String,
}

/// The known pattern the anomalies look most like.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PatternMatch {
    /// The signature's name, as in `Connection pool exhaustion`.
    pub pattern: String,
    /// Where it fits best.
    pub service: String,
    /// How well, 0..=1.
    pub score: f64,
}

/// Detection's findings, as published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DetectionFindings {
    /// Series examined.
    pub metrics_analyzed: usize,
    /// Anomalies found (more than `top_anomalies` lists).
    pub anomalies_detected: usize,
    /// Monitors whose absolute thresholds are crossed.
    #[serde(default)]
    pub monitor_breaches: Vec<MonitorBreach>,
    /// Services with at least one anomaly, strongest first.
    #[serde(default)]
    pub anomalous_services: Vec<String>,
    /// The strongest anomalies, strongest first.
    #[serde(default)]
    pub top_anomalies: Vec<Anomaly>,
    /// The best-matching known pattern.
    #[serde(default)]
    pub pattern_matched: Option<PatternMatch>,
    /// What the incident memory holds of similar past incidents.
    #[serde(default)]
    pub recall: Recall,
}

/// A metric behind a hypothesis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MetricEvidence {
    /// The metric.
    pub metric: Metric,
    /// Its deviation from baseline, in sigma (signed).
    pub sigma: f64,
}

/// A candidate root cause, with its evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Hypothesis {
    /// The service and fault.
    pub root: RootCause,
    /// Overall score: 0..=1 from the telemetry, then scaled by memory
    /// (×0.5 to ×1.5).
    pub score: f64,
    /// Share of the score among the hypotheses, as a confidence.
    pub confidence: f64,
    /// How well the signature matched, 0..=1.
    pub signature_match: f64,
    /// Share of the anomaly (weighted by strength) it explains.
    pub coverage: f64,
    /// The signature's metrics on the service.
    #[serde(default)]
    pub evidence: Vec<MetricEvidence>,
    /// A call path from a reported service to the root, when there is one.
    #[serde(default)]
    pub path: Vec<String>,
    /// Its fix's track record on similar past incidents, if it ran on any.
    #[serde(default)]
    pub memory: Option<FixTrackRecord>,
}

impl Hypothesis {
    /// "connection-pool exhaustion on postgres-primary".
    pub fn label(&self) -> String {
        format!("{} on {}", self.root.fault.label(), self.root.service)
    }
}

/// A service the top hypothesis's root can reach, and its health.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Affected {
    /// The service.
    pub service: String,
    /// Its health then.
    pub health: HealthState,
    /// It is the root itself (the top hypothesis's service), where the
    /// trouble spreads from. Absent (false) in logs written before it was.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub root: bool,
}

/// What diagnosis concluded.
///
/// The browser reads a diagnosis for its blast radius (the dependency map)
/// and leaves the ranked hypotheses, which only an incident's page shows
/// (from [`IncidentDetail::hypotheses`](super::IncidentDetail)), unread:
/// their decoders would otherwise ship with the dashboard.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Diagnosis {
    /// Hypotheses, best first; empty when nothing explains the anomalies.
    #[serde(default)]
    #[cfg_attr(not(feature = "runtime"), serde(skip_deserializing))]
    pub hypotheses: Vec<Hypothesis>,
    /// Services that depend on the top hypothesis's root, and their health.
    #[serde(default)]
    pub blast_radius: Vec<Affected>,
    /// Hypotheses left out because their fix ran on similar incidents and
    /// never healed one: a failed fix is not repeated.
    #[serde(default)]
    #[cfg_attr(not(feature = "runtime"), serde(skip_deserializing))]
    pub skipped: Vec<Hypothesis>,
    /// Similar past incidents weighed.
    #[serde(default)]
    pub similar_incidents: usize,
    /// The anomalous services it had to explain.
    #[serde(default)]
    pub anomalous: Vec<String>,
}

/// A healthy service at risk of degrading next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CascadeRisk {
    /// The service.
    pub service: String,
    /// Probability it degrades next, 0..=1.
    pub probability: f64,
}

/// When an objective breaks at the current trend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ObjectiveBreach {
    /// The service.
    pub service: String,
    /// The objective, as in `p99 ≤ 400 ms`.
    pub objective: String,
    /// Seconds until breach; 0 when already breached.
    pub seconds: f64,
}

/// Dollars per minute lost at one service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Loss {
    /// The service.
    pub service: String,
    /// Dollars per minute.
    pub per_minute: f64,
}

/// What prediction concluded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Prediction {
    /// Healthy services at risk, riskiest first.
    #[serde(default)]
    pub cascade: Vec<CascadeRisk>,
    /// Objectives breached or heading there, soonest first.
    #[serde(default)]
    pub breaches: Vec<ObjectiveBreach>,
    /// Loss per service, largest first.
    #[serde(default)]
    pub losses: Vec<Loss>,
    /// Total dollars per minute.
    pub impact_per_minute: f64,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlannedStep {
    /// The action and its target.
    pub remediation: Remediation,
    /// Nominal simulated seconds.
    pub seconds: f64,
}

impl PlannedStep {
    /// "Scale connection pool on postgres-primary".
    pub fn label(&self) -> String {
        format!("{} on {}", self.remediation.kind.label(), self.remediation.target)
    }
}

/// A remediation plan for one hypothesis: what the swarm votes on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Plan {
    /// The root cause it treats.
    pub root: RootCause,
    /// The playbook it comes from.
    pub playbook: String,
    /// The steps, in order.
    pub steps: Vec<PlannedStep>,
    /// Services whose recovery proves the plan worked.
    #[serde(default)]
    pub watch: Vec<String>,
}

impl Plan {
    /// "Connection pool exhaustion playbook for postgres-primary: …".
    pub fn summary(&self) -> String {
        format!(
            "{} for {}: {}",
            self.playbook,
            self.root.service,
            self.steps
                .iter()
                .map(PlannedStep::label)
                .collect::<Vec<_>>()
                .join(", then ")
        )
    }
}

/// A pre-flight check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SafetyCheck {
    /// What is checked, as in `backup_verified`.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// The facts.
    pub detail: String,
}

/// What an analysis agent is about to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// Detection's first scan.
    ScanTelemetry,
    /// Diagnosis from scratch.
    RankHypotheses,
    /// Diagnosis of an incident the memory recognises.
    ConfirmKnownRoot,
    /// Prediction.
    ProjectImpact,
    /// Detection again, after a fix or a wait.
    Reexamine,
    /// Diagnosis again, of what is left.
    RankRemaining,
    /// Communication's report at the close.
    WriteReport,
}

/// An agent started its job; its findings come with the final message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Started {
    /// The job. Absent in logs written before payloads were typed.
    #[serde(default)]
    pub task: Option<Task>,
    /// Services the job covers, when it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<usize>,
}

/// The agent's circuit was open: the job was not sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CircuitOpen {
    /// Which try this was, from 1.
    pub attempt: u32,
    /// Seconds until the circuit lets a probe through.
    #[serde(default)]
    pub open_for_seconds: f64,
}

/// The agent's job failed as if its process crashed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Crashed {
    /// Which try this was, from 1.
    pub attempt: u32,
    /// Tries allowed before the incident goes to a person.
    pub of: u32,
}

/// Resolution's readiness after diagnosis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Readiness {
    /// Whether there is a hypothesis to plan for.
    pub ready: bool,
}

/// Communication opened the status-page entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatusPage {
    /// The entry's state, as in `investigating`.
    pub status_page: String,
    /// Who hears of it.
    #[serde(default)]
    pub audience: Vec<String>,
    /// The incident's title, as posted.
    #[serde(default)]
    pub title: String,
}

/// The count of a vote, as the resolution agent reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Tally {
    /// Approvals cast.
    pub approvals: usize,
    /// Voters (n).
    pub voters: usize,
    /// Approvals needed (2f + 1).
    pub quorum: usize,
    /// Faulty voters tolerated (f).
    pub tolerated: usize,
    /// The plan may run.
    pub passed: bool,
    /// Voters against the outcome.
    #[serde(default)]
    pub dissent: Vec<AgentType>,
}

impl Tally {
    /// "Approved 4/5 (quorum 4, tolerates 1 faulty); dissent: prediction".
    pub fn line(&self) -> String {
        let mut line = format!(
            "{} {}/{} (quorum {}, tolerates {} faulty)",
            if self.passed { "Approved" } else { "Rejected" },
            self.approvals,
            self.voters,
            self.quorum,
            self.tolerated,
        );
        if !self.dissent.is_empty() {
            let names: Vec<&str> = self.dissent.iter().map(|a| a.as_str()).collect();
            line.push_str("; dissent: ");
            line.push_str(&names.join(", "));
        }
        line
    }
}

/// The plan put to the swarm's vote, and once counted, the count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Vote {
    /// The plan.
    pub vote_on: Plan,
    /// The count, once the vote is over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tally: Option<Tally>,
}

/// The safety checks before a plan's first step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SafetyChecks {
    /// Every check; empty while they run.
    #[serde(default)]
    pub checks: Vec<SafetyCheck>,
}

/// One step of a plan, applied to the estate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Step {
    /// Its place in the plan, from 1.
    pub step: usize,
    /// The plan's steps in all.
    pub of: usize,
    /// The remediation.
    pub action: super::ActionKind,
    /// The service it is applied to.
    pub target: String,
    /// The configuration it changed, once applied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<ConfigChangeEvent>,
    /// Side effects people should know of, once applied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub side_effects: Vec<String>,
    /// Why it could not be applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Step {
    /// "Scale connection pool on postgres-primary".
    pub fn label(&self) -> String {
        format!("{} on {}", self.action.label(), self.target)
    }
}

/// Whether recovery shows in the telemetry, and holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Verification {
    /// The services whose recovery proves the plan worked.
    pub watch: Vec<String>,
    /// Seconds recovery must hold.
    #[serde(default)]
    pub window_seconds: u64,
    /// The verdict; absent while verifying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    /// Objectives still broken at the end, as `service: what`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outstanding: Vec<String>,
    /// The plan's root, when it recovered but trouble remains elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_recovered: Option<String>,
    /// Simulated seconds it watched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watched_seconds: Option<f64>,
}

/// Steps undone newest first, because the plan did not heal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Rollback {
    /// Steps to undo.
    #[serde(default)]
    pub steps: usize,
    /// What was undone (or left in place), once done.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rolled_back: Vec<String>,
}

/// Waiting while another incident remediates the same root service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClaimWait {
    /// The incident remediating it.
    pub holder: Uuid,
    /// The service.
    pub root: String,
}

/// Communication's report at the close.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Report {
    /// The status-page line.
    pub status_page: String,
    /// The report's length in characters.
    #[serde(default)]
    pub report_chars: usize,
    /// Whether a webhook was notified.
    #[serde(default)]
    pub webhook: bool,
}

/// What an agent action worked from or produced, by kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ActionDetails {
    /// An agent started; findings follow with the final message.
    Started(Started),
    /// Detection's findings.
    Detection(DetectionFindings),
    /// Diagnosis's ranked hypotheses, with evidence and blast radius.
    Diagnosis(Diagnosis),
    /// Prediction's cascade, breaches and cost.
    Prediction(Prediction),
    /// Resolution's readiness.
    Readiness(Readiness),
    /// Communication's status page.
    StatusPage(StatusPage),
    /// The agent's circuit was open.
    CircuitOpen(CircuitOpen),
    /// The agent crashed mid-job.
    Crashed(Crashed),
    /// The plan put to the vote.
    Vote(Vote),
    /// Safety checks.
    SafetyChecks(SafetyChecks),
    /// A remediation step.
    Step(Step),
    /// Verification from telemetry.
    Verification(Verification),
    /// A rollback.
    Rollback(Rollback),
    /// Waiting on another incident's claim.
    ClaimWait(ClaimWait),
    /// The report and notifications.
    Report(Report),
    /// Left out of this copy: a slimmed snapshot keeps only what the
    /// dashboard reads, and the browser reads only a diagnosis's.
    Omitted(Omitted),
}

/// Details left out of a copy, and of what kind they were.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Omitted {
    /// The kind left out, as in `vote`.
    pub of: String,
}

impl ActionDetails {
    /// The wire `kind`, as in `step`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Started(_) => "started",
            Self::Detection(_) => "detection",
            Self::Diagnosis(_) => "diagnosis",
            Self::Prediction(_) => "prediction",
            Self::Readiness(_) => "readiness",
            Self::StatusPage(_) => "status_page",
            Self::CircuitOpen(_) => "circuit_open",
            Self::Crashed(_) => "crashed",
            Self::Vote(_) => "vote",
            Self::SafetyChecks(_) => "safety_checks",
            Self::Step(_) => "step",
            Self::Verification(_) => "verification",
            Self::Rollback(_) => "rollback",
            Self::ClaimWait(_) => "claim_wait",
            Self::Report(_) => "report",
            Self::Omitted(_) => "omitted",
        }
    }

    /// These details with only their kind kept.
    pub fn omitted(&self) -> Self {
        match self {
            Self::Omitted(omitted) => Self::Omitted(omitted.clone()),
            other => Self::Omitted(Omitted {
                of: other.kind().to_owned(),
            }),
        }
    }

    /// Reads the fields of the `kind` payload from `fields`, a map without
    /// the tag.
    ///
    /// The browser decodes only the kind it reads (a diagnosis, for its
    /// blast radius) and keeps only the kind of the rest, as
    /// [`Self::Omitted`]: every other decoder would ship in the wasm to be
    /// thrown away. That also lets an older page read a newer server's kinds.
    pub(crate) fn from_fields<'de, D: serde::Deserializer<'de>>(kind: &str, fields: D) -> Result<Self, D::Error> {
        Ok(match kind {
            "diagnosis" => Self::Diagnosis(Deserialize::deserialize(fields)?),
            "omitted" => Self::Omitted(Deserialize::deserialize(fields)?),
            #[cfg(not(feature = "runtime"))]
            other => {
                serde::de::IgnoredAny::deserialize(fields)?;
                Self::Omitted(Omitted { of: other.to_owned() })
            }
            #[cfg(feature = "runtime")]
            "vote" => Self::Vote(Deserialize::deserialize(fields)?),
            #[cfg(feature = "runtime")]
            "started" => Self::Started(Deserialize::deserialize(fields)?),
            #[cfg(feature = "runtime")]
            "detection" => Self::Detection(Deserialize::deserialize(fields)?),
            #[cfg(feature = "runtime")]
            "prediction" => Self::Prediction(Deserialize::deserialize(fields)?),
            #[cfg(feature = "runtime")]
            "readiness" => Self::Readiness(Deserialize::deserialize(fields)?),
            #[cfg(feature = "runtime")]
            "status_page" => Self::StatusPage(Deserialize::deserialize(fields)?),
            #[cfg(feature = "runtime")]
            "circuit_open" => Self::CircuitOpen(Deserialize::deserialize(fields)?),
            #[cfg(feature = "runtime")]
            "crashed" => Self::Crashed(Deserialize::deserialize(fields)?),
            #[cfg(feature = "runtime")]
            "safety_checks" => Self::SafetyChecks(Deserialize::deserialize(fields)?),
            #[cfg(feature = "runtime")]
            "step" => Self::Step(Deserialize::deserialize(fields)?),
            #[cfg(feature = "runtime")]
            "verification" => Self::Verification(Deserialize::deserialize(fields)?),
            #[cfg(feature = "runtime")]
            "rollback" => Self::Rollback(Deserialize::deserialize(fields)?),
            #[cfg(feature = "runtime")]
            "claim_wait" => Self::ClaimWait(Deserialize::deserialize(fields)?),
            #[cfg(feature = "runtime")]
            "report" => Self::Report(Deserialize::deserialize(fields)?),
            #[cfg(feature = "runtime")]
            other => {
                return Err(serde::de::Error::custom(format_args!(
                    "unknown action details kind `{other}`"
                )));
            }
        })
    }
}

/// The kind of an action's details written before they carried one, from
/// the keys that kind always had. `None` for an object no kind explains.
///
/// Only the server reads old logs: a page gets every event from a server,
/// which writes the kind, so the browser build leaves this out.
#[cfg(feature = "runtime")]
pub(crate) fn legacy_kind(keys: &[&str]) -> Option<&'static str> {
    let has = |key: &str| keys.contains(&key);
    Some(match () {
        () if keys.is_empty() => "started",
        () if has("vote_on") => "vote",
        () if has("hypotheses") => "diagnosis",
        () if has("metrics_analyzed") => "detection",
        () if has("impact_per_minute") => "prediction",
        () if has("checks") => "safety_checks",
        () if has("step") => "step",
        () if has("watch") => "verification",
        () if has("rolled_back") => "rollback",
        () if has("holder") => "claim_wait",
        () if has("circuit") => "circuit_open",
        () if has("attempt") => "crashed",
        () if has("report_chars") => "report",
        () if has("audience") => "status_page",
        () => return None,
    })
}

#[cfg(not(feature = "runtime"))]
pub(crate) fn legacy_kind(_keys: &[&str]) -> Option<&'static str> {
    None
}

impl AgentAction {
    /// Whether this action is the swarm voting on a plan.
    pub fn is_vote(&self) -> bool {
        match &self.details {
            ActionDetails::Vote(_) => true,
            ActionDetails::Omitted(omitted) => omitted.of == "vote",
            _ => false,
        }
    }

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
        Some(Task::WriteReport) => "Writing the incident report and notifications".into(),
        None => "Working".into(),
    }
}

fn describe_detection(findings: &DetectionFindings) -> String {
    let Some(top) = findings.top_anomalies.first() else {
        return format!("Nothing anomalous found across {} metrics", findings.metrics_analyzed);
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
    match (status, &step.error) {
        (_, Some(error)) => format!("Step {n}/{of} failed: {error}"),
        (ActionStatus::InProgress, None) => format!("Step {n}/{of}: {}", step.label()),
        (_, None) => format!("Step {n}/{of} complete: {}", step.label()),
    }
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
    use super::*;
    use crate::protocol::{ActionKind, FaultKind};

    fn plan() -> Plan {
        Plan {
            root: RootCause {
                service: "postgres-primary".into(),
                fault: FaultKind::ConnectionPoolExhaustion,
            },
            playbook: "Connection pool exhaustion playbook".into(),
            steps: vec![PlannedStep {
                remediation: Remediation {
                    kind: ActionKind::ScaleConnectionPool,
                    target: "postgres-primary".into(),
                },
                seconds: 2.0,
            }],
            watch: vec!["api-gateway".into()],
        }
    }

    fn step(error: Option<&str>) -> Step {
        Step {
            step: 1,
            of: 2,
            action: ActionKind::ScaleConnectionPool,
            target: "postgres-primary".into(),
            changes: Vec::new(),
            side_effects: Vec::new(),
            error: error.map(str::to_owned),
        }
    }

    /// One of every kind.
    fn samples() -> Vec<ActionDetails> {
        vec![
            ActionDetails::Started(Started {
                task: Some(Task::ScanTelemetry),
                services: Some(17),
            }),
            ActionDetails::Detection(DetectionFindings {
                metrics_analyzed: 180,
                anomalies_detected: 3,
                monitor_breaches: Vec::new(),
                anomalous_services: vec!["postgres-primary".into()],
                top_anomalies: vec![Anomaly {
                    service: "postgres-primary".into(),
                    metric: Metric::PoolUsage,
                    value: 1.0,
                    baseline: 0.4,
                    sigma: 14.0,
                }],
                pattern_matched: Some(PatternMatch {
                    pattern: "Connection pool exhaustion".into(),
                    service: "postgres-primary".into(),
                    score: 0.9,
                }),
                recall: Recall::default(),
            }),
            ActionDetails::Diagnosis(Diagnosis {
                blast_radius: vec![Affected {
                    service: "postgres-primary".into(),
                    health: HealthState::Down,
                    root: true,
                }],
                ..Diagnosis::default()
            }),
            ActionDetails::Prediction(Prediction {
                impact_per_minute: 120.0,
                ..Prediction::default()
            }),
            ActionDetails::Readiness(Readiness { ready: true }),
            ActionDetails::StatusPage(StatusPage {
                status_page: "investigating".into(),
                audience: vec!["on_call".into()],
                title: "Pool".into(),
            }),
            ActionDetails::CircuitOpen(CircuitOpen {
                attempt: 2,
                open_for_seconds: 4.5,
            }),
            ActionDetails::Crashed(Crashed { attempt: 1, of: 5 }),
            ActionDetails::Vote(Vote {
                vote_on: plan(),
                tally: None,
            }),
            ActionDetails::SafetyChecks(SafetyChecks { checks: Vec::new() }),
            ActionDetails::Step(step(None)),
            ActionDetails::Verification(Verification {
                watch: vec!["api-gateway".into()],
                window_seconds: 4,
                verified: Some(false),
                outstanding: vec!["api-gateway: p99 812 ms".into()],
                root_recovered: None,
                watched_seconds: Some(30.0),
            }),
            ActionDetails::Rollback(Rollback {
                steps: 1,
                rolled_back: vec!["Scale connection pool on postgres-primary".into()],
            }),
            ActionDetails::ClaimWait(ClaimWait {
                holder: Uuid::from_u128(9),
                root: "postgres-primary".into(),
            }),
            ActionDetails::Report(Report {
                status_page: "Resolved".into(),
                report_chars: 900,
                webhook: false,
            }),
            ActionDetails::Omitted(Omitted { of: "vote".into() }),
        ]
    }

    #[test]
    fn every_kind_is_tagged_first_and_reads_back_in_any_key_order() {
        for details in samples() {
            let text = serde_json::to_string(&details).unwrap();
            assert!(
                text.starts_with(&format!("{{\"kind\":\"{}\"", details.kind())),
                "{text}"
            );
            let streamed: ActionDetails = serde_json::from_str(&text).unwrap();
            assert_eq!(streamed, details, "{text}");
            // A Value sorts its keys: `kind` may come after the payload's.
            let sorted: ActionDetails = serde_json::from_value(serde_json::to_value(&details).unwrap()).unwrap();
            assert_eq!(sorted, details);
        }
    }

    #[test]
    fn an_unknown_kind_is_refused_by_name() {
        let error = serde_json::from_str::<ActionDetails>(r#"{"kind":"teleport","to":"mars"}"#).unwrap_err();
        assert!(
            error.to_string().contains("unknown action details kind `teleport`"),
            "{error}"
        );
    }

    #[test]
    fn details_written_before_kinds_read_by_their_keys() {
        let read = |json: serde_json::Value| serde_json::from_value::<ActionDetails>(json).unwrap();
        let started = read(serde_json::json!({}));
        assert_eq!(started.kind(), "started");
        let ActionDetails::Step(step) = read(serde_json::json!({
            "step": 1, "of": 2, "action": "scale_connection_pool", "target": "postgres-primary",
            "changes": [{"tick": 612, "service": "postgres-primary", "key": "pool_size", "from": "50", "to": "100", "cause": "scale_connection_pool"}],
            "side_effects": [],
        })) else {
            panic!("a step");
        };
        assert_eq!((step.step, step.of, step.changes[0].to.as_str()), (1, 2, "100"));
        let ActionDetails::Vote(vote) = read(serde_json::json!({
            "vote_on": serde_json::to_value(plan()).unwrap(), "approvals": 5, "quorum": 4, "passed": true,
        })) else {
            panic!("a vote");
        };
        assert_eq!(vote.vote_on, plan());
        for (keys, kind) in [
            (&["attempt", "of"][..], "crashed"),
            (&["attempt", "circuit"], "circuit_open"),
            (&["holder", "root"], "claim_wait"),
            (&["outstanding", "verified", "watch"], "verification"),
            (&["rolled_back"], "rollback"),
            (&["report_chars", "status_page", "webhook"], "report"),
            (&["audience", "status_page"], "status_page"),
            (&["blast_radius", "hypotheses", "skipped"], "diagnosis"),
            (&["breaches", "cascade", "impact_per_minute", "losses"], "prediction"),
        ] {
            assert_eq!(legacy_kind(keys), Some(kind), "{keys:?}");
        }
        assert_eq!(legacy_kind(&["nonsense"]), None);
    }

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
            hypotheses: vec![top],
            similar_incidents: 4,
            ..Diagnosis::default()
        };
        assert_eq!(
            described(ActionStatus::Completed, ActionDetails::Diagnosis(warm)),
            "Root cause: cache failure on redis-cache (90% confident); matched 4 similar incidents; \
             last fix succeeded 4/4"
        );
    }
}
