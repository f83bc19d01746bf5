//! Remediation actions: what the resolution agent can do to the estate,
//! which services each applies to, and what each changes.
//!
//! An action changes configuration (recorded as [`ConfigChange`]s, the
//! config history) and may have side effects (a restart drops in-flight
//! requests). Reversible actions can be undone, which is how a failed
//! remediation is rolled back.

use serde::{Deserialize, Serialize};

pub use crate::protocol::{ActionKind, Remediation};

use super::{
    Estate,
    topology::{ServiceKind, ServiceSpec},
};

impl ActionKind {
    /// Why this action cannot be applied to `spec`, if it cannot.
    pub fn refusal(self, spec: &ServiceSpec) -> Option<String> {
        use ServiceKind::*;
        if !spec.owned {
            return Some(format!("`{}` is a third party: we cannot change it", spec.name));
        }
        let ok = match self {
            Self::ScaleConnectionPool => spec.pool_size > 0,
            Self::RaiseTimeout | Self::EnableCircuitBreaker => !spec.edges.is_empty(),
            // Caches and agents have their own restart, with its own care.
            Self::RestartInstances => !matches!(spec.kind, Cache | Agent),
            Self::ScaleOut => matches!(spec.kind, Gateway | Service | Model | Cache | Queue),
            Self::RollbackDeploy => matches!(spec.kind, Gateway | Service | Database | Model | Queue),
            Self::FailoverDatabase => spec.kind == Database && spec.replica.is_some(),
            Self::FlushCache | Self::RestartCache => spec.kind == Cache,
            Self::RenewCertificate => spec.kind.has_certificate(),
            Self::FreeDisk => spec.kind.is_stateful(),
            Self::EnableSafeMode | Self::RollbackModel | Self::TriggerRetraining => spec.kind == Model,
            Self::RestartAgent => spec.kind == Agent,
        };
        (!ok).then(|| {
            format!(
                "{} does not apply to `{}` (a {})",
                self.label(),
                spec.name,
                spec.kind.as_str()
            )
        })
    }

    /// Whether [`Estate::undo`] can take it back.
    pub fn reversible(self) -> bool {
        matches!(
            self,
            Self::ScaleConnectionPool
                | Self::RaiseTimeout
                | Self::EnableCircuitBreaker
                | Self::ScaleOut
                | Self::RollbackDeploy
                | Self::FailoverDatabase
                | Self::EnableSafeMode
                | Self::RollbackModel
        )
    }
}

/// One configuration value that changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigChange {
    /// Simulated second of the change.
    pub tick: u64,
    /// The service whose configuration changed.
    pub service: String,
    /// The setting, as in `pool_size` or `circuit_breaker.payment-gateway`.
    pub key: String,
    /// Value before.
    pub from: String,
    /// Value after.
    pub to: String,
    /// The action that made the change, or `fault` for a release that
    /// shipped one.
    pub cause: String,
}

impl ConfigChange {
    /// The change as the config history publishes it.
    pub fn event(&self) -> crate::protocol::ConfigChangeEvent {
        crate::protocol::ConfigChangeEvent {
            service: self.service.clone(),
            key: self.key.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
            cause: self.cause.clone(),
        }
    }
}

/// What applying an action did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Applied {
    /// The action.
    pub remediation: Remediation,
    /// The configuration it changed.
    pub changes: Vec<ConfigChange>,
    /// Side effects people should know about.
    pub side_effects: Vec<String>,
}

/// An action that could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ActionError(pub String);

impl Estate {
    /// Applies `remediation` now, recording its configuration changes.
    pub fn apply(&mut self, remediation: &Remediation) -> Result<Applied, ActionError> {
        let index = self
            .topology
            .index(&remediation.target)
            .ok_or_else(|| ActionError(format!("`{}` is not a service of the estate", remediation.target)))?;
        let spec = self.topology.spec(index).clone();
        if let Some(reason) = remediation.kind.refusal(&spec) {
            return Err(ActionError(reason));
        }
        let kind = remediation.kind;
        let cause = kind.as_str();
        let before = self.config_log.len();
        let side_effects = match kind {
            ActionKind::ScaleConnectionPool
            | ActionKind::RaiseTimeout
            | ActionKind::EnableCircuitBreaker
            | ActionKind::ScaleOut => self.apply_capacity(kind, index, &spec, cause),
            ActionKind::RestartInstances
            | ActionKind::RestartCache
            | ActionKind::RestartAgent
            | ActionKind::RollbackDeploy
            | ActionKind::FailoverDatabase => self.apply_lifecycle(kind, index, &spec, cause)?,
            ActionKind::FlushCache | ActionKind::RenewCertificate | ActionKind::FreeDisk => {
                self.apply_upkeep(kind, index, cause)
            }
            ActionKind::EnableSafeMode | ActionKind::RollbackModel | ActionKind::TriggerRetraining => {
                self.apply_model(kind, index, &spec, cause)?
            }
        };
        Ok(Applied {
            remediation: remediation.clone(),
            changes: self.config_log[before..].to_vec(),
            side_effects,
        })
    }

