//! Treatment: hypotheses tried in rank order, each through the claim on its
//! root service, the vote, governance, and remediation with verification,
//! until one heals the estate, the incident is handed to people, or the
//! hypotheses run out; then the conclusion that the report and the status
//! carry.

use std::{sync::Arc, time::Duration};

use super::{MAX_ATTEMPTS, Remedy, Run, Stop, add_missing, gate::Clearance, reexamine, watch_list};
use crate::{
    agents::{Case, Hypothesis, Plan, Report, communication::Attempt},
    catalog::{FaultyVoter, RootCause},
    claims::Claim,
    protocol::{ActionDetails, ActionStatus, Advice, AgentType, FixOutcome, FixRecord, IncidentStatus},
    twin::ActionKind,
};

/// What treating the incident came to.
#[derive(Default)]
pub(super) struct Treatment {
    /// Every plan that reached a vote, in order.
    pub attempts: Vec<Attempt>,
    /// Every action run, in order.
    pub executed: Vec<ActionKind>,
    /// Every fix that ran, with how it ended (for the incident memory).
    pub fixes: Vec<FixRecord>,
    /// The root cause whose fix healed the estate (or that another
    /// incident's fix healed while this one waited on its claim); with two
    /// causes, the first fixed. Set once the whole estate is verified.
    pub acted_on: Option<RootCause>,
    /// The causes whose fixes were verified, in order: more than one when
    /// faults happened together.
    fixed: Vec<RootCause>,
    /// The services the fixed causes' plans were verified on: what is
    /// mended must stay mended, so every later plan is verified on them
    /// too (a rollback's restart can hurt a service an earlier fix healed).
    mended: Vec<String>,
    /// Root causes already tried (or that had no plan).
    tried: Vec<RootCause>,
    /// Times this incident waited on another's claim.
    waits: usize,
    /// The trouble cleared while a plan waited for approval.
    cleared_while_waiting: bool,
    /// Why people took over, when they did.
    handed_over: Option<String>,
    /// Advisory mode: the root cause whose plan was proposed.
    advised: Option<RootCause>,
}

/// Where a hypothesis's turn leaves the treatment.
enum Turn {
    /// Try the next hypothesis.
    Next,
    /// The estate moved on while the plan waited: plan this root afresh.
    Replan,
    /// Treatment is over.
    Done,
}

/// Tries the hypotheses in rank order, at most [`MAX_ATTEMPTS`] plans.
pub(super) async fn treat(run: &mut Run<'_>, case: &mut Case, faulty: &[FaultyVoter]) -> Result<Treatment, Stop> {
    let swarm = Arc::clone(&run.cx.swarm);
    let mut t = Treatment::default();
    while t.attempts.len() < MAX_ATTEMPTS {
        let Some(hypothesis) = case
            .diagnosis
            .as_ref()
            .and_then(|d| d.hypotheses.iter().find(|h| !t.tried.contains(&h.root)).cloned())
        else {
            break;
        };
        // One cause of several is verified on what it alone explains.
        let mut watch = (case.diagnosis.as_ref())
            .and_then(|d| d.watched_for_cause(&hypothesis.root))
            .unwrap_or_else(|| watch_list(case));
        add_missing(&mut watch, &t.mended);
        let elapsed = run.elapsed;
        let Some(plan) = run.twin.observe(elapsed, |estate| {
            swarm.resolution.plan(&swarm.catalog, &hypothesis, &watch, estate)
        }) else {
            t.tried.push(hypothesis.root.clone());
            continue;
        };
        // Another incident is already working on this root: wait, then
        // look again, since its fix may be ours too. Patience spent, go
        // ahead without the claim.
        let claim = if t.waits < MAX_ATTEMPTS {
            let Some(claim) = run.claim_or_wait(&plan.root.service).await? else {
                t.waits += 1;
                if reexamine(run, case).await? {
                    t.acted_on = Some(plan.root.clone());
                    break;
                }
                continue;
            };
            Some(claim)
        } else {
            run.cx.claims.claim(&plan.root.service, run.id).ok()
        };
        t.tried.push(hypothesis.root.clone());
        match t.attempt(run, case, faulty, &hypothesis, &plan, claim).await? {
            Turn::Next => {}
            Turn::Replan => t.tried.retain(|root| *root != hypothesis.root),
            Turn::Done => break,
        }
    }
    Ok(t)
}

