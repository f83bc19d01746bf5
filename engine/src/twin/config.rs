//! A service's configuration and the estate's config history.
//!
//! Every change, whether an action's, a release's or the estate's own (a
//! safe-mode exit), goes through [`Estate::set`], so the history the agents
//! read is complete and an undo can restore any value from it.

use serde::{Deserialize, Serialize};

use super::{Binding, ConfigChange, Estate, ModelOrigin, ModelVersion, SAFE_MODE_ACCURACY, ServiceSpec};

/// Call timeout every service starts with, in ms.
const DEFAULT_TIMEOUT_MS: f64 = 3000.0;

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
    pub(super) fn initial(spec: &ServiceSpec) -> Self {
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

    pub(super) fn binding(&self, binding: Binding) -> u32 {
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

impl Estate {
    /// Adds a new version to model `index`'s registry and serves it: a
    /// release (as profiled as the one it replaces) or a retraining (as good
    /// as the best profile, on current data).
    pub(super) fn add_model_version(&mut self, index: usize, origin: ModelOrigin, cause: &str) {
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
            self.rebind_model_faults(index, current, next);
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

    /// Configuration changes the estate made by itself (not an action's),
    /// since the last call: safe-mode exits. The engine publishes them.
    pub fn take_spontaneous_changes(&mut self) -> Vec<ConfigChange> {
        std::mem::take(&mut self.spontaneous)
    }

    /// Records a configuration change and makes it.
    pub(super) fn set<T: Copy + ToString>(
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
    pub(super) fn restore(&mut self, index: usize, change: &ConfigChange, cause: &str) {
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
