//! Step 5 of a tick: what monitoring records — the true value of every
//! metric, plus measurement noise, sampled feedback for model accuracy and
//! sampled inputs for drift.
//!
//! The agents see metrics only as these noisy samples, so the noise lives
//! here, in one place, rather than in each step that computes a true value.

use rand::{Rng, rngs::SmallRng};
use rand_distr::StandardNormal;

use super::{Estate, Metric, SAFE_MODE_ACCURACY, Sample, ServiceKind, Topology, active_faults::Effects, psi, registry};

/// A standard normal draw (ziggurat: no logarithm or cosine on the hot path,
/// which matters at hundreds of draws per tick per twin).
fn gaussian(rng: &mut SmallRng) -> f64 {
    rng.sample(StandardNormal)
}

impl Estate {
    pub(super) fn record(&mut self, topology: &Topology, effects: &[Effects], offered: &[f64], diverted: &[f64]) {
        let keep = self.history_len;
        let samples: Vec<Sample> = (0..self.services.len())
            .map(|i| self.measure(topology, effects, offered, diverted[i], i))
            .collect();
        for (i, mut sample) in samples.into_iter().enumerate() {
            self.add_noise(&mut sample);
            if topology.spec(i).kind == ServiceKind::Agent {
                // A heartbeat at under half its rate is a missed one.
                let state = &mut self.services[i];
                state.silent_seconds = if sample.get(Metric::Heartbeat) < 0.5 {
                    state.silent_seconds + 1.0
                } else {
                    0.0
                };
                sample.set(Metric::HeartbeatAge, state.silent_seconds);
            }
            if topology.spec(i).kind == ServiceKind::Model {
                // Accuracy is measured on this second's labelled outcomes;
                // the serving version's record keeps it (safe mode's
                // rules are not the model).
                let measured = registry::feedback(sample.get(Metric::ModelAccuracy), &mut self.rng);
                sample.set(Metric::ModelAccuracy, measured);
                let state = &mut self.services[i];
                if !state.config.safe_mode {
                    let live = state.config.model_version;
                    if let Some(version) = state.registry.iter_mut().find(|v| v.version == live) {
                        registry::record(version, measured);
                    }
                }
                // The drift monitor scores a sample of this tick's inputs,
                // feature by feature; the model's PSI is the worst one's.
                let mut worst = 0.0_f64;
                for (f, feature) in psi::FEATURES.iter().enumerate() {
                    let mean = feature.input_mean(effects[i].drift);
                    let values: Vec<f64> = (0..psi::SAMPLE)
                        .map(|_| mean + feature.sd * gaussian(&mut self.rng))
                        .collect();
                    let value = feature.of_sample(&values);
                    self.services[i].feature_psi[f] = value;
                    worst = worst.max(value);
                }
                sample.set(Metric::FeaturePsi, worst);
            }
            self.count(topology, i, &sample, offered[i]);
            self.services[i].telemetry.record(sample, keep);
        }
    }

