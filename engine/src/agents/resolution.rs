//! Resolution: turns a hypothesis into a concrete plan from its playbook,
//! checks that the plan is safe to run, and judges when the estate has
//! recovered. The orchestrator runs the steps one at a time against the
//! twin, verifies, and rolls back in reverse when recovery does not come.

pub use crate::protocol::{Plan, PlannedStep, SafetyCheck};

use super::{Agent, Case, Hypothesis, Judgement, Report};
use crate::observe::Observed;
use crate::{
    catalog::{Catalog, Playbook, StepTarget},
    protocol::{ActionDetails, AgentType, Readiness},
    twin::{ActionKind, HealthState, Metric, Remediation},
};

/// The resolution agent.
pub struct ResolutionAgent;

impl ResolutionAgent {
    /// The plan for `hypothesis`, from its playbook, with targets resolved
    /// on the estate. `None` when no step applies.
    pub fn plan(
        &self,
        catalog: &Catalog,
        hypothesis: &Hypothesis,
        watch: &[String],
        estate: &dyn Observed,
    ) -> Option<Plan> {
        let playbook: &Playbook = catalog.playbook_for(hypothesis.root.fault)?;
        let topology = estate.topology();
        let root = topology.index(&hypothesis.root.service)?;
        let mut steps = Vec::new();
        for step in &playbook.step {
            let targets: Vec<usize> = match step.target {
                StepTarget::Root => vec![root],
                StepTarget::Callers => topology.callers(root).filter(|&c| topology.spec(c).owned).collect(),
            };
            for target in targets {
                if step.action.refusal(topology.spec(target)).is_none() {
                    steps.push(PlannedStep {
                        remediation: Remediation {
                            kind: step.action,
                            target: topology.spec(target).name.clone(),
                        },
                        seconds: step.seconds,
                    });
                }
            }
        }
        if steps.is_empty() {
            return None;
        }
        let mut watch: Vec<String> = watch.to_vec();
        if topology.spec(root).owned && !watch.contains(&hypothesis.root.service) {
            watch.push(hypothesis.root.service.clone());
        }
        Some(Plan {
            root: hypothesis.root.clone(),
            playbook: playbook.name.clone(),
            steps,
            watch,
        })
    }

    /// Seed 000's checks, computed on the estate: a backup or standby for
    /// stateful targets, a rollback plan, and an assessed impact.
    pub fn safety_checks(&self, case: &Case, plan: &Plan, estate: &dyn Observed) -> Vec<SafetyCheck> {
        let topology = estate.topology();
        let mut checks = Vec::new();
        let stateful: Vec<&PlannedStep> = plan
            .steps
            .iter()
            .filter(|s| {
                topology
                    .index(&s.remediation.target)
                    .is_some_and(|i| topology.spec(i).kind.is_stateful())
            })
            .collect();
        let backup = stateful.iter().all(|step| {
            let index = topology.index(&step.remediation.target).expect("planned on the estate");
            match (step.remediation.kind, topology.spec(index).replica) {
                // Promoting a standby needs a healthy standby.
                (ActionKind::FailoverDatabase, Some(replica)) => {
                    estate.health(replica, 3) == HealthState::Healthy
                        && estate.telemetry(replica).latest().get(Metric::Heartbeat) > 0.9
                }
                (ActionKind::FailoverDatabase, None) => false,
                _ => true,
            }
        });
        checks.push(SafetyCheck {
            name: "backup_verified".into(),
            passed: backup,
            detail: if stateful.is_empty() {
                "no stateful service is touched".into()
            } else if backup {
                format!("standby and snapshots healthy for {} stateful step(s)", stateful.len())
            } else {
                "the standby is not healthy enough to take over".into()
            },
        });
        let irreversible: Vec<String> = plan
            .steps
            .iter()
            .filter(|s| !s.remediation.kind.reversible())
            .map(PlannedStep::label)
            .collect();
        checks.push(SafetyCheck {
            name: "rollback_plan_ready".into(),
            passed: true,
            detail: if irreversible.is_empty() {
                "every step can be undone in reverse order".into()
            } else {
                format!(
                    "reversible steps will be undone; no-undo but safe: {}",
                    irreversible.join(", ")
                )
            },
        });
        let assessed = case.prediction.is_some() && case.diagnosis.is_some();
        checks.push(SafetyCheck {
            name: "impact_assessed".into(),
            passed: assessed,
            detail: case
                .prediction
                .as_ref()
                .map(|p| format!("${:.0}/min at stake", p.impact_per_minute))
                .unwrap_or_else(|| "no prediction".into()),
        });
        let owned = plan.steps.iter().all(|s| {
            topology
                .index(&s.remediation.target)
                .is_some_and(|i| topology.spec(i).owned)
        });
        checks.push(SafetyCheck {
            name: "targets_owned".into(),
            passed: owned,
            detail: "every target is ours to change".into(),
        });
        checks
    }

