//! The scenario and playbook catalog, read from the data files embedded at
//! build time (`engine/data/`).
//!
//! A scenario says what incident a button or API call opens, which faults
//! it injects into the twin, and (for scoring only) its answer key. A
//! playbook says how the resolution agent remedies one kind of fault. Both
//! are data: adding one is adding a file. The catalog is checked once at
//! start against the estate, so a broken file stops the server with its
//! name and the reason.

use std::{collections::BTreeMap, path::Path};

use serde::Deserialize;

pub use crate::protocol::RootCause;

use crate::{
    consensus::{Behaviour, VOTERS, max_tolerable_faulty},
    protocol::{AgentType, ScenarioSummary, Severity},
    twin::{ActionKind, FaultKind, FaultSpec, Topology},
};

/// Every data file, built into the binary (see `build.rs`).
pub(crate) mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}

/// One catalog scenario (a file in `data/scenarios/`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The file's stem, as in `database_cascade`.
    #[serde(skip)]
    pub id: String,
    /// Button label.
    pub label: String,
    /// Title of the incident it opens.
    pub title: String,
    /// Default severity.
    pub severity: Severity,
    /// Services the incident reports as affected (the symptoms).
    pub affected_services: Vec<String>,
    /// One of the dashboard's prominent buttons.
    #[serde(default)]
    pub primary: bool,
    /// What the scenario breaks in the twin.
    pub fault: Vec<FaultSpec>,
    /// The truth, for scoring. The agents never see it.
    pub answer: AnswerKey,
    /// Agents that vote wrongly or not at all in this scenario's consensus.
    #[serde(default)]
    pub faulty_voters: Vec<FaultyVoter>,
}

/// The true root cause of a scenario and the remediations that count as
/// right.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerKey {
    /// Where and what the root cause is: with two faults, the one with the
    /// larger impact, the one to fix first.
    pub root_cause: RootCause,
    /// With two faults of equal impact, the other: naming either first is
    /// right.
    #[serde(default)]
    pub equally_strong: Vec<RootCause>,
    /// Actions that fix or safely mitigate it; any other is unnecessary.
    pub remediations: Vec<ActionKind>,
}

impl AnswerKey {
    /// Whether a first diagnosis naming `named` names the strongest cause.
    pub fn names_the_strongest(&self, named: Option<&RootCause>) -> bool {
        named.is_some_and(|named| *named == self.root_cause || self.equally_strong.contains(named))
    }
}

/// An agent that misbehaves in the consensus vote.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultyVoter {
    /// Which agent.
    pub agent: AgentType,
    /// How it misbehaves.
    pub behaviour: Behaviour,
}

impl Scenario {
    pub fn summary(&self) -> ScenarioSummary {
        ScenarioSummary {
            id: self.id.clone(),
            label: self.label.clone(),
            title: self.title.clone(),
            severity: self.severity,
            affected_services: self.affected_services.clone(),
            primary: self.primary,
        }
    }
}

/// Which services a playbook step acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepTarget {
    /// The diagnosed root-cause service.
    Root,
    /// The root's callers that we own.
    Callers,
}

/// One remediation step of a playbook.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaybookStep {
    /// The action to take.
    pub action: ActionKind,
    /// Where to take it.
    pub target: StepTarget,
    /// Nominal duration at speed 1.0, in seconds.
    pub seconds: f64,
}

/// The remediation for one kind of fault (a file in `data/playbooks/`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Playbook {
    /// The file's stem, as in `connection_pool_exhaustion`.
    #[serde(skip)]
    pub id: String,
    /// Human name.
    pub name: String,
    /// The fault kind it remedies.
    pub fault: FaultKind,
    /// Steps, run in order.
    pub step: Vec<PlaybookStep>,
}

/// A data file that does not make sense.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{file}: {reason}")]
    Invalid { file: String, reason: String },
}

fn invalid(file: impl Into<String>, reason: impl Into<String>) -> CatalogError {
    CatalogError::Invalid {
        file: file.into(),
        reason: reason.into(),
    }
}