    /// Actions that change how much a service can take or how it calls its
    /// dependencies; returns their side effects.
    fn apply_capacity(&mut self, kind: ActionKind, index: usize, spec: &ServiceSpec, cause: &str) -> Vec<String> {
        let mut side_effects = Vec::new();
        match kind {
            ActionKind::ScaleConnectionPool => {
                let pool = self.services[index].config.pool_size;
                self.set(index, "pool_size", pool, pool * 2, cause, |c| &mut c.pool_size);
            }
            ActionKind::RaiseTimeout => {
                let timeout = self.services[index].config.timeout_ms;
                self.set(index, "timeout_ms", timeout, timeout * 2.5, cause, |c| {
                    &mut c.timeout_ms
                });
                side_effects.push("slow calls now wait longer before failing".into());
            }
            ActionKind::EnableCircuitBreaker => {
                for (edge_index, edge) in spec.edges.iter().enumerate() {
                    let key = format!("circuit_breaker.{}", self.topology.spec(edge.to).name);
                    self.set(index, &key, false, true, cause, |c| &mut c.breakers[edge_index]);
                }
                side_effects.push("calls to a failing dependency now fail fast".into());
            }
            ActionKind::ScaleOut => {
                // Like an autoscaler: enough instances for 50% CPU, and
                // triple when saturated, since a pegged CPU hides demand.
                let instances = self.services[index].config.instances;
                let recent = self.services[index].telemetry.recent(super::Metric::Cpu, 3);
                let cpu = recent.iter().sum::<f64>() / recent.len().max(1) as f64;
                let factor = if cpu >= 0.9 { 3.0 } else { (cpu / 0.5).ceil().max(1.0) };
                let wanted = ((f64::from(instances) * factor) as u32).clamp(instances + 1, instances * 4);
                self.set(index, "instances", instances, wanted, cause, |c| &mut c.instances);
            }
            _ => unreachable!("{} is not a capacity action", kind.as_str()),
        }
        side_effects
    }

    /// Actions that restart, redeploy or move a service; returns their side
    /// effects, or why there is nothing to roll back to.
    fn apply_lifecycle(
        &mut self,
        kind: ActionKind,
        index: usize,
        spec: &ServiceSpec,
        cause: &str,
    ) -> Result<Vec<String>, ActionError> {
        let mut side_effects = Vec::new();
        match kind {
            ActionKind::RestartInstances => {
                self.restart(index, cause);
                side_effects.push(format!(
                    "restarting {} instance(s) dropped in-flight requests",
                    spec.instances
                ));
            }
            ActionKind::RestartCache => {
                self.restart(index, cause);
                self.services[index].hit_rate = 0.0;
                side_effects.push("the cache restarted cold: reads fall through until it warms".into());
            }
            ActionKind::RestartAgent => {
                self.restart(index, cause);
            }
            ActionKind::RollbackDeploy => {
                let deploy = self.services[index].config.deploy;
                if deploy <= 1 {
                    return Err(ActionError(format!(
                        "`{}` has no earlier deploy to roll back to",
                        spec.name
                    )));
                }
                self.set(index, "deploy", deploy, deploy - 1, cause, |c| &mut c.deploy);
                self.rolling_restart(index);
                side_effects.push("a rolling restart briefly dropped some requests".into());
            }
            ActionKind::FailoverDatabase => {
                self.set(index, "failed_over", false, true, cause, |c| &mut c.failed_over);
                side_effects.push("writes failed for a few seconds during promotion".into());
                self.services[index].transient_errors = self.services[index].transient_errors.max(0.15);
            }
            _ => unreachable!("{} is not a lifecycle action", kind.as_str()),
        }
        Ok(side_effects)
    }

