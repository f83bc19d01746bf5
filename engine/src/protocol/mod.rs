//! The wire protocol: every message the server sends to a dashboard, and the
//! records those messages carry.
//!
//! The names and shapes are seed 000's (`agent_action`, `incident_status`,
//! `performance_metrics`), wrapped in an [`Envelope`] that adds the global
//! sequence number `seq` and the server timestamp `ts`. This module has no
//! runtime dependencies, so the browser (wasm32) compiles the very same types
//! it deserializes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

mod actuation;
mod alerts;
mod analytics;
mod backoff;
mod causes;
mod charts;
mod describe;
mod findings;
mod governance;
mod memory;
mod models;
mod timeline;
mod vocabulary;
mod wire;
pub use actuation::*;
pub use alerts::*;
pub use analytics::*;
pub use backoff::Backoff;
pub use causes::{CauseStory, cause_stories};
pub use charts::*;
pub use describe::format_dollars;
pub use findings::*;
pub use governance::*;
pub use memory::*;
pub use models::*;
pub use timeline::*;
pub use vocabulary::*;

/// The name serde gives `value`, a unit variant of an enum: the one source
/// of every enum's wire name, so that `as_str`, the JSON and the OpenAPI
/// document cannot disagree.
pub(crate) fn wire_name<T: Serialize>(value: &T) -> &'static str {
    serde_variant::to_variant_name(value).expect("wire names are taken of unit variants only")
}

/// How bad an incident is. Ordered from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// Every severity, least severe first.
    pub const ALL: [Severity; 4] = [Self::Low, Self::Medium, Self::High, Self::Critical];

    /// The wire name, as in `"critical"`.
    pub fn as_str(self) -> &'static str {
        crate::protocol::wire_name(&self)
    }
}

/// Where an incident is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    /// The swarm is working on it.
    Active,
    /// Remediation was verified; the incident is closed.
    Resolved,
    /// The swarm gave up on it.
    Failed,
    /// The server stopped before the incident finished.
    Interrupted,
    /// Advisory mode (a watched estate): the swarm proposed a plan and ran
    /// nothing; people act on it.
    Advised,
    /// Something is off but inside every objective (a warning level
    /// crossed): re-checked, nothing run, left for people to keep an eye
    /// on.
    Watching,
}

impl IncidentStatus {
    /// The wire name, as in `"resolved"`.
    pub fn as_str(self) -> &'static str {
        crate::protocol::wire_name(&self)
    }

    /// True once the incident can no longer change.
    pub fn is_terminal(self) -> bool {
        !matches!(self, Self::Active)
    }
}

/// The five agents of seed 000's swarm, in the order an incident meets them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AgentType {
    Detection,
    Diagnosis,
    Prediction,
    Resolution,
    Communication,
}

impl AgentType {
    /// Every agent, in pipeline order.
    pub const ALL: [AgentType; 5] = [
        Self::Detection,
        Self::Diagnosis,
        Self::Prediction,
        Self::Resolution,
        Self::Communication,
    ];

    /// The wire name, as in `"detection"`.
    pub fn as_str(self) -> &'static str {
        crate::protocol::wire_name(&self)
    }

    /// A human label, as in `"Detection"`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Detection => "Detection",
            Self::Diagnosis => "Diagnosis",
            Self::Prediction => "Prediction",
            Self::Resolution => "Resolution",
            Self::Communication => "Communication",
        }
    }
}

/// The state of one agent action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ActionStatus {
    InProgress,
    Completed,
    Failed,
}

impl ActionStatus {
    /// The wire name, as in `"in_progress"`.
    pub fn as_str(self) -> &'static str {
        crate::protocol::wire_name(&self)
    }
}

