//! The narrow interface between the engine's event log and durable storage.
//!
//! The engine never names a database. A [`Journal`] takes batches of
//! events, makes them durable in order, and assigns their sequence numbers:
//! in the store, not in process memory, so that several server instances
//! sharing one store (PostgreSQL, later with NATS fan-out) still see one
//! gap-free order. The event log publishes a batch to subscribers only once
//! its `append` returned, so no client ever sees an event that a crash
//! could take back.
//!
//! When several instances share the store (PostgreSQL), an event may carry
//! a [`Fence`]: the lease its writer must hold on the incident or timeline
//! run it is about. The store checks it inside the append's transaction and
//! refuses the event (alone) when the lease moved on, so a paused owner's
//! late writes never land.

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
    /// The lease its writer must hold for it to be stored, if any.
    pub fence: Option<Fence>,
}

impl Unsequenced {
    /// An event stamped now, with no fence.
    pub fn now(message: ServerMessage) -> Self {
        Self {
            ts: Utc::now(),
            message,
            fence: None,
        }
    }
}

/// What a lease covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseKind {
    /// An incident's run.
    Incident,
    /// A timeline run.
    Timeline,
}

impl LeaseKind {
    /// The name the store keeps.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Incident => "incident",
            Self::Timeline => "timeline",
        }
    }
}

/// The lease a shared store checks before it stores an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fence {
    /// The event opens `subject`'s lease, held by the writing instance at
    /// epoch 1 (an incident's `incident_created`, a run's first progress).
    Open { subject: uuid::Uuid, kind: LeaseKind },
    /// The writing instance still holds `subject`'s lease at `epoch`.
    Holds { subject: uuid::Uuid, epoch: u64 },
}

/// An event read back from a shared journal.
#[derive(Debug, Clone)]
pub struct Tailed {
    /// The event.
    pub envelope: Envelope,
    /// Whether this instance wrote it (its effects on the instance's own
    /// state are already applied; another's must be).
    pub local: bool,
}

/// What a journal did with a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The `seq` of the first event stored; the others stored follow
    /// consecutively, in batch order.
    pub first: u64,
    /// The batch positions of events refused by their fence (not stored,
    /// no `seq` used), ascending.
    pub refused: Vec<usize>,
}

impl Stored {
    /// A whole batch stored from `first`.
    pub fn all(first: u64) -> Self {
        Self {
            first,
            refused: Vec::new(),
        }
    }
}

/// A journal's answer, boxed so the trait stays object-safe.
pub type JournalFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, JournalError>> + Send + 'a>>;

/// Why a journal could not do its job; the log retries appends.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct JournalError(pub String);

/// Durable, ordered storage for the event log.
pub trait Journal: Send + Sync + 'static {
    /// Stores `batch` in one transaction, but for events whose fence does
    /// not hold, and says where it put them. After an error nothing of the
    /// batch is stored and it may be retried.
    fn append<'a>(&'a self, batch: &'a [Unsequenced]) -> JournalFuture<'a, Stored>;

    /// Stored events after `after`, oldest first, at most `limit`: how an
    /// instance that shares the store tails what every instance wrote.
    fn read_after(&self, after: u64, limit: usize) -> JournalFuture<'_, Vec<Tailed>>;

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
    /// Incidents open under another instance's lease (a shared store):
    /// counted active here, and followed through the shared log.
    pub owned_elsewhere: Vec<Incident>,
    /// Timeline runs the last run left going; their tasks died with it.
    pub unfinished_runs: Vec<crate::protocol::TimelineRun>,
    /// The impact meter's totals over every finished incident.
    pub totals: Totals,
    /// The incident memory, oldest first.
    pub memory: Vec<crate::protocol::MemoryEntry>,
}
