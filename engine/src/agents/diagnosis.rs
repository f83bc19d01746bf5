//! Diagnosis: ranked root-cause hypotheses with their evidence, and the
//! blast radius on the dependency graph.
//!
//! A hypothesis is a fault kind at a service. It scores by two things: how
//! well the service's own telemetry matches the fault's signature, and how
//! much of the anomaly it explains through the graph (its callers suffer
//! when it does; a cache's failure also loads its fallback). A root cause
//! explains its symptoms; a symptom does not explain its root.

pub use crate::protocol::{Affected, Diagnosis, Hypothesis, MetricEvidence};

use super::{Agent, Case, Judgement, Plan, Report, Signature, deviations, round2};
use crate::observe::Observed;
use crate::{
    catalog::RootCause,
    protocol::{ActionDetails, AgentType, FixTrackRecord, Recall},
    twin::{ServiceKind, Topology},
};

/// Hypotheses below this score are not worth acting on.
const MIN_SCORE: f64 = 0.2;
/// Hypotheses kept.
const KEEP: usize = 3;

/// The diagnosis agent.
pub struct DiagnosisAgent {
    /// The pattern library.
    pub signatures: Vec<Signature>,
}

/// Whether trouble at `root` can show up at `other`: `other` calls it
/// (directly or not), or `root` is a cache whose misses load `other`'s
/// path.
fn explains(topology: &Topology, root: usize, other: usize) -> bool {
    if other == root || topology.reaches(other, root) {
        return true;
    }
    let spec = topology.spec(root);
    spec.kind == ServiceKind::Cache
        && spec
            .fallback
            .is_some_and(|fallback| other == fallback || topology.reaches(other, fallback))
}

impl DiagnosisAgent {
    /// Ranks root-cause hypotheses for the `anomalous` services (each with
    /// its anomaly `strength`), weighing what `recall` holds of similar
    /// past incidents.
    pub fn diagnose(
        &self,
        estate: &dyn Observed,
        reported: &[String],
        anomalous: &[String],
        strength: &[f64],
        recall: &Recall,
    ) -> Diagnosis {
        let topology = estate.topology();
        let anomalous: Vec<(usize, f64)> = anomalous
            .iter()
            .zip(strength)
            .filter_map(|(name, s)| topology.index(name).map(|i| (i, *s)))
            .collect();
        let mut hypotheses = self.candidates(estate, reported, &anomalous);
        weigh_by_memory(&mut hypotheses, recall);
        let (hypotheses, skipped) = rank(hypotheses);
        let blast_radius = blast_radius(estate, hypotheses.first());
        Diagnosis {
            hypotheses,
            blast_radius,
            skipped,
            similar_incidents: recall.similar.len(),
            anomalous: anomalous
                .iter()
                .map(|&(index, _)| topology.spec(index).name.clone())
                .collect(),
        }
    }

    /// Every (service, fault) hypothesis worth acting on among the
    /// `anomalous` services (index, strength), unranked and before memory.
    fn candidates(&self, estate: &dyn Observed, reported: &[String], anomalous: &[(usize, f64)]) -> Vec<Hypothesis> {
        let topology = estate.topology();
        let mut hypotheses = Vec::new();
        for &(candidate, _) in anomalous {
            let z = deviations(estate, candidate);
            let coverage = coverage(topology, candidate, anomalous);
            for signature in &self.signatures {
                let (matched, evidence) = signature.score(estate, candidate, &z);
                let score = matched * (0.35 + 0.65 * coverage);
                if score < MIN_SCORE {
                    continue;
                }
                hypotheses.push(Hypothesis {
                    root: RootCause {
                        service: topology.spec(candidate).name.clone(),
                        fault: signature.fault,
                    },
                    score: round2(score),
                    confidence: 0.0,
                    signature_match: round2(matched),
                    coverage: round2(coverage),
                    evidence: evidence
                        .into_iter()
                        .map(|(metric, sigma)| MetricEvidence {
                            metric,
                            sigma: round2(sigma),
                        })
                        .collect(),
                    path: reported_path(topology, reported, candidate),
                    memory: None,
                });
            }
        }
        hypotheses
    }
}

