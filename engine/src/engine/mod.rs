//! The engine handle: the one door into the swarm for the HTTP edge, the
//! server functions and the tests.
//!
//! [`Engine`] is cheap to clone (an `Arc`). It opens incidents, runs each in
//! its own task, keeps the incident book and the metrics, and publishes
//! every change on the event log. It knows nothing of HTTP or HTML.

mod admission;
mod alerts;
pub use alerts::AlertReceipt;
mod book;
mod feed;
mod finish;
mod reconcile;
mod sharing;
pub use sharing::Sharing;
#[cfg(test)]
mod tests;

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use rand::{Rng, SeedableRng, rngs::StdRng};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{Instrument, info, info_span, warn};
use uuid::Uuid;

use book::{Audits, IncidentBook};
pub use feed::{Feed, FeedStart, Resume};

use crate::{
    agents::{Case, Communication, DetectionAgent, DiagnosisAgent, PredictionAgent, ResolutionAgent, Swarm},
    bus::AgentBus,
    catalog::{Catalog, CatalogError, FaultyVoter, RootCause, Scenario},
    claims::Claims,
    clock::{SimClock, Speed},
    event_log::{EventLog, LogStart, Projection},
    governance::{Approvals, Policy},
    impact::ImpactModel,
    journal::{Journal, Recovered, Totals},
    memory::Memory,
    orchestrator::{self, Assignment, SharedTwin, TwinRef, Verdict},
    protocol::{Incident, IncidentStatus, MemoryEntry, PerformanceMetrics, ScenarioSummary, ServerMessage, Severity},
    request::{IncidentRequest, IncidentTitle, ServiceName},
    twin::{ActionKind, Estate, FaultSpec, Topology, TopologyError},
};

/// How often, in simulated time, the shared estate's health is published.
pub const HEALTH_EVERY: Duration = Duration::from_secs(2);
/// Seconds after midnight at which simulated estates start their day.
pub(crate) const START_OF_DAY: f64 = 10.0 * 3600.0;
/// Samples of history the shared estate keeps (one a simulated second).
const SHARED_HISTORY: usize = 600;
/// Samples of history each isolated estate keeps.
const ISOLATED_HISTORY: usize = 40;
/// Seconds a fault has shown in telemetry by the time it is reported: a
/// monitor needs a few samples before it fires.
pub(crate) const REPORTED_AFTER_TICKS: u64 = 5;

/// How many incidents a snapshot lists.
pub const SNAPSHOT_INCIDENTS: usize = 50;
/// How many recent events a snapshot carries for the activity feed.
pub const SNAPSHOT_EVENTS: usize = 200;

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Time compression for every agent delay.
    pub speed: Speed,
    /// Seeds the agents' randomness; `None` seeds from the OS.
    pub seed: Option<u64>,
    /// Events kept in memory for replay to reconnecting clients.
    pub retain_events: usize,
    /// How far a live subscriber may fall behind before it must resync.
    pub fanout_capacity: usize,
    /// Durable mode: how long an event may wait for others to share its
    /// store transaction. Zero: batch only what piles up during a commit.
    pub commit_window: Duration,
    /// Whether incidents share one estate or get their own.
    pub twin: TwinMode,
    /// Workers per agent on the bus.
    pub agent_workers: usize,
    /// Incidents open at once before new ones are refused as "at capacity".
    pub max_active_incidents: u64,
    /// Where closed incidents are announced (Slack-compatible), if anywhere.
    pub webhook: Option<crate::notify::Webhook>,
    /// Chaos: the share of agent jobs that fail as if the agent crashed,
    /// 0..=1 (0 in production; demos and tests raise it).
    pub agent_failure_rate: f64,
    /// What may run without a person. The library's default is the
    /// built-in `autonomous` policy (nobody is there to approve in tests,
    /// evaluation and benchmarks); the server defaults to `default`.
    pub policy: Arc<Policy>,
    /// Finished incidents the incident memory keeps (0: remember nothing).
    pub memory_capacity: usize,
    /// An estate to watch instead of running the twin in-process (a real
    /// one through Prometheus, or a standalone twin): incidents read it
    /// afresh, and are advisory unless an actuator carries out their steps.
    pub watch: Option<crate::watched::WatchedEstate>,
    /// What carries out a watched estate's steps (none: advisory).
    pub actuator: Option<crate::actuator::HttpActuator>,
    /// Alertmanager's URL: an incident's alerts are silenced there while
    /// its plan runs through the actuator.
    pub alertmanager_url: Option<String>,
    /// Every actuator's dry run, the embedded twin's too: plans end as
    /// advice with their exact requests, and nothing is applied.
    pub dry_run: bool,
    /// A demo's autopilot: a plan waiting for a person is approved by
    /// [`AUTOPILOT`](crate::governance::AUTOPILOT) after this much wall
    /// time, unless someone decides first (`None`: people only).
    pub autopilot: Option<Duration>,
}

