//! Diagnosis: ranked root-cause hypotheses with their evidence, and the
//! blast radius on the dependency graph.
//!
//! A hypothesis is a fault kind at a service. It scores by two things: how
//! well the service's own telemetry matches the fault's signature, and how
//! much of the anomaly it explains through the graph (its callers suffer
//! when it does; a cache's failure also loads its fallback). A root cause
//! explains its symptoms; a symptom does not explain its root.
//!
//! Two faults can happen at once. The causes are the smallest set of
//! hypotheses that explains every anomaly: the best hypothesis first, then,
//! while anomalies are left that it does not account for, the best
//! hypothesis for those. A cause accounts for every anomaly on its own
//! service, and for what its callers see of it (latency, errors, traffic)
//! when it shows to them at all; never for a caller's own memory, disk,
//! certificate, restarts, heartbeat, CPU or model. The causes are then
//! ranked by the harm each accounts for, since the larger harm is the one
//! to fix first.

pub use crate::protocol::{Affected, Cause, Diagnosis, Hypothesis, MetricEvidence};

use super::{Agent, Case, Direction, Judgement, Plan, Report, Signature, deviations, round2};
use crate::observe::Observed;
use crate::{
    catalog::RootCause,
    protocol::{ActionDetails, AgentType, Anomaly, FixTrackRecord, Recall},
    twin::{FaultKind, Metric, ServiceKind, Topology, health::Shortfall},
};

/// Hypotheses below this score are not worth acting on.
const MIN_SCORE: f64 = 0.2;
/// Hypotheses kept besides the causes after the first.
const KEEP: usize = 3;
/// Causes named at most.
const MAX_CAUSES: usize = 3;
/// A further cause's signature must match its service at least this well:
/// what the first cause leaves unexplained is often faint.
const FURTHER_CAUSE_MATCH: f64 = 0.6;
/// Deviations are capped here when weighing evidence.
const CAP_SIGMA: f64 = 12.0;
/// The window, in seconds of telemetry, over which harm is judged.
const HARM_WINDOW: usize = 3;

/// One anomaly to explain: a service's metric and its (capped) strength.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Symptom {
    service: usize,
    metric: Metric,
    strength: f64,
}