impl Treatment {
    /// One plan: the vote, governance, then remediation, holding `claim`
    /// on the plan's root until the steps are done.
    async fn attempt(
        &mut self,
        run: &mut Run<'_>,
        case: &mut Case,
        faulty: &[FaultyVoter],
        hypothesis: &Hypothesis,
        plan: &Plan,
        claim: Option<Claim>,
    ) -> Result<Turn, Stop> {
        let (approved, line) = run.vote(case, plan, faulty).await?;
        let mut attempt = Attempt {
            hypothesis: hypothesis.label(),
            consensus: line,
            approved,
            governance: Vec::new(),
            executed: Vec::new(),
            verified: false,
            outstanding: Vec::new(),
            rolled_back: Vec::new(),
        };
        if !approved {
            self.attempts.push(attempt);
            return Ok(Turn::Next);
        }
        if run.twin.advisory() || run.cx.dry_run {
            advise(run, hypothesis, plan);
            let line = if run.cx.dry_run {
                "dry run: the actuator's exact requests shown, none sent"
            } else {
                "advisory: proposed to people, not run"
            };
            attempt.governance.push(line.to_owned());
            self.attempts.push(attempt);
            self.advised = Some(plan.root.clone());
            return Ok(Turn::Done);
        }
        let clearance = run.govern(case, hypothesis, plan, &mut attempt).await?;
        let approval = match clearance {
            Clearance::Run(approval) => approval,
            withheld => {
                attempt.approved = false;
                self.attempts.push(attempt);
                drop(claim);
                return self.withheld(run, case, withheld).await;
            }
        };
        let remedy = run.remediate(case, plan, &approval, &mut attempt).await?;
        // Done with the root: a second cause is looked for unclaimed.
        drop(claim);
        let ran = &plan.steps[..attempt.executed.len()];
        self.executed.extend(ran.iter().map(|s| s.remediation.kind));
        if !ran.is_empty() {
            self.fixes.push(FixRecord {
                service: plan.root.service.clone(),
                fault: plan.root.fault.as_str().to_owned(),
                playbook: plan.playbook.clone(),
                actions: ran.iter().map(|s| s.remediation.kind.as_str().to_owned()).collect(),
                outcome: match remedy {
                    Remedy::Healed | Remedy::RootFixed => FixOutcome::Healed,
                    Remedy::Failed => FixOutcome::Failed,
                },
            });
        }
        self.attempts.push(attempt);
        if matches!(remedy, Remedy::Healed | Remedy::RootFixed) {
            self.fixed.push(plan.root.clone());
            add_missing(&mut self.mended, &plan.watch);
        }
        let causes_left = (case.diagnosis.as_ref()).is_some_and(|d| d.causes_left(&self.fixed).next().is_some());
        let healed = match remedy {
            Remedy::Healed if !causes_left => true,
            // Another cause: study what is left, and fix it next.
            Remedy::Healed | Remedy::RootFixed => reexamine(run, case).await?,
            Remedy::Failed => false,
        };
        if !healed {
            return Ok(Turn::Next);
        }
        self.acted_on = self.fixed.first().cloned();
        Ok(Turn::Done)
    }

