//! Step 4 of a tick: each service's latency, errors and CPU, computed
//! bottom-up so that a saturated dependency shows up in every caller, and
//! the circuit breakers that react to them.
//!
//! Kept apart from the traffic (step 3) because it runs the other way: load
//! flows down from the entry points, cost up from the leaves.

use super::{Estate, ServiceKind, ServiceSpec, ServiceState, Topology, active_faults::Effects};

/// Lognormal shape of a healthy latency distribution (p99 ≈ 3 × p50).
const BASE_SIGMA: f64 = 0.45;
/// Share of requests that fail on a healthy service (well inside every
/// objective, even summed along a call chain).
const BASE_ERRORS: f64 = 0.0003;

/// What one service did this tick, as its callers see it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(super) struct Outcome {
    /// Median latency, ms.
    pub(super) p50: f64,
    /// Lognormal shape of the latency.
    pub(super) sigma: f64,
    /// Share of requests that fail.
    pub(super) errors: f64,
    /// Share of calls that cannot reach it (partition).
    pub(super) unreachable: f64,
    /// Share of calls that fail the TLS handshake.
    pub(super) tls_failures: f64,
}

/// The standard normal CDF (Abramowitz–Stegun 7.1.26, error < 1.5e-7).
/// The share of a dependency's calls slower than the caller's latency
/// objective past which its breaker trips: a p99 objective allows 1%.
const SLOW_CALL_SHARE: f64 = 0.05;

pub(super) fn normal_cdf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs() / std::f64::consts::SQRT_2);
    let poly =
        t * (0.254_829_592 + t * (-0.284_496_736 + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-(x * x) / 2.0).exp();
    if x >= 0.0 { 0.5 * (1.0 + erf) } else { 0.5 * (1.0 - erf) }
}

impl Estate {
    /// What a call on `edge_index` from `caller` costs: (latency ms, error
    /// share, sigma), from this tick's outcome of the callee.
    pub(super) fn call(&self, topology: &Topology, caller: usize, edge_index: usize) -> (f64, f64, f64) {
        let to = self.route(topology, caller, edge_index);
        let dep = topology.spec(to);
        let o = self.services[to].outcome;
        if dep.kind == ServiceKind::Cache {
            let hit = self.services[to].hit_rate * (1.0 - o.errors);
            return match dep.fallback {
                Some(fallback) => {
                    let f = self.services[self.serving(topology, fallback)].outcome;
                    (
                        o.p50 + (1.0 - hit) * f.p50,
                        (1.0 - hit) * f.errors,
                        o.sigma.max(f.sigma),
                    )
                }
                None => (o.p50, o.errors, o.sigma),
            };
        }
        if self.services[caller].breaker_open[edge_index] {
            return match dep.fallback {
                Some(fallback) => {
                    let f = self.services[self.serving(topology, fallback)].outcome;
                    (f.p50, f.errors, f.sigma)
                }
                // Failing fast: the errors stay, the waiting goes.
                None => (0.5, 1.0 - (1.0 - o.errors) * (1.0 - o.unreachable), BASE_SIGMA),
            };
        }
        let timeout = self.services[caller].config.timeout_ms;
        let timed_out = 1.0 - normal_cdf((timeout.ln() - o.p50.max(0.01).ln()) / o.sigma);
        let errors = 1.0 - (1.0 - o.errors) * (1.0 - timed_out) * (1.0 - o.unreachable) * (1.0 - o.tls_failures);
        let latency = (1.0 - o.unreachable) * o.p50.min(timeout) + o.unreachable * timeout;
        (latency, errors.clamp(0.0, 1.0), o.sigma)
    }

