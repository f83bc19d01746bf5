//! Prediction: where the trouble spreads next, when each objective will be
//! breached at the current trend, and what it costs per minute.
//!
//! - Cascade probability: a healthy caller of a troubled service inherits
//!   the failures of each call it makes; `p = 1 − Π(1 − min(1, calls ×
//!   badness))` over its troubled dependencies, where badness is the
//!   dependency's error rate or its latency overshoot, whichever is worse.
//! - Time to breach: a least-squares trend over the last 20 seconds,
//!   extrapolated to each objective (p99, error rate, memory, disk, pool).
//! - Business impact: the cost model of `data/impact.toml`.

pub use crate::protocol::{CascadeRisk, Loss, ObjectiveBreach, Prediction};

use super::{Agent, Case, Judgement, Plan, Report, round2};
use crate::observe::Observed;
use crate::{
    impact::ImpactModel,
    protocol::{ActionDetails, AgentType},
    twin::{HealthState, Metric, ServiceSpec, telemetry::slope_with_error},
};

/// Seconds of history a trend is fitted on.
const TREND_WINDOW: usize = 20;

/// The prediction agent.
pub struct PredictionAgent {
    /// The cost model.
    pub impact: ImpactModel,
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

impl PredictionAgent {
    /// Where the trouble spreads next, when each objective will be breached,
    /// and what it costs per minute now.
    pub fn predict(&self, estate: &dyn Observed) -> Prediction {
        let topology = estate.topology();
        let health: Vec<HealthState> = (0..topology.len()).map(|i| estate.health(i, 3)).collect();
        let cascade = cascade_risks(estate, &health, &badness(estate));
        let breaches = objective_breaches(estate);
        let losses = self.losses(estate);
        // A fold from +0: an empty float sum is −0, which reads "$-0".
        let impact_per_minute = losses.iter().map(|l| l.per_minute).fold(0.0, |a, b| a + b);
        Prediction {
            cascade,
            breaches,
            losses,
            impact_per_minute,
        }
    }

    /// Each service's loss per minute at its latest sample, costliest first
    /// (services that cost nothing are left out).
    fn losses(&self, estate: &dyn Observed) -> Vec<Loss> {
        let topology = estate.topology();
        let mut losses: Vec<Loss> = topology
            .services
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let latest = estate.telemetry(i).latest();
                Loss {
                    service: spec.name.clone(),
                    per_minute: self
                        .impact
                        .loss_per_minute(
                            &spec.name,
                            latest.get(Metric::ErrorRate),
                            latest.get(Metric::LatencyP99),
                            (spec.slo_error, spec.slo_p99_ms),
                        )
                        .round(),
                }
            })
            .filter(|l| l.per_minute > 0.0)
            .collect();
        losses.sort_by(|a, b| b.per_minute.total_cmp(&a.per_minute));
        losses
    }
}

/// How badly each service fails its callers, 0..=1: its recent error rate
/// or its p99's overshoot of the objective, whichever is worse.
fn badness(estate: &dyn Observed) -> Vec<f64> {
    let topology = estate.topology();
    (0..topology.len())
        .map(|i| {
            let spec = topology.spec(i);
            let errors = estate.telemetry(i).recent_mean(Metric::ErrorRate, 3);
            let p99 = estate.telemetry(i).latest().get(Metric::LatencyP99);
            errors.max(((p99 / spec.slo_p99_ms - 1.0) / 4.0).clamp(0.0, 1.0))
        })
        .collect()
}

/// The healthy owned services likely to be dragged down by the troubled
/// ones they call, most likely first.
fn cascade_risks(estate: &dyn Observed, health: &[HealthState], badness: &[f64]) -> Vec<CascadeRisk> {
    let topology = estate.topology();
    let mut cascade: Vec<CascadeRisk> = (0..topology.len())
        .filter(|&i| health[i] == HealthState::Healthy && topology.spec(i).owned)
        .filter_map(|i| {
            let survive: f64 = topology
                .spec(i)
                .edges
                .iter()
                .filter(|e| health[e.to] != HealthState::Healthy)
                .map(|e| 1.0 - (e.calls * badness[e.to]).min(1.0))
                .product();
            let probability = 1.0 - survive;
            (probability > 0.01).then(|| CascadeRisk {
                service: topology.spec(i).name.clone(),
                probability: round2(probability),
            })
        })
        .collect();
    cascade.sort_by(|a, b| b.probability.total_cmp(&a.probability));
    cascade
}

/// Every objective of an owned service that is breached now or trending
/// towards a breach, soonest first.
fn objective_breaches(estate: &dyn Observed) -> Vec<ObjectiveBreach> {
    let topology = estate.topology();
    let mut breaches = Vec::new();
    for (i, spec) in topology.services.iter().enumerate() {
        if !spec.owned {
            continue;
        }
        for (metric, limit, objective) in objectives(spec) {
            if !metric.applies_to(spec) {
                continue;
            }
            let values = estate.telemetry(i).recent(metric, TREND_WINDOW);
            if let Some(seconds) = seconds_to_breach(&values, limit) {
                breaches.push(ObjectiveBreach {
                    service: spec.name.clone(),
                    objective,
                    seconds: seconds.round(),
                });
            }
        }
    }
    breaches.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
    breaches
}

