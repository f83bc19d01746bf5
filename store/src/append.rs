//! Writing: the log head, and batches of events with their projections.

use engine::{
    journal::{Stored, Unsequenced},
    protocol::{ActionStatus, AgentType, AuditEntry, IncidentTelemetry, ServerMessage},
};
use sqlx::{Any, Row, Transaction};
use uuid::Uuid;

use crate::{Store, StoreError, rows::timestamp};

/// Rows per multi-row `INSERT` (6 parameters each: well under SQLite's and
/// PostgreSQL's parameter limits).
const INSERT_CHUNK: usize = 1_000;

impl Store {
    /// Creates the log head on a fresh database.
    pub(crate) async fn init_head(&self) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO log_head (id, epoch, last_seq) VALUES (1, $1, 0) ON CONFLICT (id) DO NOTHING")
            .bind(Uuid::new_v4().to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Keeps a closed incident's chart window (once; a repeat replaces it).
    pub(crate) async fn put_telemetry(&self, telemetry: &IncidentTelemetry) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO incident_telemetry (incident_id, body) VALUES ($1, $2) \
             ON CONFLICT (incident_id) DO UPDATE SET body = excluded.body",
        )
        .bind(telemetry.incident_id.to_string())
        .bind(serde_json::to_string(telemetry).expect("protocol types always serialize"))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Stores `batch` and its projections in one transaction, but for the
    /// events whose fence does not hold; says where it put them.
    pub(crate) async fn append_batch(&self, batch: &[Unsequenced]) -> Result<Stored, StoreError> {
        if batch.is_empty() {
            return Ok(Stored::all(self.head().await?.1 + 1));
        }
        let mut tx = self.pool.begin().await?;
        let refused = self.check_fences(&mut tx, batch).await?;
        let accepted: Vec<&Unsequenced> = (batch.iter().enumerate())
            .filter(|(index, _)| !refused.contains(index))
            .map(|(_, event)| event)
            .collect();
        if accepted.is_empty() {
            // Nothing to number: the head stays, and so does every lease.
            tx.rollback().await?;
            return Ok(Stored {
                first: self.head().await?.1 + 1,
                refused,
            });
        }
        let last: i64 = sqlx::query("UPDATE log_head SET last_seq = last_seq + $1 WHERE id = 1 RETURNING last_seq")
            .bind(accepted.len() as i64)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let first = last - accepted.len() as i64 + 1;
        let origin = self.instance();
        for (chunk_index, chunk) in accepted.chunks(INSERT_CHUNK).enumerate() {
            let base = first + (chunk_index * INSERT_CHUNK) as i64;
            let sql = format!(
                "INSERT INTO events (seq, ts, kind, incident_id, body, origin) VALUES {}",
                crate::rows::placeholders(chunk.len(), 6)
            );
            let mut insert = sqlx::query(&sql);
            for (offset, event) in chunk.iter().enumerate() {
                insert = insert
                    .bind(base + offset as i64)
                    .bind(timestamp(event.ts))
                    .bind(event.message.kind())
                    .bind(event.message.incident_id().map(|id| id.to_string()))
                    .bind(serde_json::to_string(&event.message).expect("protocol types always serialize"))
                    .bind(origin);
            }
            insert.execute(&mut *tx).await?;
        }
        for (offset, event) in accepted.iter().enumerate() {
            project(&mut tx, first + offset as i64, event).await?;
        }
        self.notify_appended(&mut tx, last).await?;
        tx.commit().await?;
        Ok(Stored {
            first: first as u64,
            refused,
        })
    }
}

