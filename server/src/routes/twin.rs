//! `GET /twin/metrics`: the simulated estate as a Prometheus target, so a
//! real Prometheus (and its alert rules) can watch it as it would watch a
//! real estate.

use axum::{
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use engine::Engine;

use crate::problem::Problem;

/// The text exposition format's content type.
const EXPOSITION: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The twin's telemetry in Prometheus's text format: requests by code,
/// latency histograms, resource gauges, model accuracy and drift, pipeline
/// heartbeats, and the service graph.
#[utoipa::path(get, path = "/twin/metrics", tag = "twin", responses(
    (status = 200, description = "The scrape, in Prometheus's text exposition format 0.0.4", body = String, content_type = "text/plain"),
    (status = 404, description = "No shared estate: the server runs isolated twins (evaluation)", body = Problem, content_type = "application/problem+json"),
))]
pub async fn metrics(State(engine): State<Engine>) -> Response {
    match engine.twin_exposition() {
        Some(text) => ([(header::CONTENT_TYPE, EXPOSITION)], text).into_response(),
        None => Problem::new(StatusCode::NOT_FOUND, "this server has no shared estate to export").into_response(),
    }
}
