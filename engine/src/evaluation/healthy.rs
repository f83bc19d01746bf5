//! The healthy estate: runs with no fault at all, to count false alarms.
//!
//! Each run is a fresh estate, from its own seed and at a random hour of
//! the simulated day (traffic follows the day), watched for ten simulated
//! minutes as a sentinel would: detection runs every [`CHECK_EVERY`]
//! seconds over the whole estate, and any anomaly, monitor breach or
//! warning it finds would open an incident. A run with one is a false
//! incident.
//!
//! Detection is the part that can cry wolf: once an incident is open on a
//! healthy estate (a person reports one), the swarm finds nothing and takes
//! no action; the evaluation counts that too, through the engine.

use std::sync::Arc;

use rand::{Rng, SeedableRng, rngs::SmallRng};
use serde::Serialize;

use crate::{
    agents::DetectionAgent,
    twin::{Estate, Topology},
};

/// How often the sentinel looks, in simulated seconds.
pub const CHECK_EVERY: u64 = 10;
/// The first look: the baselines need readings to learn from.
const FIRST_CHECK: u64 = 30;
/// False alarms described in the report, at most.
const EXAMPLES: usize = 5;

/// What watching healthy estates found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthyEvaluation {
    /// Runs, each a fresh estate with no fault.
    pub runs: usize,
    /// Simulated seconds each run was watched.
    pub seconds: u64,
    /// Checks made in all.
    pub checks: usize,
    /// Runs in which some check found something: false incidents.
    pub false_incidents: usize,
    /// Checks that found something.
    pub false_alarms: usize,
    /// The first few, as `run 3 at 240 s: order-service latency_p99_ms 4.2σ`.
    pub examples: Vec<String>,
    /// Incidents reported on a healthy estate and taken through the swarm.
    pub reported: usize,
    /// Actions those incidents ran: any is one too many.
    pub actions: usize,
}

/// Watches `runs` healthy estates of `topology` for `seconds` each with
/// `detection`, from `seed`. The incidents reported on healthy estates are
/// counted by the caller (`reported`, `actions` are left at zero).
pub fn watch_healthy(
    detection: &DetectionAgent,
    topology: &Arc<Topology>,
    runs: usize,
    seconds: u64,
    seed: u64,
) -> HealthyEvaluation {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut found = HealthyEvaluation {
        runs,
        seconds,
        checks: 0,
        false_incidents: 0,
        false_alarms: 0,
        examples: Vec::new(),
        reported: 0,
        actions: 0,
    };
    for run in 0..runs {
        let hour = rng.random_range(0..24);
        let mut estate = Estate::new(Arc::clone(topology), rng.random(), f64::from(hour) * 3600.0);
        let mut alarmed = false;
        let mut at = 0;
        estate.advance(FIRST_CHECK);
        while at + FIRST_CHECK <= seconds {
            found.checks += 1;
            let detection = detection.detect(&estate);
            if !detection.anomalies.is_empty() || !detection.breaches.is_empty() || !detection.warnings.is_empty() {
                alarmed = true;
                found.false_alarms += 1;
                if found.examples.len() < EXAMPLES {
                    found.examples.push(describe(run, at + FIRST_CHECK, hour, &detection));
                }
            }
            estate.advance(CHECK_EVERY);
            at += CHECK_EVERY;
        }
        found.false_incidents += usize::from(alarmed);
    }
    found
}

/// One false alarm, for the report.
fn describe(run: usize, at: u64, hour: u32, detection: &crate::agents::detection::Detection) -> String {
    let breach = detection.breaches.first().or(detection.warnings.first());
    let what = match (detection.anomalies.first(), breach) {
        (Some(a), _) => format!("{} {} {}σ", a.service, a.metric.as_str(), a.sigma),
        (None, Some(b)) => format!("{} {} ({})", b.service, b.monitor, b.detail),
        (None, None) => unreachable!("only alarms are described"),
    };
    format!("run {run} (from {hour}:00) at {at} s: {what}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::{fixtures, monitors, signatures};

    fn detection() -> DetectionAgent {
        DetectionAgent {
            signatures: signatures().unwrap(),
            monitors: monitors().unwrap(),
            memory: Default::default(),
        }
    }

    #[test]
    fn healthy_estates_raise_no_alarm() {
        let topology = Arc::new(Topology::embedded().unwrap());
        let found = watch_healthy(&detection(), &topology, 5, 600, 2);
        assert_eq!((found.runs, found.checks), (5, 5 * 58));
        assert_eq!(found.false_incidents, 0, "{:?}", found.examples);
    }

    /// The check can fail: the same sentinel on an estate with a fault
    /// raises the alarm.
    #[test]
    fn the_same_check_alarms_on_a_broken_estate() {
        let estate = fixtures::broken(crate::twin::FaultKind::MemoryLeak, "user-service", 30, 3);
        let found = detection().detect(&estate);
        assert!(!found.anomalies.is_empty());
    }
}