/// Ends `subject`'s lease with its final event (no row on SQLite, or for a
/// subject opened before leases).
async fn release_lease(tx: &mut Transaction<'static, Any>, subject: Uuid) -> Result<(), StoreError> {
    sqlx::query("UPDATE leases SET released = TRUE WHERE subject = $1")
        .bind(subject.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Writes the rows one event implies.
async fn project(tx: &mut Transaction<'static, Any>, seq: i64, event: &Unsequenced) -> Result<(), StoreError> {
    if let Some(entry) = AuditEntry::from_event(seq as u64, event.ts, &event.message) {
        sqlx::query(
            "INSERT INTO audit_log (seq, at, incident_id, approval_id, kind, actor, decision, reason, plan, evidence) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(seq)
        .bind(timestamp(entry.at))
        .bind(entry.incident_id.to_string())
        .bind(entry.approval_id.map(|id| id.to_string()))
        .bind(&entry.kind)
        .bind(&entry.actor)
        .bind(&entry.decision)
        .bind(&entry.reason)
        .bind(&entry.plan)
        .bind(entry.evidence.to_string())
        .execute(&mut **tx)
        .await?;
        return Ok(());
    }
    match &event.message {
        ServerMessage::IncidentCreated { incident } => {
            sqlx::query(
                "INSERT INTO incidents (id, created_seq, title, severity, affected_services, scenario_id, status, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(incident.id.to_string())
            .bind(seq)
            .bind(&incident.title)
            .bind(incident.severity.as_str())
            .bind(serde_json::to_string(&incident.affected_services).expect("strings serialize"))
            .bind(incident.scenario_id.as_deref())
            .bind(incident.status.as_str())
            .bind(timestamp(incident.created_at))
            .execute(&mut **tx)
            .await?;
        }
        ServerMessage::IncidentStatus {
            incident_id,
            status,
            resolution_time,
            cost_savings,
            root_cause,
            report,
            time_to_detect,
            time_to_diagnose,
        } => {
            sqlx::query(
                "UPDATE incidents SET status = $2, finished_at = $3, resolution_time = $4, cost_savings = $5, \
                 root_cause = $6, report = $7, time_to_detect = $8, time_to_diagnose = $9 WHERE id = $1",
            )
            .bind(incident_id.to_string())
            .bind(status.as_str())
            .bind(status.is_terminal().then(|| timestamp(event.ts)))
            .bind(*resolution_time)
            .bind(*cost_savings)
            .bind(root_cause.as_deref())
            .bind(report.as_deref())
            .bind(*time_to_detect)
            .bind(*time_to_diagnose)
            // Not cached: sqlx 0.8.6's `Any` driver binds a missing `f64`
            // as a `real`, and a statement PostgreSQL first prepared that
            // way refuses every present `f64` after it.
            .persistent(false)
            .execute(&mut **tx)
            .await?;
            if status.is_terminal() {
                release_lease(tx, *incident_id).await?;
            }
        }
        ServerMessage::Consensus { incident_id, round } => {
            for vote in &round.votes {
                sqlx::query(
                    "INSERT INTO consensus_votes (seq, incident_id, plan, passed, agent, choice, reason, injected_fault) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(seq)
                .bind(incident_id.to_string())
                .bind(&round.plan)
                .bind(round.passed)
                .bind(vote.agent.as_str())
                .bind(serde_json::to_value(vote.choice).expect("enums serialize").as_str().unwrap_or_default().to_owned())
                .bind(&vote.reason)
                .bind(vote.injected_fault.as_deref())
                .execute(&mut **tx)
                .await?;
            }
        }
        ServerMessage::AgentAction { incident_id, action } if action.status != ActionStatus::InProgress => {
            let details = serde_json::to_string(&action.details).expect("details serialize");
            match action.agent_type {
                AgentType::Resolution => {
                    sqlx::query(
                        "INSERT INTO healing_actions (seq, incident_id, action_id, description, status, duration_ms, details) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(seq)
                    .bind(incident_id.to_string())
                    .bind(action.action_id.to_string())
                    .bind(&action.description)
                    .bind(action.status.as_str())
                    .bind(action.duration_ms.map(|ms| ms as i64))
                    .bind(details)
                    .execute(&mut **tx)
                    .await?;
                }
                AgentType::Communication => {
                    sqlx::query(
                        "INSERT INTO notifications (seq, incident_id, description, status, details) VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(seq)
                    .bind(incident_id.to_string())
                    .bind(&action.description)
                    .bind(action.status.as_str())
                    .bind(details)
                    .execute(&mut **tx)
                    .await?;
                }
                _ => {}
            }
        }
        ServerMessage::TimelineProgress { run } => {
            if run.state.is_final() {
                release_lease(tx, run.run_id).await?;
            }
            sqlx::query(
                "INSERT INTO timeline_runs (run_id, timeline_id, started_seq, state, body) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (run_id) DO UPDATE SET state = excluded.state, body = excluded.body",
            )
            .bind(run.run_id.to_string())
            .bind(&run.timeline_id)
            .bind(seq)
            .bind(run.state.as_str())
            .bind(serde_json::to_string(run).expect("protocol types always serialize"))
            .execute(&mut **tx)
            .await?;
        }
        ServerMessage::ConfigChange { incident_id, change } => {
            sqlx::query(
                "INSERT INTO config_history (seq, incident_id, service, setting, from_value, to_value, cause) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(seq)
            .bind(incident_id.map(|id| id.to_string()))
            .bind(&change.service)
            .bind(&change.key)
            .bind(&change.from)
            .bind(&change.to)
            .bind(&change.cause)
            .execute(&mut **tx)
            .await?;
        }
        ServerMessage::MemoryRecorded { entry, evicted } => {
            sqlx::query(
                "INSERT INTO incident_memory (incident_id, recorded_seq, healed_by, body) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (incident_id) DO UPDATE SET recorded_seq = excluded.recorded_seq, \
                 healed_by = excluded.healed_by, body = excluded.body",
            )
            .bind(entry.incident_id.to_string())
            .bind(seq)
            .bind(entry.healing_fix().map(|f| format!("{} on {}", f.fault, f.service)))
            .bind(serde_json::to_string(entry).expect("protocol types always serialize"))
            .execute(&mut **tx)
            .await?;
            for id in evicted {
                sqlx::query("DELETE FROM incident_memory WHERE incident_id = $1")
                    .bind(id.to_string())
                    .execute(&mut **tx)
                    .await?;
            }
        }
        ServerMessage::MemoryCleared { .. } => {
            sqlx::query("DELETE FROM incident_memory WHERE recorded_seq < $1")
                .bind(seq)
                .execute(&mut **tx)
                .await?;
        }
        _ => {}
    }
    Ok(())
}
