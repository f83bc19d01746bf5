//! Analytics on the wire (`GET /api/analytics`): seed 003's "metrics to
//! track", computed by the store over every finished incident it holds.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::IncidentStatus;

/// Model latency objective of seed 003: requests answered within 300 ms.
pub const MODEL_LATENCY_SLO_MS: f64 = 300.0;

/// Mean time to recover for one incident type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TypeMttr {
    /// The scenario that opened the incidents, or `ad_hoc`.
    pub incident_type: String,
    /// Incidents of the type that were resolved.
    pub resolved: u64,
    /// Their mean simulated seconds from open to close.
    pub mttr_seconds: f64,
}

/// One finished incident, for the trend charts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FinishedIncident {
    /// The scenario that opened it, or `ad_hoc`.
    pub incident_type: String,
    /// Resolved or failed.
    pub status: IncidentStatus,
    /// When it closed.
    pub finished_at: DateTime<Utc>,
    /// Simulated seconds from open to close.
    pub resolution_seconds: f64,
}

/// The analytics view.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Analytics {
    /// Incidents resolved.
    pub resolved: u64,
    /// Incidents failed (handed to people).
    pub failed: u64,
    /// Incidents the server stopped in the middle of (not counted in rates).
    pub interrupted: u64,
    /// MTTR by incident type, seed 003's query over the store.
    pub mttr_by_type: Vec<TypeMttr>,
    /// Share of finished incidents the swarm resolved, 0..=1 (None with none).
    pub healing_success_rate: Option<f64>,
    /// Remediation steps run.
    pub steps_run: u64,
    /// Of which rolled back because their plan did not heal: unnecessary.
    pub steps_rolled_back: u64,
    /// Unnecessary actions over all actions, 0..=1 (None with none).
    pub false_positive_rate: Option<f64>,
    /// Share of the model service's requests served while its p99 latency
    /// met [`MODEL_LATENCY_SLO_MS`], over the stored health reports
    /// (weighted by requests per second; None with no reports).
    pub latency_slo_compliance: Option<f64>,
    /// Health reports that figure is computed over.
    pub health_reports: u64,
    /// The newest finished incidents, oldest first, for trends.
    pub recent: Vec<FinishedIncident>,
}
