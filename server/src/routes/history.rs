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
use engine::protocol::{IncidentStatus, IncidentTelemetry, Severity};
use serde::Deserialize;
use store::{EventPage, IncidentDetail, IncidentFilter, IncidentPage, Store};
use uuid::Uuid;

use crate::problem::Problem;

/// Largest page of incidents.
pub const MAX_INCIDENT_PAGE: u32 = 200;
/// Largest page of events.
pub const MAX_EVENT_PAGE: u32 = 1_000;

/// `GET /api/incidents` parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct IncidentQuery {
    /// Only incidents with this status.
    status: Option<IncidentStatus>,
    /// Only incidents of this severity.
    severity: Option<Severity>,
    /// Only incidents from this catalog scenario.
    #[param(min_length = 1, max_length = 64, pattern = "^[a-z0-9_]+$")]
    scenario: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
    /// Incidents to skip (default 0).
    #[param(maximum = 9_223_372_036_854_775_807_i64)]
    offset: Option<u64>,
}

const INCIDENT_FIELDS: [&str; 5] = ["status", "severity", "scenario", "limit", "offset"];

/// A page size within `1..=max`, or the problem with it.
pub(crate) fn page_size(limit: Option<u32>, default: u32, max: u32) -> Result<u32, Problem> {
    match limit.unwrap_or(default) {
        n if (1..=max).contains(&n) => Ok(n),
        n => Err(Problem::field(
            StatusCode::BAD_REQUEST,
            "limit",
            format!("{n} is out of range: use 1 to {max}"),
        )),
    }
}

/// A `seq` or offset the store can hold (its integers are signed 64-bit),
/// or the problem with it.
pub(crate) fn storable(value: Option<u64>, field: &str) -> Result<Option<u64>, Problem> {
    match value {
        Some(n) if n > i64::MAX as u64 => Err(Problem::field(
            StatusCode::BAD_REQUEST,
            field,
            format!("{n} is out of range: the largest is {}", i64::MAX),
        )),
        other => Ok(other),
    }
}

/// A page of incidents, newest first.
#[utoipa::path(get, path = "/api/incidents", tag = "incidents", params(IncidentQuery), responses(
    (status = 200, description = "A page of incidents", body = IncidentPage),
    (status = 400, description = "A parameter is invalid; `field` names it", body = Problem, content_type = "application/problem+json"),
))]
pub async fn list_incidents(
    State(store): State<Store>,
    query: Result<Query<IncidentQuery>, QueryRejection>,
) -> Result<Json<IncidentPage>, Problem> {
    let Query(query) = query.map_err(|r| Problem::query(&r, &INCIDENT_FIELDS))?;
    let filter = IncidentFilter {
        status: query.status,
        severity: query.severity,
        // Validated like any scenario id: a NUL byte or a megabyte of text
        // must be a 400 here, not an error from the database.
        scenario: query
            .scenario
            .map(|raw| engine::request::ScenarioId::parse(&raw).map(|id| id.as_str().to_owned()))
            .transpose()
            .map_err(|e| Problem::field(StatusCode::BAD_REQUEST, "scenario", e.reason))?,
        limit: page_size(query.limit, 50, MAX_INCIDENT_PAGE)?,
        offset: storable(query.offset, "offset")?.unwrap_or(0),
    };
    store.incidents(&filter).await.map(Json).map_err(|e| Problem::store(&e))
}

/// One incident with its timeline, hypotheses, votes and actions.
#[utoipa::path(get, path = "/api/incidents/{id}", tag = "incidents",
    params(("id" = Uuid, Path, description = "The incident's id")),
    responses(
        (status = 200, description = "The incident and its story", body = IncidentDetail),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such incident", body = Problem, content_type = "application/problem+json"),
    ))]
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

/// An incident's telemetry window: each watched metric, second by second,
/// with its baseline, and the moments marked (what the incident page's
/// charts draw).
#[utoipa::path(get, path = "/api/incidents/{id}/telemetry", tag = "incidents",
    params(("id" = Uuid, Path, description = "The incident's id")),
    responses(
        (status = 200, description = "The window: growing while the incident is open (`live`), as kept once it closed", body = IncidentTelemetry),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No telemetry kept for this id", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_telemetry(
    State(engine): State<engine::Engine>,
    State(store): State<Store>,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<Json<IncidentTelemetry>, Problem> {
    let Path(id) = id.map_err(|r| Problem::field(StatusCode::BAD_REQUEST, "id", r.body_text()))?;
    if let Some(telemetry) = engine.incident_telemetry(id) {
        return Ok(Json(telemetry));
    }
    match store.incident_telemetry(id).await {
        Ok(Some(telemetry)) => Ok(Json(telemetry)),
        Ok(None) => Err(Problem::field(
            StatusCode::NOT_FOUND,
            "id",
            format!("no telemetry kept for incident {id}"),
        )),
        Err(e) => Err(Problem::store(&e)),
    }
}

/// `GET /api/events` parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// The last `seq` the client has (default 0: from the start).
    #[param(maximum = 9_223_372_036_854_775_807_i64)]
    since: Option<u64>,
    /// Page size, 1 to 1000 (default 500).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// The event log after a `seq`, oldest first: for clients that poll.
#[utoipa::path(get, path = "/api/events", tag = "events", params(EventQuery), responses(
    (status = 200, description = "Events after `since`", body = EventPage),
    (status = 400, description = "A parameter is invalid; `field` names it", body = Problem, content_type = "application/problem+json"),
))]
pub async fn events(
    State(store): State<Store>,
    query: Result<Query<EventQuery>, QueryRejection>,
) -> Result<Json<EventPage>, Problem> {
    let Query(query) = query.map_err(|r| Problem::query(&r, &["since", "limit"]))?;
    let limit = page_size(query.limit, 500, MAX_EVENT_PAGE)?;
    store
        .events_since(storable(query.since, "since")?.unwrap_or(0), limit)
        .await
        .map(Json)
        .map_err(|e| Problem::store(&e))
}
