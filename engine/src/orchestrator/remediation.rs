//! Remediation: the vote on a plan, the claim on its root service, the
//! safety checks, the steps applied one at a time, verification from
//! telemetry, and the rollback when recovery does not come.

use std::{sync::Arc, time::Duration};

use rand::Rng;
use tracing::{info, warn};

use super::{
    CLAIM_PATIENCE, CONSENSUS_SECONDS, ROOT_FIXED_POLLS, Remedy, Run, SAFETY_SECONDS, STEP_JITTER, Stop, VERIFY_LIMIT,
    VERIFY_POLL, VERIFY_WINDOW,
};
use crate::{
    actuator::{self, Delivery, HttpActuator},
    agents::{Case, Plan, Report, communication::Attempt},
    catalog::FaultyVoter,
    claims::Claim,
    consensus,
    intake::silences::Silenced,
    protocol::{
        ActionDetails, ActionOrder, ActionOutcome, ActionReceipt, ActionStatus, Actuation, ActuatorRequest, AgentType,
        ApprovalNote, ClaimWait, ConsensusVote, MarkKind, PlannedStep, Rollback, SafetyChecks, ServerMessage, Step,
        Tally, Verification, Vote,
    },
    twin::{ActionError, Applied, ConfigChange, Remediation},
};

/// The longest an incident's alerts stay silenced if nobody expires the
/// silences (the server stopped mid-plan).
const SILENCE_LIMIT: Duration = Duration::from_secs(3600);

/// What verification saw at the end.
#[derive(Default)]
struct Verdict {
    /// Recovery showed everywhere watched, and held.
    verified: bool,
    /// The plan's root recovered, whatever else did not.
    root_fixed: bool,
    /// Objectives still broken, as `service: what`.
    outstanding: Vec<String>,
}