/// One thing an agent did for an incident (seed 000's `action`). The same
/// `action_id` is sent twice: first `in_progress`, then `completed` or
/// `failed` with its duration and confidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentAction {
    /// Which agent acted.
    pub agent_type: AgentType,
    /// Stable across the in-progress and the final message of one action.
    pub action_id: Uuid,
    /// What the agent is doing, for people.
    pub description: String,
    /// When the action started.
    pub timestamp: DateTime<Utc>,
    /// Where the action is.
    pub status: ActionStatus,
    /// What the action worked from or produced, typed by its `kind`.
    pub details: ActionDetails,
    /// Simulated milliseconds the action took; set once it finished.
    pub duration_ms: Option<u64>,
    /// How sure the agent is of its result, 0..=1; set once it finished.
    pub confidence: Option<f64>,
    /// On a watched estate, the PromQL its finding rests on, with the range
    /// and the values read (empty on the twin). The browser does not decode
    /// it (it would ship the decoder in the initial bundle): the incident
    /// page gets it prepared by the server.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(not(feature = "runtime"), serde(skip_deserializing))]
    pub queries: Vec<QueryEvidence>,
}

/// An incident as the server knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Incident {
    /// Random (v4) id, assigned by the server.
    pub id: Uuid,
    /// Short human title.
    pub title: String,
    /// How bad it is.
    pub severity: Severity,
    /// The services it touches, as reported.
    pub affected_services: Vec<String>,
    /// The catalog scenario it came from, if any.
    pub scenario_id: Option<String>,
    /// Where it is in its life.
    pub status: IncidentStatus,
    /// When the server accepted it.
    pub created_at: DateTime<Utc>,
    /// When it reached a terminal status.
    pub finished_at: Option<DateTime<Utc>>,
    /// Simulated seconds from creation to resolution (the MTTR sample).
    pub resolution_time: Option<f64>,
    /// Dollars saved against a manual response; set when resolved.
    pub cost_savings: Option<f64>,
    /// The root cause the swarm acted on, as in "memory leak on
    /// user-service"; set when it finishes.
    #[serde(default)]
    pub root_cause: Option<String>,
    /// The incident report, in markdown; set when it finishes.
    #[serde(default)]
    pub report: Option<String>,
}

impl Incident {
    /// Folds in an `incident_status` event about this incident, sent at
    /// `at`; any other message leaves it alone. The snapshot's projection
    /// and the browser's state both fold statuses this way.
    pub fn apply_status(&mut self, message: &ServerMessage, at: DateTime<Utc>) {
        if let ServerMessage::IncidentStatus {
            incident_id,
            status,
            resolution_time,
            cost_savings,
            root_cause,
            report,
            ..
        } = message
            && *incident_id == self.id
        {
            self.status = *status;
            self.resolution_time = *resolution_time;
            self.cost_savings = *cost_savings;
            if status.is_terminal() {
                self.finished_at = Some(at);
            }
            self.root_cause.clone_from(root_cause);
            self.report.clone_from(report);
        }
    }
}

/// How "cost savings" is computed, with its inputs, so people can check a
/// figure: `cost_per_minute × (1 + blast_factor × (services − 1)) ×
/// max(0, manual_mttr_minutes − resolution_minutes)`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SavingsFormula {
    /// Extra share of the per-minute cost per affected service past the first.
    pub blast_factor: f64,
    /// The per-severity inputs, least severe first.
    pub severities: Vec<SeverityInputs>,
}

/// One severity's inputs to the savings formula.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SeverityInputs {
    pub severity: Severity,
    /// Dollars lost per minute of degradation.
    pub cost_per_minute: f64,
    /// Typical time for people to restore service, in minutes.
    pub manual_mttr_minutes: f64,
}

/// The business impact meter's figures (seed 000's `metrics`), computed by
/// the server from every incident it has seen.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PerformanceMetrics {
    /// Incidents that reached `resolved`.
    pub incidents_resolved: u64,
    /// Sum of `cost_savings` over resolved incidents, in dollars.
    pub total_cost_savings: f64,
    /// Mean `resolution_time` of resolved incidents, in simulated seconds.
    pub avg_mttr: f64,
    /// `resolved / (resolved + failed)`, 0..=1; 0 while nothing has finished.
    pub success_rate: f64,
    /// Incidents still being worked on.
    pub incidents_active: u64,
    /// Incidents that ended `failed` or `interrupted`.
    pub incidents_failed: u64,
    /// Mean simulated seconds from opening to the end of detection.
    #[serde(default)]
    pub avg_time_to_detect: f64,
    /// Mean simulated seconds from opening to the first diagnosis.
    #[serde(default)]
    pub avg_time_to_diagnose: f64,
    /// Mean resolution time by scenario (`ad_hoc` for incidents without
    /// one), over resolved incidents.
    #[serde(default)]
    pub mttr_by_scenario: std::collections::BTreeMap<String, f64>,
}

