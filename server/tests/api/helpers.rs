//! `spawn_app()` and the clients the tests share.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use engine::{
    Engine,
    clock::Speed,
    protocol::{Envelope, Incident, IncidentDetail, Snapshot},
};
use futures::StreamExt;
use server::{
    configuration::{LogFormat, Settings},
    startup::Application,
};
use tokio::{net::TcpStream, sync::oneshot, task::JoinHandle};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite::Message};

/// A running server.
pub struct TestApp {
    pub addr: SocketAddr,
    /// The database's folder, removed when the app is dropped.
    _data: std::sync::Arc<tempfile::TempDir>,
    /// The store it runs on (SQLite, or PostgreSQL in the second pass).
    pub database_url: String,
    pub engine: Engine,
    pub http: reqwest::Client,
    /// Sends the shutdown signal.
    stop: Option<oneshot::Sender<()>>,
    /// The server task; ends after a graceful shutdown.
    pub handle: Option<JoinHandle<anyhow::Result<()>>>,
}

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Settings for a server on a free port, with its database in `data`.
pub fn settings_in(data: &tempfile::TempDir, speed: f64, shutdown_grace: Duration) -> Settings {
    Settings {
        database_url: format!("sqlite://{}/antibody.db", data.path().display()),
        sqlite_sync: Default::default(),
        ws_heartbeat: Duration::from_secs(20),
        ws_queue: 4096,
        commit_window: Duration::ZERO,
        ws_write_budget: 40_000,
        lease_ttl: Duration::from_secs(10),
        llm: Default::default(),
        operator_token: None,
        intake_token: None,
        allowed_origins: Vec::new(),
        // Tests fire many requests from one address.
        rate_limit: 100_000,
        rate_burst: 10_000,
        trust_proxy: false,
        twin: server::configuration::Twin::Shared,
        addr: Some("127.0.0.1:0".parse().unwrap()),
        port: None,
        speed: Speed::new(speed).unwrap(),
        seed: Some(42),
        site_root: Some(PathBuf::from("target/site")),
        shutdown_grace,
        log_format: LogFormat::Text,
        command: None,
        max_incidents: 1000,
        webhook_url: None,
        agent_failure_rate: 0.0,
        agent_workers: 64,
        // Nobody approves plans in most tests; `governance.rs` uses the
        // default policy and its own.
        policy: std::sync::Arc::new(engine::governance::Policy::builtin("autonomous").unwrap()),
        memory_capacity: 2_000,
        estate: Default::default(),
        actuator: Default::default(),
        demo: Default::default(),
        ws_max_per_ip: None,
        ws_max: 10_000,
    }
}

/// A server at 200x speed: an incident takes about 0.1 s of wall time.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|data| settings_in(data, 200.0, Duration::from_secs(5))).await
}

/// A server with a fresh database, and settings made for it.
/// With `ANTIBODY_TEST_BACKEND=postgres` (which `cargo xtask test` sets for
/// its second pass), each server gets a fresh database on the test
/// PostgreSQL instead of a SQLite file.
pub async fn spawn_app_with(settings: impl FnOnce(&tempfile::TempDir) -> Settings) -> TestApp {
    let data = tempfile::tempdir().expect("a temporary folder");
    let mut settings = settings(&data);
    if on_postgres() {
        settings.database_url = fresh_postgres_database().await;
    }
    spawn_app_in(std::sync::Arc::new(data), settings).await
}

/// Whether this is the API suite's second pass, every server on PostgreSQL
/// (`ANTIBODY_TEST_BACKEND=postgres`, which `cargo xtask test` sets).
pub fn on_postgres() -> bool {
    std::env::var("ANTIBODY_TEST_BACKEND").as_deref() == Ok("postgres")
}

/// A new, empty database on the test PostgreSQL.
async fn fresh_postgres_database() -> String {
    let admin = std::env::var("ANTIBODY_TEST_POSTGRES_URL")
        .expect("ANTIBODY_TEST_BACKEND=postgres needs ANTIBODY_TEST_POSTGRES_URL");
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&admin)
        .await
        .expect("the test PostgreSQL answers");
    let name = format!("antibody_api_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&pool)
        .await
        .expect("a test database");
    pool.close().await;
    format!("{}/{name}", admin.rsplit_once('/').expect("the URL names a database").0)
}

