//! The Population Stability Index of the model's inputs (seed 003's drift
//! monitor), computed for real from binned distributions.
//!
//! The inputs are the [`FEATURES`]: `credit_score` and `income`. The live
//! model version was trained on each distributed normally (credit scores
//! N(700, 50)). Binning: ten bins per feature at that training
//! distribution's deciles (the outer two open-ended), so each holds 10% of
//! the baseline. Every tick the model scores [`SAMPLE`] requests drawn from
//! the current input distribution; their shares per bin are compared with
//! the baseline's:
//!
//! PSI = Σ (actualᵢ − expectedᵢ) · ln(actualᵢ / expectedᵢ)
//!
//! with shares floored at [`FLOOR`], so an empty bin counts as rare rather
//! than impossible. The model's `feature_psi` is the largest feature's. A
//! full data-drift fault moves the credit-score mean to 550 (seed 003),
//! three standard deviations: PSI near 6; income does not move. With no
//! drift, the sampling alone gives about (bins − 1) / sample ≈ 0.035.
//! Retraining makes the current distribution the new training baseline, so
//! the divergence, and PSI, fall back.

/// One input feature of the model: its training distribution, and where a
/// full data-drift fault takes its mean.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Feature {
    /// As in `credit_score`.
    pub name: &'static str,
    /// The training distribution's mean and standard deviation.
    pub mean: f64,
    pub sd: f64,
    /// Its mean under a full drift.
    pub drifted_mean: f64,
}

/// The model's inputs. Seed 003's drift moves the credit score only.
pub const FEATURES: [Feature; 2] = [
    Feature {
        name: "credit_score",
        mean: BASELINE_MEAN,
        sd: BASELINE_SD,
        drifted_mean: DRIFTED_MEAN,
    },
    Feature {
        name: "income",
        mean: 62_000.0,
        sd: 18_000.0,
        drifted_mean: 62_000.0,
    },
];

/// The credit score's training distribution.
pub const BASELINE_MEAN: f64 = 700.0;
pub const BASELINE_SD: f64 = 50.0;
/// Where a full data-drift fault takes the credit-score mean (seed 003).
pub const DRIFTED_MEAN: f64 = 550.0;
/// Requests scored per tick.
pub const SAMPLE: usize = 256;
/// The smallest share a bin is given.
pub const FLOOR: f64 = 1e-4;

/// The standard normal's deciles (z at 10%, 20%, …, 90%).
const DECILES: [f64; 9] = [
    -1.281_551_6,
    -0.841_621_2,
    -0.524_400_5,
    -0.253_347_1,
    0.0,
    0.253_347_1,
    0.524_400_5,
    0.841_621_2,
    1.281_551_6,
];

/// The PSI of `actual` shares against `expected` ones (same bins).
pub fn psi(expected: &[f64], actual: &[f64]) -> f64 {
    expected
        .iter()
        .zip(actual)
        .map(|(e, a)| {
            let (e, a) = (e.max(FLOOR), a.max(FLOOR));
            (a - e) * (a / e).ln()
        })
        .sum()
}

impl Feature {
    /// The bin edges: the training distribution's deciles.
    pub fn edges(&self) -> [f64; 9] {
        DECILES.map(|z| self.mean + z * self.sd)
    }

    /// The share of `values` in each of the ten bins.
    pub fn shares(&self, values: &[f64]) -> [f64; 10] {
        let edges = self.edges();
        let mut counts = [0usize; 10];
        for value in values {
            counts[edges.partition_point(|edge| edge <= value)] += 1;
        }
        let n = values.len().max(1) as f64;
        counts.map(|c| c as f64 / n)
    }

    /// Its mean under a drift of `level` (0 none, 1 full).
    pub fn input_mean(&self, level: f64) -> f64 {
        self.mean - (self.mean - self.drifted_mean) * level.clamp(0.0, 1.0)
    }

    /// The PSI of one tick's sample of values.
    pub fn of_sample(&self, values: &[f64]) -> f64 {
        psi(&[0.1; 10], &self.shares(values))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values computed by hand (and checked with Python's math.erf).
    #[test]
    fn psi_matches_hand_computed_values() {
        assert_eq!(psi(&[0.1; 10], &[0.1; 10]), 0.0);
        // 0.15·ln(0.4/0.25)… : −0.15·ln 0.4 − 0.05·ln 0.8 + 0.05·ln 1.2 + 0.15·ln 1.6.
        let four = psi(&[0.25; 4], &[0.1, 0.2, 0.3, 0.4]);
        assert!((four - 0.228_217_4).abs() < 1e-6, "{four}");
        // The exact shares of N(650, 50) in N(700, 50)'s decile bins: a
        // one-sigma shift.
        let shifted = [
            0.38914, 0.17378, 0.1199, 0.08954, 0.06898, 0.05362, 0.04134, 0.03094, 0.02151, 0.01126,
        ];
        let one_sigma = psi(&[0.1; 10], &shifted);
        assert!((one_sigma - 0.92614).abs() < 1e-3, "{one_sigma}");
        // An empty bin is floored, not infinite.
        assert!(psi(&[0.5, 0.5], &[1.0, 0.0]).is_finite());
    }

    #[test]
    fn bins_are_the_baselines_deciles() {
        let credit = FEATURES[0];
        let edges = credit.edges();
        assert!((edges[4] - 700.0).abs() < 1e-9);
        assert!((edges[0] - 635.92).abs() < 0.01, "{}", edges[0]);
        assert_eq!(
            credit.shares(&[600.0, 650.0, 700.0, 760.0, 800.0]),
            [0.2, 0.2, 0.0, 0.0, 0.0, 0.2, 0.0, 0.0, 0.2, 0.2]
        );
        let income = FEATURES[1];
        assert!((income.edges()[8] - (62_000.0 + 1.281_551_6 * 18_000.0)).abs() < 1e-6);
    }

    #[test]
    fn drift_moves_the_credit_score_to_the_seeds_550_and_leaves_income() {
        let (credit, income) = (FEATURES[0], FEATURES[1]);
        assert_eq!((credit.name, income.name), ("credit_score", "income"));
        assert_eq!(credit.input_mean(0.0), 700.0);
        assert_eq!(credit.input_mean(1.0), 550.0);
        assert_eq!(credit.input_mean(2.0), 550.0);
        assert_eq!(income.input_mean(1.0), income.mean);
    }
}
