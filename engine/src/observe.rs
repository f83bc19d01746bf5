//! The estate as the agents see it: a boundary.
//!
//! Detection, diagnosis, prediction, the vote and verification read an
//! estate only through [`Observed`]: its services and call graph, each
//! service's window of measured samples with their baselines, and its
//! health against its objectives. They never see how the figures came to
//! be, nor what is wrong. The twin implements it (`twin::Estate`), and so
//! does an estate read by PromQL from a real Prometheus
//! (`prometheus::View`).
//!
//! Resolution changes the embedded twin only through [`Remediable`]: apply
//! a remediation, undo one. A watched estate is changed through an
//! actuator instead (`crate::actuator`), or not at all (advisory).

use crate::{
    protocol::{HealthState, Remediation},
    twin::{
        ConfigChange,
        action::{ActionError, Applied},
        health::Missed,
        telemetry::Telemetry,
        topology::Topology,
    },
};

/// What the agents may observe of an estate.
pub trait Observed {
    /// The services and their call graph.
    fn topology(&self) -> &Topology;
    /// What monitoring recorded of service `index`: its recent samples and
    /// the baselines they are judged against.
    fn telemetry(&self, index: usize) -> &Telemetry;
    /// How service `index` does against its objectives over its last
    /// `window` samples.
    fn health(&self, index: usize, window: usize) -> HealthState;
    /// Whether service `index` takes traffic (a database failed over to
    /// its replica does not).
    fn in_rotation(&self, index: usize) -> bool;
    /// Every objective service `index` misses over the last `window`
    /// samples, and every slow resource of it heading for trouble: none
    /// for a third party's or one out of rotation, whose misses are not
    /// ours to mend.
    fn missed_by(&self, index: usize, window: usize) -> Vec<Missed> {
        let spec = self.topology().spec(index);
        if !spec.owned || !self.in_rotation(index) {
            return Vec::new();
        }
        crate::twin::health::missed_by(spec, self.telemetry(index), window)
    }
    /// Every objective the estate's own services miss over the last
    /// `window` samples (empty when all are met).
    fn missed(&self, window: usize) -> Vec<Missed> {
        (0..self.topology().len())
            .flat_map(|i| self.missed_by(i, window))
            .collect()
    }
    /// The same, as `service: what`.
    fn violations(&self, window: usize) -> Vec<String> {
        self.missed(window).iter().map(Missed::to_string).collect()
    }
}

/// What resolution may do to an estate.
pub trait Remediable {
    /// Carries out `remediation` now; what it changed, to undo it by.
    fn apply(&mut self, remediation: &Remediation) -> Result<Applied, ActionError>;
    /// Takes back what `applied` changed, as far as it can be (the
    /// changes undone; none when it cannot be undone).
    fn undo(&mut self, applied: &Applied) -> Vec<ConfigChange>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        agents::{DetectionAgent, fixtures},
        twin::FaultKind,
    };

    /// An estate that is only recorded figures, with no twin behind it:
    /// what a Prometheus estate will hand the agents.
    struct Recorded {
        topology: Topology,
        telemetry: Vec<Telemetry>,
        health: Vec<HealthState>,
        in_rotation: Vec<bool>,
    }

    impl Recorded {
        fn of(estate: &dyn Observed, window: usize) -> Self {
            let topology = estate.topology().clone();
            let services = 0..topology.len();
            Self {
                telemetry: services.clone().map(|i| estate.telemetry(i).clone()).collect(),
                health: services.clone().map(|i| estate.health(i, window)).collect(),
                in_rotation: services.map(|i| estate.in_rotation(i)).collect(),
                topology,
            }
        }
    }

    impl Observed for Recorded {
        fn topology(&self) -> &Topology {
            &self.topology
        }

        fn telemetry(&self, index: usize) -> &Telemetry {
            &self.telemetry[index]
        }

        fn health(&self, index: usize, _window: usize) -> HealthState {
            self.health[index]
        }

        fn in_rotation(&self, index: usize) -> bool {
            self.in_rotation[index]
        }
    }

    #[test]
    fn detection_finds_the_same_on_recorded_figures_as_on_the_twin() {
        let agent = DetectionAgent {
            signatures: crate::agents::signatures().unwrap(),
            monitors: crate::agents::monitors().unwrap(),
            memory: Default::default(),
        };
        let twin = fixtures::broken(FaultKind::ConnectionPoolExhaustion, "postgres-primary", 3, 2);
        let recorded = Recorded::of(&twin, 3);
        let (on_twin, on_record) = (agent.detect(&twin), agent.detect(&recorded));
        assert!(!on_twin.anomalies.is_empty(), "the fault shows");
        assert_eq!(on_twin, on_record);
    }
}
