//! HTTP and WebSocket handlers. Each parses its input at the edge, calls
//! the engine, and maps the outcome to a status; none holds logic of its own.

pub mod actions;
pub mod alerts;
pub mod analytics;
pub mod approvals;
pub mod docs;
pub mod edge;
pub mod health;
pub mod history;
pub mod incidents;
pub mod live;
pub mod memory;
pub mod timelines;
pub mod twin;
pub mod ws;

use axum::{
    Json,
    http::{StatusCode, header},
};

/// A 201 Created whose `Location` header gives the new resource's address.
pub type Created<T> = (StatusCode, [(header::HeaderName, String); 1], Json<T>);

/// Answers 201 with `body`, and `location` as where to find it again.
pub fn created<T>(location: String, body: T) -> Created<T> {
    (StatusCode::CREATED, [(header::LOCATION, location)], Json(body))
}
