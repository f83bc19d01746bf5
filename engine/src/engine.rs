//! The engine handle: the one door into the swarm for the HTTP edge, the
//! server functions and the tests.
//!
//! [`Engine`] is cheap to clone (an `Arc`). It opens incidents, runs each in
//! its own task, keeps the incident book and the metrics, and publishes
//! every change on the event log. It knows nothing of HTTP or HTML.

use crate::claims::Claims;
use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use rand::{Rng, SeedableRng, rngs::StdRng};
use tokio::sync::broadcast;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{Instrument, info, info_span, warn};
use uuid::Uuid;

use crate::{
    agents::{Agent, Case, Communication, DetectionAgent, DiagnosisAgent, PredictionAgent, ResolutionAgent},
    bus::AgentBus,
    catalog::{Catalog, CatalogError, FaultyVoter, RootCause, Scenario},
    clock::{SimClock, Speed},
    event_log::{EventLog, LogStart, Projection, Published},
    governance::{Approvals, Policy},
    impact::ImpactModel,
    journal::{Journal, Recovered, Totals},
    memory::Memory,
    orchestrator::{self, Assignment, SharedTwin, TwinRef, Verdict},
    protocol::{
        Incident, IncidentStatus, MemoryEntry, PerformanceMetrics, ScenarioSummary, ServerMessage, Severity, Snapshot,
    },
    request::{IncidentRequest, IncidentTitle, ServiceName},
    twin::{ActionKind, Estate, FaultSpec, Topology, TopologyError},
};

/// How often, in simulated time, the shared estate's health is published.
pub const HEALTH_EVERY: Duration = Duration::from_secs(2);
/// Seconds after midnight at which simulated estates start their day.
const START_OF_DAY: f64 = 10.0 * 3600.0;
/// Samples of history the shared estate keeps (one a simulated second).
const SHARED_HISTORY: usize = 600;
/// Samples of history each isolated estate keeps.
const ISOLATED_HISTORY: usize = 40;
/// Seconds a fault has shown in telemetry by the time it is reported: a
/// monitor needs a few samples before it fires.
const REPORTED_AFTER_TICKS: u64 = 5;

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
    /// store transaction and its socket writes (group commit).
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
}

impl SubmitError {
    /// How long a client refused for capacity should wait before retrying:
    /// about one incident's lifetime at demo speed. `None` when retrying
    /// cannot help.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::AtCapacity { .. } => Some(Duration::from_secs(5)),
            Self::UnknownScenario { .. } | Self::ShuttingDown | Self::Invalid(_) => None,
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

/// Where a client's event stream starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resume {
    /// The log the client's `since` belongs to (from its last snapshot).
    pub epoch: Uuid,
    /// The last `seq` the client has.
    pub since: u64,
}

/// The first thing a client receives.
#[derive(Debug)]
pub enum FeedStart {
    /// Exactly the events the client missed, oldest first.
    Replay(Vec<Arc<Published>>),
    /// A fresh view that replaces whatever the client had.
    Snapshot(Box<Snapshot>),
}

/// A client's stream: a start, then every later event, with no gap and no
/// duplicate between the two.
pub struct Feed {
    pub start: FeedStart,
    pub live: broadcast::Receiver<Arc<Published>>,
}

/// What became of in-flight incidents at shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ShutdownReport {
    /// Incidents that finished within the grace period.
    pub drained: usize,
    /// Incidents marked `interrupted` when the grace period ran out.
    pub interrupted: usize,
}

/// Finished incidents kept in memory for [`Engine::incident`]; older ones
/// are only in the store.
const FINISHED_KEPT: usize = 10_000;

/// Open and recently finished incidents, and the running totals behind the
/// metrics.
#[derive(Default)]
struct IncidentBook {
    /// Open and recently finished incidents, by id.
    by_id: HashMap<Uuid, Incident>,
    /// Finished ids, oldest first, for eviction.
    finished: std::collections::VecDeque<Uuid>,
    /// Incidents not yet terminal.
    active: u64,
    /// Everything finished so far.
    totals: Totals,
}

impl IncidentBook {
    /// A book that continues from stored totals, with nothing open.
    fn from_totals(totals: &Totals) -> Self {
        Self {
            totals: totals.clone(),
            ..Self::default()
        }
    }

    fn metrics(&self) -> PerformanceMetrics {
        self.totals.metrics(self.active)
    }
}

/// The agents, and what they share: the catalog's playbooks, the signature
/// library, and the memory of past incidents.
pub struct Swarm {
    /// Scenarios and playbooks.
    pub catalog: Catalog,
    pub detection: DetectionAgent,
    pub diagnosis: DiagnosisAgent,
    pub prediction: PredictionAgent,
    pub resolution: ResolutionAgent,
    pub communication: Communication,
}

impl Swarm {
    /// Every agent, in pipeline order: the voters.
    pub fn agents(&self) -> [&dyn Agent; 5] {
        [
            &self.detection,
            &self.diagnosis,
            &self.prediction,
            &self.resolution,
            &self.communication,
        ]
    }
}

/// Most audits kept; the oldest go first.
const AUDITS_KEPT: usize = 10_000;

/// Finished incidents' audits, bounded.
#[derive(Default)]
struct Audits {
    /// By incident.
    by_id: HashMap<Uuid, Audit>,
    /// Incidents in the order their audits came, for eviction.
    order: std::collections::VecDeque<Uuid>,
}

