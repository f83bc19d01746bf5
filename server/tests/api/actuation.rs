//! Actions out, through real components: a standalone twin (`antibody twin
//! serve`'s router) scraped by a real Prometheus whose alerts go through a
//! real Alertmanager to a server watching the estate by PromQL, whose
//! actuator sends each approved step, signed, to the twin's actions API.

use std::time::Duration;

use engine::protocol::{
    ActionDetails, ActionOutcome, AgentAction, IncidentDetail, IncidentStatus, ServerMessage, Step,
};
use serde_json::json;
use server::configuration::{ActuatorArgs, EstateArgs, EstateKind, Settings};

use crate::{
    components::{TempAlertmanager, TempPrometheus, free_port},
    helpers::{TestApp, closed, eventually, resolved_alert, settings_in, spawn_app_with},
    twin_serve::{SECRET, TestTwin, spawn_twin},
};

const TOKEN: &str = "intake-token";
/// Healthy seconds Prometheus records before a fault, so the baselines
/// have something to learn from (the EWMA warms up over 20 readings).
const BASELINE_SECONDS: u64 = 40;

/// A server that watches the estate Prometheus at `prometheus` holds and
/// acts on it through the twin at `twin`.
fn acting(data: &tempfile::TempDir, prometheus: &str, twin: &str, alertmanager: &str) -> Settings {
    Settings {
        intake_token: Some(TOKEN.into()),
        estate: EstateArgs {
            kind: EstateKind::Prometheus,
            prometheus_url: Some(prometheus.parse().unwrap()),
            prometheus_selector: "job=\"twin\"".into(),
            prometheus_timeout: Duration::from_secs(5),
            ..EstateArgs::default()
        },
        actuator: ActuatorArgs {
            actuator_url: Some(twin.parse().unwrap()),
            actuator_secret: Some(SECRET.into()),
            alertmanager_url: Some(alertmanager.parse().unwrap()),
            ..ActuatorArgs::default()
        },
        ..settings_in(data, 1.0, Duration::from_secs(5))
    }
}