/// A service's objectives: the metric, its limit, and the objective in words.
fn objectives(spec: &ServiceSpec) -> [(Metric, f64, String); 5] {
    [
        (
            Metric::LatencyP99,
            spec.slo_p99_ms,
            format!("p99 ≤ {:.0} ms", spec.slo_p99_ms),
        ),
        (
            Metric::ErrorRate,
            spec.slo_error,
            format!("errors ≤ {:.1}%", spec.slo_error * 100.0),
        ),
        (Metric::Memory, 0.97, "memory < 97% (OOM)".to_owned()),
        (Metric::DiskUsage, 0.98, "disk < 98%".to_owned()),
        (Metric::PoolUsage, 0.95, "pool < 95%".to_owned()),
    ]
}

/// Seconds until `values` (the trend window, oldest first) cross `limit`:
/// 0 when already past it, `None` without a clear upward trend.
fn seconds_to_breach(values: &[f64], limit: f64) -> Option<f64> {
    let now = mean(&values[values.len().saturating_sub(3)..]);
    if now > limit {
        return Some(0.0);
    }
    let (rate, error) = slope_with_error(values);
    // Only a clear trend counts, not noise.
    (rate > 3.0 * error && rate * TREND_WINDOW as f64 > 0.02 * limit).then(|| ((limit - now) / rate).min(86_400.0))
}

impl Agent for PredictionAgent {
    fn kind(&self) -> AgentType {
        AgentType::Prediction
    }

    fn work(&self, case: &mut Case, estate: &dyn Observed) -> Report {
        let prediction = self.predict(estate);
        // Sure of figures measured now; less sure of extrapolations.
        let confidence = if prediction.breaches.iter().all(|b| b.seconds == 0.0) {
            0.9
        } else {
            0.8
        };
        let report = Report {
            details: ActionDetails::Prediction(prediction.clone()),
            confidence,
        };
        case.prediction = Some(prediction);
        report
    }

    /// Approves a plan whose target lies upstream of the costly services:
    /// fixing it is predicted to stop the loss.
    fn judge(&self, case: &Case, plan: &Plan, estate: &dyn Observed) -> Judgement {
        let topology = estate.topology();
        let Some(root) = topology.index(&plan.root.service) else {
            return Judgement {
                approve: false,
                reason: "the plan's target is not in the estate".into(),
            };
        };
        let losses = case.prediction.as_ref().map(|p| p.losses.clone()).unwrap_or_default();
        let total: f64 = losses.iter().map(|l| l.per_minute).sum();
        let covered: f64 = losses
            .iter()
            .filter(|l| {
                topology.index(&l.service).is_some_and(|i| {
                    i == root
                        || topology.reaches(i, root)
                        || topology.spec(root).fallback.is_some_and(|f| topology.reaches(i, f))
                })
            })
            .map(|l| l.per_minute)
            .sum();
        let share = if total > 0.0 { covered / total } else { 1.0 };
        Judgement {
            approve: share >= 0.5,
            reason: format!(
                "{:.0}% of the predicted loss depends on {}",
                share * 100.0,
                plan.root.service
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{agents::fixtures, twin::FaultKind};

    fn agent() -> PredictionAgent {
        PredictionAgent {
            impact: ImpactModel::embedded().unwrap(),
        }
    }

    #[test]
    fn a_healthy_estate_costs_nothing_and_breaches_nothing() {
        let p = agent().predict(&fixtures::estate(1));
        assert_eq!(p.impact_per_minute, 0.0);
        assert!(p.impact_per_minute.is_sign_positive(), "never printed as $-0");
        assert!(p.breaches.is_empty(), "{:?}", p.breaches);
    }

    #[test]
    fn a_growing_leak_is_given_a_time_to_oom() {
        let estate = fixtures::broken(FaultKind::MemoryLeak, "user-service", 25, 2);
        let p = agent().predict(&estate);
        let oom = p
            .breaches
            .iter()
            .find(|b| b.service == "user-service" && b.objective.contains("OOM"))
            .expect("a memory breach");
        // memory ≈ 0.52 + 0.0022 × 55 s ≈ 0.64, climbing 0.0022/s: ≈ 150 s left.
        assert!((100.0..250.0).contains(&oom.seconds), "{}", oom.seconds);
    }

    #[test]
    fn an_outage_costs_revenue_where_customers_are() {
        let estate = fixtures::broken(FaultKind::CrashLoop, "payment-service", 5, 3);
        let p = agent().predict(&estate);
        assert!(
            p.losses
                .iter()
                .any(|l| l.service == "payment-service" && l.per_minute > 1000.0)
        );
        assert!(p.impact_per_minute >= p.losses[0].per_minute);
        assert!(
            p.breaches
                .iter()
                .any(|b| b.service == "payment-service" && b.seconds == 0.0)
        );
    }
}
