//! Between rows and protocol types. Timestamps are stored as RFC 3339 text
//! in UTC with nanoseconds (portable, exact, and sorts as text); enums by
//! their wire names; lists and payloads as JSON text.

use chrono::{DateTime, SecondsFormat, Utc};
use engine::protocol::{AuditEntry, Envelope, Incident, ServerMessage, TimelineRun};
use serde::de::DeserializeOwned;
use sqlx::{Row, any::AnyRow};

use crate::StoreError;

/// The columns [`incident`] reads, in a `SELECT`.
pub(crate) const INCIDENT_COLUMNS: &str = "id, title, severity, affected_services, scenario_id, status, created_at, \
     finished_at, resolution_time, cost_savings, root_cause, report";

/// `($1, $2), ($3, $4)` for `rows` rows of `columns` parameters. sqlx's
/// `QueryBuilder` writes `?` for the `Any` driver, which PostgreSQL
/// rejects; `$n` works on both.
pub(crate) fn placeholders(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|row| {
            let cells: Vec<String> = (1..=columns).map(|c| format!("${}", row * columns + c)).collect();
            format!("({})", cells.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

fn corrupt(what: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {error}"))
}

pub(crate) fn parse_time(text: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| corrupt("timestamp", e))
}

/// An enum from its wire name.
pub(crate) fn wire<T: DeserializeOwned>(what: &str, name: String) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(name)).map_err(|e| corrupt(what, e))
}

/// An incident from a row of [`INCIDENT_COLUMNS`].
pub(crate) fn incident(row: &AnyRow) -> Result<Incident, StoreError> {
    let id: String = row.try_get("id")?;
    let services: String = row.try_get("affected_services")?;
    let created_at: String = row.try_get("created_at")?;
    let finished_at: Option<String> = row.try_get("finished_at")?;
    Ok(Incident {
        id: id.parse().map_err(|e| corrupt("incident id", e))?,
        title: row.try_get("title")?,
        severity: wire("severity", row.try_get("severity")?)?,
        affected_services: serde_json::from_str(&services).map_err(|e| corrupt("affected_services", e))?,
        scenario_id: row.try_get("scenario_id")?,
        status: wire("status", row.try_get("status")?)?,
        created_at: parse_time(&created_at)?,
        finished_at: finished_at.as_deref().map(parse_time).transpose()?,
        resolution_time: row.try_get("resolution_time")?,
        cost_savings: row.try_get("cost_savings")?,
        root_cause: row.try_get("root_cause")?,
        report: row.try_get("report")?,
    })
}

/// A timeline run from a row with its `body`.
pub(crate) fn timeline_run(row: &AnyRow) -> Result<TimelineRun, StoreError> {
    let body: String = row.try_get("body")?;
    serde_json::from_str(&body).map_err(|e| corrupt("a timeline run", e))
}

/// An event from a row of `seq, ts, body`.
pub(crate) fn envelope(row: &AnyRow) -> Result<Envelope, StoreError> {
    let seq: i64 = row.try_get("seq")?;
    let ts: String = row.try_get("ts")?;
    let body: String = row.try_get("body")?;
    let message: ServerMessage = serde_json::from_str(&body).map_err(|e| corrupt(&format!("event {seq}"), e))?;
    Ok(Envelope {
        seq: seq as u64,
        ts: parse_time(&ts)?,
        message,
    })
}

/// The audit log's columns, in the order [`audit_entry`] reads them.
pub(crate) const AUDIT_COLUMNS: &str =
    "seq, at, incident_id, approval_id, kind, actor, decision, reason, plan, evidence";

/// An audit entry from a row of [`AUDIT_COLUMNS`].
pub(crate) fn audit_entry(row: &AnyRow) -> Result<AuditEntry, StoreError> {
    let seq: i64 = row.try_get("seq")?;
    let at: String = row.try_get("at")?;
    let incident_id: String = row.try_get("incident_id")?;
    let approval_id: Option<String> = row.try_get("approval_id")?;
    let evidence: String = row.try_get("evidence")?;
    Ok(AuditEntry {
        seq: seq as u64,
        at: parse_time(&at)?,
        incident_id: incident_id.parse().map_err(|e| corrupt("audit incident id", e))?,
        approval_id: approval_id
            .map(|id| id.parse().map_err(|e| corrupt("audit approval id", e)))
            .transpose()?,
        kind: row.try_get("kind")?,
        actor: row.try_get("actor")?,
        decision: row.try_get("decision")?,
        reason: row.try_get("reason")?,
        plan: row.try_get("plan")?,
        evidence: serde_json::from_str(&evidence).map_err(|e| corrupt("audit evidence", e))?,
    })
}