/// Where incidents happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TwinMode {
    /// One estate for the whole server: what the dashboard shows, where
    /// concurrent incidents meet.
    #[default]
    Shared,
    /// A fresh estate per incident, so each is judged on its own
    /// (evaluation, benchmarks).
    Isolated,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            speed: Speed::REAL_TIME,
            seed: None,
            retain_events: 10_000,
            fanout_capacity: 4_096,
            commit_window: Duration::ZERO,
            twin: TwinMode::Shared,
            agent_workers: 64,
            max_active_incidents: 1_000,
            webhook: None,
            agent_failure_rate: 0.0,
            policy: Arc::new(Policy::builtin("autonomous").expect("the built-in policies are checked by tests")),
            memory_capacity: crate::memory::DEFAULT_CAPACITY,
            watch: None,
            actuator: None,
            alertmanager_url: None,
            dry_run: false,
            autopilot: None,
        }
    }
}

/// Why the engine refused to open an incident.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error("no scenario `{id}`{}", suggestion.as_ref().map(|s| format!("; did you mean `{s}`?")).unwrap_or_default())]
    UnknownScenario { id: String, suggestion: Option<String> },
    #[error("the server is shutting down and accepts no new incidents")]
    ShuttingDown,
    #[error("at capacity: {limit} incidents are already open; retry when some close")]
    AtCapacity { limit: u64 },
    #[error("the scenario cannot open an incident: {0}")]
    Invalid(String),
    #[error("the event log stopped publishing: {0}")]
    Halted(String),
    #[error(
        "this server watches a real estate through Prometheus (advisory): a scenario injects faults into the \
         twin, which it does not run; open incidents from alerts or POST /api/incidents"
    )]
    Watching,
}

impl SubmitError {
    /// How long a client refused for capacity should wait before retrying:
    /// about one incident's lifetime at demo speed. `None` when retrying
    /// cannot help.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::AtCapacity { .. } => Some(Duration::from_secs(5)),
            Self::UnknownScenario { .. } | Self::ShuttingDown | Self::Invalid(_) | Self::Halted(_) | Self::Watching => {
                None
            }
        }
    }

    /// The HTTP status of this refusal, the one mapping the REST routes and
    /// the dashboard's server functions share: the request's fault (422),
    /// backpressure (429), or the server's state (503). A route whose
    /// scenario id is in its path answers an unknown one with 404 instead.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::UnknownScenario { .. } | Self::Invalid(_) => 422,
            Self::AtCapacity { .. } => 429,
            Self::Watching => 409,
            Self::ShuttingDown | Self::Halted(_) => 503,
        }
    }
}

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Topology(#[from] TopologyError),
    #[error("{0}")]
    Impact(String),
}

/// What became of in-flight incidents at shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ShutdownReport {
    /// Incidents that finished within the grace period.
    pub drained: usize,
    /// Incidents marked `interrupted` when the grace period ran out.
    pub interrupted: usize,
}

/// How an incident went, against the truth (scenarios only).
#[derive(Debug, Clone, PartialEq)]
pub struct Audit {
    /// The scenario.
    pub scenario_id: Option<String>,
    /// Final status.
    pub status: IncidentStatus,
    /// Simulated seconds to close.
    pub elapsed: Duration,
    /// The first diagnosis's best hypothesis.
    pub first_hypothesis: Option<RootCause>,
    /// The hypothesis whose plan healed the estate.
    pub acted_on: Option<RootCause>,
    /// Actions run, in order.
    pub executed: Vec<ActionKind>,
    /// Plans rolled back because they did not heal.
    pub rollbacks: u32,
    /// Simulated time spent waiting for people to approve plans.
    pub approval_wait: Duration,
    /// Whether the incident's own estate met every objective at the end
    /// (isolated twins only).
    pub healed: Option<bool>,
    /// What was still wrong at the end (isolated twins only).
    pub violations: Vec<String>,
    /// The services in a worse state at the end than when the incident
    /// opened (isolated twins only).
    pub worsened: Vec<String>,
}

