//! Timelines: scheduled streams of incidents, read from seed 004's JSON
//! format, checked strictly, and run by the [`runner`].
//!
//! A timeline file names its incidents by catalog scenario (`predefined`)
//! or by a prompt (`llm_generated`) that a [`generator`] turns into a
//! scenario on the twin. Checking a file reports every problem at once,
//! each with the file, the JSON path and the reason, and suggests the
//! closest scenario id for a misspelt one.

pub mod generator;
pub mod runner;
pub mod schema;

use std::{fmt, time::Duration};

use serde::Deserialize;

use crate::{
    catalog::Catalog,
    protocol::{EntryKind, ScheduledEntry, Severity, TimelineSummary},
    twin::topology::Topology,
};

/// Longest timeline accepted: a working day.
const MAX_DURATION_MINUTES: f64 = 24.0 * 60.0;
/// Most incidents in one timeline.
const MAX_INCIDENTS: usize = 500;
/// Longest prompt accepted, in characters.
const MAX_PROMPT: usize = 2_000;

/// The file as written (seed 004's schema). Unknown fields are refused.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TimelineFile {
    name: String,
    #[serde(default)]
    description: String,
    duration_minutes: f64,
    incidents: Vec<EntryFile>,
}

/// One incident as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryFile {
    delay_seconds: f64,
    #[serde(rename = "type")]
    kind: EntryKind,
    scenario_id: Option<String>,
    llm_prompt: Option<String>,
    service_name: Option<String>,
    expected_severity: Option<Severity>,
    #[serde(default)]
    comment: String,
}

/// One problem with a timeline file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TimelineIssue {
    /// The file (or `custom` for pasted text).
    pub file: String,
    /// Where in the JSON, as in `incidents[2].scenario_id`; empty for the
    /// whole document.
    pub path: String,
    /// What is wrong, and what would be right.
    pub reason: String,
}

impl fmt::Display for TimelineIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}", self.file, self.reason)
        } else {
            write!(f, "{}: {}: {}", self.file, self.path, self.reason)
        }
    }
}

/// Every problem found in a timeline file (never empty).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct TimelineErrors(pub Vec<TimelineIssue>);

impl fmt::Display for TimelineErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{issue}")?;
        }
        Ok(())
    }
}

/// Where a scheduled incident comes from, checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A catalog scenario that exists.
    Catalog { scenario_id: String },
    /// A prompt for a generator, and the service it names, if any.
    Generated { prompt: String, service: Option<String> },
}

/// One scheduled incident, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// When it starts, after the timeline's start, at speed 1.
    pub delay: Duration,
    /// What it opens.
    pub source: Source,
    /// The severity to open it at, overriding the scenario's.
    pub expected_severity: Option<Severity>,
    /// The file's note.
    pub comment: String,
}

impl Entry {
    /// As the wire shows it.
    pub fn scheduled(&self) -> ScheduledEntry {
        let (kind, source, service_name) = match &self.source {
            Source::Catalog { scenario_id } => (EntryKind::Predefined, scenario_id.clone(), None),
            Source::Generated { prompt, service } => (EntryKind::LlmGenerated, prompt.clone(), service.clone()),
        };
        ScheduledEntry {
            delay_seconds: self.delay.as_secs_f64(),
            kind,
            source,
            service_name,
            expected_severity: self.expected_severity,
            comment: self.comment.clone(),
        }
    }
}

/// A timeline that passed every check: its entries are in start order, and
/// every catalog scenario it names exists.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    /// The file's stem, or `custom`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// What it simulates.
    pub description: String,
    /// Its length, at speed 1.
    pub duration: Duration,
    /// The incidents, by delay (stable: equal delays keep file order).
    pub entries: Vec<Entry>,
}

impl Timeline {
    /// Reads and checks a timeline. `id` names it (a file's stem) and
    /// `file` is what errors call it (a path, or `custom`).
    pub fn parse(
        id: &str,
        file: &str,
        json: &str,
        catalog: &Catalog,
        topology: &Topology,
    ) -> Result<Self, TimelineErrors> {
        let mut check = Checker {
            file,
            catalog,
            topology,
            issues: Vec::new(),
        };
        let deserializer = &mut serde_json::Deserializer::from_str(json);
        let raw: TimelineFile = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            check.push(&path, plain_serde_reason(&e.into_inner()));
            TimelineErrors(std::mem::take(&mut check.issues))
        })?;
        let duration = check.header(&raw);
        let mut entries: Vec<Entry> = (raw.incidents.into_iter().enumerate())
            .filter_map(|(i, entry)| check.entry(i, entry, duration))
            .collect();
        if !check.issues.is_empty() {
            return Err(TimelineErrors(check.issues));
        }
        let duration = duration.expect("a timeline without issues has a valid duration");
        entries.sort_by_key(|e| e.delay);
        Ok(Self {
            id: id.to_owned(),
            name: raw.name,
            description: raw.description,
            duration,
            entries,
        })
    }

    /// The built-in timelines (`data/timelines/*.json`), by id.
    pub fn built_in(catalog: &Catalog, topology: &Topology) -> Result<Vec<Self>, TimelineErrors> {
        crate::catalog::embedded::TIMELINES
            .iter()
            .map(|(id, json)| Self::parse(id, &format!("data/timelines/{id}.json"), json, catalog, topology))
            .collect()
    }

    /// As the list shows it.
    pub fn summary(&self) -> TimelineSummary {
        TimelineSummary {
            id: self.id.clone(),
            name: self.name.clone(),
            description: self.description.clone(),
            duration_minutes: self.duration.as_secs_f64() / 60.0,
            schedule: self.entries.iter().map(Entry::scheduled).collect(),
        }
    }
}

