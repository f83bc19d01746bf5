//! The orchestrator: one task per incident, taking it through the swarm.
//!
//! Detection, diagnosis and prediction study the twin; the agents vote on a
//! plan for the best hypothesis; resolution checks safety, runs the steps
//! one at a time against the twin, and verifies recovery from telemetry,
//! rolling back in reverse and moving to the next hypothesis when recovery
//! does not come; communication writes the report. Every step is published:
//! each action `in_progress`, then `completed` (or `failed`) with its
//! simulated duration and confidence; then `incident_status`; then
//! `performance_metrics`.
//!
//! Time is simulated: the agents sleep on the engine's clock, and the twin
//! advances by exactly the simulated time that passed.

use std::{
    ops::Range,
    sync::{Arc, Mutex},
    time::Duration,
};

use rand::{Rng, rngs::StdRng};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use uuid::Uuid;

mod gate;

use gate::Clearance;

use crate::{
    Engine,
    agents::{
        Agent, Case, Plan, Report,
        communication::{Attempt, Outcome, TimelineEntry},
        resolution::outstanding_in,
    },
    bus::Worker,
    catalog::{FaultyVoter, RootCause},
    claims::Claim,
    clock::SimClock,
    consensus,
    protocol::{
        self as protocol, ActionDetails, ActionStatus, AgentAction, AgentType, CircuitOpen, ClaimWait, ConsensusVote,
        Crashed, FixOutcome, FixRecord, Incident, IncidentStatus, MarkKind, Rollback, SafetyChecks, ServerMessage,
        Severity, Started, Step, Tally, Task, Verification, Vote,
    },
    twin::{ActionKind, ConfigChange, Estate, WARMUP_TICKS},
};

/// Seed 000's measured duration ranges at speed 1.0, in seconds.
const DETECTION_SECONDS: Range<f64> = 0.8..2.1;
const DIAGNOSIS_SECONDS: Range<f64> = 3.0..3.5;
/// Diagnosis of an incident the memory recognises: confirming a known
/// signature's root against the estate is a third of the work.
const RECOGNISED_DIAGNOSIS_SECONDS: Range<f64> = 1.0..1.2;
const PREDICTION_SECONDS: Range<f64> = 2.5..3.0;
const COMMUNICATION_SECONDS: Range<f64> = 0.3..0.5;
const CONSENSUS_SECONDS: Range<f64> = 0.2..0.4;
const SAFETY_SECONDS: Range<f64> = 0.3..0.5;
/// Each playbook step takes its nominal time, give or take this share.
const STEP_JITTER: f64 = 0.07;
/// Verification polls telemetry this often, and gives up after the limit.
const VERIFY_POLL: Duration = Duration::from_secs(1);
const VERIFY_LIMIT: Duration = Duration::from_secs(30);
/// Polls with the root recovered but the rest not, before concluding that
/// the rest has another cause.
const ROOT_FIXED_POLLS: u32 = 6;
/// Recovery must hold for this many seconds of telemetry.
const VERIFY_WINDOW: usize = 4;
/// Tries of an agent's job before the incident goes to a human.
const AGENT_ATTEMPTS: u32 = 5;
/// Backoff between tries: full jitter under `base × 2^n`, capped.
const AGENT_BACKOFF_BASE: Duration = Duration::from_millis(200);
const AGENT_BACKOFF_CAP: Duration = Duration::from_secs(5);
/// Hypotheses tried before escalating to a human.
const MAX_ATTEMPTS: usize = 3;
/// How long an incident waits for another that is remediating the same
/// root cause.
const CLAIM_PATIENCE: Duration = Duration::from_secs(90);
/// Catch-up beyond this many simulated seconds is skipped, not simulated,
/// so a server idle for hours answers at once.
const MAX_CATCH_UP: u64 = 600;

/// The estate every incident of a server shares, advanced lazily to the
/// engine's simulated time whenever someone looks.
pub struct SharedTwin {
    /// The estate.
    estate: Mutex<Estate>,
    /// The engine's clock.
    clock: SimClock,
}

