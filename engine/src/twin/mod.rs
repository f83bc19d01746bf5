//! The twin: a simulated production estate that the agents observe and
//! repair.
//!
//! [`Estate`] is a plain value: services with configuration and state, the
//! faults active on them, and the telemetry their monitoring records. Each
//! [`Estate::tick`] is one simulated second:
//! 1. faults ramp up, or fade once what they were bound to changed;
//! 2. slow state moves (memory, disk, a cold cache warming, crash restarts);
//! 3. traffic flows down the call graph with a daily shape, through caches
//!    and open circuit breakers to their fallbacks;
//! 4. each service's latency, errors and CPU are computed bottom-up, so a
//!    saturated database shows up in every caller (queueing from CPU,
//!    Little's law for connection pools, timeouts as a lognormal tail);
//! 5. a noisy sample of every metric is recorded and the baselines learn.
//!
//! Nothing here knows the answer to an incident: the agents see telemetry,
//! configuration and the topology, never the faults.

mod active_faults;
mod config;
pub mod cusum;
mod exporter;
pub mod health;
mod measurement;
mod outcome;
mod safe_mode;
mod slow_state;
mod traffic;

pub mod action;
pub mod fault;
pub mod psi;
pub mod registry;
pub mod telemetry;
pub mod topology;

use std::{collections::VecDeque, sync::Arc};

use rand::{SeedableRng, rngs::SmallRng};

pub use crate::protocol::HealthState;
pub use action::{ActionError, ActionKind, Applied, ConfigChange, Remediation};
use active_faults::ActiveFault;
pub use active_faults::FaultStatus;
pub use config::ServiceConfig;
pub use fault::{Binding, FaultKind, FaultSpec};
use outcome::Outcome;
pub use registry::{ModelOrigin, ModelVersion};
pub use telemetry::{Ewma, Metric, Sample, Telemetry, Worse};
pub use topology::{ModelProfile, ServiceKind, ServiceSpec, Topology, TopologyError};

/// Seconds of history each service keeps (charts, trends, verification).
pub const DEFAULT_HISTORY: usize = 120;
/// The least history the agents need (trends look 20 seconds back).
pub const MIN_HISTORY: usize = 30;
/// Ticks an estate runs before its first incident, so baselines are warm.
pub const WARMUP_TICKS: u64 = 180;
/// Hit rate of a warm cache.
const WARM_HIT_RATE: f64 = 0.94;
/// Accuracy of the rule-based safe mode.
const SAFE_MODE_ACCURACY: f64 = 0.84;

/// One service's live state.
#[derive(Debug, Clone)]
pub struct ServiceState {
    /// Current configuration.
    pub config: ServiceConfig,
    /// What its monitoring recorded.
    pub telemetry: Telemetry,
    /// Memory utilisation.
    memory: f64,
    /// Disk utilisation.
    disk: f64,
    /// Days until the certificate expires (negative: expired).
    cert_days: f64,
    /// A cache's hit rate.
    hit_rate: f64,
    /// Ticks of recent restarts.
    restart_ticks: VecDeque<u64>,
    /// Extra error rate that fades (requests dropped by a restart).
    transient_errors: f64,
    /// Whether each outgoing edge's breaker is open (tripped).
    breaker_open: Vec<bool>,
    /// An agent's seconds since its last heartbeat.
    silent_seconds: f64,
    /// A model's registry, oldest version first.
    registry: Vec<ModelVersion>,
    /// In safe mode: seconds in a row its primary path met the objective.
    primary_ok_seconds: u32,
    /// A model's latest PSI per input feature (`psi::FEATURES` order).
    feature_psi: [f64; psi::FEATURES.len()],
    /// This tick's result.
    outcome: Outcome,
}

/// The simulated estate. Cloning it forks an independent copy.
#[derive(Debug, Clone)]
pub struct Estate {
    /// The static service graph, shared by every fork.
    topology: Arc<Topology>,
    /// Live state, indexed like the topology.
    services: Vec<ServiceState>,
    /// Faults active or fading.
    faults: Vec<ActiveFault>,
    /// Simulated seconds since the estate started.
    tick: u64,
    /// Seconds after midnight at tick 0 (the daily traffic shape).
    start_of_day: f64,
    /// Telemetry noise; a fast generator, since the twin is seeded for
    /// reproducibility, not for secrecy.
    rng: SmallRng,
    /// Every configuration change, oldest first.
    config_log: Vec<ConfigChange>,
    /// Changes the estate made by itself, not yet taken by the engine.
    spontaneous: Vec<ConfigChange>,
    /// Samples kept per service.
    history_len: usize,
    /// Next fault id.
    next_fault_id: u64,
    /// Counters for a Prometheus scrape, once exporting started.
    totals: Option<Box<exporter::Totals>>,
}

