//! Reading: what a restarted engine picks up, and what the API serves.

use engine::{
    journal::{Recovered, Totals},
    protocol::{
        ActionDetails, ActionStatus, AgentType, AuditEntry, EventPage, IncidentDetail, IncidentPage, IncidentStatus,
        IncidentTelemetry, MemoryEntry, ServerMessage, Severity, TimelineRun, cause_stories,
    },
};
use sqlx::{AnyConnection, Row};
use uuid::Uuid;

use crate::{
    Store, StoreError,
    rows::{AUDIT_COLUMNS, INCIDENT_COLUMNS, audit_entry, envelope, incident, timeline_run},
};

/// Which incidents to list, and which page.
#[derive(Debug, Clone, Default)]
pub struct IncidentFilter {
    pub status: Option<IncidentStatus>,
    pub severity: Option<Severity>,
    pub scenario: Option<String>,
    /// Page size.
    pub limit: u32,
    /// Incidents to skip, newest first.
    pub offset: u64,
}

/// Which audit entries to list: newest first, before `before_seq` when
/// paging back.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub incident_id: Option<Uuid>,
    pub approval_id: Option<Uuid>,
    /// Only entries older than this `seq`.
    pub before_seq: Option<u64>,
    /// Page size.
    pub limit: u32,
}

impl Store {
    /// The log's epoch and newest `seq`.
    pub async fn head(&self) -> Result<(Uuid, u64), StoreError> {
        head_in(&mut *self.pool.acquire().await?).await
    }

