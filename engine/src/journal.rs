//! The narrow interface between the engine's event log and durable storage.
//!
//! The engine never names a database. A [`Journal`] takes batches of
//! events, makes them durable in order, and assigns their sequence numbers:
//! in the store, not in process memory, so that several server instances
//! sharing one store (PostgreSQL, later with NATS fan-out) still see one
//! gap-free order. The event log publishes a batch to subscribers only once
//! its `append` returned, so no client ever sees an event that a crash
//! could take back.

use std::{future::Future, pin::Pin};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::protocol::{Envelope, Incident, IncidentTelemetry, PerformanceMetrics, ServerMessage};

/// An event waiting for its sequence number.
#[derive(Debug, Clone)]
pub struct Unsequenced {
    /// When it happened.
    pub ts: DateTime<Utc>,
    /// What happened.
    pub message: ServerMessage,
}

/// A journal's answer, boxed so the trait stays object-safe.
pub type JournalFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, JournalError>> + Send + 'a>>;

/// Why a journal could not do its job; the log retries appends.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct JournalError(pub String);

/// Durable, ordered storage for the event log.
pub trait Journal: Send + Sync + 'static {
    /// Stores `batch` in one transaction and returns the `seq` of its first
    /// event; the rest follow consecutively. After an error nothing of the
    /// batch is stored and it may be retried.
    fn append<'a>(&'a self, batch: &'a [Unsequenced]) -> JournalFuture<'a, u64>;

    /// Keeps a closed incident's chart window, which is too large to travel
    /// to every dashboard as an event. Best effort: a lost window costs a
    /// chart, never an event.
    fn keep_telemetry<'a>(&'a self, telemetry: &'a IncidentTelemetry) -> JournalFuture<'a, ()>;
}

/// Running totals behind the impact meter, rebuilt from the store at start.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    /// Incidents resolved.
    pub resolved: u64,
    /// Incidents failed or interrupted.
    pub failed: u64,
    /// Sum of savings of resolved incidents.
    pub total_savings: f64,
    /// Sum of resolution times of resolved incidents.
    pub total_mttr: f64,
    /// Incidents with detection and diagnosis times, and their sums.
    pub phase_samples: u64,
    pub total_detect: f64,
    pub total_diagnose: f64,
    /// Resolved count and resolution-time sum, by scenario.
    pub by_scenario: std::collections::BTreeMap<String, (u64, f64)>,
}

/// A mean to one decimal; 0 with no samples.
fn per_sample(total: f64, samples: u64) -> f64 {
    if samples == 0 {
        0.0
    } else {
        (total / samples as f64 * 10.0).round() / 10.0
    }
}

impl Totals {
    /// The impact meter's figures, with `active` incidents open.
    pub fn metrics(&self, active: u64) -> PerformanceMetrics {
        let finished = self.resolved + self.failed;
        PerformanceMetrics {
            incidents_resolved: self.resolved,
            total_cost_savings: self.total_savings,
            avg_mttr: if self.resolved == 0 {
                0.0
            } else {
                self.total_mttr / self.resolved as f64
            },
            success_rate: if finished == 0 {
                0.0
            } else {
                self.resolved as f64 / finished as f64
            },
            incidents_active: active,
            incidents_failed: self.failed,
            avg_time_to_detect: per_sample(self.total_detect, self.phase_samples),
            avg_time_to_diagnose: per_sample(self.total_diagnose, self.phase_samples),
            mttr_by_scenario: self
                .by_scenario
                .iter()
                .map(|(scenario, (n, total))| (scenario.clone(), per_sample(*total, *n)))
                .collect(),
        }
    }
}

/// What a restarted server picks up from its store.
#[derive(Debug, Clone, Default)]
pub struct Recovered {
    /// The log's identity, kept across restarts so clients resume by `seq`.
    pub epoch: Uuid,
    /// The newest stored `seq`.
    pub last_seq: u64,
    /// The newest stored events, oldest first, for replay to clients.
    pub tail: Vec<Envelope>,
    /// The newest incidents, newest first, as the store has them.
    pub incidents: Vec<Incident>,
    /// Incidents the last run left open (it crashed, or was killed).
    pub unfinished: Vec<Incident>,
    /// Timeline runs the last run left going; their tasks died with it.
    pub unfinished_runs: Vec<crate::protocol::TimelineRun>,
    /// The impact meter's totals over every finished incident.
    pub totals: Totals,
    /// The incident memory, oldest first.
    pub memory: Vec<crate::protocol::MemoryEntry>,
}
