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

pub mod action;
pub mod fault;
pub mod psi;
pub mod registry;
pub mod telemetry;
pub mod topology;

use std::{collections::VecDeque, f64::consts::PI, sync::Arc};

use rand::{Rng, SeedableRng, rngs::SmallRng};
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

pub use crate::protocol::HealthState;
pub use action::{ActionError, ActionKind, Applied, ConfigChange, Remediation};
pub use fault::{Binding, FaultKind, FaultSpec};
pub use registry::{ModelOrigin, ModelVersion};
pub use telemetry::{Ewma, Metric, Sample, Telemetry, Worse};
pub use topology::{ModelProfile, ServiceKind, ServiceSpec, Topology, TopologyError};

/// Seconds of history each service keeps (charts, trends, verification).
pub const DEFAULT_HISTORY: usize = 120;
/// The least history the agents need (trends look 20 seconds back).
pub const MIN_HISTORY: usize = 30;
/// Ticks an estate runs before its first incident, so baselines are warm.
pub const WARMUP_TICKS: u64 = 180;
/// Call timeout every service starts with, in ms.
const DEFAULT_TIMEOUT_MS: f64 = 3000.0;
/// Lognormal shape of a healthy latency distribution (p99 ≈ 3 × p50).
const BASE_SIGMA: f64 = 0.45;
/// Hit rate of a warm cache.
const WARM_HIT_RATE: f64 = 0.94;
/// Seed 003's model latency objective: median inference time.
const MODEL_P50_OBJECTIVE_MS: f64 = 300.0;
/// Seconds the primary path must meet it before safe mode is left.
const SAFE_MODE_PROBE_SECONDS: u32 = 10;
/// Accuracy of the rule-based safe mode.
const SAFE_MODE_ACCURACY: f64 = 0.84;
/// Share of requests that fail on a healthy service (well inside every
/// objective, even summed along a call chain).
const BASE_ERRORS: f64 = 0.0003;
/// Restarts are counted over this many seconds.
const RESTART_WINDOW: u64 = 60;

/// A service's configuration: everything an action can change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceConfig {
    /// Running instances.
    pub instances: u32,
    /// Connection pool size (per instance for services, total for a
    /// database).
    pub pool_size: u32,
    /// Timeout on outgoing calls, ms.
    pub timeout_ms: f64,
    /// A circuit breaker on each outgoing edge, in `edges` order.
    pub breakers: Vec<bool>,
    /// Deployed release number.
    pub deploy: u32,
    /// Bumped by every restart.
    pub restart_generation: u32,
    /// Bumped by every certificate renewal.
    pub cert_serial: u32,
    /// Bumped by every disk cleanup.
    pub disk_cleanups: u32,
    /// Serving model version.
    pub model_version: u32,
    /// Bumped by every retraining.
    pub training_generation: u32,
    /// A model answers from its rule-based fallback.
    pub safe_mode: bool,
    /// A database's traffic goes to its promoted replica.
    pub failed_over: bool,
}

impl ServiceConfig {
    fn initial(spec: &ServiceSpec) -> Self {
        Self {
            instances: spec.instances,
            pool_size: spec.pool_size,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            breakers: vec![false; spec.edges.len()],
            deploy: 41,
            restart_generation: 0,
            cert_serial: 1,
            disk_cleanups: 0,
            model_version: spec.models.last().map_or(0, |m| m.version),
            training_generation: 0,
            safe_mode: false,
            failed_over: false,
        }
    }

    fn binding(&self, binding: Binding) -> u32 {
        match binding {
            Binding::Deploy => self.deploy,
            Binding::RestartGeneration => self.restart_generation,
            Binding::CertSerial => self.cert_serial,
            Binding::DiskCleanups => self.disk_cleanups,
            Binding::ModelVersion => self.model_version,
            Binding::TrainingGeneration => self.training_generation,
        }
    }
}

/// What one service did this tick, as its callers see it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct Outcome {
    /// Median latency, ms.
    p50: f64,
    /// Lognormal shape of the latency.
    sigma: f64,
    /// Share of requests that fail.
    errors: f64,
    /// Share of calls that cannot reach it (partition).
    unreachable: f64,
    /// Share of calls that fail the TLS handshake.
    tls_failures: f64,
}

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

