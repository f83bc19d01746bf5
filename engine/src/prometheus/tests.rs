//! The estate against a stub Prometheus: what a read asks, how the answers
//! become samples, and how each way of failing is named.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Form, Router, http::StatusCode, routing::post};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::*;

/// What the stub answers: a status and a body per query (by the metric
/// whose template it is), the healthy default otherwise.
type Answers = Arc<Mutex<HashMap<String, (u16, Value)>>>;

/// One series per service of the topology, `value` at every step.
fn matrix(topology: &Topology, start: f64, end: f64, value: impl Fn(&str, f64) -> Option<f64>) -> Value {
    let result: Vec<Value> = topology
        .names()
        .map(|name| {
            let values: Vec<Value> = (start as i64..=end as i64)
                .filter_map(|t| value(name, t as f64).map(|v| json!([t, v.to_string()])))
                .collect();
            json!({"metric": {"service": name, "job": "twin"}, "values": values})
        })
        .collect();
    json!({"status": "success", "data": {"resultType": "matrix", "result": result}})
}

/// What the default stub reads: 1% of everything, full health checks, and
/// order-service's error rate jumping to 40% for the last 5 s.
fn reading(query: &str, service: &str, t: f64, end: f64) -> f64 {
    if query.contains("http_requests_total{code=~") && service == "order-service" && t > end - 5.0 {
        0.4
    } else if query.contains("service_health_check_ratio") {
        1.0
    } else {
        0.01
    }
}

/// A stub Prometheus: every range query is a matrix of [`reading`] unless
/// `answers` says otherwise; records the queries it was asked.
async fn stub(answers: Answers, asked: Arc<Mutex<Vec<String>>>) -> String {
    stub_reading(answers, asked, reading).await
}

