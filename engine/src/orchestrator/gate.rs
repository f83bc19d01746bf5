//! The governance gate between a passed vote and the first step: policy
//! decides; a plan that needs a person waits for one (escalating on
//! timeout); an approved plan is looked at again right before it runs, and
//! a stale approval does not run.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use rand::Rng;
use tracing::info;

use super::{Run, Stop, VERIFY_WINDOW, watch_list};
use crate::{
    agents::{Case, Plan, communication::Attempt, diagnosis::Hypothesis, resolution::outstanding_in},
    governance::{self, HumanDecision, Ruling},
    protocol::{
        Approval, ApprovalNote, ApprovalOption, ApprovalState, PolicyDecision, PolicyInput, PolicyStage, PolicyVerdict,
        ServerMessage,
    },
};

/// Alternatives shown to an approver besides the proposal.
const ALTERNATIVES: usize = 3;
/// Evidence lines shown to an approver.
const EVIDENCE_LINES: usize = 8;

/// How governance ended for a plan.
pub(super) enum Clearance {
    /// Run it, on the word of whoever let it.
    Run(ApprovalNote),
    /// Policy denied this plan; another hypothesis's plan may still run.
    Denied,
    /// A person rejected the plan after seeing it and its alternatives, or
    /// nobody answered and the safe default is to leave the estate alone:
    /// the incident goes to people, with this line.
    HandedOver(String),
    /// A person approved it, but by the time it would run it no longer
    /// fitted: the trouble had cleared (`cleared`), or the plan had changed.
    Stale { cleared: bool },
}

/// How a wait for a person ended.
enum Wake {
    Decided(HumanDecision),
    TimedOut,
    /// A demo's autopilot's turn: nobody decided in time.
    Autopilot,
    Interrupted,
}