/// A server over an existing database folder (a restart).
pub async fn spawn_app_in(data: std::sync::Arc<tempfile::TempDir>, settings: Settings) -> TestApp {
    let database_url = settings.database_url.clone();
    let app = Application::build(settings).await.expect("the app builds");
    let (stop, stopped) = oneshot::channel::<()>();
    let addr = app.addr();
    let engine = app.engine();
    let handle = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    TestApp {
        addr,
        _data: data,
        database_url,
        engine,
        // A request that hangs fails the test instead of hanging the suite.
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("an HTTP client"),
        stop: Some(stop),
        handle: Some(handle),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The body of `GET path` (a page, or any text).
    pub async fn text(&self, path: &str) -> String {
        self.http
            .get(self.url(path))
            .send()
            .await
            .expect("the server answers")
            .text()
            .await
            .expect("a text body")
    }

    /// `GET path`: the status, and the body as JSON (null when it is not).
    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let response = self.http.get(self.url(path)).send().await.expect("the server answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// The body of `GET path`, parsed as JSON.
    pub async fn json<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        self.http
            .get(self.url(path))
            .send()
            .await
            .expect("the server answers")
            .json()
            .await
            .expect("a JSON body of the expected shape")
    }

    pub async fn post_incident(&self, body: &str) -> reqwest::Response {
        self.http
            .post(self.url("/api/incidents"))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("the server answers")
    }

    /// Opens an incident from catalog `scenario` through `POST
    /// /api/incidents`, as seed 000's client does; asserts the 201.
    pub async fn fire(&self, scenario: &str) -> Incident {
        let body = serde_json::json!({
            "title": format!("Test {scenario}"),
            "severity": "critical",
            "affected_services": ["api-gateway", "order-service"],
            "scenario_id": scenario,
        });
        let response = self.post_incident(&body.to_string()).await;
        assert_eq!(response.status(), 201);
        response.json().await.expect("an Incident")
    }

    /// `POST /api/scenarios/{scenario}/trigger`, without a body.
    pub async fn trigger(&self, scenario: &str) -> reqwest::Response {
        let url = self.url(&format!("/api/scenarios/{scenario}/trigger"));
        self.http.post(url).send().await.expect("the server answers")
    }

    /// `GET /api/incidents/{id}`, which must exist.
    pub async fn incident(&self, id: impl std::fmt::Display) -> IncidentDetail {
        self.json(&format!("/api/incidents/{id}")).await
    }

    /// `GET /api/snapshot`.
    pub async fn snapshot(&self) -> Snapshot {
        self.json("/api/snapshot").await
    }

    /// `POST /api/approvals/{id}/decision` with `body`.
    pub async fn decide(&self, id: &str, body: serde_json::Value) -> reqwest::Response {
        let url = self.url(&format!("/api/approvals/{id}/decision"));
        self.http
            .post(url)
            .json(&body)
            .send()
            .await
            .expect("the server answers")
    }

    /// `GET /api/memory` (the export).
    pub async fn export_memory(&self) -> reqwest::Response {
        self.http
            .get(self.url("/api/memory"))
            .send()
            .await
            .expect("the server answers")
    }

    /// `DELETE /api/memory`.
    pub async fn clear_memory(&self) -> reqwest::Response {
        self.http
            .delete(self.url("/api/memory"))
            .send()
            .await
            .expect("the server answers")
    }

    /// `POST /api/timelines/validate` with `body` as it is, no content type.
    pub async fn validate_timeline(&self, body: impl Into<reqwest::Body>) -> reqwest::Response {
        let url = self.url("/api/timelines/validate");
        self.http.post(url).body(body).send().await.expect("the server answers")
    }

    /// `POST /api/timeline-runs` with `body`.
    pub async fn start_run(&self, body: serde_json::Value) -> reqwest::Response {
        let url = self.url("/api/timeline-runs");
        self.http
            .post(url)
            .json(&body)
            .send()
            .await
            .expect("the server answers")
    }

    /// `POST /api/timeline-runs/{id}/{action}`.
    pub async fn steer_run(&self, id: uuid::Uuid, action: &str) -> reqwest::Response {
        let url = self.url(&format!("/api/timeline-runs/{id}/{action}"));
        self.http.post(url).send().await.expect("the server answers")
    }

    /// Injects `kind` at full strength into `service` of the shared twin,
    /// with no incident: what monitoring will notice by itself.
    pub fn inject(&self, kind: engine::twin::FaultKind, service: &str) {
        self.engine
            .with_twin(|estate| {
                estate.inject(&engine::twin::FaultSpec {
                    lead_seconds: 1.0,
                    ..engine::twin::FaultSpec::new(kind, service)
                })
            })
            .expect("a shared twin")
            .expect("the fault applies to the service");
    }

    /// Injects catalog scenario `id`'s faults into the shared twin, as the
    /// scenario would, with no incident: what monitoring will notice.
    pub fn inject_scenario(&self, id: &str) {
        let topology = std::sync::Arc::new(engine::twin::Topology::embedded().unwrap());
        let catalog = engine::catalog::Catalog::embedded(&topology).unwrap();
        let scenario = catalog.scenario(id).expect("a catalog scenario");
        for fault in &scenario.fault {
            self.engine
                .with_twin(|estate| estate.inject(fault))
                .expect("a shared twin")
                .expect("the fault applies to the service");
        }
    }

    pub async fn connect(&self, query: &str) -> Socket {
        let (socket, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws{query}", self.addr))
            .await
            .expect("the WebSocket opens");
        socket
    }

    /// Signals shutdown and waits for the server to stop.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.handle
            .take()
            .expect("stopped once")
            .await
            .expect("the server task ends")
    }
}

/// Starts the `antibody` binary on a free port with its database in
/// `data`; returns the child and its address, once it serves.
pub async fn spawn_binary(data: &std::path::Path, args: &[&str]) -> (tokio::process::Child, String) {
    let database = format!("sqlite://{}/antibody.db", data.display());
    let started = spawn_binary_with(&[("ANTIBODY_DATABASE_URL", database)], args).await;
    (started.child, started.addr)
}

/// The real binary, started with `env`, as it runs.
pub struct Started {
    pub child: tokio::process::Child,
    /// `host:port`.
    pub addr: String,
    /// Its id among instances sharing a PostgreSQL, when it said one.
    pub instance: Option<String>,
}

/// The real binary on a free port with `env` and `args`, once it listens
/// (its JSON logs say where, and which instance it is when it shares a
/// database); killed on drop.
pub async fn spawn_binary_with(env: &[(&str, String)], args: &[&str]) -> Started {
    use tokio::io::{AsyncBufReadExt, BufReader};

    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_antibody"))
        .args(["--addr", "127.0.0.1:0", "--log-format", "json"])
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env_remove("PORT")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut addr, mut instance) = (None, None);
    while addr.is_none() {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("a log line")
            .unwrap()
            .expect("the server logs before it exits");
        let log: serde_json::Value = serde_json::from_str(&line).expect("JSON log lines");
        if let Some(id) = log["fields"]["instance"].as_str() {
            instance.get_or_insert_with(|| id.to_owned());
        }
        addr = log["fields"]["addr"].as_str().map(str::to_owned);
    }
    // Keep draining the logs, so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Started {
        child,
        addr: addr.expect("just read"),
        instance,
    }
}

