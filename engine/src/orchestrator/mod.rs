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

use std::{ops::Range, sync::Arc, time::Duration};

use rand::{Rng, rngs::StdRng};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use uuid::Uuid;

mod estate;
mod gate;
mod remediation;
mod treatment;

pub use estate::{SharedTwin, TwinRef};
use treatment::Treatment;

use crate::{
    agents::{
        Agent, Case, Report, Swarm,
        communication::{Attempt, Outcome, TimelineEntry},
        resolution::outstanding_in,
    },
    bus::{AgentBus, Worker},
    catalog::{FaultyVoter, RootCause},
    charts::Charts,
    claims::Claims,
    clock::SimClock,
    event_log::EventLog,
    governance::{Approvals, Policy},
    notify::Webhook,
    protocol::{
        self as protocol, ActionDetails, ActionStatus, AgentAction, AgentType, Backoff, CircuitOpen, Crashed,
        EstateUnreadable, FixRecord, Incident, IncidentStatus, MarkKind, MonitorBreach, ServerMessage, Severity,
        Started, Task,
    },
    twin::{ActionKind, ConfigChange, Metric},
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
/// How long a scenario's faults run on a standalone twin before the
/// incident is reported: a monitor needs a few samples before it fires.
const FAULTS_SHOW_AFTER: Duration = Duration::from_secs(5);
const VERIFY_POLL: Duration = Duration::from_secs(1);
const VERIFY_LIMIT: Duration = Duration::from_secs(30);
/// Polls with the root recovered but the rest not, before concluding that
/// the rest has another cause.
const ROOT_FIXED_POLLS: u32 = 6;
/// Recovery must hold for this many seconds of telemetry.
pub(crate) const VERIFY_WINDOW: usize = 4;
/// Tries of an agent's job before the incident goes to a human.
const AGENT_ATTEMPTS: u32 = 5;
/// Backoff between tries of an agent's job.
const AGENT_BACKOFF: Backoff = Backoff {
    base: Duration::from_millis(200),
    cap: Duration::from_secs(5),
};
/// A report with nothing anomalous behind it (warnings inside every
/// objective, or nothing at all) is looked at again this often…
const RECHECK_AFTER: Duration = Duration::from_secs(20);
/// …this many times, before the incident is left watching or closed: faint
/// evidence takes a minute to add up.
const RECHECKS: u32 = 3;
/// Hypotheses tried before escalating to a human.
const MAX_ATTEMPTS: usize = 3;
/// How long an incident waits for another that is remediating the same
/// root cause.
const CLAIM_PATIENCE: Duration = Duration::from_secs(90);
/// Catch-up beyond this many simulated seconds is skipped, not simulated,
/// so a server idle for hours answers at once.
const MAX_CATCH_UP: u64 = 600;

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
    /// The watched estate could not be read, try after try: a human takes
    /// over, told why.
    EstateUnreadable(String),
}

/// What an incident's run reaches of the engine, and nothing more: the
/// swarm, the log, the agents' bus, governance, root claims and charts. The
/// engine builds one for each incident. The orchestrator never sees the
/// incident book, admission or recovery, and hands back a [`Closing`]
/// instead of finishing the incident itself.
#[derive(Clone)]
pub(crate) struct Context {
    /// The agents and the catalog.
    pub swarm: Arc<Swarm>,
    /// Where every event goes, in order.
    pub log: EventLog,
    /// Agents' time, shared by every incident.
    pub bus: AgentBus,
    /// What may run without a person.
    pub policy: Arc<Policy>,
    /// Plans waiting for a person.
    pub approvals: Approvals,
    /// Root services being remediated, and by which incident.
    pub claims: Claims,
    /// Open incidents' charts.
    pub charts: Arc<Charts>,
    /// Where closed incidents are announced.
    pub webhook: Option<Webhook>,
    /// Chaos: the share of agent jobs that fail.
    pub agent_failure_rate: f64,
    /// Simulated time.
    pub clock: SimClock,
    /// Cancelled when in-flight incidents must stop.
    pub interrupt: CancellationToken,
    /// Silences an incident's alerts while its plan runs on a watched
    /// estate (Alertmanager's API).
    pub silencer: Option<crate::intake::silences::Silencer>,
    /// A dry run: plans end as advice with their exact requests.
    pub dry_run: bool,
    /// A demo's autopilot: approves a waiting plan after this wall time.
    pub autopilot: Option<Duration>,
}