    pub(super) fn compute_outcomes(&mut self, topology: &Topology, effects: &[Effects], offered: &[f64]) {
        for &i in &topology.bottom_up {
            let spec = topology.spec(i);
            let e = effects[i];
            let state = &self.services[i];
            let config = &state.config;
            let cpu = self.cpu(spec, state, &e, offered[i]);
            let queueing = (1.0 - spec.cpu) / (1.0 - cpu.min(0.985));
            let mut p50 = spec.latency_ms * queueing;
            let mut sigma = BASE_SIGMA + 3.0 * (cpu - 0.85).max(0.0);
            let mut errors = BASE_ERRORS + state.transient_errors + 6.0 * (cpu - 0.95).max(0.0);
            p50 *= 1.0 + 9.0 * e.slow_query;
            sigma += 0.4 * e.slow_query;
            if spec.kind == ServiceKind::Model {
                if config.safe_mode {
                    p50 = 6.0 * queueing;
                } else {
                    p50 *= e.model_latency_factor();
                    sigma += 0.2 * e.model_slowness;
                }
            }
            if e.external_slowness > 0.0 {
                p50 += 5500.0 * e.external_slowness;
                sigma += 0.3 * e.external_slowness;
                errors += 0.15 * e.external_slowness;
            }
            // Garbage collection under memory pressure.
            p50 *= 1.0 + 6.0 * (state.memory - 0.8).max(0.0);
            errors += e.crash * 0.9 + 0.9 * e.cache_failure;
            if spec.kind.is_stateful() {
                errors += 0.5 * ((state.disk - 0.97) / 0.03).clamp(0.0, 1.0);
            }
            if spec.kind == ServiceKind::Database && config.pool_size > 0 {
                // Little's law: connections in use = arrival rate × time held.
                let needed = offered[i] * p50 / 1000.0;
                let leaked = e.leaked_pool_share * f64::from(spec.pool_size);
                let available = (f64::from(config.pool_size) - leaked).max(0.0);
                if needed > available {
                    errors += 1.0 - available / needed;
                }
                let pressure = needed / available.max(0.1);
                if pressure > 0.8 {
                    p50 *= 1.0 + 4.0 * (pressure - 0.8).min(5.0);
                    sigma += 0.3;
                }
            }
            let own_p50 = p50;
            let mut weighted_sigma = sigma * own_p50;
            let mut total = own_p50;
            let mut success = 1.0 - errors.min(1.0);
            for (edge_index, edge) in spec.edges.iter().enumerate() {
                let (latency, call_errors, call_sigma) = self.call(topology, i, edge_index);
                total += edge.calls * latency;
                weighted_sigma += edge.calls * latency * call_sigma;
                success *= 1.0 - (edge.calls * call_errors).min(1.0);
            }
            let outcome = Outcome {
                p50: total,
                sigma: (weighted_sigma / total).clamp(0.2, 2.0),
                errors: (1.0 - success).clamp(0.0, 1.0),
                unreachable: e.unreachable,
                tls_failures: if state.cert_days < 0.0 { 0.95 } else { 0.0 },
            };
            self.services[i].outcome = outcome;
        }
    }

    pub(super) fn cpu(&self, spec: &ServiceSpec, state: &ServiceState, e: &Effects, offered: f64) -> f64 {
        if spec.kind == ServiceKind::External {
            return 0.0;
        }
        let load = offered / spec.base_rps;
        let per_instance = f64::from(spec.instances) / f64::from(state.config.instances);
        let served = (1.0 - e.unreachable) * (1.0 - e.agent_down) * (1.0 - 0.6 * e.crash);
        let cpu = spec.cpu * load * (1.0 + e.cpu_cost) * per_instance * served + 0.3 * e.slow_query;
        cpu.clamp(0.0, 1.0)
    }

    /// Breakers trip when a dependency fails a quarter of calls, or makes
    /// more than [`SLOW_CALL_SHARE`] of them slower than the caller's own
    /// latency objective (a slow-call threshold, as resilience4j has), and
    /// close again when a probe finds it healthy.
    pub(super) fn update_breakers(&mut self, topology: &Topology) {
        for i in 0..self.services.len() {
            let spec = topology.spec(i);
            for (edge_index, _) in spec.edges.iter().enumerate() {
                if !self.services[i].config.breakers[edge_index] {
                    self.services[i].breaker_open[edge_index] = false;
                    continue;
                }
                let to = self.route(topology, i, edge_index);
                let o = self.services[to].outcome;
                let timeout = self.services[i].config.timeout_ms;
                let failing = 1.0 - (1.0 - o.errors) * (1.0 - o.unreachable) * (1.0 - o.tls_failures);
                let slow = 1.0 - normal_cdf((spec.slo_p99_ms.ln() - o.p50.max(0.01).ln()) / o.sigma);
                let open = &mut self.services[i].breaker_open[edge_index];
                if failing > 0.25 || o.p50 > timeout * 0.5 || slow > SLOW_CALL_SHARE {
                    *open = true;
                } else if failing < 0.05 && o.p50 < timeout * 0.25 && slow < SLOW_CALL_SHARE / 5.0 {
                    *open = false;
                }
            }
        }
    }
}