/// The share of the anomaly's strength (over the `anomalous` services) that
/// trouble at `candidate` explains, 0..=1.
fn coverage(topology: &Topology, candidate: usize, anomalous: &[(usize, f64)]) -> f64 {
    let total: f64 = anomalous.iter().map(|(_, s)| s).sum();
    let explained: f64 = anomalous
        .iter()
        .filter(|(other, _)| explains(topology, candidate, *other))
        .map(|(_, s)| s)
        .sum();
    if total > 0.0 { explained / total } else { 0.0 }
}

/// The shortest call path, by service name, from a `reported` service to
/// `candidate` (empty when none reaches it).
fn reported_path(topology: &Topology, reported: &[String], candidate: usize) -> Vec<String> {
    reported
        .iter()
        .filter_map(|r| topology.index(r))
        .filter_map(|r| topology.path(r, candidate))
        .min_by_key(Vec::len)
        .map(|p| p.iter().map(|&i| topology.spec(i).name.clone()).collect())
        .unwrap_or_default()
}

/// Attaches each hypothesis's fix track record from `recall`, and scales its
/// score by it.
fn weigh_by_memory(hypotheses: &mut [Hypothesis], recall: &Recall) {
    // A fix's measured success on similar incidents scales its hypothesis
    // between ½× (never healed) and 1½× (always healed).
    for h in hypotheses {
        h.memory = recall.record_for(&h.root.service, h.root.fault.as_str()).cloned();
        if let Some(record) = &h.memory {
            h.score = round2(h.score * (0.5 + record.expected_success()));
        }
    }
}

/// The best [`KEEP`] hypotheses, best first and with their confidence, and
/// those skipped as dead ends (fixes that only ever failed).
fn rank(hypotheses: Vec<Hypothesis>) -> (Vec<Hypothesis>, Vec<Hypothesis>) {
    let (skipped, mut hypotheses): (Vec<Hypothesis>, Vec<Hypothesis>) = hypotheses
        .into_iter()
        .partition(|h| h.memory.as_ref().is_some_and(FixTrackRecord::dead_end));
    hypotheses.sort_by(|a, b| b.score.total_cmp(&a.score));
    hypotheses.truncate(KEEP);
    let sum: f64 = hypotheses.iter().map(|h| h.score).sum();
    for h in &mut hypotheses {
        // A strong match that stands alone is near-certain; close
        // runners-up share the belief.
        h.confidence = round2((h.score * h.score / sum.max(f64::EPSILON)).min(0.99));
    }
    (hypotheses, skipped)
}

/// Every service that trouble at the `top` hypothesis's root can reach, with
/// its health (empty without a hypothesis).
fn blast_radius(estate: &dyn Observed, top: Option<&Hypothesis>) -> Vec<Affected> {
    let topology = estate.topology();
    top.and_then(|h| topology.index(&h.root.service))
        .map(|root| {
            (0..topology.len())
                .filter(|&i| explains(topology, root, i))
                .map(|i| Affected {
                    service: topology.spec(i).name.clone(),
                    health: estate.health(i, 3),
                    root: i == root,
                })
                .collect()
        })
        .unwrap_or_default()
}

impl Agent for DiagnosisAgent {
    fn kind(&self) -> AgentType {
        AgentType::Diagnosis
    }

    fn work(&self, case: &mut Case, estate: &dyn Observed) -> Report {
        let recall = case.detection.as_ref().map(|d| d.recall.clone()).unwrap_or_default();
        let (anomalous, strength) = case
            .detection
            .as_ref()
            .map(|d| {
                let strength = d
                    .anomalous_services
                    .iter()
                    .map(|s| {
                        d.anomalies
                            .iter()
                            .filter(|a| &a.service == s)
                            .map(|a| a.sigma.min(12.0))
                            .fold(0.0, f64::max)
                    })
                    .collect::<Vec<_>>();
                (d.anomalous_services.clone(), strength)
            })
            .unwrap_or_default();
        let diagnosis = self.diagnose(estate, &case.incident.affected_services, &anomalous, &strength, &recall);
        let report = Report {
            confidence: diagnosis.hypotheses.first().map_or(0.5, |top| top.confidence),
            details: ActionDetails::Diagnosis(diagnosis.clone()),
        };
        case.diagnosis = Some(diagnosis);
        report
    }

