//! Detection: which metrics of which services are off their baselines, how
//! sure we are that something is wrong, which known pattern it looks like,
//! and which past incidents it resembles.

pub use crate::protocol::{Anomaly, MonitorBreach};

use super::{Agent, Case, Judgement, Monitor, Plan, Report, Signature, deviations, harm, round2};
use crate::observe::Observed;
use crate::{
    memory::Memory,
    protocol::{ActionDetails, AgentType, DetectionFindings, PatternMatch, Recall, SignatureFeature},
    twin::Metric,
};

/// Deviation, in sigma, from which a metric counts as anomalous.
pub const ANOMALY_SIGMA: f64 = 4.0;
/// Deviations are capped here when weighing evidence, so one absurd reading
/// cannot outweigh everything else.
const CAP_SIGMA: f64 = 12.0;
/// Series in an incident's signature: the strongest, since the faint
/// ones come and go from one reading to the next.
const SIGNATURE_FEATURES: usize = 24;
/// Anomalies an action's details list; the rest are counted.
const PUBLISHED_ANOMALIES: usize = 8;

/// What detection found.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// Series examined.
    pub metrics_analyzed: usize,
    /// Anomalies, strongest first.
    pub anomalies: Vec<Anomaly>,
    /// Monitors whose absolute thresholds are crossed.
    pub breaches: Vec<MonitorBreach>,
    /// Warning levels crossed: off, but inside every objective.
    pub warnings: Vec<MonitorBreach>,
    /// Services with at least one anomaly, strongest first.
    pub anomalous_services: Vec<String>,
    /// The best-matching known pattern and its score.
    pub pattern: Option<PatternMatch>,
    /// Confidence that something is wrong.
    pub confidence: f64,
    /// The incident's signature for the memory: the anomalous series,
    /// strongest first.
    pub signature: Vec<SignatureFeature>,
    /// What the memory holds of similar past incidents.
    pub recall: Recall,
}

/// The detection agent.
pub struct DetectionAgent {
    /// The pattern library.
    pub signatures: Vec<Signature>,
    /// Absolute thresholds (seed 003's monitors).
    pub monitors: Vec<Monitor>,
    /// Past incidents to match against.
    pub memory: Memory,
}

impl DetectionAgent {
    /// Scans every metric of every service.
    pub fn detect(&self, estate: &dyn Observed) -> Detection {
        let topology = estate.topology();
        let mut metrics_analyzed = 0;
        let mut anomalies = Vec::new();
        let breaches = self.crossed(estate, false);
        let warnings = self.crossed(estate, true);
        for (index, spec) in topology.services.iter().enumerate() {
            let z = deviations(estate, index);
            let telemetry = &estate.telemetry(index);
            for metric in Metric::ALL {
                if !metric.applies_to(spec) {
                    continue;
                }
                metrics_analyzed += 1;
                let sigma = harm(metric, z[metric as usize]);
                // A crossed monitor makes the series anomalous whatever its
                // baseline says (a slow drift moves the baseline with it).
                let breached = breaches
                    .iter()
                    .any(|b: &MonitorBreach| b.service == spec.name && b.metric == metric);
                if sigma >= ANOMALY_SIGMA || breached {
                    anomalies.push(Anomaly {
                        service: spec.name.clone(),
                        metric,
                        value: telemetry.recent_mean(metric, 3),
                        baseline: telemetry.baseline(metric).mean,
                        sigma: round2(sigma),
                    });
                }
            }
        }
        anomalies.sort_by(|a, b| b.sigma.total_cmp(&a.sigma));
        let mut anomalous_services: Vec<String> = Vec::new();
        for a in &anomalies {
            if !anomalous_services.contains(&a.service) {
                anomalous_services.push(a.service.clone());
            }
        }

        // The pattern: the best signature over the anomalous services.
        let pattern = anomalous_services
            .iter()
            .filter_map(|name| topology.index(name))
            .flat_map(|index| {
                let z = deviations(estate, index);
                self.signatures
                    .iter()
                    .map(move |s| (s, index, s.score(estate, index, &z).0))
            })
            .max_by(|a, b| a.2.total_cmp(&b.2))
            .filter(|(_, _, score)| *score > 0.3)
            .map(|(s, index, score)| PatternMatch {
                pattern: s.pattern.clone(),
                service: topology.spec(index).name.clone(),
                score: round2(score),
            });

        let signature: Vec<SignatureFeature> = anomalies
            .iter()
            .take(SIGNATURE_FEATURES)
            .map(|a| SignatureFeature {
                service: a.service.clone(),
                metric: a.metric.as_str().to_owned(),
                sigma: a.sigma,
            })
            .collect();
        let recall = self.memory.recall(&signature);
        let mut detection = Detection {
            metrics_analyzed,
            confidence: 0.0,
            anomalies,
            breaches,
            warnings,
            anomalous_services,
            pattern,
            signature,
            recall,
        };
        detection.confidence = confidence(&detection);
        detection
    }
}

