//! The ML estate's model registry on the wire (`GET /api/models`).

use serde::{Deserialize, Serialize};

/// One version of a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelVersionInfo {
    /// 1, 2, …
    pub version: u32,
    /// Its accuracy on the data it was trained for.
    pub profile_accuracy: f64,
    /// What labelled feedback measured while it served (none if it never
    /// has).
    pub measured_accuracy: Option<f64>,
    /// `registry` (there from the start), `release` or `retraining`.
    pub origin: String,
}

/// A model service's registry and what it serves now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelRegistry {
    /// The model service.
    pub service: String,
    /// The version serving requests.
    pub serving: u32,
    /// Whether the rule-based safe mode answers instead.
    pub safe_mode: bool,
    /// Every version, oldest first.
    pub versions: Vec<ModelVersionInfo>,
    /// Each input feature's latest PSI against the serving version's
    /// training distribution.
    pub features: Vec<FeatureDrift>,
}

/// One input feature's drift.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FeatureDrift {
    /// As in `credit_score`.
    pub feature: String,
    /// Its Population Stability Index; over 0.2 is drift (seed 003).
    pub psi: f64,
}