impl Audits {
    fn insert(&mut self, id: Uuid, audit: Audit) {
        if self.by_id.insert(id, audit).is_none() {
            self.order.push_back(id);
        }
        while self.order.len() > AUDITS_KEPT {
            if let Some(oldest) = self.order.pop_front() {
                self.by_id.remove(&oldest);
            }
        }
    }
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
}

struct Shared {
    /// Simulated time.
    clock: SimClock,
    /// The agents and the catalog.
    swarm: Arc<Swarm>,
    /// The estate incidents share, in shared mode.
    twin: Option<Arc<SharedTwin>>,
    /// A warmed-up estate each incident forks, in isolated mode.
    template: Option<Estate>,
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
    charts: crate::charts::Charts,
    /// Where closed incidents' chart windows are kept, when durable.
    journal: Option<Arc<dyn Journal>>,
}

/// A cheap-to-clone handle to the swarm.
#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
}

impl Engine {
    /// Builds an engine from the embedded catalog and impact model.
    pub fn new(config: EngineConfig) -> Result<Self, StartError> {
        let topology = Arc::new(Topology::embedded()?);
        let catalog = Catalog::embedded(&topology)?;
        Self::with_catalog(config, topology, catalog)
    }

    /// Builds an engine over another catalog (evaluation of scenario files),
    /// with its event log in memory.
    pub fn with_catalog(config: EngineConfig, topology: Arc<Topology>, catalog: Catalog) -> Result<Self, StartError> {
        let log = EventLog::new(config.retain_events, config.fanout_capacity);
        Self::build(config, topology, catalog, log, Totals::default(), None)
    }

