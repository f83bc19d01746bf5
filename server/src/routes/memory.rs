//! The incident memory over HTTP: `GET /api/memory` exports every entry
//! (signature, fixes and outcomes) with the settings that shape recall;
//! `DELETE /api/memory` forgets them all (an operator action, recorded as a
//! `memory_cleared` event).

use axum::{Json, extract::State};
use engine::{Engine, protocol::MemoryExport};
use serde::Serialize;

/// What clearing did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Cleared {
    /// Entries forgotten.
    pub removed: u64,
}

/// The whole incident memory, oldest entry first, for export.
#[utoipa::path(get, path = "/api/memory", tag = "memory", responses(
    (status = 200, description = "Every remembered incident", body = MemoryExport),
))]
pub async fn export(State(engine): State<Engine>) -> Json<MemoryExport> {
    Json(engine.memory().export())
}

/// Forgets every remembered incident: recall starts from nothing, and fixes
/// that failed before may be tried again.
#[utoipa::path(delete, path = "/api/memory", tag = "memory",
    security((), ("operator" = [])),
    responses(
        (status = 200, description = "The memory is empty", body = Cleared),
        (status = 401, description = "Operator mode is on and the request has no valid token", body = crate::problem::Problem, content_type = "application/problem+json"),
    ))]
pub async fn clear(State(engine): State<Engine>) -> Json<Cleared> {
    Json(Cleared {
        removed: engine.clear_memory("api"),
    })
}
