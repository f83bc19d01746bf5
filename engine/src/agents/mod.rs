//! The five agents of the swarm, one module each, behind one trait.
//!
//! An agent reads the twin's telemetry and topology (never its faults, and
//! never a scenario's answer key), adds its findings to the [`Case`], and
//! later judges the remediation plan from those findings in the consensus
//! vote. Findings carry their evidence, so the dashboard and the report can
//! show *why*, and a wrong conclusion can be seen to be wrong.

pub mod communication;
pub mod detection;
pub mod diagnosis;
pub mod evidence;
pub mod prediction;
pub mod resolution;

use serde::Deserialize;

use crate::observe::Observed;
use crate::{
    catalog::Catalog,
    protocol::{ActionDetails, AgentType, Incident},
    twin::{FaultKind, Metric, ServiceKind, Worse},
};

pub use communication::Communication;
pub use detection::{Anomaly, Detection, DetectionAgent};
pub use diagnosis::{Diagnosis, DiagnosisAgent, Hypothesis};
pub use prediction::{Prediction, PredictionAgent};
pub use resolution::{Plan, ResolutionAgent};

/// Everything the swarm has learned about one incident so far.
#[derive(Debug, Clone)]
pub struct Case {
    /// The incident as reported.
    pub incident: Incident,
    /// The detection agent's findings.
    pub detection: Option<Detection>,
    /// The diagnosis agent's findings.
    pub diagnosis: Option<Diagnosis>,
    /// The prediction agent's findings.
    pub prediction: Option<Prediction>,
}

impl Case {
    pub fn new(incident: Incident) -> Self {
        Self {
            incident,
            detection: None,
            diagnosis: None,
            prediction: None,
        }
    }
}

/// What an agent tells the activity feed about its work. The sentence
/// people read is `AgentAction::describe` of these details.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The facts, typed by kind.
    pub details: ActionDetails,
    /// How sure the agent is, 0..=1.
    pub confidence: f64,
}

/// An agent's honest judgement of a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    /// Whether its evidence supports the plan.
    pub approve: bool,
    /// Which evidence, for people.
    pub reason: String,
}

/// One agent of the swarm.
pub trait Agent: Send + Sync {
    /// Which agent this is.
    fn kind(&self) -> AgentType;

    /// Studies the estate and records findings on the case.
    fn work(&self, case: &mut Case, estate: &dyn Observed) -> Report;

    /// Judges `plan` from this agent's own findings.
    fn judge(&self, case: &Case, plan: &Plan, estate: &dyn Observed) -> Judgement;
}

/// The signed deviation of every metric of `service` from its baseline,
/// over the mean of the last few samples (one sample is too noisy).
///
/// A metric that shows an objective missed deviates at least
/// [`detection::ANOMALY_SIGMA`] the harmful way, whatever its baseline
/// says: a slow leak, a filling disk or a faint loss of heartbeats moves
/// the baseline along with it, but not the objective. So does a metric
/// with enough faint evidence accumulated ([`evidence`]).
pub fn deviations(estate: &dyn Observed, service: usize) -> [f64; Metric::COUNT] {
    const WINDOW: usize = 3;
    let telemetry = &estate.telemetry(service);
    let mut z = [0.0; Metric::COUNT];
    if telemetry.history.is_empty() {
        return z;
    }
    for metric in Metric::ALL {
        let mean = telemetry.recent_mean(metric, WINDOW);
        z[metric as usize] = telemetry.baseline(metric).z(metric, mean);
    }
    // The estate's own misses: only services we own and route to (a
    // failed-over database is out of rotation, and misses nothing).
    let missed = estate.missed_by(service, WINDOW);
    let accumulated = evidence::accumulated(estate, service);
    for metric in missed.iter().flat_map(|m| &m.metrics).chain(&accumulated) {
        at_least_anomalous(&mut z, *metric);
    }
    z
}

/// Makes `metric`'s deviation at least [`detection::ANOMALY_SIGMA`] the
/// harmful way.
fn at_least_anomalous(z: &mut [f64; Metric::COUNT], metric: Metric) {
    let floor = match metric.worse() {
        Worse::Down => -detection::ANOMALY_SIGMA,
        Worse::Up | Worse::Either => detection::ANOMALY_SIGMA,
    };
    let at = &mut z[metric as usize];
    if harm(metric, *at) < detection::ANOMALY_SIGMA {
        *at = floor;
    }
}

/// How far a signed deviation goes in the harmful direction.
pub fn harm(metric: Metric, z: f64) -> f64 {
    match metric.worse() {
        Worse::Up => z,
        Worse::Down => -z,
        Worse::Either => z.abs(),
    }
}

/// Which way a signature expects a metric to move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Up,
    Down,
    Flat,
}

/// A known fault's telemetry pattern (`data/signatures.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    /// The fault kind it identifies.
    pub fault: FaultKind,
    /// A human name for the pattern.
    pub pattern: String,
    /// Service kinds it applies to.
    pub kinds: Vec<ServiceKind>,
    /// Expected movement and weight per metric.
    pub expect: std::collections::BTreeMap<Metric, (Direction, f64)>,
    /// The fault cuts the service off: its callers see it whatever its own
    /// figures show.
    #[serde(default)]
    pub unreachable: bool,
}

/// Deviation, in sigma, at which a metric counts as fully moved.
const FULL_MOVE_SIGMA: f64 = 6.0;

