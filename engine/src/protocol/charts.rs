//! An incident's telemetry for its charts: each watched metric against its
//! baseline, second by second, with the moments that matter marked (the
//! incident opening, each remediation step, rollbacks, verification).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What a chart mark stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MarkKind {
    /// The fault was reported and the incident opened.
    Opened,
    /// A remediation step took effect.
    Step,
    /// Steps were rolled back.
    Rollback,
    /// A person (or the timeout) decided on a plan that needed approval.
    Decision,
    /// Recovery was verified.
    Verified,
    /// The incident closed.
    Closed,
}

/// A moment on the time axis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChartMark {
    /// Simulated seconds since the incident opened.
    pub at_seconds: f64,
    pub kind: MarkKind,
    /// For people, as in "Scale connection pool on postgres-primary".
    pub label: String,
}

/// One metric of one service, sampled every simulated second.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MetricSeries {
    pub service: String,
    /// The metric's wire name, as in `latency_p99_ms`.
    pub metric: String,
    /// Readings, oldest first; the first is at the telemetry's
    /// `start_seconds`.
    pub values: Vec<f64>,
    /// The baseline's mean when the incident opened.
    pub baseline: f64,
    /// The baseline's standard deviation then (the band drawn is ±2σ).
    pub sigma: f64,
}

/// An incident's telemetry window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IncidentTelemetry {
    pub incident_id: Uuid,
    /// Simulated seconds of the first reading, relative to the opening
    /// (negative: before it, to show the onset).
    pub start_seconds: f64,
    /// Simulated seconds between readings.
    pub step_seconds: f64,
    /// The watched metrics: the affected services' and whatever detection
    /// found anomalous.
    pub series: Vec<MetricSeries>,
    /// Moments on the time axis, in order.
    pub marks: Vec<ChartMark>,
    /// Still open: the window grows.
    pub live: bool,
}
