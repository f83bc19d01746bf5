//! A model service's registry: every version it has served or could serve,
//! with its accuracy profile and the accuracy measured on labelled
//! feedback while it was live.
//!
//! Versions come from the estate file (the registry at start), from
//! releases (a new version ships; the model-accuracy fault is such a
//! release gone wrong) and from retraining (a new version trained on
//! current data). Rolling back goes to the newest earlier version that was
//! good: measured (or, never measured, profiled) accuracy at least
//! [`GOOD_ACCURACY`], seed 003's performance-drop threshold.

use rand::Rng;
use rand_distr::{Binomial, Distribution};
use serde::Serialize;

use super::topology::ModelProfile;

/// Seed 003: below this accuracy a model is performing badly.
pub const GOOD_ACCURACY: f64 = 0.8;
/// Labelled outcomes (loans whose repayment is now known) scored per
/// simulated second; the measured accuracy is the share predicted right.
pub const FEEDBACK_PER_TICK: u64 = 200;
/// Weight of the newest second's feedback in a version's measured accuracy.
const MEASURED_WEIGHT: f64 = 0.1;

/// Where a version came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelOrigin {
    /// In the registry from the start.
    Registry,
    /// Shipped by a release.
    Release,
    /// Trained by a retraining action.
    Retraining,
}

impl ModelOrigin {
    /// The wire name (serde's).
    pub fn as_str(self) -> &'static str {
        crate::protocol::wire_name(&self)
    }
}

/// One version in the registry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelVersion {
    /// 1, 2, …
    pub version: u32,
    /// Its accuracy on the data it was trained for.
    pub profile_accuracy: f64,
    /// What labelled feedback measured while it served, if it ever did.
    pub measured_accuracy: Option<f64>,
    /// Where it came from.
    pub origin: ModelOrigin,
}

impl ModelVersion {
    /// The registry at start.
    pub fn from_profiles(profiles: &[ModelProfile]) -> Vec<Self> {
        profiles
            .iter()
            .map(|p| Self {
                version: p.version,
                profile_accuracy: p.accuracy,
                measured_accuracy: None,
                origin: ModelOrigin::Registry,
            })
            .collect()
    }

    /// Whether it can be rolled back to.
    pub fn good(&self) -> bool {
        self.measured_accuracy.unwrap_or(self.profile_accuracy) >= GOOD_ACCURACY
    }
}

/// One second of labelled feedback for a model whose true accuracy is
/// `accuracy`: the share of [`FEEDBACK_PER_TICK`] outcomes it got right.
pub fn feedback(accuracy: f64, rng: &mut impl Rng) -> f64 {
    let right = Binomial::new(FEEDBACK_PER_TICK, accuracy.clamp(0.0, 1.0))
        .expect("a probability in [0, 1] and a positive count")
        .sample(rng);
    right as f64 / FEEDBACK_PER_TICK as f64
}

/// Folds one second's measured accuracy into `version`'s record.
pub fn record(version: &mut ModelVersion, measured: f64) {
    version.measured_accuracy = Some(match version.measured_accuracy {
        Some(before) => before + MEASURED_WEIGHT * (measured - before),
        None => measured,
    });
}

/// The version a rollback from `current` goes to: the newest earlier one
/// that was good.
pub fn rollback_target(registry: &[ModelVersion], current: u32) -> Option<u32> {
    registry
        .iter()
        .filter(|v| v.version < current && v.good())
        .map(|v| v.version)
        .max()
}

#[cfg(test)]
mod tests {
    use rand::{SeedableRng, rngs::SmallRng};

    use super::*;

    fn version(version: u32, profile: f64, measured: Option<f64>) -> ModelVersion {
        ModelVersion {
            version,
            profile_accuracy: profile,
            measured_accuracy: measured,
            origin: ModelOrigin::Registry,
        }
    }

    #[test]
    fn feedback_measures_accuracy_within_sampling_error() {
        let mut rng = SmallRng::seed_from_u64(7);
        let seconds: Vec<f64> = (0..2_000).map(|_| feedback(0.91, &mut rng)).collect();
        let mean = seconds.iter().sum::<f64>() / seconds.len() as f64;
        let sd = (seconds.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / seconds.len() as f64).sqrt();
        assert!((mean - 0.91).abs() < 0.002, "{mean}");
        // Binomial: √(p(1 − p) / n) = √(0.91 × 0.09 / 200) ≈ 0.0202.
        assert!((sd - 0.0202).abs() < 0.002, "{sd}");
        assert!(seconds.iter().all(|s| (0.0..=1.0).contains(s)));
    }

    #[test]
    fn a_rollback_skips_versions_that_measured_badly() {
        let registry = [
            version(1, 0.88, None),
            version(2, 0.91, Some(0.90)),
            version(3, 0.91, Some(0.72)),
            version(4, 0.91, Some(0.69)),
        ];
        assert_eq!(rollback_target(&registry, 4), Some(2), "v3 was bad too");
        assert_eq!(
            rollback_target(&registry, 2),
            Some(1),
            "never measured: its profile counts"
        );
        assert_eq!(rollback_target(&registry, 1), None);
    }

    #[test]
    fn measured_accuracy_is_a_moving_average_of_feedback() {
        let mut v = version(1, 0.9, None);
        record(&mut v, 0.9);
        assert_eq!(v.measured_accuracy, Some(0.9));
        record(&mut v, 0.5);
        assert!((v.measured_accuracy.unwrap() - 0.86).abs() < 1e-12);
    }
}