impl Signature {
    /// How well `z` (a service's deviations) matches, in 0..=1, with the
    /// evidence for each expected metric. Metrics the service does not have
    /// are left out.
    pub fn score(&self, estate: &dyn Observed, service: usize, z: &[f64; Metric::COUNT]) -> (f64, Vec<(Metric, f64)>) {
        let spec = estate.topology().spec(service);
        if !self.kinds.contains(&spec.kind) {
            return (0.0, Vec::new());
        }
        let (mut total, mut weights, mut evidence) = (0.0, 0.0, Vec::new());
        for (&metric, &(direction, weight)) in &self.expect {
            if !metric.applies_to(spec) {
                continue;
            }
            let d = z[metric as usize];
            let fit = match direction {
                Direction::Up => (d / FULL_MOVE_SIGMA).clamp(-1.0, 1.0),
                Direction::Down => (-d / FULL_MOVE_SIGMA).clamp(-1.0, 1.0),
                Direction::Flat => 1.0 - (d.abs() / 4.0).min(2.0),
            };
            total += weight * fit;
            weights += weight;
            evidence.push((metric, d));
        }
        if weights == 0.0 {
            return (0.0, evidence);
        }
        ((total / weights).max(0.0), evidence)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignatureFile {
    signature: Vec<Signature>,
}

/// The signature library built into the binary.
pub fn signatures() -> Result<Vec<Signature>, String> {
    let file: SignatureFile =
        toml::from_str(include_str!("../../data/signatures.toml")).map_err(|e| format!("data/signatures.toml: {e}"))?;
    if let Some(kind) = FaultKind::ALL
        .iter()
        .find(|k| !file.signature.iter().any(|s| s.fault == **k))
    {
        return Err(format!("data/signatures.toml: no signature for {}", kind.as_str()));
    }
    Ok(file.signature)
}

/// An absolute threshold on a metric (`data/monitors.toml`): seed 003's
/// monitors for the ML estate.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Monitor {
    /// What a breach is called.
    pub name: String,
    /// Service kinds it watches.
    pub kinds: Vec<ServiceKind>,
    /// The metric it reads.
    pub metric: Metric,
    /// Breached above this…
    pub above: Option<f64>,
    /// …or below this.
    pub below: Option<f64>,
    /// A warning level, inside every objective: what crosses it is
    /// watched and re-checked, never acted on.
    #[serde(default)]
    pub warning: bool,
    /// Seconds of readings it averages: a warning near the noise needs
    /// more than an objective's three.
    #[serde(default = "three_seconds")]
    pub window: usize,
}

fn three_seconds() -> usize {
    3
}

impl Monitor {
    /// Whether `value` is past the threshold.
    pub fn past(&self, value: f64) -> bool {
        match (self.above, self.below) {
            (Some(limit), _) => value > limit,
            (None, Some(limit)) => value < limit,
            (None, None) => false,
        }
    }

    /// "PSI 5.93 > 0.2".
    pub fn describe(&self, value: f64) -> String {
        match (self.above, self.below) {
            (Some(limit), _) => format!("{} {value:.3} > {limit}", self.metric.as_str()),
            (_, Some(limit)) => format!("{} {value:.3} < {limit}", self.metric.as_str()),
            (None, None) => String::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MonitorFile {
    monitor: Vec<Monitor>,
}

/// The monitors built into the binary.
pub fn monitors() -> Result<Vec<Monitor>, String> {
    let file: MonitorFile =
        toml::from_str(include_str!("../../data/monitors.toml")).map_err(|e| format!("data/monitors.toml: {e}"))?;
    if let Some(bad) = file.monitor.iter().find(|m| m.above.is_some() == m.below.is_some()) {
        return Err(format!(
            "data/monitors.toml: monitor `{}` needs exactly one of `above` and `below`",
            bad.name
        ));
    }
    Ok(file.monitor)
}

/// Rounds to two decimals, for figures people read.
pub(crate) fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The agents, and what they share: the catalog's playbooks, the signature
/// library, and the memory of past incidents.
pub struct Swarm {
    /// Scenarios and playbooks.
    pub catalog: Catalog,
    pub detection: DetectionAgent,
    pub diagnosis: DiagnosisAgent,
    pub prediction: PredictionAgent,
    pub resolution: ResolutionAgent,
    pub communication: Communication,
}

impl Swarm {
    /// Every agent, in pipeline order: the voters.
    pub fn agents(&self) -> [&dyn Agent; 5] {
        [
            &self.detection,
            &self.diagnosis,
            &self.prediction,
            &self.resolution,
            &self.communication,
        ]
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    use std::sync::Arc;

    use crate::{
        protocol::{Incident, IncidentStatus, Severity},
        twin::{Estate, FaultKind, FaultSpec, Topology},
    };

    pub fn estate(seed: u64) -> Estate {
        Estate::new(Arc::new(Topology::embedded().unwrap()), seed, 10.0 * 3600.0)
    }

    /// An estate with `kind` at `target`, running for `seconds`.
    pub fn broken(kind: FaultKind, target: &str, seconds: u64, seed: u64) -> Estate {
        let mut estate = estate(seed);
        estate.inject(&FaultSpec::new(kind, target)).unwrap();
        estate.advance(seconds);
        estate
    }

    pub fn incident(services: &[&str]) -> Incident {
        Incident {
            id: uuid::Uuid::nil(),
            title: "t".into(),
            severity: Severity::High,
            affected_services: services.iter().map(|s| s.to_string()).collect(),
            scenario_id: None,
            status: IncidentStatus::Active,
            created_at: chrono::Utc::now(),
            finished_at: None,
            resolution_time: None,
            cost_savings: None,
            root_cause: None,
            report: None,
        }
    }
}