/// Metrics only a service's own fault moves. A dependency's trouble shows
/// in its callers' latency, errors and traffic, not in these (a caller
/// waiting on a slow call is idle, not busy).
fn local(metric: Metric) -> bool {
    matches!(
        metric,
        Metric::Memory
            | Metric::DiskUsage
            | Metric::CertDaysLeft
            | Metric::Restarts
            | Metric::Heartbeat
            | Metric::HeartbeatAge
            | Metric::ModelAccuracy
            | Metric::FeaturePsi
            | Metric::CacheHitRate
            | Metric::Cpu
    )
}

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
    /// Ranks root-cause hypotheses for detection's `anomalies` (strongest
    /// first), names the causes, and weighs what `recall` holds of similar
    /// past incidents.
    pub fn diagnose(
        &self,
        estate: &dyn Observed,
        reported: &[String],
        anomalies: &[Anomaly],
        recall: &Recall,
    ) -> Diagnosis {
        let topology = estate.topology();
        let symptoms: Vec<Symptom> = anomalies
            .iter()
            .filter_map(|a| {
                Some(Symptom {
                    service: topology.index(&a.service)?,
                    metric: a.metric,
                    strength: a.sigma.min(CAP_SIGMA),
                })
            })
            .collect();
        let anomalous = strongest_per_service(&symptoms);
        let mut hypotheses = self.candidates(estate, reported, &anomalous);
        weigh_by_memory(&mut hypotheses, recall);
        let (ranked, skipped) = rank(hypotheses);
        let causes = self.causes(estate, &ranked, &symptoms);
        let hypotheses = causes_first(ranked, &causes);
        let blast_radius = blast_radius(estate, hypotheses.first());
        debug_assert!(
            causes.first().map(|c| &c.root) == hypotheses.first().map(|h| &h.root),
            "the first cause is the first hypothesis"
        );
        Diagnosis {
            hypotheses,
            blast_radius,
            skipped,
            similar_incidents: recall.similar.len(),
            anomalous: anomalous
                .iter()
                .map(|&(index, _)| topology.spec(index).name.clone())
                .collect(),
            causes,
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

/// The anomalous services, strongest first, each with its strongest
/// symptom's strength.
fn strongest_per_service(symptoms: &[Symptom]) -> Vec<(usize, f64)> {
    let mut services: Vec<(usize, f64)> = Vec::new();
    for symptom in symptoms {
        match services.iter_mut().find(|(service, _)| *service == symptom.service) {
            Some((_, strength)) => *strength = strength.max(symptom.strength),
            None => services.push((symptom.service, symptom.strength)),
        }
    }
    services
}

/// Every hypothesis, best first, and those skipped as dead ends (fixes
/// that only ever failed).
fn rank(hypotheses: Vec<Hypothesis>) -> (Vec<Hypothesis>, Vec<Hypothesis>) {
    let (skipped, mut hypotheses): (Vec<Hypothesis>, Vec<Hypothesis>) = hypotheses
        .into_iter()
        .partition(|h| h.memory.as_ref().is_some_and(FixTrackRecord::dead_end));
    hypotheses.sort_by(|a, b| b.score.total_cmp(&a.score));
    (hypotheses, skipped)
}

/// The `ranked` hypotheses with the causes' first, in the causes' order,
/// then the best of the rest: [`KEEP`] in all besides the causes after the
/// first, each with its confidence.
fn causes_first(ranked: Vec<Hypothesis>, causes: &[Cause]) -> Vec<Hypothesis> {
    let (mut first, rest): (Vec<Hypothesis>, Vec<Hypothesis>) = ranked
        .into_iter()
        .partition(|h| causes.iter().any(|c| c.root == h.root));
    first.sort_by_key(|h| causes.iter().position(|c| c.root == h.root));
    let mut hypotheses = first;
    hypotheses.extend(rest);
    hypotheses.truncate(KEEP + causes.len().saturating_sub(1));
    let is_cause = |h: &Hypothesis| causes.iter().any(|c| c.root == h.root);
    let scores: Vec<(f64, bool)> = hypotheses.iter().map(|h| (h.score, is_cause(h))).collect();
    for (i, h) in hypotheses.iter_mut().enumerate() {
        // A strong match that stands alone is near-certain; close
        // runners-up share the belief. Causes happen together: they do
        // not compete for it.
        let mine = is_cause(h);
        let sum: f64 = (scores.iter().enumerate())
            .filter(|&(j, &(_, cause))| j == i || !(mine && cause))
            .map(|(_, (score, _))| score)
            .sum();
        h.confidence = round2((h.score * h.score / sum.max(f64::EPSILON)).min(0.99));
    }
    hypotheses
}

/// Whether trouble at `root` shows to its callers: its fault's signature
/// expects something they see of it (latency, errors, traffic) to move,
/// and it has; or the fault cuts it off (a partition: callers see failed
/// calls while it looks idle itself); or it is a cache, whose misses fall
/// through to its fallback. A leak, a filling disk or a silent agent hurts
/// nobody upstream by itself.
fn shows_to_callers(topology: &Topology, signature: Option<&Signature>, root: usize, symptoms: &[Symptom]) -> bool {
    let seen = |metric: Metric| symptoms.iter().any(|s| s.service == root && s.metric == metric);
    topology.spec(root).kind == ServiceKind::Cache
        || signature.is_some_and(|signature| {
            signature.unreachable
                || (signature.expect.iter())
                    .any(|(&metric, &(direction, _))| direction != Direction::Flat && !local(metric) && seen(metric))
        })
}

/// Whether a cause at `root` accounts for `symptom`.
fn accounts_for(topology: &Topology, root: usize, shows: bool, symptom: &Symptom) -> bool {
    symptom.service == root || (shows && !local(symptom.metric) && explains(topology, root, symptom.service))
}

/// A cause being chosen: its hypothesis, its service's index, and whether
/// it shows to its callers.
type Chosen<'a> = (&'a Hypothesis, usize, bool);

impl DiagnosisAgent {
    /// The signature of `fault`.
    fn signature(&self, fault: FaultKind) -> Option<&Signature> {
        self.signatures.iter().find(|s| s.fault == fault)
    }

    /// The smallest set of the `ranked` hypotheses that explains the
    /// `symptoms`, largest impact first (see the module's doc).
    fn causes(&self, estate: &dyn Observed, ranked: &[Hypothesis], symptoms: &[Symptom]) -> Vec<Cause> {
        let topology = estate.topology();
        let mut left: Vec<Symptom> = symptoms.to_vec();
        let mut chosen: Vec<Chosen> = Vec::new();
        while chosen.len() < MAX_CAUSES {
            let pick = match chosen.is_empty() {
                true => ranked.first().and_then(|h| Some((h, topology.index(&h.root.service)?))),
                false if left.is_empty() => None,
                false => self.further_cause(topology, ranked, &chosen, &left),
            };
            let Some((hypothesis, root)) = pick else { break };
            let shows = shows_to_callers(topology, self.signature(hypothesis.root.fault), root, symptoms);
            left.retain(|s| !accounts_for(topology, root, shows, s));
            chosen.push((hypothesis, root, shows));
        }
        let harm = harm_by_service(estate);
        let mut causes: Vec<(Cause, f64)> = chosen
            .iter()
            .map(|&(hypothesis, root, shows)| {
                let cause = Cause {
                    root: hypothesis.root.clone(),
                    impact: round2(impact(topology, &harm, symptoms, &chosen, root)),
                    explains: explained(topology, symptoms, root, shows),
                };
                let strength: f64 = (symptoms.iter())
                    .filter(|s| accounts_for(topology, root, shows, s))
                    .map(|s| s.strength)
                    .sum();
                (cause, strength)
            })
            .collect();
        // Equal harm: the cause that accounts for more of the anomaly.
        causes.sort_by(|(a, a_strength), (b, b_strength)| {
            b.impact.total_cmp(&a.impact).then(b_strength.total_cmp(a_strength))
        });
        causes.into_iter().map(|(cause, _)| cause).collect()
    }

    /// The best hypothesis for the `left` symptoms besides those `chosen`:
    /// a good match at a service with a symptom left, scored as
    /// [`DiagnosisAgent::candidates`] scores, over what is left.
    fn further_cause<'a>(
        &self,
        topology: &Topology,
        ranked: &'a [Hypothesis],
        chosen: &[Chosen],
        left: &[Symptom],
    ) -> Option<(&'a Hypothesis, usize)> {
        let total: f64 = left.iter().map(|s| s.strength).sum();
        ranked
            .iter()
            .filter(|h| h.signature_match >= FURTHER_CAUSE_MATCH)
            .filter_map(|h| {
                let root = topology.index(&h.root.service)?;
                if chosen.iter().any(|&(_, other, _)| other == root) || !left.iter().any(|s| s.service == root) {
                    return None;
                }
                let shows = shows_to_callers(topology, self.signature(h.root.fault), root, left);
                let covered: f64 = (left.iter())
                    .filter(|s| accounts_for(topology, root, shows, s))
                    .map(|s| s.strength)
                    .sum();
                let remembered = h.memory.as_ref().map_or(1.0, |r| 0.5 + r.expected_success());
                let score = h.signature_match * (0.35 + 0.65 * covered / total) * remembered;
                (score >= MIN_SCORE).then_some((h, root, score))
            })
            .max_by(|a, b| a.2.total_cmp(&b.2))
            .map(|(h, root, _)| (h, root))
    }
}