// The macro writes the enum as is, plus a reader for each variant's fields
// (see `wire`): the browser reads envelopes without buffering them.
wire::server_messages! {
    /// Everything the server tells a dashboard, tagged by `type` on the wire.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    #[serde(tag = "type", rename_all = "snake_case")]
    pub enum ServerMessage {
        /// A new incident was accepted and the swarm starts on it.
        IncidentCreated { incident: Incident },
        /// An agent started or finished an action.
        AgentAction { incident_id: Uuid, action: AgentAction },
        /// An incident changed status; the final one carries its figures, and
        /// everything the store needs to rebuild the incident and the metrics
        /// from the log alone.
        IncidentStatus {
            incident_id: Uuid,
            status: IncidentStatus,
            resolution_time: Option<f64>,
            cost_savings: Option<f64>,
            /// The root cause acted on (or first suspected).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            root_cause: Option<String>,
            /// The incident report, in markdown.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            report: Option<String>,
            /// Simulated seconds from opening to the end of detection.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            time_to_detect: Option<f64>,
            /// Simulated seconds from opening to the first diagnosis.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            time_to_diagnose: Option<f64>,
        },
        /// The impact meter's figures changed.
        PerformanceMetrics { metrics: PerformanceMetrics },
        /// The agents voted on a remediation plan.
        Consensus { incident_id: Uuid, round: ConsensusRound },
        /// Every agent's lane on the bus, reported with the estate's health.
        SwarmStats { agents: Vec<AgentStats> },
        /// The estate's services, reported every couple of simulated seconds.
        TwinHealth { services: Vec<ServiceTelemetry> },
        /// A setting of the estate changed (the config history).
        ConfigChange {
            incident_id: Option<Uuid>,
            change: ConfigChangeEvent,
        },
        /// A timeline run moved on: started, fired an incident, saw one close,
        /// paused, resumed, finished or was cancelled. Carries the whole run.
        TimelineProgress { run: TimelineRun },
        /// Policy decided about a plan: run it, ask a person, or never; or,
        /// right before an approved plan runs, whether the approval still holds.
        PolicyDecision {
            incident_id: Uuid,
            decision: PolicyDecision,
        },
        /// A plan waits for a person; sent again, same id, on each escalation.
        ApprovalRequested { approval: Approval },
        /// A person (or the timeout) decided.
        ApprovalDecided { approval: Approval },
        /// A finished incident joined the incident memory.
        MemoryRecorded {
            entry: MemoryEntry,
            /// Older incidents it pushed out (the memory is bounded).
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            evicted: Vec<Uuid>,
        },
        /// An alert reached the intake and was placed on an incident: it
        /// opened it, joined it, or resolved.
        AlertReceived { incident_id: Uuid, alert: AlertRecord },
        /// Someone wiped the incident memory.
        MemoryCleared {
            /// Entries forgotten.
            removed: u64,
            /// Who asked.
            by: String,
        },
        /// An instance took over a lease whose owner stopped renewing it (it
        /// died, or paused past the lease's time), and interrupted what the
        /// lease covered. Only with several instances on one PostgreSQL.
        LeaseTakenOver {
            /// The incident or timeline run.
            subject: Uuid,
            /// `incident` or `timeline`.
            kind: String,
            /// The instance that stopped renewing it.
            previous_owner: String,
            /// The instance that holds it now.
            owner: String,
            /// The lease's new epoch: one more than the lost owner's.
            lease_epoch: u64,
        },
        /// The connection fell too far behind the live stream and is about to be
        /// closed; reconnect and resume from the last `seq` applied. Not stored:
        /// its `seq` is the last one sent on this connection.
        Resync { reason: String },
        /// A complete view that replaces whatever the client had. Sent first on
        /// a fresh connection, and when a resume cannot be served from the log.
        /// Its `seq` is the snapshot's `last_seq`.
        Snapshot { snapshot: Snapshot },
    }
}