impl Context {
    /// Publishes the configuration changes an incident's actions made.
    fn publish_changes(&self, incident_id: Option<Uuid>, changes: &[ConfigChange]) {
        for event in config_change_events(incident_id, changes) {
            self.log.append(event);
        }
    }

    /// Marks a moment on the incident's chart.
    fn mark(&self, id: Uuid, at: Duration, kind: MarkKind, label: String) {
        self.charts.mark(id, at.as_secs_f64(), kind, label);
    }

    /// Adds the series detection found anomalous to the incident's chart.
    /// Only incidents on the shared estate have one.
    fn watch(&self, id: Uuid, twin: &TwinRef, anomalies: &[(String, Metric)]) {
        if let TwinRef::Shared(shared) = twin {
            shared.with(|estate| self.charts.watch(id, estate, anomalies));
        }
    }
}

/// The events that announce configuration changes: an incident's, or
/// (`None`) the estate's own.
pub(crate) fn config_change_events(
    incident_id: Option<Uuid>,
    changes: &[ConfigChange],
) -> impl Iterator<Item = ServerMessage> + '_ {
    changes.iter().map(move |change| ServerMessage::ConfigChange {
        incident_id,
        change: change.event(),
    })
}

/// What a finished run hands back, for the engine to close the incident.
pub(crate) struct Closing {
    pub id: Uuid,
    pub verdict: Verdict,
    pub case: Case,
    /// How the incident left its isolated twin (evaluation only).
    pub end: Option<EndState>,
}

/// How an incident left an estate of its own.
pub(crate) struct EndState {
    /// The objectives not met at the close.
    pub violations: Vec<String>,
    /// The services worse at the close than when the incident opened.
    pub worsened: Vec<String>,
}