/// Where an engine's incidents work: one estate they share, or each its
/// own fork of a warmed-up template.
enum Estates {
    /// The server's estate, which concurrent incidents meet in.
    Shared(Arc<SharedTwin>),
    /// A warmed-up estate each incident forks (evaluation, load tests).
    Isolated {
        /// Warm, with a short history: forked per incident.
        template: Estate,
    },
    /// A real estate read through Prometheus; no twin runs.
    Watched {
        estate: crate::watched::WatchedEstate,
        /// What carries out its steps (none: advisory).
        actuator: Option<crate::actuator::HttpActuator>,
    },
}

impl Estates {
    /// The shared estate, in shared mode.
    fn shared(&self) -> Option<&Arc<SharedTwin>> {
        match self {
            Self::Shared(twin) => Some(twin),
            Self::Isolated { .. } | Self::Watched { .. } => None,
        }
    }
}

struct Shared {
    /// Simulated time.
    clock: SimClock,
    /// The agents and the catalog.
    swarm: Arc<Swarm>,
    /// The estate incidents work on.
    estates: Estates,
    /// Audits of finished incidents, kept in isolated mode for evaluation.
    audits: Mutex<Audits>,
    /// The estate's services and dependencies.
    topology: Arc<Topology>,
    /// The cost model behind savings.
    impact: ImpactModel,
    /// Every event, in order, with fan-out.
    log: EventLog,
    /// Incidents and totals. Every change to it is appended to the log while
    /// it is held, so snapshots taken under it are consistent.
    book: Mutex<IncidentBook>,
    /// The incident tasks.
    tasks: TaskTracker,
    /// Cancelled when in-flight incidents must stop.
    interrupt: CancellationToken,
    /// Set once shutdown starts; new incidents are refused.
    draining: AtomicBool,
    /// Seeds each incident's own generator.
    seeds: Mutex<StdRng>,
    /// Agents' time, shared by every incident.
    bus: AgentBus,
    /// Where closed incidents are announced.
    webhook: Option<crate::notify::Webhook>,
    /// Chaos: share of agent jobs that fail.
    agent_failure_rate: f64,
    /// Incidents open at once before new ones are refused.
    max_active: u64,
    /// Stops the periodic health reports at shutdown.
    stop_reports: CancellationToken,
    /// Root-cause services being remediated, and by which incident, so two
    /// incidents never act on the same root at once.
    claims: Claims,
    /// What may run without a person.
    policy: Arc<Policy>,
    /// Plans waiting for a person.
    approvals: Approvals,
    /// Open incidents' charts and recently closed ones' windows (shared
    /// estate only).
    charts: Arc<crate::charts::Charts>,
    /// Where closed incidents' chart windows are kept, when durable.
    journal: Option<Arc<dyn Journal>>,
    /// Alerts seen, and the open incidents they made.
    desk: Arc<Mutex<crate::intake::desk::Desk>>,
    /// Silences an incident's alerts while its plan runs.
    silencer: Option<crate::intake::silences::Silencer>,
    /// Plans end as advice with their exact requests; nothing is applied.
    dry_run: bool,
    /// The demo's autopilot delay (wall time).
    autopilot: Option<Duration>,
    /// When alerts share an incident (`data/correlation.toml`).
    correlation: crate::intake::desk::Correlation,
    /// The other instances on the store, when it is shared.
    coordination: Option<Arc<dyn crate::cluster::Coordination>>,
    /// Each incident running here, and how to interrupt it alone (its
    /// lease was lost).
    running: Mutex<std::collections::HashMap<Uuid, CancellationToken>>,
    /// Stops renewing leases, once this instance's incidents have drained
    /// at shutdown.
    stop_coordinating: CancellationToken,
}

/// The estate's topology and the catalog over it: the twin's (embedded or
/// standalone), with its scenarios; or a real estate's own, with the
/// playbooks only (a scenario injects faults into a twin).
fn estate_and_catalog(config: &EngineConfig) -> Result<(Arc<Topology>, Catalog), StartError> {
    Ok(match &config.watch {
        // A standalone twin is the twin: its scenarios inject into it.
        Some(crate::watched::WatchedEstate::Twin(twin)) => {
            let topology = Arc::clone(twin.topology());
            let catalog = Catalog::embedded(&topology)?;
            (topology, catalog)
        }
        Some(watched) => {
            let topology = Arc::clone(watched.topology());
            let catalog = Catalog::playbooks_only(&topology)?;
            (topology, catalog)
        }
        None => {
            let topology = Arc::new(Topology::embedded()?);
            let catalog = Catalog::embedded(&topology)?;
            (topology, catalog)
        }
    })
}

