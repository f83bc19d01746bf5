//! The dashboard's state, and the pure reducer that folds server events into
//! it. No Leptos here: the components derive their views from this, and the
//! unit tests drive it directly.
//!
//! Rules the reducer keeps:
//! - a `snapshot` replaces everything;
//! - an event at or below `last_seq` is a duplicate and changes nothing;
//! - an event past `last_seq + 1` reveals a gap: nothing changes and the
//!   caller must resync (reconnect with `since = last_seq`);
//! - the activity feed holds at most [`FEED_CAP`] entries.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Utc};
use engine::protocol::{
    ActionDetails, ActionStatus, AgentStats, AgentType, Approval, ApprovalState, Envelope, Incident, IncidentStatus,
    PerformanceMetrics, SNAPSHOT_APPROVALS, ServerMessage, ServiceTelemetry, Severity, Snapshot, TimelineRun,
};
use uuid::Uuid;

pub use engine::protocol::format_dollars;

pub use crate::swarm_state::AgentView;
use crate::{
    estate_map::{BlastRadius, EstateMap, estate_map, reached},
    swarm_state::SwarmState,
};

/// Most entries the activity feed keeps; older ones fall off.
pub const FEED_CAP: usize = 200;
/// Health reports a sparkline spans.
pub const SPARK_POINTS: usize = 30;
/// Most incidents the dashboard keeps.
pub const INCIDENT_CAP: usize = 50;

/// What an event did to the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The state moved on to this event.
    Applied,
    /// Already seen; ignored.
    Duplicate,
    /// Events between `last_seq` and this one are missing; ignored. The
    /// caller must fetch what it missed.
    Gap,
}

/// What a feed entry is about.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FeedKind {
    /// An agent's action.
    Action(AgentType),
    /// An incident opened or closed.
    Incident,
    /// Policy decided about a plan, or a person was asked or answered.
    Governance,
    /// The incident memory learned from a finished incident.
    Memory,
}

impl FeedKind {
    /// The feed's source filter name: an agent's wire name, or the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Action(agent) => agent.as_str(),
            Self::Incident => "incident",
            Self::Governance => "governance",
            Self::Memory => "memory",
        }
    }
}

/// One line of the activity feed.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedEntry {
    /// Stable identity: the action id, or the incident id and its status.
    pub key: String,
    /// The newest event that touched this entry.
    pub seq: u64,
    /// When it happened (server time).
    pub at: DateTime<Utc>,
    /// Who or what it is about.
    pub kind: FeedKind,
    /// The incident it belongs to.
    pub incident_id: Uuid,
    /// What happened.
    pub description: String,
    /// Wire status, as in `in_progress`, `completed`, `resolved`.
    pub status: String,
    /// The agent's confidence, once known.
    pub confidence: Option<f64>,
    /// Simulated milliseconds, once known.
    pub duration_ms: Option<u64>,
    /// The line is a consensus round (an agent action whose details are a
    /// vote).
    pub vote: bool,
}

/// Everything the dashboard shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DashboardState {
    /// The server log the `seq`s belong to.
    pub epoch: Uuid,
    /// The newest event applied.
    pub last_seq: u64,
    /// The impact meter's figures.
    pub metrics: PerformanceMetrics,
    /// Recent incidents, newest first.
    pub incidents: Vec<Incident>,
    /// The activity feed, oldest first.
    pub feed: VecDeque<FeedEntry>,
    /// The swarm graph: agents' states, hand-offs, the latest vote.
    pub swarm: SwarmState,
    /// Each diagnosed incident's blast radius, for the dependency map; only
    /// incidents still in `incidents`.
    pub blast: BTreeMap<Uuid, BlastRadius>,
    /// The estate's services, as last reported.
    pub twin: Vec<ServiceTelemetry>,
    /// Each service's p99 over the last [`SPARK_POINTS`] reports, oldest
    /// first, for the health tiles' sparklines.
    pub p99_history: BTreeMap<String, VecDeque<f64>>,
    /// Every agent's lane on the bus, as last reported.
    pub swarm_stats: Vec<AgentStats>,
    /// The newest timeline runs, newest first.
    pub timelines: VecDeque<TimelineRun>,
    /// Approvals waiting for a person, and the latest decided, newest first.
    pub approvals: VecDeque<Approval>,
}

impl DashboardState {
    /// The state a snapshot describes.
    pub fn from_snapshot(snapshot: &Snapshot) -> Self {
        let mut state = Self {
            epoch: snapshot.epoch,
            metrics: snapshot.metrics.clone(),
            incidents: snapshot.incidents.clone(),
            twin: snapshot.twin.clone(),
            swarm_stats: snapshot.swarm.clone(),
            timelines: snapshot.timelines.iter().cloned().collect(),
            approvals: snapshot.approvals.iter().cloned().collect(),
            ..Self::default()
        };
        for event in &snapshot.recent_events {
            state.fold(event);
        }
        state.swarm.settle();
        state.last_seq = snapshot.last_seq;
        state
    }

