//! Scenario generators: a prompt ("a Redis connection pool exhaustion with
//! cascading failures") becomes a scenario the twin can run, with its own
//! answer key, so it is scored like a catalog one.
//!
//! [`BuiltinGenerator`] works offline and is deterministic from the prompt
//! and a seed. It places the prompt in a failure family
//! (`data/generator.toml`), puts the family's fault on a service that can
//! suffer it, and lets the seed vary the service, the intensity and the
//! onset. The metrics it reports (seed 004's "LLM output" shape) are not
//! invented: the generator runs the fault on a private copy of the estate
//! and reads what its monitoring saw against the baselines.
//!
//! [`llm::LlmGenerator`] asks any OpenAI-compatible endpoint instead, and
//! falls back to the built-in generator when the model fails.

pub mod llm;

use std::{future::Future, pin::Pin, sync::Arc};

use rand::{Rng, SeedableRng, rngs::SmallRng, seq::IndexedRandom};
use serde::{Deserialize, Serialize};

use crate::{
    catalog::{AnswerKey, RootCause, Scenario},
    protocol::Severity,
    twin::{
        Estate,
        action::ActionKind,
        fault::{FaultKind, FaultSpec},
        telemetry::{Metric, Worse},
        topology::{ServiceKind, Topology},
    },
};

/// The families, built into the binary.
const FAMILIES: &str = include_str!("../../../data/generator.toml");
/// Simulated seconds of day at which previews start (as the engine's twin).
const PREVIEW_START_OF_DAY: f64 = 10.0 * 3600.0;
/// Ticks a preview runs after the fault is injected, as an incident's
/// report comes a few seconds after the fault shows.
const PREVIEW_TICKS: u64 = 5;
/// Metrics a generated scenario lists.
const METRICS_LISTED: usize = 5;
/// Deviation below which a metric is not worth listing.
const LISTED_SIGMA: f64 = 3.0;

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationRequest {
    /// The intent, in words.
    pub prompt: String,
    /// The service the scenario should hit, if it can.
    pub service: Option<String>,
    /// The severity to report, overriding the family's.
    pub severity: Option<Severity>,
    /// Varies the service, magnitude and onset; the same prompt and seed
    /// give the same scenario.
    pub seed: u64,
}

/// One metric as a generated scenario reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneratedMetric {
    /// As in `latency_p99_ms`, on a service: `order-service.latency_p99_ms`.
    pub metric_name: String,
    /// The reading when the incident is reported.
    pub value: f64,
    /// The baseline's mean.
    pub baseline: f64,
    /// How far off, in the baseline's standard deviations.
    pub deviation_sigma: f64,
    /// The reading's unit.
    pub unit: String,
}

/// Seed 004's "LLM output" shape: what a generator says about a scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSpec {
    /// A title.
    pub name: String,
    /// What is happening, in a sentence or two.
    pub description: String,
    /// The fault, as a wire name (`cache_failure`).
    pub root_cause: String,
    /// The service at fault.
    pub service: String,
    /// How bad.
    pub severity: Severity,
    /// What monitoring shows.
    pub metrics: Vec<GeneratedMetric>,
    /// Remediations that count as right.
    pub expected_action_types: Vec<ActionKind>,
    /// How strong the fault is, in (0, 1].
    pub intensity: f64,
    /// Seconds over which it ramps up.
    pub onset_seconds: f64,
}

/// A generated scenario, ready for the engine.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    /// What the engine runs (with its answer key).
    pub scenario: Scenario,
    /// What the generator said about it.
    pub spec: ScenarioSpec,
    /// How it was made: `built-in (family cache)`, the LLM's model, or a
    /// fallback and why. Shown on the incident's timeline entry.
    pub note: String,
}

/// Why a prompt gave no scenario.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenerateError {
    #[error("cannot place the prompt \"{prompt}\" in a failure family; mention one of: {families}")]
    Unplaceable { prompt: String, families: String },
    #[error("no service of the estate can suffer a {fault}")]
    NoTarget { fault: String },
}

/// A boxed future, so generators are object-safe.
pub type GenerateFuture<'a> = Pin<Box<dyn Future<Output = Result<Generated, GenerateError>> + Send + 'a>>;

/// Turns prompts into scenarios.
pub trait ScenarioGenerator: Send + Sync {
    /// A scenario for `request`. May take a while (an LLM call); never
    /// blocks the caller's thread.
    fn generate<'a>(&'a self, request: &'a GenerationRequest) -> GenerateFuture<'a>;
}

