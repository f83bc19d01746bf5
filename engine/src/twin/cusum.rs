//! Accumulated evidence: a two-sided CUSUM per series, for shifts too faint
//! to see in any one reading.
//!
//! A baseline ([`super::telemetry::Ewma`]) learns a lasting shift within
//! minutes, and a window's mean moves too little to stand out: a model
//! whose accuracy drops by one standard deviation of its readings is never
//! four off. A CUSUM adds up how far each reading lies beyond an allowance
//! from a *reference* (what the series reads when all is well), so a small
//! shift that lasts adds up to a large sum, while noise, which crosses the
//! reference both ways, does not.
//!
//! The reference learns slowly (a memory of about 50 readings), and only
//! while little has accumulated: once a shift has added up a little, the
//! reference stops learning, so a fault never teaches it that the fault is
//! normal, while it still follows the slow swing of traffic through the
//! day. The sums are capped, so that once a fault is mended they fall back
//! below any alarm within half a minute.
//!
//! The reference does learn a shift's first seconds, before the sums reach
//! [`FREEZE`]: about a quarter of a one-sigma shift, so such a shift adds
//! up to 16 sigmas in about three minutes; a two-sigma shift, in seconds.
//! Learning from older readings instead (a lagged reference) kept more of
//! the shift, but trailed the morning's rise in traffic by a minute more,
//! and raised false alarms on healthy estates: measured, and set aside.
//!
//! Page's CUSUM (1954); the allowance and the decision interval are in
//! units of the reference's standard deviation.

use serde::{Deserialize, Serialize};

use super::telemetry::Metric;

/// Allowance per reading, in reference sigmas: half the smallest shift
/// worth finding (one sigma), as the CUSUM is tuned.
pub const ALLOWANCE: f64 = 0.5;
/// Readings the reference learns from before anything accumulates.
pub const REFERENCE_WARMUP: u32 = 150;
/// Weight of a reading in the reference once warm.
const REFERENCE_ALPHA: f64 = 0.02;
/// Beyond this many sigmas a reading teaches the reference no more than a
/// reading at this limit would.
const LEARN_SIGMA: f64 = 3.0;
/// One reading adds at most this many sigmas to a sum.
const CLIP_SIGMA: f64 = 2.5;
/// While either sum is above this, the reference stops learning: something
/// may be shifting it.
const FREEZE: f64 = 4.0;
/// The most either sum holds: enough to alarm, little enough to fall back
/// below an alarm within half a minute of a fix.
pub const CAP: f64 = 30.0;

/// One series' CUSUM.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Cusum {
    /// The reference mean.
    mean: f64,
    /// The reference variance.
    variance: f64,
    /// Readings the reference has learned from.
    count: u32,
    /// Evidence that the series has risen, in sigmas beyond the allowance.
    up: f64,
    /// Evidence that it has fallen.
    down: f64,
}

impl Cusum {
    /// Takes one reading of `metric`.
    pub fn update(&mut self, metric: Metric, value: f64) {
        if self.count < REFERENCE_WARMUP {
            // The running mean and variance of the first readings.
            let n = f64::from(self.count + 1);
            let diff = value - self.mean;
            self.mean += diff / n;
            self.variance += (diff * (value - self.mean) - self.variance) / n;
            self.count += 1;
            return;
        }
        let sigma = self.sigma(metric);
        // Huber's clipping: a rare wild reading (a skewed series such as
        // drift scores has many) adds no more than a steady shift would.
        let z = ((value - self.mean) / sigma).clamp(-CLIP_SIGMA, CLIP_SIGMA);
        self.up = (self.up + z - ALLOWANCE).clamp(0.0, CAP);
        self.down = (self.down - z - ALLOWANCE).clamp(0.0, CAP);
        if self.up.max(self.down) < FREEZE {
            let diff = (value - self.mean).clamp(-LEARN_SIGMA * sigma, LEARN_SIGMA * sigma);
            self.mean += REFERENCE_ALPHA * diff;
            self.variance = (1.0 - REFERENCE_ALPHA) * (self.variance + REFERENCE_ALPHA * diff * diff);
        }
        self.count = self.count.saturating_add(1);
        debug_assert!((0.0..=CAP).contains(&self.up) && (0.0..=CAP).contains(&self.down));
    }