    /// The true value of every metric of service `i` this tick.
    fn measure(&self, topology: &Topology, effects: &[Effects], offered: &[f64], diverted: f64, i: usize) -> Sample {
        {
            let spec = topology.spec(i);
            let e = effects[i];
            let mut sample = Sample::default();
            let (o, state) = (self.services[i].outcome, &self.services[i]);
            let cpu = self.cpu(spec, state, &e, offered[i]);
            let heartbeat = (1.0 - e.crash) * (1.0 - e.unreachable) * (1.0 - e.agent_down);
            let reached = (1.0 - e.unreachable) * (1.0 - o.tls_failures);
            sample.set(Metric::LatencyP50, o.p50);
            sample.set(Metric::LatencyP95, o.p50 * (1.645 * o.sigma).exp());
            sample.set(Metric::LatencyP99, o.p50 * (2.326 * o.sigma).exp());
            sample.set(Metric::ErrorRate, o.errors);
            sample.set(
                Metric::Rps,
                offered[i] * reached * (1.0 - o.errors) * (1.0 - e.agent_down),
            );
            sample.set(Metric::Cpu, cpu);
            sample.set(Metric::Memory, state.memory);
            let pool = if spec.kind == ServiceKind::Database {
                let needed = offered[i] * o.p50.min(self.services[i].config.timeout_ms) / 1000.0;
                (needed + e.leaked_pool_share * f64::from(spec.pool_size)) / f64::from(state.config.pool_size.max(1))
            } else if spec.pool_size > 0 {
                let db_calls: f64 = spec
                    .edges
                    .iter()
                    .enumerate()
                    .filter(|(_, edge)| topology.spec(edge.to).kind == ServiceKind::Database)
                    .map(|(ei, edge)| {
                        let (latency, _, _) = self.call(topology, i, ei);
                        offered[i] * edge.calls * latency / 1000.0
                    })
                    .sum();
                db_calls / f64::from(state.config.pool_size * state.config.instances)
            } else {
                0.0
            };
            sample.set(Metric::PoolUsage, pool.min(1.0));
            // Diverted calls wait in the queue for later processing.
            sample.set(Metric::QueueDepth, 40.0 + 20.0 * diverted);
            sample.set(Metric::Restarts, state.restart_ticks.len() as f64);
            sample.set(Metric::Heartbeat, heartbeat);
            sample.set(Metric::DiskUsage, state.disk);
            sample.set(Metric::CertDaysLeft, state.cert_days);
            sample.set(
                Metric::CacheHitRate,
                if spec.kind == ServiceKind::Cache {
                    state.hit_rate
                } else {
                    0.0
                },
            );
            let (accuracy, psi) = if spec.kind == ServiceKind::Model {
                if state.config.safe_mode {
                    (SAFE_MODE_ACCURACY, 0.0)
                } else {
                    (
                        self.primary_accuracy(i, &e),
                        // Measured from a sample of inputs in `record`.
                        0.0,
                    )
                }
            } else {
                (0.0, 0.0)
            };
            sample.set(Metric::ModelAccuracy, accuracy);
            sample.set(Metric::FeaturePsi, psi);
            sample
        }
    }

    /// Measurement noise: relative for rates and latencies, absolute for
    /// shares; none for counters and dates.
    fn add_noise(&mut self, sample: &mut Sample) {
        for metric in Metric::ALL {
            let value = sample.get(metric);
            let (relative, absolute) = match metric {
                Metric::LatencyP50 | Metric::LatencyP95 | Metric::LatencyP99 => (0.05, 0.0),
                Metric::ErrorRate => (0.08, 0.0004),
                Metric::Rps => (0.03, 0.0),
                Metric::Cpu => (0.02, 0.003),
                Metric::Memory => (0.003, 0.0),
                Metric::PoolUsage => (0.04, 0.001),
                Metric::QueueDepth => (0.08, 0.0),
                Metric::DiskUsage => (0.0, 0.0005),
                Metric::CacheHitRate => (0.0, 0.003),
                // Its noise is the sampling of labelled feedback in `record`.
                Metric::ModelAccuracy => (0.0, 0.0),
                // Its noise is the sampling in `psi`.
                Metric::FeaturePsi => (0.0, 0.0),
                Metric::Restarts | Metric::Heartbeat | Metric::HeartbeatAge | Metric::CertDaysLeft => (0.0, 0.0),
            };
            if value == 0.0 && absolute == 0.0 {
                continue;
            }
            let noisy = value * (1.0 + relative * gaussian(&mut self.rng)) + absolute * gaussian(&mut self.rng);
            let noisy = match metric {
                Metric::ErrorRate | Metric::Cpu | Metric::Memory | Metric::PoolUsage | Metric::DiskUsage => {
                    noisy.clamp(0.0, 1.0)
                }
                Metric::CacheHitRate | Metric::ModelAccuracy | Metric::Heartbeat => noisy.clamp(0.0, 1.0),
                Metric::CertDaysLeft => noisy,
                _ => noisy.max(0.0),
            };
            sample.set(metric, noisy);
        }
    }
}
