//! Incident memory on the wire: what the swarm remembers of a finished
//! incident (`memory_recorded`), the wiping of that memory
//! (`memory_cleared`), and what a new incident recalled from it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One anomalous telemetry series of an incident's signature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignatureFeature {
    /// The service, as in `postgres-primary`.
    pub service: String,
    /// The metric, as in `pool_usage`.
    pub metric: String,
    /// How far it was off its baseline in the harmful direction, in sigma.
    pub sigma: f64,
}

/// How a remembered fix ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FixOutcome {
    /// Recovery was verified from telemetry (at least at the fix's root).
    Healed,
    /// No recovery came; the steps were rolled back.
    Failed,
}

/// A fix the swarm ran on a remembered incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FixRecord {
    /// The root cause it treated: the service.
    pub service: String,
    /// The root cause it treated: the fault, as in `memory_leak`.
    pub fault: String,
    /// The playbook it came from.
    pub playbook: String,
    /// The actions that ran, in order, as in `rollback_deploy`.
    pub actions: Vec<String>,
    /// How it ended.
    pub outcome: FixOutcome,
}

/// A finished incident as the memory keeps it: its telemetry signature and
/// every fix that ran, with its outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MemoryEntry {
    /// The incident.
    pub incident_id: Uuid,
    /// When it was remembered (the incident's close).
    pub recorded_at: DateTime<Utc>,
    /// The scenario that opened it, if one did (for people; recall never
    /// reads it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario_id: Option<String>,
    /// The anomalous series when it was detected, strongest first.
    pub features: Vec<SignatureFeature>,
    /// The fixes that ran, in order.
    pub fixes: Vec<FixRecord>,
    /// Simulated seconds from open to close.
    pub resolution_seconds: f64,
}

impl MemoryEntry {
    /// The fix that healed it, if one did.
    pub fn healing_fix(&self) -> Option<&FixRecord> {
        self.fixes.iter().find(|f| f.outcome == FixOutcome::Healed)
    }
}

/// A past incident similar to the current one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecalledIncident {
    /// The past incident.
    pub incident_id: Uuid,
    /// Cosine similarity of the two signatures, 0..=1.
    pub similarity: f64,
    /// What healed it, as in `memory leak on user-service`, if anything did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healed_by: Option<String>,
    /// Its simulated seconds to close.
    pub resolution_seconds: f64,
}

/// The record of one root cause's fix over the similar incidents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FixTrackRecord {
    /// The root cause: the service.
    pub service: String,
    /// The root cause: the fault.
    pub fault: String,
    /// Times its fix healed a similar incident.
    pub healed: u32,
    /// Times its fix was run on a similar incident.
    pub tried: u32,
}

impl FixTrackRecord {
    /// Its success rate with one imagined success and one imagined failure
    /// added (Laplace's rule), so one result is evidence, not a verdict:
    /// 0.5 untried, ⅔ after one success, ⅓ after one failure.
    pub fn expected_success(&self) -> f64 {
        (f64::from(self.healed) + 1.0) / (f64::from(self.tried) + 2.0)
    }

    /// Tried on similar incidents and never healed one.
    pub fn dead_end(&self) -> bool {
        self.tried > 0 && self.healed == 0
    }
}

/// What a new incident recalled from memory.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Recall {
    /// Similar past incidents, most similar first.
    pub similar: Vec<RecalledIncident>,
    /// Every root cause whose fix ran on them, best record first.
    pub fixes: Vec<FixTrackRecord>,
}

impl Recall {
    /// The track record of the fix for `fault` on `service`, if it ran on a
    /// similar incident.
    pub fn record_for(&self, service: &str, fault: &str) -> Option<&FixTrackRecord> {
        self.fixes.iter().find(|f| f.service == service && f.fault == fault)
    }

    /// The most similar incident's similarity, 0 with none.
    pub fn best_similarity(&self) -> f64 {
        self.similar.first().map_or(0.0, |s| s.similarity)
    }
}

/// What `GET /api/memory` returns: the whole memory, for export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MemoryExport {
    /// The most entries kept; the oldest is evicted beyond it.
    pub capacity: usize,
    /// Cosine similarity from which a past incident counts as similar.
    pub similarity_threshold: f64,
    /// The entries, oldest first.
    pub entries: Vec<MemoryEntry>,
}