impl ServerMessage {
    /// The wire `type` tag, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::IncidentCreated { .. } => "incident_created",
            Self::AgentAction { .. } => "agent_action",
            Self::IncidentStatus { .. } => "incident_status",
            Self::PerformanceMetrics { .. } => "performance_metrics",
            Self::Consensus { .. } => "consensus",
            Self::ConfigChange { .. } => "config_change",
            Self::TwinHealth { .. } => "twin_health",
            Self::SwarmStats { .. } => "swarm_stats",
            Self::Snapshot { .. } => "snapshot",
            Self::Resync { .. } => "resync",
            Self::TimelineProgress { .. } => "timeline_progress",
            Self::PolicyDecision { .. } => "policy_decision",
            Self::ApprovalRequested { .. } => "approval_requested",
            Self::ApprovalDecided { .. } => "approval_decided",
            Self::MemoryRecorded { .. } => "memory_recorded",
            Self::MemoryCleared { .. } => "memory_cleared",
            Self::AlertReceived { .. } => "alert_received",
            Self::LeaseTakenOver { .. } => "lease_taken_over",
        }
    }

    /// The incident an event is about, if any.
    pub fn incident_id(&self) -> Option<Uuid> {
        match self {
            Self::IncidentCreated { incident } => Some(incident.id),
            Self::AgentAction { incident_id, .. }
            | Self::IncidentStatus { incident_id, .. }
            | Self::Consensus { incident_id, .. }
            | Self::PolicyDecision { incident_id, .. }
            | Self::AlertReceived { incident_id, .. } => Some(*incident_id),
            Self::ApprovalRequested { approval } | Self::ApprovalDecided { approval } => Some(approval.incident_id),
            Self::ConfigChange { incident_id, .. } => *incident_id,
            Self::MemoryRecorded { entry, .. } => Some(entry.incident_id),
            Self::LeaseTakenOver { subject, kind, .. } if kind == "incident" => Some(*subject),
            _ => None,
        }
    }
}

/// One configuration change in the estate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConfigChangeEvent {
    /// The service.
    pub service: String,
    /// The setting, as in `pool_size`.
    pub key: String,
    /// Value before.
    pub from: String,
    /// Value after.
    pub to: String,
    /// What changed it: an action, its rollback, or a release.
    pub cause: String,
}

/// One agent's ballot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum VoteChoice {
    Approve,
    Reject,
    /// The agent did not vote.
    Silent,
}

/// One agent's vote on a plan, with its reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsensusVote {
    /// Who voted.
    pub agent: AgentType,
    /// How.
    pub choice: VoteChoice,
    /// The evidence behind the agent's honest judgement.
    pub reason: String,
    /// The misbehaviour a scenario injected into this voter, if any
    /// (`random`, `adversarial`, `silent`), so the dashboard can show it.
    pub injected_fault: Option<String>,
}

/// A Byzantine vote on a remediation plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsensusRound {
    /// The plan voted on, for people.
    pub plan: String,
    /// Voters (n).
    pub voters: usize,
    /// Faulty voters tolerated (f = ⌊(n − 1) / 3⌋).
    pub tolerated: usize,
    /// Approvals needed (2f + 1).
    pub quorum: usize,
    /// Approvals cast.
    pub approvals: usize,
    /// Rejections cast.
    pub rejections: usize,
    /// Voters that did not vote.
    pub silent: usize,
    /// The plan may run.
    pub passed: bool,
    /// Voters against the outcome.
    pub dissent: Vec<AgentType>,
    /// Every vote.
    pub votes: Vec<ConsensusVote>,
}

/// A message as it travels: the event log's sequence number and time, and
/// the message's own fields flattened beside them. Read by hand (`wire`),
/// without buffering.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Envelope {
    /// Position in the global event log: strictly increasing, no gaps.
    pub seq: u64,
    /// When the event was appended to the log.
    pub ts: DateTime<Utc>,
    /// The message itself.
    #[serde(flatten)]
    pub message: ServerMessage,
}