impl SharedTwin {
    pub fn new(estate: Estate, clock: SimClock) -> Self {
        Self {
            estate: Mutex::new(estate),
            clock,
        }
    }

    /// Runs `f` on the estate, brought up to the current simulated time.
    pub fn with<R>(&self, f: impl FnOnce(&mut Estate) -> R) -> R {
        let mut estate = self.estate.lock().expect("twin lock poisoned");
        let due = WARMUP_TICKS + self.clock.now().as_secs();
        let behind = due.saturating_sub(estate.now());
        if behind > MAX_CATCH_UP {
            estate.skip(behind - MAX_CATCH_UP);
        }
        let behind = due.saturating_sub(estate.now());
        estate.advance(behind);
        f(&mut estate)
    }
}

/// The estate an incident works on.
pub enum TwinRef {
    /// The server's shared estate.
    Shared(Arc<SharedTwin>),
    /// An estate of its own (evaluation and benchmarks), advanced by the
    /// incident's own simulated time.
    Own {
        /// The estate.
        estate: Box<Estate>,
        /// Its tick when the incident opened.
        start: u64,
    },
}

impl TwinRef {
    fn with<R>(&mut self, elapsed: Duration, f: impl FnOnce(&mut Estate) -> R) -> R {
        match self {
            Self::Shared(shared) => shared.with(f),
            Self::Own { estate, start } => {
                let due = *start + elapsed.as_secs();
                let behind = due.saturating_sub(estate.now());
                estate.advance(behind);
                f(estate)
            }
        }
    }
}

/// What the engine needs to know of how an incident went, for metrics and
/// evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The final status.
    pub status: IncidentStatus,
    /// Simulated seconds from open to close.
    pub elapsed: Duration,
    /// The first diagnosis's best hypothesis.
    pub first_hypothesis: Option<RootCause>,
    /// The hypothesis whose plan healed the estate.
    pub acted_on: Option<RootCause>,
    /// Every action run, in order.
    pub executed: Vec<ActionKind>,
    /// The report.
    pub report: String,
    /// Simulated time from opening to the end of detection.
    pub detected_after: Option<Duration>,
    /// Simulated time from opening to the first diagnosis.
    pub diagnosed_after: Option<Duration>,
    /// Plans whose steps were rolled back (they did not heal).
    pub rollbacks: u32,
    /// Simulated time spent waiting for people to approve plans.
    pub approval_wait: Duration,
    /// Every fix that ran, with how it ended (for the incident memory).
    pub fixes: Vec<FixRecord>,
}

/// Everything an incident task needs besides the engine.
pub struct Assignment {
    /// The incident.
    pub incident: Incident,
    /// Its estate.
    pub twin: TwinRef,
    /// Voters a scenario made faulty.
    pub faulty_voters: Vec<FaultyVoter>,
    /// Its randomness (durations, faulty votes).
    pub rng: StdRng,
}

/// How a remediation attempt ended.
enum Remedy {
    /// Recovery verified everywhere watched.
    Healed,
    /// The plan's root recovered, but other trouble remains: another cause.
    RootFixed,
    /// No recovery; the steps were rolled back.
    Failed,
}

/// Why an incident stops before it finishes.
enum Stop {
    /// The engine interrupted it (shutdown).
    Interrupted,
    /// An agent failed every retry: a human takes over.
    AgentUnavailable(AgentType),
}

/// The running state of one incident.
struct Run<'a> {
    engine: &'a Engine,
    id: Uuid,
    twin: TwinRef,
    rng: StdRng,
    clock: SimClock,
    interrupt: CancellationToken,
    /// Orders this incident's turn for agents' time.
    severity: Severity,
    /// Simulated time spent so far.
    elapsed: Duration,
    /// Of which, waiting for people to approve plans.
    approval_wait: Duration,
    timeline: Vec<TimelineEntry>,
}