/// One failure family (an entry of `data/generator.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Family {
    /// Short name, as in `cache`.
    pub id: String,
    /// The incident's title; `{service}` is replaced.
    pub title: String,
    /// Words (lowercase, matched as substrings) that place a prompt here.
    pub keywords: Vec<String>,
    /// What the twin breaks.
    pub fault: FaultKind,
    /// The kinds of service it may hit (all that can suffer the fault when
    /// empty).
    #[serde(default)]
    pub targets: Vec<ServiceKind>,
    /// Remediations that count as right.
    pub remediations: Vec<ActionKind>,
    /// The usual severity.
    pub severity: Severity,
    /// Chosen only when no specific family matches (a catch-all such as
    /// "a slow dependency").
    #[serde(default)]
    pub generic: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FamilyFile {
    family: Vec<Family>,
}

/// The offline generator. Cheap to clone.
#[derive(Clone)]
pub struct BuiltinGenerator {
    families: Arc<Vec<Family>>,
    topology: Arc<Topology>,
}

impl BuiltinGenerator {
    /// The families built into the binary, over `topology`. Every family
    /// must have somewhere to happen.
    pub fn embedded(topology: Arc<Topology>) -> Result<Self, String> {
        let file: FamilyFile = toml::from_str(FAMILIES).map_err(|e| format!("data/generator.toml: {e}"))?;
        let generator = Self {
            families: Arc::new(file.family),
            topology,
        };
        for family in generator.families.iter() {
            if generator.candidates(family).is_empty() {
                return Err(format!(
                    "data/generator.toml: family `{}` has no service to happen on",
                    family.id
                ));
            }
            if family.remediations.is_empty() {
                return Err(format!(
                    "data/generator.toml: family `{}` lists no remediation",
                    family.id
                ));
            }
        }
        Ok(generator)
    }

    /// The families, in file order.
    pub fn families(&self) -> &[Family] {
        &self.families
    }

    /// The specific family with the most keyword hits in `prompt` (ties go
    /// to the one listed first), else the generic one with the most, if any.
    pub fn place(&self, prompt: &str) -> Option<&Family> {
        let prompt = prompt.to_lowercase();
        let best = |generic: bool| {
            let mut best: Option<(&Family, usize)> = None;
            for family in self.families.iter().filter(|f| f.generic == generic) {
                let hits = family.keywords.iter().filter(|k| starts_a_word(&prompt, k)).count();
                if hits > 0 && best.is_none_or(|(_, most)| hits > most) {
                    best = Some((family, hits));
                }
            }
            best.map(|(family, _)| family)
        };
        best(false).or_else(|| best(true))
    }

    /// Services `family` may hit, in estate order.
    fn candidates(&self, family: &Family) -> Vec<&str> {
        self.topology
            .services
            .iter()
            .filter(|s| family.fault.can_hit(s) && (family.targets.is_empty() || family.targets.contains(&s.kind)))
            .map(|s| s.name.as_str())
            .collect()
    }