    /// `snapshot` with only what [`Self::from_snapshot`] reads: no reports,
    /// and of each action's details only a diagnosis's blast radius, and of
    /// the others their kind (a vote's marks the swarm graph's waiting
    /// agents). The page embeds the snapshot it was rendered from,
    /// and the browser decodes all of it before it answers; most of a busy
    /// snapshot is evidence that only the incident pages show.
    pub fn slim(mut snapshot: Snapshot) -> Snapshot {
        for incident in &mut snapshot.incidents {
            incident.report = None;
        }
        for event in &mut snapshot.recent_events {
            match &mut event.message {
                ServerMessage::IncidentCreated { incident } => incident.report = None,
                ServerMessage::IncidentStatus { report, .. } => *report = None,
                ServerMessage::AgentAction { action, .. } => {
                    action.details = match &action.details {
                        ActionDetails::Diagnosis(diagnosis) => ActionDetails::Diagnosis(BlastRadius::slim(diagnosis)),
                        other => other.omitted(),
                    };
                }
                _ => {}
            }
        }
        snapshot
    }

    /// Folds one server message into the state, keeping the rules above.
    pub fn apply(&mut self, envelope: &Envelope) -> Applied {
        if let ServerMessage::Snapshot { snapshot } = &envelope.message {
            *self = Self::from_snapshot(snapshot);
            return Applied::Applied;
        }
        if envelope.seq <= self.last_seq {
            return Applied::Duplicate;
        }
        if envelope.seq > self.last_seq + 1 {
            return Applied::Gap;
        }
        self.fold(envelope);
        self.last_seq = envelope.seq;
        Applied::Applied
    }

    fn fold(&mut self, envelope: &Envelope) {
        self.swarm.fold(envelope);
        match &envelope.message {
            ServerMessage::IncidentCreated { incident } => {
                self.add_incident(incident.clone());
                self.upsert_feed(FeedEntry {
                    key: format!("{}:opened", incident.id),
                    seq: envelope.seq,
                    at: envelope.ts,
                    kind: FeedKind::Incident,
                    incident_id: incident.id,
                    description: line(envelope),
                    status: IncidentStatus::Active.as_str().to_owned(),
                    confidence: None,
                    duration_ms: None,
                    vote: false,
                });
            }
            ServerMessage::AgentAction { incident_id, action } => {
                if action.agent_type == AgentType::Diagnosis
                    && action.status == ActionStatus::Completed
                    && let ActionDetails::Diagnosis(diagnosis) = &action.details
                    && let Some(radius) = BlastRadius::from_diagnosis(diagnosis)
                {
                    self.blast.insert(*incident_id, radius);
                    let incidents = &self.incidents;
                    self.blast.retain(|id, _| incidents.iter().any(|i| i.id == *id));
                }
                self.upsert_feed(FeedEntry {
                    key: action.action_id.to_string(),
                    seq: envelope.seq,
                    at: action.timestamp,
                    kind: FeedKind::Action(action.agent_type),
                    incident_id: *incident_id,
                    description: action.description.clone(),
                    status: action.status.as_str().to_owned(),
                    confidence: action.confidence,
                    duration_ms: action.duration_ms,
                    vote: action.is_vote(),
                });
            }
            ServerMessage::IncidentStatus {
                incident_id, status, ..
            } => {
                if let Some(incident) = self.incidents.iter_mut().find(|i| i.id == *incident_id) {
                    incident.apply_status(&envelope.message, envelope.ts);
                }
                self.upsert_feed(FeedEntry {
                    key: format!("{incident_id}:{}", status.as_str()),
                    seq: envelope.seq,
                    at: envelope.ts,
                    kind: FeedKind::Incident,
                    incident_id: *incident_id,
                    description: line(envelope),
                    status: status.as_str().to_owned(),
                    confidence: None,
                    duration_ms: None,
                    vote: false,
                });
            }
            ServerMessage::AlertReceived { incident_id, alert } => self.upsert_feed(FeedEntry {
                key: format!("{incident_id}:alert:{}:{}", alert.fingerprint, alert.placement.as_str()),
                seq: envelope.seq,
                at: envelope.ts,
                kind: FeedKind::Incident,
                incident_id: *incident_id,
                description: line(envelope),
                status: alert.placement.as_str().to_owned(),
                confidence: None,
                duration_ms: None,
                vote: false,
            }),
            ServerMessage::LeaseTakenOver { subject, kind, .. } if kind == "incident" => self.upsert_feed(FeedEntry {
                key: format!("{subject}:taken_over:{}", envelope.seq),
                seq: envelope.seq,
                at: envelope.ts,
                kind: FeedKind::Incident,
                incident_id: *subject,
                description: line(envelope),
                status: "taken over".to_owned(),
                confidence: None,
                duration_ms: None,
                vote: false,
            }),
            ServerMessage::PerformanceMetrics { metrics } => self.metrics = metrics.clone(),
            ServerMessage::Snapshot { .. } | ServerMessage::LeaseTakenOver { .. } => {}
            ServerMessage::TwinHealth { services } => {
                for service in services {
                    let history = self.p99_history.entry(service.name.clone()).or_default();
                    if history.len() == SPARK_POINTS {
                        history.pop_front();
                    }
                    history.push_back(service.p99_ms);
                }
                self.twin = services.clone();
            }
            ServerMessage::SwarmStats { agents } => self.swarm_stats = agents.clone(),
            ServerMessage::TimelineProgress { run } => run.upsert_into(&mut self.timelines),
            ServerMessage::PolicyDecision { incident_id, decision } => {
                self.upsert_feed(FeedEntry {
                    key: format!("{incident_id}:policy:{}", envelope.seq),
                    seq: envelope.seq,
                    at: envelope.ts,
                    kind: FeedKind::Governance,
                    incident_id: *incident_id,
                    description: line(envelope),
                    status: decision.outcome_word().to_owned(),
                    confidence: Some(decision.input.confidence),
                    duration_ms: None,
                    vote: false,
                });
            }
            ServerMessage::ApprovalRequested { approval } => {
                self.upsert_feed(FeedEntry {
                    key: format!("{}:asked:{}", approval.approval_id, approval.level),
                    seq: envelope.seq,
                    at: envelope.ts,
                    kind: FeedKind::Governance,
                    incident_id: approval.incident_id,
                    description: line(envelope),
                    status: approval.state.as_str().to_owned(),
                    confidence: None,
                    duration_ms: None,
                    vote: false,
                });
                approval.clone().upsert_into(&mut self.approvals, SNAPSHOT_APPROVALS);
            }
            ServerMessage::ApprovalDecided { approval } => {
                self.upsert_feed(FeedEntry {
                    key: format!("{}:decided", approval.approval_id),
                    seq: envelope.seq,
                    at: envelope.ts,
                    kind: FeedKind::Governance,
                    incident_id: approval.incident_id,
                    description: line(envelope),
                    status: approval.state.as_str().to_owned(),
                    confidence: None,
                    duration_ms: approval.waited_seconds.map(|s| (s * 1000.0) as u64),
                    vote: false,
                });
                approval.clone().upsert_into(&mut self.approvals, SNAPSHOT_APPROVALS);
            }
            ServerMessage::MemoryRecorded { entry, .. } => {
                self.upsert_feed(FeedEntry {
                    key: format!("{}:remembered", entry.incident_id),
                    seq: envelope.seq,
                    at: envelope.ts,
                    kind: FeedKind::Memory,
                    incident_id: entry.incident_id,
                    description: line(envelope),
                    status: if entry.healing_fix().is_some() {
                        "healed"
                    } else {
                        "failed"
                    }
                    .to_owned(),
                    confidence: None,
                    duration_ms: None,
                    vote: false,
                });
            }
            // The vote is the swarm graph's (folded above) and shows in the
            // feed as the resolution agent's action; configuration changes
            // are told by the agents' actions; a resync is followed by a
            // close, and the reconnect resumes.
            ServerMessage::Consensus { .. }
            | ServerMessage::ConfigChange { .. }
            | ServerMessage::Resync { .. }
            | ServerMessage::MemoryCleared { .. } => {}
        }
    }

