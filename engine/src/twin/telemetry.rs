//! What the estate's monitoring records: one [`Sample`] of every metric per
//! service per tick, a short history, and a rolling baseline per series.
//!
//! Baselines are exponentially weighted moving averages of the mean and the
//! variance. They learn slowly from values far off baseline, so a fault that
//! lasts does not become the new normal within an incident.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::{
    cusum::Cusum,
    topology::{ServiceKind, ServiceSpec},
};
pub use crate::protocol::Metric;

/// Which way a metric goes when things get worse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Worse {
    Up,
    Down,
    /// Either way is news (traffic).
    Either,
}

impl Metric {
    pub fn worse(self) -> Worse {
        match self {
            Self::Heartbeat | Self::CertDaysLeft | Self::CacheHitRate | Self::ModelAccuracy => Worse::Down,
            Self::Rps => Worse::Either,
            _ => Worse::Up,
        }
    }

    /// Whether `spec`'s monitoring records this metric.
    pub fn applies_to(self, spec: &ServiceSpec) -> bool {
        use ServiceKind::*;
        let kind = spec.kind;
        match self {
            Self::LatencyP50 | Self::LatencyP95 | Self::LatencyP99 | Self::ErrorRate | Self::Rps => true,
            // A third party is seen only from our side of the call.
            Self::Cpu | Self::Memory | Self::Restarts | Self::Heartbeat => kind != External,
            Self::PoolUsage => spec.pool_size > 0,
            Self::QueueDepth => kind == Queue,
            Self::DiskUsage => kind.is_stateful(),
            Self::CertDaysLeft => kind.has_certificate(),
            Self::CacheHitRate => kind == Cache,
            Self::ModelAccuracy | Self::FeaturePsi => kind == Model,
            Self::HeartbeatAge => kind == Agent,
        }
    }

    /// Whether a lasting faint shift of this metric is evidence worth
    /// accumulating ([`super::cusum`]): not traffic and what follows it
    /// through the day (requests, CPU, pool use, latency: the morning's
    /// rise in traffic lifts them for an hour), nor what moves steadily when
    /// healthy (a certificate's days, a disk's use) or whose trend is judged
    /// already (memory), nor restarts, which are never faint and which a
    /// fix's own restart would leave as evidence for a minute.
    pub fn accumulates(self) -> bool {
        !matches!(
            self,
            Self::Rps
                | Self::Cpu
                | Self::PoolUsage
                | Self::LatencyP50
                | Self::LatencyP95
                | Self::LatencyP99
                | Self::CertDaysLeft
                | Self::DiskUsage
                | Self::Memory
                | Self::Restarts
        )
    }

    /// The smallest standard deviation a baseline admits, so that a metric
    /// that is flat when healthy (restarts, heartbeat) does not turn every
    /// wobble into an infinite deviation.
    pub(super) fn sigma_floor(self, mean: f64) -> f64 {
        let absolute: f64 = match self {
            Self::ErrorRate => 0.002,
            Self::Restarts => 0.5,
            Self::Heartbeat => 0.03,
            Self::HeartbeatAge => 1.0,
            Self::CertDaysLeft => 2.0,
            Self::CacheHitRate | Self::ModelAccuracy => 0.006,
            Self::FeaturePsi => 0.015,
            Self::PoolUsage | Self::Cpu | Self::Memory | Self::DiskUsage => 0.005,
            Self::QueueDepth => 3.0,
            _ => 0.0,
        };
        absolute.max(0.02 * mean.abs())
    }
}

/// One reading of every metric of one service.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Sample(pub [f64; Metric::COUNT]);

impl Sample {
    pub fn get(&self, metric: Metric) -> f64 {
        self.0[metric as usize]
    }

    pub fn set(&mut self, metric: Metric, value: f64) {
        self.0[metric as usize] = value;
    }
}

/// A rolling mean and variance.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Ewma {
    /// Smoothed mean.
    pub mean: f64,
    /// Smoothed variance.
    pub variance: f64,
    /// Readings seen.
    pub count: u32,
}

/// Weight of a new in-range reading.
const ALPHA: f64 = 0.05;
/// Weight of a reading far off baseline: a lasting shift is learned in
/// minutes, not seconds.
const ALPHA_OUTLIER: f64 = 0.002;
/// Beyond this deviation a reading counts as an outlier for learning.
const LEARN_SIGMA: f64 = 4.0;
/// Readings before the baseline trusts its variance.
const WARMUP: u32 = 20;

impl Ewma {
    pub fn update(&mut self, metric: Metric, value: f64) {
        if self.count == 0 {
            self.mean = value;
            self.variance = 0.0;
        } else {
            let diff = value - self.mean;
            let (alpha, spread) = if self.count < WARMUP {
                (1.0 / f64::from(self.count + 1), diff)
            } else if self.z(metric, value).abs() > LEARN_SIGMA {
                // Winsorised: an outlier moves the variance no more than a
                // reading at the learning limit would, or a fault would
                // teach the baseline that it is normal within seconds.
                let limit = LEARN_SIGMA * self.sigma(metric);
                (ALPHA_OUTLIER, diff.clamp(-limit, limit))
            } else {
                (ALPHA, diff)
            };
            self.mean += alpha * diff;
            self.variance = (1.0 - alpha) * (self.variance + alpha * spread * spread);
        }
        self.count = self.count.saturating_add(1);
    }

