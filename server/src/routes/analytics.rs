//! `GET /api/analytics`: MTTR by incident type, healing success rate,
//! false-positive rate and model latency SLO compliance, computed by the
//! store (see `store::analytics` for the definitions).

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
