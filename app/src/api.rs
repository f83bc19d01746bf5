//! Server functions: the dashboard's calls into the engine. Their bodies run
//! on the server only, where the server provides the [`engine::Engine`]
//! handle as Leptos context; the browser build sees only the call stubs.

use engine::protocol::{Incident, ScenarioSummary, Snapshot};
use leptos::prelude::*;

#[cfg(feature = "ssr")]
fn engine() -> Result<engine::Engine, ServerFnError> {
    use_context::<engine::Engine>().ok_or_else(|| ServerFnError::new("the engine is not available"))
}

/// Everything the dashboard needs for its first paint.
#[server]
pub async fn get_snapshot() -> Result<Snapshot, ServerFnError> {
    Ok(engine()?.snapshot())
}

/// The scenario catalog, primary scenarios first.
#[server]
pub async fn get_scenarios() -> Result<Vec<ScenarioSummary>, ServerFnError> {
    Ok(engine()?.scenarios())
}

/// Opens an incident from a catalog scenario. Works as a plain HTML form
/// post too, so the buttons work before (or without) the wasm.
#[server]
pub async fn trigger_scenario(scenario_id: String) -> Result<Incident, ServerFnError> {
    let engine = engine()?;
    let gate = use_context::<crate::operator::OperatorGate>().unwrap_or_default();
    let headers: axum::http::HeaderMap = leptos_axum::extract().await?;
    if let Err(denied) = gate.check(&headers) {
        return Err(ServerFnError::new(denied.reason()));
    }
    let incident = engine
        .trigger_scenario(&scenario_id, None)
        .map_err(|e| ServerFnError::new(e.to_string()))?;
    // Acknowledged only once its `incident_created` event is stored.
    engine.flush().await;
    Ok(incident)
}
