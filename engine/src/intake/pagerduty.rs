//! PagerDuty's Events API v2 shape (`routing_key`, `event_action`,
//! `dedup_key`, `payload{summary, source, severity, …}`), which many tools
//! send: one event per request. A trigger fires the alert its `dedup_key`
//! names (one is made up when it has none, and returned); a resolve ends
//! it; an acknowledge is taken and changes nothing, since the swarm works
//! the incident either way.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{Alert, severity_of};
use crate::{request::FieldError, twin::topology::Topology};

/// Longest summary PagerDuty accepts, in characters.
pub const MAX_SUMMARY_CHARS: usize = 1024;
/// Longest `dedup_key` PagerDuty accepts, in characters.
pub const MAX_DEDUP_KEY_CHARS: usize = 255;

/// One event.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Event {
    /// The integration's key. Required, as PagerDuty requires it; it may
    /// also carry the intake token, for senders that cannot set a header.
    pub routing_key: String,
    /// `trigger`, `acknowledge` or `resolve`.
    pub event_action: String,
    /// The alert's identity: a trigger with the same key is the same alert;
    /// required to acknowledge or resolve.
    #[serde(default)]
    pub dedup_key: Option<String>,
    /// Required to trigger.
    #[serde(default)]
    pub payload: Option<Payload>,
    /// The sender's name.
    #[serde(default)]
    pub client: Option<String>,
    /// A link back to the sender.
    #[serde(default)]
    pub client_url: Option<String>,
    /// Links shown with the alert; the first is kept as its link.
    #[serde(default)]
    pub links: Vec<Link>,
}

/// What a trigger is about.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Payload {
    /// What a person reads first.
    pub summary: String,
    /// Where it happened (a host, a service).
    pub source: String,
    /// `critical`, `error`, `warning` or `info`.
    pub severity: String,
    /// When it happened; now when absent.
    #[serde(default)]
    pub timestamp: Option<DateTime<Utc>>,
    /// The service of the estate it is about; `source` when absent.
    #[serde(default)]
    pub component: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    /// The kind of event: the alert's name.
    #[serde(default)]
    pub class: Option<String>,
    /// Anything else: kept, as JSON, among the annotations.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub custom_details: Option<serde_json::Value>,
}

/// A link.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Link {
    pub href: String,
    #[serde(default)]
    pub text: Option<String>,
}

/// What an event asks.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Fire, or resolve, this alert.
    Alert(Alert),
    /// Someone acknowledged the alert with this key.
    Acknowledge(String),
}

impl Event {
    /// The event, checked against `topology`; `made_up_key` is the
    /// `dedup_key` of a trigger that has none. The first problem, with its
    /// field, refuses it.
    pub fn parse(self, topology: &Topology, made_up_key: String) -> Result<Action, FieldError> {
        if self.routing_key.trim().is_empty() {
            return Err(FieldError::new("routing_key", "must not be empty"));
        }
        let key = self.dedup_key.clone().filter(|k| !k.trim().is_empty());
        if let Some(key) = &key
            && key.chars().count() > MAX_DEDUP_KEY_CHARS
        {
            return Err(FieldError::new(
                "dedup_key",
                format!("is longer than {MAX_DEDUP_KEY_CHARS} characters"),
            ));
        }
        match self.event_action.as_str() {
            "trigger" => self.trigger(topology, key.unwrap_or(made_up_key)).map(Action::Alert),
            "acknowledge" | "resolve" => {
                let key = key.ok_or_else(|| {
                    FieldError::new(
                        "dedup_key",
                        format!("is needed to {}: the key its trigger had", self.event_action),
                    )
                })?;
                if self.event_action == "acknowledge" {
                    Ok(Action::Acknowledge(key))
                } else {
                    Ok(Action::Alert(resolution(key)))
                }
            }
            other => Err(FieldError::new(
                "event_action",
                format!("is {other:?}; use trigger, acknowledge or resolve"),
            )),
        }
    }

    fn trigger(self, topology: &Topology, key: String) -> Result<Alert, FieldError> {
        let payload = self
            .payload
            .ok_or_else(|| FieldError::new("payload", "is needed to trigger: summary, source and severity"))?;
        let summary = payload.summary.trim();
        if summary.is_empty() || summary.chars().count() > MAX_SUMMARY_CHARS {
            return Err(FieldError::new(
                "payload.summary",
                format!("must be 1 to {MAX_SUMMARY_CHARS} characters"),
            ));
        }
        let (field, service) = match &payload.component {
            Some(component) => ("payload.component", component.trim()),
            None => ("payload.source", payload.source.trim()),
        };
        if topology.index(service).is_none() {
            let known: Vec<&str> = topology.names().collect();
            return Err(FieldError::new(
                field,
                format!(
                    "`{service}` is not a service of the estate (known: {})",
                    known.join(", ")
                ),
            ));
        }
        let severity = severity_of(Some(&payload.severity))
            .ok_or_else(|| FieldError::new("payload.severity", "is not one of critical, error, warning, info"))?;
        let name = payload
            .class
            .clone()
            .filter(|c| !c.trim().is_empty())
            .unwrap_or_else(|| "event".into());
        let mut labels = BTreeMap::from([
            ("alertname".to_owned(), name.clone()),
            ("service".to_owned(), service.to_owned()),
            ("severity".to_owned(), payload.severity.clone()),
            ("source".to_owned(), payload.source.clone()),
        ]);
        for (label, value) in [("group", &payload.group), ("client", &self.client)] {
            if let Some(value) = value {
                labels.insert(label.to_owned(), value.clone());
            }
        }
        let mut annotations = BTreeMap::from([("summary".to_owned(), summary.to_owned())]);
        if let Some(details) = &payload.custom_details {
            annotations.insert("custom_details".to_owned(), details.to_string());
        }
        Ok(Alert {
            source: "pagerduty",
            fingerprint: key,
            firing: true,
            name,
            service: service.to_owned(),
            severity,
            summary: summary.to_owned(),
            labels,
            annotations,
            starts_at: payload.timestamp.unwrap_or_else(Utc::now),
            generator_url: self.links.into_iter().map(|l| l.href).next().or(self.client_url),
        })
    }
}

/// A resolve: only its key is known; the desk finds the rest.
fn resolution(key: String) -> Alert {
    Alert {
        source: "pagerduty",
        fingerprint: key,
        firing: false,
        name: "event".into(),
        service: String::new(),
        severity: crate::protocol::Severity::Medium,
        summary: "resolved".into(),
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
        starts_at: Utc::now(),
        generator_url: None,
    }
}