    /// Adds a newly created incident. One already known is left alone: a
    /// snapshot's copy is newer than the creation event replayed over it.
    fn add_incident(&mut self, incident: Incident) {
        if self.incidents.iter().all(|i| i.id != incident.id) {
            self.incidents.insert(0, incident);
            self.incidents.truncate(INCIDENT_CAP);
        }
    }

    fn upsert_feed(&mut self, entry: FeedEntry) {
        match self.feed.iter_mut().find(|e| e.key == entry.key) {
            Some(existing) => *existing = entry,
            None => {
                if self.feed.len() == FEED_CAP {
                    self.feed.pop_front();
                }
                self.feed.push_back(entry);
            }
        }
    }

    /// What `agent` is doing.
    pub fn agent(&self, agent: AgentType) -> AgentView {
        self.swarm.agent(agent, &self.swarm_stats)
    }

    /// Approvals waiting for a person, oldest request first (the most
    /// urgent).
    pub fn pending_approvals(&self) -> Vec<Approval> {
        let mut pending: Vec<Approval> = self
            .approvals
            .iter()
            .filter(|a| a.state == ApprovalState::Pending)
            .cloned()
            .collect();
        pending.sort_by_key(|a| a.requested_at);
        pending
    }

    /// The active incidents that reach `service`, newest first: id and
    /// title.
    pub fn active_incidents_on(&self, service: &str) -> Vec<(Uuid, String)> {
        self.incidents
            .iter()
            .filter(|i| i.status == IncidentStatus::Active && reached(i, &self.blast).iter().any(|s| s == service))
            .map(|i| (i.id, i.title.clone()))
            .collect()
    }

    /// The newest active incident whose diagnosed root cause is `service`:
    /// what the map's red node stands for.
    pub fn incident_rooted_at(&self, service: &str) -> Option<Uuid> {
        self.incidents
            .iter()
            .filter(|i| i.status == IncidentStatus::Active)
            .find(|i| self.blast.get(&i.id).and_then(|b| b.root.as_deref()) == Some(service))
            .map(|i| i.id)
    }

