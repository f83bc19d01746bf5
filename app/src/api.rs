//! Server functions: the dashboard's calls into the engine. Their bodies run
//! on the server only, where the server provides the [`engine::Engine`]
//! handle as Leptos context; the browser build sees only the call stubs.

use engine::protocol::{Incident, IncidentDetail, IncidentPage, IncidentStatus, ScenarioSummary, Severity, Snapshot};
use leptos::prelude::*;

#[cfg(feature = "ssr")]
fn engine() -> Result<engine::Engine, ServerFnError> {
    use_context::<engine::Engine>().ok_or_else(|| ServerFnError::new("the engine is not available"))
}

#[cfg(feature = "ssr")]
fn store() -> Result<store::Store, ServerFnError> {
    use_context::<store::Store>().ok_or_else(|| ServerFnError::new("the store is not available"))
}

/// Incidents on one page of the history, newest first.
pub const INCIDENTS_PER_PAGE: u32 = 25;

/// A page of the incident history (`page` counts from 1), from the store.
// A read: GET, so it is never counted against the rate limit on writes.
#[server(input = server_fn::codec::GetUrl)]
pub async fn list_incidents(
    status: Option<IncidentStatus>,
    severity: Option<Severity>,
    scenario: Option<String>,
    page: u32,
) -> Result<IncidentPage, ServerFnError> {
    let filter = store::IncidentFilter {
        status,
        severity,
        scenario: match scenario.filter(|s| !s.is_empty()) {
            Some(raw) => Some(
                engine::request::ScenarioId::parse(&raw)
                    .map_err(|e| ServerFnError::new(format!("scenario: {}", e.reason)))?
                    .as_str()
                    .to_owned(),
            ),
            None => None,
        },
        limit: INCIDENTS_PER_PAGE,
        offset: u64::from(page.max(1) - 1) * u64::from(INCIDENTS_PER_PAGE),
    };
    store()?
        .incidents(&filter)
        .await
        .map_err(|e| ServerFnError::new(e.to_string()))
}

/// One incident with its whole story, or `None` when there is no such id.
// A read: GET, so it is never counted against the rate limit on writes.
#[server(input = server_fn::codec::GetUrl)]
pub async fn get_incident(id: uuid::Uuid) -> Result<Option<IncidentDetail>, ServerFnError> {
    store()?
        .incident(id)
        .await
        .map_err(|e| ServerFnError::new(e.to_string()))
}

/// Everything the dashboard needs for its first paint.
// A read: GET, so it is never counted against the rate limit on writes.
#[server(input = server_fn::codec::GetUrl)]
pub async fn get_snapshot() -> Result<Snapshot, ServerFnError> {
    Ok(engine()?.snapshot())
}

/// The scenario catalog, primary scenarios first.
// A read: GET, so it is never counted against the rate limit on writes.
#[server(input = server_fn::codec::GetUrl)]
pub async fn get_scenarios() -> Result<Vec<ScenarioSummary>, ServerFnError> {
    Ok(engine()?.scenarios())
}

/// Sets the status (and headers) of a server function's refusal, so that
/// it answers like the REST API: never a 500 for the caller's mistake or
/// for backpressure.
#[cfg(feature = "ssr")]
fn refuse(status: axum::http::StatusCode, reason: impl std::fmt::Display) -> ServerFnError {
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(status);
    }
    ServerFnError::new(reason)
}

/// Opens an incident from a catalog scenario. Works as a plain HTML form
/// post too, so the buttons work before (or without) the wasm. Refusals
/// carry the REST API's statuses: 401 without the operator token, 422 for
/// an unknown scenario, 429 with Retry-After at capacity.
#[server(endpoint = "trigger_scenario")]
pub async fn trigger_scenario(scenario_id: String) -> Result<Incident, ServerFnError> {
    use axum::http::StatusCode;
    let engine = engine()?;
    let gate = use_context::<crate::operator::OperatorGate>().unwrap_or_default();
    let headers: axum::http::HeaderMap = leptos_axum::extract().await?;
    if let Err(denied) = gate.check(&headers) {
        return Err(refuse(StatusCode::UNAUTHORIZED, denied.reason()));
    }
    let incident = engine.trigger_scenario(&scenario_id, None).map_err(|refused| {
        let status = match &refused {
            engine::SubmitError::UnknownScenario { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            engine::SubmitError::AtCapacity { .. } => StatusCode::TOO_MANY_REQUESTS,
            engine::SubmitError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            engine::SubmitError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        };
        if let (Some(wait), Some(response)) = (refused.retry_after(), use_context::<leptos_axum::ResponseOptions>()) {
            response.insert_header(axum::http::header::RETRY_AFTER, wait.as_secs().into());
        }
        refuse(status, refused)
    })?;
    // Acknowledged only once its `incident_created` event is stored.
    engine.flush().await;
    Ok(incident)
}
