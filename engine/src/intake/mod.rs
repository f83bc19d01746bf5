//! Alerts in: what a monitoring system sends, parsed at the edge into
//! [`Alert`]s, then grouped into incidents by the [`desk`].
//!
//! Alertmanager's webhook (version 4, and Grafana's, which adds fields) is
//! read by [`alertmanager`]. Every label, annotation and `generatorURL` is
//! kept. A malformed delivery is refused with the field at fault; nothing
//! of it is taken.

pub mod alertmanager;
pub mod desk;
pub mod pagerduty;
pub mod silences;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::protocol::{AlertPlacement, AlertRecord, Severity};

/// One alert, as the monitoring system sent it, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Who sent it, as in `alertmanager`.
    pub source: &'static str,
    /// The sender's identity of the alert: the same alert, redelivered or
    /// resolved, has the same one.
    pub fingerprint: String,
    /// Firing, or resolved.
    pub firing: bool,
    /// The rule's name (`alertname`).
    pub name: String,
    /// The service of the estate it is about (its `service` label).
    pub service: String,
    /// From its `severity` label (see [`severity_of`]).
    pub severity: Severity,
    /// What a person reads first: its `summary` annotation, else its name.
    pub summary: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: DateTime<Utc>,
    /// Where the sender shows the alert's expression.
    pub generator_url: Option<String>,
}

impl Alert {
    /// The alert as its incident's record keeps it, with what it did.
    pub fn record(&self, placement: AlertPlacement) -> AlertRecord {
        AlertRecord {
            source: self.source.to_owned(),
            fingerprint: self.fingerprint.clone(),
            placement,
            name: self.name.clone(),
            service: self.service.clone(),
            severity: self.severity,
            severity_label: self.labels.get("severity").cloned(),
            summary: self.summary.clone(),
            labels: self.labels.clone(),
            annotations: self.annotations.clone(),
            starts_at: self.starts_at,
            generator_url: self.generator_url.clone(),
        }
    }
}

/// An alert's `severity` label as an incident's severity: `critical`
/// (also `page`, `p1`); `high` (`error`, `major`, `p2`); `medium`
/// (`warning`, `minor`, `p3`, and no label); `low` (`info`, `none`, `p4`,
/// `p5`). `None` for a label it does not know.
pub fn severity_of(label: Option<&str>) -> Option<Severity> {
    let Some(label) = label else {
        return Some(Severity::Medium);
    };
    Some(match label.to_ascii_lowercase().as_str() {
        "critical" | "page" | "p1" => Severity::Critical,
        "high" | "error" | "major" | "p2" => Severity::High,
        "medium" | "warning" | "minor" | "p3" => Severity::Medium,
        "low" | "info" | "none" | "p4" | "p5" => Severity::Low,
        _ => return None,
    })
}