    /// One incident as the dashboard focuses on it, from its feed lines;
    /// `None` for an incident the state does not know.
    pub fn incident_focus(&self, id: Uuid) -> Option<IncidentFocus> {
        let incident = self.incidents.iter().find(|i| i.id == id)?.clone();
        let lines: Vec<&FeedEntry> = self.feed.iter().filter(|e| e.incident_id == id).collect();
        let newest = |admit: &dyn Fn(&FeedEntry) -> bool| lines.iter().rev().find(|e| admit(e)).copied();
        let status = |admit: &dyn Fn(&FeedEntry) -> bool| newest(admit).map(|e| e.status.clone());
        let agent = |agent: AgentType| (agent.label(), status(&|e| e.kind == FeedKind::Action(agent) && !e.vote));
        let phases = vec![
            agent(AgentType::Detection),
            agent(AgentType::Diagnosis),
            agent(AgentType::Prediction),
            ("Vote", status(&|e| e.vote)),
            ("Governance", status(&|e| e.kind == FeedKind::Governance)),
            agent(AgentType::Resolution),
            agent(AgentType::Communication),
        ];
        let vote = newest(&|e| e.vote).map(|e| (e.description.clone(), e.status.clone()));
        let steps = lines
            .iter()
            .filter(|e| e.kind == FeedKind::Action(AgentType::Resolution) && !e.vote)
            .map(|e| (e.description.clone(), e.status.clone()))
            .collect();
        Some(IncidentFocus {
            incident,
            phases,
            vote,
            steps,
        })
    }

    /// A short name for an incident, for feed lines.
    pub fn incident_label(&self, id: Uuid) -> String {
        self.incidents
            .iter()
            .find(|i| i.id == id)
            .map(|i| i.title.clone())
            .unwrap_or_else(|| id.to_string()[..8].to_owned())
    }

    /// The dependency map, coloured by the incidents.
    pub fn estate_map(&self) -> EstateMap {
        estate_map(&self.twin, &self.incidents, &self.blast)
    }

    /// Every service a known incident reaches (its blast radius once
    /// diagnosed), with its health: the worst severity of the active
    /// incidents touching it, if any.
    pub fn service_health(&self) -> Vec<ServiceHealth> {
        let mut services: BTreeMap<&str, ServiceHealth> = BTreeMap::new();
        for service in &self.twin {
            services.insert(
                &service.name,
                ServiceHealth {
                    name: service.name.clone(),
                    active_severity: None,
                    active_incidents: 0,
                    last_status: None,
                    telemetry: Some(service.clone()),
                    p99_history: self
                        .p99_history
                        .get(&service.name)
                        .map(|h| h.iter().copied().collect())
                        .unwrap_or_default(),
                },
            );
        }
        // Oldest first, so the newest incident decides `last_status`.
        for incident in self.incidents.iter().rev() {
            for name in reached(incident, &self.blast) {
                let health = services.entry(name).or_insert_with(|| ServiceHealth {
                    name: name.clone(),
                    active_severity: None,
                    active_incidents: 0,
                    last_status: None,
                    telemetry: None,
                    p99_history: Vec::new(),
                });
                health.last_status = Some(incident.status);
                if incident.status == IncidentStatus::Active {
                    health.active_incidents += 1;
                    health.active_severity = health.active_severity.max(Some(incident.severity));
                }
            }
        }
        let mut all: Vec<ServiceHealth> = services.into_values().collect();
        // The estate's own order (callers before what they call) reads as
        // a map; services only incidents name come last.
        let position = |h: &ServiceHealth| self.twin.iter().position(|t| t.name == h.name).unwrap_or(usize::MAX);
        all.sort_by_key(position);
        all
    }
}

/// One incident as the dashboard focuses on it: where its course stands,
/// its vote and its steps, all from the server's lines.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentFocus {
    pub incident: Incident,
    /// The course's stages in order (the five agents, the vote and
    /// governance), each with the status of its newest line; `None` until
    /// reached.
    pub phases: Vec<(&'static str, Option<String>)>,
    /// The newest vote's line and its status.
    pub vote: Option<(String, String)>,
    /// Resolution's lines, oldest first: what it did and its status.
    pub steps: Vec<(String, String)>,
}

/// One service's health: the estate's figures, and the incidents that name
/// it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceHealth {
    pub name: String,
    /// The worst severity among active incidents on it.
    pub active_severity: Option<Severity>,
    /// Active incidents on it.
    pub active_incidents: usize,
    /// The estate's figures for it, when the estate has such a service.
    pub telemetry: Option<ServiceTelemetry>,
    /// Status of the newest incident that named it.
    pub last_status: Option<IncidentStatus>,
    /// Its p99 over the last reports, oldest first.
    pub p99_history: Vec<f64>,
}

impl ServiceHealth {
    /// Changes whenever what the tile shows changes, so a keyed list
    /// re-renders exactly the tiles that moved.
    pub fn render_key(&self) -> String {
        let figures = self
            .telemetry
            .as_ref()
            .map(|t| {
                format!(
                    "{:?}|{}|{:.0}|{:.1}|{:?}|{}",
                    t.state,
                    t.in_rotation,
                    t.p99_ms,
                    t.error_rate * 100.0,
                    t.breakers,
                    self.p99_history.iter().sum::<f64>().round()
                )
            })
            .unwrap_or_default();
        format!(
            "{}|{figures}|{:?}|{}|{:?}",
            self.name, self.active_severity, self.active_incidents, self.last_status
        )
    }
}