/// The same, every range query a matrix of `value(query, service, t, end)`.
async fn stub_reading(
    answers: Answers,
    asked: Arc<Mutex<Vec<String>>>,
    value: fn(&str, &str, f64, f64) -> f64,
) -> String {
    let topology = Topology::embedded().unwrap();
    let handler = move |Form(form): Form<HashMap<String, String>>| {
        let (answers, asked, topology) = (answers.clone(), asked.clone(), topology.clone());
        async move {
            let query = form.get("query").cloned().unwrap_or_default();
            asked.lock().unwrap().push(query.clone());
            let special = answers
                .lock()
                .unwrap()
                .iter()
                .find(|(k, _)| query.contains(k.as_str()))
                .map(|(_, v)| v.clone());
            if let Some((status, body)) = special {
                return (StatusCode::from_u16(status).unwrap(), axum::Json(body));
            }
            let start: f64 = form["start"].parse().unwrap();
            let end: f64 = form["end"].parse().unwrap();
            let body = matrix(&topology, start, end, |name, t| Some(value(&query, name, t, end)));
            (StatusCode::OK, axum::Json(body))
        }
    };
    let app = Router::new()
        .route("/api/v1/query_range", post(handler.clone()))
        .route("/api/v1/query", post(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn estate(url: &str) -> PrometheusEstate {
    let endpoint = Endpoint {
        url: url.to_owned(),
        auth: Auth::None,
        timeout: Duration::from_secs(2),
    };
    let topology = Arc::new(Topology::embedded().unwrap());
    PrometheusEstate::new(endpoint, Mapping::embedded().unwrap(), "job=\"twin\"".into(), topology)
}

fn at(unix: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(unix, 0).unwrap()
}

#[tokio::test]
async fn a_read_asks_one_range_per_figure_and_lays_the_answers_on_one_grid() {
    let asked = Arc::default();
    let url = stub(Answers::default(), Arc::clone(&asked)).await;
    let view = estate(&url).read_until(at(1_000_000)).await.unwrap();
    let asked = asked.lock().unwrap().clone();
    assert_eq!(
        asked.len(),
        Metric::COUNT,
        "one query per figure, for every service at once"
    );
    assert!(asked.iter().all(|q| q.contains("job=\"twin\"")), "{asked:?}");
    let order = view.topology().index("order-service").unwrap();
    let telemetry = view.telemetry(order);
    assert_eq!(telemetry.history.len(), 301, "300 s at a 1 s step, both ends");
    assert_eq!(view.end - view.start, chrono::TimeDelta::seconds(300));
    let errors = telemetry.recent(Metric::ErrorRate, 5);
    assert!(errors.iter().all(|e| *e == 0.4), "{errors:?}");
    assert!(
        telemetry.baseline(Metric::ErrorRate).mean < 0.02,
        "the jump is not the baseline"
    );
    assert_eq!(
        Observed::health(&view, order, 3),
        HealthState::Degraded,
        "40% errors is over the objective"
    );
    let evidence = view.evidence("order-service", Metric::ErrorRate).unwrap();
    assert_eq!(evidence.values.len(), 10);
    assert!(evidence.query.starts_with("sum by (service)"), "{}", evidence.query);
}

#[tokio::test]
async fn gaps_hold_the_last_value_and_a_figure_never_seen_reads_zero() {
    let topology = Topology::embedded().unwrap();
    let mut grid = Grid::new(&topology, 0.0, 10.0, 1);
    let order = topology.index("order-service").unwrap();
    grid.fill(order, Metric::Cpu, &[(2.0, 0.5), (5.0, 0.7)]);
    grid.fill(order, Metric::Memory, &[(3.0, 0.4)]);
    let telemetry = grid.telemetry().swap_remove(order);
    let cpu = telemetry.recent(Metric::Cpu, 20);
    assert_eq!(
        cpu,
        vec![0.5, 0.5, 0.5, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7],
        "from the first step with any figure"
    );
    assert_eq!(
        telemetry.recent(Metric::Memory, 20)[0],
        0.4,
        "its first value, before it began"
    );
    assert!(telemetry.recent(Metric::QueueDepth, 20).iter().all(|v| *v == 0.0));
}

#[tokio::test]
async fn every_failure_is_named_and_remembered_until_a_read_succeeds() {
    let answers = Answers::default();
    let url = stub(Arc::clone(&answers), Arc::default()).await;
    let estate = estate(&url);
    answers.lock().unwrap().insert(
        "cpu_usage_ratio".into(),
        (
            400,
            json!({"status": "error", "errorType": "bad_data", "error": "parse error at char 3"}),
        ),
    );
    let error = estate.read().await.unwrap_err().to_string();
    assert!(error.contains("bad_data") && error.contains(&url), "{error}");
    assert_eq!(estate.last_error(), Some(error));
    answers.lock().unwrap().clear();
    estate.read().await.unwrap();
    assert_eq!(estate.last_error(), None);

    let nobody = estate_at_closed_port();
    let error = nobody.probe().await.unwrap_err().to_string();
    assert!(error.contains("did not answer"), "{error}");
}

#[tokio::test]
async fn an_estate_with_no_series_for_its_services_is_an_error_not_a_quiet_one() {
    let answers = Answers::default();
    let url = stub(Arc::clone(&answers), Arc::default()).await;
    let empty = json!({"status": "success", "data": {"resultType": "matrix", "result": []}});
    answers.lock().unwrap().insert(String::new(), (200, empty));
    let error = estate(&url).read().await.unwrap_err().to_string();
    assert!(error.contains("no series") && error.contains("job=\"twin\""), "{error}");
}

fn estate_at_closed_port() -> PrometheusEstate {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    estate(&format!("http://127.0.0.1:{port}"))
}

#[tokio::test]
async fn a_prometheus_that_never_answers_costs_a_named_timeout_not_a_hang() {
    // Accepts connections and never answers them.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let endpoint = Endpoint {
        url: url.clone(),
        auth: Auth::None,
        timeout: Duration::from_millis(200),
    };
    let topology = Arc::new(Topology::embedded().unwrap());
    let slow = PrometheusEstate::new(endpoint, Mapping::embedded().unwrap(), String::new(), topology);
    // Two attempts of 200 ms and the pause between: well inside the guard.
    let read = tokio::time::timeout(Duration::from_secs(10), slow.read())
        .await
        .expect("a read never hangs");
    let error = read.unwrap_err().to_string();
    assert!(
        error.contains(&url) && error.contains("no answer within 200ms"),
        "{error}"
    );
}

/// A healthy estate, as its Prometheus reads, but for a model whose inputs
/// have drifted a little all along: its PSI reads 0.1 throughout, past the
/// 0.08 warning and under the 0.2 objective, and steady, so neither its
/// baseline nor its CUSUM finds anything anomalous.
fn steady_drift(query: &str, service: &str, _t: f64, _end: f64) -> f64 {
    let by_figure = [
        (
            "model_feature_psi",
            if service == "ml-model-service" { 0.1 } else { 0.0 },
        ),
        ("model_accuracy_ratio", 0.91),
        ("service_health_check_ratio", 1.0),
        ("ssl_certificate_expiry_seconds", 90.0 * 86_400.0),
        ("cache_hit_ratio", 0.95),
        ("pipeline_heartbeat_timestamp_seconds", 1.0),
        ("code=~", 0.0005),
        ("http_request_duration_seconds_bucket", 0.02),
        ("memory_usage_ratio", 0.4),
        ("disk_usage_ratio", 0.4),
    ];
    (by_figure.iter())
        .find(|(figure, _)| query.contains(figure))
        .map_or(0.05, |&(_, value)| value)
}

/// Something off, inside every objective, that adds up to no evidence: the
/// incident looks again three times, then closes `watching`, with nothing
/// voted or run, and its report says what it watches.
#[tokio::test]
async fn a_steady_warning_with_no_evidence_behind_it_is_watched_not_acted_on() {
    use crate::{
        Engine, EngineConfig,
        clock::Speed,
        protocol::{ActionDetails, IncidentStatus, Severity, Task},
        request::NewIncident,
        watched::WatchedEstate,
    };
    let url = stub_reading(Answers::default(), Arc::default(), steady_drift).await;
    let engine = Engine::new(EngineConfig {
        speed: Speed::new(Speed::MAX).unwrap(),
        seed: Some(1),
        watch: Some(WatchedEstate::Prometheus(estate(&url))),
        ..EngineConfig::default()
    })
    .unwrap();
    let mut live = engine.feed(None).live;
    let request = NewIncident {
        title: "Credit scores look odd".into(),
        severity: Severity::Medium,
        affected_services: vec!["ml-model-service".into()],
        scenario_id: None,
    };
    let id = engine.open_incident(request.parse().unwrap()).unwrap().id;
    let (mut rechecks, mut acted) = (0, false);
    let status = loop {
        let event = tokio::time::timeout(Duration::from_secs(30), live.recv())
            .await
            .unwrap()
            .unwrap();
        match &event.message {
            crate::protocol::ServerMessage::AgentAction { incident_id, action } if incident_id == &id => {
                if let ActionDetails::Started(started) = &action.details {
                    rechecks += usize::from(started.task == Some(Task::RecheckWarning));
                }
                acted |= matches!(action.details, ActionDetails::Vote(_) | ActionDetails::Step(_));
            }
            crate::protocol::ServerMessage::IncidentStatus {
                incident_id,
                status,
                resolution_time: Some(_),
                ..
            } if incident_id == &id => break *status,
            _ => {}
        }
    };
    let report = engine.incident(id).unwrap().report.unwrap_or_default();
    assert_eq!(status, IncidentStatus::Watching, "{report}");
    assert_eq!(rechecks, 3);
    assert!(!acted, "nothing is voted or run");
    assert!(report.contains("on ml-model-service"), "{report}");
    assert!(report.contains("nothing was run"), "{report}");
    engine.shutdown(Duration::from_secs(1)).await;
}