    /// Actions that reset a slow resource (cache contents, certificate,
    /// disk); returns their side effects.
    fn apply_upkeep(&mut self, kind: ActionKind, index: usize, cause: &str) -> Vec<String> {
        let mut side_effects = Vec::new();
        match kind {
            ActionKind::FlushCache => {
                self.services[index].hit_rate = 0.0;
                side_effects.push("the cache is cold: reads fall through until it warms".into());
            }
            ActionKind::RenewCertificate => {
                let serial = self.services[index].config.cert_serial;
                self.set(index, "cert_serial", serial, serial + 1, cause, |c| &mut c.cert_serial);
                self.services[index].cert_days = 90.0;
            }
            ActionKind::FreeDisk => {
                let cleanups = self.services[index].config.disk_cleanups;
                self.set(index, "disk_cleanups", cleanups, cleanups + 1, cause, |c| {
                    &mut c.disk_cleanups
                });
                self.services[index].disk = 0.5;
            }
            _ => unreachable!("{} is not an upkeep action", kind.as_str()),
        }
        side_effects
    }

    /// Actions on a model's serving path or its registry; returns their side
    /// effects, or why no earlier version is good enough to roll back to.
    fn apply_model(
        &mut self,
        kind: ActionKind,
        index: usize,
        spec: &ServiceSpec,
        cause: &str,
    ) -> Result<Vec<String>, ActionError> {
        let mut side_effects = Vec::new();
        match kind {
            ActionKind::EnableSafeMode => {
                self.set(index, "safe_mode", false, true, cause, |c| &mut c.safe_mode);
                side_effects.push("decisions come from the rule-based fallback, a little less accurate".into());
            }
            ActionKind::RollbackModel => {
                let version = self.services[index].config.model_version;
                let Some(target) = super::registry::rollback_target(self.model_registry(index), version) else {
                    return Err(ActionError(format!(
                        "`{}` has no earlier model version that was good (accuracy ≥ {})",
                        spec.name,
                        super::registry::GOOD_ACCURACY
                    )));
                };
                self.set(index, "model_version", version, target, cause, |c| &mut c.model_version);
                side_effects.push(format!("serving model v{target} again (v{version} withdrawn)"));
            }
            ActionKind::TriggerRetraining => {
                let generation = self.services[index].config.training_generation;
                self.set(index, "training_generation", generation, generation + 1, cause, |c| {
                    &mut c.training_generation
                });
                self.add_model_version(index, super::ModelOrigin::Retraining, cause);
                let version = self.services[index].config.model_version;
                side_effects.push(format!(
                    "model v{version} was trained on current data and deployed; drift baseline reset"
                ));
            }
            _ => unreachable!("{} is not a model action", kind.as_str()),
        }
        Ok(side_effects)
    }

    /// Takes back a reversible action's configuration changes, newest
    /// first. Irreversible actions (restarts, renewals) stay done.
    pub fn undo(&mut self, applied: &Applied) -> Vec<ConfigChange> {
        if !applied.remediation.kind.reversible() {
            return Vec::new();
        }
        let Some(index) = self.topology.index(&applied.remediation.target) else {
            return Vec::new();
        };
        let before = self.config_log.len();
        let cause = format!("rollback of {}", applied.remediation.kind.as_str());
        for change in applied.changes.iter().rev() {
            self.restore(index, change, &cause);
        }
        if applied.remediation.kind == ActionKind::RollbackDeploy {
            self.rolling_restart(index);
        }
        self.config_log[before..].to_vec()
    }

    fn restart(&mut self, index: usize, cause: &str) {
        let generation = self.services[index].config.restart_generation;
        self.set(index, "restart_generation", generation, generation + 1, cause, |c| {
            &mut c.restart_generation
        });
        let state = &mut self.services[index];
        state.memory = self.topology.spec(index).memory;
        state.restart_ticks.push_back(self.tick);
        // Requests in flight are dropped; a pipeline agent serves none.
        let dropped = if self.topology.spec(index).kind == super::ServiceKind::Agent {
            0.0
        } else {
            0.3
        };
        state.transient_errors = state.transient_errors.max(dropped);
    }

    fn rolling_restart(&mut self, index: usize) {
        let instances = self.services[index].config.instances;
        let state = &mut self.services[index];
        state.memory = self.topology.spec(index).memory;
        for _ in 0..instances {
            state.restart_ticks.push_back(self.tick);
        }
        state.transient_errors = state.transient_errors.max(0.03);
    }
}

impl crate::observe::Remediable for Estate {
    fn apply(&mut self, remediation: &Remediation) -> Result<Applied, ActionError> {
        Estate::apply(self, remediation)
    }

    fn undo(&mut self, applied: &Applied) -> Vec<ConfigChange> {
        Estate::undo(self, applied)
    }
}