    pub fn sigma(&self, metric: Metric) -> f64 {
        self.variance.sqrt().max(metric.sigma_floor(self.mean))
    }

    /// How many standard deviations `value` is from the mean.
    pub fn z(&self, metric: Metric, value: f64) -> f64 {
        (value - self.mean) / self.sigma(metric)
    }
}

/// A service's recent samples and baselines.
#[derive(Debug, Clone)]
pub struct Telemetry {
    /// Newest last; at most the estate's history length.
    pub history: VecDeque<Sample>,
    /// One baseline per metric, indexed by `Metric as usize`.
    pub baselines: [Ewma; Metric::COUNT],
    /// One CUSUM per metric that accumulates, indexed the same way.
    pub cusums: [Cusum; Metric::COUNT],
}

impl Telemetry {
    pub fn new() -> Self {
        Self {
            history: VecDeque::new(),
            baselines: [Ewma::default(); Metric::COUNT],
            cusums: [Cusum::default(); Metric::COUNT],
        }
    }

    pub fn record(&mut self, sample: Sample, keep: usize) {
        for metric in Metric::ALL {
            self.baselines[metric as usize].update(metric, sample.get(metric));
            if metric.accumulates() {
                self.cusums[metric as usize].update(metric, sample.get(metric));
            }
        }
        if self.history.len() == keep {
            self.history.pop_front();
        }
        self.history.push_back(sample);
    }

    pub fn latest(&self) -> Sample {
        self.history.back().copied().unwrap_or_default()
    }

    pub fn baseline(&self, metric: Metric) -> &Ewma {
        &self.baselines[metric as usize]
    }

    /// The evidence accumulated that `metric` has moved the harmful way,
    /// in sigmas ([`Cusum::evidence`]); 0 for a metric that does not
    /// accumulate.
    pub fn accumulated(&self, metric: Metric) -> f64 {
        let cusum = &self.cusums[metric as usize];
        match metric.worse() {
            Worse::Up => cusum.evidence(true),
            Worse::Down => cusum.evidence(false),
            Worse::Either => cusum.evidence(true).max(cusum.evidence(false)),
        }
    }

    /// The mean of the last `n` readings of `metric` (0 with none), without
    /// allocating: health checks ask this constantly.
    pub fn recent_mean(&self, metric: Metric, n: usize) -> f64 {
        let skip = self.history.len().saturating_sub(n);
        let taken = self.history.len() - skip;
        if taken == 0 {
            return 0.0;
        }
        self.history.iter().skip(skip).map(|s| s.get(metric)).sum::<f64>() / taken as f64
    }

    /// The last `n` readings of `metric`, oldest first.
    pub fn recent(&self, metric: Metric, n: usize) -> Vec<f64> {
        let skip = self.history.len().saturating_sub(n);
        self.history.iter().skip(skip).map(|s| s.get(metric)).collect()
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

/// Least-squares slope of evenly spaced readings, per tick.
pub fn slope(values: &[f64]) -> f64 {
    let n = values.len() as f64;
    if values.len() < 2 {
        return 0.0;
    }
    let mean_x = (n - 1.0) / 2.0;
    let mean_y = values.iter().sum::<f64>() / n;
    let (mut num, mut den) = (0.0, 0.0);
    for (i, y) in values.iter().enumerate() {
        let dx = i as f64 - mean_x;
        num += dx * (y - mean_y);
        den += dx * dx;
    }
    num / den
}

/// Least-squares slope and its standard error, so a trend can be told from
/// noise.
pub fn slope_with_error(values: &[f64]) -> (f64, f64) {
    let n = values.len();
    if n < 3 {
        return (slope(values), f64::INFINITY);
    }
    let b = slope(values);
    let mean_x = (n as f64 - 1.0) / 2.0;
    let mean_y = values.iter().sum::<f64>() / n as f64;
    let (mut residual, mut spread) = (0.0, 0.0);
    for (i, y) in values.iter().enumerate() {
        let dx = i as f64 - mean_x;
        let fitted = mean_y + b * dx;
        residual += (y - fitted).powi(2);
        spread += dx * dx;
    }
    (b, (residual / (n as f64 - 2.0) / spread).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_baseline_learns_noise_and_resists_a_lasting_fault() {
        let mut ewma = Ewma::default();
        for i in 0..200 {
            ewma.update(Metric::LatencyP50, 100.0 + if i % 2 == 0 { 3.0 } else { -3.0 });
        }
        assert!((ewma.mean - 100.0).abs() < 1.0);
        assert!(ewma.z(Metric::LatencyP50, 160.0) > 10.0);
        for _ in 0..60 {
            ewma.update(Metric::LatencyP50, 400.0);
        }
        // A minute of fault moves the baseline only a little.
        assert!(ewma.mean < 160.0, "{}", ewma.mean);
        assert!(ewma.z(Metric::LatencyP50, 400.0) > 4.0);
    }

    #[test]
    fn flat_metrics_have_a_floor_on_their_sigma() {
        let mut ewma = Ewma::default();
        for _ in 0..100 {
            ewma.update(Metric::Restarts, 0.0);
        }
        assert_eq!(ewma.z(Metric::Restarts, 3.0), 6.0);
    }

    #[test]
    fn slope_of_a_line_is_its_gradient() {
        assert!((slope(&[1.0, 3.0, 5.0, 7.0]) - 2.0).abs() < 1e-12);
        assert_eq!(slope(&[4.0]), 0.0);
    }
}