/// The steps an incident ran, as its record keeps them.
fn steps_of(detail: &IncidentDetail) -> Vec<(AgentAction, Step)> {
    (detail.timeline.iter())
        .filter_map(|e| match &e.message {
            ServerMessage::AgentAction { action, .. } => match &action.details {
                ActionDetails::Step(step) if action.status != engine::protocol::ActionStatus::InProgress => {
                    Some((action.clone(), step.clone()))
                }
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// The twin's configuration changes an action made.
async fn action_changes(twin: &TestTwin) -> Vec<serde_json::Value> {
    let estate = twin.estate().await;
    (estate["config_history"].as_array().unwrap().iter())
        .filter(|c| !["release", "fault"].contains(&c["cause"].as_str().unwrap()))
        .cloned()
        .collect()
}

#[tokio::test]
async fn an_alert_is_healed_through_a_signed_actuator_and_verified_from_promql() {
    if crate::helpers::on_postgres() {
        eprintln!("(the store's backend changes nothing of this path: run once, on SQLite)");
        return;
    }
    let twin = spawn_twin(1.0).await;
    let port = free_port();
    let prometheus_url = format!("http://127.0.0.1:{port}");
    // The watcher's address, known before it starts, for Alertmanager's
    // webhook; Alertmanager's, for the watcher's silences.
    let watcher_port = free_port();
    let intake = format!("http://127.0.0.1:{watcher_port}/api/alerts/alertmanager");
    let Some(alertmanager) = TempAlertmanager::posting_to(&intake, TOKEN).await else {
        return;
    };
    let alertmanager_url = format!("http://{}", alertmanager.addr);
    let watcher: TestApp = spawn_app_with(|data| Settings {
        addr: Some(format!("127.0.0.1:{watcher_port}").parse().unwrap()),
        ..acting(data, &prometheus_url, &twin.url, &alertmanager_url)
    })
    .await;
    let rules = crate::components::shipped("deploy/prometheus/twin-rules.yml");
    let target = twin.url.trim_start_matches("http://").to_owned();
    let Some(prometheus) =
        TempPrometheus::alerting_on(port, &target, "/metrics", &[rules], Some(&alertmanager.addr)).await
    else {
        return;
    };
    tokio::time::sleep(Duration::from_secs(BASELINE_SECONDS)).await;
    assert!(
        watcher.snapshot().await.incidents.is_empty(),
        "a healthy estate raises nothing"
    );

    let faults = json!({"faults": [{"kind": "crash_loop", "target": "order-service", "lead_seconds": 1.0}]});
    let injected = (twin.http.post(format!("{}/api/faults", twin.url)))
        .json(&faults)
        .send()
        .await
        .unwrap();
    assert_eq!(injected.status(), 201);
    let incident = eventually(
        "an incident opens from the alert",
        Duration::from_millis(500),
        Duration::from_secs(60),
        || async { watcher.snapshot().await.incidents.into_iter().next() },
    )
    .await;
    let detail = eventually(
        "the incident closes",
        Duration::from_millis(500),
        Duration::from_secs(120),
        || async {
            let detail = watcher.incident(incident.id).await;
            detail.incident.status.is_terminal().then_some(detail)
        },
    )
    .await;
    let log = || {
        format!(
            "\nprometheus: {}\nalertmanager: {}",
            prometheus.log().lines().last().unwrap_or_default(),
            alertmanager.log().lines().last().unwrap_or_default()
        )
    };
    assert_eq!(
        detail.incident.status,
        IncidentStatus::Resolved,
        "healed through the actuator: {:?}{}",
        detail.incident.resolution_time,
        log()
    );
    let steps = steps_of(&detail);
    assert!(!steps.is_empty(), "steps ran");
    for (action, step) in &steps {
        let actuation = step.actuation.as_ref().expect("each step through the actuator");
        assert_eq!(actuation.request.actuator, "twin");
        assert_eq!(actuation.request.url, format!("{}/api/actions", twin.url));
        assert_eq!(actuation.request.idempotency_key, action.action_id.to_string());
        assert_eq!(actuation.request.body.incident_id, Some(incident.id));
        let approval = actuation.request.body.approval.as_ref().expect("who let it run");
        assert_eq!(approval.by, "policy");
        let receipt = actuation.receipt.as_ref().expect("a receipt");
        assert_eq!(receipt.status, ActionOutcome::Succeeded, "{receipt:?}");
        // The twin has it, under the same key.
        let kept = twin.receipt(&receipt.id).await;
        assert_eq!(kept["idempotency_key"], actuation.request.idempotency_key);
    }
    // Applied once each, on the twin itself.
    let changes = action_changes(&twin).await;
    let ran: Vec<_> = steps
        .iter()
        .filter(|(_, s)| s.actuation.as_ref().unwrap().receipt.as_ref().unwrap().status == ActionOutcome::Succeeded)
        .collect();
    assert!(!changes.is_empty(), "the twin changed");
    for (_, step) in &ran {
        let kind = step.action.as_str();
        assert!(
            changes.iter().any(|c| c["cause"] == kind),
            "{kind} reached the twin: {changes:?}"
        );
    }
    // Prometheus shows recovery; the alert resolves into the incident.
    resolved_alert(&watcher, incident.id).await;
    assert!(detail.incident.resolution_time.is_some(), "an MTTR");
    // The alerts were silenced while the plan ran, and the silences expired.
    let silences: Vec<serde_json::Value> = (reqwest::get(format!("{alertmanager_url}/api/v2/silences")).await)
        .unwrap()
        .json()
        .await
        .unwrap();
    let ours: Vec<_> = silences.iter().filter(|s| s["createdBy"] == "antibody").collect();
    assert!(!ours.is_empty(), "silenced while the plan ran: {silences:?}");
    assert!(
        ours.iter().all(|s| s["status"]["state"] == "expired"),
        "every silence expired: {ours:?}"
    );
    assert!(
        ours.iter()
            .all(|s| s["comment"].as_str().unwrap().contains(&incident.id.to_string())),
        "each names its incident"
    );
    let report = detail.incident.report.clone().unwrap_or_default();
    assert!(
        report.contains("Silenced") && report.contains("Expired"),
        "the record says so: {report}"
    );
}

/// A server whose estate is the standalone twin at `twin` (read over
/// HTTP, acted on through its actions API or `actuator`), at `speed`.
fn on_twin(data: &tempfile::TempDir, twin: &str, actuator: ActuatorArgs, speed: f64) -> Settings {
    Settings {
        estate: EstateArgs {
            twin_url: Some(twin.parse().unwrap()),
            prometheus_timeout: Duration::from_secs(5),
            ..EstateArgs::default()
        },
        actuator: ActuatorArgs {
            actuator_secret: Some(SECRET.into()),
            ..actuator
        },
        ..settings_in(data, speed, Duration::from_secs(5))
    }
}

/// Simulated seconds per real second for the twin and the server alike,
/// where no Prometheus holds them to the wall clock.
const SPEED: f64 = 20.0;

/// Breaks the twin's primary database and reports what customers see.
async fn database_cascade(twin: &TestTwin, app: &TestApp) -> uuid::Uuid {
    twin.inject("database_cascade").await;
    let body = json!({
        "title": "Checkout errors",
        "severity": "critical",
        "affected_services": ["api-gateway", "user-service", "order-service"],
    });
    let response = app.post_incident(&body.to_string()).await;
    assert_eq!(response.status(), 201);
    response.json::<engine::protocol::Incident>().await.unwrap().id
}

#[tokio::test]
async fn a_standalone_twin_is_the_estate_read_and_acted_on_over_http() {
    let twin = spawn_twin(SPEED).await;
    let app = spawn_app_with(|data| on_twin(data, &twin.url, ActuatorArgs::default(), SPEED)).await;
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.json::<serde_json::Value>().await.unwrap()["twin"], "ok");
    // The dashboard's tiles come from the twin's own health reports.
    let tiles = eventually(
        "the twin's health is published",
        Duration::from_millis(100),
        Duration::from_secs(10),
        || async {
            let snapshot = app.snapshot().await;
            (!snapshot.twin.is_empty()).then_some(snapshot.twin)
        },
    )
    .await;
    assert!(tiles.iter().any(|s| s.name == "postgres-primary"), "{tiles:?}");
    let id = database_cascade(&twin, &app).await;
    let detail = closed(&app, id).await;
    assert_eq!(
        detail.incident.status,
        IncidentStatus::Resolved,
        "{:?}",
        detail.incident
    );
    assert_eq!(
        detail.hypotheses[0].root.service, "postgres-primary",
        "diagnosed from the twin's telemetry, read over HTTP"
    );
    let steps = steps_of(&detail);
    let receipts: Vec<_> = (steps.iter())
        .map(|(_, s)| s.actuation.as_ref().unwrap().receipt.clone().unwrap())
        .collect();
    assert!(
        receipts.iter().all(|r| r.status == ActionOutcome::Succeeded),
        "{receipts:?}"
    );
    let changes = action_changes(&twin).await;
    assert_eq!(
        changes.iter().filter(|c| c["service"] == "postgres-primary").count(),
        (receipts.iter())
            .filter(|r| r.remediation.target == "postgres-primary")
            .map(|r| r.changes.len())
            .sum::<usize>(),
        "each change once, as its receipt says: {changes:?}"
    );
}

/// What a relay in front of the twin does with each delivery.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Misbehaviour {
    /// 503 to the first `n` deliveries, then passes them on.
    Busy(u32),
    /// 503, always.
    Down,
    /// Never answers.
    Silent,
    /// Passes the order on, then never answers (the sender is killed
    /// while it waits).
    ApplyThenHang,
    /// Takes the order (202) and calls back with `result` from the twin,
    /// signed with the wrong secret.
    ForgedCallback,
}

/// A relay between the server's actuator and the twin that misbehaves as
/// told, counting deliveries; it passes orders on with their own key and
/// signature, so the twin still applies each key once.
async fn relay(to: String, behaviour: Misbehaviour) -> (String, std::sync::Arc<std::sync::atomic::AtomicU32>) {
    use std::sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    };

    use axum::{body::Bytes, http::HeaderMap, routing::post};
    let deliveries = Arc::new(AtomicU32::new(0));
    let counted = Arc::clone(&deliveries);
    let twin = to.clone();
    let http = reqwest::Client::new();
    let handler = move |headers: HeaderMap, body: Bytes| {
        let (to, http, counted) = (to.clone(), http.clone(), Arc::clone(&counted));
        async move {
            let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
            let pass = |headers: HeaderMap, body: Bytes| async move {
                let mut request = http.post(format!("{to}/api/actions")).body(body);
                for name in ["content-type", "idempotency-key", engine::actuator::SIGNATURE_HEADER] {
                    request = request.header(name, headers[name].clone());
                }
                let answer = request.send().await.unwrap();
                (answer.status(), answer.text().await.unwrap())
            };
            match behaviour {
                Misbehaviour::Busy(k) if n > k => pass(headers, body).await,
                Misbehaviour::Busy(_) | Misbehaviour::Down => {
                    (reqwest::StatusCode::SERVICE_UNAVAILABLE, "{\"detail\":\"busy\"}".into())
                }
                Misbehaviour::ApplyThenHang => {
                    let _ = pass(headers, body).await;
                    tokio::time::sleep(Duration::from_secs(600)).await;
                    (reqwest::StatusCode::OK, String::new())
                }
                Misbehaviour::Silent => {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    (reqwest::StatusCode::OK, String::new())
                }
                Misbehaviour::ForgedCallback => {
                    let order: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    let callback = order["callback_url"].as_str().unwrap().to_owned();
                    let result = serde_json::to_vec(&json!({"status": "succeeded"})).unwrap();
                    let forged =
                        engine::actuator::Signer::new("not-the-secret").sign(chrono::Utc::now().timestamp(), &result);
                    let answered = (reqwest::Client::new().post(&callback))
                        .header("content-type", "application/json")
                        .header(engine::actuator::SIGNATURE_HEADER, forged)
                        .body(result)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(answered.status(), 401, "a forged result is refused");
                    (reqwest::StatusCode::ACCEPTED, "{}".into())
                }
            }
        }
    };
    // Status reads go straight through to the twin.
    let status = move |axum::extract::Path(id): axum::extract::Path<String>| {
        let (to, http) = (twin.clone(), reqwest::Client::new());
        async move {
            let answer = http.get(format!("{to}/api/actions/{id}")).send().await.unwrap();
            (answer.status(), answer.text().await.unwrap())
        }
    };
    let app = axum::Router::new()
        .route("/api/actions", post(handler))
        .route("/api/actions/{id}", axum::routing::get(status));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, deliveries)
}

