//! Faint evidence, accumulated and corroborated: which series have moved
//! the harmful way by too little to see in any window, for long enough to
//! count (their CUSUM, [`crate::twin::cusum`]).
//!
//! One series alone must accumulate [`ALONE`]; a series backed by a related
//! one (another metric of the same service, or of a service it calls or
//! that calls it, with as much evidence) needs only [`CORROBORATED`].
//!
//! The thresholds were set from healthy estates: over 300 of them watched
//! for ten simulated minutes each at random hours of the day (seeds 1 to
//! 3), the most any series accumulated was 17.7 (a queue's depth), then
//! 13.5 (a model's input drift score), and no series ever counted as
//! anomalous by this rule.

use crate::{observe::Observed, twin::Metric};

/// Evidence a series needs alone to count as anomalous, in sigmas beyond
/// the allowance: a two-sigma shift reaches it in about 20 s, a one-sigma
/// shift in a few minutes.
pub const ALONE: f64 = 24.0;
/// Evidence a series needs when a related series has as much.
pub const CORROBORATED: f64 = 16.0;

/// The metrics of `service` with enough evidence accumulated to count as
/// anomalous, alone or corroborated.
pub fn accumulated(estate: &dyn Observed, service: usize) -> Vec<Metric> {
    let topology = estate.topology();
    let spec = topology.spec(service);
    let strong = |index: usize| {
        let telemetry = estate.telemetry(index);
        let spec = topology.spec(index);
        (Metric::ALL.into_iter())
            .filter(move |m| m.accumulates() && m.applies_to(spec))
            .map(move |m| (m, telemetry.accumulated(m)))
            .filter(|&(_, evidence)| evidence >= CORROBORATED)
    };
    let own: Vec<(Metric, f64)> = strong(service).collect();
    if own.is_empty() {
        return Vec::new();
    }
    let mut neighbours = (spec.edges.iter().map(|e| e.to)).chain(topology.callers(service));
    let backed_by_a_neighbour = neighbours.any(|n| strong(n).next().is_some());
    (own.iter())
        .filter(|&&(metric, evidence)| {
            evidence >= ALONE || backed_by_a_neighbour || own.iter().any(|&(other, _)| other != metric)
        })
        .map(|&(metric, _)| metric)
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{
        prometheus::View,
        twin::{ServiceKind, Topology, cusum::Cusum, telemetry::Telemetry},
    };

    /// A recorded estate where each `(service, metric, evidence)` has that
    /// much evidence accumulated the harmful way, and nothing else has any.
    fn estate(evidence: &[(&str, Metric, f64)]) -> View {
        let topology = Arc::new(Topology::embedded().unwrap());
        let telemetry = (0..topology.len())
            .map(|i| {
                let mut telemetry = Telemetry::new();
                for &(service, metric, amount) in evidence {
                    if topology.spec(i).name == service {
                        telemetry.cusums[metric as usize] = Cusum::with_evidence(metric, amount);
                    }
                }
                telemetry
            })
            .collect();
        View::recorded(topology, telemetry, chrono::Utc::now())
    }

    fn found(estate: &View, service: &str) -> Vec<Metric> {
        accumulated(estate, estate.topology().index(service).unwrap())
    }

    #[test]
    fn one_series_counts_alone_only_past_the_higher_threshold() {
        let below = estate(&[("ml-model-service", Metric::ModelAccuracy, ALONE - 1.0)]);
        assert!(found(&below, "ml-model-service").is_empty());
        let past = estate(&[("ml-model-service", Metric::ModelAccuracy, ALONE)]);
        assert_eq!(found(&past, "ml-model-service"), [Metric::ModelAccuracy]);
    }

    #[test]
    fn two_metrics_of_one_service_back_each_other() {
        let both = estate(&[
            ("ml-model-service", Metric::ModelAccuracy, CORROBORATED),
            ("ml-model-service", Metric::FeaturePsi, CORROBORATED),
        ]);
        assert_eq!(
            found(&both, "ml-model-service"),
            [Metric::ModelAccuracy, Metric::FeaturePsi]
        );
        let weak_backer = estate(&[
            ("ml-model-service", Metric::ModelAccuracy, CORROBORATED),
            ("ml-model-service", Metric::FeaturePsi, CORROBORATED - 1.0),
        ]);
        assert!(found(&weak_backer, "ml-model-service").is_empty());
    }

    #[test]
    fn a_neighbour_backs_a_series_and_a_stranger_does_not() {
        let topology = Topology::embedded().unwrap();
        let queue = topology.index("message-queue").expect("the estate has a queue");
        let neighbour = |a: usize, b: usize| {
            topology.spec(a).edges.iter().any(|e| e.to == b) || topology.spec(b).edges.iter().any(|e| e.to == a)
        };
        let caller = topology.callers(queue).next().expect("the queue has a caller");
        let stranger = (0..topology.len())
            .find(|&s| s != queue && !neighbour(s, queue) && topology.spec(s).kind != ServiceKind::External)
            .expect("a service that is no neighbour of the queue");
        let (caller, stranger) = (
            topology.spec(caller).name.as_str(),
            topology.spec(stranger).name.as_str(),
        );
        let backed = estate(&[
            ("message-queue", Metric::QueueDepth, CORROBORATED),
            (caller, Metric::ErrorRate, CORROBORATED),
        ]);
        assert_eq!(found(&backed, "message-queue"), [Metric::QueueDepth]);
        assert_eq!(found(&backed, caller), [Metric::ErrorRate]);
        let unrelated = estate(&[
            ("message-queue", Metric::QueueDepth, CORROBORATED),
            (stranger, Metric::ErrorRate, CORROBORATED),
        ]);
        assert!(
            found(&unrelated, "message-queue").is_empty(),
            "{stranger} is no neighbour"
        );
    }

    #[test]
    fn what_does_not_accumulate_is_never_evidence() {
        let latency = estate(&[("api-gateway", Metric::LatencyP99, 2.0 * ALONE)]);
        assert!(
            found(&latency, "api-gateway").is_empty(),
            "latency follows the day's traffic"
        );
    }
}
