//! `antibody twin serve` over real HTTP: orders applied once per
//! Idempotency-Key, undone once, signatures checked, faults injected, and
//! every bad input a 4xx problem that names its field.

use engine::{
    actuator::{SIGNATURE_HEADER, Signer},
    clock::Speed,
    twin_service::TwinService,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

pub const SECRET: &str = "twin-test-secret";

/// A standalone twin on `127.0.0.1:0`, checking signatures with `SECRET`.
pub struct TestTwin {
    pub url: String,
    pub http: reqwest::Client,
}

pub async fn spawn_twin(speed: f64) -> TestTwin {
    let service = TwinService::new(3, Speed::new(speed).unwrap()).unwrap();
    let app = server::twin_serve::router(service, Some(Signer::new(SECRET)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    TestTwin {
        url,
        http: reqwest::Client::new(),
    }
}

impl TestTwin {
    /// POSTs `body` to `path`, signed, with `key` as Idempotency-Key.
    pub async fn post_signed(&self, path: &str, key: Option<&str>, body: &Value) -> reqwest::Response {
        let bytes = serde_json::to_vec(body).unwrap();
        let signature = Signer::new(SECRET).sign(chrono::Utc::now().timestamp(), &bytes);
        let mut request = self
            .http
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/json")
            .header(SIGNATURE_HEADER, signature)
            .body(bytes);
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        request.send().await.unwrap()
    }

    pub async fn estate(&self) -> Value {
        let response = self.http.get(format!("{}/api/estate", self.url)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    /// An action's receipt, by its id or its idempotency key.
    pub async fn receipt(&self, id: &str) -> Value {
        let response = self
            .http
            .get(format!("{}/api/actions/{id}", self.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "a receipt for {id}");
        response.json().await.unwrap()
    }

    pub async fn inject(&self, scenario: &str) -> Value {
        let response = self
            .http
            .post(format!("{}/api/faults", self.url))
            .json(&json!({ "scenario": scenario }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.unwrap()
    }
}

fn scale_pool() -> Value {
    json!({"remediation": {"kind": "scale_connection_pool", "target": "postgres-primary"}})
}

async fn pool_size(twin: &TestTwin) -> u64 {
    twin.estate().await["config"]["postgres-primary"]["pool_size"]
        .as_u64()
        .unwrap()
}

async fn problem(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn the_same_key_is_applied_once() {
    let twin = spawn_twin(1.0).await;
    let before = pool_size(&twin).await;
    let first = twin
        .post_signed("/api/actions", Some("incident-1-step-1"), &scale_pool())
        .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["status"], "succeeded");
    let scaled = pool_size(&twin).await;
    assert!(scaled > before);

    let again = twin
        .post_signed("/api/actions", Some("incident-1-step-1"), &scale_pool())
        .await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), first, "the first receipt");
    assert_eq!(pool_size(&twin).await, scaled, "applied once");

    let id = first["id"].as_str().unwrap();
    let read: Value = (twin
        .http
        .get(format!("{}/api/actions/{id}", twin.url))
        .send()
        .await
        .unwrap())
    .json()
    .await
    .unwrap();
    assert_eq!(read, first);
}

#[tokio::test]
async fn an_action_is_undone_once() {
    let twin = spawn_twin(1.0).await;
    let before = pool_size(&twin).await;
    let receipt: Value = (twin.post_signed("/api/actions", Some("k"), &scale_pool()).await)
        .json()
        .await
        .unwrap();
    let id = receipt["id"].as_str().unwrap();
    let undo = twin
        .post_signed(&format!("/api/actions/{id}/undo"), None, &json!({}))
        .await;
    assert_eq!(undo.status(), StatusCode::OK);
    assert_eq!(undo.json::<Value>().await.unwrap()["status"], "undone");
    assert_eq!(pool_size(&twin).await, before);
    let history = twin.estate().await["config_history"].as_array().unwrap().len();
    let again = twin
        .post_signed(&format!("/api/actions/{id}/undo"), None, &json!({}))
        .await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(twin.estate().await["config_history"].as_array().unwrap().len(), history);
    let (status, body) = problem(twin.post_signed("/api/actions/act-404/undo", None, &json!({})).await).await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::NOT_FOUND, Some("id")));
}

#[tokio::test]
async fn unsigned_or_wrongly_signed_orders_are_refused() {
    let twin = spawn_twin(1.0).await;
    let unsigned = (twin.http.post(format!("{}/api/actions", twin.url)))
        .header("idempotency-key", "k")
        .json(&scale_pool())
        .send()
        .await
        .unwrap();
    let (status, body) = problem(unsigned).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["field"], "Antibody-Signature");
    let bytes = serde_json::to_vec(&scale_pool()).unwrap();
    let forged = Signer::new("not-the-secret").sign(chrono::Utc::now().timestamp(), &bytes);
    let wrong = (twin.http.post(format!("{}/api/actions", twin.url)))
        .header("idempotency-key", "k")
        .header(SIGNATURE_HEADER, forged)
        .body(bytes)
        .send()
        .await
        .unwrap();
    let (status, body) = problem(wrong).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["reason"].as_str().unwrap().contains("does not match"), "{body}");
    assert!(twin.estate().await["config_history"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn bad_orders_name_their_field() {
    let twin = spawn_twin(1.0).await;
    let cases = [
        (None, scale_pool(), StatusCode::BAD_REQUEST, "Idempotency-Key"),
        (
            Some("k1"),
            json!({"remediation": {"kind": "reboot", "target": "postgres-primary"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "remediation.kind",
        ),
        (
            Some("k2"),
            json!({"remediation": {"kind": "restart_instances", "target": "postgres-primari"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "remediation.target",
        ),
        (
            Some("k3"),
            json!({"remediation": {"kind": "flush_cache", "target": "postgres-primary"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "remediation.kind",
        ),
        (
            Some("k4"),
            json!({"remediation": {"kind": "flush_cache", "target": "redis-cache"}, "extra": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "extra",
        ),
        (
            Some("k5"),
            json!([{"kind": "flush_cache", "target": "redis-cache"}]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "body",
        ),
    ];
    for (key, body, want, field) in cases {
        let (status, problem) = problem(twin.post_signed("/api/actions", key, &body).await).await;
        assert_eq!(status, want, "{body}: {problem}");
        assert!(
            problem["field"].as_str().unwrap().starts_with(field),
            "{body}: {problem}"
        );
    }
    // A refused order is not recorded: its key is free for a good one.
    let retried = twin.post_signed("/api/actions", Some("k1"), &scale_pool()).await;
    assert_eq!(retried.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn faults_inject_by_scenario_and_show_in_the_scrape() {
    let twin = spawn_twin(1.0).await;
    let injected = twin.inject("database_cascade").await;
    assert!(!injected["injected"].as_array().unwrap().is_empty());
    let again = twin.inject("database_cascade").await;
    assert!(again["injected"].as_array().unwrap().is_empty(), "not doubled: {again}");
    let unknown = (twin.http.post(format!("{}/api/faults", twin.url)))
        .json(&json!({"scenario": "database_cascad"}))
        .send()
        .await
        .unwrap();
    let (status, body) = problem(unknown).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("scenario"))
    );
    assert!(body["reason"].as_str().unwrap().contains("database_cascade"));
    let scrape = (twin.http.get(format!("{}/metrics", twin.url)).send().await.unwrap())
        .text()
        .await
        .unwrap();
    assert!(scrape.contains("postgres-primary"), "the scrape names the services");
}