/// What a dashboard needs for its first paint (seed 002's single source of
/// truth). A client then follows the live stream from `last_seq`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Snapshot {
    /// Identifies the event log the `seq`s belong to; a client that resumes
    /// with another epoch's `seq` gets a fresh snapshot.
    pub epoch: Uuid,
    /// The newest event reflected here; resume the stream after it.
    pub last_seq: u64,
    /// The impact meter's figures.
    pub metrics: PerformanceMetrics,
    /// The most recent incidents, newest first.
    pub incidents: Vec<Incident>,
    /// The most recent incident and agent events (no metrics), oldest
    /// first, for the activity feed.
    // An envelope may carry a snapshot: the schema refers back, not inline.
    #[cfg_attr(feature = "openapi", schema(no_recursion))]
    pub recent_events: Vec<Envelope>,
    /// The estate's services now.
    #[serde(default)]
    pub twin: Vec<ServiceTelemetry>,
    /// Every agent's lane on the bus now.
    #[serde(default)]
    pub swarm: Vec<AgentStats>,
    /// The newest timeline runs, newest first (running ones and the last
    /// finished ones, with their scores).
    #[serde(default)]
    pub timelines: Vec<TimelineRun>,
    /// Approvals waiting for a person, and the latest decided ones, newest
    /// first.
    #[serde(default)]
    pub approvals: Vec<Approval>,
}

/// One agent's lane on the agent bus (seed 001's per-agent figures).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentStats {
    /// The agent.
    pub agent: AgentType,
    /// Incidents waiting for a worker.
    pub queue_depth: usize,
    /// Workers in use.
    pub busy: usize,
    /// Workers in all.
    pub workers: usize,
    /// `busy / workers`, 0..=1.
    pub utilization: f64,
    /// Jobs finished in the last simulated minute.
    pub messages_per_minute: u64,
    /// Median job time, simulated ms; none before the first job.
    pub p50_ms: Option<u64>,
    /// 99th-percentile job time, simulated ms.
    pub p99_ms: Option<u64>,
    /// Jobs finished since start.
    pub completed: u64,
    /// The lane's circuit breaker.
    #[serde(default)]
    pub breaker: BreakerState,
    /// Failed jobs since start.
    #[serde(default)]
    pub failures: u64,
}

/// A circuit breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Work flows.
    #[default]
    Closed,
    /// Work is refused until the cool-down ends.
    Open,
    /// One job may probe; its outcome closes or reopens the circuit.
    HalfOpen,
}

/// How a service is doing against its objectives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum HealthState {
    Healthy,
    Degraded,
    Down,
}

impl HealthState {
    /// The wire name (serde's).
    pub fn as_str(self) -> &'static str {
        crate::protocol::wire_name(&self)
    }

    /// How much ill health this is, as harm is counted: healthy 0,
    /// degraded 1, down 2.
    pub fn harm(self) -> u32 {
        match self {
            HealthState::Healthy => 0,
            HealthState::Degraded => 1,
            HealthState::Down => 2,
        }
    }
}

/// One service of the simulated estate, as its monitoring sees it now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceTelemetry {
    /// Service name.
    pub name: String,
    /// What it is (`database`, `cache`, …).
    pub kind: String,
    /// Against its objectives, over the last 3 seconds.
    pub state: HealthState,
    /// False for a database failed over to its replica.
    pub in_rotation: bool,
    /// False for third parties.
    pub owned: bool,
    /// p99 latency, ms.
    pub p99_ms: f64,
    /// Share of requests failing.
    pub error_rate: f64,
    /// Requests/s served.
    pub rps: f64,
    /// CPU utilisation, 0..=1.
    pub cpu: f64,
    /// The services it calls.
    pub depends_on: Vec<String>,
    /// Its circuit breakers, one per dependency that has one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub breakers: Vec<CircuitBreaker>,
}

/// A circuit breaker on a call to a dependency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CircuitBreaker {
    /// The dependency it guards.
    pub to: String,
    /// Tripped: calls go to the fallback instead.
    pub open: bool,
}