impl Detection {
    /// The findings as published: the strongest anomalies, not all.
    pub fn findings(&self) -> DetectionFindings {
        DetectionFindings {
            metrics_analyzed: self.metrics_analyzed,
            anomalies_detected: self.anomalies.len(),
            monitor_breaches: self.breaches.clone(),
            warnings: self.warnings.clone(),
            anomalous_services: self.anomalous_services.clone(),
            top_anomalies: self.anomalies.iter().take(PUBLISHED_ANOMALIES).cloned().collect(),
            pattern_matched: self.pattern.clone(),
            recall: self.recall.clone(),
        }
    }
}

impl DetectionAgent {
    /// Every monitor's threshold crossed (the warnings', or the rest's),
    /// on every service it watches.
    pub fn crossed(&self, estate: &dyn Observed, warnings: bool) -> Vec<MonitorBreach> {
        let topology = estate.topology();
        let mut breaches = Vec::new();
        for monitor in self.monitors.iter().filter(|m| m.warning == warnings) {
            for (index, spec) in topology.services.iter().enumerate() {
                if !monitor.kinds.contains(&spec.kind) || !monitor.metric.applies_to(spec) {
                    continue;
                }
                let telemetry = &estate.telemetry(index);
                if telemetry.history.is_empty() {
                    continue;
                }
                let value = telemetry.recent_mean(monitor.metric, monitor.window);
                if !monitor.past(value) {
                    continue;
                }
                breaches.push(MonitorBreach {
                    monitor: monitor.name.clone(),
                    service: spec.name.clone(),
                    metric: monitor.metric,
                    value: round2(value),
                    detail: monitor.describe(value),
                });
            }
        }
        breaches
    }
}

/// Strength: how far the strongest anomalies are off baseline. Agreement:
/// how many metrics corroborate, and whether a known pattern fits. With no
/// anomaly, the confidence is that nothing is wrong.
fn confidence(detection: &Detection) -> f64 {
    if detection.anomalies.is_empty() && detection.breaches.is_empty() {
        return 0.9;
    }
    let top: Vec<f64> = detection
        .anomalies
        .iter()
        .take(5)
        .map(|a| a.sigma.min(CAP_SIGMA))
        .collect();
    let strength = top.iter().sum::<f64>() / top.len().max(1) as f64 / CAP_SIGMA;
    // A crossed threshold is a fact, not a deviation: it counts as strong.
    let strength = if detection.breaches.is_empty() {
        strength
    } else {
        strength.max(0.8)
    };
    let corroboration = (detection.anomalies.len() as f64 / 4.0).min(1.0);
    let pattern = detection.pattern.as_ref().map_or(0.0, |p| p.score);
    let history = if detection.recall.similar.is_empty() { 0.0 } else { 0.05 };
    round2((0.45 + 0.25 * strength + 0.1 * corroboration + 0.15 * pattern + history).min(0.99))
}

impl Agent for DetectionAgent {
    fn kind(&self) -> AgentType {
        AgentType::Detection
    }

    fn work(&self, case: &mut Case, estate: &dyn Observed) -> Report {
        let detection = self.detect(estate);
        let report = Report {
            details: ActionDetails::Detection(detection.findings()),
            confidence: detection.confidence,
        };
        case.detection = Some(detection);
        report
    }

