//! The engine handle: the one door into the swarm for the HTTP edge, the
//! server functions and the tests.
//!
//! [`Engine`] is cheap to clone (an `Arc`). It opens incidents, runs each in
//! its own task, keeps the incident book and the metrics, and publishes
//! every change on the event log. It knows nothing of HTTP or HTML.

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
    catalog::{Catalog, CatalogError, GENERIC_PLAYBOOK},
    clock::{SimClock, Speed},
    event_log::EventLog,
    impact::ImpactModel,
    orchestrator,
    protocol::{
        Envelope, Incident, IncidentStatus, PerformanceMetrics, ScenarioSummary, ServerMessage, Severity, Snapshot,
    },
    request::{IncidentRequest, IncidentTitle, ServiceName},
};

/// How many incidents a snapshot lists.
pub const SNAPSHOT_INCIDENTS: usize = 50;
/// How many recent events a snapshot carries for the activity feed.
pub const SNAPSHOT_EVENTS: usize = 200;

/// Events that tell the story of incidents (the activity feed's lines);
/// metrics are state, and the snapshot carries them already.
fn is_feed_event(message: &ServerMessage) -> bool {
    matches!(
        message,
        ServerMessage::IncidentCreated { .. }
            | ServerMessage::AgentAction { .. }
            | ServerMessage::IncidentStatus { .. }
    )
}

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
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            speed: Speed::REAL_TIME,
            seed: None,
            retain_events: 10_000,
            fanout_capacity: 4_096,
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
}

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
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
    Replay(Vec<Arc<Envelope>>),
    /// A fresh view that replaces whatever the client had.
    Snapshot(Snapshot),
}

/// A client's stream: a start, then every later event, with no gap and no
/// duplicate between the two.
pub struct Feed {
    pub start: FeedStart,
    pub live: broadcast::Receiver<Arc<Envelope>>,
}

/// What became of in-flight incidents at shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ShutdownReport {
    /// Incidents that finished within the grace period.
    pub drained: usize,
    /// Incidents marked `interrupted` when the grace period ran out.
    pub interrupted: usize,
}

/// Every incident, and the running totals behind the metrics.
#[derive(Default)]
struct IncidentBook {
    /// Every incident, by id.
    by_id: HashMap<Uuid, Incident>,
    /// Ids, oldest first.
    order: Vec<Uuid>,
    /// Incidents not yet terminal.
    active: u64,
    /// Incidents resolved.
    resolved: u64,
    /// Incidents failed or interrupted.
    failed: u64,
    /// Sum of savings of resolved incidents.
    total_savings: f64,
    /// Sum of resolution times of resolved incidents.
    total_mttr: f64,
}

impl IncidentBook {
    fn metrics(&self) -> PerformanceMetrics {
        let finished = self.resolved + self.failed;
        PerformanceMetrics {
            incidents_resolved: self.resolved,
            total_cost_savings: self.total_savings,
            avg_mttr: if self.resolved == 0 {
                0.0
            } else {
                self.total_mttr / self.resolved as f64
            },
            success_rate: if finished == 0 {
                0.0
            } else {
                self.resolved as f64 / finished as f64
            },
            incidents_active: self.active,
            incidents_failed: self.failed,
        }
    }

    fn newest(&self, limit: usize) -> Vec<Incident> {
        self.order
            .iter()
            .rev()
            .take(limit)
            .map(|id| self.by_id[id].clone())
            .collect()
    }
}

struct Shared {
    /// Simulated time.
    clock: SimClock,
    /// Scenarios and playbooks.
    catalog: Catalog,
    /// The cost model behind savings.
    impact: ImpactModel,
    /// Every event, in order, with fan-out.
    log: EventLog,
    /// Identifies this run's log, so clients of another run resync.
    epoch: Uuid,
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
}

/// A cheap-to-clone handle to the swarm.
#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
}