    /// Builds an engine whose event log is durable in `journal`, continuing
    /// where `recovered` says the store left off: the same epoch and `seq`,
    /// the same totals, and every incident and timeline run the last run
    /// left open marked `interrupted`, visibly. Must be called within a tokio runtime.
    pub fn durable(config: EngineConfig, journal: Arc<dyn Journal>, recovered: Recovered) -> Result<Self, StartError> {
        let topology = Arc::new(Topology::embedded()?);
        let catalog = Catalog::embedded(&topology)?;
        let book = IncidentBook::from_totals(&recovered.totals);
        let mut projection = Projection::new(SNAPSHOT_INCIDENTS, SNAPSHOT_EVENTS);
        for event in &recovered.tail {
            projection.apply(event);
        }
        projection.incidents = recovered.incidents.into_iter().take(SNAPSHOT_INCIDENTS).collect();
        projection.metrics = book.metrics();
        let start = LogStart {
            epoch: recovered.epoch,
            last_seq: recovered.last_seq,
            tail: recovered.tail,
            projection,
        };
        let log = EventLog::durable(
            config.retain_events,
            config.fanout_capacity,
            config.commit_window,
            start,
            Arc::clone(&journal),
        );
        let engine = Self::build(config, topology, catalog, log, recovered.totals, Some(journal))?;
        for entry in recovered.memory {
            engine.memory().record(entry);
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
        // An approval still pending belonged to an incident the last run
        // left open: nobody can answer it now.
        let orphans: Vec<_> = engine
            .recent_approvals()
            .into_iter()
            .filter(|a| a.state == crate::protocol::ApprovalState::Pending)
            .collect();
        for mut approval in orphans {
            approval.state = crate::protocol::ApprovalState::Withdrawn;
            approval.decided_by = Some("server restart".into());
            approval.decided_at = Some(chrono::Utc::now());
            engine.shared.log.append(ServerMessage::ApprovalDecided { approval });
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
    ) -> Result<Self, StartError> {
        let mut seeds = match config.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        let impact = ImpactModel::embedded().map_err(StartError::Impact)?;
        let signatures = crate::agents::signatures().map_err(StartError::Impact)?;
        let clock = SimClock::new(config.speed);
        let estate = Estate::new(Arc::clone(&topology), seeds.random(), START_OF_DAY);
        let (twin, template) = match config.twin {
            TwinMode::Shared => {
                // Ten minutes at one reading a second: an incident's chart
                // keeps its onset even after a long wait for a person.
                let mut estate = estate;
                estate.keep_history(SHARED_HISTORY);
                (Some(Arc::new(SharedTwin::new(estate, clock))), None)
            }
            TwinMode::Isolated => {
                // Warm once, fork per incident: thousands of incidents need
                // neither thousands of warm-ups nor full histories.
                let mut template = estate;
                template.keep_history(ISOLATED_HISTORY);
                (None, Some(template))
            }
        };
        let has_shared_twin = twin.is_some();
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
                twin,
                template,
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
                // Isolated estates share nothing to collide on.
                claims: if has_shared_twin {
                    Claims::shared()
                } else {
                    Claims::isolated()
                },
                policy: config.policy,
                approvals: Approvals::default(),
                charts: crate::charts::Charts::default(),
                journal,
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
        match &self.shared.twin {
            Some(twin) => twin.with(|estate| self.shared.charts.telemetry(id, Some(estate))),
            None => self.shared.charts.telemetry(id, None),
        }
    }

    /// Marks a moment on an open incident's chart.
    pub(crate) fn chart_mark(&self, id: Uuid, at: Duration, kind: crate::protocol::MarkKind, label: String) {
        self.shared.charts.mark(id, at.as_secs_f64(), kind, label);
    }

    /// Adds the series detection found anomalous to an incident's chart.
    pub(crate) fn chart_watch(&self, id: Uuid, anomalies: &[(String, crate::twin::Metric)]) {
        if let Some(twin) = &self.shared.twin {
            twin.with(|estate| self.shared.charts.watch(id, estate, anomalies));
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

    pub(crate) fn agent_failure_rate(&self) -> f64 {
        self.shared.agent_failure_rate
    }

    pub(crate) fn webhook(&self) -> Option<&crate::notify::Webhook> {
        self.shared.webhook.as_ref()
    }

    pub(crate) fn bus(&self) -> &AgentBus {
        &self.shared.bus
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
    pub fn with_twin<R>(&self, f: impl FnOnce(&mut Estate) -> R) -> Option<R> {
        self.shared.twin.as_ref().map(|twin| twin.with(f))
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

    /// Opens an incident for a scenario that is not in the catalog (a
    /// generated one), at its severity unless `severity` overrides it.
    pub fn open_scenario(&self, scenario: &Scenario, severity: Option<Severity>) -> Result<Incident, SubmitError> {
        let request = IncidentRequest {
            title: IncidentTitle::parse(&scenario.title).map_err(|e| SubmitError::Invalid(e.to_string()))?,
            severity: severity.unwrap_or(scenario.severity),
            affected_services: scenario
                .affected_services
                .iter()
                .map(|s| ServiceName::parse(s, "affected_services"))
                .collect::<Result<_, _>>()
                .map_err(|e| SubmitError::Invalid(e.to_string()))?,
            scenario_id: None,
        };
        self.open(
            request,
            Some(scenario.id.clone()),
            scenario.fault.clone(),
            scenario.faulty_voters.clone(),
        )
    }

    /// Opens an incident and starts the swarm on it. Must be called within
    /// a tokio runtime.
    pub fn open_incident(&self, request: IncidentRequest) -> Result<Incident, SubmitError> {
        let catalog = &self.shared.swarm.catalog;
        let (faults, faulty_voters): (Vec<FaultSpec>, Vec<FaultyVoter>) = match &request.scenario_id {
            None => (Vec::new(), Vec::new()),
            Some(id) => match catalog.scenario(id.as_str()) {
                Some(scenario) => (scenario.fault.clone(), scenario.faulty_voters.clone()),
                None => {
                    return Err(SubmitError::UnknownScenario {
                        id: id.as_str().to_owned(),
                        suggestion: catalog.closest_scenario(id.as_str()).map(str::to_owned),
                    });
                }
            },
        };
        let scenario_id = request.scenario_id.as_ref().map(|id| id.as_str().to_owned());
        self.open(request, scenario_id, faults, faulty_voters)
    }

    fn open(
        &self,
        request: IncidentRequest,
        scenario_id: Option<String>,
        faults: Vec<FaultSpec>,
        faulty_voters: Vec<FaultyVoter>,
    ) -> Result<Incident, SubmitError> {
        if self.shared.draining.load(Ordering::SeqCst) {
            return Err(SubmitError::ShuttingDown);
        }
        // Refused before anything is injected; a burst may overshoot the
        // limit by the few requests racing this check, never by more.
        if self.shared.book.lock().expect("incident book lock poisoned").active >= self.shared.max_active {
            return Err(SubmitError::AtCapacity {
                limit: self.shared.max_active,
            });
        }
        let incident = Incident {
            id: Uuid::new_v4(),
            title: request.title.as_str().to_owned(),
            severity: request.severity,
            affected_services: request
                .affected_services
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect(),
            scenario_id,
            status: IncidentStatus::Active,
            created_at: chrono::Utc::now(),
            finished_at: None,
            resolution_time: None,
            cost_savings: None,
            root_cause: None,
            report: None,
        };
        let mut rng = StdRng::seed_from_u64(self.shared.seeds.lock().expect("seed lock poisoned").random());
        let twin = match &self.shared.twin {
            Some(shared) => {
                shared.with(|estate| {
                    // The chart's zero: now, on the engine's clock, before
                    // the estate runs ahead with the fault.
                    let opened_tick = estate.now();
                    let mut injected = false;
                    for fault in &faults {
                        // The same fault again is the same trouble, not twice as much.
                        if !estate.has_active_fault(fault.kind, &fault.target) {
                            match estate.inject(fault) {
                                Ok(_) => injected = true,
                                Err(reason) => warn!(%reason, "a catalog fault did not inject"),
                            }
                        }
                    }
                    if injected {
                        // The fault was already showing when it was reported;
                        // the estate runs ahead and then waits for the clock.
                        estate.advance(REPORTED_AFTER_TICKS);
                    }
                    self.shared
                        .charts
                        .open(incident.id, estate, opened_tick, &incident.affected_services);
                });
                TwinRef::Shared(Arc::clone(shared))
            }
            None => {
                let mut estate = self
                    .shared
                    .template
                    .as_ref()
                    .expect("isolated engines keep a template")
                    .fork(rng.random());
                for fault in &faults {
                    if let Err(reason) = estate.inject(fault) {
                        warn!(%reason, "a catalog fault did not inject");
                    }
                }
                if !faults.is_empty() {
                    estate.advance(REPORTED_AFTER_TICKS);
                }
                let start = estate.now();
                TwinRef::Own {
                    estate: Box::new(estate),
                    start,
                }
            }
        };
        {
            let mut book = self.shared.book.lock().expect("incident book lock poisoned");
            book.by_id.insert(incident.id, incident.clone());
            book.active += 1;
            self.shared.log.append(ServerMessage::IncidentCreated {
                incident: incident.clone(),
            });
            // The active count changed.
            self.shared.log.append(ServerMessage::PerformanceMetrics {
                metrics: book.metrics(),
            });
        }
        let span = info_span!(
            "incident",
            id = %incident.id,
            scenario = incident.scenario_id.as_deref().unwrap_or("-"),
            severity = incident.severity.as_str(),
        );
        span.in_scope(|| info!(title = %incident.title, faults = faults.len(), "incident opened"));
        let assignment = Assignment {
            incident: incident.clone(),
            twin,
            faulty_voters,
            rng,
        };
        self.shared
            .tasks
            .spawn(orchestrator::run(self.clone(), assignment).instrument(span));
        Ok(incident)
    }

    /// Opens an incident from a catalog scenario, optionally at another
    /// severity.
    pub fn trigger_scenario(&self, id: &str, severity: Option<Severity>) -> Result<Incident, SubmitError> {
        let catalog = &self.shared.swarm.catalog;
        let scenario = catalog.scenario(id).ok_or_else(|| SubmitError::UnknownScenario {
            id: id.to_owned(),
            suggestion: catalog.closest_scenario(id).map(str::to_owned),
        })?;
        let request = IncidentRequest {
            title: IncidentTitle::parse(&scenario.title).expect("catalog titles are valid"),
            severity: severity.unwrap_or(scenario.severity),
            affected_services: scenario
                .affected_services
                .iter()
                .map(|s| ServiceName::parse(s, "affected_services").expect("catalog checks service names"))
                .collect(),
            scenario_id: Some(crate::request::ScenarioId::parse(id).expect("catalog checks ids")),
        };
        self.open_incident(request)
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

    /// Everything a dashboard needs for its first paint.
    pub fn snapshot(&self) -> Snapshot {
        self.snapshot_and_subscribe().0
    }

    fn snapshot_and_subscribe(&self) -> (Snapshot, broadcast::Receiver<Arc<Published>>) {
        let epoch = self.shared.log.epoch();
        let (mut snapshot, live) = self.shared.log.project_and_subscribe(|last_seq, projection| Snapshot {
            epoch,
            last_seq,
            metrics: projection.metrics.clone(),
            incidents: projection.incidents.iter().cloned().collect(),
            recent_events: projection.recent.iter().cloned().collect(),
            twin: projection.twin.clone(),
            swarm: projection.swarm.clone(),
            timelines: projection.timelines.iter().cloned().collect(),
            approvals: projection.approvals.iter().cloned().collect(),
        });
        // Before the first reports, read the gauges directly.
        if snapshot.twin.is_empty() {
            snapshot.twin = self.twin_health().unwrap_or_default();
        }
        if snapshot.swarm.is_empty() {
            snapshot.swarm = self.swarm_stats();
        }
        (snapshot, live)
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

    /// The event log (for reads the store cannot serve: the live tail).
    pub fn log(&self) -> &EventLog {
        &self.shared.log
    }

    /// A stream for one client: the events it missed since `resume` when
    /// the log still has them all, or else a fresh snapshot; then live.
    pub fn feed(&self, resume: Option<Resume>) -> Feed {
        if let Some(resume) = resume.filter(|r| r.epoch == self.shared.log.epoch()) {
            let subscription = self.shared.log.subscribe_since(resume.since);
            if subscription.complete {
                return Feed {
                    start: FeedStart::Replay(subscription.backlog),
                    live: subscription.live,
                };
            }
        }
        let (snapshot, live) = self.snapshot_and_subscribe();
        Feed {
            start: FeedStart::Snapshot(Box::new(snapshot)),
            live,
        }
    }

    /// Publishes configuration changes of the estate: an incident's
    /// actions', or (`None`) the estate's own.
    pub(crate) fn publish_changes(&self, incident_id: Option<Uuid>, changes: &[crate::twin::ConfigChange]) {
        for change in changes {
            self.publish(ServerMessage::ConfigChange {
                incident_id,
                change: change.event(),
            });
        }
    }

    /// Appends a message to the event log, which fans it out.
    pub(crate) fn publish(&self, message: ServerMessage) {
        self.shared.log.append(message);
    }

    /// Who remediates which root service on the shared estate.
    pub(crate) fn claims(&self) -> &Claims {
        &self.shared.claims
    }

    pub(crate) fn interrupt_token(&self) -> CancellationToken {
        self.shared.interrupt.clone()
    }

    /// Closes an incident: records its outcome, then publishes its final
    /// status and the new metrics, atomically with respect to snapshots.
    pub(crate) fn finish(&self, id: Uuid, verdict: Verdict, case: &Case, violations: Option<Vec<String>>) {
        let healed = violations.as_ref().map(Vec::is_empty);
        let status = verdict.status;
        let elapsed = verdict.elapsed;
        if let Some(twin) = &self.shared.twin {
            let closed = twin.with(|estate| {
                self.shared.charts.close(
                    id,
                    estate,
                    elapsed.as_secs_f64(),
                    format!("incident {}", status.as_str()),
                )
            });
            if let (Some(telemetry), Some(journal)) = (closed, &self.shared.journal) {
                let journal = Arc::clone(journal);
                // Tracked, so a graceful shutdown waits for the write.
                self.shared.tasks.spawn(async move {
                    if let Err(error) = journal.keep_telemetry(&telemetry).await {
                        warn!(%error, "could not keep an incident's chart window");
                    }
                });
            }
        }
        let tenths = |d: Duration| (d.as_secs_f64() * 10.0).round() / 10.0;
        let seconds = tenths(elapsed);
        // Fixes that ran teach the memory; an interrupted incident's do not
        // (it never learned how they ended).
        if status != IncidentStatus::Interrupted
            && !verdict.fixes.is_empty()
            && let Some(detection) = &case.detection
        {
            let entry = MemoryEntry {
                incident_id: id,
                recorded_at: chrono::Utc::now(),
                scenario_id: case.incident.scenario_id.clone(),
                features: detection.signature.clone(),
                fixes: verdict.fixes.clone(),
                resolution_seconds: seconds,
            };
            if let Some(evicted) = self.memory().record(entry.clone()) {
                self.shared.log.append(ServerMessage::MemoryRecorded { entry, evicted });
            }
        }
        {
            self.shared.audits.lock().expect("audit lock poisoned").insert(
                id,
                Audit {
                    scenario_id: case.incident.scenario_id.clone(),
                    status,
                    elapsed,
                    first_hypothesis: verdict.first_hypothesis.clone(),
                    acted_on: verdict.acted_on.clone(),
                    executed: verdict.executed.clone(),
                    rollbacks: verdict.rollbacks,
                    approval_wait: verdict.approval_wait,
                    healed,
                    violations: violations.unwrap_or_default(),
                },
            );
        }
        let mut book = self.shared.book.lock().expect("incident book lock poisoned");
        let Some(incident) = book.by_id.get_mut(&id) else {
            warn!(%id, "finish called for an unknown incident");
            return;
        };
        if incident.status.is_terminal() {
            return;
        }
        let savings = (status == IncidentStatus::Resolved).then(|| {
            self.shared
                .impact
                .cost_savings(incident.severity, incident.affected_services.len(), seconds)
        });
        incident.status = status;
        incident.finished_at = Some(chrono::Utc::now());
        incident.resolution_time = Some(seconds);
        incident.cost_savings = savings;
        incident.root_cause = verdict
            .acted_on
            .as_ref()
            .or(verdict.first_hypothesis.as_ref())
            .map(|r| format!("{} on {}", r.fault.label(), r.service));
        incident.report = (!verdict.report.is_empty()).then_some(verdict.report);
        let (root_cause, report) = (incident.root_cause.clone(), incident.report.clone());
        let scenario = incident.scenario_id.clone();
        if let (Some(detect), Some(diagnose)) = (verdict.detected_after, verdict.diagnosed_after) {
            book.totals.phase_samples += 1;
            book.totals.total_detect += detect.as_secs_f64();
            book.totals.total_diagnose += diagnose.as_secs_f64();
        }
        book.active -= 1;
        match status {
            IncidentStatus::Resolved => {
                book.totals.resolved += 1;
                book.totals.total_mttr += seconds;
                let scenario = scenario.unwrap_or_else(|| "ad_hoc".to_owned());
                let entry = book.totals.by_scenario.entry(scenario).or_default();
                entry.0 += 1;
                entry.1 += seconds;
                book.totals.total_savings += savings.unwrap_or_default();
            }
            _ => book.totals.failed += 1,
        }
        book.finished.push_back(id);
        if book.finished.len() > FINISHED_KEPT
            && let Some(oldest) = book.finished.pop_front()
        {
            book.by_id.remove(&oldest);
        }
        metrics::counter!("antibody_incidents_finished_total", "status" => status.as_str()).increment(1);
        info!(
            status = status.as_str(),
            resolution_time = seconds,
            cost_savings = savings,
            "incident finished"
        );
        self.shared.log.append(ServerMessage::IncidentStatus {
            incident_id: id,
            status,
            resolution_time: Some(seconds),
            cost_savings: savings,
            root_cause,
            report,
            time_to_detect: verdict.detected_after.map(tenths),
            time_to_diagnose: verdict.diagnosed_after.map(tenths),
        });
        self.shared.log.append(ServerMessage::PerformanceMetrics {
            metrics: book.metrics(),
        });
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
        // Whatever the incidents said last must be stored before we go.
        self.shared.log.close().await;
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ActionDetails, ActionKind, ActionStatus, AgentType, FaultKind};

    fn engine(seed: u64) -> Engine {
        Engine::new(EngineConfig {
            seed: Some(seed),
            ..EngineConfig::default()
        })
        .unwrap()
    }

    /// Receives live events until `stop` matches one (inclusive).
    async fn collect_until(
        live: &mut broadcast::Receiver<Arc<Published>>,
        stop: impl Fn(&ServerMessage) -> bool,
    ) -> Vec<Arc<Published>> {
        let mut events = Vec::new();
        loop {
            let event = live.recv().await.expect("the log outlives the test");
            let done = stop(&event.message);
            events.push(event);
            if done {
                return events;
            }
        }
    }

    /// The metrics published once no incident is active any more.
    fn is_settled(m: &ServerMessage) -> bool {
        matches!(m, ServerMessage::PerformanceMetrics { metrics } if metrics.incidents_active == 0)
    }

    #[tokio::test(start_paused = true)]
    async fn an_incident_passes_every_agent_in_order_then_resolves() {
        let engine = engine(7);
        let Feed { start, mut live } = engine.feed(None);
        assert!(matches!(start, FeedStart::Snapshot(ref s) if s.last_seq == 0));
        let incident = engine.trigger_scenario("database_cascade", None).unwrap();
        let events = collect_until(&mut live, is_settled).await;

        let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "gap-free");
        assert!(matches!(&events[0].message, ServerMessage::IncidentCreated { incident: i } if i.id == incident.id));
        assert!(
            matches!(&events[1].message, ServerMessage::PerformanceMetrics { metrics } if metrics.incidents_active == 1)
        );

        let actions: Vec<(AgentType, ActionStatus, ActionDetails)> = events
            .iter()
            .filter_map(|e| match &e.message {
                ServerMessage::AgentAction { action, .. } => {
                    Some((action.agent_type, action.status, action.details.clone()))
                }
                _ => None,
            })
            .collect();
        // Every action starts, then completes, before the next one starts.
        for pair in actions.chunks(2) {
            assert_eq!(
                (pair[0].0, pair[0].1),
                (pair[1].0, ActionStatus::InProgress),
                "{pair:?}"
            );
            assert_eq!(pair[1].1, ActionStatus::Completed, "{pair:?}");
        }
        let agents: Vec<AgentType> = actions.iter().step_by(2).map(|a| a.0).collect();
        assert_eq!(
            agents[..3],
            [AgentType::Detection, AgentType::Diagnosis, AgentType::Prediction]
        );
        assert_eq!(agents.last(), Some(&AgentType::Communication));
        assert!(agents[3..agents.len() - 1].iter().all(|a| *a == AgentType::Resolution));
        let finished = || actions.iter().filter(|a| a.1 == ActionStatus::Completed).map(|a| &a.2);
        let top = finished()
            .find_map(|d| match d {
                ActionDetails::Diagnosis(diagnosis) => diagnosis.hypotheses.first(),
                _ => None,
            })
            .expect("a diagnosis");
        assert_eq!(
            (top.root.fault, top.root.service.as_str()),
            (FaultKind::ConnectionPoolExhaustion, "postgres-primary"),
            "{actions:#?}"
        );
        assert!(finished().any(|d| matches!(d, ActionDetails::Vote(v) if v.tally.as_ref().is_some_and(|t| t.passed))));
        assert!(finished().any(|d| matches!(
            d,
            ActionDetails::Step(s) if s.step == 1 && s.action == ActionKind::ScaleConnectionPool
                && s.target == "postgres-primary" && s.error.is_none()
        )));
        assert!(finished().any(|d| matches!(d, ActionDetails::Verification(v) if v.verified == Some(true))));
        let consensus = events
            .iter()
            .find_map(|e| match &e.message {
                ServerMessage::Consensus { round, .. } => Some(round.clone()),
                _ => None,
            })
            .expect("a consensus round");
        assert!(consensus.passed && consensus.approvals >= consensus.quorum);
        assert!(events.iter().any(|e| matches!(
            &e.message,
            ServerMessage::ConfigChange { change, .. } if change.key == "pool_size" && change.service == "postgres-primary"
        )));

        for e in &events {
            if let ServerMessage::AgentAction { action, .. } = &e.message
                && action.status == ActionStatus::Completed
            {
                let c = action.confidence.expect("completed actions carry confidence");
                assert!((0.0..=1.0).contains(&c));
                assert!(action.duration_ms.unwrap() > 0);
            }
        }

        let ServerMessage::IncidentStatus {
            status,
            resolution_time,
            cost_savings,
            ..
        } = &events[events.len() - 2].message
        else {
            panic!("expected incident_status before the metrics");
        };
        assert_eq!(*status, IncidentStatus::Resolved);
        // Seed 000: about 18 s per incident at speed 1.0; ours also waits
        // for recovery to show in telemetry.
        let mttr = resolution_time.unwrap();
        assert!((14.0..=30.0).contains(&mttr), "{mttr}");
        let expected_savings = engine.impact().cost_savings(Severity::Critical, 3, mttr);
        assert_eq!(*cost_savings, Some(expected_savings));

        let metrics = engine.metrics();
        assert_eq!(metrics.incidents_resolved, 1);
        assert_eq!(metrics.success_rate, 1.0);
        assert_eq!(metrics.avg_mttr, mttr);
        assert_eq!(metrics.incidents_active, 0);
        assert_eq!(metrics.mttr_by_scenario.get("database_cascade"), Some(&mttr));
        // Seed 000's phase timings: detection 0.8–2.1 s, then diagnosis 3–3.5 s.
        assert!((0.8..=2.1).contains(&metrics.avg_time_to_detect), "{metrics:?}");
        let diagnosis = metrics.avg_time_to_diagnose - metrics.avg_time_to_detect;
        assert!((2.9..=3.6).contains(&diagnosis), "{metrics:?}");
        let closed = engine.incident(incident.id).unwrap();
        assert_eq!(closed.status, IncidentStatus::Resolved);
        assert_eq!(
            closed.root_cause.as_deref(),
            Some("connection-pool exhaustion on postgres-primary")
        );
        assert!(closed.report.unwrap().contains("## Root cause"));
        // The shared estate really recovered.
        assert_eq!(engine.with_twin(|estate| estate.slos_met(4)), Some(true));
    }

    #[tokio::test(start_paused = true)]
    async fn a_compromised_voter_is_outvoted_and_named_in_the_dissent() {
        let engine = engine(9);
        let mut live = engine.feed(None).live;
        engine.trigger_scenario("byzantine_cascade", None).unwrap();
        let events = collect_until(&mut live, is_settled).await;
        let round = events
            .iter()
            .find_map(|e| match &e.message {
                ServerMessage::Consensus { round, .. } => Some(round.clone()),
                _ => None,
            })
            .unwrap();
        assert!(round.passed);
        assert_eq!(round.dissent, [AgentType::Prediction]);
        let liar = round.votes.iter().find(|v| v.agent == AgentType::Prediction).unwrap();
        assert_eq!(liar.injected_fault.as_deref(), Some("adversarial"));
        assert_eq!(engine.metrics().incidents_resolved, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn an_incident_with_nothing_behind_it_is_closed_without_action() {
        let engine = engine(10);
        let mut live = engine.feed(None).live;
        let request = IncidentRequest {
            title: IncidentTitle::parse("Users report slowness").unwrap(),
            severity: Severity::Low,
            affected_services: vec![ServiceName::parse("api-gateway", "affected_services").unwrap()],
            scenario_id: None,
        };
        let incident = engine.open_incident(request).unwrap();
        let events = collect_until(&mut live, is_settled).await;
        assert!(events.iter().any(|e| matches!(
            &e.message,
            ServerMessage::AgentAction { action, .. }
                if matches!(&action.details, ActionDetails::Detection(d) if d.anomalies_detected == 0)
        )));
        assert!(
            !events
                .iter()
                .any(|e| matches!(&e.message, ServerMessage::Consensus { .. }))
        );
        let closed = engine.incident(incident.id).unwrap();
        assert_eq!(closed.status, IncidentStatus::Resolved);
        assert!(closed.report.unwrap().contains("No remediation was attempted"));
    }

    #[tokio::test(start_paused = true)]
    async fn two_incidents_on_one_estate_never_act_twice_on_the_same_root() {
        let engine = engine(12);
        let mut live = engine.feed(None).live;
        let cascade = engine.trigger_scenario("database_cascade", None).unwrap();
        let crash = engine.trigger_scenario("service_down", None).unwrap();
        let mut closed = 0;
        let mut events = Vec::new();
        while closed < 2 {
            let event = live.recv().await.unwrap();
            if matches!(event.message, ServerMessage::IncidentStatus { .. }) {
                closed += 1;
            }
            events.push(event);
        }
        for id in [cascade.id, crash.id] {
            let incident = engine.incident(id).unwrap();
            assert_eq!(
                incident.status,
                IncidentStatus::Resolved,
                "{}",
                incident.report.unwrap_or_default()
            );
        }
        assert_eq!(engine.with_twin(|e| e.slos_met(4)), Some(true));
        // The bad release was rolled back once, not once per incident.
        let rollbacks = engine
            .with_twin(|e| {
                e.config_history()
                    .iter()
                    .filter(|c| c.service == "order-service" && c.key == "deploy" && c.cause == "rollback_deploy")
                    .count()
            })
            .unwrap();
        assert_eq!(rollbacks, 1);
        assert!(events.iter().any(|e| matches!(
            &e.message,
            ServerMessage::AgentAction { action, .. } if matches!(&action.details, ActionDetails::ClaimWait(_))
                || matches!(&action.details, ActionDetails::Verification(v) if v.root_recovered.is_some())
        )));
    }

    #[tokio::test(start_paused = true)]
    async fn past_the_limit_new_incidents_are_refused_at_capacity_until_some_close() {
        let engine = Engine::new(EngineConfig {
            seed: Some(13),
            max_active_incidents: 2,
            ..EngineConfig::default()
        })
        .unwrap();
        let mut live = engine.feed(None).live;
        engine.trigger_scenario("service_down", None).unwrap();
        engine.trigger_scenario("api_slowdown", None).unwrap();
        let refused = engine.trigger_scenario("data_drift", None).unwrap_err();
        assert_eq!(refused, SubmitError::AtCapacity { limit: 2 });
        assert!(refused.to_string().starts_with("at capacity"));
        // Nothing of the refused scenario reached the estate.
        assert_eq!(
            engine.with_twin(|e| e.has_active_fault(crate::twin::FaultKind::DataDrift, "ml-model-service")),
            Some(false)
        );
        collect_until(&mut live, is_settled).await;
        engine.trigger_scenario("data_drift", None).unwrap();
    }

    fn chaotic(seed: u64, agent_failure_rate: f64) -> Engine {
        Engine::new(EngineConfig {
            seed: Some(seed),
            agent_failure_rate,
            ..EngineConfig::default()
        })
        .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn crashed_agent_jobs_are_retried_and_the_incident_still_resolves() {
        let engine = chaotic(14, 0.3);
        let mut live = engine.feed(None).live;
        let incident = engine.trigger_scenario("database_cascade", None).unwrap();
        let events = collect_until(&mut live, is_settled).await;
        let crashed = events
            .iter()
            .filter(|e| {
                matches!(
                    &e.message,
                    ServerMessage::AgentAction { action, .. }
                        if action.status == ActionStatus::Failed && matches!(action.details, ActionDetails::Crashed(_))
                )
            })
            .count();
        assert!(crashed > 0, "at a 30% failure rate some job fails");
        assert_eq!(engine.incident(incident.id).unwrap().status, IncidentStatus::Resolved);
        let failures: u64 = engine.swarm_stats().iter().map(|s| s.failures).sum();
        assert_eq!(failures, crashed as u64);
    }

    #[tokio::test(start_paused = true)]
    async fn an_agent_that_always_fails_opens_its_circuit_and_the_incident_escalates() {
        let engine = chaotic(15, 1.0);
        let mut live = engine.feed(None).live;
        let incident = engine.trigger_scenario("service_down", None).unwrap();
        let events = collect_until(&mut live, is_settled).await;
        assert_eq!(engine.incident(incident.id).unwrap().status, IncidentStatus::Failed);
        assert!(events.iter().any(|e| matches!(
            &e.message,
            ServerMessage::AgentAction { action, .. } if matches!(action.details, ActionDetails::CircuitOpen(_))
        )));
        let detection = &engine.swarm_stats()[0];
        assert_eq!(detection.breaker, crate::protocol::BreakerState::Open);
        // Nothing was done to the estate by an incident that could not see it.
        assert!(
            !events
                .iter()
                .any(|e| matches!(&e.message, ServerMessage::ConfigChange { .. }))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn speed_compresses_wall_time_but_not_reported_mttr() {
        let slow = engine(3);
        let fast = Engine::new(EngineConfig {
            seed: Some(3),
            speed: Speed::new(100.0).unwrap(),
            ..EngineConfig::default()
        })
        .unwrap();
        let mut results = Vec::new();
        for engine in [slow, fast] {
            let mut live = engine.feed(None).live;
            let started = tokio::time::Instant::now();
            engine.trigger_scenario("api_slowdown", None).unwrap();
            collect_until(&mut live, is_settled).await;
            results.push((started.elapsed(), engine.metrics().avg_mttr));
        }
        let ((slow_wall, slow_mttr), (fast_wall, fast_mttr)) = (results[0], results[1]);
        assert!(slow_wall > fast_wall * 90, "{slow_wall:?} vs {fast_wall:?}");
        assert_eq!(slow_mttr, fast_mttr);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_drains_within_grace_then_refuses_new_incidents() {
        let engine = engine(1);
        let incident = engine.trigger_scenario("service_down", None).unwrap();
        let report = engine.shutdown(Duration::from_secs(60)).await;
        assert_eq!(
            report,
            ShutdownReport {
                drained: 1,
                interrupted: 0
            }
        );
        assert_eq!(engine.incident(incident.id).unwrap().status, IncidentStatus::Resolved);
        assert_eq!(
            engine.trigger_scenario("service_down", None),
            Err(SubmitError::ShuttingDown)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_interrupts_what_outlives_the_grace_period_visibly() {
        let engine = engine(2);
        let mut live = engine.feed(None).live;
        let incident = engine.trigger_scenario("database_cascade", None).unwrap();
        let report = engine.shutdown(Duration::from_secs(5)).await;
        assert_eq!(
            report,
            ShutdownReport {
                drained: 0,
                interrupted: 1
            }
        );
        let events = collect_until(&mut live, is_settled).await;
        assert!(events.iter().any(|e| matches!(
            e.message,
            ServerMessage::IncidentStatus { status: IncidentStatus::Interrupted, incident_id, .. } if incident_id == incident.id
        )));
        let metrics = engine.metrics();
        assert_eq!((metrics.incidents_failed, metrics.incidents_active), (1, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_resumes_with_exactly_what_it_missed_or_gets_a_snapshot() {
        let engine = engine(4);
        let FeedStart::Snapshot(first) = engine.feed(None).start else {
            panic!("a fresh client starts with a snapshot");
        };
        let mut live = engine.feed(None).live;
        engine.trigger_scenario("api_slowdown", None).unwrap();
        let all = collect_until(&mut live, is_settled).await;

        let resumed = engine.feed(Some(Resume {
            epoch: first.epoch,
            since: 5,
        }));
        let FeedStart::Replay(missed) = resumed.start else {
            panic!("the log still has everything after seq 5");
        };
        assert_eq!(
            missed.iter().map(|e| e.seq).collect::<Vec<_>>(),
            (6..=all.len() as u64).collect::<Vec<_>>()
        );

        let other_run = engine.feed(Some(Resume {
            epoch: Uuid::nil(),
            since: 5,
        }));
        assert!(matches!(other_run.start, FeedStart::Snapshot(ref s) if s.last_seq == all.len() as u64));
        let ahead = engine.feed(Some(Resume {
            epoch: first.epoch,
            since: 10_000,
        }));
        assert!(matches!(ahead.start, FeedStart::Snapshot(_)));
    }

    #[tokio::test]
    async fn an_unknown_scenario_is_refused_with_a_suggestion() {
        let err = engine(5).trigger_scenario("api_slowdwn", None).unwrap_err();
        assert_eq!(
            err,
            SubmitError::UnknownScenario {
                id: "api_slowdwn".into(),
                suggestion: Some("api_slowdown".into())
            }
        );
        assert!(err.to_string().contains("did you mean `api_slowdown`"));
    }
}