/// An actuator map for the relay: the twin's, with a short timeout, and
/// the outcome by `outcome`.
fn relay_map(outcome: &str) -> engine::actuator::ActuatorMap {
    engine::actuator::ActuatorMap::parse(&format!(
        "name = \"relay\"\nurl = \"$base/api/actions\"\noutcome = \"{outcome}\"\n\
         timeout_seconds = 3\nattempts = 3\n"
    ))
    .unwrap()
}

/// Runs the database cascade with the actuator behind a relay that
/// misbehaves as told; the incident and the relay's delivery count.
async fn through_relay(behaviour: Misbehaviour, outcome: &str) -> (IncidentDetail, u32, TestTwin) {
    let twin = spawn_twin(SPEED).await;
    let (relay, deliveries) = relay(twin.url.clone(), behaviour).await;
    // Known before the server starts, for the callback URL its orders carry.
    let port = free_port();
    let app = spawn_app_with(|data| {
        let actuator = ActuatorArgs {
            actuator_url: Some(relay.parse().unwrap()),
            actuator_map: Some(relay_map(outcome)),
            public_url: Some(format!("http://127.0.0.1:{port}").parse().unwrap()),
            ..ActuatorArgs::default()
        };
        Settings {
            addr: Some(format!("127.0.0.1:{port}").parse().unwrap()),
            ..on_twin(data, &twin.url, actuator, SPEED)
        }
    })
    .await;
    let id = database_cascade(&twin, &app).await;
    let detail = closed(&app, id).await;
    let delivered = deliveries.load(std::sync::atomic::Ordering::SeqCst);
    (detail, delivered, twin)
}