/// Every scenario and playbook, by id.
#[derive(Debug, Clone)]
pub struct Catalog {
    scenarios: BTreeMap<String, Scenario>,
    playbooks: BTreeMap<String, Playbook>,
}

/// The name in `known` closest to `unknown` (a typo's likely meaning), if
/// one is within a third of its length in edits.
pub fn closest<'a>(unknown: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
        .map(|id| (strsim::levenshtein(unknown, id), id))
        .filter(|(distance, id)| *distance <= id.len() / 3 + 1)
        .min()
        .map(|(_, id)| id)
}

/// Reads every `*.toml` in `dir` as `(stem, text)`, sorted by name.
fn read_dir_sources(dir: &Path) -> Result<Vec<(String, String)>, CatalogError> {
    let unreadable = |e: std::io::Error| invalid(dir.display().to_string(), e.to_string());
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(unreadable)? {
        let path = entry.map_err(unreadable)?.path();
        if path.extension().is_some_and(|e| e == "toml") {
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
            let text =
                std::fs::read_to_string(&path).map_err(|e| invalid(path.display().to_string(), e.to_string()))?;
            files.push((stem, text));
        }
    }
    files.sort();
    Ok(files)
}

/// The scenario `id` (a file of `scenario_dir`) parsed from `text` and
/// checked ([`Scenario::check`]).
fn parse_scenario(scenario_dir: &str, id: &str, text: &str, topology: &Topology) -> Result<Scenario, CatalogError> {
    let file = format!("{scenario_dir}/{id}.toml");
    let mut scenario: Scenario = toml::from_str(text).map_err(|e| invalid(&file, e.to_string()))?;
    scenario.id = id.to_owned();
    scenario.check(topology).map_err(|reason| invalid(&file, reason))?;
    Ok(scenario)
}

impl Scenario {
    /// Checks the scenario against `topology`: its id and service names,
    /// its faults against the estate, its answer key and its faulty
    /// voters. The reason names the field.
    pub fn check(&self, topology: &Topology) -> Result<(), String> {
        crate::request::ScenarioId::parse(&self.id).map_err(|e| e.reason)?;
        for (i, service) in self.affected_services.iter().enumerate() {
            crate::request::ServiceName::parse(service, &format!("affected_services[{i}]"))
                .map_err(|e| e.to_string())?;
        }
        if self.fault.is_empty() {
            return Err("a scenario needs at least one [[fault]]".into());
        }
        for (i, fault) in self.fault.iter().enumerate() {
            fault
                .validate(topology.index(&fault.target).map(|t| topology.spec(t)))
                .map_err(|reason| format!("fault[{i}]: {reason}"))?;
        }
        let is_a_fault =
            |root: &RootCause| (self.fault.iter()).any(|f| f.target == root.service && f.kind == root.fault);
        if !is_a_fault(&self.answer.root_cause) {
            return Err("answer.root_cause must be one of the scenario's faults".into());
        }
        if !self.answer.equally_strong.iter().all(is_a_fault) {
            return Err("answer.equally_strong must name the scenario's other faults".into());
        }
        if self.answer.remediations.is_empty() {
            return Err("answer.remediations needs at least one action".into());
        }
        let tolerable = max_tolerable_faulty(VOTERS.len());
        if self.faulty_voters.len() > tolerable {
            return Err(format!(
                "at most {tolerable} faulty voters out of {}: with more, the faulty ones form a quorum by themselves",
                VOTERS.len()
            ));
        }
        Ok(())
    }
}

impl Catalog {
    /// The catalog built into the binary.
    pub fn embedded(topology: &Topology) -> Result<Self, CatalogError> {
        Self::from_sources(embedded::SCENARIOS, embedded::PLAYBOOKS, topology)
    }

