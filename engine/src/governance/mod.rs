//! Governance: every healing plan passes a policy before it runs.
//!
//! A policy is a data file (`data/policies/*.toml`, or any file given with
//! `--policy`): rules over the plan's actions, whether it can be undone,
//! the incident's severity, the blast radius and the diagnosis's
//! confidence. The first rule whose conditions all hold decides: run now
//! (`auto`), ask a person (`human`), or never (`deny`). A plan that needs a
//! person waits in [`Approvals`] for each approver in the escalation chain
//! in turn, then takes the policy's safe default.

mod approvals;
#[cfg(test)]
mod tests;

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use approvals::{Approvals, DecideError, HumanDecision, decided};

use crate::{
    catalog::embedded,
    protocol::{PolicyInput, PolicyVerdict, Severity},
    twin::ActionKind,
};

/// The policy used when none is named.
pub const DEFAULT_POLICY: &str = "default";

/// Who the audit log names when a demo's autopilot approved a plan.
pub const AUTOPILOT: &str = "autopilot (demo)";

/// A policy, checked and ready to decide.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Where it came from: a built-in's name or a file's path.
    pub name: String,
    /// Its revision, recorded with every decision.
    pub revision: String,
    /// The rules, tried in order.
    pub rules: Vec<Rule>,
    /// What applies when no rule matches.
    pub default: Outcome,
    /// How people are asked.
    pub approval: ApprovalSettings,
}

/// One rule: conditions, all of which must hold, and an outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Names the rule in decisions and the audit log.
    pub name: String,
    /// Holds when any of the plan's actions is one of these.
    #[serde(default)]
    pub actions: Option<Vec<ActionKind>>,
    /// Holds when whether the plan has a step that cannot be undone is this.
    #[serde(default)]
    pub irreversible: Option<bool>,
    /// Holds when the incident's severity is one of these.
    #[serde(default)]
    pub severity: Option<Vec<Severity>>,
    /// Holds when the blast radius has at least this many services.
    #[serde(default)]
    pub min_blast_radius: Option<u32>,
    /// Holds when the diagnosis's confidence is below this.
    #[serde(default)]
    pub confidence_below: Option<f64>,
    /// What to do.
    pub decision: PolicyVerdict,
    /// Why, for the people who read the decision.
    pub reason: String,
}

/// What applies when no rule matches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outcome {
    pub decision: PolicyVerdict,
    pub reason: String,
}

/// How a plan that needs a person is put to people.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalSettings {
    /// Simulated seconds each approver has before the next one is asked.
    pub timeout_seconds: f64,
    /// Who is asked, in order.
    pub escalation: Vec<String>,
    /// After the last approver times out: `auto` runs the plan, `deny`
    /// does not.
    pub on_timeout: PolicyVerdict,
}

/// The file's shape.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    revision: String,
    approval: ApprovalSettings,
    #[serde(default, rename = "rule")]
    rules: Vec<Rule>,
    default: Outcome,
}

/// What a policy decided, and which rule said so.
#[derive(Debug, Clone, PartialEq)]
pub struct Ruling {
    pub verdict: PolicyVerdict,
    /// The rule's name, or `default`.
    pub rule: String,
    pub reason: String,
}

/// A policy file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("policy `{source_name}`: {reason}")]
pub struct PolicyError {
    /// The built-in's name or the file's path.
    pub source_name: String,
    /// What is wrong, with the field's path when there is one.
    pub reason: String,
}

impl Policy {
    /// The built-in policy called `name` (a file stem in `data/policies/`).
    pub fn builtin(name: &str) -> Result<Self, PolicyError> {
        let (_, text) = embedded::POLICIES
            .iter()
            .find(|(stem, _)| *stem == name)
            .ok_or_else(|| PolicyError {
                source_name: name.to_owned(),
                reason: format!(
                    "no such built-in policy; the built-ins are {}",
                    Self::builtin_names().join(", ")
                ),
            })?;
        Self::parse(name, text)
    }