/// The first step's record.
fn first_step(detail: &IncidentDetail) -> Step {
    steps_of(detail).first().expect("a step ran").1.clone()
}

#[tokio::test]
async fn a_busy_actuator_is_retried_under_one_key_and_the_step_applies_once() {
    let (detail, delivered, twin) = through_relay(Misbehaviour::Busy(2), "response").await;
    let step = first_step(&detail);
    let actuation = step.actuation.unwrap();
    assert_eq!(actuation.attempts, 3, "two refusals, then through");
    assert_eq!(actuation.receipt.unwrap().status, ActionOutcome::Succeeded);
    assert!(delivered >= 3);
    let changes = action_changes(&twin).await;
    let first = &changes[0];
    assert_eq!(
        changes
            .iter()
            .filter(|c| c["key"] == first["key"] && c["cause"] == first["cause"])
            .count(),
        1,
        "applied once: {changes:?}"
    );
}

#[tokio::test]
async fn an_actuator_that_stays_down_fails_the_step_and_nothing_is_applied() {
    let (detail, delivered, twin) = through_relay(Misbehaviour::Down, "response").await;
    let step = first_step(&detail);
    let error = step.error.expect("the step failed");
    assert!(error.contains("503") && error.contains("after 3 attempt(s)"), "{error}");
    assert_eq!(step.actuation.unwrap().attempts, 3);
    assert!(delivered >= 3);
    assert!(action_changes(&twin).await.is_empty(), "nothing reached the twin");
    assert_eq!(detail.incident.status, IncidentStatus::Failed, "escalated to people");
}

