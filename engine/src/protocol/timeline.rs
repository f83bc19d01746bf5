//! Timelines on the wire (seed 004): a timeline as listed with its
//! schedule, a run's progress entry by entry, and its game-day score.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{IncidentStatus, Severity};

/// Where a timeline entry's incident comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A catalog scenario, by id.
    Predefined,
    /// A scenario generated from a prompt.
    LlmGenerated,
}

impl EntryKind {
    /// How people call it: `predefined` or `generated`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Predefined => "predefined",
            Self::LlmGenerated => "generated",
        }
    }
}

/// A schedule offset as `+MM:SS`.
pub fn schedule_clock(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    format!("+{:02}:{:02}", s / 60, s % 60)
}

/// A timeline as listed: what it is and its schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TimelineSummary {
    /// The file's stem, as in `busy_day`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// What it simulates.
    pub description: String,
    /// Its length in minutes, at speed 1.
    pub duration_minutes: f64,
    /// The incidents, in the order they start.
    pub schedule: Vec<ScheduledEntry>,
}

/// One incident in a timeline's schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScheduledEntry {
    /// Seconds after the start, at speed 1.
    pub delay_seconds: f64,
    /// Catalog or generated.
    pub kind: EntryKind,
    /// The scenario id, or the prompt.
    pub source: String,
    /// The service a generated scenario should hit, if the file names one.
    pub service_name: Option<String>,
    /// The severity the file expects (it overrides the scenario's).
    pub expected_severity: Option<Severity>,
    /// The file's note, for narration.
    pub comment: String,
}

/// Where a timeline run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Firing incidents on schedule.
    Running,
    /// The schedule's clock is stopped; open incidents carry on.
    Paused,
    /// Every incident fired; waiting for the last ones to close.
    Draining,
    /// Every incident fired and closed; the score is final.
    Completed,
    /// Stopped by an operator; what fired still runs to its end.
    Cancelled,
    /// The server stopped while it ran (its schedule died with it).
    Interrupted,
}

impl RunState {
    /// Whether the run is over.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Cancelled | Self::Interrupted)
    }

    /// The wire name, as in `"running"`.
    pub fn as_str(self) -> &'static str {
        crate::protocol::wire_name(&self)
    }
}

/// One scheduled incident of a run, and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunEntry {
    /// The schedule's entry.
    pub scheduled: ScheduledEntry,
    /// The incident it opened, once fired.
    pub incident_id: Option<Uuid>,
    /// The opened incident's title (for a generated one, the generator's).
    pub title: Option<String>,
    /// The incident's status; `None` until fired.
    pub status: Option<IncidentStatus>,
    /// Why it did not open (capacity, a prompt the generator cannot place).
    pub refused: Option<String>,
    /// How the scenario was made, when generated (`built-in`, or the LLM's
    /// model, or a fallback and why).
    pub note: Option<String>,
    /// Simulated seconds from open to close.
    pub mttr_seconds: Option<f64>,
    /// Whether the first diagnosis named the answer key's root cause.
    pub root_cause_correct: Option<bool>,
    /// Actions run that the answer key does not count as remedies.
    pub unnecessary_actions: Option<u32>,
    /// Plans rolled back because they did not heal.
    #[serde(default)]
    pub rollbacks: Option<u32>,
    /// Simulated seconds its plans waited for human approval.
    #[serde(default)]
    pub approval_wait_seconds: Option<f64>,
}

/// A run scored like a game day, against the answer keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GameDayScore {
    /// Closed incidents whose first diagnosis was right, 0 to 1.
    pub root_cause_accuracy: f64,
    /// Fired incidents that were resolved, 0 to 1.
    pub healing_success: f64,
    /// Mean simulated seconds to close, over resolved incidents.
    pub mean_mttr_seconds: Option<f64>,
    /// Actions the answer keys do not count as remedies (each a change
    /// that had to be lived with or rolled back).
    pub unnecessary_actions: u32,
    /// Entries that never opened an incident.
    pub refused: u32,
    /// Plans rolled back, over every incident.
    #[serde(default)]
    pub rollbacks: u32,
    /// Simulated seconds plans waited for human approval, over every
    /// incident: the game day's measure of how fast people decide. Not
    /// part of `points`, which scores the swarm.
    #[serde(default)]
    pub approval_wait_seconds: f64,
    /// The headline, 0 to 100: half root cause, half healing, less 5 per
    /// unnecessary action, 5 per rollback and 10 per refusal.
    pub points: f64,
}

impl GameDayScore {
    /// The score in one line, as the panel and the command line show it:
    /// `100/100 · root cause 100% · healed 100% · mean MTTR 21.0 s · …`.
    pub fn summary(&self) -> String {
        format!(
            "{:.0}/100 · root cause {:.0}% · healed {:.0}% · mean MTTR {} · {} unnecessary action(s) · {} rollback(s) · {} refused · {:.1} s awaiting approval",
            self.points,
            self.root_cause_accuracy * 100.0,
            self.healing_success * 100.0,
            self.mean_mttr_seconds
                .map(|s| format!("{s:.1} s"))
                .unwrap_or_else(|| "–".into()),
            self.unnecessary_actions,
            self.rollbacks,
            self.refused,
            self.approval_wait_seconds,
        )
    }
}

/// A timeline run: its schedule, progress, outcomes and score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TimelineRun {
    /// This run.
    pub run_id: Uuid,
    /// The timeline's id (`custom` for a pasted one).
    pub timeline_id: String,
    /// The timeline's name.
    pub name: String,
    /// Where the run is.
    pub state: RunState,
    /// The time compression the schedule runs at.
    pub speed: f64,
    /// When it started (wall clock).
    pub started_at: DateTime<Utc>,
    /// Schedule seconds elapsed (at speed 1; paused time excluded).
    pub elapsed_seconds: f64,
    /// The schedule's length in seconds, at speed 1.
    pub duration_seconds: f64,
    /// Every entry, in schedule order.
    pub entries: Vec<RunEntry>,
    /// The score so far (final once `state` is `completed`).
    pub score: GameDayScore,
}

/// Timeline runs a snapshot (and a dashboard) keeps.
pub const SNAPSHOT_TIMELINES: usize = 10;

impl TimelineRun {
    /// Puts this run in `runs` (newest first), replacing its older copy,
    /// keeping the newest [`SNAPSHOT_TIMELINES`].
    pub fn upsert_into(&self, runs: &mut std::collections::VecDeque<TimelineRun>) {
        match runs.iter_mut().find(|r| r.run_id == self.run_id) {
            Some(known) => *known = self.clone(),
            None => {
                runs.push_front(self.clone());
                runs.truncate(SNAPSHOT_TIMELINES);
            }
        }
    }
}

// The REST API's read models.