/// A catalog scenario as offered to people and clients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScenarioSummary {
    /// Stable id, as in `database_cascade`.
    pub id: String,
    /// Button label, as in `Database Cascade`.
    pub label: String,
    /// Incident title it creates.
    pub title: String,
    /// Default severity.
    pub severity: Severity,
    /// Services it affects.
    pub affected_services: Vec<String>,
    /// Shown prominently on the dashboard.
    pub primary: bool,
}

// Timelines: scheduled incident streams (seed 004).

/// One page of incidents, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IncidentPage {
    /// The incidents on this page.
    pub items: Vec<Incident>,
    /// How many match the filter in all.
    pub total: u64,
    /// The page size asked for.
    pub limit: u32,
    /// Where this page starts.
    pub offset: u64,
}

/// An incident with everything the swarm did about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IncidentDetail {
    pub incident: Incident,
    /// Every event about it, oldest first.
    pub timeline: Vec<Envelope>,
    /// Diagnosis's ranked hypotheses, with their evidence (the latest
    /// diagnosis), as the agent published them.
    pub hypotheses: Vec<Hypothesis>,
    /// Every consensus round, oldest first.
    pub votes: Vec<ConsensusRound>,
    /// Resolution's finished actions: checks, steps, verification, rollback.
    pub actions: Vec<AgentAction>,
    /// Governance: every policy decision and approval, oldest first.
    #[serde(default)]
    pub audit: Vec<AuditEntry>,
    /// With two faults at once, each cause with its own evidence and steps
    /// ([`cause_stories`]); empty with one.
    #[serde(default)]
    pub causes: Vec<CauseStory>,
}

/// Events after a `seq`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventPage {
    /// Oldest first.
    pub events: Vec<Envelope>,
    /// The newest `seq` stored; more may follow when `events` is full.
    pub last_seq: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_action_envelope_has_seed_000_shape_plus_seq_and_ts() {
        let envelope = Envelope {
            seq: 7,
            ts: "2026-11-22T10:30:45.123Z".parse().unwrap(),
            message: ServerMessage::AgentAction {
                incident_id: Uuid::nil(),
                action: AgentAction {
                    agent_type: AgentType::Detection,
                    action_id: Uuid::nil(),
                    description: "Scanning telemetry of 3 services against baselines".into(),
                    timestamp: "2026-11-22T10:30:45.123Z".parse().unwrap(),
                    status: ActionStatus::InProgress,
                    details: ActionDetails::Started(Started {
                        task: Some(Task::ScanTelemetry),
                        services: Some(3),
                    }),
                    duration_ms: None,
                    confidence: None,
                    queries: Vec::new(),
                },
            },
        };
        let json = serde_json::to_value(&envelope).unwrap();
        assert_eq!(json["type"], "agent_action");
        assert_eq!(json["seq"], 7);
        assert_eq!(json["action"]["agent_type"], "detection");
        assert_eq!(json["action"]["status"], "in_progress");
        assert!(json["action"]["duration_ms"].is_null());
        assert_eq!(
            json["action"]["details"]["kind"], "started",
            "details stay an object, tagged"
        );
        assert_eq!(json["action"]["details"]["services"], 3);
        let back: Envelope = serde_json::from_value(json).unwrap();
        assert_eq!(back, envelope);
    }

    #[test]
    fn incident_status_uses_seed_000_field_names() {
        let message = ServerMessage::IncidentStatus {
            incident_id: Uuid::nil(),
            status: IncidentStatus::Resolved,
            resolution_time: Some(18.2),
            cost_savings: Some(103_360.0),
            root_cause: None,
            report: None,
            time_to_detect: None,
            time_to_diagnose: None,
        };
        let json = serde_json::to_value(&message).unwrap();
        assert_eq!(json["type"], "incident_status");
        assert_eq!(json["status"], "resolved");
        assert_eq!(json["resolution_time"], 18.2);
        assert_eq!(json["cost_savings"], 103_360.0);
        assert!(json.get("report").is_none(), "absent figures stay off the wire");
    }
}