#[tokio::test]
async fn an_actuator_that_never_answers_fails_the_step_at_its_timeout() {
    let (detail, _, twin) = through_relay(Misbehaviour::Silent, "response").await;
    let error = first_step(&detail).error.expect("the step failed");
    assert!(error.contains("did not answer in time"), "{error}");
    assert!(action_changes(&twin).await.is_empty());
    assert_eq!(detail.incident.status, IncidentStatus::Failed);
}

#[tokio::test]
async fn a_forged_callback_is_refused_and_the_step_times_out() {
    let (detail, _, _) = through_relay(Misbehaviour::ForgedCallback, "callback").await;
    let step = first_step(&detail);
    let error = step.error.expect("the step failed");
    assert!(
        error.contains("no outcome from the relay within the step's 3 s"),
        "{error}"
    );
    assert_eq!(step.actuation.unwrap().receipt.unwrap().status, ActionOutcome::Pending);
}

#[tokio::test]
async fn results_are_taken_only_signed_and_only_for_a_waiting_step() {
    let twin = spawn_twin(SPEED).await;
    let app = spawn_app_with(|data| {
        let actuator = ActuatorArgs {
            actuator_map: Some(relay_map("callback")),
            public_url: Some("http://127.0.0.1:9".parse().unwrap()),
            ..ActuatorArgs::default()
        };
        on_twin(data, &twin.url, actuator, SPEED)
    })
    .await;
    let post = |body: serde_json::Value, secret: Option<&str>| {
        let bytes = serde_json::to_vec(&body).unwrap();
        let mut request = (app.http.post(app.url("/api/actions/7f1c0a52/result")))
            .header("content-type", "application/json")
            .body(bytes.clone());
        if let Some(secret) = secret {
            let signature = engine::actuator::Signer::new(secret).sign(chrono::Utc::now().timestamp(), &bytes);
            request = request.header(engine::actuator::SIGNATURE_HEADER, signature);
        }
        request.send()
    };
    let ok = json!({"status": "succeeded"});
    for (body, secret, status, field) in [
        (ok.clone(), None, 401, "Antibody-Signature"),
        (ok.clone(), Some("wrong"), 401, "Antibody-Signature"),
        (json!({"status": "pending"}), Some(SECRET), 422, "status"),
        (json!({"status": "succeeded", "extra": 1}), Some(SECRET), 422, "extra"),
        (ok.clone(), Some(SECRET), 404, "id"),
    ] {
        let response = post(body.clone(), secret).await.unwrap();
        assert_eq!(response.status(), status, "{body}");
        let problem: serde_json::Value = response.json().await.unwrap();
        assert_eq!(problem["field"], field, "{problem}");
    }
}

