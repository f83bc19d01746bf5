//! Prometheus metrics at `GET /metrics`: HTTP requests by route and status
//! with latency, WebSocket connections, messages and resyncs, the event
//! store's write latency and the append-to-broadcast delay (recorded by the
//! engine), incidents by status, per-agent queue depth and utilization, and
//! consensus outcomes.
//!
//! One recorder per process (the `metrics` facade is global); gauges that
//! mirror engine state are set at scrape time, so they are never stale.

use std::{sync::OnceLock, time::Instant};

use axum::{
    extract::{MatchedPath, Request, State},
    http::{HeaderValue, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use engine::Engine;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets, in seconds: 100 µs to 10 s.
const SECONDS_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5, 10.0,
];
/// Batch-size buckets, in events.
const BATCH_BUCKETS: [f64; 9] = [1.0, 2.0, 5.0, 10.0, 50.0, 100.0, 500.0, 1_000.0, 4_096.0];

/// The process's recorder, installed on first use.
pub fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_events".into()), &BATCH_BUCKETS))
                .expect("the buckets are not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder (a test's) may already be global; the
            // handle still renders what this one would have recorded.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Counts and times every request by method, matched route and status.
pub async fn track_http(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    // The route pattern, not the path: ids must not explode the label set.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    let labels = [
        ("method", method),
        ("route", route),
        ("status", response.status().as_u16().to_string()),
    ];
    metrics::counter!("antibody_http_requests_total", &labels).increment(1);
    metrics::histogram!("antibody_http_request_duration_seconds", &labels).record(started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics`, in the Prometheus text format.
pub async fn render(State(engine): State<Engine>) -> Response {
    let handle = handle();
    let figures = engine.metrics();
    for (status, count) in [
        ("active", figures.incidents_active),
        ("resolved", figures.incidents_resolved),
        ("failed", figures.incidents_failed),
    ] {
        metrics::gauge!("antibody_incidents", "status" => status).set(count as f64);
    }
    for lane in engine.swarm_stats() {
        let agent = lane.agent.as_str();
        metrics::gauge!("antibody_agent_queue_depth", "agent" => agent).set(lane.queue_depth as f64);
        metrics::gauge!("antibody_agent_utilization", "agent" => agent).set(lane.utilization);
    }
    handle.run_upkeep();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        handle.render(),
    )
        .into_response()
}
