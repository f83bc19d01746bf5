//! Analytics: seed 003's metrics to track, computed from the store so they
//! hold across restarts and across servers sharing one database.
//!
//! - MTTR by incident type: seed 003's query (`AVG` of resolution time over
//!   resolved incidents, grouped by type); the type is the scenario.
//! - Healing success rate: resolved over resolved and failed (incidents a
//!   shutdown interrupted are not the swarm's verdict, so not counted).
//! - False-positive rate: remediation steps rolled back (their plan did not
//!   heal, so they were unnecessary) over all steps run.
//! - Latency SLO compliance: of the model service's requests, the share
//!   served while its p99 met 300 ms, over the newest health reports,
//!   weighted by its requests per second.

use engine::protocol::{
    ActionDetails, ActionStatus, Analytics, FinishedIncident, IncidentStatus, MODEL_LATENCY_SLO_MS, ServerMessage,
    TypeMttr,
};
use sqlx::Row;

use crate::{
    Store, StoreError,
    rows::{parse_time, wire},
};

/// Finished incidents returned for the trend charts.
pub const RECENT_INCIDENTS: i64 = 500;
/// Health reports the SLO figure is computed over: the newest hour at one
/// report every two seconds.
pub const SLO_REPORTS: i64 = 1_800;

impl Store {
    /// The analytics view over everything the store holds.
    pub async fn analytics(&self) -> Result<Analytics, StoreError> {
        let mut analytics = Analytics::default();
        for row in sqlx::query("SELECT status, COUNT(*) AS n FROM incidents WHERE status <> 'active' GROUP BY status")
            .fetch_all(&self.pool)
            .await?
        {
            let n = row.try_get::<i64, _>("n")? as u64;
            match wire::<IncidentStatus>("incident status", row.try_get("status")?)? {
                IncidentStatus::Resolved => analytics.resolved = n,
                IncidentStatus::Failed => analytics.failed = n,
                IncidentStatus::Interrupted => analytics.interrupted = n,
                IncidentStatus::Active | IncidentStatus::Advised | IncidentStatus::Watching => {}
            }
        }
        let finished = analytics.resolved + analytics.failed;
        analytics.healing_success_rate = (finished > 0).then(|| analytics.resolved as f64 / finished as f64);

        // Seed 003's MTTR query, over our schema.
        analytics.mttr_by_type = sqlx::query(
            "SELECT COALESCE(scenario_id, 'ad_hoc') AS incident_type, COUNT(*) AS n, \
             AVG(resolution_time) AS mttr FROM incidents WHERE status = 'resolved' \
             GROUP BY COALESCE(scenario_id, 'ad_hoc') ORDER BY incident_type",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            Ok(TypeMttr {
                incident_type: row.try_get("incident_type")?,
                resolved: row.try_get::<i64, _>("n")? as u64,
                mttr_seconds: (row.try_get::<f64, _>("mttr")? * 10.0).round() / 10.0,
            })
        })
        .collect::<Result<_, StoreError>>()?;

        // Steps applied, and steps undone by rollbacks, read from each
        // finished resolution action's typed details (old rows too: the
        // reader infers their kind).
        for row in sqlx::query("SELECT status, details FROM healing_actions")
            .fetch_all(&self.pool)
            .await?
        {
            let details: ActionDetails = serde_json::from_str(&row.try_get::<String, _>("details")?)
                .map_err(|e| StoreError::Corrupt(format!("healing action details: {e}")))?;
            let completed = row.try_get::<String, _>("status")? == ActionStatus::Completed.as_str();
            match details {
                ActionDetails::Step(step) if completed && step.error.is_none() => analytics.steps_run += 1,
                ActionDetails::Rollback(rollback) => analytics.steps_rolled_back += rollback.rolled_back.len() as u64,
                _ => {}
            }
        }
        analytics.false_positive_rate =
            (analytics.steps_run > 0).then(|| analytics.steps_rolled_back as f64 / analytics.steps_run as f64);

        let (mut served, mut within) = (0.0, 0.0);
        for row in sqlx::query("SELECT body FROM events WHERE kind = 'twin_health' ORDER BY seq DESC LIMIT $1")
            .bind(SLO_REPORTS)
            .fetch_all(&self.pool)
            .await?
        {
            let message: ServerMessage = serde_json::from_str(&row.try_get::<String, _>("body")?)
                .map_err(|e| StoreError::Corrupt(format!("health report: {e}")))?;
            let ServerMessage::TwinHealth { services } = message else {
                continue;
            };
            analytics.health_reports += 1;
            for model in services.iter().filter(|s| s.kind == "model") {
                served += model.rps;
                if model.p99_ms <= MODEL_LATENCY_SLO_MS {
                    within += model.rps;
                }
            }
        }
        analytics.latency_slo_compliance = (served > 0.0).then(|| within / served);

        let mut recent = sqlx::query(
            "SELECT COALESCE(scenario_id, 'ad_hoc') AS incident_type, status, finished_at, resolution_time \
             FROM incidents WHERE status IN ('resolved', 'failed') AND finished_at IS NOT NULL \
             ORDER BY created_seq DESC LIMIT $1",
        )
        .bind(RECENT_INCIDENTS)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            Ok(FinishedIncident {
                incident_type: row.try_get("incident_type")?,
                status: wire("incident status", row.try_get("status")?)?,
                finished_at: parse_time(&row.try_get::<String, _>("finished_at")?)?,
                resolution_seconds: row.try_get::<Option<f64>, _>("resolution_time")?.unwrap_or_default(),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        recent.reverse();
        analytics.recent = recent;
        Ok(analytics)
    }
}