/// Collects every problem of one file, each with its JSON path.
struct Checker<'a> {
    /// What the issues call the file.
    file: &'a str,
    catalog: &'a Catalog,
    topology: &'a Topology,
    issues: Vec<TimelineIssue>,
}

impl Checker<'_> {
    fn push(&mut self, path: &str, reason: impl Into<String>) {
        self.issues.push(TimelineIssue {
            file: self.file.to_owned(),
            path: path.to_owned(),
            reason: reason.into(),
        });
    }

    /// Checks the name, the duration and the number of incidents. Returns
    /// the duration when it is valid.
    fn header(&mut self, raw: &TimelineFile) -> Option<Duration> {
        if raw.name.trim().is_empty() {
            self.push("name", "must not be empty");
        } else if raw.name.chars().any(char::is_control) {
            self.push("name", "must not contain control characters");
        }
        let minutes = raw.duration_minutes;
        let duration_ok = minutes.is_finite() && minutes > 0.0 && minutes <= MAX_DURATION_MINUTES;
        if !duration_ok {
            self.push(
                "duration_minutes",
                format!("{minutes} is out of range: use more than 0 and at most {MAX_DURATION_MINUTES} minutes"),
            );
        }
        if raw.incidents.is_empty() {
            self.push("incidents", "lists no incidents");
        }
        if raw.incidents.len() > MAX_INCIDENTS {
            self.push(
                "incidents",
                format!("has {} incidents; at most {MAX_INCIDENTS}", raw.incidents.len()),
            );
        }
        duration_ok.then(|| Duration::from_secs_f64(minutes * 60.0))
    }

    /// Checks incident `i`; `None` when it has an issue (or the timeline's
    /// `duration` is invalid, which makes its delay uncheckable).
    fn entry(&mut self, i: usize, entry: EntryFile, duration: Option<Duration>) -> Option<Entry> {
        let at = |field: &str| format!("incidents[{i}].{field}");
        let before = self.issues.len();
        let delay = entry.delay_seconds;
        if !delay.is_finite() || delay < 0.0 {
            self.push(
                &at("delay_seconds"),
                format!("{delay} is negative: delays count from the start, 0 or more"),
            );
        } else if let Some(duration) = duration
            && delay > duration.as_secs_f64()
        {
            let seconds = duration.as_secs_f64();
            self.push(
                &at("delay_seconds"),
                format!(
                    "{delay} s is beyond the timeline's duration ({} min = {seconds} s)",
                    seconds / 60.0
                ),
            );
        }
        let source = match entry.kind {
            EntryKind::Predefined => self.catalog_source(&at, &entry),
            EntryKind::LlmGenerated => self.generated_source(&at, &entry),
        };
        if let Some(service) = &entry.service_name
            && self.topology.index(service).is_none()
        {
            self.push(
                &at("service_name"),
                format!("`{service}` is not a service of the estate"),
            );
        }
        let source = source.filter(|_| self.issues.len() == before && duration.is_some())?;
        Some(Entry {
            delay: Duration::from_secs_f64(delay),
            source,
            expected_severity: entry.expected_severity,
            comment: entry.comment,
        })
    }

    /// A `predefined` incident: a scenario of the catalog, and no prompt.
    fn catalog_source(&mut self, at: &dyn Fn(&str) -> String, entry: &EntryFile) -> Option<Source> {
        if entry.llm_prompt.is_some() {
            self.push(
                &at("llm_prompt"),
                "a `predefined` incident takes a `scenario_id`, not a prompt",
            );
        }
        let Some(id) = &entry.scenario_id else {
            self.push(
                &at("scenario_id"),
                "missing: a `predefined` incident names a catalog scenario",
            );
            return None;
        };
        if self.catalog.scenario(id).is_some() {
            return Some(Source::Catalog {
                scenario_id: id.clone(),
            });
        }
        let hint = self
            .catalog
            .closest_scenario(id)
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_else(|| {
                let known: Vec<&str> = self.catalog.scenarios().iter().map(|s| s.id.as_str()).collect();
                format!("; known: {}", known.join(", "))
            });
        self.push(&at("scenario_id"), format!("no scenario `{id}`{hint}"));
        None
    }

    /// An `llm_generated` incident: a printable prompt, and no scenario id.
    fn generated_source(&mut self, at: &dyn Fn(&str) -> String, entry: &EntryFile) -> Option<Source> {
        if entry.scenario_id.is_some() {
            self.push(
                &at("scenario_id"),
                "an `llm_generated` incident takes an `llm_prompt`, not a scenario id",
            );
        }
        let Some(sent) = &entry.llm_prompt else {
            self.push(&at("llm_prompt"), "missing: an `llm_generated` incident needs a prompt");
            return None;
        };
        let prompt = sent.trim();
        // The length counts what was sent, before trimming, as the schema's
        // `maxLength` does.
        let length = sent.chars().count();
        let reason = if prompt.is_empty() {
            "must not be empty".to_owned()
        } else if length > MAX_PROMPT {
            format!("is {length} characters; at most {MAX_PROMPT}")
        } else if sent.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\t')) {
            "must not contain control characters other than newlines and tabs".to_owned()
        } else {
            return Some(Source::Generated {
                prompt: prompt.to_owned(),
                service: entry.service_name.clone(),
            });
        };
        self.push(&at("llm_prompt"), reason);
        None
    }
}

/// serde's message without its trailing " at line L column C", which the
/// path already says better.
fn plain_serde_reason(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let reason = match text.rfind(" at line ") {
        Some(cut) => text[..cut].to_owned(),
        None => text,
    };
    if error.is_syntax() || error.is_eof() {
        format!(
            "not valid JSON: {reason} (line {}, column {})",
            error.line(),
            error.column()
        )
    } else {
        reason
    }
}

#[cfg(test)]
mod tests;