    /// Generates at once (the built-in generator never waits on anything).
    pub fn generate_now(&self, request: &GenerationRequest) -> Result<Generated, GenerateError> {
        let family = self.place(&request.prompt).ok_or_else(|| GenerateError::Unplaceable {
            prompt: request.prompt.clone(),
            families: self
                .families
                .iter()
                .map(|f| f.id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })?;
        self.generate_in(family, request, format!("built-in generator (family `{}`)", family.id))
    }

    /// A scenario of `family` for `request`.
    pub fn generate_in(
        &self,
        family: &Family,
        request: &GenerationRequest,
        note: String,
    ) -> Result<Generated, GenerateError> {
        // The prompt and the seed decide everything drawn below.
        let mut rng = SmallRng::seed_from_u64(request.seed ^ fnv1a(&request.prompt));
        let candidates = self.candidates(family);
        let service = match &request.service {
            Some(named) if candidates.contains(&named.as_str()) => named.clone(),
            _ => candidates
                .choose(&mut rng)
                .ok_or_else(|| GenerateError::NoTarget {
                    fault: family.fault.label().to_owned(),
                })?
                .to_string(),
        };
        let intensity = (rng.random_range(0.6..=1.0_f64) * 100.0).round() / 100.0;
        let onset_seconds = rng.random_range(0..=90) as f64;
        let lead_seconds = rng.random_range(20..=90) as f64;
        let fault = FaultSpec {
            kind: family.fault,
            target: service.clone(),
            intensity,
            onset_seconds,
            lead_seconds,
            duration_seconds: None,
        };
        let metrics = self.preview(&fault, rng.random());
        let severity = request.severity.unwrap_or(family.severity);
        let title = family.title.replace("{service}", &service);
        let affected = self.affected(&service, &metrics);
        let description = format!(
            "Generated from \"{}\": a {} on {service} at {:.0}% intensity, ramping up over {onset_seconds:.0} s.",
            request.prompt,
            family.fault.label(),
            intensity * 100.0
        );
        let id = format!("generated_{}_{:08x}", family.id, rng.random::<u32>());
        let scenario = Scenario {
            id,
            label: title.clone(),
            title: title.clone(),
            severity,
            affected_services: affected,
            primary: false,
            fault: vec![fault],
            answer: AnswerKey {
                root_cause: RootCause {
                    service: service.clone(),
                    fault: family.fault,
                },
                equally_strong: Vec::new(),
                remediations: family.remediations.clone(),
            },
            faulty_voters: Vec::new(),
        };
        let spec = ScenarioSpec {
            name: title,
            description,
            root_cause: family.fault.as_str().to_owned(),
            service,
            severity,
            metrics,
            expected_action_types: family.remediations.clone(),
            intensity,
            onset_seconds,
        };
        Ok(Generated { scenario, spec, note })
    }

    /// Runs `fault` on a private, warmed-up estate and reports the metrics
    /// that moved most, anywhere in the estate.
    fn preview(&self, fault: &FaultSpec, seed: u64) -> Vec<GeneratedMetric> {
        let mut estate = Estate::new(Arc::clone(&self.topology), seed, PREVIEW_START_OF_DAY);
        if estate.inject(fault).is_err() {
            return Vec::new();
        }
        estate.advance(PREVIEW_TICKS);
        let mut moved = Vec::new();
        for (index, spec) in self.topology.services.iter().enumerate() {
            let telemetry = &estate.service(index).telemetry;
            let latest = telemetry.latest();
            for metric in Metric::ALL.into_iter().filter(|m| m.applies_to(spec)) {
                let baseline = telemetry.baseline(metric);
                let value = latest.get(metric);
                let z = baseline.z(metric, value);
                let worse = match metric.worse() {
                    Worse::Up => z,
                    Worse::Down => -z,
                    Worse::Either => z.abs(),
                };
                if worse >= LISTED_SIGMA {
                    moved.push(GeneratedMetric {
                        metric_name: format!("{}.{}", spec.name, metric.as_str()),
                        value: round(value),
                        baseline: round(baseline.mean),
                        deviation_sigma: (z * 10.0).round() / 10.0,
                        unit: unit(metric).to_owned(),
                    });
                }
            }
        }
        moved.sort_by(|a, b| b.deviation_sigma.abs().total_cmp(&a.deviation_sigma.abs()));
        moved.truncate(METRICS_LISTED);
        moved
    }

    /// The services the incident reports: the faulty one first, then those
    /// whose metrics moved.
    fn affected(&self, service: &str, metrics: &[GeneratedMetric]) -> Vec<String> {
        let mut affected = vec![service.to_owned()];
        for metric in metrics {
            if let Some((name, _)) = metric.metric_name.split_once('.')
                && !affected.iter().any(|a| a == name)
            {
                affected.push(name.to_owned());
            }
        }
        affected.truncate(4);
        affected
    }
}

impl ScenarioGenerator for BuiltinGenerator {
    fn generate<'a>(&'a self, request: &'a GenerationRequest) -> GenerateFuture<'a> {
        Box::pin(async move { self.generate_now(request) })
    }
}

/// Whether `keyword` occurs in `text` at the start of a word.
fn starts_a_word(text: &str, keyword: &str) -> bool {
    text.match_indices(keyword).any(|(at, _)| {
        text[..at]
            .chars()
            .next_back()
            .is_none_or(|before| !before.is_alphanumeric())
    })
}

/// Rounds a reading for display: four significant decimals is plenty.
fn round(value: f64) -> f64 {
    (value * 10_000.0).round() / 10_000.0
}

/// A metric's unit.
fn unit(metric: Metric) -> &'static str {
    match metric {
        Metric::LatencyP50 | Metric::LatencyP95 | Metric::LatencyP99 => "ms",
        Metric::Rps => "requests/s",
        Metric::QueueDepth => "messages",
        Metric::Restarts => "restarts/min",
        Metric::CertDaysLeft => "days",
        Metric::FeaturePsi => "psi",
        Metric::HeartbeatAge => "s",
        Metric::ErrorRate
        | Metric::Cpu
        | Metric::Memory
        | Metric::PoolUsage
        | Metric::Heartbeat
        | Metric::DiskUsage
        | Metric::CacheHitRate
        | Metric::ModelAccuracy => "ratio",
    }
}

/// A stable hash of the prompt (std's hasher may change between releases;
/// a seed must mean the same scenario everywhere).
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

#[cfg(test)]
mod tests;
