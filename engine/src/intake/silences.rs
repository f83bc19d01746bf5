//! Silences: while a plan runs on a watched estate, the incident's alerts
//! are silenced in Alertmanager (API v2, `POST /api/v2/silences`), so
//! nobody is paged for what is being fixed; the silences are expired
//! (`DELETE /api/v2/silence/{id}`) once verification or the rollback is
//! done. Each silence matches one alert's labels exactly, and ends by
//! itself at a deadline too, should the server stop before it expires it.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::desk::Desk;
use crate::protocol::{AlertPlacement, AlertRecord};

/// Alertmanager's API, and the desk that knows each incident's alerts;
/// cheap to clone.
#[derive(Clone)]
pub struct Silencer {
    url: String,
    http: reqwest::Client,
    desk: Arc<Mutex<Desk>>,
}

/// The silences set for one plan.
#[derive(Debug, Default)]
pub struct Silenced {
    /// Alertmanager's ids.
    pub ids: Vec<String>,
    /// The alerts they cover.
    pub alerts: Vec<AlertRecord>,
    /// What could not be silenced, and why.
    pub failures: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Matcher<'a> {
    name: &'a str,
    value: &'a str,
    is_regex: bool,
    is_equal: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NewSilence<'a> {
    matchers: Vec<Matcher<'a>>,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    created_by: &'a str,
    comment: &'a str,
}

#[derive(Deserialize)]
struct Created {
    #[serde(rename = "silenceID")]
    silence_id: String,
}

impl Silencer {
    pub fn new(url: &str, desk: Arc<Mutex<Desk>>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("a client with a timeout builds");
        Self {
            url: url.trim_end_matches('/').to_owned(),
            http,
            desk,
        }
    }

    /// Silences every alert of `incident` that still fires, until `within`
    /// from now.
    pub async fn silence(&self, incident: Uuid, comment: &str, within: Duration) -> Silenced {
        let alerts = self.desk.lock().expect("alert desk lock poisoned").alerts_of(incident);
        let now = Utc::now();
        let ends_at = now + chrono::Duration::from_std(within).unwrap_or(chrono::Duration::hours(1));
        let mut silenced = Silenced::default();
        for alert in alerts.into_iter().filter(|a| !a.labels.is_empty()) {
            match self.one(&alert.labels, now, ends_at, comment).await {
                Ok(id) => {
                    silenced.ids.push(id);
                    silenced.alerts.push(alert);
                }
                Err(why) => silenced.failures.push(why),
            }
        }
        silenced
    }

    /// Of the alerts `silenced` covered, those Alertmanager no longer has
    /// firing: they resolved while silenced, and Alertmanager sends no
    /// resolution for an alert it silenced, so the incident's record
    /// takes it from here. Ask after expiring the silences.
    pub async fn resolved_while_silenced(&self, silenced: &Silenced) -> Vec<AlertRecord> {
        let mut resolved = Vec::new();
        for alert in &silenced.alerts {
            let filter: Vec<(&str, String)> = (alert.labels.iter())
                .map(|(name, value)| ("filter", equals(name, value)))
                .collect();
            let url = format!("{}/api/v2/alerts", self.url);
            let Ok(response) = self.http.get(&url).query(&filter).send().await else {
                continue;
            };
            let Ok(firing) = response.json::<Vec<serde_json::Value>>().await else {
                continue;
            };
            if firing.is_empty() {
                resolved.push(AlertRecord {
                    placement: AlertPlacement::Resolved,
                    ..alert.clone()
                });
            }
        }
        resolved
    }

    async fn one(
        &self,
        labels: &BTreeMap<String, String>,
        starts_at: DateTime<Utc>,
        ends_at: DateTime<Utc>,
        comment: &str,
    ) -> Result<String, String> {
        let silence = NewSilence {
            matchers: (labels.iter())
                .map(|(name, value)| Matcher {
                    name,
                    value,
                    is_regex: false,
                    is_equal: true,
                })
                .collect(),
            starts_at,
            ends_at,
            created_by: "antibody",
            comment,
        };
        let url = format!("{}/api/v2/silences", self.url);
        let response = (self.http.post(&url).json(&silence).send().await)
            .map_err(|e| format!("Alertmanager at {} did not answer: {e}", self.url))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(format!(
                "Alertmanager at {} answered {status}: {}",
                self.url,
                body.trim()
            ));
        }
        let created: Created =
            (response.json().await).map_err(|e| format!("Alertmanager at {} answered no silence id: {e}", self.url))?;
        Ok(created.silence_id)
    }

    /// Expires the silences `ids`; what could not be expired, and why
    /// (each still ends at its deadline).
    pub async fn expire(&self, ids: &[String]) -> Vec<String> {
        let mut failures = Vec::new();
        for id in ids {
            let url = format!("{}/api/v2/silence/{id}", self.url);
            match self.http.delete(&url).send().await {
                Ok(response) if response.status().is_success() => {}
                Ok(response) => failures.push(format!("silence {id}: Alertmanager answered {}", response.status())),
                Err(error) => failures.push(format!("silence {id}: {error}")),
            }
        }
        failures
    }
}

/// Alertmanager's matcher `name="value"`, the value quoted as it wants.
fn equals(name: &str, value: &str) -> String {
    let quoted = value.replace('\\', "\\\\").replace('"', "\\\"");
    format!("{name}=\"{quoted}\"")
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_matcher_quotes_its_value() {
        assert_eq!(super::equals("service", "order-service"), r#"service="order-service""#);
        assert_eq!(super::equals("summary", r#"a "b" \c"#), r#"summary="a \"b\" \\c""#);
    }
}
