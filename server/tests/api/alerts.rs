//! Alerts in: Alertmanager's webhook and PagerDuty-style events behind the
//! intake token, every bad delivery refused with its field, redeliveries
//! recognised (across a restart too), related alerts grouped into one
//! incident, and every alert on its incident's record.

use std::time::Duration;

use engine::protocol::{AlertPlacement, IncidentDetail, Severity};
use serde_json::{Value, json};

use crate::helpers::{TestApp, alerts_on, settings_in, spawn_app_with};

const TOKEN: &str = "intake-s3cret";

async fn app() -> TestApp {
    spawn_app_with(|data| server::configuration::Settings {
        intake_token: Some(TOKEN.into()),
        ..settings_in(data, 200.0, Duration::from_secs(5))
    })
    .await
}

fn alert(fingerprint: &str, service: &str, status: &str) -> Value {
    json!({
        "status": status,
        "labels": {"alertname": "ErrorRateObjectiveBreached", "service": service, "severity": "critical", "team": "payments"},
        "annotations": {"summary": format!("{service} fails 40% of its requests")},
        "startsAt": "2026-12-04T10:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph?g0.expr=up",
        "fingerprint": fingerprint,
    })
}

fn delivery(alerts: Vec<Value>) -> Value {
    json!({
        "version": "4",
        "groupKey": "{}:{alertname=\"ErrorRateObjectiveBreached\"}",
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "antibody",
        "groupLabels": {"alertname": "ErrorRateObjectiveBreached"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": alerts,
    })
}

async fn deliver(app: &TestApp, body: &Value, token: Option<&str>) -> reqwest::Response {
    let mut request = app.http.post(app.url("/api/alerts/alertmanager")).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("the server answers")
}

#[tokio::test]
async fn a_firing_alert_opens_an_incident_once_however_often_it_is_delivered() {
    let app = app().await;
    let body = delivery(vec![alert("f1", "order-service", "firing")]);
    let response = deliver(&app, &body, Some(TOKEN)).await;
    assert_eq!(response.status(), 202);
    let receipt: Value = response.json().await.unwrap();
    assert_eq!(receipt["alerts"], 1);
    let opened = receipt["opened"].as_array().unwrap();
    assert_eq!(opened.len(), 1);
    let detail: IncidentDetail = app.incident(opened[0].as_str().unwrap()).await;
    assert_eq!(detail.incident.affected_services, ["order-service"]);
    assert_eq!(detail.incident.severity, Severity::Critical);
    assert_eq!(detail.incident.title, "order-service fails 40% of its requests");
    assert_eq!(detail.incident.scenario_id, None);

    // Alertmanager retries: the same alert is placed once.
    let again: Value = deliver(&app, &body, Some(TOKEN)).await.json().await.unwrap();
    assert_eq!(again["duplicates"], 1, "{again}");
    assert_eq!(again["opened"], json!([]));
    // Resolved: recorded, nothing opened.
    let resolved: Value = deliver(
        &app,
        &delivery(vec![alert("f1", "order-service", "resolved")]),
        Some(TOKEN),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        (
            resolved["resolved"].as_u64(),
            resolved["opened"].as_array().map(Vec::len)
        ),
        (Some(1), Some(0))
    );
    // The record: opened, then resolved; the redelivery is not repeated.
    let record = alerts_on(&app.incident(opened[0].as_str().unwrap()).await);
    let placements: Vec<_> = record.iter().map(|a| a.placement).collect();
    assert_eq!(placements, [AlertPlacement::Opened, AlertPlacement::Resolved]);
    let first = &record[0];
    assert_eq!(first.labels["team"], "payments", "every label kept");
    assert_eq!(first.annotations["summary"], "order-service fails 40% of its requests");
    assert_eq!(
        first.generator_url.as_deref(),
        Some("http://prometheus:9090/graph?g0.expr=up")
    );
    assert_eq!(
        (first.source.as_str(), first.severity),
        ("alertmanager", Severity::Critical)
    );
}

#[tokio::test]
async fn an_alert_placed_before_a_restart_is_still_known_after_it() {
    let data = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let settings = |data: &tempfile::TempDir| server::configuration::Settings {
        intake_token: Some(TOKEN.into()),
        ..settings_in(data, 1.0, Duration::from_secs(1))
    };
    let mut first = crate::helpers::spawn_app_in(std::sync::Arc::clone(&data), settings(&data)).await;
    let body = delivery(vec![alert("r1", "order-service", "firing")]);
    let receipt: Value = deliver(&first, &body, Some(TOKEN)).await.json().await.unwrap();
    let incident = receipt["opened"][0].as_str().unwrap().to_owned();
    first.stop().await.unwrap();
    let second = crate::helpers::spawn_app_in(std::sync::Arc::clone(&data), settings(&data)).await;
    let resolved = delivery(vec![alert("r1", "order-service", "resolved")]);
    let receipt: Value = deliver(&second, &resolved, Some(TOKEN)).await.json().await.unwrap();
    assert_eq!(receipt["resolved"], 1, "{receipt}");
    let record = alerts_on(&second.incident(&incident).await);
    assert_eq!(
        record.last().map(|a| a.placement),
        Some(AlertPlacement::Resolved),
        "the resolution reaches the incident the alert opened before the restart: {record:?}"
    );
}

/// `POST /api/alerts/pagerduty` with `body`, the token as a bearer when given.
async fn event(app: &TestApp, body: &Value, token: Option<&str>) -> reqwest::Response {
    let mut request = app.http.post(app.url("/api/alerts/pagerduty")).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("the server answers")
}

fn trigger(dedup_key: Option<&str>, component: &str) -> Value {
    let mut body = json!({
        "routing_key": "R0UT1NGKEY0000000000000000000000",
        "event_action": "trigger",
        "payload": {
            "summary": format!("{component}: checkout errors above 5%"),
            "source": "checkout-prod-3",
            "severity": "error",
            "component": component,
            "group": "shop",
            "class": "HighErrorRate",
            "custom_details": {"error_rate": 0.12},
        },
        "client": "Sentry",
        "links": [{"href": "https://sentry.example/issues/42", "text": "issue"}],
    });
    if let Some(key) = dedup_key {
        body["dedup_key"] = json!(key);
    }
    body
}

#[tokio::test]
async fn a_pagerduty_style_event_triggers_once_and_resolves_by_its_dedup_key() {
    let app = app().await;
    let response = event(&app, &trigger(Some("checkout-1"), "payment-service"), Some(TOKEN)).await;
    assert_eq!(response.status(), 202);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(
        (answer["status"].as_str(), answer["dedup_key"].as_str()),
        (Some("success"), Some("checkout-1"))
    );
    let incident = answer["receipt"]["opened"][0].as_str().unwrap().to_owned();
    let detail = app.incident(&incident).await;
    assert_eq!(detail.incident.severity, Severity::High, "`error` maps to high");
    assert_eq!(detail.incident.affected_services, ["payment-service"]);

    let again: Value = event(&app, &trigger(Some("checkout-1"), "payment-service"), Some(TOKEN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        again["receipt"]["duplicates"], 1,
        "the same dedup_key is the same alert: {again}"
    );
    let ack = json!({"routing_key": "R", "event_action": "acknowledge", "dedup_key": "checkout-1"});
    assert_eq!(event(&app, &ack, Some(TOKEN)).await.status(), 202);
    let resolve = json!({"routing_key": "R", "event_action": "resolve", "dedup_key": "checkout-1"});
    let resolved: Value = event(&app, &resolve, Some(TOKEN)).await.json().await.unwrap();
    assert_eq!(resolved["receipt"]["resolved"], 1, "{resolved}");

    let record = alerts_on(&app.incident(&incident).await);
    let placements: Vec<_> = record.iter().map(|a| a.placement).collect();
    assert_eq!(placements, [AlertPlacement::Opened, AlertPlacement::Resolved]);
    let fired = &record[0];
    assert_eq!(
        (fired.source.as_str(), fired.name.as_str()),
        ("pagerduty", "HighErrorRate")
    );
    assert_eq!(fired.labels["severity"], "error");
    assert_eq!(fired.labels["client"], "Sentry");
    assert_eq!(fired.annotations["custom_details"], r#"{"error_rate":0.12}"#);
    assert_eq!(fired.generator_url.as_deref(), Some("https://sentry.example/issues/42"));
    assert_eq!(
        (record[1].name.as_str(), record[1].service.as_str()),
        ("HighErrorRate", "payment-service"),
        "a resolve names the alert as it fired"
    );
}

#[tokio::test]
async fn a_pagerduty_style_trigger_without_a_key_gets_one_and_the_token_may_be_the_routing_key() {
    let app = app().await;
    let mut body = trigger(None, "order-service");
    body["routing_key"] = json!(TOKEN);
    let response = event(&app, &body, None).await;
    assert_eq!(response.status(), 202);
    let answer: Value = response.json().await.unwrap();
    let key = answer["dedup_key"].as_str().unwrap();
    assert_eq!(key.len(), 32, "a made-up key, to resolve with: {answer}");
    let resolve = json!({"routing_key": TOKEN, "event_action": "resolve", "dedup_key": key});
    let resolved: Value = event(&app, &resolve, None).await.json().await.unwrap();
    assert_eq!(resolved["receipt"]["resolved"], 1, "{resolved}");
}

#[tokio::test]
async fn a_bad_pagerduty_style_event_is_refused_with_the_field_at_fault() {
    let app = app().await;
    assert_eq!(event(&app, &trigger(None, "order-service"), None).await.status(), 401);
    assert_eq!(
        event(&app, &trigger(None, "order-service"), Some("wrong"))
            .await
            .status(),
        403
    );
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut body = trigger(Some("k"), "order-service");
        edit(&mut body);
        body
    };
    let cases: Vec<(Value, &str)> = vec![
        (with(&|b| b["event_action"] = json!("escalate")), "event_action"),
        (with(&|b| b["payload"]["severity"] = json!("sev0")), "payload.severity"),
        (
            with(&|b| b["payload"]["component"] = json!("mainframe")),
            "payload.component",
        ),
        (with(&|b| b["payload"]["summary"] = json!("  ")), "payload.summary"),
        (with(&|b| b["routing_key"] = json!("")), "routing_key"),
        (with(&|b| b["dedup_key"] = json!("k".repeat(300))), "dedup_key"),
        (
            with(&|b| {
                b.as_object_mut().unwrap().remove("payload");
            }),
            "payload",
        ),
        (json!({"routing_key": "R", "event_action": "resolve"}), "dedup_key"),
    ];
    for (body, field) in cases {
        let response = event(&app, &body, Some(TOKEN)).await;
        assert_eq!(response.status(), 422, "{field}: {body}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["field"], field, "{problem}");
    }
    let response = app
        .http
        .post(app.url("/api/alerts/pagerduty"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body("{\"routing_key\": 5}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422, "a field of the wrong type");
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["field"], "routing_key", "{problem}");
    assert!(app.snapshot().await.incidents.is_empty(), "nothing opened");
}

#[tokio::test]
async fn related_alerts_share_an_incident_and_unrelated_ones_do_not() {
    let app = app().await;
    // order-service calls postgres-primary; the ingestion agent is far from both.
    let body = delivery(vec![
        alert("a", "order-service", "firing"),
        alert("b", "postgres-primary", "firing"),
        alert("c", "ingestion-agent", "firing"),
    ]);
    let receipt: Value = deliver(&app, &body, Some(TOKEN)).await.json().await.unwrap();
    let opened = receipt["opened"].as_array().unwrap();
    assert_eq!(opened.len(), 2, "{receipt}");
    let first: IncidentDetail = app.incident(opened[0].as_str().unwrap()).await;
    assert_eq!(first.incident.affected_services, ["order-service", "postgres-primary"]);
    assert!(
        first.incident.title.ends_with("(+1 related)"),
        "{}",
        first.incident.title
    );

    // A later alert next to the first incident joins it.
    let later = delivery(vec![alert("d", "api-gateway", "firing")]);
    let joined: Value = deliver(&app, &later, Some(TOKEN)).await.json().await.unwrap();
    assert_eq!(joined["joined"], json!([opened[0]]), "{joined}");
}

#[tokio::test]
async fn the_intake_needs_its_own_token() {
    let app = app().await;
    let body = delivery(vec![alert("f1", "order-service", "firing")]);
    let missing = deliver(&app, &body, None).await;
    assert_eq!(missing.status(), 401);
    assert!(
        missing.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("Bearer")
    );
    assert_eq!(deliver(&app, &body, Some("wrong")).await.status(), 403);
    let basic = app
        .http
        .post(app.url("/api/alerts/alertmanager"))
        .basic_auth("alertmanager", Some(TOKEN))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 202);

    // Without ANTIBODY_INTAKE_TOKEN the intake is off, and says how to turn it on.
    let closed = crate::helpers::spawn_app().await;
    let refused = deliver(&closed, &body, Some(TOKEN)).await;
    assert_eq!(refused.status(), 401);
    let problem: Value = refused.json().await.unwrap();
    assert!(
        problem["reason"].as_str().unwrap().contains("ANTIBODY_INTAKE_TOKEN"),
        "{problem}"
    );
}

#[tokio::test]
async fn a_bad_delivery_is_refused_with_the_field_at_fault_and_nothing_is_opened() {
    let app = app().await;
    let refused = |body: Value| {
        let app = &app;
        async move {
            let response = deliver(app, &body, Some(TOKEN)).await;
            let status = response.status().as_u16();
            let problem: Value = response.json().await.unwrap();
            (status, problem["field"].as_str().unwrap_or_default().to_owned())
        }
    };
    let mut wrong_version = delivery(vec![alert("a", "order-service", "firing")]);
    wrong_version["version"] = json!("3");
    assert_eq!(refused(wrong_version).await, (422, "version".into()));
    let mut no_name = alert("a", "order-service", "firing");
    no_name["labels"].as_object_mut().unwrap().remove("alertname");
    assert_eq!(
        refused(delivery(vec![no_name])).await,
        (422, "alerts[0].labels.alertname".into())
    );
    let unknown = alert("a", "checkout", "firing");
    let ok = alert("b", "order-service", "firing");
    assert_eq!(
        refused(delivery(vec![ok, unknown])).await,
        (422, "alerts[1].labels.service".into())
    );
    let mut odd_severity = alert("a", "order-service", "firing");
    odd_severity["labels"]["severity"] = json!("apocalyptic");
    assert_eq!(
        refused(delivery(vec![odd_severity])).await,
        (422, "alerts[0].labels.severity".into())
    );
    let mut no_start = alert("a", "order-service", "firing");
    no_start.as_object_mut().unwrap().remove("startsAt");
    let (status, field) = refused(delivery(vec![no_start])).await;
    assert_eq!(
        (status, field.as_str()),
        (422, "alerts[0]"),
        "serde names the alert missing startsAt"
    );
    assert_eq!(refused(delivery(vec![])).await, (422, "alerts".into()));
    let not_json = app
        .http
        .post(app.url("/api/alerts/alertmanager"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body("{\"version\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);
    let huge = "x".repeat(2 * 1024 * 1024);
    let oversize = app
        .http
        .post(app.url("/api/alerts/alertmanager"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(oversize.status(), 413);
    let snapshot = app.snapshot().await;
    assert_eq!(
        snapshot.metrics.incidents_active, 0,
        "nothing of a refused delivery was taken"
    );
}

#[tokio::test]
async fn a_group_of_fifty_alerts_is_taken_at_once() {
    let app = app().await;
    let services = [
        "order-service",
        "postgres-primary",
        "api-gateway",
        "user-service",
        "redis-cache",
    ];
    let alerts = (0..50)
        .map(|i| alert(&format!("g{i}"), services[i % services.len()], "firing"))
        .collect();
    let receipt: Value = deliver(&app, &delivery(alerts), Some(TOKEN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(receipt["alerts"], 50);
    assert_eq!(
        receipt["opened"].as_array().unwrap().len(),
        1,
        "one related cluster: {receipt}"
    );
}

/// The whole loop on real components: a crash loop in the twin, Prometheus
/// scraping it with the shipped rules, Alertmanager posting to the intake,
/// an incident opening from the alert, and the swarm naming the cause from
/// the estate's telemetry. Wall-clock time, so the twin runs at speed 1.
#[tokio::test]
async fn the_shipped_alertmanager_config_passes_amtool() {
    let Some(amtool) = crate::components::installed("amtool") else {
        return;
    };
    let config = crate::components::shipped("deploy/alertmanager/alertmanager.yml");
    let (passed, said) = crate::components::check_with(&amtool, &["check-config"], &config).await;
    assert!(passed && said.contains("SUCCESS"), "amtool check-config: {said}");
    assert!(said.contains("1 receivers"), "{said}");
}

#[tokio::test]
async fn one_alertmanager_is_not_held_to_the_per_address_rate_limit() {
    let app = spawn_app_with(|data| server::configuration::Settings {
        intake_token: Some(TOKEN.into()),
        rate_limit: 60,
        rate_burst: 5,
        ..settings_in(data, 200.0, Duration::from_secs(5))
    })
    .await;
    for i in 0..30 {
        let body = delivery(vec![alert(&format!("r{i}"), "order-service", "firing")]);
        assert_eq!(deliver(&app, &body, Some(TOKEN)).await.status(), 202, "delivery {i}");
    }
    // Other mutating requests from the same address are still limited.
    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses.push(app.trigger("service_down").await.status().as_u16());
    }
    assert!(statuses.contains(&429), "{statuses:?}");
}