    /// The built-in policies' names.
    pub fn builtin_names() -> Vec<&'static str> {
        embedded::POLICIES.iter().map(|(stem, _)| *stem).collect()
    }

    /// A built-in's name, or else a path to a policy file.
    pub fn load(name_or_path: &str) -> Result<Self, PolicyError> {
        if embedded::POLICIES.iter().any(|(stem, _)| *stem == name_or_path) {
            return Self::builtin(name_or_path);
        }
        let path = Path::new(name_or_path);
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError {
            source_name: name_or_path.to_owned(),
            reason: format!(
                "not a built-in policy ({}) and not a readable file: {e}",
                Self::builtin_names().join(", ")
            ),
        })?;
        Self::parse(name_or_path, &text)
    }

    /// Parses and checks a policy file's text.
    pub fn parse(name: &str, text: &str) -> Result<Self, PolicyError> {
        let error = |reason: String| PolicyError {
            source_name: name.to_owned(),
            reason,
        };
        // toml's message names the line, the column and the key.
        let file: PolicyFile = toml::from_str(text).map_err(|e| error(e.to_string()))?;
        let approval = &file.approval;
        if !(approval.timeout_seconds.is_finite() && approval.timeout_seconds > 0.0) {
            return Err(error("approval.timeout_seconds must be a positive number".into()));
        }
        if approval.escalation.is_empty() || approval.escalation.iter().any(|a| a.trim().is_empty()) {
            return Err(error(
                "approval.escalation must name at least one approver, none blank".into(),
            ));
        }
        if approval.on_timeout == PolicyVerdict::Human {
            return Err(error(
                "approval.on_timeout must be `auto` or `deny`: nobody is left to ask".into(),
            ));
        }
        for (i, rule) in file.rules.iter().enumerate() {
            if let Some(below) = rule.confidence_below
                && !(0.0..=1.0).contains(&below)
            {
                return Err(error(format!(
                    "rule[{i}] `{}`: confidence_below must be within 0..=1",
                    rule.name
                )));
            }
            if file.rules[..i].iter().any(|r| r.name == rule.name) {
                return Err(error(format!("rule[{i}]: the name `{}` is used twice", rule.name)));
            }
        }
        Ok(Self {
            name: name.to_owned(),
            revision: file.revision,
            rules: file.rules,
            default: file.default,
            approval: file.approval,
        })
    }

    /// The policy as JSON, for people and the API.
    pub fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "revision": self.revision,
            "rules": self.rules,
            "default": self.default,
            "approval": self.approval,
        })
    }

    /// The first matching rule's verdict, or the default's.
    pub fn decide(&self, input: &PolicyInput) -> Ruling {
        self.rules
            .iter()
            .find(|rule| rule.matches(input))
            .map(|rule| Ruling {
                verdict: rule.decision,
                rule: rule.name.clone(),
                reason: rule.reason.clone(),
            })
            .unwrap_or_else(|| Ruling {
                verdict: self.default.decision,
                rule: "default".into(),
                reason: self.default.reason.clone(),
            })
    }
}

impl Rule {
    fn matches(&self, input: &PolicyInput) -> bool {
        let actions = self.actions.as_ref().is_none_or(|wanted| {
            wanted
                .iter()
                .any(|kind| input.actions.iter().any(|action| action == kind.as_str()))
        });
        let irreversible = self.irreversible.is_none_or(|wanted| wanted == input.irreversible);
        let severity = self
            .severity
            .as_ref()
            .is_none_or(|wanted| wanted.contains(&input.severity));
        let blast = self.min_blast_radius.is_none_or(|min| input.blast_radius >= min);
        let confidence = self.confidence_below.is_none_or(|below| input.confidence < below);
        actions && irreversible && severity && blast && confidence
    }
}

/// The policy input for a plan of `actions`.
pub fn input(actions: &[ActionKind], severity: Severity, blast_radius: usize, confidence: f64) -> PolicyInput {
    PolicyInput {
        actions: actions.iter().map(|a| a.as_str().to_owned()).collect(),
        irreversible: actions.iter().any(|a| !a.reversible()),
        severity,
        blast_radius: blast_radius as u32,
        confidence,
    }
}
