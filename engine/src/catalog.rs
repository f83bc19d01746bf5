//! The scenario and playbook catalog, read from the data files embedded at
//! build time (`engine/data/`).
//!
//! A scenario says what incident a button or API call opens; a playbook says
//! which remediation steps the resolution agent runs. Both are data: adding
//! one is adding a file. The catalog is checked once at start, so a broken
//! file stops the server with its name and the reason.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::protocol::{ScenarioSummary, Severity};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}

/// The playbook for incidents that name no scenario.
pub const GENERIC_PLAYBOOK: &str = "generic";

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
    /// Services the incident affects.
    pub affected_services: Vec<String>,
    /// One of the dashboard's prominent buttons.
    #[serde(default)]
    pub primary: bool,
    /// Id of the playbook the resolution agent runs.
    pub playbook: String,
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

/// One remediation step of a playbook.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaybookStep {
    /// What the step does, for people.
    pub action: String,
    /// Nominal duration at speed 1.0, in seconds.
    pub seconds: f64,
}

/// An ordered list of remediation steps (a file in `data/playbooks/`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Playbook {
    /// The file's stem, as in `connection_pool`.
    #[serde(skip)]
    pub id: String,
    /// Human name.
    pub name: String,
    /// Steps, run in order.
    pub steps: Vec<PlaybookStep>,
}

/// A data file that does not make sense.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{file}: {reason}")]
    Invalid { file: String, reason: String },
}

fn invalid(file: String, reason: impl Into<String>) -> CatalogError {
    CatalogError::Invalid {
        file,
        reason: reason.into(),
    }
}

/// Every scenario and playbook, by id.
#[derive(Debug, Clone)]
pub struct Catalog {
    scenarios: BTreeMap<String, Scenario>,
    playbooks: BTreeMap<String, Playbook>,
}

impl Catalog {
    /// The catalog built into the binary.
    pub fn embedded() -> Result<Self, CatalogError> {
        Self::from_sources(embedded::SCENARIOS, embedded::PLAYBOOKS)
    }

    /// Parses `(id, toml)` pairs and checks that they fit together.
    pub fn from_sources(scenarios: &[(&str, &str)], playbooks: &[(&str, &str)]) -> Result<Self, CatalogError> {
        let mut catalog = Self {
            scenarios: BTreeMap::new(),
            playbooks: BTreeMap::new(),
        };
        for (id, text) in playbooks {
            let file = format!("data/playbooks/{id}.toml");
            let mut playbook: Playbook = toml::from_str(text).map_err(|e| invalid(file.clone(), e.to_string()))?;
            if playbook.steps.is_empty() {
                return Err(invalid(file, "a playbook needs at least one step"));
            }
            if let Some(step) = playbook
                .steps
                .iter()
                .find(|s| !(s.seconds.is_finite() && s.seconds > 0.0 && s.seconds <= 600.0))
            {
                return Err(invalid(
                    file,
                    format!("step `{}`: seconds must be in (0, 600]", step.action),
                ));
            }
            playbook.id = (*id).to_owned();
            catalog.playbooks.insert(playbook.id.clone(), playbook);
        }
        if !catalog.playbooks.contains_key(GENERIC_PLAYBOOK) {
            return Err(invalid(
                format!("data/playbooks/{GENERIC_PLAYBOOK}.toml"),
                "missing: incidents without a scenario use it",
            ));
        }
        for (id, text) in scenarios {
            let file = format!("data/scenarios/{id}.toml");
            let mut scenario: Scenario = toml::from_str(text).map_err(|e| invalid(file.clone(), e.to_string()))?;
            crate::request::ScenarioId::parse(id).map_err(|e| invalid(file.clone(), e.reason))?;
            for (i, service) in scenario.affected_services.iter().enumerate() {
                crate::request::ServiceName::parse(service, &format!("affected_services[{i}]"))
                    .map_err(|e| invalid(file.clone(), e.to_string()))?;
            }
            if !catalog.playbooks.contains_key(&scenario.playbook) {
                return Err(invalid(
                    file,
                    format!("playbook `{}` does not exist", scenario.playbook),
                ));
            }
            scenario.id = (*id).to_owned();
            catalog.scenarios.insert(scenario.id.clone(), scenario);
        }
        Ok(catalog)
    }

    pub fn scenario(&self, id: &str) -> Option<&Scenario> {
        self.scenarios.get(id)
    }

    pub fn playbook(&self, id: &str) -> Option<&Playbook> {
        self.playbooks.get(id)
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
        self.scenarios
            .keys()
            .map(|id| (strsim::levenshtein(unknown, id), id))
            .filter(|(distance, id)| *distance <= id.len() / 3 + 1)
            .min()
            .map(|(_, id)| id.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_catalog_has_the_three_buttons_first() {
        let catalog = Catalog::embedded().unwrap();
        let primary: Vec<&str> = catalog
            .scenarios()
            .iter()
            .take_while(|s| s.primary)
            .map(|s| s.id.as_str())
            .collect();
        assert_eq!(primary, ["api_slowdown", "database_cascade", "service_down"]);
        let cascade = catalog.scenario("database_cascade").unwrap();
        assert_eq!(cascade.label, "Database Cascade");
        assert_eq!(catalog.playbook(&cascade.playbook).unwrap().steps.len(), 5);
    }

    #[test]
    fn a_typo_gets_a_suggestion_and_nonsense_does_not() {
        let catalog = Catalog::embedded().unwrap();
        assert_eq!(catalog.closest_scenario("database_cascde"), Some("database_cascade"));
        assert_eq!(catalog.closest_scenario("servce_down"), Some("service_down"));
        assert_eq!(catalog.closest_scenario("zzzzzzzz"), None);
    }

    #[test]
    fn broken_files_are_named() {
        let generic = ("generic", "name = \"g\"\nsteps = [{ action = \"a\", seconds = 1.0 }]");
        let err = Catalog::from_sources(
            &[(
                "x",
                "label=\"X\"\ntitle=\"X\"\nseverity=\"critical\"\naffected_services=[\"a\"]\nplaybook=\"nope\"",
            )],
            &[generic],
        )
        .unwrap_err();
        assert!(err.to_string().contains("data/scenarios/x.toml"), "{err}");
        assert!(err.to_string().contains("nope"), "{err}");

        let err = Catalog::from_sources(&[], &[("generic", "name = \"g\"\nsteps = []")]).unwrap_err();
        assert!(err.to_string().contains("at least one step"), "{err}");

        let err = Catalog::from_sources(&[], &[]).unwrap_err();
        assert!(err.to_string().contains("generic"), "{err}");
    }
}