/// A cheap-to-clone handle to the swarm.
#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
}

impl Engine {
    /// Builds an engine from the embedded catalog and impact model.
    pub fn new(config: EngineConfig) -> Result<Self, StartError> {
        let (topology, catalog) = estate_and_catalog(&config)?;
        Self::with_catalog(config, topology, catalog)
    }

    /// Builds an engine over another catalog (evaluation of scenario files),
    /// with its event log in memory.
    pub fn with_catalog(config: EngineConfig, topology: Arc<Topology>, catalog: Catalog) -> Result<Self, StartError> {
        let log = EventLog::new(config.retain_events, config.fanout_capacity);
        Self::build(config, topology, catalog, log, Totals::default(), None, None)
    }

    /// Builds an engine whose event log is durable in `journal`, continuing
    /// where `recovered` says the store left off: the same epoch and `seq`,
    /// the same totals, and every incident and timeline run the last run
    /// left open marked `interrupted`, visibly. Must be called within a tokio runtime.
    pub fn durable(config: EngineConfig, journal: Arc<dyn Journal>, recovered: Recovered) -> Result<Self, StartError> {
        Self::resume(config, journal, recovered, None)
    }

    /// As [`durable`](Self::durable), on a store other instances share:
    /// events are published from the store's tail, incidents and timeline
    /// runs are leased, and only what no lease covers is interrupted at
    /// start (dead owners' leases are taken over once they expire).
    pub fn shared(
        config: EngineConfig,
        journal: Arc<dyn Journal>,
        recovered: Recovered,
        sharing: Sharing,
    ) -> Result<Self, StartError> {
        Self::resume(config, journal, recovered, Some(sharing))
    }

