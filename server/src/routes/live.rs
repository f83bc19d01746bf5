//! The engine's current view: `GET /api/snapshot` (seed 002's single source
//! of truth for a first paint), `GET /api/metrics`, and the scenario
//! catalog with `POST /api/scenarios/{id}/trigger`.

use std::sync::{Arc, Mutex};

use axum::{
    Json,
    body::Bytes,
    extract::{Path, State, rejection::JsonRejection},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use engine::{
    Engine, SubmitError,
    protocol::{Incident, PerformanceMetrics, ScenarioSummary, Severity, Snapshot},
};
use serde::Deserialize;

use crate::{problem::Problem, routes::incidents::refusal};

/// The serialized snapshot, and the `seq` it reflects: events invalidate
/// it, so a warm `GET /api/snapshot` is a lock and a clone of bytes.
#[derive(Clone, Default)]
pub struct SnapshotCache(Arc<Mutex<Option<(u64, Bytes)>>>);

/// Everything the dashboard's first paint needs, in one call.
#[utoipa::path(get, path = "/api/snapshot", tag = "events", responses((status = 200, description = "The current view", body = Snapshot)))]
pub async fn snapshot(State(engine): State<Engine>, State(cache): State<SnapshotCache>) -> Response {
    let newest = engine.log().last_seq();
    let cached = cache.0.lock().expect("snapshot cache lock poisoned").clone();
    let body = match cached {
        Some((seq, body)) if seq == newest => body,
        _ => {
            let snapshot = engine.snapshot();
            let body = Bytes::from(serde_json::to_vec(&snapshot).expect("protocol types always serialize"));
            *cache.0.lock().expect("snapshot cache lock poisoned") = Some((snapshot.last_seq, body.clone()));
            body
        }
    };
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body,
    )
        .into_response()
}

/// The impact meter's figures, computed from the store.
#[utoipa::path(get, path = "/api/metrics", tag = "incidents", responses((status = 200, description = "The figures", body = PerformanceMetrics)))]
pub async fn metrics(State(engine): State<Engine>) -> Json<PerformanceMetrics> {
    Json(engine.metrics())
}

/// The scenario catalog, primary scenarios first.
#[utoipa::path(get, path = "/api/scenarios", tag = "scenarios", responses((status = 200, description = "Every scenario", body = Vec<ScenarioSummary>)))]
pub async fn scenarios(State(engine): State<Engine>) -> Json<Vec<ScenarioSummary>> {
    Json(engine.scenarios())
}

/// `POST /api/scenarios/{id}/trigger` body, optional.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TriggerBody {
    /// Overrides the scenario's severity.
    severity: Option<Severity>,
}

/// Opens an incident from a catalog scenario.
#[utoipa::path(post, path = "/api/scenarios/{id}/trigger", tag = "scenarios",
    params(("id" = String, Path, description = "The scenario's id, as in `database_cascade`")),
    request_body(content = Option<TriggerBody>, description = "Optional: another severity"),
    responses(
        (status = 201, description = "Opened; answered once its `incident_created` event is stored", body = Incident,
            headers(("Location" = String, description = "The incident's address, as in `/api/incidents/{id}`"))),
        (status = 400, description = "The body is not valid JSON, or a field has the wrong type; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Operator mode, and no token; on a demo server, a viewer (no token) may fire only the primary scenarios", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Operator mode, and a wrong token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such scenario (the closest is suggested)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The body is invalid; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "At capacity, rate limited, or on a demo server a viewer's allowance spent (per address, or everyone's); see Retry-After", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Shutting down, or the event log stopped publishing: nothing is opened", body = Problem, content_type = "application/problem+json"),
    ),
    security((), ("operator" = [])))]
pub async fn trigger(
    State(engine): State<Engine>,
    Path(id): Path<String>,
    body: Result<Json<Option<TriggerBody>>, JsonRejection>,
) -> Result<super::Created<Incident>, Response> {
    let body = match body {
        // `null`, like no body, means the scenario's own severity.
        Ok(Json(body)) => body.unwrap_or_default(),
        // No body (or an empty one) means the scenario's own severity.
        Err(JsonRejection::MissingJsonContentType(_)) => TriggerBody::default(),
        Err(rejection) => return Err(Problem::json(&rejection, &["severity"]).into_response()),
    };
    let incident = engine.trigger_scenario(&id, body.severity).map_err(|e| match e {
        SubmitError::UnknownScenario { .. } => {
            Problem::field(StatusCode::NOT_FOUND, "id", e.to_string()).into_response()
        }
        other => refusal(other),
    })?;
    engine.stored().await.map_err(refusal)?;
    Ok(super::created(format!("/api/incidents/{}", incident.id), incident))
}
