//! The faults active on the estate: how they start, ramp up and fade, and
//! the effects they sum to on each service.
//!
//! Kept apart from the rest of the simulation because only this module
//! knows the faults (and reports them, through [`Estate::faults`], to
//! scoring and tests only): every other step sees just their [`Effects`], as
//! a real estate shows symptoms, not causes.

use serde::{Deserialize, Serialize};

use super::{Binding, Estate, FaultKind, FaultSpec, ModelOrigin};

/// A fault in the estate.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ActiveFault {
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
pub(super) struct Effects {
    pub(super) leaked_pool_share: f64,
    pub(super) memory_leak_per_tick: f64,
    pub(super) cpu_cost: f64,
    pub(super) slow_query: f64,
    pub(super) crash: f64,
    pub(super) external_slowness: f64,
    pub(super) unreachable: f64,
    pub(super) disk_growth: f64,
    pub(super) cache_failure: f64,
    pub(super) model_slowness: f64,
    pub(super) accuracy_drop: f64,
    pub(super) drift: f64,
    pub(super) agent_down: f64,
}

impl Effects {
    /// How much slower a model's own inference runs (1 when healthy).
    pub(super) fn model_latency_factor(&self) -> f64 {
        1.0 + 8.0 * self.model_slowness
    }
}

impl Estate {
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

    /// One tick older: every fault ramps up, or fades once it ended.
    pub(super) fn age_faults(&mut self) {
        for fault in &mut self.faults {
            fault.age += 1.0;
        }
        self.update_fault_levels();
    }

    /// Carries the faults bound to model `index`'s version `from` over to
    /// version `to`.
    pub(super) fn rebind_model_faults(&mut self, index: usize, from: u32, to: u32) {
        for fault in &mut self.faults {
            if fault.target == index && fault.bound_to == Some((Binding::ModelVersion, from)) {
                fault.bound_to = Some((Binding::ModelVersion, to));
            }
        }
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

    pub(super) fn effects(&self) -> Vec<Effects> {
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
}