    fn resume(
        config: EngineConfig,
        journal: Arc<dyn Journal>,
        recovered: Recovered,
        sharing: Option<Sharing>,
    ) -> Result<Self, StartError> {
        let (topology, catalog) = estate_and_catalog(&config)?;
        let book = IncidentBook::from_totals(&recovered.totals);
        // The alerts the recent log placed, so a redelivery after a restart
        // is still recognised, and a resolution still reaches its incident.
        let placed_alerts: Vec<(crate::protocol::AlertRecord, Uuid)> = (recovered.tail.iter())
            .filter_map(|event| match &event.message {
                ServerMessage::AlertReceived { incident_id, alert } => Some((alert.clone(), *incident_id)),
                _ => None,
            })
            .collect();
        let mut projection = Projection::new(SNAPSHOT_INCIDENTS, SNAPSHOT_EVENTS);
        for event in &recovered.tail {
            projection.apply(event);
        }
        projection.incidents = recovered.incidents.into_iter().take(SNAPSHOT_INCIDENTS).collect();
        projection.metrics = book.metrics();
        let unfinished: Vec<Uuid> = recovered.unfinished.iter().map(|i| i.id).collect();
        let dangling = reconcile::dangling_steps(&recovered.tail, &unfinished);
        let start = LogStart {
            epoch: recovered.epoch,
            last_seq: recovered.last_seq,
            tail: recovered.tail,
            projection,
        };
        let log = match &sharing {
            None => EventLog::durable(
                config.retain_events,
                config.fanout_capacity,
                config.commit_window,
                start,
                Arc::clone(&journal),
            ),
            Some(sharing) => EventLog::shared(
                config.retain_events,
                config.fanout_capacity,
                config.commit_window,
                start,
                Arc::clone(&journal),
                sharing.tailing(crate::cluster::Leases::default()),
            ),
        };
        let coordination = sharing.as_ref().map(|s| Arc::clone(&s.coordination));
        let engine = Self::build(
            config,
            topology,
            catalog,
            log,
            recovered.totals,
            Some(journal),
            coordination,
        )?;
        for entry in recovered.memory {
            engine.memory().record(entry);
        }
        {
            // Open on other instances: active here too, and closed when
            // their end comes through the shared log.
            let mut book = engine.shared.book.lock().expect("incident book lock poisoned");
            for incident in recovered.owned_elsewhere {
                book.open(incident);
            }
        }
        {
            let mut desk = engine.shared.desk.lock().expect("alert desk lock poisoned");
            for (alert, incident) in &placed_alerts {
                desk.recall(alert, *incident);
            }
        }
        if !recovered.unfinished.is_empty() {
            let mut book = engine.shared.book.lock().expect("incident book lock poisoned");
            for incident in &recovered.unfinished {
                warn!(id = %incident.id, title = %incident.title, "the last run left this incident open; marking it interrupted");
                book.totals.failed += 1;
                engine.shared.log.append(ServerMessage::IncidentStatus {
                    incident_id: incident.id,
                    status: IncidentStatus::Interrupted,
                    resolution_time: None,
                    cost_savings: None,
                    root_cause: None,
                    report: Some("The server stopped before the swarm finished this incident.".to_owned()),
                    time_to_detect: None,
                    time_to_diagnose: None,
                });
            }
            engine.shared.log.append(ServerMessage::PerformanceMetrics {
                metrics: book.metrics(),
            });
        }
        // Steps cut short by the kill: what the estate did is read from the
        // receiver's record under each step's key, never sent again.
        if !dangling.is_empty() {
            match engine.actuator() {
                Some(actuator) => {
                    let reconciling = reconcile::reconcile(engine.shared.log.clone(), actuator.clone(), dangling);
                    tokio::spawn(reconciling);
                }
                None => warn!(
                    steps = dangling.len(),
                    "the last run left steps sent to an actuator unfinished, and no actuator is set to ask about them"
                ),
            }
        }
        // An approval still pending belonged to an incident the last run
        // left open: nobody can answer it now.
        // (With other instances, only one of an incident interrupted here:
        // the others may be waiting on a live instance.)
        let orphans: Vec<_> = engine
            .recent_approvals()
            .into_iter()
            .filter(|a| a.state == crate::protocol::ApprovalState::Pending)
            .filter(|a| sharing.is_none() || unfinished.contains(&a.incident_id))
            .collect();
        for mut approval in orphans {
            approval.state = crate::protocol::ApprovalState::Withdrawn;
            approval.decided_by = Some("server restart".into());
            approval.decided_at = Some(chrono::Utc::now());
            engine.shared.log.append(ServerMessage::ApprovalDecided { approval });
        }
        if sharing.is_some() {
            engine.start_sharing();
        }
        for run in recovered.unfinished_runs {
            warn!(run = %run.run_id, timeline = %run.timeline_id, "the last run left this timeline going; marking it interrupted");
            engine.shared.log.append(ServerMessage::TimelineProgress {
                run: crate::protocol::TimelineRun {
                    state: crate::protocol::RunState::Interrupted,
                    ..run
                },
            });
        }
        Ok(engine)
    }

