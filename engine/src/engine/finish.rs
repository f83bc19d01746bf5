//! Finishing an incident: its chart window kept, the memory taught, its
//! audit filed, then its close recorded in the book and published with
//! the new metrics.

use super::{book::Closing, *};
use crate::orchestrator::EndState;

impl Engine {
    /// Closes an incident: records its outcome, then publishes its final
    /// status and the new metrics, atomically with respect to snapshots.
    pub(crate) fn finish(&self, id: Uuid, verdict: Verdict, case: &Case, end: Option<EndState>) {
        let status = verdict.status;
        let seconds = tenths(verdict.elapsed);
        self.close_chart(id, &verdict);
        self.remember(id, &verdict, case, seconds);
        self.shared
            .audits
            .lock()
            .expect("audit lock poisoned")
            .insert(id, Audit::of(&verdict, case, end));
        let mut book = self.shared.book.lock().expect("incident book lock poisoned");
        let Some(severity_and_reach) = book
            .by_id
            .get(&id)
            .map(|incident| (incident.severity, incident.affected_services.len()))
        else {
            warn!(%id, "finish called for an unknown incident");
            return;
        };
        let savings = (status == IncidentStatus::Resolved).then(|| {
            self.shared
                .impact
                .cost_savings(severity_and_reach.0, severity_and_reach.1, seconds)
        });
        let closing = Closing {
            status,
            seconds,
            savings,
            root_cause: verdict
                .acted_on
                .as_ref()
                .or(verdict.first_hypothesis.as_ref())
                .map(RootCause::label),
            report: (!verdict.report.is_empty()).then_some(verdict.report),
            // As the event carries them, so an instance that folds the
            // event counts what this one counts.
            phases: (verdict.detected_after.zip(verdict.diagnosed_after))
                .map(|(detect, diagnose)| (as_tenths(detect), as_tenths(diagnose))),
        };
        // Closed once: a second close of the same incident changes nothing.
        let Some(closed) = book.close(id, closing) else {
            return;
        };
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
            root_cause: closed.root_cause,
            report: closed.report,
            time_to_detect: verdict.detected_after.map(tenths),
            time_to_diagnose: verdict.diagnosed_after.map(tenths),
        });
        self.shared.log.append(ServerMessage::PerformanceMetrics {
            metrics: book.metrics(),
        });
    }

    /// Ends the incident's chart window and keeps it in the store.
    fn close_chart(&self, id: Uuid, verdict: &Verdict) {
        let Some(twin) = self.shared.estates.shared() else {
            return;
        };
        let closed = twin.with(|estate| {
            self.shared.charts.close(
                id,
                estate,
                verdict.elapsed.as_secs_f64(),
                format!("incident {}", verdict.status.as_str()),
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

    /// Teaches the memory the fixes that ran; an interrupted incident's do
    /// not count (it never learned how they ended).
    fn remember(&self, id: Uuid, verdict: &Verdict, case: &Case, seconds: f64) {
        let Some(detection) = &case.detection else {
            return;
        };
        if verdict.status == IncidentStatus::Interrupted || verdict.fixes.is_empty() {
            return;
        }
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
}

/// `duration` rounded to the tenth of a second.
fn as_tenths(duration: Duration) -> Duration {
    Duration::from_secs_f64(tenths(duration))
}

/// Simulated time in seconds, to the tenth, as reports show it.
fn tenths(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 10.0).round() / 10.0
}

impl Audit {
    /// How the incident went, for the evaluation to score.
    fn of(verdict: &Verdict, case: &Case, end: Option<EndState>) -> Self {
        let healed = end.as_ref().map(|end| end.violations.is_empty());
        let (violations, worsened) = end.map(|end| (end.violations, end.worsened)).unwrap_or_default();
        Self {
            scenario_id: case.incident.scenario_id.clone(),
            status: verdict.status,
            elapsed: verdict.elapsed,
            first_hypothesis: verdict.first_hypothesis.clone(),
            acted_on: verdict.acted_on.clone(),
            executed: verdict.executed.clone(),
            rollbacks: verdict.rollbacks,
            approval_wait: verdict.approval_wait,
            healed,
            violations,
            worsened,
        }
    }
}
