//! Alertmanager's webhook payload (version "4"), and Grafana's, which is
//! the same with more fields (they are ignored, not refused).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{Alert, severity_of};
use crate::{request::FieldError, twin::topology::Topology};

/// The payload version this reader knows.
pub const VERSION: &str = "4";
/// Most alerts one delivery may carry.
pub const MAX_ALERTS: usize = 1_000;

/// A delivery: one group of alerts.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    /// Must be "4".
    pub version: String,
    /// The group's key in Alertmanager.
    #[serde(default)]
    pub group_key: String,
    /// `firing` while any alert of the group fires.
    #[serde(default)]
    pub status: String,
    /// The receiver's name in Alertmanager's config.
    #[serde(default)]
    pub receiver: String,
    /// Alertmanager's own address.
    #[serde(default, rename = "externalURL")]
    pub external_url: String,
    /// The group's alerts (at least one).
    pub alerts: Vec<WebhookAlert>,
    /// Grafana's organisation: present only in Grafana's deliveries, which
    /// is how they are told apart.
    #[serde(default)]
    pub org_id: Option<i64>,
}

/// One alert of a delivery.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct WebhookAlert {
    /// `firing` or `resolved`.
    pub status: String,
    /// Must hold `alertname`, and `service`: a service of the estate.
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    pub starts_at: DateTime<Utc>,
    #[serde(default, rename = "generatorURL")]
    pub generator_url: Option<String>,
    /// The alert's identity; the same alert redelivered has the same one.
    pub fingerprint: String,
}

impl Webhook {
    /// The delivery's alerts, each checked against `topology`; the first
    /// problem, with its field, refuses the whole delivery.
    pub fn parse(self, topology: &Topology) -> Result<Vec<Alert>, FieldError> {
        if self.version != VERSION {
            return Err(FieldError::new(
                "version",
                format!(
                    "is {:?}; this receiver reads Alertmanager's webhook version \"4\"",
                    self.version
                ),
            ));
        }
        if self.alerts.is_empty() {
            return Err(FieldError::new(
                "alerts",
                "is empty: a delivery carries at least one alert",
            ));
        }
        if self.alerts.len() > MAX_ALERTS {
            return Err(FieldError::new(
                "alerts",
                format!("has {} alerts; at most {MAX_ALERTS}", self.alerts.len()),
            ));
        }
        let source = if self.org_id.is_some() {
            "grafana"
        } else {
            "alertmanager"
        };
        (self.alerts.into_iter().enumerate())
            .map(|(i, alert)| alert.parse(&format!("alerts[{i}]"), topology, source))
            .collect()
    }
}

impl WebhookAlert {
    fn parse(self, at: &str, topology: &Topology, source: &'static str) -> Result<Alert, FieldError> {
        let field = |name: &str| format!("{at}.{name}");
        let firing = match self.status.as_str() {
            "firing" => true,
            "resolved" => false,
            other => {
                return Err(FieldError::new(
                    field("status"),
                    format!("is {other:?}; use firing or resolved"),
                ));
            }
        };
        if self.fingerprint.trim().is_empty() {
            return Err(FieldError::new(field("fingerprint"), "must not be empty"));
        }
        let label = |name: &str| self.labels.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
        let name = label("alertname")
            .ok_or_else(|| FieldError::new(field("labels.alertname"), "is missing: every alert is named"))?
            .to_owned();
        let service = label("service").ok_or_else(|| {
            FieldError::new(
                field("labels.service"),
                "is missing: say which service of the estate it is about",
            )
        })?;
        if topology.index(service).is_none() {
            let known: Vec<&str> = topology.names().collect();
            return Err(FieldError::new(
                field("labels.service"),
                format!(
                    "`{service}` is not a service of the estate (known: {})",
                    known.join(", ")
                ),
            ));
        }
        let severity = severity_of(label("severity")).ok_or_else(|| {
            FieldError::new(
                field("labels.severity"),
                "is not one of critical, high, medium, low (or page, error, major, warning, minor, info, none, p1–p5)",
            )
        })?;
        let summary = self
            .annotations
            .get("summary")
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .unwrap_or(&name)
            .to_owned();
        Ok(Alert {
            source,
            fingerprint: self.fingerprint,
            firing,
            service: service.to_owned(),
            severity,
            summary,
            name,
            labels: self.labels,
            annotations: self.annotations,
            starts_at: self.starts_at,
            generator_url: self.generator_url.filter(|u| !u.is_empty()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn webhook(extra: serde_json::Value) -> Webhook {
        let mut body = serde_json::json!({
            "version": "4",
            "status": "firing",
            "alerts": [{
                "status": "firing",
                "fingerprint": "f1",
                "startsAt": "2026-12-07T10:00:00Z",
                "labels": {"alertname": "HighErrorRate", "service": "order-service", "severity": "warning"},
                "annotations": {"summary": "order-service fails"},
                "generatorURL": "http://grafana:3000/alerting/grafana/abc/view",
                "dashboardURL": "http://grafana:3000/d/x",
                "values": {"B": 0.4},
            }],
        });
        for (key, value) in extra.as_object().unwrap() {
            body[key] = value.clone();
        }
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn grafanas_deliveries_are_told_apart_by_their_org_and_their_extra_fields_ignored() {
        let topology = Topology::embedded().unwrap();
        let grafana =
            webhook(serde_json::json!({"orgId": 1, "title": "[FIRING:1]", "message": "…", "state": "alerting"}));
        let alerts = grafana.parse(&topology).unwrap();
        assert_eq!(alerts[0].source, "grafana");
        assert_eq!(
            alerts[0].generator_url.as_deref(),
            Some("http://grafana:3000/alerting/grafana/abc/view")
        );
        let alertmanager = webhook(serde_json::json!({"groupKey": "{}", "externalURL": "http://am:9093"}));
        assert_eq!(alertmanager.parse(&topology).unwrap()[0].source, "alertmanager");
    }
}