/// The services with a symptom a cause at `root` accounts for: its own
/// first, then by the symptoms' order.
fn explained(topology: &Topology, symptoms: &[Symptom], root: usize, shows: bool) -> Vec<String> {
    let mut names = vec![topology.spec(root).name.clone()];
    for s in symptoms.iter().filter(|s| accounts_for(topology, root, shows, s)) {
        let name = &topology.spec(s.service).name;
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    names
}

/// Each service's harm now, by index: how unhealthy it is (down 2,
/// degraded 1), and how many of its other objectives it misses. Only what
/// the estate counts as missed: a service out of rotation (a failed-over
/// database) harms nobody.
fn harm_by_service(estate: &dyn Observed) -> Vec<(f64, f64)> {
    (0..estate.topology().len())
        .map(|i| {
            let (mut health, mut objectives) = (0.0, 0.0);
            for m in estate.missed_by(i, HARM_WINDOW) {
                match m.what {
                    Shortfall::Health(state) => health = f64::from(state.harm()),
                    _ => objectives += 1.0,
                }
            }
            (health, objectives)
        })
        .collect()
}

/// The harm the cause at `root` accounts for among those `chosen`.
///
/// A service's ill health is shared among the causes that reach it, in
/// proportion to the strength of its symptoms each accounts for: a crash
/// loop owns its service's restarts, while a slow dependency only shares
/// its latency. A service ill without a symptom is shared equally. Its
/// other objectives (memory, disk, a certificate, a model) are its own
/// cause's alone.
fn impact(topology: &Topology, harm: &[(f64, f64)], symptoms: &[Symptom], chosen: &[Chosen], root: usize) -> f64 {
    let reaches = |&(_, r, shows): &Chosen, service: usize| r == service || (shows && explains(topology, r, service));
    let weight = |&(_, r, shows): &Chosen, service: usize| -> f64 {
        (symptoms.iter())
            .filter(|s| s.service == service && accounts_for(topology, r, shows, s))
            .map(|s| s.strength)
            .sum()
    };
    let mine = *chosen.iter().find(|c| c.1 == root).expect("one of the chosen");
    (0..topology.len())
        .filter(|&service| reaches(&mine, service))
        .map(|service| {
            let (health, objectives) = harm[service];
            let all: f64 = chosen.iter().map(|c| weight(c, service)).sum();
            let share = if all > 0.0 {
                weight(&mine, service) / all
            } else {
                1.0 / chosen.iter().filter(|c| reaches(c, service)).count() as f64
            };
            health * share + if service == root { objectives } else { 0.0 }
        })
        .sum()
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
        let anomalies = case.detection.as_ref().map_or(&[][..], |d| &d.anomalies[..]);
        let diagnosis = self.diagnose(estate, &case.incident.affected_services, anomalies, &recall);
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
        detect_then_diagnose(&fixtures::broken(kind, target, 3, seed), recall)
    }

    /// Detection, then diagnosis, of an incident reported on api-gateway.
    fn detect_then_diagnose(estate: &dyn Observed, recall: &Recall) -> Diagnosis {
        let mut case = Case::new(fixtures::incident(&["api-gateway"]));
        DetectionAgent {
            signatures: signatures().unwrap(),
            monitors: monitors().unwrap(),
            memory: Default::default(),
        }
        .work(&mut case, estate);
        case.detection.as_mut().unwrap().recall = recall.clone();
        DiagnosisAgent {
            signatures: signatures().unwrap(),
        }
        .work(&mut case, estate);
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

    /// Detection then diagnosis on an estate where every fault of `faults`
    /// (kind, target, intensity) started 60 s ago.
    fn diagnose_together(faults: &[(FaultKind, &str, f64)], seed: u64) -> Diagnosis {
        let mut estate = fixtures::estate(seed);
        for &(kind, target, intensity) in faults {
            (estate.inject(&crate::twin::FaultSpec {
                intensity,
                lead_seconds: 60.0,
                ..crate::twin::FaultSpec::new(kind, target)
            }))
            .unwrap();
        }
        estate.advance(5);
        detect_then_diagnose(&estate, &Recall::default())
    }

    fn cause(fault: FaultKind, service: &str) -> RootCause {
        RootCause {
            service: service.into(),
            fault,
        }
    }

    #[test]
    fn one_fault_is_one_cause_that_explains_its_callers() {
        for seed in 1..=3 {
            let d = diagnose_together(&[(FaultKind::ConnectionPoolExhaustion, "postgres-primary", 1.0)], seed);
            assert_eq!(d.causes.len(), 1, "{:?}", d.causes);
            let only = &d.causes[0];
            assert_eq!(
                only.root,
                cause(FaultKind::ConnectionPoolExhaustion, "postgres-primary")
            );
            assert_eq!(d.hypotheses[0].root, only.root);
            assert_eq!(only.explains[0], "postgres-primary", "its own service first");
            assert!(
                only.explains.iter().any(|s| s == "order-service"),
                "{:?}",
                only.explains
            );
            assert!(only.impact >= 3.0, "the database and its callers: {}", only.impact);
        }
    }

    /// The issue's own case: a crash loop during a CPU surge elsewhere. The
    /// surge's signature matches best, but the crash loop does more harm,
    /// so it is the first cause, and the surge is not explained away.
    #[test]
    fn a_crash_loop_during_a_cpu_surge_is_named_first_and_the_surge_second() {
        for seed in 1..=3 {
            let d = diagnose_together(
                &[
                    (FaultKind::CrashLoop, "payment-service", 0.8),
                    (FaultKind::CpuSaturation, "user-service", 0.7),
                ],
                seed,
            );
            let roots: Vec<&RootCause> = d.causes.iter().map(|c| &c.root).collect();
            assert_eq!(
                roots,
                [
                    &cause(FaultKind::CrashLoop, "payment-service"),
                    &cause(FaultKind::CpuSaturation, "user-service")
                ],
                "{:?}",
                d.causes
            );
            assert!(d.causes[0].impact > d.causes[1].impact, "{:?}", d.causes);
            // Causes happen together: they do not split the belief.
            let rivals: f64 = d.hypotheses[2..].iter().map(|h| h.score).sum();
            let first = &d.hypotheses[0];
            let expected = (first.score * first.score / (first.score + rivals)).min(0.99);
            assert!((first.confidence - expected).abs() < 0.011, "{:?}", d.hypotheses);
            assert_eq!(d.hypotheses[0].root, d.causes[0].root);
            assert_eq!(
                d.hypotheses[1].root, d.causes[1].root,
                "both causes lead the hypotheses"
            );
            assert!(d.causes[1].explains.iter().all(|s| s != "payment-service"));
        }
    }

    /// A silent pipeline agent shows to nobody upstream: the slow database
    /// explains the callers' latency, and the agent is a cause of its own.
    #[test]
    fn a_fault_that_does_not_show_to_callers_explains_only_its_own_service() {
        let d = diagnose_together(
            &[
                (FaultKind::SlowQuery, "postgres-primary", 1.0),
                (FaultKind::AgentHeartbeatLoss, "feature-agent", 0.9),
            ],
            4,
        );
        assert_eq!(d.causes.len(), 2, "{:?}", d.causes);
        assert_eq!(d.causes[0].root, cause(FaultKind::SlowQuery, "postgres-primary"));
        let agent = &d.causes[1];
        assert_eq!(agent.root, cause(FaultKind::AgentHeartbeatLoss, "feature-agent"));
        assert_eq!(agent.explains, ["feature-agent"]);
    }

    #[test]
    fn a_healthy_estate_gets_no_hypothesis() {
        let estate = fixtures::estate(4);
        let d = DiagnosisAgent {
            signatures: signatures().unwrap(),
        }
        .diagnose(&estate, &["api-gateway".into()], &[], &Recall::default());
        assert!(d.hypotheses.is_empty());
        assert!(d.causes.is_empty());
    }
}
