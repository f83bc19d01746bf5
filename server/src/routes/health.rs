//! `GET /healthz`: the process is up, and which version it is.
//! `GET /readyz`: the store answers and takes events, and a watched
//! Prometheus answers, so the server can take work.

use axum::{Json, extract::State, http::StatusCode};
use engine::Engine;
use serde_json::{Value, json};
use store::Store;

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "Up, with the version, and (several instances on one PostgreSQL) this instance's id", body = Object)))]
pub async fn healthz(State(store): State<Store>) -> Json<Value> {
    match store.instance() {
        Some(instance) => Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION"), "instance": instance })),
        None => Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") })),
    }
}

/// The store answers and takes the events, so the server can take work.
#[utoipa::path(get, path = "/readyz", tag = "health", responses(
    (status = 200, description = "Ready", body = Object),
    (status = 503, description = "The store does not answer, refuses events, or numbered events out of order (publishing stopped), or the watched Prometheus does not answer; the body says why", body = Object),
))]
pub async fn readyz(State(store): State<Store>, State(engine): State<Engine>) -> (StatusCode, Json<Value>) {
    // A seq that does not follow stops publishing for good: say so first.
    if let Some(reason) = engine.publishing_halted() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "store": reason })),
        );
    }
    // A store can answer a ping and still refuse every write (a full disk,
    // a constraint): then nothing new is published, and requests that wait
    // for their event to be stored wait until it takes them.
    if let Some(refusal) = engine.store_refusal() {
        let store = format!(
            "refusing events for {:.1} s ({} attempts): {}",
            refusal.for_how_long.as_secs_f64(),
            refusal.attempts,
            refusal.reason
        );
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "store": store })),
        );
    }
    if let Err(error) = store.ping().await {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "store": error.to_string() })),
        );
    }
    // A watched estate the agents cannot read leaves every incident blind.
    let Some(watched) = engine.watched() else {
        return (StatusCode::OK, Json(json!({ "status": "ready", "store": "ok" })));
    };
    // Prometheus may answer and the estate still not read (a bad selector
    // or mapping): after a failed read, readiness reads the estate itself.
    let readable = match watched.last_error() {
        Some(_) => watched.read().await.map(drop),
        None => watched.probe().await,
    };
    let source = watched.kind();
    match readable {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({ "status": "ready", "store": "ok", source: "ok" })),
        ),
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "store": "ok", source: error.to_string() })),
        ),
    }
}