    /// Approves a plan whose target shows anomalies of its own.
    fn judge(&self, case: &Case, plan: &Plan, _estate: &dyn Observed) -> Judgement {
        let anomalous = case
            .detection
            .as_ref()
            .is_some_and(|d| d.anomalous_services.contains(&plan.root.service));
        Judgement {
            approve: anomalous,
            reason: if anomalous {
                format!("{} is among the anomalous services", plan.root.service)
            } else {
                format!("{} shows no anomaly of its own", plan.root.service)
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{agents::fixtures, twin::FaultKind};

    fn agent() -> DetectionAgent {
        DetectionAgent {
            signatures: super::super::signatures().unwrap(),
            monitors: super::super::monitors().unwrap(),
            memory: Default::default(),
        }
    }

    #[test]
    fn a_healthy_estate_has_nothing_anomalous() {
        let detection = agent().detect(&fixtures::estate(1));
        assert!(detection.anomalies.is_empty(), "{:?}", detection.anomalies);
        assert!(detection.metrics_analyzed > 100, "{}", detection.metrics_analyzed);
        assert!(detection.pattern.is_none());
    }

    #[test]
    fn pool_exhaustion_is_detected_on_the_database_and_its_callers() {
        let estate = fixtures::broken(FaultKind::ConnectionPoolExhaustion, "postgres-primary", 3, 2);
        let detection = agent().detect(&estate);
        assert!(
            detection
                .anomalies
                .iter()
                .any(|a| a.service == "postgres-primary" && a.metric == Metric::PoolUsage)
        );
        for caller in ["order-service", "user-service"] {
            assert!(detection.anomalous_services.iter().any(|s| s == caller), "{caller}");
        }
        let PatternMatch { pattern, service, .. } = detection.pattern.clone().unwrap();
        assert_eq!(service, "postgres-primary");
        assert!(pattern.contains("pool"), "{pattern}");
        assert!(detection.confidence > 0.8, "{}", detection.confidence);
    }

    #[test]
    fn a_gradual_leak_is_weaker_evidence_than_a_cascade() {
        let leak = agent().detect(&fixtures::broken(FaultKind::MemoryLeak, "user-service", 3, 3));
        let cascade = agent().detect(&fixtures::broken(
            FaultKind::ConnectionPoolExhaustion,
            "postgres-primary",
            3,
            3,
        ));
        assert!(!leak.anomalies.is_empty());
        assert!(
            leak.confidence < cascade.confidence,
            "{} vs {}",
            leak.confidence,
            cascade.confidence
        );
    }

    #[test]
    fn seed_003s_monitors_fire_on_their_thresholds_and_not_on_a_healthy_estate() {
        let agent = agent();
        assert!(agent.crossed(&fixtures::estate(1), false).is_empty());
        let named = |kind: FaultKind, target: &str| {
            let estate = fixtures::broken(kind, target, 5, 3);
            agent
                .crossed(&estate, false)
                .into_iter()
                .map(|b| (b.monitor, b.service))
                .collect::<Vec<_>>()
        };
        let drift = named(FaultKind::DataDrift, "ml-model-service");
        assert!(
            drift.contains(&("Data drift".into(), "ml-model-service".into())),
            "{drift:?}"
        );
        let slow = named(FaultKind::ModelLatency, "ml-model-service");
        assert!(
            slow.contains(&("Latency SLO breach".into(), "ml-model-service".into())),
            "{slow:?}"
        );
        let worse = named(FaultKind::ModelAccuracyDrop, "ml-model-service");
        assert!(
            worse.contains(&("Performance drop".into(), "ml-model-service".into())),
            "{worse:?}"
        );
        // The agent stopped 30 s before (the fault's lead) and the estate
        // ran 5 more: silent for 35 s, past the monitor's 30.
        let down = named(FaultKind::AgentHeartbeatLoss, "feature-agent");
        assert_eq!(down, [("Agent down".to_owned(), "feature-agent".to_owned())]);
    }

    #[test]
    fn an_agent_silent_for_less_than_30_seconds_is_not_yet_down() {
        let mut estate = fixtures::estate(4);
        estate
            .inject(&crate::twin::FaultSpec {
                lead_seconds: 0.0,
                ..crate::twin::FaultSpec::new(FaultKind::AgentHeartbeatLoss, "decision-agent")
            })
            .unwrap();
        estate.advance(20);
        assert!(agent().crossed(&estate, false).is_empty());
        estate.advance(15);
        let breaches = agent().crossed(&estate, false);
        assert_eq!(breaches.len(), 1, "{breaches:?}");
        assert_eq!(breaches[0].service, "decision-agent");
        assert!(
            breaches[0].detail.starts_with("heartbeat_age_s 3"),
            "{}",
            breaches[0].detail
        );
    }

    #[test]
    fn a_similar_past_incident_is_recalled_with_its_fix() {
        use crate::protocol::{FixOutcome, FixRecord, MemoryEntry};
        let estate = fixtures::broken(FaultKind::CacheFailure, "redis-cache", 3, 4);
        let first = agent().detect(&estate);
        assert!(first.recall.similar.is_empty());
        assert!(!first.signature.is_empty());
        let memory = Memory::new(10);
        memory.record(MemoryEntry {
            incident_id: uuid::Uuid::nil(),
            recorded_at: chrono::Utc::now(),
            scenario_id: None,
            features: first.signature.clone(),
            fixes: vec![FixRecord {
                service: "redis-cache".into(),
                fault: "cache_failure".into(),
                playbook: "Cache failure".into(),
                actions: vec!["restart_service".into()],
                outcome: FixOutcome::Healed,
            }],
            resolution_seconds: 12.0,
        });
        let again = DetectionAgent { memory, ..agent() }.detect(&estate);
        assert_eq!(again.recall.similar.len(), 1);
        assert_eq!(again.recall.similar[0].similarity, 1.0);
        assert_eq!(again.recall.fixes[0].healed, 1);
        assert!(again.confidence > first.confidence);
    }
}