impl Run<'_> {
    /// Lets `duration` of simulated time pass, unless interrupted.
    async fn pass(&mut self, duration: Duration) -> Result<(), Stop> {
        tokio::select! {
            () = self.clock.sleep(duration) => {
                self.elapsed += duration;
                Ok(())
            }
            () = self.interrupt.cancelled() => Err(Stop::Interrupted),
        }
    }

    fn seconds(&mut self, range: Range<f64>) -> Duration {
        Duration::from_secs_f64(self.rng.random_range(range))
    }

    fn started(&mut self, agent: AgentType, details: ActionDetails) -> AgentAction {
        let mut action = AgentAction {
            agent_type: agent,
            action_id: uuid::Builder::from_random_bytes(self.rng.random()).into_uuid(),
            description: String::new(),
            timestamp: chrono::Utc::now(),
            status: ActionStatus::InProgress,
            details,
            duration_ms: None,
            confidence: None,
        };
        action.description = action.describe();
        self.engine.publish(ServerMessage::AgentAction {
            incident_id: self.id,
            action: action.clone(),
        });
        action
    }

    /// Waits for a worker of `agent` on the bus, unless interrupted.
    async fn worker(&self, agent: AgentType) -> Result<Worker, Stop> {
        tokio::select! {
            worker = self.engine.bus().worker(agent, self.severity) => Ok(worker),
            () = self.interrupt.cancelled() => Err(Stop::Interrupted),
        }
    }

    /// Adds a line to the incident's timeline (for the report).
    fn note(&mut self, agent: AgentType, text: String) {
        self.timeline.push(TimelineEntry {
            at: (self.elapsed.as_secs_f64() * 10.0).round() / 10.0,
            agent,
            text,
        });
    }

    fn finished(&mut self, mut action: AgentAction, status: ActionStatus, report: Report, took: Duration) {
        self.engine.bus().record(action.agent_type, took);
        action.status = status;
        action.details = report.details;
        action.description = action.describe();
        info!(
            agent = action.agent_type.as_str(),
            status = status.as_str(),
            kind = action.details.kind(),
            "{}",
            action.description
        );
        self.note(action.agent_type, action.description.clone());
        action.duration_ms = Some(took.as_millis() as u64);
        action.confidence = Some(report.confidence);
        self.engine.publish(ServerMessage::AgentAction {
            incident_id: self.id,
            action,
        });
    }

    /// Runs one analysis agent: announce `task`, think for `duration`, then
    /// study the twin as it is now.
    async fn analyse(
        &mut self,
        agent: &dyn Agent,
        case: &mut Case,
        task: Started,
        duration: Duration,
    ) -> Result<(), Stop> {
        let kind = agent.kind();
        for attempt in 0..AGENT_ATTEMPTS {
            if attempt > 0 {
                // Exponential backoff with full jitter, so retries from many
                // incidents do not arrive in lockstep.
                let ceiling = AGENT_BACKOFF_BASE
                    .saturating_mul(1 << (attempt - 1))
                    .min(AGENT_BACKOFF_CAP);
                let wait = ceiling.mul_f64(self.rng.random::<f64>());
                self.pass(wait).await?;
            }
            if let Err(open_for) = self.engine.bus().admit(kind) {
                let action = self.started(kind, ActionDetails::Started(task.clone()));
                self.finished(
                    action,
                    ActionStatus::Failed,
                    Report {
                        details: ActionDetails::CircuitOpen(CircuitOpen {
                            attempt: attempt + 1,
                            open_for_seconds: open_for.as_secs_f64(),
                        }),
                        confidence: 0.0,
                    },
                    Duration::ZERO,
                );
                continue;
            }
            let _worker = self.worker(kind).await?;
            let action = self.started(kind, ActionDetails::Started(task.clone()));
            self.pass(duration).await?;
            // Chaos: the agent's job fails as if its process crashed.
            if self.rng.random::<f64>() < self.engine.agent_failure_rate() {
                self.engine.bus().outcome(kind, false);
                self.finished(
                    action,
                    ActionStatus::Failed,
                    Report {
                        details: ActionDetails::Crashed(Crashed {
                            attempt: attempt + 1,
                            of: AGENT_ATTEMPTS,
                        }),
                        confidence: 0.0,
                    },
                    duration,
                );
                continue;
            }
            self.engine.bus().outcome(kind, true);
            let elapsed = self.elapsed;
            let report = self.twin.with(elapsed, |estate| agent.work(case, estate));
            self.finished(action, ActionStatus::Completed, report, duration);
            return Ok(());
        }
        Err(Stop::AgentUnavailable(kind))
    }

    fn publish_changes(&self, changes: &[ConfigChange]) {
        self.engine.publish_changes(Some(self.id), changes);
    }

    /// Puts `plan` to the vote of every agent; publishes the round.
    async fn vote(&mut self, case: &Case, plan: &Plan, faulty: &[FaultyVoter]) -> Result<(bool, String), Stop> {
        let swarm = self.engine.swarm();
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
        let judgements: Vec<_> = self.twin.with(elapsed, |estate| {
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
        self.engine.publish(ServerMessage::Consensus {
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
    async fn remediate(&mut self, case: &Case, plan: &Plan, attempt: &mut Attempt) -> Result<Remedy, Stop> {
        let swarm = self.engine.swarm();
        // One resolution worker sees the plan through, steps and all.
        let _worker = self.worker(AgentType::Resolution).await?;
        let action = self.started(
            AgentType::Resolution,
            ActionDetails::SafetyChecks(SafetyChecks { checks: Vec::new() }),
        );
        let duration = self.seconds(SAFETY_SECONDS);
        self.pass(duration).await?;
        let elapsed = self.elapsed;
        let checks = self
            .twin
            .with(elapsed, |estate| swarm.resolution.safety_checks(case, plan, estate));
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
        if !safe {
            attempt.outstanding.push("a safety check failed".into());
            return Ok(Remedy::Failed);
        }

        let total = plan.steps.len();
        let mut applied = Vec::new();
        for (i, step) in plan.steps.iter().enumerate() {
            let label = step.label();
            let announced = Step {
                step: i + 1,
                of: total,
                action: step.remediation.kind,
                target: step.remediation.target.clone(),
                changes: Vec::new(),
                side_effects: Vec::new(),
                error: None,
            };
            let action = self.started(AgentType::Resolution, ActionDetails::Step(announced.clone()));
            let jitter = self.rng.random_range(1.0 - STEP_JITTER..1.0 + STEP_JITTER);
            let duration = Duration::from_secs_f64(step.seconds * jitter);
            self.pass(duration).await?;
            let elapsed = self.elapsed;
            let result = self.twin.with(elapsed, |estate| estate.apply(&step.remediation));
            match result {
                Ok(done) => {
                    self.publish_changes(&done.changes);
                    attempt
                        .executed
                        .push((label.clone(), (duration.as_secs_f64() * 10.0).round() / 10.0));
                    self.engine
                        .chart_mark(self.id, self.elapsed, MarkKind::Step, label.clone());
                    self.finished(
                        action,
                        ActionStatus::Completed,
                        Report {
                            details: ActionDetails::Step(Step {
                                changes: done.changes.iter().map(ConfigChange::event).collect(),
                                side_effects: done.side_effects.clone(),
                                ..announced
                            }),
                            confidence: 0.95,
                        },
                        duration,
                    );
                    applied.push(done);
                }
                Err(error) => {
                    self.finished(
                        action,
                        ActionStatus::Failed,
                        Report {
                            details: ActionDetails::Step(Step {
                                error: Some(error.to_string()),
                                ..announced
                            }),
                            confidence: 0.9,
                        },
                        duration,
                    );
                    attempt.outstanding.push(error.to_string());
                    self.roll_back(&applied, attempt).await?;
                    return Ok(Remedy::Failed);
                }
            }
        }

        // Verification: recovery must show in the telemetry and hold.
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
        let mut outstanding = Vec::new();
        let mut verified = false;
        let mut root_fixed = false;
        let mut root_fixed_for = 0;
        while self.elapsed - started < VERIFY_LIMIT {
            self.pass(VERIFY_POLL).await?;
            if self.elapsed - started < Duration::from_secs(VERIFY_WINDOW as u64) {
                continue;
            }
            let elapsed = self.elapsed;
            (outstanding, root_fixed) = self.twin.with(elapsed, |estate| {
                (
                    swarm.resolution.outstanding(plan, estate, VERIFY_WINDOW),
                    swarm.resolution.root_recovered(plan, estate, VERIFY_WINDOW),
                )
            });
            if outstanding.is_empty() {
                verified = true;
                break;
            }
            // The root has held for a while and the rest does not follow:
            // another cause, no point waiting out the limit.
            root_fixed_for = if root_fixed { root_fixed_for + 1 } else { 0 };
            if root_fixed_for >= ROOT_FIXED_POLLS {
                break;
            }
        }
        let took = self.elapsed - started;
        self.finished(
            action,
            if verified {
                ActionStatus::Completed
            } else {
                ActionStatus::Failed
            },
            Report {
                details: ActionDetails::Verification(Verification {
                    verified: Some(verified),
                    outstanding: outstanding.clone(),
                    root_recovered: (!verified && root_fixed).then(|| plan.root.service.clone()),
                    watched_seconds: Some(took.as_secs_f64()),
                    ..verifying
                }),
                confidence: if verified { 0.95 } else { 0.85 },
            },
            took,
        );
        attempt.verified = verified;
        if verified {
            self.engine
                .chart_mark(self.id, self.elapsed, MarkKind::Verified, "recovery verified".into());
            return Ok(Remedy::Healed);
        }
        attempt.outstanding = outstanding;
        if root_fixed {
            // The plan did its job; what remains has another cause.
            return Ok(Remedy::RootFixed);
        }
        self.roll_back(&applied, attempt).await?;
        Ok(Remedy::Failed)
    }

    /// Claims `root` for this incident, or, while another incident
    /// remediates it, waits until it is free (or patience runs out) and
    /// returns `None`: the caller looks again first, since the other's fix
    /// may be ours too.
    async fn claim_or_wait(&mut self, root: &str) -> Result<Option<Claim>, Stop> {
        let holder = match self.engine.claims().claim(root, self.id) {
            Ok(claim) => return Ok(Some(claim)),
            Err(holder) => holder,
        };
        let wait = ClaimWait {
            holder,
            root: root.to_owned(),
        };
        let action = self.started(AgentType::Resolution, ActionDetails::ClaimWait(wait.clone()));
        let started = self.elapsed;
        while self.engine.claims().claim(root, self.id).is_err() && self.elapsed - started < CLAIM_PATIENCE {
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

    /// Undoes `applied` newest first.
    async fn roll_back(&mut self, applied: &[crate::twin::Applied], attempt: &mut Attempt) -> Result<(), Stop> {
        if applied.is_empty() {
            return Ok(());
        }
        let action = self.started(
            AgentType::Resolution,
            ActionDetails::Rollback(Rollback {
                steps: applied.len(),
                rolled_back: Vec::new(),
            }),
        );
        let duration = Duration::from_secs_f64(0.4 * applied.len() as f64);
        self.pass(duration).await?;
        let elapsed = self.elapsed;
        let mut undone = Vec::new();
        for done in applied.iter().rev() {
            let changes = self.twin.with(elapsed, |estate| estate.undo(done));
            self.publish_changes(&changes);
            let label = format!("{} on {}", done.remediation.kind.label(), done.remediation.target);
            undone.push(if changes.is_empty() {
                format!("{label} (cannot be undone; left in place)")
            } else {
                label
            });
        }
        attempt.rolled_back.clone_from(&undone);
        self.engine.chart_mark(
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
                    steps: applied.len(),
                    rolled_back: undone,
                }),
                confidence: 0.9,
            },
            duration,
        );
        Ok(())
    }
}

/// An analysis job's announcement.
fn task(task: Task) -> Started {
    Started {
        task: Some(task),
        services: None,
    }
}

/// Where recovery must show: wherever the trouble was seen or could spread.
fn watch_list(case: &Case) -> Vec<String> {
    let mut watch: Vec<String> = case
        .detection
        .as_ref()
        .map(|d| d.anomalous_services.clone())
        .unwrap_or_default();
    for affected in case.diagnosis.iter().flat_map(|d| &d.blast_radius) {
        if !watch.contains(&affected.service) {
            watch.push(affected.service.clone());
        }
    }
    watch
}

/// Detection and diagnosis again, on the estate as it is now. True when
/// nothing is left to fix.
async fn reexamine(run: &mut Run<'_>, case: &mut Case) -> Result<bool, Stop> {
    let swarm = run.engine.swarm();
    // Deviations that break no objective (a pool still half full of leaked
    // connections after it was doubled) are for watching, not for acting.
    let watch = watch_list(case);
    let elapsed = run.elapsed;
    if run
        .twin
        .with(elapsed, |estate| outstanding_in(&watch, estate, VERIFY_WINDOW))
        .is_empty()
    {
        return Ok(true);
    }
    let duration = run.seconds(DETECTION_SECONDS);
    run.analyse(&swarm.detection, case, task(Task::Reexamine), duration)
        .await?;
    if case.detection.as_ref().is_some_and(|d| d.anomalies.is_empty()) {
        return Ok(true);
    }
    let duration = run.seconds(DIAGNOSIS_SECONDS);
    run.analyse(&swarm.diagnosis, case, task(Task::RankRemaining), duration)
        .await?;
    Ok(false)
}

/// Takes the incident through the swarm, then closes it. Stops early,
/// marking it interrupted, when the engine is told to interrupt.
pub(crate) async fn run(engine: Engine, assignment: Assignment) {
    let Assignment {
        incident,
        twin,
        faulty_voters,
        rng,
    } = assignment;
    let id = incident.id;
    let mut run = Run {
        engine: &engine,
        id,
        twin,
        rng,
        clock: engine.clock(),
        interrupt: engine.interrupt_token(),
        severity: incident.severity,
        elapsed: Duration::ZERO,
        approval_wait: Duration::ZERO,
        timeline: Vec::new(),
    };
    let mut case = Case::new(incident);
    let verdict = match work(&mut run, &mut case, &faulty_voters).await {
        Ok(verdict) => verdict,
        Err(stop) => {
            let status = match stop {
                Stop::Interrupted => {
                    info!("interrupted by shutdown");
                    IncidentStatus::Interrupted
                }
                Stop::AgentUnavailable(agent) => {
                    warn!(agent = agent.as_str(), "agent unavailable; escalating");
                    IncidentStatus::Failed
                }
            };
            Verdict {
                status,
                elapsed: run.elapsed,
                first_hypothesis: None,
                acted_on: None,
                executed: Vec::new(),
                report: String::new(),
                detected_after: None,
                diagnosed_after: None,
                rollbacks: 0,
                approval_wait: run.approval_wait,
                fixes: Vec::new(),
            }
        }
    };
    let violations = match &mut run.twin {
        TwinRef::Own { estate, .. } => Some(estate.violations(VERIFY_WINDOW)),
        TwinRef::Shared(_) => None,
    };
    engine.finish(id, verdict, &case, violations);
}

async fn work(run: &mut Run<'_>, case: &mut Case, faulty: &[FaultyVoter]) -> Result<Verdict, Stop> {
    let swarm = run.engine.swarm();
    let services = run.twin.with(run.elapsed, |e| e.topology().len());

    let duration = run.seconds(DETECTION_SECONDS);
    let scan = Started {
        task: Some(Task::ScanTelemetry),
        services: Some(services),
    };
    run.analyse(&swarm.detection, case, scan, duration).await?;
    let detected_after = run.elapsed;
    if let Some(detection) = &case.detection {
        let anomalies: Vec<_> = detection
            .anomalies
            .iter()
            .map(|a| (a.service.clone(), a.metric))
            .collect();
        run.engine.chart_watch(run.id, &anomalies);
    }
    let recognised = case
        .detection
        .as_ref()
        .is_some_and(|d| crate::memory::recognised(&d.recall));
    let (duration, announce) = if recognised {
        (run.seconds(RECOGNISED_DIAGNOSIS_SECONDS), Task::ConfirmKnownRoot)
    } else {
        (run.seconds(DIAGNOSIS_SECONDS), Task::RankHypotheses)
    };
    run.analyse(&swarm.diagnosis, case, task(announce), duration).await?;
    let diagnosed_after = run.elapsed;
    let duration = run.seconds(PREDICTION_SECONDS);
    run.analyse(&swarm.prediction, case, task(Task::ProjectImpact), duration)
        .await?;

    let first_hypothesis = case
        .diagnosis
        .as_ref()
        .and_then(|d| d.hypotheses.first())
        .map(|h| h.root.clone());
    let anomalous = case.detection.as_ref().is_some_and(|d| !d.anomalies.is_empty());
    let mut attempts = Vec::new();
    let mut executed = Vec::new();
    let mut fixes = Vec::new();
    let mut acted_on = None;
    let mut tried: Vec<RootCause> = Vec::new();
    let mut waits = 0;
    let mut cleared_while_waiting = false;
    let mut handed_over = None;
    while attempts.len() < MAX_ATTEMPTS {
        let Some(hypothesis) = case
            .diagnosis
            .as_ref()
            .and_then(|d| d.hypotheses.iter().find(|h| !tried.contains(&h.root)).cloned())
        else {
            break;
        };
        let watch = watch_list(case);
        let elapsed = run.elapsed;
        let Some(plan) = run.twin.with(elapsed, |estate| {
            swarm.resolution.plan(&swarm.catalog, &hypothesis, &watch, estate)
        }) else {
            tried.push(hypothesis.root.clone());
            continue;
        };
        // Another incident is already working on this root: wait, then
        // look again, since its fix may be ours too. Patience spent, go
        // ahead without the claim.
        let claim = if waits < MAX_ATTEMPTS {
            let Some(claim) = run.claim_or_wait(&plan.root.service).await? else {
                waits += 1;
                if reexamine(run, case).await? {
                    acted_on = Some(plan.root.clone());
                    break;
                }
                continue;
            };
            Some(claim)
        } else {
            run.engine.claims().claim(&plan.root.service, run.id).ok()
        };
        tried.push(hypothesis.root.clone());
        let (approved, line) = run.vote(case, &plan, faulty).await?;
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
            attempts.push(attempt);
            continue;
        }
        let clearance = run.govern(case, &hypothesis, &plan, &mut attempt).await?;
        match clearance {
            Clearance::Run => {}
            Clearance::Denied => {
                attempt.approved = false;
                attempts.push(attempt);
                continue;
            }
            Clearance::HandedOver(why) => {
                attempt.approved = false;
                attempts.push(attempt);
                handed_over = Some(why);
                break;
            }
            Clearance::Stale { cleared } => {
                attempt.approved = false;
                attempts.push(attempt);
                drop(claim);
                if cleared && reexamine(run, case).await? {
                    cleared_while_waiting = true;
                    break;
                }
                // The estate moved on: plan this root cause afresh.
                tried.retain(|root| *root != hypothesis.root);
                continue;
            }
        }
        let remedy = run.remediate(case, &plan, &mut attempt).await?;
        // Done with the root: a second cause is looked for unclaimed.
        drop(claim);
        executed.extend(
            plan.steps
                .iter()
                .take(attempt.executed.len())
                .map(|s| s.remediation.kind),
        );
        if !attempt.executed.is_empty() {
            fixes.push(FixRecord {
                service: plan.root.service.clone(),
                fault: plan.root.fault.as_str().to_owned(),
                playbook: plan.playbook.clone(),
                actions: plan
                    .steps
                    .iter()
                    .take(attempt.executed.len())
                    .map(|s| s.remediation.kind.as_str().to_owned())
                    .collect(),
                outcome: match remedy {
                    Remedy::Healed | Remedy::RootFixed => FixOutcome::Healed,
                    Remedy::Failed => FixOutcome::Failed,
                },
            });
        }
        attempts.push(attempt);
        match remedy {
            Remedy::Healed => {
                acted_on = Some(plan.root.clone());
                break;
            }
            Remedy::RootFixed => {
                // A second cause: study what is left.
                if reexamine(run, case).await? {
                    acted_on = Some(plan.root.clone());
                    break;
                }
            }
            Remedy::Failed => {}
        }
    }
    let hypotheses_empty = tried.is_empty() && acted_on.is_none();
    let all_failed_before = case
        .diagnosis
        .as_ref()
        .map_or(0, |d| if d.hypotheses.is_empty() { d.skipped.len() } else { 0 });

    let (status, summary) = match (&acted_on, anomalous, hypotheses_empty) {
        (None, _, _) if let Some(why) = &handed_over => (
            IncidentStatus::Failed,
            format!("{why}. Nothing was run: the incident is handed over to the on-call engineer."),
        ),
        (None, _, _) if cleared_while_waiting => (
            IncidentStatus::Resolved,
            "The trouble cleared while the plan waited for approval; nothing was run.".to_owned(),
        ),
        (Some(root), _, _) => (
            IncidentStatus::Resolved,
            format!(
                "Root cause {} on {} remedied and recovery verified from telemetry.",
                root.fault.label(),
                root.service
            ),
        ),
        (None, false, _) => (
            IncidentStatus::Resolved,
            "Nothing anomalous found in the estate's telemetry; no action taken.".to_owned(),
        ),
        (None, true, true) if all_failed_before > 0 => (
            IncidentStatus::Failed,
            format!(
                "Every candidate fix ({all_failed_before}) failed on similar past incidents; not repeating them: \
                 escalated to the on-call engineer."
            ),
        ),
        (None, true, true) => (
            IncidentStatus::Failed,
            "Anomalies that no known fault explains: escalated to the on-call engineer.".to_owned(),
        ),
        (None, true, false) => (
            IncidentStatus::Failed,
            format!(
                "{} hypothesis(es) tried without a verified recovery: escalated to the on-call engineer.",
                attempts.len()
            ),
        ),
    };

    let _worker = run.worker(AgentType::Communication).await?;
    let action = run.started(
        AgentType::Communication,
        ActionDetails::Started(task(Task::WriteReport)),
    );
    let duration = run.seconds(COMMUNICATION_SECONDS);
    run.pass(duration).await?;
    let rollbacks = attempts.iter().filter(|a| !a.rolled_back.is_empty()).count() as u32;
    let outcome = Outcome {
        status,
        elapsed: run.elapsed.as_secs_f64(),
        savings: None,
        attempts,
        summary,
    };
    let status_line = swarm.communication.status_line(case, &outcome);
    if let Some(webhook) = run.engine.webhook() {
        webhook.spawn(crate::notify::Notification {
            incident_id: run.id,
            title: case.incident.title.clone(),
            severity: case.incident.severity,
            status,
            summary: outcome.summary.clone(),
        });
    }
    let report = swarm.communication.report(case, &outcome, &run.timeline);
    run.finished(
        action,
        ActionStatus::Completed,
        Report {
            details: ActionDetails::Report(protocol::Report {
                status_page: status_line,
                report_chars: report.len(),
                webhook: run.engine.webhook().is_some(),
            }),
            confidence: 0.95,
        },
        duration,
    );
    Ok(Verdict {
        status,
        elapsed: run.elapsed,
        first_hypothesis,
        acted_on,
        executed,
        report,
        detected_after: Some(detected_after),
        diagnosed_after: Some(diagnosed_after),
        rollbacks,
        approval_wait: run.approval_wait,
        fixes,
    })
}