impl Run<'_> {
    /// Policy's decision on `plan`, and a person's when policy asks for one.
    pub(super) async fn govern(
        &mut self,
        case: &Case,
        hypothesis: &Hypothesis,
        plan: &Plan,
        attempt: &mut Attempt,
    ) -> Result<Clearance, Stop> {
        let input = policy_input(case, hypothesis, plan);
        let ruling = self.cx.policy.decide(&input);
        let decision = self.decided(PolicyStage::Proposal, plan, &ruling, input, None, false);
        attempt.governance.push(decision.describe());
        match ruling.verdict {
            PolicyVerdict::Auto => Ok(Clearance::Run(ApprovalNote {
                by: "policy".into(),
                who: ruling.rule.clone(),
            })),
            PolicyVerdict::Deny => Ok(Clearance::Denied),
            PolicyVerdict::Human => {
                let approval = self.seek_approval(case, hypothesis, plan, &ruling).await?;
                attempt.governance.push(approval.outcome());
                if !approval.allows() {
                    return Ok(Clearance::HandedOver(approval.outcome()));
                }
                // The re-check reads a watched estate as it is now.
                if let Err(error) = self.refresh().await? {
                    let why = format!("the estate could not be read for the re-check before the first step: {error}");
                    attempt.governance.push(why.clone());
                    return Ok(Clearance::HandedOver(why));
                }
                Ok(self.recheck(case, hypothesis, plan, &approval, attempt))
            }
        }
    }

    /// Publishes a policy decision, and keeps it in the incident's timeline.
    fn decided(
        &mut self,
        stage: PolicyStage,
        plan: &Plan,
        ruling: &Ruling,
        input: PolicyInput,
        approval_id: Option<uuid::Uuid>,
        stale: bool,
    ) -> PolicyDecision {
        let decision = PolicyDecision {
            stage,
            plan: plan.summary(),
            verdict: ruling.verdict,
            rule: ruling.rule.clone(),
            reason: ruling.reason.clone(),
            revision: self.cx.policy.revision.clone(),
            input,
            approval_id,
            stale,
        };
        metrics::counter!(
            "antibody_policy_decisions_total",
            "verdict" => if stale { "stale" } else { ruling.verdict.as_str() }
        )
        .increment(1);
        let text = decision.describe();
        info!(rule = ruling.rule, verdict = ruling.verdict.as_str(), stale, "{text}");
        self.note(crate::protocol::AgentType::Resolution, text);
        self.cx.log.append(ServerMessage::PolicyDecision {
            incident_id: self.id,
            decision: decision.clone(),
        });
        decision
    }

    /// Asks the escalation chain in turn; returns the decided approval.
    async fn seek_approval(
        &mut self,
        case: &Case,
        hypothesis: &Hypothesis,
        plan: &Plan,
        ruling: &Ruling,
    ) -> Result<Approval, Stop> {
        let timeout = Duration::from_secs_f64(self.cx.policy.approval.timeout_seconds);
        let mut approval = self.approval_request(case, hypothesis, plan, ruling, timeout);
        let reply = self.cx.approvals.open(approval.clone());
        self.announce_request(&approval);
        let asked = self.clock.now();
        let decision = self.await_decision(&mut approval, reply, timeout).await?;
        let waited = self.clock.now().saturating_sub(asked);
        self.elapsed += waited;
        self.approval_wait += waited;
        approval.waited_seconds = Some((waited.as_secs_f64() * 10.0).round() / 10.0);
        settle(&mut approval, decision);
        metrics::counter!("antibody_approvals_total", "state" => approval.state.as_str()).increment(1);
        self.cx.mark(
            self.id,
            self.elapsed,
            crate::protocol::MarkKind::Decision,
            approval.outcome(),
        );
        self.note(crate::protocol::AgentType::Resolution, approval.outcome());
        self.cx.log.append(ServerMessage::ApprovalDecided {
            approval: approval.clone(),
        });
        Ok(approval)
    }

    /// The request put to the first person of the escalation chain, who has
    /// `timeout` of simulated time to answer.
    fn approval_request(
        &mut self,
        case: &Case,
        hypothesis: &Hypothesis,
        plan: &Plan,
        ruling: &Ruling,
        timeout: Duration,
    ) -> Approval {
        let settings = &self.cx.policy.approval;
        let now = Utc::now();
        Approval {
            approval_id: uuid::Builder::from_random_bytes(self.rng.random()).into_uuid(),
            incident_id: self.id,
            incident_title: case.incident.title.clone(),
            severity: case.incident.severity,
            proposal: ApprovalOption {
                requests: self.requests(plan),
                ..option(hypothesis, plan)
            },
            alternatives: self.alternatives(case, hypothesis),
            evidence: evidence(case, hypothesis),
            rule: ruling.rule.clone(),
            reason: ruling.reason.clone(),
            approver: settings.escalation[0].clone(),
            level: 0,
            escalation: settings.escalation.clone(),
            timeout_seconds: settings.timeout_seconds,
            expires_at: now + self.wall(timeout),
            on_timeout: settings.on_timeout,
            requested_at: now,
            state: ApprovalState::Pending,
            decided_by: None,
            decided_at: None,
            comment: None,
            waited_seconds: None,
            autopilot_at: self
                .cx
                .autopilot
                .map(|after| now + chrono::Duration::from_std(after).unwrap_or(chrono::Duration::MAX)),
        }
    }

    /// `timeout` of simulated time on the wall clock, where people answer.
    fn wall(&self, timeout: Duration) -> chrono::Duration {
        chrono::Duration::from_std(timeout.div_f64(self.clock.speed().factor())).unwrap_or(chrono::Duration::MAX)
    }

    /// Tells the feed and the stream who is asked now.
    fn announce_request(&mut self, approval: &Approval) {
        self.note(crate::protocol::AgentType::Resolution, approval.describe_request());
        self.cx.log.append(ServerMessage::ApprovalRequested {
            approval: approval.clone(),
        });
    }

    /// Waits for a person, escalating at each timeout; `None` when the whole
    /// chain let its time run out.
    async fn await_decision(
        &mut self,
        approval: &mut Approval,
        mut reply: tokio::sync::oneshot::Receiver<HumanDecision>,
        timeout: Duration,
    ) -> Result<Option<HumanDecision>, Stop> {
        let approvals = self.cx.approvals.clone();
        // The autopilot's wait is wall time (the countdown people watch),
        // so simulated time at the engine's speed.
        let autopilot = self
            .cx
            .autopilot
            .map(|after| after.mul_f64(self.clock.speed().factor()));
        let clock = self.clock;
        let autopilot_sleep = async move {
            match autopilot {
                Some(after) => clock.sleep(after).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(autopilot_sleep);
        loop {
            let wake = tokio::select! {
                decision = &mut reply => match decision {
                    Ok(decision) => Wake::Decided(decision),
                    // The sender lives in the book until this task or a
                    // decision takes it out; dropped unanswered, the engine
                    // itself is going away.
                    Err(_) => Wake::Interrupted,
                },
                () = self.clock.sleep(timeout) => Wake::TimedOut,
                () = &mut autopilot_sleep => Wake::Autopilot,
                () = self.interrupt.cancelled() => Wake::Interrupted,
            };
            match wake {
                Wake::Decided(decision) => return Ok(Some(decision)),
                Wake::Autopilot => {
                    let waited = autopilot.unwrap_or_default().div_f64(self.clock.speed().factor());
                    if (approvals
                        .conclude(approval, ApprovalState::Approved, crate::governance::AUTOPILOT)
                        .await)
                        .is_some()
                    {
                        return Ok(Some(HumanDecision {
                            approve: true,
                            approver: crate::governance::AUTOPILOT.to_owned(),
                            comment: Some(format!(
                                "nobody decided within {:.0} s; the demo's autopilot approved the swarm's plan",
                                waited.as_secs_f64()
                            )),
                            at: Utc::now(),
                        }));
                    }
                    // A person's decision got there first.
                    return Ok(reply.await.ok());
                }
                Wake::Interrupted => {
                    if (approvals
                        .conclude(approval, ApprovalState::Withdrawn, "server shutdown")
                        .await)
                        .is_some()
                    {
                        approval.state = ApprovalState::Withdrawn;
                        approval.decided_by = Some("server shutdown".into());
                        approval.decided_at = Some(Utc::now());
                        self.cx.log.append(ServerMessage::ApprovalDecided {
                            approval: approval.clone(),
                        });
                    }
                    return Err(Stop::Interrupted);
                }
                Wake::TimedOut if (approval.level as usize) + 1 < approval.escalation.len() => {
                    approval.level += 1;
                    approval.approver = approval.escalation[approval.level as usize].clone();
                    approval.expires_at = Utc::now() + self.wall(timeout);
                    if !approvals.update(approval) {
                        // A decision arrived as the time ran out.
                        return Ok(reply.await.ok());
                    }
                    self.announce_request(approval);
                }
                Wake::TimedOut => {
                    if (approvals
                        .conclude(approval, ApprovalState::Expired, "policy (timeout)")
                        .await)
                        .is_some()
                    {
                        return Ok(None);
                    }
                    // A decision arrived as the last time ran out.
                    return Ok(reply.await.ok());
                }
            }
        }
    }

    /// Right before an approved plan runs: is the trouble still there, is
    /// the plan still the one approved, does policy still allow it?
    fn recheck(
        &mut self,
        case: &Case,
        hypothesis: &Hypothesis,
        plan: &Plan,
        approval: &Approval,
        attempt: &mut Attempt,
    ) -> Clearance {
        let swarm = Arc::clone(&self.cx.swarm);
        let watch = watch_list(case);
        let elapsed = self.elapsed;
        let (still_wrong, fresh) = self.twin.observe(elapsed, |estate| {
            (
                outstanding_in(&watch, estate, VERIFY_WINDOW),
                swarm.resolution.plan(&swarm.catalog, hypothesis, &watch, estate),
            )
        });
        let current = fresh.as_ref().unwrap_or(plan);
        let input = policy_input(case, hypothesis, current);
        let mut ruling = self.cx.policy.decide(&input);
        // Why the approval no longer holds, if it does not; `true` when the
        // trouble itself is gone.
        let stale: Option<(bool, String)> = if still_wrong.is_empty() {
            Some((
                true,
                "the trouble cleared while the plan waited for approval; nothing needs to run".into(),
            ))
        } else {
            match &fresh {
                None => Some((false, "no plan fits the estate any more".into())),
                Some(p) if p.steps != plan.steps => {
                    Some((false, format!("the plan changed while it waited: now {}", p.summary())))
                }
                Some(_) if ruling.verdict == PolicyVerdict::Deny => {
                    Some((false, format!("policy now denies it: {}", ruling.reason)))
                }
                Some(_) => None,
            }
        };
        ruling.reason = match &stale {
            Some((_, why)) => why.clone(),
            None => format!(
                "approved by {} and unchanged: the estate still needs it and policy still allows it",
                approval.decided_by.as_deref().unwrap_or("policy")
            ),
        };
        let is_stale = stale.is_some();
        self.decided(
            PolicyStage::PreExecution,
            plan,
            &ruling,
            input,
            Some(approval.approval_id),
            is_stale,
        );
        match stale {
            Some((cleared, why)) => {
                attempt.governance.push(format!("Approval stale, not run: {why}"));
                Clearance::Stale { cleared }
            }
            None => Clearance::Run(ApprovalNote {
                by: "person".into(),
                who: approval.decided_by.clone().unwrap_or_else(|| approval.approver.clone()),
            }),
        }
    }

    /// The other hypotheses' plans, most likely first.
    fn alternatives(&mut self, case: &Case, chosen: &Hypothesis) -> Vec<ApprovalOption> {
        let swarm = Arc::clone(&self.cx.swarm);
        let watch = watch_list(case);
        let others: Vec<Hypothesis> = case
            .diagnosis
            .iter()
            .flat_map(|d| &d.hypotheses)
            .filter(|h| h.root != chosen.root)
            .take(ALTERNATIVES)
            .cloned()
            .collect();
        let elapsed = self.elapsed;
        self.twin.observe(elapsed, |estate| {
            others
                .iter()
                .filter_map(|h| {
                    swarm
                        .resolution
                        .plan(&swarm.catalog, h, &watch, estate)
                        .map(|plan| option(h, &plan))
                })
                .collect()
        })
    }
}

/// The facts policy decides on.
fn policy_input(case: &Case, hypothesis: &Hypothesis, plan: &Plan) -> PolicyInput {
    let actions: Vec<_> = plan.steps.iter().map(|s| s.remediation.kind).collect();
    governance::input(
        &actions,
        case.incident.severity,
        case.diagnosis.as_ref().map_or(0, |d| d.blast_radius.len()),
        hypothesis.confidence,
    )
}

/// A plan as an approver sees it.
fn option(hypothesis: &Hypothesis, plan: &Plan) -> ApprovalOption {
    let seconds: f64 = plan.steps.iter().map(|s| s.seconds).sum();
    ApprovalOption {
        hypothesis: hypothesis.label(),
        plan: plan.summary(),
        steps: plan.steps.iter().map(|s| s.label()).collect(),
        success_probability: (hypothesis.confidence * 1000.0).round() / 1000.0,
        estimate_seconds: ((seconds + VERIFY_WINDOW as f64) * 10.0).round() / 10.0,
        requests: Vec::new(),
    }
}

/// What the agents found, for the approver.
fn evidence(case: &Case, hypothesis: &Hypothesis) -> Vec<String> {
    let mut lines = Vec::new();
    for e in &hypothesis.evidence {
        lines.push(format!(
            "{} {} {:+.1}σ from baseline",
            hypothesis.root.service,
            e.metric.as_str(),
            e.sigma
        ));
    }
    if !hypothesis.path.is_empty() {
        lines.push(format!("Dependency path: {}", hypothesis.path.join(" → ")));
    }
    if let Some(detection) = &case.detection {
        for a in detection.anomalies.iter().take(3) {
            lines.push(format!(
                "{} {} at {:.1} against a baseline of {:.1} ({:+.1}σ)",
                a.service,
                a.metric.as_str(),
                a.value,
                a.baseline,
                a.sigma
            ));
        }
    }
    if let Some(prediction) = &case.prediction {
        lines.push(format!("Waiting costs ${:.0}/min", prediction.impact_per_minute));
        if let Some(breach) = prediction.breaches.first() {
            lines.push(format!(
                "{} breaches {} in {:.0}s",
                breach.service, breach.objective, breach.seconds
            ));
        }
        if let Some(risk) = prediction.cascade.first() {
            lines.push(format!(
                "{} degrades next with probability {:.0}%",
                risk.service,
                risk.probability * 100.0
            ));
        }
    }
    lines.truncate(EVIDENCE_LINES);
    lines
}

/// Writes the outcome into the approval: the person's decision, or the
/// policy's safe default when nobody answered.
fn settle(approval: &mut Approval, decision: Option<HumanDecision>) {
    match decision {
        Some(decision) => {
            approval.state = if decision.approve {
                ApprovalState::Approved
            } else {
                ApprovalState::Rejected
            };
            approval.decided_by = Some(decision.approver);
            approval.decided_at = Some(decision.at);
            approval.comment = decision.comment;
        }
        None => {
            approval.state = ApprovalState::Expired;
            approval.decided_by = Some("policy (timeout)".into());
            approval.decided_at = Some(Utc::now());
            approval.comment = Some(format!(
                "nobody answered ({} asked, {:.0}s each); safe default: {}",
                approval.escalation.join(", then "),
                approval.timeout_seconds,
                if approval.on_timeout == PolicyVerdict::Auto {
                    "run the plan"
                } else {
                    "leave the estate alone and hand over to people"
                }
            ));
        }
    }
}
