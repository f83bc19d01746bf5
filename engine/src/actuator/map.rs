//! The actuator map: which request each remediation becomes on one estate
//! (a data file per estate: `data/actuators/twin.toml` for the standalone
//! twin; `deploy/actuators/` has StackStorm's and Rundeck's). Parsed
//! strictly: a map that cannot work stops the server at start, naming the
//! key.

use std::{collections::BTreeMap, time::Duration};

use serde::Deserialize;

use crate::protocol::ActionKind;

/// The shipped map, for the standalone twin.
const TWIN: &str = include_str!("../../data/actuators/twin.toml");

/// How an actuator learns an order's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Learn {
    /// The answer to the order carries it (`status` in the receipt).
    Response,
    /// `GET status_url` until the status is final.
    Poll,
    /// The receiver POSTs it, signed, to the order's `callback_url`.
    Callback,
}

/// The map as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MapFile {
    name: String,
    url: String,
    outcome: Learn,
    #[serde(default)]
    status_url: Option<String>,
    #[serde(default)]
    undo_url: Option<String>,
    timeout_seconds: u64,
    attempts: u32,
    #[serde(default = "default_poll")]
    poll_seconds: f64,
    #[serde(default)]
    parameters: BTreeMap<String, toml::Value>,
}

fn default_poll() -> f64 {
    1.0
}

/// An estate's actuator map, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ActuatorMap {
    /// What the receiver is, as records name it (`twin`, `stackstorm`).
    pub name: String,
    /// Where orders are POSTed (`$base`).
    pub url: String,
    /// How the outcome is learned.
    pub outcome: Learn,
    /// Where a receipt's status is read (`$base`, `$receipt`).
    pub status_url: Option<String>,
    /// Where a receipt is undone (`$base`, `$receipt`); without it the
    /// actuator cannot undo, and a rollback leaves its steps in place.
    pub undo_url: Option<String>,
    /// A step with no outcome after this long has failed.
    pub timeout: Duration,
    /// Deliveries tried before the step fails.
    pub attempts: u32,
    /// Between two reads of the status.
    pub poll: Duration,
    /// The receiver's own parameters for each remediation (`$target`,
    /// `$kind`, `$incident` in strings).
    pub parameters: BTreeMap<ActionKind, serde_json::Value>,
}

/// The placeholders a URL may hold.
const URL_PLACEHOLDERS: [&str; 2] = ["$base", "$receipt"];

impl ActuatorMap {
    /// The shipped map for the standalone twin.
    pub fn twin() -> Self {
        Self::parse(TWIN).expect("data/actuators/twin.toml is checked by the tests")
    }

    /// Reads a map file's text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: MapFile = toml::from_str(text).map_err(|e| e.to_string())?;
        if file.name.trim().is_empty() {
            return Err("name: empty".into());
        }
        check_url("url", &file.url, false)?;
        for (key, url) in [("status_url", &file.status_url), ("undo_url", &file.undo_url)] {
            if let Some(url) = url {
                check_url(key, url, true)?;
            }
        }
        if file.outcome == Learn::Poll && file.status_url.is_none() {
            return Err("status_url: needed with outcome = \"poll\"".into());
        }
        if !(1..=3600).contains(&file.timeout_seconds) {
            return Err(format!("timeout_seconds: {} is not in [1, 3600]", file.timeout_seconds));
        }
        if !(1..=10).contains(&file.attempts) {
            return Err(format!("attempts: {} is not in [1, 10]", file.attempts));
        }
        if !(0.1..=60.0).contains(&file.poll_seconds) {
            return Err(format!("poll_seconds: {} is not in [0.1, 60]", file.poll_seconds));
        }
        let mut parameters = BTreeMap::new();
        for (name, value) in file.parameters {
            let kind = ActionKind::ALL
                .into_iter()
                .find(|k| k.as_str() == name)
                .ok_or_else(|| format!("parameters.{name}: not a remediation"))?;
            let value = serde_json::to_value(value).map_err(|e| format!("parameters.{name}: {e}"))?;
            parameters.insert(kind, value);
        }
        Ok(Self {
            name: file.name,
            url: file.url,
            outcome: file.outcome,
            status_url: file.status_url,
            undo_url: file.undo_url,
            timeout: Duration::from_secs(file.timeout_seconds),
            attempts: file.attempts,
            poll: Duration::from_secs_f64(file.poll_seconds),
            parameters,
        })
    }

    /// The receiver's parameters for `kind` on `target`, placeholders
    /// filled (null when the map has none).
    pub fn parameters(&self, kind: ActionKind, target: &str, incident: &str) -> serde_json::Value {
        let mut value = self.parameters.get(&kind).cloned().unwrap_or_default();
        fill(
            &mut value,
            &[("$target", target), ("$kind", kind.as_str()), ("$incident", incident)],
        );
        value
    }
}