    /// The reference's standard deviation, floored as baselines are.
    fn sigma(&self, metric: Metric) -> f64 {
        self.variance.sqrt().max(metric.sigma_floor(self.mean))
    }

    /// The evidence that the series has risen (`rising`) or fallen, in
    /// sigmas beyond the allowance; 0 while the reference is learning.
    pub fn evidence(&self, rising: bool) -> f64 {
        if rising { self.up } else { self.down }
    }

    /// A CUSUM holding `evidence` that `metric` moved the harmful way, for
    /// tests of what reads it.
    #[cfg(test)]
    pub fn with_evidence(metric: Metric, evidence: f64) -> Self {
        let rising = !matches!(metric.worse(), super::telemetry::Worse::Down);
        Self {
            count: REFERENCE_WARMUP,
            up: if rising { evidence } else { 0.0 },
            down: if rising { 0.0 } else { evidence },
            ..Self::default()
        }
    }

    /// What the series reads when all is well.
    pub fn reference(&self) -> f64 {
        self.mean
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rand::{SeedableRng, rngs::SmallRng};
    use rand_distr::{Distribution, Normal};

    use super::*;

    /// A series' CUSUM.
    #[derive(Default)]
    struct Series {
        cusum: Cusum,
    }

    impl Series {
        fn take(&mut self, metric: Metric, value: f64) {
            self.cusum.update(metric, value);
        }

        /// Feeds `n` readings around `mean` with standard deviation `sd`.
        fn feed(&mut self, rng: &mut SmallRng, n: usize, mean: f64, sd: f64) {
            let noise = Normal::new(mean, sd).unwrap();
            for _ in 0..n {
                self.take(Metric::ModelAccuracy, noise.sample(rng));
            }
        }
    }

    #[test]
    fn a_one_sigma_drop_adds_up_where_no_reading_stands_out() {
        let mut rng = SmallRng::seed_from_u64(1);
        let mut series = Series::default();
        series.feed(&mut rng, 300, 0.909, 0.021);
        let noise = series.cusum;
        assert!(noise.evidence(false) < 8.0, "noise alone: {noise:?}");
        series.feed(&mut rng, 60, 0.888, 0.021);
        let drop = series.cusum;
        assert!(drop.evidence(false) > 5.0, "a minute of a one-sigma drop: {drop:?}");
        assert!(drop.evidence(true) < 1.0, "and no rise");
        assert!(
            (drop.reference() - 0.909).abs() < 0.006,
            "the drop taught the reference little"
        );
        series.feed(&mut rng, 120, 0.888, 0.021);
        let later = series.cusum;
        // Enough to count with a related series backing it (16 sigmas).
        assert!(later.evidence(false) > 16.0, "three minutes of it: {later:?}");
        assert!((later.reference() - 0.909).abs() < 0.006, "nor later: {later:?}");
    }

    #[test]
    fn once_mended_the_evidence_falls_back_within_a_minute() {
        let mut rng = SmallRng::seed_from_u64(2);
        let mut series = Series::default();
        series.feed(&mut rng, 200, 0.9, 0.02);
        series.feed(&mut rng, 300, 0.8, 0.02);
        assert_eq!(series.cusum.evidence(false), CAP, "a large drop fills the sum");
        series.feed(&mut rng, 60, 0.9, 0.02);
        assert!(series.cusum.evidence(false) < 15.0, "{:?}", series.cusum);
    }

    #[test]
    fn nothing_accumulates_while_the_reference_learns() {
        let mut series = Series::default();
        for i in 0..REFERENCE_WARMUP {
            series.take(Metric::ErrorRate, f64::from(i));
        }
        assert_eq!((series.cusum.evidence(true), series.cusum.evidence(false)), (0.0, 0.0));
    }

    proptest! {
        /// Both sums stay within [0, CAP] whatever the readings.
        #[test]
        fn the_sums_stay_bounded(readings in prop::collection::vec(-1e6f64..1e6, 0..400)) {
            let mut series = Series::default();
            for value in readings {
                series.take(Metric::LatencyP99, value);
                for rising in [true, false] {
                    prop_assert!((0.0..=CAP).contains(&series.cusum.evidence(rising)));
                }
            }
        }

    }
}