#[cfg(unix)]
#[tokio::test]
async fn a_server_killed_mid_step_reconciles_it_from_the_receipt_and_never_sends_it_again() {
    use std::sync::atomic::Ordering;
    let twin = spawn_twin(SPEED).await;
    let (relay, deliveries) = relay(twin.url.clone(), Misbehaviour::ApplyThenHang).await;
    let data = tempfile::tempdir().unwrap();
    let map = data.path().join("relay.toml");
    std::fs::write(
        &map,
        "name = \"relay\"\nurl = \"$base/api/actions\"\noutcome = \"response\"\n\
         status_url = \"$base/api/actions/$receipt\"\ntimeout_seconds = 600\nattempts = 3\n",
    )
    .unwrap();
    let speed = SPEED.to_string();
    let args = [
        "--speed",
        &speed,
        "--twin-url",
        &twin.url,
        "--actuator-url",
        &relay,
        "--actuator-map",
        map.to_str().unwrap(),
        "--actuator-secret",
        SECRET,
        "--policy",
        "autonomous",
    ];
    let http = reqwest::Client::new();
    let (mut child, addr) = crate::helpers::spawn_binary(data.path(), &args).await;
    twin.inject("database_cascade").await;
    let body = json!({
        "title": "Checkout errors",
        "severity": "critical",
        "affected_services": ["api-gateway", "user-service", "order-service"],
    });
    let created = (http.post(format!("http://{addr}/api/incidents")))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let id = created.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Wait for the twin to show the change, not for the relay to count the
    // delivery: the relay counts before it passes the order on.
    let applied = eventually(
        "the first step is applied on the twin",
        Duration::from_millis(100),
        Duration::from_secs(60),
        || async {
            let changes = action_changes(&twin).await;
            (deliveries.load(Ordering::SeqCst) > 0 && !changes.is_empty()).then_some(changes)
        },
    )
    .await;
    // Mid-step: the order is applied, its answer never came back.
    child.start_kill().unwrap();
    child.wait().await.unwrap();

    let (_child, addr) = crate::helpers::spawn_binary(data.path(), &args).await;
    let step = eventually(
        "the cut-short step is reconciled",
        Duration::from_millis(200),
        Duration::from_secs(30),
        || async {
            let detail: IncidentDetail = (http
                .get(format!("http://{addr}/api/incidents/{id}"))
                .send()
                .await
                .ok()?)
            .json()
            .await
            .ok()?;
            steps_of(&detail)
                .into_iter()
                .next()
                .map(|(action, step)| (detail, action, step))
        },
    )
    .await;
    let (detail, action, step) = step;
    assert_eq!(detail.incident.status, IncidentStatus::Interrupted);
    assert_eq!(action.status, engine::protocol::ActionStatus::Completed, "{step:?}");
    let receipt = step.actuation.unwrap().receipt.expect("read from the twin");
    assert_eq!(receipt.status, ActionOutcome::Succeeded);
    assert_eq!(receipt.idempotency_key, action.action_id.to_string());
    assert_eq!(deliveries.load(Ordering::SeqCst), 1, "never sent again");
    let after = action_changes(&twin).await;
    assert!(
        after.starts_with(&applied),
        "nothing undone: {applied:#?} then {after:#?}"
    );
    let of_the_step = |c: &&serde_json::Value| c["cause"] == step.action.as_str();
    assert_eq!(
        after.iter().filter(of_the_step).count(),
        applied.iter().filter(of_the_step).count(),
        "applied once: {applied:#?} then {after:#?}"
    );
}

#[tokio::test]
async fn a_dry_run_shows_the_exact_requests_and_sends_nothing() {
    let twin = spawn_twin(SPEED).await;
    let app = spawn_app_with(|data| {
        let actuator = ActuatorArgs {
            actuator_dry_run: true,
            ..ActuatorArgs::default()
        };
        on_twin(data, &twin.url, actuator, SPEED)
    })
    .await;
    let id = database_cascade(&twin, &app).await;
    let detail = closed(&app, id).await;
    assert_eq!(detail.incident.status, IncidentStatus::Advised);
    let advice = (detail.timeline.iter())
        .find_map(|e| match &e.message {
            ServerMessage::AgentAction { action, .. } => match &action.details {
                ActionDetails::Advice(advice) => Some(advice.clone()),
                _ => None,
            },
            _ => None,
        })
        .expect("advice");
    assert_eq!(advice.requests.len(), advice.proposed.steps.len());
    for (request, step) in advice.requests.iter().zip(&advice.proposed.steps) {
        assert_eq!(request.url, format!("{}/api/actions", twin.url));
        assert_eq!(request.body.remediation, step.remediation);
    }
    assert!(steps_of(&detail).is_empty(), "no step ran");
    assert!(action_changes(&twin).await.is_empty(), "nothing reached the twin");
}

