//! `GET /healthz`: the process is up, and which version it is.
//! `GET /readyz`: the store answers, so the server can take work.

use axum::{Json, extract::State, http::StatusCode};
use serde_json::{Value, json};
use store::Store;

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "Up, with the version", body = Object)))]
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

/// The store answers, so the server can take work.
#[utoipa::path(get, path = "/readyz", tag = "health", responses(
    (status = 200, description = "Ready", body = Object),
    (status = 503, description = "The store does not answer; the body says why", body = Object),
))]
pub async fn readyz(State(store): State<Store>) -> (StatusCode, Json<Value>) {
    match store.ping().await {
        Ok(()) => (StatusCode::OK, Json(json!({ "status": "ready", "store": "ok" }))),
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "store": error.to_string() })),
        ),
    }
}