impl Run<'_> {
    /// Puts `plan` to the vote of every agent; publishes the round.
    pub(super) async fn vote(
        &mut self,
        case: &Case,
        plan: &Plan,
        faulty: &[FaultyVoter],
    ) -> Result<(bool, String), Stop> {
        let swarm = Arc::clone(&self.cx.swarm);
        let _worker = self.worker(AgentType::Resolution).await?;
        let action = self.started(
            AgentType::Resolution,
            ActionDetails::Vote(Vote {
                vote_on: plan.clone(),
                tally: None,
            }),
        );
        let duration = self.seconds(CONSENSUS_SECONDS);
        self.pass(duration).await?;
        let elapsed = self.elapsed;
        let judgements: Vec<_> = self.twin.observe(elapsed, |estate| {
            swarm
                .agents()
                .iter()
                .map(|a| (a.kind(), a.judge(case, plan, estate)))
                .collect()
        });
        let votes: Vec<ConsensusVote> = judgements
            .into_iter()
            .map(|(agent, judgement)| {
                let fault = faulty.iter().find(|f| f.agent == agent).map(|f| f.behaviour);
                ConsensusVote {
                    agent,
                    choice: consensus::cast(judgement.approve, fault, &mut self.rng),
                    reason: judgement.reason,
                    injected_fault: fault.map(|f| f.as_str().to_owned()),
                }
            })
            .collect();
        let round = consensus::tally(plan.summary(), votes);
        let tally = Tally {
            approvals: round.approvals,
            voters: round.voters,
            quorum: round.quorum,
            tolerated: round.tolerated,
            passed: round.passed,
            dissent: round.dissent.clone(),
        };
        let line = tally.line();
        metrics::counter!(
            "antibody_consensus_rounds_total",
            "outcome" => if round.passed { "passed" } else { "failed" }
        )
        .increment(1);
        self.cx.log.append(ServerMessage::Consensus {
            incident_id: self.id,
            round: round.clone(),
        });
        let confidence = round.approvals as f64 / round.voters.max(1) as f64;
        let status = if round.passed {
            ActionStatus::Completed
        } else {
            ActionStatus::Failed
        };
        self.finished(
            action,
            status,
            Report {
                details: ActionDetails::Vote(Vote {
                    vote_on: plan.clone(),
                    tally: Some(tally),
                }),
                confidence,
            },
            duration,
        );
        Ok((round.passed, line))
    }

    /// Safety checks, steps, verification, and rollback on failure.
    pub(super) async fn remediate(
        &mut self,
        case: &Case,
        plan: &Plan,
        approval: &ApprovalNote,
        attempt: &mut Attempt,
    ) -> Result<Remedy, Stop> {
        // One resolution worker sees the plan through, steps and all.
        let _worker = self.worker(AgentType::Resolution).await?;
        if !self.check_safety(case, plan).await? {
            attempt.outstanding.push("a safety check failed".into());
            return Ok(Remedy::Failed);
        }
        // Nobody is paged for what is being fixed; the silences end with
        // the verdict, whatever it is.
        let silenced = self.silence(plan).await;
        let remedy = self.carry_out(plan, approval, attempt).await;
        self.unsilence(silenced).await;
        remedy
    }

    /// The steps, verification, and the rollback when recovery does not
    /// come.
    async fn carry_out(&mut self, plan: &Plan, approval: &ApprovalNote, attempt: &mut Attempt) -> Result<Remedy, Stop> {
        let Some(done) = self.apply_steps(plan, approval, attempt).await? else {
            return Ok(Remedy::Failed);
        };
        let verdict = self.verify(plan).await?;
        attempt.verified = verdict.verified;
        if verdict.verified {
            self.cx
                .mark(self.id, self.elapsed, MarkKind::Verified, "recovery verified".into());
            return Ok(Remedy::Healed);
        }
        attempt.outstanding = verdict.outstanding;
        if verdict.root_fixed {
            // The plan did its job; what remains has another cause.
            return Ok(Remedy::RootFixed);
        }
        self.roll_back(&done, attempt).await?;
        Ok(Remedy::Failed)
    }

    /// Silences the incident's alerts in Alertmanager while `plan` runs
    /// through an actuator (there are none to silence on the embedded twin).
    async fn silence(&mut self, plan: &Plan) -> Option<Silenced> {
        let silencer = self.cx.silencer.clone()?;
        self.twin.actuator()?;
        let comment = format!(
            "Antibody incident {}: {} runs; silenced until it is verified or rolled back",
            self.id,
            plan.summary()
        );
        let silenced = silencer.silence(self.id, &comment, SILENCE_LIMIT).await;
        if !silenced.ids.is_empty() {
            let line = format!(
                "Silenced {} alert(s) in Alertmanager while the plan runs",
                silenced.ids.len()
            );
            info!(incident = %self.id, silences = ?silenced.ids, "{line}");
            self.note(AgentType::Resolution, line);
        }
        for failure in &silenced.failures {
            warn!(incident = %self.id, "a silence could not be set: {failure}");
            self.note(AgentType::Resolution, format!("Could not silence an alert: {failure}"));
        }
        Some(silenced)
    }

    /// Expires the silences `silence` set.
    async fn unsilence(&mut self, silenced: Option<Silenced>) {
        let (Some(silenced), Some(silencer)) = (silenced, self.cx.silencer.clone()) else {
            return;
        };
        if silenced.ids.is_empty() {
            return;
        }
        let failures = silencer.expire(&silenced.ids).await;
        let line = if failures.is_empty() {
            format!("Expired {} silence(s) in Alertmanager", silenced.ids.len())
        } else {
            format!("Silences not expired (they end by themselves): {}", failures.join("; "))
        };
        info!(incident = %self.id, "{line}");
        self.note(AgentType::Resolution, line);
        for alert in silencer.resolved_while_silenced(&silenced).await {
            self.cx.log.append(ServerMessage::AlertReceived {
                incident_id: self.id,
                alert,
            });
        }
    }

    /// The plan's safety checks, published; true when every one passed.
    async fn check_safety(&mut self, case: &Case, plan: &Plan) -> Result<bool, Stop> {
        let swarm = Arc::clone(&self.cx.swarm);
        let action = self.started(
            AgentType::Resolution,
            ActionDetails::SafetyChecks(SafetyChecks { checks: Vec::new() }),
        );
        let duration = self.seconds(SAFETY_SECONDS);
        self.pass(duration).await?;
        // A watched estate is checked as it is now; one that cannot be read
        // fails the checks, with the reason.
        if let Err(error) = self.refresh().await? {
            let checks = vec![crate::protocol::SafetyCheck {
                name: "estate readable".into(),
                passed: false,
                detail: format!("the estate could not be read: {error}"),
            }];
            self.finished(
                action,
                ActionStatus::Failed,
                Report {
                    details: ActionDetails::SafetyChecks(SafetyChecks { checks }),
                    confidence: 0.6,
                },
                duration,
            );
            return Ok(false);
        }
        let elapsed = self.elapsed;
        let checks = self
            .twin
            .observe(elapsed, |estate| swarm.resolution.safety_checks(case, plan, estate));
        let safe = checks.iter().all(|c| c.passed);
        self.finished(
            action,
            if safe {
                ActionStatus::Completed
            } else {
                ActionStatus::Failed
            },
            Report {
                details: ActionDetails::SafetyChecks(SafetyChecks { checks }),
                confidence: if safe { 0.95 } else { 0.6 },
            },
            duration,
        );
        Ok(safe)
    }

    /// Applies the plan's steps one at a time; on a step that fails, rolls
    /// back what was applied and returns `None`.
    async fn apply_steps(
        &mut self,
        plan: &Plan,
        approval: &ApprovalNote,
        attempt: &mut Attempt,
    ) -> Result<Option<Vec<Done>>, Stop> {
        let mut done = Vec::new();
        for (i, step) in plan.steps.iter().enumerate() {
            let order = self.order(plan, i, Some(approval.clone()));
            let outcome = match self.twin.actuator() {
                None => self.apply_embedded(step, order).await?,
                Some(actuator) => self.apply_sent(&actuator, order).await?,
            };
            match outcome {
                Ok((step_done, took)) => {
                    let label = step.label();
                    attempt
                        .executed
                        .push((label.clone(), (took.as_secs_f64() * 10.0).round() / 10.0));
                    self.cx.mark(self.id, self.elapsed, MarkKind::Step, label);
                    done.push(step_done);
                }
                Err(error) => {
                    attempt.outstanding.push(error);
                    self.roll_back(&done, attempt).await?;
                    return Ok(None);
                }
            }
        }
        Ok(Some(done))
    }

    /// Step `i` of `plan` as the order an actuator is sent.
    fn order(&self, plan: &Plan, i: usize, approval: Option<ApprovalNote>) -> ActionOrder {
        ActionOrder {
            incident_id: Some(self.id),
            step: Some(i + 1),
            of: Some(plan.steps.len()),
            approval,
            ..ActionOrder::of(plan.steps[i].remediation.clone())
        }
    }

    /// The exact request each step of `plan` would send, for the person
    /// asked to approve it; each step's key is assigned when it runs.
    pub(super) fn requests(&self, plan: &Plan) -> Vec<ActuatorRequest> {
        const KEY: &str = "(the step's action id, assigned when it runs)";
        let actuator = self.twin.actuator();
        (0..plan.steps.len())
            .map(|i| {
                let order = self.order(plan, i, None);
                match &actuator {
                    Some(actuator) => actuator.plan(order, KEY),
                    None => actuator::embedded_plan(order, KEY),
                }
            })
            .collect()
    }

    /// One step on the embedded twin, in-process: what it changed and how
    /// long it took, or why it failed.
    async fn apply_embedded(&mut self, step: &PlannedStep, order: ActionOrder) -> Result<StepResult, Stop> {
        let announced = announce(&order, |key| Actuation {
            request: actuator::embedded_plan(order.clone(), key),
            receipt: None,
            attempts: 0,
        });
        let action = self.started_with(AgentType::Resolution, |id| ActionDetails::Step(announced(id)));
        let jitter = self.rng.random_range(1.0 - STEP_JITTER..1.0 + STEP_JITTER);
        let duration = Duration::from_secs_f64(step.seconds * jitter);
        self.pass(duration).await?;
        let elapsed = self.elapsed;
        let applied = self.twin.act(elapsed, |estate| estate.apply(&step.remediation));
        let ActionDetails::Step(announced) = action.details.clone() else {
            unreachable!("a step was announced")
        };
        let mut actuation = announced.actuation.clone().expect("announced with its plan");
        actuation.attempts = 1;
        actuation.receipt = Some(embedded_receipt(action.action_id, &step.remediation, &applied));
        let (status, details, result) = match applied {
            Ok(done) => {
                self.publish_changes(&done.changes);
                let details = Step {
                    changes: done.changes.iter().map(ConfigChange::event).collect(),
                    side_effects: done.side_effects.clone(),
                    actuation: Some(actuation),
                    ..announced
                };
                (ActionStatus::Completed, details, Ok((Done::Embedded(done), duration)))
            }
            Err(error) => {
                let details = Step {
                    error: Some(error.to_string()),
                    actuation: Some(actuation),
                    ..announced
                };
                (ActionStatus::Failed, details, Err(error.to_string()))
            }
        };
        let report = Report {
            details: ActionDetails::Step(details),
            confidence: if result.is_ok() { 0.95 } else { 0.9 },
        };
        self.finished(action, status, report, duration);
        Ok(result)
    }

    /// One step through an actuator outside the engine. The request, with
    /// its idempotency key (the action's id), is published before it is
    /// sent, so the record shows what may have reached the estate.
    async fn apply_sent(&mut self, actuator: &HttpActuator, order: ActionOrder) -> Result<StepResult, Stop> {
        let remediation = order.remediation.clone();
        let announced = announce(&order, |key| Actuation {
            request: actuator.plan(order.clone(), key),
            receipt: None,
            attempts: 0,
        });
        let action = self.started_with(AgentType::Resolution, |id| ActionDetails::Step(announced(id)));
        let ActionDetails::Step(announced) = action.details.clone() else {
            unreachable!("a step was announced")
        };
        let request = announced
            .actuation
            .as_ref()
            .expect("announced with its plan")
            .request
            .clone();
        if let Some(reason) = self.recorded_first().await? {
            let error = format!("not sent: it could not be recorded first ({reason})");
            let details = Step {
                error: Some(error.clone()),
                ..announced
            };
            let report = Report {
                details: ActionDetails::Step(details),
                confidence: 0.9,
            };
            self.finished(action, ActionStatus::Failed, report, Duration::ZERO);
            return Ok(Err(format!("{}: {error}", remediation.label())));
        }
        let began = self.clock.now();
        let delivery = tokio::select! {
            delivery = actuator.execute(&request) => delivery,
            () = self.interrupt.cancelled() => return Err(Stop::Interrupted),
        };
        let took = self.clock.now().saturating_sub(began);
        self.elapsed += took;
        let details = delivered(announced, &request, &delivery);
        let (status, result) = match (delivery.failure, delivery.receipt) {
            (None, Some(receipt)) => (
                ActionStatus::Completed,
                Ok((Done::Sent(Box::new(Sent { request, receipt })), took)),
            ),
            (failure, _) => {
                let why = failure.unwrap_or_else(|| "the actuator gave no receipt".into());
                (ActionStatus::Failed, Err(format!("{}: {why}", remediation.label())))
            }
        };
        let report = Report {
            details: ActionDetails::Step(details),
            confidence: if result.is_ok() { 0.95 } else { 0.9 },
        };
        self.finished(action, status, report, took);
        Ok(result)
    }

    /// Waits until everything published so far is stored (write-ahead: a
    /// step's request is stored before it leaves, so a server killed while
    /// it is out finds it at restart and asks its receiver what became of
    /// it, rather than sending it again); why not, if the log halted.
    async fn recorded_first(&mut self) -> Result<Option<String>, Stop> {
        tokio::select! {
            () = self.cx.log.flush() => Ok(self.cx.log.halted()),
            () = self.interrupt.cancelled() => Err(Stop::Interrupted),
        }
    }

    /// Watches the telemetry until recovery shows and holds, the root
    /// recovers alone for a while (another cause), or time runs out.
    async fn verify(&mut self, plan: &Plan) -> Result<Verdict, Stop> {
        let swarm = Arc::clone(&self.cx.swarm);
        let verifying = Verification {
            watch: plan.watch.clone(),
            window_seconds: VERIFY_WINDOW as u64,
            verified: None,
            outstanding: Vec::new(),
            root_recovered: None,
            watched_seconds: None,
        };
        let action = self.started(AgentType::Resolution, ActionDetails::Verification(verifying.clone()));
        let started = self.elapsed;
        let mut verdict = Verdict::default();
        let mut root_fixed_for = 0;
        while self.elapsed - started < VERIFY_LIMIT {
            self.pass(VERIFY_POLL).await?;
            if self.elapsed - started < Duration::from_secs(VERIFY_WINDOW as u64) {
                continue;
            }
            // A watched estate is read afresh; one that cannot be read is
            // not verified, and the verdict says why.
            if let Err(error) = self.refresh().await? {
                verdict.outstanding = vec![format!("the estate could not be read: {error}")];
                verdict.root_fixed = false;
                root_fixed_for = 0;
                continue;
            }
            let elapsed = self.elapsed;
            (verdict.outstanding, verdict.root_fixed) = self.twin.observe(elapsed, |estate| {
                (
                    swarm.resolution.outstanding(plan, estate, VERIFY_WINDOW),
                    swarm.resolution.root_recovered(plan, estate, VERIFY_WINDOW),
                )
            });
            if verdict.outstanding.is_empty() {
                verdict.verified = true;
                break;
            }
            // The root has held for a while and the rest does not follow:
            // another cause, no point waiting out the limit.
            root_fixed_for = if verdict.root_fixed { root_fixed_for + 1 } else { 0 };
            if root_fixed_for >= ROOT_FIXED_POLLS {
                break;
            }
        }
        let took = self.elapsed - started;
        let details = Verification {
            verified: Some(verdict.verified),
            outstanding: verdict.outstanding.clone(),
            root_recovered: (!verdict.verified && verdict.root_fixed).then(|| plan.root.service.clone()),
            watched_seconds: Some(took.as_secs_f64()),
            ..verifying
        };
        self.finished(
            action,
            if verdict.verified {
                ActionStatus::Completed
            } else {
                ActionStatus::Failed
            },
            Report {
                details: ActionDetails::Verification(details),
                confidence: if verdict.verified { 0.95 } else { 0.85 },
            },
            took,
        );
        Ok(verdict)
    }

    /// Claims `root` for this incident, or, while another incident
    /// remediates it, waits until it is free (or patience runs out) and
    /// returns `None`: the caller looks again first, since the other's fix
    /// may be ours too.
    pub(super) async fn claim_or_wait(&mut self, root: &str) -> Result<Option<Claim>, Stop> {
        let holder = match self.cx.claims.claim(root, self.id) {
            Ok(claim) => return Ok(Some(claim)),
            Err(holder) => holder,
        };
        let wait = ClaimWait {
            holder,
            root: root.to_owned(),
        };
        let action = self.started(AgentType::Resolution, ActionDetails::ClaimWait(wait.clone()));
        let started = self.elapsed;
        while self.cx.claims.claim(root, self.id).is_err() && self.elapsed - started < CLAIM_PATIENCE {
            self.pass(VERIFY_POLL).await?;
        }
        let took = self.elapsed - started;
        self.finished(
            action,
            ActionStatus::Completed,
            Report {
                details: ActionDetails::ClaimWait(wait),
                confidence: 0.9,
            },
            took,
        );
        Ok(None)
    }

    /// Undoes what `done` did, newest first.
    async fn roll_back(&mut self, done: &[Done], attempt: &mut Attempt) -> Result<(), Stop> {
        if done.is_empty() {
            return Ok(());
        }
        let action = self.started(
            AgentType::Resolution,
            ActionDetails::Rollback(Rollback {
                steps: done.len(),
                rolled_back: Vec::new(),
                receipts: Vec::new(),
            }),
        );
        let duration = Duration::from_secs_f64(0.4 * done.len() as f64);
        self.pass(duration).await?;
        let mut undone = Vec::new();
        let mut receipts = Vec::new();
        for step in done.iter().rev() {
            match step {
                Done::Embedded(applied) => {
                    let elapsed = self.elapsed;
                    let changes = self.twin.act(elapsed, |estate| estate.undo(applied));
                    self.publish_changes(&changes);
                    let label = applied.remediation.label();
                    undone.push(if changes.is_empty() {
                        format!("{label} (cannot be undone; left in place)")
                    } else {
                        label
                    });
                }
                Done::Sent(sent) => {
                    let Sent { request, receipt } = sent.as_ref();
                    let actuator = self.twin.actuator().expect("a sent step's estate has its actuator");
                    let label = receipt.remediation.label();
                    let undo = tokio::select! {
                        undo = actuator.undo(receipt, request) => undo,
                        () = self.interrupt.cancelled() => return Err(Stop::Interrupted),
                    };
                    match undo {
                        Ok(receipt) => {
                            undone.push(label);
                            receipts.push(receipt);
                        }
                        Err(why) => undone.push(format!("{label} (not undone: {why})")),
                    }
                }
            }
        }
        attempt.rolled_back.clone_from(&undone);
        self.cx.mark(
            self.id,
            self.elapsed,
            MarkKind::Rollback,
            format!("rolled back {} step(s)", undone.len()),
        );
        self.finished(
            action,
            ActionStatus::Completed,
            Report {
                details: ActionDetails::Rollback(Rollback {
                    steps: done.len(),
                    rolled_back: undone,
                    receipts,
                }),
                confidence: 0.9,
            },
            duration,
        );
        Ok(())
    }
}