/// The feed's line for an event the feed shows.
fn line(envelope: &Envelope) -> String {
    envelope.message.describe().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{self, action, at, incident, service, with_details};
    use engine::protocol::{
        Anomaly, CascadeRisk, DetectionFindings, HealthState, Loss, Metric, ObjectiveBreach, Omitted, Prediction,
    };

    fn approval(level: u32, state: ApprovalState) -> Approval {
        use engine::protocol::ApprovalOption;
        Approval {
            approval_id: Uuid::from_u128(500),
            incident_id: Uuid::from_u128(1),
            incident_title: "Incident 1".into(),
            severity: Severity::Critical,
            proposal: ApprovalOption {
                hypothesis: "connection-pool exhaustion on postgres-primary".into(),
                plan: "Scale the pool".into(),
                steps: vec!["Scale connection pool on postgres-primary".into()],
                success_probability: 0.48,
                estimate_seconds: 5.2,
                requests: Vec::new(),
            },
            alternatives: Vec::new(),
            evidence: Vec::new(),
            rule: "wide".into(),
            reason: "wide and critical".into(),
            approver: ["on-call SRE", "incident commander"][level as usize].into(),
            level,
            escalation: vec!["on-call SRE".into(), "incident commander".into()],
            timeout_seconds: 60.0,
            expires_at: Utc::now(),
            on_timeout: engine::protocol::PolicyVerdict::Deny,
            requested_at: Utc::now(),
            state,
            decided_by: (state == ApprovalState::Approved).then(|| "alice".into()),
            decided_at: None,
            comment: None,
            waited_seconds: (state == ApprovalState::Approved).then_some(75.5),
            autopilot_at: None,
        }
    }

    #[test]
    fn an_approval_waits_escalates_and_is_decided_in_place() {
        let mut state = DashboardState::default();
        state.apply(&at(1, ServerMessage::IncidentCreated { incident: incident(1) }));
        state.apply(&at(
            2,
            ServerMessage::ApprovalRequested {
                approval: approval(0, ApprovalState::Pending),
            },
        ));
        assert_eq!(state.pending_approvals().len(), 1);
        state.apply(&at(
            3,
            ServerMessage::ApprovalRequested {
                approval: approval(1, ApprovalState::Pending),
            },
        ));
        // One approval, now asking the next in line; two feed lines.
        let pending = state.pending_approvals();
        assert_eq!((pending.len(), pending[0].approver.as_str()), (1, "incident commander"));
        state.apply(&at(
            4,
            ServerMessage::ApprovalDecided {
                approval: approval(1, ApprovalState::Approved),
            },
        ));
        assert!(state.pending_approvals().is_empty());
        assert_eq!(state.approvals.len(), 1);
        let lines: Vec<(&str, &str)> = state
            .feed
            .iter()
            .filter(|e| e.kind == FeedKind::Governance)
            .map(|e| (e.description.as_str(), e.status.as_str()))
            .collect();
        assert_eq!(
            lines,
            vec![
                ("Waiting for on-call SRE to approve: Scale the pool", "pending"),
                ("No answer in 60 s: escalated to incident commander", "pending"),
                ("Approved by alice after 75.5 s", "approved"),
            ]
        );
    }

    #[test]
    fn the_focus_reads_an_incidents_phases_vote_and_steps_from_its_lines() {
        let mut state = DashboardState::default();
        state.apply(&at(1, ServerMessage::IncidentCreated { incident: incident(1) }));
        state.apply(&at(2, ServerMessage::IncidentCreated { incident: incident(2) }));
        state.apply(&at(3, action(1, 10, AgentType::Detection, ActionStatus::Completed)));
        state.apply(&at(4, action(1, 11, AgentType::Diagnosis, ActionStatus::InProgress)));
        // Resolution holds the vote: a ballot is neither its phase nor a step.
        let ballot = with_details(
            action(1, 12, AgentType::Resolution, ActionStatus::Completed),
            fixtures::vote("postgres-primary"),
        );
        state.apply(&at(5, ballot));
        state.apply(&at(6, action(1, 13, AgentType::Resolution, ActionStatus::Completed)));
        state.apply(&at(7, action(1, 14, AgentType::Resolution, ActionStatus::InProgress)));
        // Another incident's lines are not this one's.
        state.apply(&at(8, action(2, 20, AgentType::Communication, ActionStatus::Completed)));

        let focus = state.incident_focus(Uuid::from_u128(1)).expect("a known incident");
        let phase = |name: &str| focus.phases.iter().find(|(n, _)| *n == name).unwrap().1.clone();
        assert_eq!(phase("Detection").as_deref(), Some("completed"));
        assert_eq!(phase("Diagnosis").as_deref(), Some("in_progress"));
        assert_eq!(phase("Prediction"), None);
        assert_eq!(phase("Resolution").as_deref(), Some("in_progress"));
        assert_eq!(phase("Vote").as_deref(), Some("completed"));
        assert_eq!(phase("Governance"), None);
        assert_eq!(phase("Communication"), None);
        assert_eq!(
            focus.vote.as_ref().map(|(_, status)| status.as_str()),
            Some("completed")
        );
        let steps: Vec<&str> = focus.steps.iter().map(|(_, status)| status.as_str()).collect();
        assert_eq!(steps, ["completed", "in_progress"]);
        assert_eq!(state.incident_focus(Uuid::from_u128(9)), None);
    }

    #[test]
    fn a_root_on_the_map_stands_for_the_newest_active_incident_diagnosed_there() {
        let mut state = DashboardState::default();
        for id in 1..=3 {
            state.apply(&at(
                id as u64,
                ServerMessage::IncidentCreated { incident: incident(id) },
            ));
        }
        let diagnosed = |incident: u128, action: u128, root: &str| {
            with_details(
                fixtures::action(incident, action, AgentType::Diagnosis, ActionStatus::Completed),
                ActionDetails::Diagnosis(fixtures::diagnosis(root, &[root, "api-gateway"])),
            )
        };
        state.apply(&at(4, diagnosed(1, 10, "redis-cache")));
        state.apply(&at(5, diagnosed(2, 11, "redis-cache")));
        state.apply(&at(6, diagnosed(3, 12, "postgres-primary")));
        let rooted = |state: &DashboardState, service: &str| state.incident_rooted_at(service).map(|id| id.as_u128());
        // The newest of the two diagnosed at the cache; a service only in a
        // blast radius is nobody's root.
        assert_eq!(rooted(&state, "redis-cache"), Some(2));
        assert_eq!(rooted(&state, "postgres-primary"), Some(3));
        assert_eq!(rooted(&state, "api-gateway"), None);
        state.apply(&at(
            7,
            ServerMessage::IncidentStatus {
                incident_id: Uuid::from_u128(2),
                status: IncidentStatus::Resolved,
                resolution_time: Some(10.0),
                cost_savings: Some(1.0),
                root_cause: None,
                report: None,
                time_to_detect: None,
                time_to_diagnose: None,
            },
        ));
        assert_eq!(
            rooted(&state, "redis-cache"),
            Some(1),
            "a resolved incident is no longer on the map"
        );
    }

    #[test]
    fn the_incidents_on_a_service_are_the_active_ones_that_reach_it() {
        let mut state = DashboardState::default();
        let mut first = incident(1);
        first.affected_services = vec!["api-gateway".into()];
        let mut second = incident(2);
        second.affected_services = vec!["api-gateway".into(), "redis-cache".into()];
        state.apply(&at(1, ServerMessage::IncidentCreated { incident: first }));
        state.apply(&at(2, ServerMessage::IncidentCreated { incident: second }));
        let ids = |service: &str| -> Vec<u128> {
            state
                .active_incidents_on(service)
                .iter()
                .map(|(id, _)| id.as_u128())
                .collect()
        };
        assert_eq!(ids("api-gateway"), [2, 1]);
        assert_eq!(ids("redis-cache"), [2]);
        assert!(ids("postgres-primary").is_empty());
    }

    #[test]
    fn an_action_is_one_feed_line_that_moves_from_in_progress_to_completed() {
        let mut state = DashboardState::default();
        assert_eq!(
            state.apply(&at(1, ServerMessage::IncidentCreated { incident: incident(1) })),
            Applied::Applied
        );
        state.apply(&at(2, action(1, 10, AgentType::Detection, ActionStatus::InProgress)));
        assert_eq!(state.agent(AgentType::Detection).in_flight, 1);
        state.apply(&at(3, action(1, 10, AgentType::Detection, ActionStatus::Completed)));
        assert_eq!(state.feed.len(), 2);
        let line = &state.feed[1];
        assert_eq!(
            (line.status.as_str(), line.confidence, line.seq),
            ("completed", Some(0.9), 3)
        );
        let detection = state.agent(AgentType::Detection);
        assert_eq!((detection.in_flight, detection.completed), (0, 1));
    }

    #[test]
    fn duplicates_change_nothing_and_gaps_are_reported() {
        let mut state = DashboardState::default();
        state.apply(&at(1, ServerMessage::IncidentCreated { incident: incident(1) }));
        let before = state.clone();
        assert_eq!(
            state.apply(&at(1, ServerMessage::IncidentCreated { incident: incident(9) })),
            Applied::Duplicate
        );
        assert_eq!(
            state.apply(&at(3, action(1, 10, AgentType::Detection, ActionStatus::InProgress))),
            Applied::Gap
        );
        assert_eq!(state, before);
    }

    #[test]
    fn a_terminal_status_updates_the_incident_and_clears_its_unfinished_actions() {
        let mut state = DashboardState::default();
        state.apply(&at(1, ServerMessage::IncidentCreated { incident: incident(1) }));
        state.apply(&at(2, action(1, 10, AgentType::Resolution, ActionStatus::InProgress)));
        state.apply(&at(
            3,
            ServerMessage::IncidentStatus {
                incident_id: Uuid::from_u128(1),
                status: IncidentStatus::Interrupted,
                resolution_time: Some(4.0),
                cost_savings: None,
                root_cause: None,
                report: None,
                time_to_detect: None,
                time_to_diagnose: None,
            },
        ));
        assert_eq!(state.incidents[0].status, IncidentStatus::Interrupted);
        assert_eq!(state.agent(AgentType::Resolution).in_flight, 0);
        assert_eq!(state.feed.back().unwrap().status, "interrupted");
    }

    #[test]
    fn the_feed_is_capped_and_keeps_the_newest() {
        let mut state = DashboardState::default();
        for seq in 1..=(FEED_CAP as u64 + 25) {
            state.apply(&at(
                seq,
                action(1, seq as u128, AgentType::Diagnosis, ActionStatus::InProgress),
            ));
        }
        assert_eq!(state.feed.len(), FEED_CAP);
        assert_eq!(state.feed.back().unwrap().seq, FEED_CAP as u64 + 25);
        assert_eq!(state.feed.front().unwrap().seq, 26);
    }

    #[test]
    fn a_slim_snapshot_builds_the_same_dashboard_without_reports() {
        let diagnosis = with_details(
            action(1, 11, AgentType::Diagnosis, ActionStatus::Completed),
            ActionDetails::Diagnosis(fixtures::diagnosis(
                "postgres-primary",
                &["postgres-primary", "order-service"],
            )),
        );
        let vote = with_details(
            action(1, 12, AgentType::Resolution, ActionStatus::Completed),
            fixtures::vote("postgres-primary"),
        );
        let detection = with_details(
            action(1, 13, AgentType::Detection, ActionStatus::Completed),
            ActionDetails::Detection(DetectionFindings {
                metrics_analyzed: 180,
                anomalies_detected: 40,
                monitor_breaches: Vec::new(),
                warnings: Vec::new(),
                anomalous_services: vec!["postgres-primary".into()],
                top_anomalies: vec![
                    Anomaly {
                        service: "postgres-primary".into(),
                        metric: Metric::PoolUsage,
                        value: 1.0,
                        baseline: 0.4,
                        sigma: 14.0,
                    };
                    8
                ],
                pattern_matched: None,
                recall: Default::default(),
            }),
        );
        let prediction = with_details(
            action(1, 14, AgentType::Prediction, ActionStatus::Completed),
            ActionDetails::Prediction(Prediction {
                cascade: vec![
                    CascadeRisk {
                        service: "order-service".into(),
                        probability: 0.4,
                    };
                    17
                ],
                breaches: vec![
                    ObjectiveBreach {
                        service: "order-service".into(),
                        objective: "p99 ≤ 400 ms".into(),
                        seconds: 0.0,
                    };
                    17
                ],
                losses: vec![
                    Loss {
                        service: "order-service".into(),
                        per_minute: 120.0,
                    };
                    17
                ],
                impact_per_minute: 2040.0,
            }),
        );
        let mut closed = incident(1);
        closed.status = IncidentStatus::Resolved;
        closed.report = Some("# Report\n".repeat(200));
        let snapshot = Snapshot {
            epoch: Uuid::from_u128(5),
            last_seq: 7,
            metrics: PerformanceMetrics::default(),
            incidents: vec![closed.clone()],
            recent_events: vec![
                at(1, ServerMessage::IncidentCreated { incident: incident(1) }),
                at(2, action(1, 11, AgentType::Diagnosis, ActionStatus::InProgress)),
                at(3, diagnosis),
                at(4, vote),
                at(5, detection),
                at(6, prediction),
                at(
                    7,
                    ServerMessage::IncidentStatus {
                        incident_id: closed.id,
                        status: IncidentStatus::Resolved,
                        resolution_time: Some(30.0),
                        cost_savings: Some(1_000.0),
                        root_cause: Some("pool exhaustion".into()),
                        report: closed.report.clone(),
                        time_to_detect: Some(2.0),
                        time_to_diagnose: Some(4.0),
                    },
                ),
            ],
            twin: vec![service("postgres-primary", HealthState::Degraded)],
            swarm: Vec::new(),
            timelines: Vec::new(),
            approvals: Vec::new(),
        };
        let slim = DashboardState::slim(snapshot.clone());
        let size = |s: &Snapshot| serde_json::to_string(s).unwrap().len();
        assert!(
            size(&slim) * 3 < size(&snapshot),
            "{} of {}",
            size(&slim),
            size(&snapshot)
        );

        let mut full = DashboardState::from_snapshot(&snapshot);
        for incident in &mut full.incidents {
            incident.report = None;
        }
        let from_slim = DashboardState::from_snapshot(&slim);
        assert_eq!(from_slim, full);
        // What the slimming must keep, it kept.
        assert_eq!(
            from_slim.blast[&Uuid::from_u128(1)].root.as_deref(),
            Some("postgres-primary")
        );
        let ServerMessage::AgentAction { action: vote, .. } = &slim.recent_events[3].message else {
            panic!("the vote is still the fourth event");
        };
        assert!(vote.is_vote(), "{:?}", vote.details);
        let ServerMessage::AgentAction { action: detection, .. } = &slim.recent_events[4].message else {
            panic!("the detection is still the fifth event");
        };
        assert_eq!(
            detection.details,
            ActionDetails::Omitted(Omitted { of: "detection".into() }),
            "what the dashboard does not read is left out, but for its kind"
        );
    }

    #[test]
    fn a_snapshot_replaces_everything_and_rebuilds_the_feed() {
        let mut state = DashboardState::default();
        for seq in 1..=5 {
            state.apply(&at(
                seq,
                action(1, seq as u128, AgentType::Diagnosis, ActionStatus::InProgress),
            ));
        }
        let mut resolved = incident(2);
        resolved.status = IncidentStatus::Resolved;
        let snapshot = Snapshot {
            epoch: Uuid::from_u128(77),
            last_seq: 3,
            metrics: PerformanceMetrics {
                incidents_resolved: 1,
                ..Default::default()
            },
            incidents: vec![resolved],
            recent_events: vec![
                at(1, ServerMessage::IncidentCreated { incident: incident(2) }),
                at(2, action(2, 20, AgentType::Detection, ActionStatus::InProgress)),
                at(3, action(2, 20, AgentType::Detection, ActionStatus::Completed)),
            ],
            twin: vec![service("postgres-primary", HealthState::Healthy)],
            swarm: Vec::new(),
            timelines: Vec::new(),
            approvals: Vec::new(),
        };
        assert_eq!(
            state.apply(&at(3, ServerMessage::Snapshot { snapshot })),
            Applied::Applied
        );
        assert_eq!((state.epoch, state.last_seq), (Uuid::from_u128(77), 3));
        assert_eq!(state.metrics.incidents_resolved, 1);
        assert_eq!(state.feed.len(), 2);
        // The snapshot's incident list is the truth, even where older events
        // in the feed said `active`.
        assert_eq!(state.incidents[0].status, IncidentStatus::Resolved);
        assert_eq!(state.agent(AgentType::Diagnosis).in_flight, 0);
    }

    #[test]
    fn a_diagnosis_widens_an_incident_to_its_blast_radius() {
        let mut state = DashboardState::default();
        state.apply(&at(1, ServerMessage::IncidentCreated { incident: incident(1) }));
        let mut diagnosis = action(1, 7, AgentType::Diagnosis, ActionStatus::Completed);
        if let ServerMessage::AgentAction { action, .. } = &mut diagnosis {
            action.details = ActionDetails::Diagnosis(fixtures::diagnosis(
                "postgres-primary",
                &["postgres-primary", "api-gateway"],
            ));
        }
        state.apply(&at(2, diagnosis));
        let health = state.service_health();
        let primary = health.iter().find(|h| h.name == "postgres-primary").expect("reached");
        assert_eq!(primary.active_incidents, 1);
        assert_eq!(
            state.blast[&Uuid::from_u128(1)].root.as_deref(),
            Some("postgres-primary")
        );
    }

    #[test]
    fn service_health_reflects_active_incidents_and_the_latest_outcome() {
        let mut state = DashboardState::default();
        let mut old = incident(1);
        old.status = IncidentStatus::Resolved;
        old.affected_services = vec!["order-service".into(), "api-gateway".into()];
        let mut live = incident(2);
        live.severity = Severity::Critical;
        state.incidents = vec![live, old];
        let health = state.service_health();
        let by_name = |n: &str| health.iter().find(|h| h.name == n).unwrap().clone();
        assert_eq!(by_name("api-gateway").active_severity, Some(Severity::Critical));
        assert_eq!(by_name("order-service").active_severity, None);
        assert_eq!(by_name("order-service").last_status, Some(IncidentStatus::Resolved));
    }

    #[test]
    fn each_service_keeps_a_bounded_p99_history_for_its_sparkline() {
        let mut state = DashboardState::default();
        for n in 1..=(SPARK_POINTS as u64 + 5) {
            let mut db = service("postgres-primary", HealthState::Healthy);
            db.p99_ms = n as f64;
            state.apply(&Envelope {
                seq: n,
                ts: chrono::Utc::now(),
                message: ServerMessage::TwinHealth { services: vec![db] },
            });
        }
        let rows = state.service_health();
        let history = &rows[0].p99_history;
        assert_eq!(history.len(), SPARK_POINTS);
        assert_eq!(history.first(), Some(&6.0), "the oldest dropped first");
        assert_eq!(history.last(), Some(&(SPARK_POINTS as f64 + 5.0)));
    }

    #[test]
    fn twin_health_replaces_the_tiles_and_keeps_the_estate_order() {
        let mut state = DashboardState::default();
        let mut live = incident(1);
        live.affected_services = vec!["postgres-primary".into(), "legacy-batch".into()];
        state.incidents = vec![live];
        state.apply(&at(
            1,
            ServerMessage::TwinHealth {
                services: vec![
                    service("api-gateway", HealthState::Healthy),
                    service("postgres-primary", HealthState::Down),
                ],
            },
        ));
        let tiles = state.service_health();
        let names: Vec<&str> = tiles.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["api-gateway", "postgres-primary", "legacy-batch"]);
        assert_eq!(tiles[1].telemetry.as_ref().unwrap().state, HealthState::Down);
        assert_eq!(tiles[1].active_incidents, 1);
        assert!(tiles[2].telemetry.is_none());
        let before = tiles[1].render_key();
        state.apply(&at(
            2,
            ServerMessage::TwinHealth {
                services: vec![service("postgres-primary", HealthState::Healthy)],
            },
        ));
        assert_ne!(state.service_health()[0].render_key(), before);
    }

    #[test]
    fn dollars_are_grouped_by_thousands() {
        assert_eq!(format_dollars(0.0), "$0");
        assert_eq!(format_dollars(999.4), "$999");
        assert_eq!(format_dollars(103_360.0), "$103,360");
        assert_eq!(format_dollars(1_343_360.6), "$1,343,361");
    }
}