    /// Whether the plan's own root now meets its objectives (false for a
    /// third party, which we cannot observe recovering).
    pub fn root_recovered(&self, plan: &Plan, estate: &dyn Observed, window: usize) -> bool {
        let topology = estate.topology();
        topology.index(&plan.root.service).is_some_and(|root| {
            topology.spec(root).owned
                && !estate
                    .violations(window)
                    .iter()
                    .any(|v| v.starts_with(&format!("{}:", plan.root.service)))
        })
    }

    /// What still keeps the plan's watched services from recovery, over the
    /// last `window` seconds: empty means recovered.
    pub fn outstanding(&self, plan: &Plan, estate: &dyn Observed, window: usize) -> Vec<String> {
        outstanding_in(&plan.watch, estate, window)
    }
}

/// Objectives not met by `watch` over the last `window` seconds.
pub fn outstanding_in(watch: &[String], estate: &dyn Observed, window: usize) -> Vec<String> {
    estate
        .violations(window)
        .into_iter()
        .filter(|v| watch.iter().any(|w| v.starts_with(&format!("{w}:"))))
        .collect()
}

impl Agent for ResolutionAgent {
    fn kind(&self) -> AgentType {
        AgentType::Resolution
    }

    /// Resolution's analysis is its plan; this reports readiness.
    fn work(&self, case: &mut Case, _estate: &dyn Observed) -> Report {
        let ready = case.diagnosis.as_ref().is_some_and(|d| !d.hypotheses.is_empty());
        Report {
            details: ActionDetails::Readiness(Readiness { ready }),
            confidence: 0.9,
        }
    }

    /// Approves a plan whose safety checks pass.
    fn judge(&self, case: &Case, plan: &Plan, estate: &dyn Observed) -> Judgement {
        let failed: Vec<String> = self
            .safety_checks(case, plan, estate)
            .into_iter()
            .filter(|c| !c.passed)
            .map(|c| c.name)
            .collect();
        Judgement {
            approve: failed.is_empty(),
            reason: if failed.is_empty() {
                "all safety checks pass".into()
            } else {
                format!("failed checks: {}", failed.join(", "))
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        agents::fixtures,
        catalog::RootCause,
        twin::{FaultKind, Topology},
    };

    fn hypothesis(service: &str, fault: FaultKind) -> Hypothesis {
        Hypothesis {
            root: RootCause {
                service: service.into(),
                fault,
            },
            score: 0.9,
            confidence: 0.9,
            signature_match: 0.9,
            coverage: 1.0,
            evidence: Vec::new(),
            path: Vec::new(),
            memory: None,
        }
    }

    #[test]
    fn callers_steps_fan_out_to_every_owned_caller() {
        let estate = fixtures::estate(1);
        let catalog = Catalog::embedded(&Topology::embedded().unwrap()).unwrap();
        let plan = ResolutionAgent
            .plan(
                &catalog,
                &hypothesis("payment-gateway", FaultKind::DependencyTimeout),
                &[],
                &estate,
            )
            .unwrap();
        assert_eq!(plan.steps.len(), 1);
        assert_eq!(plan.steps[0].remediation.target, "payment-service");
        // A third party is never watched for our recovery.
        assert!(!plan.watch.contains(&"payment-gateway".to_owned()));
    }

    #[test]
    fn a_failover_onto_a_broken_standby_fails_its_safety_check() {
        let catalog = Catalog::embedded(&Topology::embedded().unwrap()).unwrap();
        let estate = fixtures::broken(FaultKind::CrashLoop, "order-service", 1, 2);
        let mut broken_standby = fixtures::estate(2);
        broken_standby
            .inject(&crate::twin::FaultSpec {
                lead_seconds: 0.0,
                ..crate::twin::FaultSpec::new(FaultKind::NetworkPartition, "postgres-primary")
            })
            .unwrap();
        let mut replica_down = fixtures::estate(2);
        replica_down
            .inject(&crate::twin::FaultSpec {
                lead_seconds: 600.0,
                ..crate::twin::FaultSpec::new(FaultKind::DiskExhaustion, "postgres-replica")
            })
            .unwrap();
        replica_down.advance(10);
        let plan = ResolutionAgent
            .plan(
                &catalog,
                &hypothesis("postgres-primary", FaultKind::NetworkPartition),
                &[],
                &estate,
            )
            .unwrap();
        let case = Case::new(fixtures::incident(&["order-service"]));
        let check = |e: &crate::twin::Estate| {
            ResolutionAgent
                .safety_checks(&case, &plan, e)
                .into_iter()
                .find(|c| c.name == "backup_verified")
                .unwrap()
                .passed
        };
        assert!(check(&estate));
        assert!(!check(&replica_down));
    }
}