impl Engine {
    /// Builds an engine from the embedded catalog and impact model.
    pub fn new(config: EngineConfig) -> Result<Self, StartError> {
        let seeds = match config.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        Ok(Self {
            shared: Arc::new(Shared {
                clock: SimClock::new(config.speed),
                catalog: Catalog::embedded()?,
                impact: ImpactModel::embedded().map_err(StartError::Impact)?,
                log: EventLog::new(config.retain_events, config.fanout_capacity),
                epoch: Uuid::new_v4(),
                book: Mutex::new(IncidentBook::default()),
                tasks: TaskTracker::new(),
                interrupt: CancellationToken::new(),
                draining: AtomicBool::new(false),
                seeds: Mutex::new(seeds),
            }),
        })
    }

    pub fn clock(&self) -> SimClock {
        self.shared.clock
    }

    pub fn impact(&self) -> &ImpactModel {
        &self.shared.impact
    }

    /// The catalog's scenarios, primary ones first.
    pub fn scenarios(&self) -> Vec<ScenarioSummary> {
        self.shared
            .catalog
            .scenarios()
            .into_iter()
            .map(|s| s.summary())
            .collect()
    }

    /// Opens an incident and starts the swarm on it. Must be called within
    /// a tokio runtime.
    pub fn open_incident(&self, request: IncidentRequest) -> Result<Incident, SubmitError> {
        if self.shared.draining.load(Ordering::SeqCst) {
            return Err(SubmitError::ShuttingDown);
        }
        let catalog = &self.shared.catalog;
        let playbook_id = match &request.scenario_id {
            None => GENERIC_PLAYBOOK,
            Some(id) => match catalog.scenario(id.as_str()) {
                Some(scenario) => scenario.playbook.as_str(),
                None => {
                    return Err(SubmitError::UnknownScenario {
                        id: id.as_str().to_owned(),
                        suggestion: catalog.closest_scenario(id.as_str()).map(str::to_owned),
                    });
                }
            },
        };
        let playbook = catalog
            .playbook(playbook_id)
            .expect("the catalog checks every playbook reference at start")
            .clone();

        let incident = Incident {
            id: Uuid::new_v4(),
            title: request.title.as_str().to_owned(),
            severity: request.severity,
            affected_services: request
                .affected_services
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect(),
            scenario_id: request.scenario_id.map(|id| id.as_str().to_owned()),
            status: IncidentStatus::Active,
            created_at: chrono::Utc::now(),
            finished_at: None,
            resolution_time: None,
            cost_savings: None,
        };
        {
            let mut book = self.shared.book.lock().expect("incident book lock poisoned");
            book.by_id.insert(incident.id, incident.clone());
            book.order.push(incident.id);
            book.active += 1;
            self.shared.log.append(ServerMessage::IncidentCreated {
                incident: incident.clone(),
            });
            // The active count changed.
            self.shared.log.append(ServerMessage::PerformanceMetrics {
                metrics: book.metrics(),
            });
        }
        let rng = StdRng::seed_from_u64(self.shared.seeds.lock().expect("seed lock poisoned").random());
        let span = info_span!(
            "incident",
            id = %incident.id,
            scenario = incident.scenario_id.as_deref().unwrap_or("-"),
            severity = incident.severity.as_str(),
        );
        span.in_scope(|| info!(title = %incident.title, playbook = %playbook.id, "incident opened"));
        self.shared
            .tasks
            .spawn(orchestrator::run(self.clone(), incident.clone(), playbook, rng).instrument(span));
        Ok(incident)
    }