    /// Approves a plan aimed at one of its own hypotheses.
    fn judge(&self, case: &Case, plan: &Plan, _estate: &dyn Observed) -> Judgement {
        let rank = case
            .diagnosis
            .as_ref()
            .and_then(|d| d.hypotheses.iter().position(|h| h.root == plan.root));
        match rank {
            Some(rank) => Judgement {
                approve: true,
                reason: format!("hypothesis #{} of the diagnosis", rank + 1),
            },
            None => Judgement {
                approve: false,
                reason: "not among the diagnosed hypotheses".into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        agents::{DetectionAgent, fixtures, monitors, signatures},
        twin::{FaultKind, HealthState, Metric},
    };

    fn diagnose(kind: FaultKind, target: &str, seed: u64) -> Diagnosis {
        diagnose_recalling(kind, target, seed, &Recall::default())
    }

    #[test]
    fn the_database_is_blamed_not_its_suffering_callers() {
        let d = diagnose(FaultKind::ConnectionPoolExhaustion, "postgres-primary", 1);
        let top = &d.hypotheses[0];
        assert_eq!(top.root.service, "postgres-primary");
        assert_eq!(top.root.fault, FaultKind::ConnectionPoolExhaustion);
        assert!(top.coverage > 0.9, "{}", top.coverage);
        assert!(
            top.evidence
                .iter()
                .any(|e| e.metric == Metric::PoolUsage && e.sigma > 4.0)
        );
        assert_eq!(top.path.first().map(String::as_str), Some("api-gateway"));
        assert_eq!(top.path.last().map(String::as_str), Some("postgres-primary"));
        assert!(
            d.blast_radius
                .iter()
                .any(|a| a.service == "order-service" && a.health != HealthState::Healthy)
        );
    }

    #[test]
    fn a_failed_cache_is_blamed_for_the_database_it_overloads() {
        let d = diagnose(FaultKind::CacheFailure, "redis-cache", 2);
        assert_eq!(d.hypotheses[0].root.service, "redis-cache");
        assert_eq!(d.hypotheses[0].root.fault, FaultKind::CacheFailure);
    }

    #[test]
    fn a_restart_loop_and_a_partition_are_told_apart() {
        let crash = diagnose(FaultKind::CrashLoop, "order-service", 3);
        assert_eq!(crash.hypotheses[0].root.fault, FaultKind::CrashLoop);
        let partition = diagnose(FaultKind::NetworkPartition, "postgres-primary", 3);
        assert_eq!(partition.hypotheses[0].root.fault, FaultKind::NetworkPartition);
    }

    fn record(service: &str, fault: FaultKind, healed: u32, tried: u32) -> FixTrackRecord {
        FixTrackRecord {
            service: service.into(),
            fault: fault.as_str().into(),
            healed,
            tried,
        }
    }

    /// Detection then diagnosis on a broken estate, with `recall` standing
    /// in for what detection found in memory.
    fn diagnose_recalling(kind: FaultKind, target: &str, seed: u64, recall: &Recall) -> Diagnosis {
        let estate = fixtures::broken(kind, target, 3, seed);
        let mut case = Case::new(fixtures::incident(&["api-gateway"]));
        DetectionAgent {
            signatures: signatures().unwrap(),
            monitors: monitors().unwrap(),
            memory: Default::default(),
        }
        .work(&mut case, &estate);
        case.detection.as_mut().unwrap().recall = recall.clone();
        DiagnosisAgent {
            signatures: signatures().unwrap(),
        }
        .work(&mut case, &estate);
        case.diagnosis.unwrap()
    }

    #[test]
    fn a_fix_that_healed_similar_incidents_raises_its_hypothesis() {
        let cold = diagnose_recalling(
            FaultKind::ConnectionPoolExhaustion,
            "postgres-primary",
            5,
            &Recall::default(),
        );
        assert!(cold.hypotheses.len() >= 2, "{:?}", cold.hypotheses);
        let (first, second) = (cold.hypotheses[0].root.clone(), cold.hypotheses[1].root.clone());
        // Memory says the runner-up's fix healed 4 of 4 similar incidents.
        let recall = Recall {
            similar: Vec::new(),
            fixes: vec![record(&second.service, second.fault, 4, 4)],
        };
        let warm = diagnose_recalling(FaultKind::ConnectionPoolExhaustion, "postgres-primary", 5, &recall);
        let promoted = warm.hypotheses.iter().find(|h| h.root == second).unwrap();
        let before = cold.hypotheses.iter().find(|h| h.root == second).unwrap();
        assert!(promoted.score > before.score, "{} vs {}", promoted.score, before.score);
        assert_eq!(promoted.memory.as_ref().map(|m| m.healed), Some(4));
        assert!(
            warm.hypotheses.iter().any(|h| h.root == first),
            "no failure: nothing skipped"
        );
        assert!(warm.skipped.is_empty());
    }

    #[test]
    fn a_fix_that_only_failed_is_skipped_when_another_healed() {
        let cold = diagnose_recalling(
            FaultKind::ConnectionPoolExhaustion,
            "postgres-primary",
            6,
            &Recall::default(),
        );
        let (first, second) = (cold.hypotheses[0].root.clone(), cold.hypotheses[1].root.clone());
        let recall = Recall {
            similar: Vec::new(),
            fixes: vec![
                record(&second.service, second.fault, 1, 1),
                record(&first.service, first.fault, 0, 1),
            ],
        };
        let warm = diagnose_recalling(FaultKind::ConnectionPoolExhaustion, "postgres-primary", 6, &recall);
        assert_eq!(warm.hypotheses[0].root, second, "{:?}", warm.hypotheses);
        assert!(warm.hypotheses.iter().all(|h| h.root != first));
        assert_eq!(warm.skipped.len(), 1);
        assert_eq!(warm.skipped[0].root, first);
    }

    #[test]
    fn a_fix_with_a_mixed_record_stays_but_ranks_by_its_success() {
        let cold = diagnose_recalling(
            FaultKind::ConnectionPoolExhaustion,
            "postgres-primary",
            7,
            &Recall::default(),
        );
        let first = cold.hypotheses[0].root.clone();
        let mixed = Recall {
            similar: Vec::new(),
            fixes: vec![record(&first.service, first.fault, 1, 3)],
        };
        let warm = diagnose_recalling(FaultKind::ConnectionPoolExhaustion, "postgres-primary", 7, &mixed);
        let demoted = warm
            .hypotheses
            .iter()
            .find(|h| h.root == first)
            .expect("still a candidate");
        // (1 + 1) / (3 + 2) = 0.4: × 0.9.
        assert!(
            (demoted.score - (cold.hypotheses[0].score * 0.9)).abs() < 0.011,
            "{}",
            demoted.score
        );
        let failed = Recall {
            similar: Vec::new(),
            fixes: vec![record(&first.service, first.fault, 0, 1)],
        };
        let warm = diagnose_recalling(FaultKind::ConnectionPoolExhaustion, "postgres-primary", 7, &failed);
        assert!(
            warm.hypotheses.iter().all(|h| h.root != first),
            "a failed fix is not repeated"
        );
    }

    #[test]
    fn a_healthy_estate_gets_no_hypothesis() {
        let estate = fixtures::estate(4);
        let d = DiagnosisAgent {
            signatures: signatures().unwrap(),
        }
        .diagnose(&estate, &["api-gateway".into()], &[], &[], &Recall::default());
        assert!(d.hypotheses.is_empty());
    }
}