    /// The embedded playbooks and no scenarios: for a watched estate, where
    /// scenarios (faults injected into the twin) cannot run, and whose
    /// services are its own.
    pub fn playbooks_only(topology: &Topology) -> Result<Self, CatalogError> {
        Self::from_sources(&[], embedded::PLAYBOOKS, topology)
    }

    /// The embedded playbooks with the scenarios of another folder (files
    /// in the format of `data/scenarios/`).
    pub fn with_scenarios_from(dir: &Path, topology: &Topology) -> Result<Self, CatalogError> {
        let sources = read_dir_sources(dir)?;
        if sources.is_empty() {
            return Err(invalid(dir.display().to_string(), "no scenario files (*.toml) here"));
        }
        let borrowed: Vec<(&str, &str)> = sources.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        Self::build(&dir.display().to_string(), &borrowed, embedded::PLAYBOOKS, topology)
    }

    /// Parses `(id, toml)` pairs and checks that they fit together and with
    /// the estate.
    pub fn from_sources(
        scenarios: &[(&str, &str)],
        playbooks: &[(&str, &str)],
        topology: &Topology,
    ) -> Result<Self, CatalogError> {
        Self::build("data/scenarios", scenarios, playbooks, topology)
    }

    /// As [`Catalog::from_sources`], naming scenario files in `scenario_dir`.
    fn build(
        scenario_dir: &str,
        scenarios: &[(&str, &str)],
        playbooks: &[(&str, &str)],
        topology: &Topology,
    ) -> Result<Self, CatalogError> {
        let mut catalog = Self {
            scenarios: BTreeMap::new(),
            playbooks: BTreeMap::new(),
        };
        // Playbooks first: each is checked against those read before it.
        for (id, text) in playbooks {
            let playbook = catalog.parse_playbook(id, text)?;
            catalog.playbooks.insert(playbook.id.clone(), playbook);
        }
        if let Some(kind) = FaultKind::ALL.iter().find(|k| catalog.playbook_for(**k).is_none()) {
            return Err(invalid(
                "data/playbooks",
                format!("no playbook remedies {}", kind.as_str()),
            ));
        }
        for (id, text) in scenarios {
            let scenario = parse_scenario(scenario_dir, id, text, topology)?;
            catalog.scenarios.insert(scenario.id.clone(), scenario);
        }
        Ok(catalog)
    }

    /// The playbook `id` parsed from `text` and checked: it has steps, each
    /// of a sensible duration, and remedies a fault no playbook read so far
    /// does.
    fn parse_playbook(&self, id: &str, text: &str) -> Result<Playbook, CatalogError> {
        let file = format!("data/playbooks/{id}.toml");
        let mut playbook: Playbook = toml::from_str(text).map_err(|e| invalid(&file, e.to_string()))?;
        if playbook.step.is_empty() {
            return Err(invalid(file, "a playbook needs at least one step"));
        }
        if let Some(step) = playbook
            .step
            .iter()
            .find(|s| !(s.seconds.is_finite() && s.seconds > 0.0 && s.seconds <= 600.0))
        {
            return Err(invalid(
                file,
                format!("step `{}`: seconds must be in (0, 600]", step.action.as_str()),
            ));
        }
        if let Some(other) = self.playbook_for(playbook.fault) {
            return Err(invalid(
                file,
                format!("playbook `{}` already remedies {}", other.id, playbook.fault.as_str()),
            ));
        }
        playbook.id = id.to_owned();
        Ok(playbook)
    }

    pub fn scenario(&self, id: &str) -> Option<&Scenario> {
        self.scenarios.get(id)
    }

    /// The playbook that remedies `fault`.
    pub fn playbook_for(&self, fault: FaultKind) -> Option<&Playbook> {
        self.playbooks.values().find(|p| p.fault == fault)
    }

    /// Scenarios, primary ones first, then by id.
    pub fn scenarios(&self) -> Vec<&Scenario> {
        let mut all: Vec<&Scenario> = self.scenarios.values().collect();
        all.sort_by_key(|s| (!s.primary, s.id.clone()));
        all
    }