impl Estate {
    /// A healthy estate at `start_of_day` seconds after midnight, warmed up
    /// for [`WARMUP_TICKS`] so baselines are meaningful.
    pub fn new(topology: Arc<Topology>, seed: u64, start_of_day: f64) -> Self {
        let services = topology
            .services
            .iter()
            .enumerate()
            .map(|(i, spec)| ServiceState {
                config: ServiceConfig::initial(spec),
                telemetry: Telemetry::new(),
                memory: spec.memory,
                disk: if spec.kind.is_stateful() { 0.55 } else { 0.0 },
                cert_days: if spec.kind.has_certificate() {
                    40.0 + 7.0 * i as f64
                } else {
                    0.0
                },
                hit_rate: WARM_HIT_RATE,
                restart_ticks: VecDeque::new(),
                transient_errors: 0.0,
                breaker_open: vec![false; spec.edges.len()],
                silent_seconds: 0.0,
                registry: ModelVersion::from_profiles(&spec.models),
                primary_ok_seconds: 0,
                feature_psi: [0.0; psi::FEATURES.len()],
                outcome: Outcome::default(),
            })
            .collect();
        let mut estate = Self {
            topology,
            services,
            faults: Vec::new(),
            tick: 0,
            start_of_day: start_of_day.rem_euclid(86_400.0),
            rng: SmallRng::seed_from_u64(seed),
            config_log: Vec::new(),
            spontaneous: Vec::new(),
            history_len: DEFAULT_HISTORY,
            next_fault_id: 1,
            totals: None,
        };
        estate.advance(WARMUP_TICKS);
        estate
    }

    pub fn topology(&self) -> &Arc<Topology> {
        &self.topology
    }

    /// Simulated seconds since start.
    pub fn now(&self) -> u64 {
        self.tick
    }

    pub fn service(&self, index: usize) -> &ServiceState {
        &self.services[index]
    }

    pub fn service_named(&self, name: &str) -> Option<&ServiceState> {
        self.topology.index(name).map(|i| &self.services[i])
    }

    /// A model's latest PSI per input feature, as `(feature, psi)`.
    pub fn feature_psi(&self, index: usize) -> Vec<(&'static str, f64)> {
        psi::FEATURES
            .iter()
            .zip(self.services[index].feature_psi)
            .map(|(f, value)| (f.name, value))
            .collect()
    }

    /// A model service's registry, oldest version first (empty for any
    /// other service).
    pub fn model_registry(&self, index: usize) -> &[ModelVersion] {
        &self.services[index].registry
    }

    /// Runs `ticks` simulated seconds.
    pub fn advance(&mut self, ticks: u64) {
        for _ in 0..ticks {
            self.tick();
        }
    }

    /// A fork of this estate with its own noise: the same state and
    /// history, different measurements from here on.
    pub fn fork(&self, seed: u64) -> Self {
        let mut fork = self.clone();
        fork.rng = SmallRng::seed_from_u64(seed);
        fork
    }

    /// Keeps at most `samples` of history per service from now on (at
    /// least what verification and trends need).
    pub fn keep_history(&mut self, samples: usize) {
        self.history_len = samples.max(MIN_HISTORY);
        for state in &mut self.services {
            while state.telemetry.history.len() > self.history_len {
                state.telemetry.history.pop_front();
            }
        }
    }

    /// Moves the clock on by `ticks` without simulating them (telemetry
    /// resumes at the later time of day).
    pub fn skip(&mut self, ticks: u64) {
        self.tick += ticks;
    }

    /// One simulated second.
    pub fn tick(&mut self) {
        self.tick += 1;
        self.age_faults();
        let effects = self.effects();
        let topology = Arc::clone(&self.topology);
        self.integrate_state(&topology, &effects);
        let (offered, diverted) = self.offered_load(&topology);
        self.compute_outcomes(&topology, &effects, &offered);
        self.update_breakers(&topology);
        self.probe_safe_mode(&topology, &effects, &offered);
        self.record(&topology, &effects, &offered, &diverted);
    }
}

#[cfg(test)]
mod tests;