    /// Where a starting engine picks up: the newest `tail` events, the
    /// newest `incidents`, the ones left open, the totals, and the newest
    /// `memory` entries of the incident memory. Read in one snapshot, so
    /// that on a store other instances write meanwhile, the totals, the
    /// memory and the tail all stop at the same `seq` (the tail publishes
    /// what follows it).
    pub async fn recover(&self, tail: usize, incidents: usize, memory: usize) -> Result<Recovered, StoreError> {
        let mut tx = self.pool.begin().await?;
        if self.backend == crate::Backend::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *tx)
                .await?;
        }
        let conn: &mut AnyConnection = &mut tx;
        let (epoch, last_seq) = head_in(conn).await?;
        let mut events = sqlx::query("SELECT seq, ts, body FROM events ORDER BY seq DESC LIMIT $1")
            .bind(tail as i64)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(envelope)
            .collect::<Result<Vec<_>, _>>()?;
        events.reverse();
        let newest = sqlx::query(&format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents ORDER BY created_seq DESC LIMIT $1"
        ))
        .bind(incidents as i64)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(incident)
        .collect::<Result<Vec<_>, _>>()?;
        // With other instances on the store, an open incident (or run)
        // under a lease is its owner's, alive or not: the reapers settle
        // dead owners'. Only what no lease covers was left by a lone run.
        let shared = self.member.is_some();
        let open = sqlx::query(&format!(
            "SELECT {INCIDENT_COLUMNS}, CAST(CASE WHEN EXISTS (SELECT 1 FROM leases WHERE leases.subject = incidents.id) \
             THEN 1 ELSE 0 END AS BIGINT) AS leased FROM incidents WHERE status = 'active' ORDER BY created_seq"
        ))
        .fetch_all(&mut *conn)
        .await?;
        let (mut unfinished, mut owned_elsewhere) = (Vec::new(), Vec::new());
        for row in &open {
            let leased: i64 = row.try_get("leased")?;
            match shared && leased == 1 {
                true => owned_elsewhere.push(incident(row)?),
                false => unfinished.push(incident(row)?),
            }
        }
        let unleased_runs = match shared {
            true => " AND NOT EXISTS (SELECT 1 FROM leases WHERE leases.subject = timeline_runs.run_id)",
            false => "",
        };
        let unfinished_runs = sqlx::query(&format!(
            "SELECT body FROM timeline_runs WHERE state NOT IN ('completed', 'cancelled', 'interrupted'){unleased_runs} \
             ORDER BY started_seq"
        ))
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(timeline_run)
        .collect::<Result<Vec<_>, _>>()?;
        let totals = totals_in(conn).await?;
        let memory = memory_in(conn, memory).await?;
        tx.commit().await?;
        Ok(Recovered {
            epoch,
            last_seq,
            tail: events,
            incidents: newest,
            unfinished,
            owned_elsewhere,
            unfinished_runs,
            totals,
            memory,
        })
    }

    /// The newest `limit` entries of the incident memory, oldest first.
    pub async fn memory(&self, limit: usize) -> Result<Vec<MemoryEntry>, StoreError> {
        memory_in(&mut *self.pool.acquire().await?, limit).await
    }

    /// A timeline run as last reported.
    pub async fn timeline_run(&self, run_id: Uuid) -> Result<Option<TimelineRun>, StoreError> {
        sqlx::query("SELECT body FROM timeline_runs WHERE run_id = $1")
            .bind(run_id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(timeline_run)
            .transpose()
    }

    /// The newest `limit` timeline runs, newest first; only those of
    /// `timeline_id` when given (to compare runs of one timeline).
    pub async fn timeline_runs(&self, timeline_id: Option<&str>, limit: u32) -> Result<Vec<TimelineRun>, StoreError> {
        let rows = match timeline_id {
            Some(id) => {
                sqlx::query("SELECT body FROM timeline_runs WHERE timeline_id = $1 ORDER BY started_seq DESC LIMIT $2")
                    .bind(id)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query("SELECT body FROM timeline_runs ORDER BY started_seq DESC LIMIT $1")
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(timeline_run).collect()
    }

    /// The impact meter's totals over every finished incident.
    pub async fn totals(&self) -> Result<Totals, StoreError> {
        totals_in(&mut *self.pool.acquire().await?).await
    }

    /// A page of incidents, newest first.
    pub async fn incidents(&self, filter: &IncidentFilter) -> Result<IncidentPage, StoreError> {
        // Placeholders are numbered by hand: see `rows::placeholders`.
        let mut values: Vec<String> = Vec::new();
        let mut condition = String::from(" WHERE 1 = 1");
        for (column, value) in [
            ("status", filter.status.map(|s| s.as_str().to_owned())),
            ("severity", filter.severity.map(|s| s.as_str().to_owned())),
            ("scenario_id", filter.scenario.clone()),
        ] {
            if let Some(value) = value {
                values.push(value);
                condition.push_str(&format!(" AND {column} = ${}", values.len()));
            }
        }
        let count_sql = format!("SELECT COUNT(*) AS n FROM incidents{condition}");
        let count = values.iter().fold(sqlx::query(&count_sql), |q, v| q.bind(v.clone()));
        let total: i64 = count.fetch_one(&self.pool).await?.try_get("n")?;
        let page_sql = format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents{condition} ORDER BY created_seq DESC LIMIT ${} OFFSET ${}",
            values.len() + 1,
            values.len() + 2
        );
        let items = values
            .iter()
            .fold(sqlx::query(&page_sql), |q, v| q.bind(v.clone()))
            .bind(i64::from(filter.limit))
            .bind(filter.offset.min(i64::MAX as u64) as i64)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(incident)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(IncidentPage {
            items,
            total: total as u64,
            limit: filter.limit,
            offset: filter.offset,
        })
    }

    /// One incident with its timeline, or `None` when there is no such id.
    pub async fn incident(&self, id: Uuid) -> Result<Option<IncidentDetail>, StoreError> {
        let Some(row) = sqlx::query(&format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let incident = incident(&row)?;
        let timeline = sqlx::query("SELECT seq, ts, body FROM events WHERE incident_id = $1 ORDER BY seq")
            .bind(id.to_string())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(envelope)
            .collect::<Result<Vec<_>, _>>()?;
        let mut hypotheses = Vec::new();
        let mut votes = Vec::new();
        let mut actions = Vec::new();
        for event in &timeline {
            match &event.message {
                ServerMessage::Consensus { round, .. } => votes.push(round.clone()),
                ServerMessage::AgentAction { action, .. } if action.status != ActionStatus::InProgress => {
                    match action.agent_type {
                        AgentType::Diagnosis => {
                            if let ActionDetails::Diagnosis(diagnosis) = &action.details {
                                hypotheses.clone_from(&diagnosis.hypotheses);
                            }
                        }
                        AgentType::Resolution => actions.push(action.clone()),
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        let mut audit = self
            .audit_log(&AuditFilter {
                incident_id: Some(id),
                limit: u32::MAX,
                ..AuditFilter::default()
            })
            .await?;
        audit.reverse();
        Ok(Some(IncidentDetail {
            causes: cause_stories(&timeline),
            incident,
            timeline,
            hypotheses,
            votes,
            actions,
            audit,
        }))
    }

    /// A closed incident's chart window, if it was kept.
    pub async fn incident_telemetry(&self, id: Uuid) -> Result<Option<IncidentTelemetry>, StoreError> {
        let Some(row) = sqlx::query("SELECT body FROM incident_telemetry WHERE incident_id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let body: String = row.try_get("body")?;
        serde_json::from_str(&body)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("incident telemetry: {e}")))
    }

    /// Governance decisions, newest first.
    pub async fn audit_log(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        let sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log \
             WHERE ($1 IS NULL OR incident_id = $1) AND ($2 IS NULL OR approval_id = $2) AND seq < $3 \
             ORDER BY seq DESC LIMIT $4"
        );
        sqlx::query(&sql)
            .bind(filter.incident_id.map(|id| id.to_string()))
            .bind(filter.approval_id.map(|id| id.to_string()))
            .bind(filter.before_seq.map_or(i64::MAX, |s| s.min(i64::MAX as u64) as i64))
            .bind(i64::from(filter.limit))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(audit_entry)
            .collect()
    }

    /// Up to `limit` events after `since`, oldest first.
    pub async fn events_since(&self, since: u64, limit: u32) -> Result<EventPage, StoreError> {
        let events = sqlx::query("SELECT seq, ts, body FROM events WHERE seq > $1 ORDER BY seq LIMIT $2")
            .bind(since.min(i64::MAX as u64) as i64)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(envelope)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(EventPage {
            events,
            last_seq: self.head().await?.1,
        })
    }
}

/// The log's epoch and newest `seq`, read on `conn`.
async fn head_in(conn: &mut AnyConnection) -> Result<(Uuid, u64), StoreError> {
    let row = sqlx::query("SELECT epoch, last_seq FROM log_head WHERE id = 1")
        .fetch_one(&mut *conn)
        .await?;
    let epoch: String = row.try_get("epoch")?;
    let last: i64 = row.try_get("last_seq")?;
    Ok((
        epoch.parse().map_err(|e| StoreError::Corrupt(format!("epoch: {e}")))?,
        last as u64,
    ))
}

/// The newest `limit` entries of the incident memory, oldest first, read on `conn`.
async fn memory_in(conn: &mut AnyConnection, limit: usize) -> Result<Vec<MemoryEntry>, StoreError> {
    let mut entries = sqlx::query("SELECT body FROM incident_memory ORDER BY recorded_seq DESC LIMIT $1")
        .bind(limit as i64)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|row| {
            let body: String = row.try_get("body")?;
            serde_json::from_str(&body).map_err(|e| StoreError::Corrupt(format!("incident_memory: {e}")))
        })
        .collect::<Result<Vec<MemoryEntry>, StoreError>>()?;
    entries.reverse();
    Ok(entries)
}

/// The impact meter's totals over every finished incident, read on `conn`.
async fn totals_in(conn: &mut AnyConnection) -> Result<Totals, StoreError> {
    let mut totals = Totals::default();
    let by_status = sqlx::query(
        "SELECT status, COUNT(*) AS n, COALESCE(SUM(resolution_time), 0.0) AS mttr, \
         COALESCE(SUM(cost_savings), 0.0) AS savings FROM incidents WHERE status <> 'active' GROUP BY status",
    )
    .fetch_all(&mut *conn)
    .await?;
    for row in &by_status {
        let status: String = row.try_get("status")?;
        let n: i64 = row.try_get("n")?;
        if status == IncidentStatus::Resolved.as_str() {
            totals.resolved = n as u64;
            totals.total_mttr = row.try_get("mttr")?;
            totals.total_savings = row.try_get("savings")?;
        } else if status != IncidentStatus::Advised.as_str() && status != IncidentStatus::Watching.as_str() {
            // Advice and watching are neither: the metrics count what the
            // swarm ran.
            totals.failed += n as u64;
        }
    }
    let phases = sqlx::query(
        "SELECT COUNT(*) AS n, COALESCE(SUM(time_to_detect), 0.0) AS detect, \
         COALESCE(SUM(time_to_diagnose), 0.0) AS diagnose FROM incidents \
         WHERE time_to_detect IS NOT NULL AND time_to_diagnose IS NOT NULL",
    )
    .fetch_one(&mut *conn)
    .await?;
    totals.phase_samples = phases.try_get::<i64, _>("n")? as u64;
    totals.total_detect = phases.try_get("detect")?;
    totals.total_diagnose = phases.try_get("diagnose")?;
    let by_scenario = sqlx::query(
        "SELECT COALESCE(scenario_id, 'ad_hoc') AS scenario, COUNT(*) AS n, \
         COALESCE(SUM(resolution_time), 0.0) AS mttr FROM incidents WHERE status = 'resolved' \
         GROUP BY COALESCE(scenario_id, 'ad_hoc')",
    )
    .fetch_all(&mut *conn)
    .await?;
    for row in &by_scenario {
        let n: i64 = row.try_get("n")?;
        totals
            .by_scenario
            .insert(row.try_get("scenario")?, (n as u64, row.try_get("mttr")?));
    }
    Ok(totals)
}