    fn build(
        config: EngineConfig,
        topology: Arc<Topology>,
        catalog: Catalog,
        log: EventLog,
        totals: Totals,
        journal: Option<Arc<dyn Journal>>,
        coordination: Option<Arc<dyn crate::cluster::Coordination>>,
    ) -> Result<Self, StartError> {
        let mut seeds = match config.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        let impact = ImpactModel::embedded().map_err(StartError::Impact)?;
        let signatures = crate::agents::signatures().map_err(StartError::Impact)?;
        let correlation = crate::intake::desk::Correlation::embedded().map_err(StartError::Impact)?;
        let desk = Arc::new(Mutex::default());
        let clock = SimClock::new(config.speed);
        let estate = Estate::new(Arc::clone(&topology), seeds.random(), START_OF_DAY);
        let estates = match (config.watch, config.twin) {
            (Some(estate), _) => Estates::Watched {
                estate,
                actuator: config.actuator,
            },
            (None, TwinMode::Shared) => {
                // Ten minutes at one reading a second: an incident's chart
                // keeps its onset even after a long wait for a person.
                let mut estate = estate;
                estate.keep_history(SHARED_HISTORY);
                estate.start_exporting();
                Estates::Shared(Arc::new(SharedTwin::new(estate, clock)))
            }
            (None, TwinMode::Isolated) => {
                // Warm once, fork per incident: thousands of incidents need
                // neither thousands of warm-ups nor full histories.
                let mut template = estate;
                template.keep_history(ISOLATED_HISTORY);
                Estates::Isolated { template }
            }
        };
        // Isolated estates share nothing to collide on.
        let claims = match estates {
            Estates::Shared(_) | Estates::Watched { .. } => Claims::shared(),
            Estates::Isolated { .. } => Claims::isolated(),
        };
        let swarm = Swarm {
            catalog,
            detection: DetectionAgent {
                signatures: signatures.clone(),
                monitors: crate::agents::monitors().map_err(StartError::Impact)?,
                memory: Memory::new(config.memory_capacity),
            },
            diagnosis: DiagnosisAgent { signatures },
            prediction: PredictionAgent { impact: impact.clone() },
            resolution: ResolutionAgent,
            communication: Communication,
        };
        Ok(Self {
            shared: Arc::new(Shared {
                clock,
                swarm: Arc::new(swarm),
                estates,
                audits: Mutex::default(),
                topology: Arc::clone(&topology),
                impact,
                log,
                book: Mutex::new(IncidentBook::from_totals(&totals)),
                tasks: TaskTracker::new(),
                interrupt: CancellationToken::new(),
                draining: AtomicBool::new(false),
                seeds: Mutex::new(seeds),
                stop_reports: CancellationToken::new(),
                bus: AgentBus::new(config.agent_workers.max(1), clock),
                webhook: config.webhook,
                agent_failure_rate: config.agent_failure_rate.clamp(0.0, 1.0),
                max_active: config.max_active_incidents,
                claims,
                policy: config.policy,
                approvals: match &coordination {
                    Some(coordination) => Approvals::arbitrated(Arc::clone(coordination)),
                    None => Approvals::default(),
                },
                charts: Arc::default(),
                journal,
                dry_run: config.dry_run,
                autopilot: config.autopilot,
                silencer: (config.alertmanager_url.as_deref())
                    .map(|url| crate::intake::silences::Silencer::new(url, Arc::clone(&desk))),
                desk,
                correlation,
                coordination,
                running: Mutex::default(),
                stop_coordinating: CancellationToken::new(),
            }),
        })
    }

    /// The incident memory.
    pub fn memory(&self) -> &Memory {
        &self.shared.swarm.detection.memory
    }

    /// Forgets every remembered incident, recording who asked; returns how
    /// many entries there were.
    pub fn clear_memory(&self, by: &str) -> u64 {
        let removed = self.memory().clear();
        self.publish(ServerMessage::MemoryCleared {
            removed,
            by: by.to_owned(),
        });
        removed
    }

    /// The governance policy every plan passes.
    pub fn policy(&self) -> &Arc<Policy> {
        &self.shared.policy
    }

    /// An incident's telemetry window for its charts: growing while it is
    /// open, kept for a while once it closes (the store keeps it for good).
    /// `None` for an unknown incident, or once it has left memory.
    pub fn incident_telemetry(&self, id: Uuid) -> Option<crate::protocol::IncidentTelemetry> {
        match self.shared.estates.shared() {
            Some(twin) => twin.with(|estate| self.shared.charts.telemetry(id, Some(estate))),
            None => self.shared.charts.telemetry(id, None),
        }
    }

    /// Approvals as published: waiting ones and the latest decided, newest
    /// first (what a snapshot carries, without building one).
    pub fn recent_approvals(&self) -> Vec<crate::protocol::Approval> {
        self.shared.log.project(|p| p.approvals.iter().cloned().collect())
    }

    /// Plans waiting for a person; `decide` on it is how a person answers.
    pub fn approvals(&self) -> &Approvals {
        &self.shared.approvals
    }

    pub fn clock(&self) -> SimClock {
        self.shared.clock
    }

    /// Every agent's lane now.
    pub fn swarm_stats(&self) -> Vec<crate::protocol::AgentStats> {
        self.shared.bus.stats()
    }

    pub(crate) fn swarm(&self) -> Arc<Swarm> {
        Arc::clone(&self.shared.swarm)
    }

    /// How an incident went against its scenario's truth; kept in isolated
    /// mode only.
    pub fn audit(&self, id: Uuid) -> Option<Audit> {
        self.shared
            .audits
            .lock()
            .expect("audit lock poisoned")
            .by_id
            .get(&id)
            .cloned()
    }

    /// The most incidents open at once before new ones are refused.
    pub fn max_active_incidents(&self) -> u64 {
        self.shared.max_active
    }

    /// The estate's services and dependencies.
    pub fn topology(&self) -> &Arc<Topology> {
        &self.shared.topology
    }

    /// The shared estate's services now (shared mode only).
    pub fn twin_health(&self) -> Option<Vec<crate::protocol::ServiceTelemetry>> {
        self.with_twin(|estate| estate.health_report())
    }