    /// Where a plan that governance did not let run leaves the treatment.
    async fn withheld(&mut self, run: &mut Run<'_>, case: &mut Case, clearance: Clearance) -> Result<Turn, Stop> {
        match clearance {
            Clearance::Run(_) => unreachable!("a cleared plan runs"),
            Clearance::Denied => Ok(Turn::Next),
            Clearance::HandedOver(why) => {
                self.handed_over = Some(why);
                Ok(Turn::Done)
            }
            Clearance::Stale { cleared } if cleared && reexamine(run, case).await? => {
                self.cleared_while_waiting = true;
                Ok(Turn::Done)
            }
            Clearance::Stale { .. } => Ok(Turn::Replan),
        }
    }

    /// How the incident ends, and the report's one-line summary of why.
    pub(super) fn conclusion(&self, case: &Case) -> (IncidentStatus, String) {
        let anomalous = case.detection.as_ref().is_some_and(|d| !d.anomalies.is_empty());
        let nothing_tried = self.tried.is_empty() && self.acted_on.is_none();
        let all_failed_before = case
            .diagnosis
            .as_ref()
            .map_or(0, |d| if d.hypotheses.is_empty() { d.skipped.len() } else { 0 });
        let escalated = |why: String| (IncidentStatus::Failed, why);
        match (&self.acted_on, anomalous, nothing_tried) {
            (None, _, _) if let Some(why) = &self.handed_over => escalated(format!(
                "{why}. Nothing was run: the incident is handed over to the on-call engineer."
            )),
            (None, _, _) if let Some(root) = &self.advised => (
                IncidentStatus::Advised,
                format!(
                    "Advisory: the swarm proposes remedying {}; nothing was run on this estate.",
                    root.label()
                ),
            ),
            (None, _, _) if self.cleared_while_waiting => (
                IncidentStatus::Resolved,
                "The trouble cleared while the plan waited for approval; nothing was run.".to_owned(),
            ),
            (Some(_), _, _) if self.fixed.len() > 1 => (
                IncidentStatus::Resolved,
                format!(
                    "{} causes remedied one by one, each verified on what it alone explains: {}; \
                     recovery verified from telemetry.",
                    self.fixed.len(),
                    self.fixed
                        .iter()
                        .map(RootCause::label)
                        .collect::<Vec<_>>()
                        .join(", then ")
                ),
            ),
            (Some(root), _, _) => (
                IncidentStatus::Resolved,
                format!(
                    "Root cause {} remedied and recovery verified from telemetry.",
                    root.label()
                ),
            ),
            (None, false, _) => (
                IncidentStatus::Resolved,
                format!(
                    "Nothing anomalous found in the estate's telemetry, looked at again {} times over {} s; \
                     no action taken.",
                    super::RECHECKS,
                    u64::from(super::RECHECKS) * super::RECHECK_AFTER.as_secs()
                ),
            ),
            (None, true, true) if all_failed_before > 0 => escalated(format!(
                "Every candidate fix ({all_failed_before}) failed on similar past incidents; not repeating them: \
                 escalated to the on-call engineer."
            )),
            (None, true, true) => {
                escalated("Anomalies that no known fault explains: escalated to the on-call engineer.".to_owned())
            }
            (None, true, false) => escalated(format!(
                "{} hypothesis(es) tried without a verified recovery: escalated to the on-call engineer.",
                self.attempts.len()
            )),
        }
    }
}

/// Advisory mode: publishes the plan the vote passed as resolution's
/// proposal, and runs none of it.
fn advise(run: &mut Run<'_>, hypothesis: &Hypothesis, plan: &Plan) {
    // In a dry run the actuator's exact requests go with the advice.
    let requests = if run.cx.dry_run { run.requests(plan) } else { Vec::new() };
    let advice = || {
        ActionDetails::Advice(Advice {
            proposed: plan.clone(),
            requests: requests.clone(),
        })
    };
    let action = run.started(AgentType::Resolution, advice());
    let report = Report {
        details: advice(),
        confidence: hypothesis.confidence,
    };
    run.finished(action, ActionStatus::Completed, report, Duration::ZERO);
}