/// A fault in the estate.
#[derive(Debug, Clone, PartialEq)]
struct ActiveFault {
    /// Unique within the estate.
    id: u64,
    /// What it is and where.
    spec: FaultSpec,
    /// The target's index.
    target: usize,
    /// Seconds since it began.
    age: f64,
    /// Current strength, 0..=intensity.
    level: f64,
    /// The bound configuration's value when the fault began.
    bound_to: Option<(Binding, u32)>,
}

/// A fault as tests and the evaluation see it (never the agents).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultStatus {
    /// Its id.
    pub id: u64,
    /// What and where.
    pub spec: FaultSpec,
    /// Current strength.
    pub level: f64,
    /// What it was bound to changed: it is fading out.
    pub ended: bool,
}

/// Fault effects summed over the faults on one service.
#[derive(Debug, Clone, Copy, Default)]
struct Effects {
    leaked_pool_share: f64,
    memory_leak_per_tick: f64,
    cpu_cost: f64,
    slow_query: f64,
    crash: f64,
    external_slowness: f64,
    unreachable: f64,
    disk_growth: f64,
    cache_failure: f64,
    model_slowness: f64,
    accuracy_drop: f64,
    drift: f64,
    agent_down: f64,
}

impl Effects {
    /// How much slower a model's own inference runs (1 when healthy).
    fn model_latency_factor(&self) -> f64 {
        1.0 + 8.0 * self.model_slowness
    }
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
}

/// A standard normal draw (ziggurat: no logarithm or cosine on the hot path,
/// which matters at hundreds of draws per tick per twin).
fn gaussian(rng: &mut SmallRng) -> f64 {
    rng.sample(StandardNormal)
}