/// The running state of one incident.
struct Run<'a> {
    /// What it may reach of the engine.
    cx: &'a Context,
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
        self.started_with(agent, |_| details)
    }

    /// Publishes the start of an action whose details name its own id (a
    /// step's idempotency key is its action's id).
    fn started_with(&mut self, agent: AgentType, details: impl FnOnce(Uuid) -> ActionDetails) -> AgentAction {
        let action_id = uuid::Builder::from_random_bytes(self.rng.random()).into_uuid();
        let mut action = AgentAction {
            agent_type: agent,
            action_id,
            description: String::new(),
            timestamp: chrono::Utc::now(),
            status: ActionStatus::InProgress,
            details: details(action_id),
            duration_ms: None,
            confidence: None,
            queries: Vec::new(),
        };
        action.description = action.describe();
        self.cx.log.append(ServerMessage::AgentAction {
            incident_id: self.id,
            action: action.clone(),
        });
        action
    }

    /// Waits for a worker of `agent` on the bus, unless interrupted.
    async fn worker(&self, agent: AgentType) -> Result<Worker, Stop> {
        tokio::select! {
            worker = self.cx.bus.worker(agent, self.severity) => Ok(worker),
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
        self.cx.bus.record(action.agent_type, took);
        action.status = status;
        action.queries = self.twin.evidence(&report.details);
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
        self.cx.log.append(ServerMessage::AgentAction {
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
        let mut last_error = None;
        for attempt in 0..AGENT_ATTEMPTS {
            if attempt > 0 {
                // Full jitter, so retries from many incidents do not
                // arrive in lockstep.
                let wait = AGENT_BACKOFF.wait(attempt - 1, self.rng.random::<f64>());
                self.pass(wait).await?;
            }
            if let Err(open_for) = self.cx.bus.admit(kind) {
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
            if self.rng.random::<f64>() < self.cx.agent_failure_rate {
                self.cx.bus.outcome(kind, false);
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
            self.cx.bus.outcome(kind, true);
            // A watched estate is read now; one that cannot be read is not
            // the agent's fault (its circuit is spared), but the job fails.
            if let Err(error) = self.refresh().await? {
                self.unreadable(action, attempt, &error, duration);
                last_error = Some(error);
                continue;
            }
            let elapsed = self.elapsed;
            let report = self.twin.observe(elapsed, |estate| agent.work(case, estate));
            self.finished(action, ActionStatus::Completed, report, duration);
            return Ok(());
        }
        Err(match last_error {
            Some(error) => Stop::EstateUnreadable(error.to_string()),
            None => Stop::AgentUnavailable(kind),
        })
    }

    /// Finishes `action`, an agent's try that found its estate unreadable.
    fn unreadable(&mut self, action: AgentAction, attempt: u32, error: &crate::watched::ReadError, duration: Duration) {
        let unreadable = EstateUnreadable {
            attempt: attempt + 1,
            of: AGENT_ATTEMPTS,
            reason: error.to_string(),
        };
        warn!(reason = %unreadable.reason, "the estate could not be read");
        let report = Report {
            details: ActionDetails::EstateUnreadable(unreadable),
            confidence: 0.0,
        };
        self.finished(action, ActionStatus::Failed, report, duration);
    }

    /// Reads a watched estate afresh, unless interrupted.
    async fn refresh(&mut self) -> Result<Result<(), crate::watched::ReadError>, Stop> {
        tokio::select! {
            read = self.twin.refresh() => Ok(read),
            () = self.interrupt.cancelled() => Err(Stop::Interrupted),
        }
    }

    fn publish_changes(&self, changes: &[ConfigChange]) {
        self.cx.publish_changes(Some(self.id), changes);
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
    let spread = case.diagnosis.iter().flat_map(|d| &d.blast_radius).map(|a| &a.service);
    add_missing(&mut watch, spread);
    watch
}

/// Appends each of `services` that `list` lacks, in order: a watch list
/// is a set that keeps the order things were seen in.
fn add_missing<'a>(list: &mut Vec<String>, services: impl IntoIterator<Item = &'a String>) {
    for service in services {
        if !list.contains(service) {
            list.push(service.clone());
        }
    }
}

/// Detection and diagnosis again, on the estate as it is now. True when
/// nothing is left to fix.
async fn reexamine(run: &mut Run<'_>, case: &mut Case) -> Result<bool, Stop> {
    let swarm = Arc::clone(&run.cx.swarm);
    // Deviations that break no objective (a pool still half full of leaked
    // connections after it was doubled) are for watching, not for acting.
    let watch = watch_list(case);
    let elapsed = run.elapsed;
    if run
        .twin
        .observe(elapsed, |estate| outstanding_in(&watch, estate, VERIFY_WINDOW))
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
pub(crate) async fn run(cx: Context, assignment: Assignment) -> Closing {
    let Assignment {
        incident,
        twin,
        faulty_voters,
        rng,
    } = assignment;
    let id = incident.id;
    let mut run = Run {
        cx: &cx,
        id,
        twin,
        rng,
        clock: cx.clock,
        interrupt: cx.interrupt.clone(),
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
                Stop::EstateUnreadable(reason) => {
                    warn!(%reason, "the estate could not be read; escalating");
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
    let end = match &mut run.twin {
        TwinRef::Own { estate, opened, .. } => Some(EndState {
            violations: estate.violations(VERIFY_WINDOW),
            worsened: estate.worse_than(opened, VERIFY_WINDOW),
        }),
        TwinRef::Shared(_) | TwinRef::Watched { .. } => None,
    };
    Closing { id, verdict, case, end }
}

/// The incident's whole course: study, treatment, then the report.
async fn work(run: &mut Run<'_>, case: &mut Case, faulty: &[FaultyVoter]) -> Result<Verdict, Stop> {
    // A scenario on a standalone twin starts its faults now; the incident
    // is reported once they show, as on the embedded twin.
    match run.twin.inject_pending().await {
        Ok(true) => run.pass(FAULTS_SHOW_AFTER).await?,
        Ok(false) => {}
        Err(error) => {
            return Err(Stop::EstateUnreadable(format!(
                "the scenario's faults could not be started: {error}"
            )));
        }
    }
    let (detected_after, diagnosed_after) = study(run, case).await?;
    let warnings = recheck(run, case).await?;
    // The first cause named, at the first look or after looking again: a
    // look that names none has named nothing wrong.
    let first_hypothesis = case
        .diagnosis
        .as_ref()
        .and_then(|d| d.hypotheses.first())
        .map(|h| h.root.clone());
    let treatment = match warnings.is_empty() {
        true => treatment::treat(run, case, faulty).await?,
        false => Treatment::default(),
    };
    let (status, summary) = match warnings.is_empty() {
        true => treatment.conclusion(case),
        false => (IncidentStatus::Watching, watching(&warnings)),
    };
    let Treatment {
        attempts,
        executed,
        fixes,
        acted_on,
        ..
    } = treatment;
    let rollbacks = attempts.iter().filter(|a| !a.rolled_back.is_empty()).count() as u32;
    let report = communicate(run, case, status, summary, attempts).await?;
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

/// Detection, diagnosis and prediction, in turn; returns when detection
/// and diagnosis were done.
async fn study(run: &mut Run<'_>, case: &mut Case) -> Result<(Duration, Duration), Stop> {
    let swarm = Arc::clone(&run.cx.swarm);
    let services = run.twin.service_count(run.elapsed);

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
        run.cx.watch(run.id, &run.twin, &anomalies);
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
    Ok((detected_after, diagnosed_after))
}

/// While detection finds nothing anomalous and no monitor breached, looks
/// again every [`RECHECK_AFTER`], [`RECHECKS`] times: a warning (off, but
/// inside every objective) may grow, and faint evidence adds up over a
/// minute where one look sees nothing. Returns the warnings still standing
/// at the end: empty when there were none, when they cleared, or when
/// something turned anomalous (diagnosed afresh, for treatment).
async fn recheck(run: &mut Run<'_>, case: &mut Case) -> Result<Vec<MonitorBreach>, Stop> {
    let swarm = Arc::clone(&run.cx.swarm);
    let nothing_anomalous =
        |case: &Case| (case.detection.as_ref()).is_some_and(|d| d.anomalies.is_empty() && d.breaches.is_empty());
    let warnings = |case: &Case| {
        (case.detection.as_ref())
            .map(|d| d.warnings.clone())
            .unwrap_or_default()
    };
    for _ in 0..RECHECKS {
        if !nothing_anomalous(case) {
            return Ok(Vec::new());
        }
        let again = match warnings(case).is_empty() {
            true => Task::RecheckReport,
            false => Task::RecheckWarning,
        };
        run.pass(RECHECK_AFTER).await?;
        let duration = run.seconds(DETECTION_SECONDS);
        run.analyse(&swarm.detection, case, task(again), duration).await?;
        if !nothing_anomalous(case) {
            let duration = run.seconds(DIAGNOSIS_SECONDS);
            run.analyse(&swarm.diagnosis, case, task(Task::RankHypotheses), duration)
                .await?;
            return Ok(Vec::new());
        }
    }
    Ok(warnings(case))
}

/// The conclusion of an incident that stayed inside every objective.
fn watching(warnings: &[MonitorBreach]) -> String {
    let seen: Vec<String> = (warnings.iter())
        .map(|w| format!("{} on {} ({})", w.monitor, w.service, w.detail))
        .collect();
    format!(
        "Watching: {}. Re-checked {RECHECKS} times over {} s and still inside every objective, \
         so nothing was run; keep an eye on it.",
        seen.join("; "),
        u64::from(RECHECKS) * RECHECK_AFTER.as_secs()
    )
}

/// The status page, the notification and the report; returns the report.
async fn communicate(
    run: &mut Run<'_>,
    case: &Case,
    status: IncidentStatus,
    summary: String,
    attempts: Vec<Attempt>,
) -> Result<String, Stop> {
    let swarm = Arc::clone(&run.cx.swarm);
    let _worker = run.worker(AgentType::Communication).await?;
    let action = run.started(
        AgentType::Communication,
        ActionDetails::Started(task(Task::WriteReport)),
    );
    let duration = run.seconds(COMMUNICATION_SECONDS);
    run.pass(duration).await?;
    let outcome = Outcome {
        status,
        elapsed: run.elapsed.as_secs_f64(),
        savings: None,
        attempts,
        summary,
    };
    let status_line = swarm.communication.status_line(case, &outcome);
    if let Some(webhook) = run.cx.webhook.as_ref() {
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
                webhook: run.cx.webhook.as_ref().is_some(),
            }),
            confidence: 0.95,
        },
        duration,
    );
    Ok(report)
}
