//! The store's reads: `GET /api/incidents` (a filtered page, newest first),
//! `GET /api/incidents/{id}` (one incident with its whole story) and
//! `GET /api/events?since=SEQ&limit=N` (the log, for clients that poll).

use axum::{
    Json,
    extract::{
        Path, Query, State,
        rejection::{PathRejection, QueryRejection},
    },
    http::StatusCode,
};
use engine::protocol::{IncidentStatus, Severity};
use serde::Deserialize;
use store::{EventPage, IncidentDetail, IncidentFilter, IncidentPage, Store};
use uuid::Uuid;

use crate::problem::Problem;

/// Largest page of incidents.
pub const MAX_INCIDENT_PAGE: u32 = 200;
/// Largest page of events.
pub const MAX_EVENT_PAGE: u32 = 1_000;

/// `GET /api/incidents` parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentQuery {
    status: Option<IncidentStatus>,
    severity: Option<Severity>,
    scenario: Option<String>,
    /// Page size, 1 to 200 (default 50).
    limit: Option<u32>,
    /// Incidents to skip (default 0).
    offset: Option<u64>,
}

const INCIDENT_FIELDS: [&str; 5] = ["status", "severity", "scenario", "limit", "offset"];

/// A page size within `1..=max`, or the problem with it.
fn page_size(limit: Option<u32>, default: u32, max: u32) -> Result<u32, Problem> {
    match limit.unwrap_or(default) {
        n if (1..=max).contains(&n) => Ok(n),
        n => Err(Problem::field(
            StatusCode::BAD_REQUEST,
            "limit",
            format!("{n} is out of range: use 1 to {max}"),
        )),
    }
}

pub async fn list_incidents(
    State(store): State<Store>,
    query: Result<Query<IncidentQuery>, QueryRejection>,
) -> Result<Json<IncidentPage>, Problem> {
    let Query(query) = query.map_err(|r| Problem::query(&r, &INCIDENT_FIELDS))?;
    let filter = IncidentFilter {
        status: query.status,
        severity: query.severity,
        scenario: query.scenario,
        limit: page_size(query.limit, 50, MAX_INCIDENT_PAGE)?,
        offset: query.offset.unwrap_or(0),
    };
    store.incidents(&filter).await.map(Json).map_err(|e| Problem::store(&e))
}

pub async fn get_incident(
    State(store): State<Store>,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<Json<IncidentDetail>, Problem> {
    let Path(id) = id.map_err(|r| Problem::field(StatusCode::BAD_REQUEST, "id", r.body_text()))?;
    match store.incident(id).await {
        Ok(Some(detail)) => Ok(Json(detail)),
        Ok(None) => Err(Problem::field(StatusCode::NOT_FOUND, "id", format!("no incident {id}"))),
        Err(e) => Err(Problem::store(&e)),
    }
}

/// `GET /api/events` parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    /// The last `seq` the client has (default 0: from the start).
    since: Option<u64>,
    /// Page size, 1 to 1000 (default 500).
    limit: Option<u32>,
}

pub async fn events(
    State(store): State<Store>,
    query: Result<Query<EventQuery>, QueryRejection>,
) -> Result<Json<EventPage>, Problem> {
    let Query(query) = query.map_err(|r| Problem::query(&r, &["since", "limit"]))?;
    let limit = page_size(query.limit, 500, MAX_EVENT_PAGE)?;
    store
        .events_since(query.since.unwrap_or(0), limit)
        .await
        .map(Json)
        .map_err(|e| Problem::store(&e))
}