/// The standard normal CDF (Abramowitz–Stegun 7.1.26, error < 1.5e-7).
fn normal_cdf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs() / std::f64::consts::SQRT_2);
    let poly =
        t * (0.254_829_592 + t * (-0.284_496_736 + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-(x * x) / 2.0).exp();
    if x >= 0.0 { 0.5 * (1.0 + erf) } else { 0.5 * (1.0 - erf) }
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

    /// Adds a new version to model `index`'s registry and serves it: a
    /// release (as profiled as the one it replaces) or a retraining (as good
    /// as the best profile, on current data).
    fn add_model_version(&mut self, index: usize, origin: ModelOrigin, cause: &str) {
        let state = &mut self.services[index];
        let current = state.config.model_version;
        let profile = match origin {
            ModelOrigin::Retraining => state.registry.iter().map(|v| v.profile_accuracy).fold(0.0, f64::max),
            _ => state
                .registry
                .iter()
                .find(|v| v.version == current)
                .map_or(SAFE_MODE_ACCURACY, |v| v.profile_accuracy),
        };
        let next = state.registry.iter().map(|v| v.version).max().unwrap_or(0) + 1;
        if origin == ModelOrigin::Retraining {
            // A bad release's defect is in its code, not its data:
            // retraining it gives a new version with the same defect.
            for fault in &mut self.faults {
                if fault.target == index && fault.bound_to == Some((Binding::ModelVersion, current)) {
                    fault.bound_to = Some((Binding::ModelVersion, next));
                }
            }
        }
        let state = &mut self.services[index];
        state.registry.push(ModelVersion {
            version: next,
            profile_accuracy: profile,
            measured_accuracy: None,
            origin,
        });
        self.set(index, "model_version", current, next, cause, |c| &mut c.model_version);
    }

    /// Every configuration change since start, oldest first.
    pub fn config_history(&self) -> &[ConfigChange] {
        &self.config_log
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

    /// Whether a fault of `kind` at `target` is active and not fading.
    pub fn has_active_fault(&self, kind: FaultKind, target: &str) -> bool {
        self.faults
            .iter()
            .any(|f| f.spec.kind == kind && f.spec.target == target && !self.fault_ended(f))
    }

    /// Starts a fault. Faults that ship with a release bump the target's
    /// deploy (or model) version, recorded like any configuration change.
    pub fn inject(&mut self, spec: &FaultSpec) -> Result<u64, String> {
        let target = self.topology.index(&spec.target);
        spec.validate(target.map(|i| self.topology.spec(i)))?;
        let target = target.expect("validated");
        if spec.kind.ships_with_release() {
            let config = &self.services[target].config;
            if spec.kind == FaultKind::ModelAccuracyDrop {
                let version = config.model_version;
                self.add_model_version(target, ModelOrigin::Release, "release");
                debug_assert_eq!(self.services[target].config.model_version, version + 1);
            } else {
                let deploy = config.deploy;
                self.set(target, "deploy", deploy, deploy + 1, "release", |c| &mut c.deploy);
            }
        }
        let state = &mut self.services[target];
        match spec.kind {
            FaultKind::CertificateExpiry => state.cert_days = -(spec.lead_seconds / 86_400.0).max(0.01),
            // Slow state starts where the fault's lead time left it.
            FaultKind::MemoryLeak => {
                state.memory = (state.memory + 0.0022 * spec.intensity * spec.lead_seconds).min(0.95);
            }
            FaultKind::DiskExhaustion => {
                state.disk = (state.disk + 0.004 * spec.intensity * spec.lead_seconds).min(0.995);
            }
            // An agent that stopped `lead_seconds` ago has been silent since.
            FaultKind::AgentHeartbeatLoss if spec.intensity > 0.5 => state.silent_seconds = spec.lead_seconds,
            _ => {}
        }
        let id = self.next_fault_id;
        self.next_fault_id += 1;
        let bound_to = spec
            .kind
            .binding()
            .map(|b| (b, self.services[target].config.binding(b)));
        self.faults.push(ActiveFault {
            id,
            spec: spec.clone(),
            target,
            age: spec.lead_seconds,
            level: 0.0,
            bound_to,
        });
        self.update_fault_levels();
        Ok(id)
    }

    /// The faults, for scoring and tests. Agents must not call this.
    pub fn faults(&self) -> Vec<FaultStatus> {
        self.faults
            .iter()
            .map(|f| FaultStatus {
                id: f.id,
                spec: f.spec.clone(),
                level: f.level,
                ended: self.fault_ended(f),
            })
            .collect()
    }

    fn fault_ended(&self, fault: &ActiveFault) -> bool {
        fault.spec.duration_seconds.is_some_and(|d| fault.age >= d)
            || fault
                .bound_to
                .is_some_and(|(binding, value)| self.services[fault.target].config.binding(binding) != value)
    }

    fn update_fault_levels(&mut self) {
        let ended: Vec<bool> = self.faults.iter().map(|f| self.fault_ended(f)).collect();
        for (fault, ended) in self.faults.iter_mut().zip(&ended) {
            if *ended {
                fault.level *= 0.4;
            } else {
                let ramp = if fault.spec.onset_seconds <= 0.0 {
                    1.0
                } else {
                    (fault.age / fault.spec.onset_seconds).min(1.0)
                };
                fault.level = fault.spec.intensity * ramp;
            }
        }
        let mut i = 0;
        self.faults.retain(|f| {
            let keep = !(ended[i] && f.level < 0.01);
            i += 1;
            keep
        });
    }

    fn effects(&self) -> Vec<Effects> {
        let mut effects = vec![Effects::default(); self.services.len()];
        for fault in &self.faults {
            // Clients leak connections, and a bad migration replicates:
            // both follow the traffic to a promoted replica.
            let follows_traffic = matches!(
                fault.spec.kind,
                FaultKind::ConnectionPoolExhaustion | FaultKind::SlowQuery
            );
            let target = match self.topology.spec(fault.target).replica {
                Some(replica) if follows_traffic && self.services[fault.target].config.failed_over => replica,
                _ => fault.target,
            };
            let e = &mut effects[target];
            let level = fault.level;
            match fault.spec.kind {
                // Connections leak at a rate set by the intensity, until none are left.
                FaultKind::ConnectionPoolExhaustion => e.leaked_pool_share += 0.05 * level * fault.age,
                FaultKind::MemoryLeak => e.memory_leak_per_tick += 0.0022 * level,
                FaultKind::CpuSaturation => e.cpu_cost += 2.5 * level,
                FaultKind::SlowQuery => e.slow_query += level,
                FaultKind::CrashLoop => e.crash += 0.75 * level,
                FaultKind::DependencyTimeout => e.external_slowness += level,
                FaultKind::NetworkPartition => e.unreachable += level,
                FaultKind::DiskExhaustion => e.disk_growth += 0.004 * level,
                // Expiry is state (the certificate's date), set at injection.
                FaultKind::CertificateExpiry => {}
                FaultKind::CacheFailure => e.cache_failure += level,
                FaultKind::ModelLatency => e.model_slowness += level,
                FaultKind::ModelAccuracyDrop => e.accuracy_drop += level,
                FaultKind::DataDrift => e.drift += level,
                FaultKind::AgentHeartbeatLoss => e.agent_down += level,
            }
        }
        for e in &mut effects {
            e.leaked_pool_share = e.leaked_pool_share.min(0.995);
            e.crash = e.crash.min(0.95);
            e.unreachable = e.unreachable.min(1.0);
            e.cache_failure = e.cache_failure.min(1.0);
            e.agent_down = e.agent_down.min(1.0);
        }
        effects
    }

    /// Traffic multiplier for the time of day: lowest at midnight, highest
    /// at noon.
    fn daily_traffic(&self) -> f64 {
        let day_fraction = ((self.start_of_day + self.tick as f64) % 86_400.0) / 86_400.0;
        1.0 + 0.3 * (2.0 * PI * (day_fraction - 0.25)).sin()
    }

    /// One simulated second.
    pub fn tick(&mut self) {
        self.tick += 1;
        for fault in &mut self.faults {
            fault.age += 1.0;
        }
        self.update_fault_levels();
        let effects = self.effects();
        let topology = Arc::clone(&self.topology);
        self.integrate_state(&topology, &effects);
        let (offered, diverted) = self.offered_load(&topology);
        self.compute_outcomes(&topology, &effects, &offered);
        self.update_breakers(&topology);
        self.probe_safe_mode(&topology, &effects, &offered);
        self.record(&topology, &effects, &offered, &diverted);
    }

    /// A model in safe mode keeps probing its primary path with shadow
    /// traffic; once the primary meets seed 003's objectives (median
    /// latency, and accuracy on labelled feedback) for
    /// [`SAFE_MODE_PROBE_SECONDS`] in a row, whatever sent it to safe mode
    /// is gone, and it leaves safe mode, recorded as a change of its own.
    fn probe_safe_mode(&mut self, topology: &Topology, effects: &[Effects], offered: &[f64]) {
        for i in 0..self.services.len() {
            let spec = topology.spec(i);
            if spec.kind != ServiceKind::Model || !self.services[i].config.safe_mode {
                continue;
            }
            let (state, e) = (&self.services[i], &effects[i]);
            let cpu = self.cpu(spec, state, e, offered[i]);
            let queueing = (1.0 - spec.cpu) / (1.0 - cpu.min(0.985));
            let primary_p50 = spec.latency_ms * queueing * e.model_latency_factor();
            let primary_accuracy = self.primary_accuracy(i, e);
            let healthy = primary_p50 <= MODEL_P50_OBJECTIVE_MS && primary_accuracy >= registry::GOOD_ACCURACY;
            let state = &mut self.services[i];
            state.primary_ok_seconds = if healthy { state.primary_ok_seconds + 1 } else { 0 };
            if state.primary_ok_seconds >= SAFE_MODE_PROBE_SECONDS {
                state.primary_ok_seconds = 0;
                let before = self.config_log.len();
                self.set(
                    i,
                    "safe_mode",
                    true,
                    false,
                    &format!(
                        "safe-mode exit: the model itself met {MODEL_P50_OBJECTIVE_MS} ms median latency and {} accuracy for {SAFE_MODE_PROBE_SECONDS} s (root cause gone)",
                        registry::GOOD_ACCURACY
                    ),
                    |c| &mut c.safe_mode,
                );
                self.spontaneous.extend_from_slice(&self.config_log[before..]);
            }
        }
    }

    /// The true accuracy of model `index`'s serving version under effects
    /// `e` (safe mode's rules aside): its profile, less what its faults take.
    fn primary_accuracy(&self, index: usize, e: &Effects) -> f64 {
        let state = &self.services[index];
        let profile = state
            .registry
            .iter()
            .find(|v| v.version == state.config.model_version)
            .map_or(SAFE_MODE_ACCURACY, |v| v.profile_accuracy);
        profile - 0.22 * e.accuracy_drop - 0.09 * e.drift
    }

    /// Configuration changes the estate made by itself (not an action's),
    /// since the last call: safe-mode exits. The engine publishes them.
    pub fn take_spontaneous_changes(&mut self) -> Vec<ConfigChange> {
        std::mem::take(&mut self.spontaneous)
    }

    fn integrate_state(&mut self, topology: &Topology, effects: &[Effects]) {
        let tick = self.tick;
        for (i, state) in self.services.iter_mut().enumerate() {
            let spec = topology.spec(i);
            let e = effects[i];
            state.transient_errors *= 0.5;
            if e.memory_leak_per_tick > 0.0 {
                state.memory += e.memory_leak_per_tick;
                if state.memory >= 0.97 {
                    // Out of memory: the instance is killed and restarts.
                    state.memory = spec.memory;
                    state.restart_ticks.push_back(tick);
                    state.transient_errors = state.transient_errors.max(0.25);
                }
            } else {
                state.memory += (spec.memory - state.memory) * 0.05;
            }
            state.disk = (state.disk + e.disk_growth).min(0.999);
            if spec.kind == ServiceKind::Cache {
                let target = WARM_HIT_RATE * (1.0 - e.cache_failure);
                let rate = if target > state.hit_rate { 0.35 } else { 0.8 };
                state.hit_rate += (target - state.hit_rate) * rate;
            }
            if e.crash > 0.3 && tick.is_multiple_of(4) {
                state.restart_ticks.push_back(tick);
            }
            while state.restart_ticks.front().is_some_and(|&t| t + RESTART_WINDOW <= tick) {
                state.restart_ticks.pop_front();
            }
        }
    }

    /// Where a call from `caller` on edge `edge_index` actually goes.
    fn route(&self, topology: &Topology, caller: usize, edge_index: usize) -> usize {
        self.serving(topology, topology.spec(caller).edges[edge_index].to)
    }

    /// The service that answers for `index`: its promoted replica once it
    /// failed over.
    fn serving(&self, topology: &Topology, index: usize) -> usize {
        match topology.spec(index).replica {
            Some(replica) if self.services[index].config.failed_over => replica,
            _ => index,
        }
    }

    /// Requests/s offered to every service this tick, and the part of it
    /// that open circuit breakers diverted there.
    fn offered_load(&mut self, topology: &Topology) -> (Vec<f64>, Vec<f64>) {
        let traffic = self.daily_traffic();
        let mut rps: Vec<f64> = topology
            .services
            .iter()
            .map(|s| s.entry_rps.unwrap_or(0.0) * traffic)
            .collect();
        let mut diverted = vec![0.0; rps.len()];
        for &i in topology.bottom_up.iter().rev() {
            for (e, edge) in topology.spec(i).edges.iter().enumerate() {
                let load = rps[i] * edge.calls;
                let to = self.route(topology, i, e);
                let dep = topology.spec(to);
                if dep.kind == ServiceKind::Cache {
                    let hit = self.services[to].hit_rate * (1.0 - self.services[to].outcome.errors);
                    rps[to] += load;
                    if let Some(fallback) = dep.fallback {
                        rps[self.serving(topology, fallback)] += load * (1.0 - hit);
                    }
                } else if self.services[i].breaker_open[e] {
                    if let Some(fallback) = dep.fallback {
                        let fallback = self.serving(topology, fallback);
                        rps[fallback] += load;
                        diverted[fallback] += load;
                    }
                } else {
                    rps[to] += load;
                }
            }
        }
        (rps, diverted)
    }

    /// What a call on `edge_index` from `caller` costs: (latency ms, error
    /// share, sigma), from this tick's outcome of the callee.
    fn call(&self, topology: &Topology, caller: usize, edge_index: usize) -> (f64, f64, f64) {
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

    fn compute_outcomes(&mut self, topology: &Topology, effects: &[Effects], offered: &[f64]) {
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

    fn cpu(&self, spec: &ServiceSpec, state: &ServiceState, e: &Effects, offered: f64) -> f64 {
        if spec.kind == ServiceKind::External {
            return 0.0;
        }
        let load = offered / spec.base_rps;
        let per_instance = f64::from(spec.instances) / f64::from(state.config.instances);
        let served = (1.0 - e.unreachable) * (1.0 - e.agent_down) * (1.0 - 0.6 * e.crash);
        let cpu = spec.cpu * load * (1.0 + e.cpu_cost) * per_instance * served + 0.3 * e.slow_query;
        cpu.clamp(0.0, 1.0)
    }

    /// Breakers trip when a dependency fails a quarter of calls, and close
    /// again when a probe finds it healthy.
    fn update_breakers(&mut self, topology: &Topology) {
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
                let open = &mut self.services[i].breaker_open[edge_index];
                if failing > 0.25 || o.p50 > timeout * 0.5 {
                    *open = true;
                } else if failing < 0.05 && o.p50 < timeout * 0.25 {
                    *open = false;
                }
            }
        }
    }

    fn record(&mut self, topology: &Topology, effects: &[Effects], offered: &[f64], diverted: &[f64]) {
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

    /// Whether `index` takes traffic (a failed-over database does not).
    pub fn in_rotation(&self, index: usize) -> bool {
        !self.services[index].config.failed_over
    }

    /// How `index` is doing against its objectives, from the mean of its
    /// last `window` samples.
    pub fn health(&self, index: usize, window: usize) -> HealthState {
        let spec = self.topology.spec(index);
        let telemetry = &self.services[index].telemetry;
        let mean = |m| telemetry.recent_mean(m, window);
        let errors = mean(Metric::ErrorRate);
        let heartbeat = if spec.kind == ServiceKind::External {
            1.0
        } else {
            mean(Metric::Heartbeat)
        };
        if errors > 0.5 || heartbeat < 0.5 {
            HealthState::Down
        } else if errors > spec.slo_error || mean(Metric::LatencyP99) > spec.slo_p99_ms || heartbeat < 0.95 {
            HealthState::Degraded
        } else {
            HealthState::Healthy
        }
    }

    /// Every service's health and key figures now, for the dashboard.
    pub fn health_report(&self) -> Vec<crate::protocol::ServiceTelemetry> {
        self.topology
            .services
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let latest = self.services[i].telemetry.latest();
                crate::protocol::ServiceTelemetry {
                    name: spec.name.clone(),
                    kind: spec.kind.as_str().to_owned(),
                    state: self.health(i, 3),
                    in_rotation: self.in_rotation(i),
                    owned: spec.owned,
                    p99_ms: (latest.get(Metric::LatencyP99) * 10.0).round() / 10.0,
                    error_rate: (latest.get(Metric::ErrorRate) * 10_000.0).round() / 10_000.0,
                    rps: latest.get(Metric::Rps).round(),
                    cpu: (latest.get(Metric::Cpu) * 100.0).round() / 100.0,
                    depends_on: spec
                        .edges
                        .iter()
                        .map(|e| self.topology.spec(e.to).name.clone())
                        .collect(),
                    breakers: spec
                        .edges
                        .iter()
                        .enumerate()
                        .filter(|(e, _)| self.services[i].config.breakers[*e])
                        .map(|(e, edge)| crate::protocol::CircuitBreaker {
                            to: self.topology.spec(edge.to).name.clone(),
                            open: self.services[i].breaker_open[e],
                        })
                        .collect(),
                }
            })
            .collect()
    }

    /// True when every service we own and route to meets its objectives
    /// over the last `window` seconds, and no slow resource is still
    /// heading for trouble (memory or disk climbing, a certificate within a
    /// day of expiry, model accuracy or input drift out of bounds).
    pub fn slos_met(&self, window: usize) -> bool {
        self.violations(window).is_empty()
    }

    /// Every objective not met over the last `window` seconds, as
    /// `service: reason`.
    pub fn violations(&self, window: usize) -> Vec<String> {
        let mut found = Vec::new();
        for (i, spec) in self.topology.services.iter().enumerate() {
            if !spec.owned || !self.in_rotation(i) {
                continue;
            }
            let health = self.health(i, window);
            if health != HealthState::Healthy {
                found.push(format!("{}: {}", spec.name, health.as_str()));
            }
            let telemetry = &self.services[i].telemetry;
            if Metric::Memory.applies_to(spec)
                && telemetry::slope(&telemetry.recent(Metric::Memory, window.max(15))) > 0.0008
            {
                found.push(format!("{}: memory still climbing", spec.name));
            }
            if Metric::DiskUsage.applies_to(spec) {
                let disk = telemetry.recent(Metric::DiskUsage, window.max(15));
                let rate = telemetry::slope(&disk);
                let free = 1.0 - disk.last().copied().unwrap_or_default();
                if free < 0.1 || (rate > 0.0002 && free / rate < 3600.0) {
                    found.push(format!("{}: disk full within the hour", spec.name));
                }
            }
            if Metric::CertDaysLeft.applies_to(spec) && telemetry.latest().get(Metric::CertDaysLeft) < 1.0 {
                found.push(format!("{}: certificate expires within a day", spec.name));
            }
            if spec.kind == ServiceKind::Cache && telemetry.latest().get(Metric::CacheHitRate) < 0.5 {
                found.push(format!("{}: hit rate below 50%", spec.name));
            }
            if spec.kind == ServiceKind::Model {
                // Over the window: one second's feedback (200 outcomes) is
                // a noisy measure of accuracy.
                if telemetry.recent_mean(Metric::ModelAccuracy, window) < registry::GOOD_ACCURACY {
                    found.push(format!("{}: accuracy below 0.8", spec.name));
                }
                if telemetry.recent_mean(Metric::FeaturePsi, window) > 0.2 {
                    found.push(format!("{}: input drift (PSI above 0.2)", spec.name));
                }
            }
        }
        found
    }

    /// Records a configuration change and makes it.
    fn set<T: Copy + ToString>(
        &mut self,
        index: usize,
        key: &str,
        from: T,
        to: T,
        cause: &str,
        field: impl FnOnce(&mut ServiceConfig) -> &mut T,
    ) {
        *field(&mut self.services[index].config) = to;
        self.config_log.push(ConfigChange {
            tick: self.tick,
            service: self.topology.spec(index).name.clone(),
            key: key.to_owned(),
            from: from.to_string(),
            to: to.to_string(),
            cause: cause.to_owned(),
        });
    }

    /// Sets a configuration value back to `change.from`.
    fn restore(&mut self, index: usize, change: &ConfigChange, cause: &str) {
        let config = &self.services[index].config;
        let key = change.key.as_str();
        let parsed_u32 = change.from.parse::<u32>();
        let parsed_bool = change.from.parse::<bool>();
        match key {
            "pool_size" => {
                let now = config.pool_size;
                self.set(index, key, now, parsed_u32.unwrap_or(now), cause, |c| &mut c.pool_size);
            }
            "instances" => {
                let now = config.instances;
                self.set(index, key, now, parsed_u32.unwrap_or(now), cause, |c| &mut c.instances);
            }
            "deploy" => {
                let now = config.deploy;
                self.set(index, key, now, parsed_u32.unwrap_or(now), cause, |c| &mut c.deploy);
            }
            "model_version" => {
                let now = config.model_version;
                self.set(index, key, now, parsed_u32.unwrap_or(now), cause, |c| {
                    &mut c.model_version
                });
            }
            "timeout_ms" => {
                let now = config.timeout_ms;
                let from = change.from.parse::<f64>().unwrap_or(now);
                self.set(index, key, now, from, cause, |c| &mut c.timeout_ms);
            }
            "safe_mode" => {
                let now = config.safe_mode;
                self.set(index, key, now, parsed_bool.unwrap_or(now), cause, |c| &mut c.safe_mode);
            }
            "failed_over" => {
                let now = config.failed_over;
                self.set(index, key, now, parsed_bool.unwrap_or(now), cause, |c| {
                    &mut c.failed_over
                });
            }
            _ => {
                if let Some(dep) = key.strip_prefix("circuit_breaker.") {
                    let edge = self
                        .topology
                        .spec(index)
                        .edges
                        .iter()
                        .position(|e| self.topology.spec(e.to).name == dep);
                    if let Some(edge) = edge {
                        let now = config.breakers[edge];
                        self.set(index, key, now, parsed_bool.unwrap_or(now), cause, |c| {
                            &mut c.breakers[edge]
                        });
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
