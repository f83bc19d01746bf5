//! The incident book: open and recently finished incidents, the running
//! totals behind the impact meter, and the audits of finished incidents
//! that the evaluation scores.

use std::{collections::HashMap, time::Duration};

use uuid::Uuid;

use super::Audit;
use crate::{
    journal::Totals,
    protocol::{Incident, IncidentStatus, PerformanceMetrics},
};

/// Finished incidents kept in memory for [`Engine::incident`]; older ones
/// are only in the store.
const FINISHED_KEPT: usize = 10_000;

/// Open and recently finished incidents, and the running totals behind the
/// metrics.
#[derive(Default)]
pub(super) struct IncidentBook {
    /// Open and recently finished incidents, by id.
    pub(super) by_id: HashMap<Uuid, Incident>,
    /// Finished ids, oldest first, for eviction.
    pub(super) finished: std::collections::VecDeque<Uuid>,
    /// Incidents not yet terminal.
    pub(super) active: u64,
    /// Everything finished so far.
    pub(super) totals: Totals,
}

impl IncidentBook {
    /// A book that continues from stored totals, with nothing open.
    pub(super) fn from_totals(totals: &Totals) -> Self {
        Self {
            totals: totals.clone(),
            ..Self::default()
        }
    }

    /// The impact meter's figures now.
    pub(super) fn metrics(&self) -> PerformanceMetrics {
        self.totals.metrics(self.active)
    }

    /// Records an incident's opening.
    pub(super) fn open(&mut self, incident: Incident) {
        self.active += 1;
        self.by_id.insert(incident.id, incident);
    }

    /// Records the end of incident `id`: its outcome on the incident and
    /// in the totals. `None` when the book does not know it or it already
    /// ended (a close is applied once).
    pub(super) fn close(&mut self, id: Uuid, outcome: Closing) -> Option<Incident> {
        let incident = self.by_id.get_mut(&id)?;
        if incident.status.is_terminal() {
            return None;
        }
        incident.status = outcome.status;
        incident.finished_at = Some(chrono::Utc::now());
        incident.resolution_time = Some(outcome.seconds);
        incident.cost_savings = outcome.savings;
        incident.root_cause = outcome.root_cause;
        incident.report = outcome.report;
        let closed = incident.clone();
        self.active = self
            .active
            .checked_sub(1)
            .expect("an incident the book knows open is counted active");
        self.count(&closed, outcome.phases);
        self.finished.push_back(id);
        if self.finished.len() > FINISHED_KEPT
            && let Some(oldest) = self.finished.pop_front()
        {
            self.by_id.remove(&oldest);
        }
        Some(closed)
    }

    /// Adds a closed incident to the totals behind the metrics.
    fn count(&mut self, closed: &Incident, phases: Option<(Duration, Duration)>) {
        let totals = &mut self.totals;
        if let Some((detect, diagnose)) = phases {
            totals.phase_samples += 1;
            totals.total_detect += detect.as_secs_f64();
            totals.total_diagnose += diagnose.as_secs_f64();
        }
        // Advice and watching are neither a recovery nor a failure of the
        // swarm's: nothing ran, and the metrics count what the swarm ran.
        if matches!(closed.status, IncidentStatus::Advised | IncidentStatus::Watching) {
            return;
        }
        if closed.status != IncidentStatus::Resolved {
            totals.failed += 1;
            return;
        }
        let seconds = closed.resolution_time.unwrap_or_default();
        totals.resolved += 1;
        totals.total_mttr += seconds;
        let scenario = closed.scenario_id.clone().unwrap_or_else(|| "ad_hoc".to_owned());
        let entry = totals.by_scenario.entry(scenario).or_default();
        entry.0 += 1;
        entry.1 += seconds;
        totals.total_savings += closed.cost_savings.unwrap_or_default();
    }
}

/// How an incident ended, as the book records it.
pub(super) struct Closing {
    /// The final status.
    pub status: IncidentStatus,
    /// Simulated seconds from open to close, to the tenth.
    pub seconds: f64,
    /// Dollars saved, when resolved.
    pub savings: Option<f64>,
    /// The root cause acted on, or first suspected.
    pub root_cause: Option<String>,
    /// The report, when one was written.
    pub report: Option<String>,
    /// Simulated time to the end of detection and of diagnosis.
    pub phases: Option<(Duration, Duration)>,
}

/// Most audits kept; the oldest go first.
const AUDITS_KEPT: usize = 10_000;

/// Finished incidents' audits, bounded.
#[derive(Default)]
pub(super) struct Audits {
    /// By incident.
    pub(super) by_id: HashMap<Uuid, Audit>,
    /// Incidents in the order their audits came, for eviction.
    pub(super) order: std::collections::VecDeque<Uuid>,
}

impl Audits {
    pub(super) fn insert(&mut self, id: Uuid, audit: Audit) {
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