#[tokio::test]
async fn a_scenario_triggered_on_a_standalone_twin_injects_there_and_heals() {
    let twin = spawn_twin(SPEED).await;
    let app = spawn_app_with(|data| on_twin(data, &twin.url, ActuatorArgs::default(), SPEED)).await;
    let response = (app.http.post(app.url("/api/scenarios/database_cascade/trigger")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let id = response.json::<engine::protocol::Incident>().await.unwrap().id;
    let detail = closed(&app, id).await;
    assert_eq!(
        detail.incident.status,
        IncidentStatus::Resolved,
        "{:?}",
        detail.incident.report
    );
    let history = twin.estate().await["config_history"].clone();
    assert!(
        (history.as_array().unwrap().iter()).any(|c| c["service"] == "postgres-primary" && c["key"] == "pool_size"),
        "the fix reached the twin: {history}"
    );
    // The fault went to the twin, and the swarm found it there.
    assert_eq!(detail.hypotheses[0].root.service, "postgres-primary");
}

/// A proxy in front of the twin that passes every request on, until the
/// first order has passed: from then on, the twin's telemetry answers 503.
async fn blinding_proxy(to: String) -> String {
    use std::sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    };

    use axum::{body::Bytes, extract::Request, http::StatusCode};
    let ordered = Arc::new(AtomicBool::new(false));
    let http = reqwest::Client::new();
    let proxy = move |request: Request| {
        let (to, http, ordered) = (to.clone(), http.clone(), Arc::clone(&ordered));
        async move {
            let (parts, body) = request.into_parts();
            let path = parts
                .uri
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default();
            if parts.uri.path() == "/api/telemetry" && ordered.load(Ordering::SeqCst) {
                return (StatusCode::SERVICE_UNAVAILABLE, Bytes::from_static(b"telemetry down"));
            }
            if parts.uri.path() == "/api/actions" {
                ordered.store(true, Ordering::SeqCst);
            }
            let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
            let mut forward = http.request(parts.method, format!("{to}{path}")).body(body);
            for (name, value) in &parts.headers {
                if name != "host" && name != "content-length" {
                    forward = forward.header(name, value);
                }
            }
            let answer = forward.send().await.unwrap();
            let status = StatusCode::from_u16(answer.status().as_u16()).unwrap();
            (status, answer.bytes().await.unwrap())
        }
    };
    let app = axum::Router::new().fallback(proxy);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::test]
async fn an_estate_unreadable_during_verification_is_not_verified_and_says_so() {
    let twin = spawn_twin(SPEED).await;
    let proxy = blinding_proxy(twin.url.clone()).await;
    let app = spawn_app_with(|data| on_twin(data, &proxy, ActuatorArgs::default(), SPEED)).await;
    let id = database_cascade(&twin, &app).await;
    let detail = closed(&app, id).await;
    let verification = (detail.timeline.iter())
        .find_map(|e| match &e.message {
            ServerMessage::AgentAction { action, .. }
                if action.status != engine::protocol::ActionStatus::InProgress =>
            {
                match &action.details {
                    ActionDetails::Verification(v) => Some(v.clone()),
                    _ => None,
                }
            }
            _ => None,
        })
        .expect("a verification ran");
    assert_eq!(verification.verified, Some(false), "{verification:?}");
    assert!(
        verification
            .outstanding
            .iter()
            .any(|o| o.contains("the estate could not be read") && o.contains("503")),
        "the verdict says why: {:?}",
        verification.outstanding
    );
    assert_ne!(
        detail.incident.status,
        IncidentStatus::Resolved,
        "never resolved unverified"
    );
}

#[tokio::test]
async fn the_embedded_twin_has_a_dry_run_too() {
    let app = spawn_app_with(|data| Settings {
        actuator: ActuatorArgs {
            actuator_dry_run: true,
            ..ActuatorArgs::default()
        },
        ..settings_in(data, 200.0, Duration::from_secs(5))
    })
    .await;
    let response = app.trigger("database_cascade").await;
    assert_eq!(response.status(), 201);
    let id = response.json::<engine::protocol::Incident>().await.unwrap().id;
    let detail = closed(&app, id).await;
    assert_eq!(detail.incident.status, IncidentStatus::Advised);
    let requests: Vec<_> = (detail.timeline.iter())
        .filter_map(|e| match &e.message {
            ServerMessage::AgentAction { action, .. } => match &action.details {
                ActionDetails::Advice(advice) => Some(advice.requests.clone()),
                _ => None,
            },
            _ => None,
        })
        .flatten()
        .collect();
    assert!(!requests.is_empty(), "the advice carries the requests");
    assert!(
        requests
            .iter()
            .all(|r| r.actuator == "embedded twin" && r.method == "APPLY")
    );
    assert!(steps_of(&detail).is_empty(), "no step ran");
}
