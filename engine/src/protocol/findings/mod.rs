//! What each agent action worked from or produced, typed: the `details` of
//! an `agent_action`. One variant of [`ActionDetails`] per kind of action,
//! tagged by `kind` inside the object (seed 000 keeps `details` an object).
//! The sentence an action is for people is [`AgentAction::describe`] of its
//! details (in `describe.rs`), which the server stores as `description`, so
//! no sentence is written twice.
//!
//! Old logs (written before the payloads were typed) carry no `kind`; the
//! reader infers it from the keys each kind always had
//! ([`legacy_kind`]), and the field names are the old ones, so an old
//! database still reads.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    AgentAction, AgentType, ConfigChangeEvent, FixTrackRecord, HealthState, Metric, Recall, Remediation, RootCause,
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
    /// Warning levels crossed: off, but inside every objective.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<MonitorBreach>,
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
        self.root.label()
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

/// One cause of an incident: a hypothesis in the smallest set that explains
/// the whole anomaly, with the harm it accounts for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Cause {
    /// The service and fault (one of the diagnosis's hypotheses).
    pub root: RootCause,
    /// The harm it accounts for, as an incident's impact is counted: a
    /// service down 2, degraded 1, each other objective missed 1. A
    /// service that two causes both reach counts half for each.
    pub impact: f64,
    /// The anomalous services whose anomalies it explains, its own first.
    #[serde(default)]
    pub explains: Vec<String>,
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
    /// The smallest set of causes that explains the anomaly, largest
    /// impact first; the first is also the first hypothesis. Two faults at
    /// once give two. Only an incident's page shows them.
    #[serde(default)]
    #[cfg_attr(not(feature = "runtime"), serde(skip_deserializing))]
    pub causes: Vec<Cause>,
}

impl Diagnosis {
    /// With two causes or more, what proves `root`'s fix on its own: the
    /// services it explains that no other cause does (its own always).
    /// `None` with a single cause, or when `root` is none of them.
    pub fn watched_for_cause(&self, root: &RootCause) -> Option<Vec<String>> {
        if self.causes.len() < 2 {
            return None;
        }
        let cause = self.causes.iter().find(|c| c.root == *root)?;
        let others = || self.causes.iter().filter(|c| c.root != *root);
        let watched: Vec<String> = (cause.explains.iter())
            .filter(|s| **s == root.service || others().all(|o| !o.explains.contains(s)))
            .cloned()
            .collect();
        debug_assert!(watched.contains(&root.service), "a cause's own service is watched");
        Some(watched)
    }

    /// Causes besides those `fixed`.
    pub fn causes_left<'a>(&'a self, fixed: &'a [RootCause]) -> impl Iterator<Item = &'a Cause> {
        self.causes.iter().filter(|c| !fixed.contains(&c.root))
    }
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
        self.remediation.label()
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
    /// Detection again, of a warning inside every objective.
    RecheckWarning,
    /// Detection again, of a report nothing in the telemetry explains yet.
    RecheckReport,
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
    /// Through an actuator outside the engine: the request and its receipt.
    /// The browser's live reducer does not read it (its decoder would ship
    /// in the initial bundle): the incident page gets it from the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(not(feature = "runtime"), serde(skip_deserializing))]
    pub actuation: Option<Box<super::Actuation>>,
}

impl Step {
    /// "Scale connection pool on postgres-primary".
    pub fn label(&self) -> String {
        self.action.on(&self.target)
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
    /// The undo receipts from an actuator outside the engine (the browser's
    /// live reducer skips them, as a step's actuation).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(not(feature = "runtime"), serde(skip_deserializing))]
    pub receipts: Vec<super::ActionReceipt>,
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

/// A watched estate that could not be read when an agent needed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EstateUnreadable {
    /// Which try of the agent's job this was, from 1.
    pub attempt: u32,
    /// Tries in all before the incident goes to people.
    pub of: u32,
    /// Why, naming the Prometheus, as in `Prometheus at http://… did not answer: …`.
    pub reason: String,
}

/// The plan an advisory incident proposes: the vote passed it, and nobody
/// runs it but people.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Advice {
    /// The plan, step by step.
    pub proposed: Plan,
    /// The exact request each step would send, when an actuator is set in
    /// a dry run (the browser's live reducer skips them, as a step's
    /// actuation).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(not(feature = "runtime"), serde(skip_deserializing))]
    pub requests: Vec<super::ActuatorRequest>,
}

/// The PromQL behind a finding on a watched estate: what was asked, over
/// which range, and what came back, so a person can run it again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueryEvidence {
    /// The service the finding is about.
    pub service: String,
    /// The figure.
    pub metric: Metric,
    /// The range query, placeholders filled in; the service is its series
    /// with that label.
    pub query: String,
    /// The range read.
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Seconds between points.
    pub step_seconds: u64,
    /// The service's last values, oldest first.
    pub values: Vec<f64>,
    /// The baseline (mean) they were judged against, learnt from the range.
    pub baseline: f64,
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
    /// A watched estate could not be read for the agent's job.
    EstateUnreadable(EstateUnreadable),
    /// Advisory mode: the plan the vote passed, proposed to people and run
    /// by nobody.
    Advice(Advice),
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
            Self::EstateUnreadable(_) => "estate_unreadable",
            Self::Advice(_) => "advice",
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
            "estate_unreadable" => Self::EstateUnreadable(Deserialize::deserialize(fields)?),
            #[cfg(feature = "runtime")]
            "advice" => Self::Advice(Deserialize::deserialize(fields)?),
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
}

#[cfg(test)]
pub(crate) mod tests;