    /// Opens an incident from a catalog scenario, optionally at another
    /// severity.
    pub fn trigger_scenario(&self, id: &str, severity: Option<Severity>) -> Result<Incident, SubmitError> {
        let catalog = &self.shared.catalog;
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

    fn snapshot_and_subscribe(&self) -> (Snapshot, broadcast::Receiver<Arc<Envelope>>) {
        let book = self.shared.book.lock().expect("incident book lock poisoned");
        let (last_seq, recent_events, live) = self
            .shared
            .log
            .view_and_subscribe(SNAPSHOT_EVENTS, |e| is_feed_event(&e.message));
        let snapshot = Snapshot {
            epoch: self.shared.epoch,
            last_seq,
            metrics: book.metrics(),
            incidents: book.newest(SNAPSHOT_INCIDENTS),
            recent_events,
        };
        (snapshot, live)
    }

    /// A stream for one client: the events it missed since `resume` when
    /// the log still has them all, or else a fresh snapshot; then live.
    pub fn feed(&self, resume: Option<Resume>) -> Feed {
        if let Some(resume) = resume.filter(|r| r.epoch == self.shared.epoch) {
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
            start: FeedStart::Snapshot(snapshot),
            live,
        }
    }

    /// Appends a message to the event log and fans it out.
    pub(crate) fn publish(&self, message: ServerMessage) -> Arc<Envelope> {
        self.shared.log.append(message)
    }

    pub(crate) fn interrupt_token(&self) -> CancellationToken {
        self.shared.interrupt.clone()
    }

    /// Closes an incident: records its outcome, then publishes its final
    /// status and the new metrics, atomically with respect to snapshots.
    pub(crate) fn finish(&self, id: Uuid, status: IncidentStatus, elapsed: Duration) {
        let mut book = self.shared.book.lock().expect("incident book lock poisoned");
        let seconds = (elapsed.as_secs_f64() * 10.0).round() / 10.0;
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
        book.active -= 1;
        match status {
            IncidentStatus::Resolved => {
                book.resolved += 1;
                book.total_mttr += seconds;
                book.total_savings += savings.unwrap_or_default();
            }
            _ => book.failed += 1,
        }
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
        });
        self.shared.log.append(ServerMessage::PerformanceMetrics {
            metrics: book.metrics(),
        });
    }

    /// Stops taking incidents, lets in-flight ones finish for up to `grace`,
    /// then interrupts the rest (each is published as `interrupted`).
    pub async fn shutdown(&self, grace: Duration) -> ShutdownReport {
        self.shared.draining.store(true, Ordering::SeqCst);
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
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ActionStatus, AgentType};

    fn engine(seed: u64) -> Engine {
        Engine::new(EngineConfig {
            seed: Some(seed),
            ..EngineConfig::default()
        })
        .unwrap()
    }

    /// Receives live events until `stop` matches one (inclusive).
    async fn collect_until(
        live: &mut broadcast::Receiver<Arc<Envelope>>,
        stop: impl Fn(&ServerMessage) -> bool,
    ) -> Vec<Arc<Envelope>> {
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

        let actions: Vec<(AgentType, ActionStatus)> = events
            .iter()
            .filter_map(|e| match &e.message {
                ServerMessage::AgentAction { action, .. } => Some((action.agent_type, action.status)),
                _ => None,
            })
            .collect();
        let mut expected = Vec::new();
        for agent in [AgentType::Detection, AgentType::Diagnosis, AgentType::Prediction]
            .into_iter()
            .chain([AgentType::Resolution; 5])
            .chain([AgentType::Communication])
        {
            expected.push((agent, ActionStatus::InProgress));
            expected.push((agent, ActionStatus::Completed));
        }
        assert_eq!(actions, expected);

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
        // Seed 000: 15-20 s per incident at speed 1.0.
        let mttr = resolution_time.unwrap();
        assert!((15.0..=20.0).contains(&mttr), "{mttr}");
        let expected_savings = engine.impact().cost_savings(Severity::Critical, 3, mttr);
        assert_eq!(*cost_savings, Some(expected_savings));

        let metrics = engine.metrics();
        assert_eq!(metrics.incidents_resolved, 1);
        assert_eq!(metrics.success_rate, 1.0);
        assert_eq!(metrics.avg_mttr, mttr);
        assert_eq!(metrics.incidents_active, 0);
        assert_eq!(engine.incident(incident.id).unwrap().status, IncidentStatus::Resolved);
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