/// A step carried out, kept to undo it by.
enum Done {
    /// In-process, on the embedded twin.
    Embedded(Applied),
    /// Through an actuator: the request that carried it, and its receipt.
    Sent(Box<Sent>),
}

/// A step an actuator carried out.
struct Sent {
    request: ActuatorRequest,
    receipt: ActionReceipt,
}

/// The embedded twin's receipt for a step it applied (or refused): its
/// action's id for both id and key.
fn embedded_receipt(
    id: uuid::Uuid,
    remediation: &Remediation,
    applied: &Result<Applied, ActionError>,
) -> ActionReceipt {
    ActionReceipt {
        id: id.to_string(),
        idempotency_key: id.to_string(),
        remediation: remediation.clone(),
        status: match applied {
            Ok(_) => ActionOutcome::Succeeded,
            Err(_) => ActionOutcome::Failed,
        },
        detail: applied.as_ref().err().map(ToString::to_string),
        changes: Vec::new(),
        side_effects: Vec::new(),
    }
}

/// The step `announced` once `request` was delivered: what the receipt
/// says it changed, and why it failed, if it did.
fn delivered(announced: Step, request: &ActuatorRequest, delivery: &Delivery) -> Step {
    let receipt = delivery.receipt.as_ref();
    Step {
        changes: receipt.iter().flat_map(|r| r.changes.clone()).collect(),
        side_effects: receipt.iter().flat_map(|r| r.side_effects.clone()).collect(),
        error: delivery.failure.clone(),
        actuation: Some(Box::new(Actuation {
            request: request.clone(),
            receipt: delivery.receipt.clone(),
            attempts: delivery.attempts,
        })),
        ..announced
    }
}

/// A step's end: what it did and how long it took, or why it failed.
type StepResult = Result<(Done, Duration), String>;

/// The step as announced before it runs, given its action's id (its
/// idempotency key): what it will do, and the request that will carry it.
fn announce(order: &ActionOrder, plan: impl FnOnce(&str) -> Actuation) -> impl FnOnce(uuid::Uuid) -> Step {
    let step = Step {
        step: order.step.expect("the orchestrator numbers its steps"),
        of: order.of.expect("the orchestrator numbers its steps"),
        action: order.remediation.kind,
        target: order.remediation.target.clone(),
        changes: Vec::new(),
        side_effects: Vec::new(),
        error: None,
        actuation: None,
    };
    move |id| Step {
        actuation: Some(Box::new(plan(&id.to_string()))),
        ..step
    }
}
