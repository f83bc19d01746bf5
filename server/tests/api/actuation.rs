//! Actions out, through real components: a standalone twin (`antibody twin
//! serve`'s router) scraped by a real Prometheus whose alerts go through a
//! real Alertmanager to a server watching the estate by PromQL, whose
//! actuator sends each approved step, signed, to the twin's actions API.

use std::time::Duration;

use engine::protocol::{
    ActionDetails, ActionOutcome, AgentAction, AlertPlacement, IncidentDetail, IncidentStatus, ServerMessage, Step,
};
use serde_json::json;
use server::configuration::{ActuatorArgs, EstateArgs, EstateKind, Settings};

use crate::{
    components::{TempAlertmanager, TempPrometheus, free_port},
    helpers::{TestApp, alerts_on, eventually, settings_in, spawn_app_with},
    twin_serve::{SECRET, TestTwin, spawn_twin},
};

const TOKEN: &str = "intake-token";
/// Healthy seconds Prometheus records before a fault, so the baselines
/// have something to learn from (the EWMA warms up over 20 readings).
const BASELINE_SECONDS: u64 = 40;

/// A server that watches the estate Prometheus at `prometheus` holds and
/// acts on it through the twin at `twin`.
fn acting(data: &tempfile::TempDir, prometheus: &str, twin: &str) -> Settings {
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
    let watcher: TestApp = spawn_app_with(|data| acting(data, &prometheus_url, &twin.url)).await;
    let intake = watcher.url("/api/alerts/alertmanager");
    let Some(alertmanager) = TempAlertmanager::posting_to(&intake, TOKEN).await else {
        return;
    };
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
        let kept: serde_json::Value = (twin.http.get(format!("{}/api/actions/{}", twin.url, receipt.id)))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
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
    eventually(
        "the alert resolves onto the incident",
        Duration::from_millis(500),
        Duration::from_secs(60),
        || async {
            let detail = watcher.incident(incident.id).await;
            (alerts_on(&detail).iter())
                .find(|a| a.placement == AlertPlacement::Resolved)
                .cloned()
        },
    )
    .await;
    assert!(detail.incident.resolution_time.is_some(), "an MTTR");
}
