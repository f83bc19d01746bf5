//! Faults: what can go wrong in the estate, and how each one ends.
//!
//! A fault is a condition on one service. Its physics (what it does to the
//! telemetry) lives in the estate's tick; this module says where a fault can
//! happen and what ends it. Some faults are *bound* to a piece of
//! configuration (a deploy, a cache's process, a certificate) and end when
//! that changes; the others never end by themselves, and only configuration
//! (a bigger pool, more instances, a circuit breaker, a failover) takes away
//! their effect.

use serde::{Deserialize, Serialize};

use super::topology::{ServiceKind, ServiceSpec};
pub use crate::protocol::FaultKind;

/// The configuration a fault is bound to: when it changes, the fault ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    Deploy,
    RestartGeneration,
    CertSerial,
    DiskCleanups,
    ModelVersion,
    TrainingGeneration,
}

impl FaultKind {
    /// Whether this fault can happen on `spec`.
    pub fn can_hit(self, spec: &ServiceSpec) -> bool {
        use ServiceKind::*;
        let kind = spec.kind;
        match self {
            Self::ConnectionPoolExhaustion => kind == Database,
            Self::MemoryLeak | Self::CrashLoop => matches!(kind, Gateway | Service | Model | Queue),
            Self::CpuSaturation => matches!(kind, Gateway | Service | Model),
            Self::SlowQuery => kind == Database,
            Self::DependencyTimeout => kind == External,
            Self::NetworkPartition => kind == Database && spec.replica.is_some(),
            Self::DiskExhaustion => kind.is_stateful(),
            Self::CertificateExpiry => kind.has_certificate(),
            Self::CacheFailure => kind == Cache,
            Self::ModelLatency | Self::ModelAccuracyDrop | Self::DataDrift => kind == Model,
            Self::AgentHeartbeatLoss => kind == Agent,
        }
    }

    /// What ends the fault, if a configuration change does.
    pub fn binding(self) -> Option<Binding> {
        match self {
            Self::MemoryLeak | Self::CrashLoop | Self::SlowQuery => Some(Binding::Deploy),
            Self::CacheFailure | Self::AgentHeartbeatLoss => Some(Binding::RestartGeneration),
            Self::CertificateExpiry => Some(Binding::CertSerial),
            Self::DiskExhaustion => Some(Binding::DiskCleanups),
            Self::ModelAccuracyDrop => Some(Binding::ModelVersion),
            Self::DataDrift => Some(Binding::TrainingGeneration),
            Self::ConnectionPoolExhaustion
            | Self::CpuSaturation
            | Self::DependencyTimeout
            | Self::NetworkPartition
            | Self::ModelLatency => None,
        }
    }

    /// Whether the fault ships with a deploy (so injecting it bumps the
    /// target's deploy or model version, and rolling back removes it).
    pub fn ships_with_release(self) -> bool {
        matches!(
            self,
            Self::MemoryLeak | Self::CrashLoop | Self::SlowQuery | Self::ModelAccuracyDrop
        )
    }
}

/// A fault as a scenario file writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// What goes wrong.
    pub kind: FaultKind,
    /// The service it happens to.
    pub target: String,
    /// How bad, in (0, 1].
    #[serde(default = "full")]
    pub intensity: f64,
    /// Seconds over which it ramps up to full intensity.
    #[serde(default)]
    pub onset_seconds: f64,
    /// Seconds it had already been going when the incident opened.
    #[serde(default = "default_lead")]
    pub lead_seconds: f64,
    /// Seconds after it began (lead included) that it ends by itself, for
    /// a transient fault such as seed 003's latency spike; none lasts until
    /// a fix ends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
}

fn full() -> f64 {
    1.0
}

fn default_lead() -> f64 {
    30.0
}

impl FaultSpec {
    /// `kind` at `target` as a scenario file gets it by default: at full
    /// strength, at once, going for 30 s when the incident opens, until a
    /// fix ends it. Change what differs with struct update syntax.
    pub fn new(kind: FaultKind, target: &str) -> Self {
        Self {
            kind,
            target: target.to_owned(),
            intensity: full(),
            onset_seconds: 0.0,
            lead_seconds: default_lead(),
            duration_seconds: None,
        }
    }

    /// Checks the figures and that the target can suffer this fault.
    pub fn validate(&self, target: Option<&ServiceSpec>) -> Result<(), String> {
        let Some(spec) = target else {
            return Err(format!("fault target `{}` is not a service of the estate", self.target));
        };
        if !self.kind.can_hit(spec) {
            return Err(format!(
                "a {} cannot happen on `{}` (a {})",
                self.kind.label(),
                spec.name,
                spec.kind.as_str()
            ));
        }
        if !(self.intensity > 0.0 && self.intensity <= 1.0) {
            return Err(format!("intensity must be in (0, 1], not {}", self.intensity));
        }
        if !(0.0..=3600.0).contains(&self.onset_seconds) || !(0.0..=3600.0).contains(&self.lead_seconds) {
            return Err("onset_seconds and lead_seconds must be in [0, 3600]".into());
        }
        if let Some(duration) = self.duration_seconds
            && !(duration > self.lead_seconds && duration <= 86_400.0)
        {
            return Err(format!(
                "duration_seconds must be more than lead_seconds ({}) and at most 86400, not {duration}",
                self.lead_seconds
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::twin::topology::Topology;

    #[test]
    fn every_fault_kind_has_somewhere_to_happen() {
        let topology = Topology::embedded().unwrap();
        for kind in FaultKind::ALL {
            assert!(topology.services.iter().any(|s| kind.can_hit(s)), "{kind:?}");
        }
    }

    #[test]
    fn a_fault_on_the_wrong_kind_of_service_is_refused() {
        let topology = Topology::embedded().unwrap();
        let spec = FaultSpec::new(FaultKind::CacheFailure, "order-service");
        let err = spec
            .validate(topology.index("order-service").map(|i| topology.spec(i)))
            .unwrap_err();
        assert!(err.contains("cache failure cannot happen on `order-service`"), "{err}");
        assert!(spec.validate(None).unwrap_err().contains("not a service"));
    }
}
