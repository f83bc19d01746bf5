//! `GET /api/analytics`: MTTR by incident type, healing success rate,
//! false-positive rate and model latency SLO compliance, computed by the
//! store (see `store::analytics` for the definitions); and `GET
//! /api/models`, the ML estate's model registries.

use axum::{Json, extract::State};
use engine::{Engine, protocol::Analytics};
use store::Store;

use crate::problem::Problem;

/// Seed 003's metrics to track, over every finished incident stored.
#[utoipa::path(get, path = "/api/analytics", tag = "incidents", responses(
    (status = 200, description = "The figures, and the newest finished incidents for trends", body = Analytics),
    (status = 503, description = "The store could not answer", body = Problem, content_type = "application/problem+json"),
))]
pub async fn analytics(State(engine): State<Engine>, State(store): State<Store>) -> Result<Json<Analytics>, Problem> {
    // What was published is in the store once the writer catches up.
    engine.flush().await;
    store.analytics().await.map(Json).map_err(|e| Problem::store(&e))
}

/// The ML estate's model registries: every version with its accuracy
/// profile and the accuracy labelled feedback measured while it served.
#[utoipa::path(get, path = "/api/models", tag = "incidents", responses(
    (status = 200, description = "One registry per model service", body = Vec<engine::protocol::ModelRegistry>),
))]
pub async fn models(State(engine): State<Engine>) -> Json<Vec<engine::protocol::ModelRegistry>> {
    Json(engine.model_registries())
}
