//! Runs timelines: fires each entry at its delay (scaled by the run's
//! speed), follows the incidents it opened to their end, and scores the
//! run against the answer keys like a game day.
//!
//! Each run is a task with its own schedule clock, so several runs never
//! interfere. Entries with equal delays fire together. Firing never waits
//! on a generator: each generated entry is made on its own task and joins
//! the schedule when it is ready. Every change of a run is published as a
//! `timeline_progress` event carrying the whole run, so the event log (and
//! the store behind it) holds every run, and a reloaded page finds it in
//! the snapshot.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::Utc;
use tokio::sync::{broadcast::error::RecvError, mpsc, watch};
use tokio::time::Instant;
use tracing::{info, warn};
use uuid::Uuid;

use super::{
    Source, Timeline, TimelineErrors,
    generator::{GenerationRequest, ScenarioGenerator},
};
use crate::{
    Engine,
    catalog::AnswerKey,
    protocol::{
        GameDayScore, Incident, IncidentStatus, RunEntry, RunState, ServerMessage, TimelineRun, TimelineSummary,
    },
};

/// How often a running run reports its clock when nothing else happens,
/// so progress bars move between incidents.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// Finished runs kept in memory (the store keeps them all).
const FINISHED_KEPT: usize = 100;
/// Most runs going at once. A game day runs one or two; every progress
/// event carries the whole run, so many large runs at once would flood the
/// event log (a delta per entry is the better fix; see docs/performance.md).
pub const MAX_ACTIVE_RUNS: usize = 4;

/// Longest a generator may take before the entry is refused.
const GENERATION_TIMEOUT: Duration = Duration::from_secs(30);
/// Slowest and fastest schedule a run accepts.
const SPEED_RANGE: std::ops::RangeInclusive<f64> = 0.01..=10_000.0;

/// What an operator can ask of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    Run,
    Pause,
    Cancel,
}

/// Why a run could not be started or steered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RunError {
    #[error("no timeline `{id}`{}", suggestion.as_ref().map(|s| format!("; did you mean `{s}`?")).unwrap_or_default())]
    UnknownTimeline { id: String, suggestion: Option<String> },
    #[error("no timeline run {0}")]
    UnknownRun(Uuid),
    #[error("the run is already {0}")]
    Finished(&'static str),
    #[error("speed {0} is out of range: use 0.01 to 10000")]
    Speed(f64),
    #[error("{MAX_ACTIVE_RUNS} runs are already going; cancel one or wait for it to end")]
    Busy,
}

impl RunError {
    /// The HTTP status that answers it, for every edge (REST and the
    /// server functions).
    pub fn http_status(&self) -> u16 {
        match self {
            Self::UnknownTimeline { .. } | Self::UnknownRun(_) => 404,
            Self::Finished(_) | Self::Busy => 409,
            Self::Speed(_) => 422,
        }
    }

    /// The request field at fault, if one is.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::UnknownTimeline { .. } => Some("timeline_id"),
            Self::UnknownRun(_) => Some("id"),
            Self::Speed(_) => Some("speed"),
            Self::Finished(_) | Self::Busy => None,
        }
    }
}

/// A run's steering wheel and its latest state.
struct RunHandle {
    command: watch::Sender<Command>,
    state: Arc<Mutex<TimelineRun>>,
}

/// Starts, steers and lists timeline runs. A cheap-to-clone handle.
#[derive(Clone)]
pub struct Timelines {
    inner: Arc<Inner>,
}

struct Inner {
    /// Where incidents open.
    engine: Engine,
    /// Turns prompts into scenarios.
    generator: Arc<dyn ScenarioGenerator>,
    /// The built-in timelines, by id order.
    built_in: Vec<Timeline>,
    /// Runs this process started, by id.
    runs: Mutex<HashMap<Uuid, RunHandle>>,
}