    /// The known scenario id closest to `unknown`, when one is close enough
    /// to be a likely typo.
    pub fn closest_scenario(&self, unknown: &str) -> Option<&str> {
        closest(unknown, self.scenarios.keys().map(String::as_str))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topology() -> Topology {
        Topology::embedded().unwrap()
    }

    #[test]
    fn the_embedded_catalog_has_every_required_scenario_and_the_buttons_first() {
        let catalog = Catalog::embedded(&topology()).unwrap();
        let primary: Vec<&str> = catalog
            .scenarios()
            .iter()
            .take_while(|s| s.primary)
            .map(|s| s.id.as_str())
            .collect();
        assert_eq!(primary, ["api_slowdown", "database_cascade", "service_down"]);
        for id in [
            "memory_leak_gradual",
            "cpu_spike_traffic_surge",
            "latency_spike_database",
            "pod_crash_loop",
            "dependency_failure_timeout",
            "latency_slo_breach",
            "model_accuracy_drop",
            "data_drift",
            "agent_heartbeat_loss",
        ] {
            assert!(catalog.scenario(id).is_some(), "{id}");
        }
        let cascade = catalog.scenario("database_cascade").unwrap();
        assert_eq!(cascade.label, "Database Cascade");
        assert_eq!(cascade.answer.root_cause.fault, FaultKind::ConnectionPoolExhaustion);
    }

    #[test]
    fn every_answer_key_remediation_covers_its_playbook() {
        // A playbook step outside the answer key would count as unnecessary
        // every time the swarm is right.
        let catalog = Catalog::embedded(&topology()).unwrap();
        for scenario in catalog.scenarios() {
            let playbook = catalog.playbook_for(scenario.answer.root_cause.fault).unwrap();
            for step in &playbook.step {
                assert!(
                    scenario.answer.remediations.contains(&step.action),
                    "{}: {} is not in the answer key",
                    scenario.id,
                    step.action.as_str()
                );
            }
        }
    }

    #[test]
    fn a_typo_gets_a_suggestion_and_nonsense_does_not() {
        let catalog = Catalog::embedded(&topology()).unwrap();
        assert_eq!(catalog.closest_scenario("database_cascde"), Some("database_cascade"));
        assert_eq!(catalog.closest_scenario("servce_down"), Some("service_down"));
        assert_eq!(catalog.closest_scenario("zzzzzzzz"), None);
    }

    #[test]
    fn broken_files_are_named_with_the_reason() {
        let t = topology();
        let scenario = |fault: &str| {
            format!(
                "label=\"X\"\ntitle=\"X\"\nseverity=\"critical\"\naffected_services=[\"a\"]\n{fault}\n\
                 [answer]\nroot_cause = {{ service = \"redis-cache\", fault = \"cache_failure\" }}\n\
                 remediations = [\"restart_cache\"]"
            )
        };
        let wrong_target = scenario("[[fault]]\nkind = \"cache_failure\"\ntarget = \"order-service\"");
        let err = Catalog::from_sources(&[("x", &wrong_target)], embedded::PLAYBOOKS, &t).unwrap_err();
        assert!(err.to_string().contains("data/scenarios/x.toml"), "{err}");
        assert!(err.to_string().contains("cannot happen on `order-service`"), "{err}");

        let wrong_answer = scenario("[[fault]]\nkind = \"disk_exhaustion\"\ntarget = \"message-queue\"");
        let err = Catalog::from_sources(&[("y", &wrong_answer)], embedded::PLAYBOOKS, &t).unwrap_err();
        assert!(err.to_string().contains("root_cause must be one of"), "{err}");

        let err =
            Catalog::from_sources(&[], &[("p", "name = \"g\"\nfault = \"crash_loop\"\nstep = []")], &t).unwrap_err();
        assert!(err.to_string().contains("at least one step"), "{err}");

        let err = Catalog::from_sources(&[], &[], &t).unwrap_err();
        assert!(err.to_string().contains("no playbook remedies"), "{err}");
    }
}
