//! The projection: what a snapshot shows, folded from the events one by
//! one.
//!
//! The log applies each event to it under the same lock as the fan-out, so
//! it lives beside the log; it is its own module because what a dashboard
//! keeps (and for how long) changes independently of how events are stored.

use std::collections::VecDeque;

use crate::protocol::{AgentStats, Envelope, Incident, PerformanceMetrics, ServerMessage, ServiceTelemetry};

/// Whether an event belongs in the activity feed.
pub fn is_feed_event(message: &ServerMessage) -> bool {
    matches!(
        message,
        ServerMessage::IncidentCreated { .. }
            | ServerMessage::AgentAction { .. }
            | ServerMessage::IncidentStatus { .. }
            | ServerMessage::PolicyDecision { .. }
            | ServerMessage::ApprovalRequested { .. }
            | ServerMessage::ApprovalDecided { .. }
            | ServerMessage::MemoryRecorded { .. }
            | ServerMessage::LeaseTakenOver { .. }
    )
}

/// What a snapshot shows, kept current event by event.
#[derive(Debug, Clone, Default)]
pub struct Projection {
    /// The newest incidents, newest first.
    pub incidents: VecDeque<Incident>,
    /// The newest feed events, oldest first.
    pub recent: VecDeque<Envelope>,
    /// The latest impact-meter figures.
    pub metrics: PerformanceMetrics,
    /// The latest estate report (empty before the first).
    pub twin: Vec<ServiceTelemetry>,
    /// The latest agent-bus report (empty before the first).
    pub swarm: Vec<AgentStats>,
    /// The newest timeline runs, newest first.
    pub timelines: VecDeque<crate::protocol::TimelineRun>,
    /// Pending approvals and the latest decided ones, newest first.
    pub approvals: VecDeque<crate::protocol::Approval>,
    /// How many incidents and feed events to keep.
    incident_cap: usize,
    event_cap: usize,
}

impl Projection {
    /// An empty projection keeping `incident_cap` incidents and `event_cap`
    /// feed events.
    pub fn new(incident_cap: usize, event_cap: usize) -> Self {
        Self {
            incident_cap,
            event_cap,
            ..Self::default()
        }
    }

    /// Folds one event in.
    pub fn apply(&mut self, envelope: &Envelope) {
        match &envelope.message {
            ServerMessage::IncidentCreated { incident } => {
                self.incidents.push_front(incident.clone());
                self.incidents.truncate(self.incident_cap);
            }
            ServerMessage::IncidentStatus { incident_id, .. } => {
                if let Some(incident) = self.incidents.iter_mut().find(|i| i.id == *incident_id) {
                    incident.apply_status(&envelope.message, envelope.ts);
                }
            }
            ServerMessage::PerformanceMetrics { metrics } => self.metrics = metrics.clone(),
            ServerMessage::TwinHealth { services } => self.twin = services.clone(),
            ServerMessage::SwarmStats { agents } => self.swarm = agents.clone(),
            ServerMessage::TimelineProgress { run } => run.upsert_into(&mut self.timelines),
            ServerMessage::ApprovalRequested { approval } | ServerMessage::ApprovalDecided { approval } => approval
                .clone()
                .upsert_into(&mut self.approvals, crate::protocol::SNAPSHOT_APPROVALS),
            _ => {}
        }
        if is_feed_event(&envelope.message) {
            if self.recent.len() == self.event_cap {
                self.recent.pop_front();
            }
            self.recent.push_back(envelope.clone());
        }
    }
}
