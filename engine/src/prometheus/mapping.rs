//! The mapping file: which PromQL each figure the agents read comes from
//! (`data/promql/twin.toml` for the twin's exporter; any estate can ship
//! its own). Parsed strictly: an unknown figure, a missing one or a
//! template that names no way to tell services apart stops the server at
//! start with the file's reason.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::protocol::Metric;

/// The shipped mapping, for the twin's exporter.
const EMBEDDED: &str = include_str!("../../data/promql/twin.toml");

/// Most points one series may have in a range query (lookback / step + 1);
/// Prometheus itself refuses over 11,000.
pub const MAX_POINTS: u64 = 3_600;

/// The mapping as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingFile {
    service_label: String,
    step_seconds: u64,
    lookback_seconds: u64,
    rate_window: String,
    metrics: BTreeMap<String, String>,
}

/// Which PromQL each figure comes from, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    /// The label that tells services apart in every result.
    pub service_label: String,
    /// Seconds between the points of a range query.
    pub step_seconds: u64,
    /// Seconds of history read, for the baselines.
    pub lookback_seconds: u64,
    /// The range of every `rate()`, as PromQL writes it (`5s`, `1m`).
    pub rate_window: String,
    /// One template per figure, indexed by `Metric as usize`.
    templates: Vec<String>,
}

impl Mapping {
    /// The shipped mapping for the twin's exporter.
    pub fn embedded() -> Result<Self, String> {
        Self::parse(EMBEDDED).map_err(|e| format!("data/promql/twin.toml: {e}"))
    }

    /// Reads a mapping file's text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: MappingFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut templates = vec![String::new(); Metric::COUNT];
        for (name, template) in &file.metrics {
            let metric = Metric::ALL
                .into_iter()
                .find(|m| m.as_str() == name)
                .ok_or_else(|| format!("metrics.{name}: not a figure the agents read ({})", names()))?;
            if template.trim().is_empty() {
                return Err(format!("metrics.{name}: the template is empty"));
            }
            templates[metric as usize] = template.clone();
        }
        if let Some(missing) = Metric::ALL.into_iter().find(|m| templates[*m as usize].is_empty()) {
            return Err(format!(
                "metrics.{}: missing (every figure needs a template)",
                missing.as_str()
            ));
        }
        let label_ok = !file.service_label.is_empty()
            && file
                .service_label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !file.service_label.starts_with(|c: char| c.is_ascii_digit());
        if !label_ok {
            return Err(format!("service_label: `{}` is not a label name", file.service_label));
        }
        if file.step_seconds == 0 {
            return Err("step_seconds: must be 1 or more".into());
        }
        let points = file.lookback_seconds / file.step_seconds + 1;
        if file.lookback_seconds < file.step_seconds * 30 || points > MAX_POINTS {
            return Err(format!(
                "lookback_seconds: {} s at a {} s step is {points} points; between 31 and {MAX_POINTS} are needed \
                 (30 to learn a baseline from)",
                file.lookback_seconds, file.step_seconds
            ));
        }
        if !is_duration(&file.rate_window) {
            return Err(format!(
                "rate_window: `{}` is not a PromQL duration such as 5s or 1m",
                file.rate_window
            ));
        }
        Ok(Self {
            service_label: file.service_label,
            step_seconds: file.step_seconds,
            lookback_seconds: file.lookback_seconds,
            rate_window: file.rate_window,
            templates,
        })
    }

    /// The query for `metric`, with the deployment's `selector` and the
    /// rate window filled in; `service` fills a per-service template.
    pub fn query(&self, metric: Metric, selector: &str, service: Option<&str>) -> String {
        let mut query = self.templates[metric as usize]
            .replace("$selector", selector)
            .replace("$window", &self.rate_window);
        if let Some(service) = service {
            query = query.replace("$service", &escape(service));
        }
        query
    }

    /// Whether `metric`'s template runs once per service.
    pub fn per_service(&self, metric: Metric) -> bool {
        self.templates[metric as usize].contains("$service")
    }
}

/// Every figure's name, for the error that names an unknown one.
fn names() -> String {
    Metric::ALL.map(Metric::as_str).join(", ")
}

/// A PromQL duration: digits and a unit, possibly several (`1m30s`).
fn is_duration(text: &str) -> bool {
    let mut rest = text;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 {
            return false;
        }
        rest = &rest[digits..];
        let unit = ["ms", "s", "m", "h", "d", "w", "y"]
            .into_iter()
            .find(|u| rest.starts_with(u));
        let Some(unit) = unit else { return false };
        rest = &rest[unit.len()..];
    }
    true
}

/// A label value inside a PromQL double-quoted string.
pub fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_mapping_reads_and_fills_in_its_placeholders() {
        let mapping = Mapping::embedded().unwrap();
        let query = mapping.query(Metric::ErrorRate, "job=\"twin\"", None);
        assert!(query.contains("{code=~\"5..\",job=\"twin\"}[5s]"), "{query}");
        assert!(!query.contains('$'), "{query}");
        assert!(!mapping.per_service(Metric::ErrorRate));
    }

    #[test]
    fn a_bad_mapping_names_what_is_wrong() {
        let good = include_str!("../../data/promql/twin.toml");
        let cases = [
            (good.replace("rps = ", "requests = "), "metrics.requests: not a figure"),
            (good.replace("rps = ", "# rps = "), "metrics.rps: missing"),
            (
                good.replace("rate_window = \"5s\"", "rate_window = \"5 s\""),
                "rate_window",
            ),
            (good.replace("step_seconds = 1", "step_seconds = 0"), "step_seconds"),
            (
                good.replace("lookback_seconds = 300", "lookback_seconds = 20"),
                "lookback_seconds",
            ),
            (
                good.replace("service_label = \"service\"", "service_label = \"a-b\""),
                "service_label",
            ),
            (format!("extra = 1\n{good}"), "unknown field"),
        ];
        for (text, expected) in cases {
            let error = Mapping::parse(&text).unwrap_err();
            assert!(error.contains(expected), "{expected}: {error}");
        }
    }

    #[test]
    fn a_per_service_template_gets_the_name_escaped() {
        let text = include_str!("../../data/promql/twin.toml").replace(
            "cpu = 'max by",
            "cpu = 'max by (service) (cpu{service=\"$service\"}) or max by",
        );
        let mapping = Mapping::parse(&text).unwrap();
        assert!(mapping.per_service(Metric::Cpu));
        assert!(
            mapping
                .query(Metric::Cpu, "", Some("a\"b"))
                .contains("service=\"a\\\"b\"")
        );
    }

    #[test]
    fn durations_are_promql_ones() {
        for good in ["5s", "1m30s", "250ms", "2h"] {
            assert!(is_duration(good), "{good}");
        }
        for bad in ["", "5", "s", "5 s", "1.5m", "5x"] {
            assert!(!is_duration(bad), "{bad}");
        }
    }
}