impl Timelines {
    /// Runs over `engine`, with `generator` for generated entries.
    pub fn new(engine: Engine, generator: Arc<dyn ScenarioGenerator>) -> Result<Self, TimelineErrors> {
        // A timeline's incidents inject into the twin: a watched estate
        // offers none (its catalog has no scenarios to check them against).
        let built_in = match engine.watched() {
            Some(_) => Vec::new(),
            None => Timeline::built_in(&engine.swarm().catalog, engine.topology())?,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                generator,
                built_in,
                runs: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The built-in timelines.
    pub fn list(&self) -> Vec<TimelineSummary> {
        self.inner.built_in.iter().map(Timeline::summary).collect()
    }

    /// A built-in timeline by id.
    pub fn find(&self, id: &str) -> Result<&Timeline, RunError> {
        self.inner
            .built_in
            .iter()
            .find(|t| t.id == id)
            .ok_or_else(|| RunError::UnknownTimeline {
                id: id.to_owned(),
                suggestion: crate::catalog::closest(id, self.inner.built_in.iter().map(|t| t.id.as_str()))
                    .map(str::to_owned),
            })
    }

    /// Reads and checks a pasted or uploaded timeline; `file` names it in
    /// errors.
    pub fn parse(&self, file: &str, json: &str) -> Result<Timeline, TimelineErrors> {
        let engine = &self.inner.engine;
        Timeline::parse("custom", file, json, &engine.swarm().catalog, engine.topology())
    }

    /// The JSON Schema of a timeline file, with this estate's scenarios and
    /// services (see [`schema`](crate::timeline::schema)).
    pub fn file_schema(&self) -> serde_json::Value {
        let engine = &self.inner.engine;
        crate::timeline::schema::timeline_file(&engine.swarm().catalog, engine.topology())
    }

    /// Starts `timeline` at `speed` (the engine's speed when `None`);
    /// `seed` varies its generated scenarios. Returns the run as started.
    pub fn start(&self, timeline: Timeline, speed: Option<f64>, seed: u64) -> Result<TimelineRun, RunError> {
        let speed = speed.unwrap_or_else(|| self.inner.engine.clock().speed().factor());
        if !SPEED_RANGE.contains(&speed) {
            return Err(RunError::Speed(speed));
        }
        let run = TimelineRun {
            run_id: Uuid::new_v4(),
            timeline_id: timeline.id.clone(),
            name: timeline.name.clone(),
            state: RunState::Running,
            speed,
            started_at: Utc::now(),
            elapsed_seconds: 0.0,
            duration_seconds: timeline.duration.as_secs_f64(),
            entries: timeline
                .entries
                .iter()
                .map(|e| RunEntry {
                    scheduled: e.scheduled(),
                    incident_id: None,
                    title: None,
                    status: None,
                    refused: None,
                    note: None,
                    mttr_seconds: None,
                    root_cause_correct: None,
                    unnecessary_actions: None,
                    rollbacks: None,
                    approval_wait_seconds: None,
                })
                .collect(),
            score: score(&[]),
        };
        let state = Arc::new(Mutex::new(run.clone()));
        let (command, commands) = watch::channel(Command::Run);
        {
            let mut runs = self.inner.runs.lock().expect("runs lock poisoned");
            let finished = |h: &RunHandle| h.state.lock().expect("run lock poisoned").state.is_final();
            if runs.values().filter(|h| !finished(h)).count() >= MAX_ACTIVE_RUNS {
                return Err(RunError::Busy);
            }
            let mut done: Vec<(chrono::DateTime<Utc>, Uuid)> = runs
                .iter()
                .filter(|(_, h)| finished(h))
                .map(|(id, h)| (h.state.lock().expect("run lock poisoned").started_at, *id))
                .collect();
            if done.len() >= FINISHED_KEPT {
                // The oldest finished runs go; the store still has them.
                done.sort();
                for (_, id) in done.iter().take(done.len() + 1 - FINISHED_KEPT) {
                    runs.remove(id);
                }
            }
            runs.insert(
                run.run_id,
                RunHandle {
                    command,
                    state: Arc::clone(&state),
                },
            );
        }
        info!(run = %run.run_id, timeline = %timeline.id, speed, "timeline run started");
        self.inner
            .engine
            .log()
            .append(ServerMessage::TimelineProgress { run: run.clone() });
        let driver = Driver {
            engine: self.inner.engine.clone(),
            generator: Arc::clone(&self.inner.generator),
            timeline,
            seed,
            state,
            commands,
            answers: HashMap::new(),
        };
        tokio::spawn(driver.drive());
        Ok(run)
    }

    /// Stops the schedule's clock; open incidents carry on.
    pub fn pause(&self, run_id: Uuid) -> Result<TimelineRun, RunError> {
        self.steer(run_id, Command::Pause)
    }

    /// Restarts the schedule's clock where it stopped.
    pub fn resume(&self, run_id: Uuid) -> Result<TimelineRun, RunError> {
        self.steer(run_id, Command::Run)
    }

    /// Stops the run for good; what it opened runs to its end.
    pub fn cancel(&self, run_id: Uuid) -> Result<TimelineRun, RunError> {
        self.steer(run_id, Command::Cancel)
    }

    fn steer(&self, run_id: Uuid, command: Command) -> Result<TimelineRun, RunError> {
        let runs = self.inner.runs.lock().expect("runs lock poisoned");
        let handle = runs.get(&run_id).ok_or(RunError::UnknownRun(run_id))?;
        let state = handle.state.lock().expect("run lock poisoned").state;
        if state.is_final() {
            return Err(RunError::Finished(state.as_str()));
        }
        handle.command.send_replace(command);
        Ok(handle.state.lock().expect("run lock poisoned").clone())
    }

    /// A run this process started, as it is now.
    pub fn run(&self, run_id: Uuid) -> Option<TimelineRun> {
        let runs = self.inner.runs.lock().expect("runs lock poisoned");
        runs.get(&run_id)
            .map(|h| h.state.lock().expect("run lock poisoned").clone())
    }

    /// Waits until the run is final, and returns it.
    pub async fn finished(&self, run_id: Uuid) -> Option<TimelineRun> {
        let mut live = self.inner.engine.feed(None).live;
        loop {
            let run = self.run(run_id)?;
            if run.state.is_final() {
                return Some(run);
            }
            match live.recv().await {
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return self.run(run_id),
            }
        }
    }
}

/// An entry's incident, once the generator (if any) and the engine are done.
struct Fired {
    /// The entry's index.
    index: usize,
    /// The incident and the answer key to score it by, or why not.
    outcome: Result<(Incident, AnswerKey), String>,
    /// How the scenario was made.
    note: Option<String>,
}

/// A run's schedule clock: it runs at the run's speed while the run runs,
/// and stands still while it is paused.
struct ScheduleClock {
    speed: f64,
    /// Schedule time elapsed before the current stretch of running.
    banked: Duration,
    /// When the current stretch began; `None` while paused.
    running_since: Option<Instant>,
}

impl ScheduleClock {
    fn started(speed: f64) -> Self {
        Self {
            speed,
            banked: Duration::ZERO,
            running_since: Some(Instant::now()),
        }
    }

    fn is_running(&self) -> bool {
        self.running_since.is_some()
    }

    /// Schedule time since the run started, pauses left out.
    fn elapsed(&self) -> Duration {
        self.banked
            + self
                .running_since
                .map_or(Duration::ZERO, |s| s.elapsed().mul_f64(self.speed))
    }

    /// When, on tokio's clock, the schedule reaches `delay`.
    fn wake_at(&self, delay: Duration) -> Instant {
        Instant::now() + delay.saturating_sub(self.elapsed()).div_f64(self.speed)
    }

    /// Stops the clock; false when it was already stopped.
    fn pause(&mut self) -> bool {
        let Some(since) = self.running_since.take() else {
            return false;
        };
        self.banked += since.elapsed().mul_f64(self.speed);
        true
    }

    /// Starts the clock again; false when it was already running.
    fn resume(&mut self) -> bool {
        if self.running_since.is_some() {
            return false;
        }
        self.running_since = Some(Instant::now());
        true
    }
}

/// One run's task.
struct Driver {
    engine: Engine,
    generator: Arc<dyn ScenarioGenerator>,
    timeline: Timeline,
    seed: u64,
    state: Arc<Mutex<TimelineRun>>,
    commands: watch::Receiver<Command>,
    /// Answer keys of the incidents opened, by incident.
    answers: HashMap<Uuid, (usize, AnswerKey)>,
}

impl Driver {
    async fn drive(mut self) {
        // Subscribed before anything fires, so no incident's end is missed.
        let mut live = self.engine.feed(None).live;
        let speed = self.state.lock().expect("run lock poisoned").speed;
        let mut clock = ScheduleClock::started(speed);
        let (fired_tx, mut fired_rx) = mpsc::unbounded_channel::<Fired>();
        let mut next = 0;
        let mut pending = 0usize;
        let entries = self.timeline.entries.clone();
        let mut report = tokio::time::interval_at(Instant::now() + PROGRESS_EVERY, PROGRESS_EVERY);
        loop {
            let elapsed = clock.elapsed();
            // Fire everything due (equal delays fire together).
            while clock.is_running() && next < entries.len() && entries[next].delay <= elapsed {
                self.fire(next, fired_tx.clone());
                pending += 1;
                next += 1;
            }
            if self.drained(elapsed, next == entries.len() && pending == 0) {
                self.finish(RunState::Completed);
                return;
            }
            let wake = (clock.is_running() && next < entries.len()).then(|| clock.wake_at(entries[next].delay));
            tokio::select! {
                () = sleep_until_or_never(wake) => {}
                _ = report.tick() => {
                    let mut run = self.state.lock().expect("run lock poisoned");
                    if !self.engine.holds_lease(run.run_id) {
                        // Another instance took the run over (this one
                        // paused past its lease) and published its end.
                        warn!(run = %run.run_id, "lost this timeline run's lease; stopping it here");
                        return;
                    }
                    if clock.is_running() && run.state == RunState::Running {
                        run.elapsed_seconds = clock.elapsed().as_secs_f64();
                        self.publish(&run);
                    }
                }
                Some(fired) = fired_rx.recv() => {
                    pending -= 1;
                    self.record_fired(fired);
                }
                event = live.recv() => match event {
                    Ok(event) => {
                        if let ServerMessage::IncidentStatus { incident_id, status, .. } = &event.message
                            && status.is_terminal()
                        {
                            self.record_closed(*incident_id, *status);
                        }
                    }
                    Err(RecvError::Lagged(_)) => self.catch_up(),
                    Err(RecvError::Closed) => {
                        self.finish(RunState::Cancelled);
                        return;
                    }
                },
                changed = self.commands.changed() => {
                    let command = if changed.is_ok() { *self.commands.borrow_and_update() } else { Command::Cancel };
                    if self.steer(command, &mut clock, next == entries.len()) {
                        return;
                    }
                }
            }
        }
    }

    /// Records the schedule's time; once everything has fired and closed,
    /// moves the run to draining and says whether it is over.
    fn drained(&self, elapsed: Duration, all_fired: bool) -> bool {
        let mut run = self.state.lock().expect("run lock poisoned");
        run.elapsed_seconds = elapsed.as_secs_f64();
        let open = run.entries.iter().any(|e| e.status == Some(IncidentStatus::Active));
        if run.state == RunState::Running && all_fired {
            run.state = RunState::Draining;
            self.publish(&run);
        }
        run.state == RunState::Draining && !open
    }

    /// Obeys a person's command; true when the run is over.
    fn steer(&mut self, command: Command, clock: &mut ScheduleClock, all_scheduled: bool) -> bool {
        match command {
            Command::Cancel => {
                self.finish(RunState::Cancelled);
                return true;
            }
            Command::Pause => {
                if clock.pause() {
                    // The schedule's time stops here, and is published with
                    // the state: a paused run's figure never moves after.
                    self.state.lock().expect("run lock poisoned").elapsed_seconds = clock.elapsed().as_secs_f64();
                    self.set_state(RunState::Paused);
                }
            }
            Command::Run => {
                if clock.resume() {
                    self.set_state(if all_scheduled {
                        RunState::Draining
                    } else {
                        RunState::Running
                    });
                }
            }
        }
        false
    }

    /// Opens entry `index`'s incident on a task of its own, so a slow
    /// generator never holds up the schedule.
    fn fire(&self, index: usize, done: mpsc::UnboundedSender<Fired>) {
        let entry = self.timeline.entries[index].clone();
        let engine = self.engine.clone();
        let generator = Arc::clone(&self.generator);
        let seed = self.seed.wrapping_add(index as u64);
        tokio::spawn(async move {
            let fired = match &entry.source {
                Source::Catalog { scenario_id } => Fired {
                    index,
                    outcome: engine
                        .trigger_scenario(scenario_id, entry.expected_severity)
                        .map_err(|e| e.to_string())
                        .map(|incident| {
                            let answer = engine
                                .swarm()
                                .catalog
                                .scenario(scenario_id)
                                .expect("checked when the timeline was read")
                                .answer
                                .clone();
                            (incident, answer)
                        }),
                    note: None,
                },
                Source::Generated { prompt, service } => {
                    let request = GenerationRequest {
                        prompt: prompt.clone(),
                        service: service.clone(),
                        severity: entry.expected_severity,
                        seed,
                    };
                    match tokio::time::timeout(GENERATION_TIMEOUT, generator.generate(&request)).await {
                        Ok(Ok(generated)) => Fired {
                            index,
                            outcome: engine
                                .open_scenario(&generated.scenario, entry.expected_severity)
                                .map_err(|e| e.to_string())
                                .map(|incident| (incident, generated.scenario.answer.clone())),
                            note: Some(generated.note),
                        },
                        Ok(Err(e)) => Fired {
                            index,
                            outcome: Err(e.to_string()),
                            note: None,
                        },
                        Err(_) => Fired {
                            index,
                            outcome: Err(format!(
                                "the generator took more than {} s",
                                GENERATION_TIMEOUT.as_secs()
                            )),
                            note: None,
                        },
                    }
                }
            };
            let _ = done.send(fired);
        });
    }

    fn record_fired(&mut self, fired: Fired) {
        let mut run = self.state.lock().expect("run lock poisoned");
        let entry = &mut run.entries[fired.index];
        entry.note = fired.note;
        match fired.outcome {
            Ok((incident, answer)) => {
                entry.incident_id = Some(incident.id);
                entry.title = Some(incident.title.clone());
                entry.status = Some(IncidentStatus::Active);
                self.answers.insert(incident.id, (fired.index, answer));
                // It may have closed already (a very fast engine).
                if let Some(now) = self.engine.incident(incident.id)
                    && now.status.is_terminal()
                {
                    drop(run);
                    self.record_closed(incident.id, now.status);
                    return;
                }
            }
            Err(reason) => {
                warn!(%reason, entry = fired.index, "a timeline entry did not open");
                entry.refused = Some(reason);
            }
        }
        run.score = score(&run.entries);
        self.publish(&run);
    }

    /// Scores a closed incident against its answer key.
    fn record_closed(&mut self, incident_id: Uuid, status: IncidentStatus) {
        let Some((index, answer)) = self.answers.get(&incident_id) else {
            return;
        };
        let mut run = self.state.lock().expect("run lock poisoned");
        let entry = &mut run.entries[*index];
        if entry.status.is_some_and(|s| s.is_terminal()) {
            return;
        }
        entry.status = Some(status);
        if let Some(audit) = self.engine.audit(incident_id) {
            entry.mttr_seconds = Some((audit.elapsed.as_secs_f64() * 10.0).round() / 10.0);
            entry.root_cause_correct = Some(answer.names_the_strongest(audit.first_hypothesis.as_ref()));
            entry.unnecessary_actions = Some(
                audit
                    .executed
                    .iter()
                    .filter(|a| !answer.remediations.contains(a))
                    .count() as u32,
            );
            entry.rollbacks = Some(audit.rollbacks);
            entry.approval_wait_seconds = Some((audit.approval_wait.as_secs_f64() * 10.0).round() / 10.0);
        }
        run.score = score(&run.entries);
        self.publish(&run);
    }

    /// After missing events: asks the engine how each open incident is.
    fn catch_up(&mut self) {
        let open: Vec<Uuid> = {
            let run = self.state.lock().expect("run lock poisoned");
            run.entries
                .iter()
                .filter(|e| e.status == Some(IncidentStatus::Active))
                .filter_map(|e| e.incident_id)
                .collect()
        };
        for id in open {
            if let Some(incident) = self.engine.incident(id)
                && incident.status.is_terminal()
            {
                self.record_closed(id, incident.status);
            }
        }
    }

    fn set_state(&self, state: RunState) {
        let mut run = self.state.lock().expect("run lock poisoned");
        run.state = state;
        self.publish(&run);
    }

    fn finish(&self, state: RunState) {
        let mut run = self.state.lock().expect("run lock poisoned");
        run.state = state;
        run.score = score(&run.entries);
        info!(run = %run.run_id, state = state.as_str(), points = run.score.points, "timeline run finished");
        self.publish(&run);
    }

    fn publish(&self, run: &TimelineRun) {
        self.engine
            .log()
            .append(ServerMessage::TimelineProgress { run: run.clone() });
    }
}

async fn sleep_until_or_never(wake: Option<Instant>) {
    match wake {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The game-day score of `entries` so far.
pub fn score(entries: &[RunEntry]) -> GameDayScore {
    let opened = entries.iter().filter(|e| e.incident_id.is_some()).count();
    let judged: Vec<bool> = entries.iter().filter_map(|e| e.root_cause_correct).collect();
    let resolved: Vec<&RunEntry> = entries
        .iter()
        .filter(|e| e.status == Some(IncidentStatus::Resolved))
        .collect();
    let refused = entries.iter().filter(|e| e.refused.is_some()).count() as u32;
    let unnecessary: u32 = entries.iter().filter_map(|e| e.unnecessary_actions).sum();
    let rollbacks: u32 = entries.iter().filter_map(|e| e.rollbacks).sum();
    let share = |n: usize, of: usize| if of == 0 { 0.0 } else { n as f64 / of as f64 };
    let root_cause_accuracy = share(judged.iter().filter(|c| **c).count(), judged.len());
    let healing_success = share(resolved.len(), opened);
    let mttrs: Vec<f64> = resolved.iter().filter_map(|e| e.mttr_seconds).collect();
    let points = (50.0 * root_cause_accuracy + 50.0 * healing_success
        - 5.0 * f64::from(unnecessary)
        - 5.0 * f64::from(rollbacks)
        - 10.0 * f64::from(refused))
    .clamp(0.0, 100.0);
    GameDayScore {
        root_cause_accuracy,
        healing_success,
        mean_mttr_seconds: (!mttrs.is_empty()).then(|| mttrs.iter().sum::<f64>() / mttrs.len() as f64),
        unnecessary_actions: unnecessary,
        refused,
        rollbacks,
        approval_wait_seconds: entries.iter().filter_map(|e| e.approval_wait_seconds).sum(),
        points: points.round(),
    }
}

#[cfg(test)]
mod tests;