    /// Publishes `twin_health` every [`HEALTH_EVERY`] of simulated time,
    /// and at most once per wall second, until shutdown. Call once, within
    /// a tokio runtime; does nothing for isolated twins.
    pub fn start_health_reports(&self) {
        let engine = self.clone();
        let stop = self.shared.stop_reports.clone();
        tokio::spawn(async move {
            let wall = HEALTH_EVERY
                .div_f64(engine.clock().speed().factor())
                .max(Duration::from_secs(1));
            // The first report waits a period: the snapshot has the estate.
            let mut every = tokio::time::interval_at(tokio::time::Instant::now() + wall, wall);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = every.tick() => {}
                    () = stop.cancelled() => return,
                }
                if let Some(services) = engine.twin_health() {
                    engine.publish(ServerMessage::TwinHealth { services });
                } else if let Some(crate::watched::WatchedEstate::Twin(twin)) = engine.watched() {
                    // A standalone twin reports its own health; a failed
                    // read skips a report (readiness says why).
                    if let Ok(services) = twin.health().await {
                        engine.publish(ServerMessage::TwinHealth { services });
                    }
                }
                // What the estate changed by itself (a safe-mode exit).
                if let Some(changes) = engine.with_twin(Estate::take_spontaneous_changes) {
                    engine.publish_changes(None, &changes);
                }
                engine.publish(ServerMessage::SwarmStats {
                    agents: engine.swarm_stats(),
                });
            }
        });
    }

    /// Every model service's registry (shared mode; empty otherwise).
    pub fn model_registries(&self) -> Vec<crate::protocol::ModelRegistry> {
        self.with_twin(|estate| {
            let topology = estate.topology();
            (0..topology.len())
                .filter(|&i| !estate.model_registry(i).is_empty())
                .map(|i| {
                    let config = &estate.service(i).config;
                    crate::protocol::ModelRegistry {
                        service: topology.spec(i).name.clone(),
                        serving: config.model_version,
                        safe_mode: config.safe_mode,
                        versions: estate
                            .model_registry(i)
                            .iter()
                            .map(|v| crate::protocol::ModelVersionInfo {
                                version: v.version,
                                profile_accuracy: v.profile_accuracy,
                                measured_accuracy: v.measured_accuracy.map(|a| (a * 1000.0).round() / 1000.0),
                                origin: v.origin.as_str().to_owned(),
                            })
                            .collect(),
                        features: estate
                            .feature_psi(i)
                            .into_iter()
                            .map(|(feature, psi)| crate::protocol::FeatureDrift {
                                feature: feature.to_owned(),
                                psi: (psi * 1000.0).round() / 1000.0,
                            })
                            .collect(),
                    }
                })
                .collect()
        })
        .unwrap_or_default()
    }

    /// Runs `f` on the shared estate (shared mode only).
    /// The shared estate's telemetry as a Prometheus scrape sees it (see
    /// `twin::exporter`); `None` in isolated mode, where there is no one
    /// estate to watch.
    pub fn twin_exposition(&self) -> Option<String> {
        let now = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
        self.with_twin(|estate| estate.exposition(now)).flatten()
    }

    pub fn with_twin<R>(&self, f: impl FnOnce(&mut Estate) -> R) -> Option<R> {
        self.shared.estates.shared().map(|twin| twin.with(f))
    }

    /// The estate this engine watches, if any (then no twin runs
    /// in-process).
    pub fn watched(&self) -> Option<&crate::watched::WatchedEstate> {
        match &self.shared.estates {
            Estates::Watched { estate, .. } => Some(estate),
            Estates::Shared(_) | Estates::Isolated { .. } => None,
        }
    }

    /// The actuator that carries out a watched estate's steps, if any (its
    /// callbacks arrive through the server).
    pub fn actuator(&self) -> Option<&crate::actuator::HttpActuator> {
        match &self.shared.estates {
            Estates::Watched { actuator, .. } => actuator.as_ref(),
            Estates::Shared(_) | Estates::Isolated { .. } => None,
        }
    }

    pub fn impact(&self) -> &ImpactModel {
        &self.shared.impact
    }

    /// The catalog's scenarios, primary ones first.
    pub fn scenarios(&self) -> Vec<ScenarioSummary> {
        self.shared
            .swarm
            .catalog
            .scenarios()
            .into_iter()
            .map(|s| s.summary())
            .collect()
    }

    /// An incident by id.
    pub fn incident(&self, id: Uuid) -> Option<Incident> {
        self.shared
            .book
            .lock()
            .expect("incident book lock poisoned")
            .by_id
            .get(&id)
            .cloned()
    }

    /// The impact meter's figures now.
    pub fn metrics(&self) -> PerformanceMetrics {
        self.shared.book.lock().expect("incident book lock poisoned").metrics()
    }

    /// Waits until every event published so far is stored and sent to
    /// subscribers (at once with an in-memory log).
    pub async fn flush(&self) {
        self.shared.log.flush().await;
    }

    /// Whether the store is refusing events (see [`EventLog::store_refusal`]).
    pub fn store_refusal(&self) -> Option<crate::event_log::StoreRefusal> {
        self.shared.log.store_refusal()
    }

    /// Waits until everything appended is stored and published; refuses
    /// when the log stopped publishing, so a request is never acknowledged
    /// for an event that was not stored.
    pub async fn stored(&self) -> Result<(), SubmitError> {
        self.shared.log.flush().await;
        match self.shared.log.halted() {
            Some(reason) => Err(SubmitError::Halted(reason)),
            None => Ok(()),
        }
    }

    /// Why the log stopped publishing for good, if it has (see
    /// [`EventLog::halted`]).
    pub fn publishing_halted(&self) -> Option<String> {
        self.shared.log.halted()
    }

    /// The event log (for reads the store cannot serve: the live tail).
    pub fn log(&self) -> &EventLog {
        &self.shared.log
    }

    /// Publishes configuration changes of the estate: an incident's
    /// actions', or (`None`) the estate's own.
    pub(crate) fn publish_changes(&self, incident_id: Option<Uuid>, changes: &[crate::twin::ConfigChange]) {
        for event in orchestrator::config_change_events(incident_id, changes) {
            self.publish(event);
        }
    }

    /// What incident `id`'s run may reach (see [`orchestrator::Context`]);
    /// its interruption is its own, under the engine's.
    fn context(&self, id: Uuid) -> orchestrator::Context {
        let shared = &self.shared;
        let interrupt = shared.interrupt.child_token();
        (shared.running.lock().expect("running lock poisoned")).insert(id, interrupt.clone());
        orchestrator::Context {
            swarm: Arc::clone(&shared.swarm),
            log: shared.log.clone(),
            bus: shared.bus.clone(),
            policy: Arc::clone(&shared.policy),
            approvals: shared.approvals.clone(),
            claims: shared.claims.clone(),
            charts: Arc::clone(&shared.charts),
            webhook: shared.webhook.clone(),
            agent_failure_rate: shared.agent_failure_rate,
            clock: shared.clock,
            interrupt,
            silencer: shared.silencer.clone(),
            dry_run: shared.dry_run,
            autopilot: shared.autopilot,
        }
    }

    /// Appends a message to the event log, which fans it out.
    pub(crate) fn publish(&self, message: ServerMessage) {
        self.shared.log.append(message);
    }

    /// Stops taking incidents, lets in-flight ones finish for up to `grace`,
    /// then interrupts the rest (each is published as `interrupted`).
    pub async fn shutdown(&self, grace: Duration) -> ShutdownReport {
        self.shared.draining.store(true, Ordering::SeqCst);
        self.shared.stop_reports.cancel();
        self.shared.tasks.close();
        let in_flight = self.shared.tasks.len();
        if in_flight > 0 {
            info!(in_flight, grace_s = grace.as_secs_f64(), "draining in-flight incidents");
        }
        let drained_in_time = tokio::time::timeout(grace, self.shared.tasks.wait()).await.is_ok();
        let mut report = ShutdownReport::default();
        if drained_in_time {
            report.drained = in_flight;
        } else {
            report.interrupted = self.shared.tasks.len();
            report.drained = in_flight - report.interrupted;
            warn!(
                interrupted = report.interrupted,
                "grace period over; interrupting incidents"
            );
            self.shared.interrupt.cancel();
            self.shared.tasks.wait().await;
        }
        // Nothing of ours runs any more: leases need no renewing.
        self.shared.stop_coordinating.cancel();
        // Whatever the incidents said last must be stored before we go.
        self.shared.log.close().await;
        if let Some(coordination) = &self.shared.coordination
            && let Err(error) = coordination.leave().await
        {
            warn!(%error, "could not leave the other instances; they take over once this one's leases expire");
        }
        report
    }
}