/// A URL template must start at `$base` (so it goes where the operator
/// pointed it) and name only known placeholders.
fn check_url(key: &str, url: &str, receipt: bool) -> Result<(), String> {
    if !url.starts_with("$base") {
        return Err(format!("{key}: `{url}` must start with `$base`"));
    }
    let mut rest = url;
    while let Some(at) = rest.find('$') {
        rest = &rest[at..];
        let known = URL_PLACEHOLDERS
            .into_iter()
            .find(|p| rest.starts_with(p))
            .ok_or_else(|| format!("{key}: unknown placeholder in `{url}` (known: $base, $receipt)"))?;
        if known == "$receipt" && !receipt {
            return Err(format!("{key}: `$receipt` is only known after the order"));
        }
        rest = &rest[known.len()..];
    }
    Ok(())
}

/// Replaces placeholders in every string of `value`.
fn fill(value: &mut serde_json::Value, with: &[(&str, &str)]) {
    match value {
        serde_json::Value::String(text) => {
            for (placeholder, by) in with {
                *text = text.replace(placeholder, by);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| fill(v, with)),
        serde_json::Value::Object(fields) => fields.values_mut().for_each(|v| fill(v, with)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_maps_parse() {
        let twin = ActuatorMap::twin();
        assert_eq!(twin.outcome, Learn::Response);
        for file in ["stackstorm.toml", "rundeck.toml"] {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/actuators/");
            let text = std::fs::read_to_string(format!("{path}{file}")).unwrap();
            ActuatorMap::parse(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        }
    }

    #[test]
    fn parameters_fill_their_placeholders() {
        let map = ActuatorMap::parse(
            r#"
            name = "st2"
            url = "$base/api/v1/webhooks/antibody"
            outcome = "callback"
            timeout_seconds = 60
            attempts = 3
            [parameters.restart_instances]
            action = "core.remote"
            cmd = ["systemctl", "restart", "$target"]
            "#,
        )
        .unwrap();
        let filled = map.parameters(ActionKind::RestartInstances, "payment-service", "i-1");
        assert_eq!(
            filled,
            serde_json::json!({"action": "core.remote", "cmd": ["systemctl", "restart", "payment-service"]})
        );
        assert_eq!(
            map.parameters(ActionKind::FlushCache, "redis-cache", "i-1"),
            serde_json::Value::Null
        );
    }

    #[test]
    fn a_map_that_cannot_work_is_refused_naming_the_key() {
        let base = "name = \"x\"\nurl = \"$base/a\"\ntimeout_seconds = 5\nattempts = 2\n";
        for (extra, key) in [
            ("outcome = \"poll\"", "status_url: needed"),
            (
                "outcome = \"response\"\nundo_url = \"http://elsewhere/$receipt\"",
                "undo_url: `http://elsewhere",
            ),
            (
                "outcome = \"response\"\nstatus_url = \"$base/$id\"",
                "status_url: unknown placeholder",
            ),
            (
                "outcome = \"response\"\n[parameters.reboot]\na = 1",
                "parameters.reboot: not a remediation",
            ),
            ("outcome = \"sometimes\"", "unknown variant `sometimes`"),
        ] {
            let error = ActuatorMap::parse(&format!("{base}{extra}")).unwrap_err();
            assert!(error.contains(key), "{extra}: {error}");
        }
        let error = ActuatorMap::parse(
            "name = \"x\"\nurl = \"$base/$receipt\"\noutcome = \"callback\"\ntimeout_seconds = 5\nattempts = 2",
        )
        .unwrap_err();
        assert!(error.contains("only known after the order"), "{error}");
    }
}
