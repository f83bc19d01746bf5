//! Alerts on an incident's record: each alert the intake placed, as the
//! monitoring system sent it (every label, annotation and `generatorURL`),
//! the severity it mapped to, and what it did to the incident.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Severity;

/// What an alert did to its incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AlertPlacement {
    /// It opened the incident (alone, or with related alerts of its delivery).
    Opened,
    /// It joined the open incident: a related service, close in time, or
    /// the same alert firing again.
    Joined,
    /// The sender says it stopped firing.
    Resolved,
}

impl AlertPlacement {
    /// The wire name, as in `"joined"`.
    pub fn as_str(self) -> &'static str {
        super::wire_name(&self)
    }
}

/// One alert as the intake received it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertRecord {
    /// Who sent it: `alertmanager`, `grafana` or `pagerduty`.
    pub source: String,
    /// The sender's identity of the alert (Alertmanager's fingerprint, a
    /// PagerDuty-style `dedup_key`).
    pub fingerprint: String,
    /// What it did to the incident.
    pub placement: AlertPlacement,
    /// The rule's name (`alertname`).
    pub name: String,
    /// The service of the estate it is about.
    pub service: String,
    /// The incident severity its `severity` label mapped to.
    pub severity: Severity,
    /// That label as sent (none: medium).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity_label: Option<String>,
    /// Its `summary` annotation, else its name.
    pub summary: String,
    /// Every label and annotation as sent. The browser does not decode
    /// them (the feed reads none; the incident page gets them prepared by
    /// the server), to keep their decoder out of the initial bundle.
    #[serde(default)]
    #[cfg_attr(not(feature = "runtime"), serde(skip_deserializing))]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    #[cfg_attr(not(feature = "runtime"), serde(skip_deserializing))]
    pub annotations: BTreeMap<String, String>,
    /// When it started firing, by the sender's clock.
    pub starts_at: DateTime<Utc>,
    /// Where the sender shows the alert's expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_url: Option<String>,
}

impl AlertRecord {
    /// The feed's line: the alert, where it came from, and what it did.
    pub fn describe(&self) -> String {
        let severity = match &self.severity_label {
            Some(label) => format!("{label} → {}", self.severity.as_str()),
            None => format!("no label → {}", self.severity.as_str()),
        };
        let did = match self.placement {
            AlertPlacement::Opened => "opened the incident",
            AlertPlacement::Joined => "joined the incident",
            AlertPlacement::Resolved => "resolved",
        };
        format!(
            "Alert {} on {} ({}, {severity}) {did}: {}",
            self.name, self.service, self.source, self.summary
        )
    }
}