/// Incident `id` on `app` once it has closed (within 90 s).
pub async fn closed(app: &TestApp, id: uuid::Uuid) -> engine::protocol::IncidentDetail {
    eventually(
        "the incident closes",
        Duration::from_millis(250),
        Duration::from_secs(90),
        || async {
            let detail = app.incident(id).await;
            detail.incident.status.is_terminal().then_some(detail)
        },
    )
    .await
}

/// Fires `scenario` and waits (on a WebSocket) until it closes.
/// Polls `probe` every `every` until it yields a value, for at most
/// `within`; panics naming `what` when it never does. The one way these
/// tests wait on something that comes over time.
pub async fn eventually<T, F, Fut>(what: &str, every: Duration, within: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(every).await;
    }
}

pub async fn fire_and_finish(app: &TestApp, scenario: &str) -> String {
    let mut socket = app.connect("").await;
    let id = app.fire(scenario).await.id.to_string();
    events_until(&mut socket, |e| {
        matches!(&e.message, engine::protocol::ServerMessage::IncidentStatus { incident_id, status, .. }
            if incident_id.to_string() == id && status.is_terminal())
    })
    .await;
    app.engine.flush().await;
    id
}

/// The next text frame, parsed, within 10 s.
pub async fn next_event(socket: &mut Socket) -> (String, Envelope) {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("an event within 10 s")
            .expect("the socket stays open")
            .expect("a valid frame");
        if let Message::Text(text) = frame {
            let envelope = serde_json::from_str(&text).expect("every frame is an event");
            return (text.to_string(), envelope);
        }
    }
}

/// Events until `stop` accepts one (inclusive).
pub async fn events_until(socket: &mut Socket, stop: impl Fn(&Envelope) -> bool) -> Vec<(String, Envelope)> {
    let mut events = Vec::new();
    loop {
        let event = next_event(socket).await;
        let done = stop(&event.1);
        events.push(event);
        if done {
            return events;
        }
    }
}

/// The alerts on an incident's record, in order.
pub fn alerts_on(detail: &IncidentDetail) -> Vec<engine::protocol::AlertRecord> {
    (detail.timeline.iter())
        .filter_map(|e| match &e.message {
            engine::protocol::ServerMessage::AlertReceived { alert, .. } => Some(alert.clone()),
            _ => None,
        })
        .collect()
}

/// The first alert on incident `id`'s record that says it resolved, once
/// one does (within 60 s).
pub async fn resolved_alert(app: &TestApp, id: uuid::Uuid) -> engine::protocol::AlertRecord {
    eventually(
        "the alert resolves onto the incident",
        Duration::from_millis(500),
        Duration::from_secs(60),
        || async {
            let detail = app.incident(id).await;
            (alerts_on(&detail).into_iter()).find(|a| a.placement == engine::protocol::AlertPlacement::Resolved)
        },
    )
    .await
}
