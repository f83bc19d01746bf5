//! A real estate watched through Prometheus (`--estate prometheus`): the
//! agents read only PromQL, plans are advisory, every finding carries the
//! queries behind it, and a Prometheus that cannot be read is said so, on
//! `/readyz` and in the incident.
//!
//! The estate is a twin served by another server (its `/twin/metrics`),
//! scraped by a real Prometheus every second; the watching server never
//! sees the twin, only what Prometheus recorded.

use std::{sync::Arc, time::Duration};

use engine::{
    prometheus::Mapping,
    protocol::{
        ActionDetails, ActionStatus, Advice, AgentAction, AlertPlacement, IncidentDetail, IncidentStatus, ServerMessage,
    },
};
use server::configuration::{EstateArgs, EstateKind, Settings};

use crate::{
    components::TempPrometheus,
    helpers::{TestApp, alerts_on, closed, eventually, resolved_alert, settings_in, spawn_app_with},
};

const TOKEN: &str = "intake-token";
/// Healthy seconds Prometheus records before a fault, so the baselines
/// have something to learn from (the EWMA warms up over 20 readings).
const BASELINE_SECONDS: u64 = 40;

/// Settings of a server that watches the estate Prometheus at `url` holds
/// under `job`.
fn watching(data: &tempfile::TempDir, url: &str, job: &str) -> Settings {
    Settings {
        intake_token: Some(TOKEN.into()),
        estate: EstateArgs {
            kind: EstateKind::Prometheus,
            prometheus_url: Some(url.parse().unwrap()),
            prometheus_selector: format!("job=\"{job}\""),
            prometheus_timeout: Duration::from_secs(5),
            ..EstateArgs::default()
        },
        ..settings_in(data, 1.0, Duration::from_secs(5))
    }
}

/// A twin server: the estate, at real time, as Prometheus needs.
async fn twin() -> TestApp {
    spawn_app_with(|data| settings_in(data, 1.0, Duration::from_secs(5))).await
}

/// Opens an incident on the watching server, as a person would.
async fn report(app: &TestApp, services: &[String]) -> uuid::Uuid {
    let body = serde_json::json!({
        "title": "Customers report errors",
        "severity": "high",
        "affected_services": services,
    });
    let response = app.post_incident(&body.to_string()).await;
    assert_eq!(response.status(), 201);
    response.json::<engine::protocol::Incident>().await.unwrap().id
}

#[tokio::test]
async fn the_swarm_names_each_cause_from_promql_alone_and_only_advises() {
    // Six catalog scenarios, each on a twin of its own, one Prometheus
    // scraping them all, one watching server per twin scoped by its job.
    const SCENARIOS: [&str; 6] = [
        "pod_crash_loop",
        "database_cascade",
        "cache_failure",
        "latency_spike_database",
        "api_slowdown",
        "model_accuracy_drop",
    ];
    if crate::helpers::on_postgres() {
        eprintln!("(the store's backend changes nothing of this path: run once, on SQLite)");
        return;
    }
    let mut twins = Vec::new();
    for _ in SCENARIOS {
        twins.push(twin().await);
    }
    let jobs: Vec<(String, String)> = (twins.iter().enumerate())
        .map(|(i, app)| (format!("twin-{i}"), app.addr.to_string()))
        .collect();
    let pairs: Vec<(&str, &str)> = jobs.iter().map(|(j, t)| (j.as_str(), t.as_str())).collect();
    let Some(prometheus) = TempPrometheus::scraping_jobs(&pairs, "/twin/metrics").await else {
        return;
    };
    let mut watchers = Vec::new();
    for (job, _) in &jobs {
        watchers.push(spawn_app_with(|data| watching(data, &prometheus.url, job)).await);
    }
    let (status, ready) = watchers[0].get("/readyz").await;
    assert_eq!(
        (status, &ready["prometheus"]),
        (200, &serde_json::json!("ok")),
        "{ready}"
    );

    tokio::time::sleep(Duration::from_secs(BASELINE_SECONDS)).await;
    let topology = Arc::new(engine::twin::Topology::embedded().unwrap());
    let catalog = engine::catalog::Catalog::embedded(&topology).unwrap();
    for (twin, scenario) in twins.iter().zip(SCENARIOS) {
        twin.inject_scenario(scenario);
    }
    // Long enough for the fault to show in every rate window.
    tokio::time::sleep(Duration::from_secs(15)).await;
    let mut opened = Vec::new();
    for (watcher, scenario) in watchers.iter().zip(SCENARIOS) {
        let services = &catalog.scenario(scenario).unwrap().affected_services;
        opened.push(report(watcher, services).await);
    }
    let mut named = Vec::new();
    for ((watcher, id), scenario) in watchers.iter().zip(opened).zip(SCENARIOS) {
        let detail = closed(watcher, id).await;
        let expected = &catalog.scenario(scenario).unwrap().fault[0];
        let top = detail.hypotheses.first().map(|h| h.root.clone());
        let right = top
            .as_ref()
            .is_some_and(|r| r.service == expected.target && r.fault == expected.kind);
        eprintln!(
            "{scenario:<24} expected {} on {}, named {:?}: {}",
            expected.kind.as_str(),
            expected.target,
            top.as_ref().map(|r| r.label()),
            if right { "right" } else { "WRONG" }
        );
        named.push((scenario, right, detail));
    }
    let right = named.iter().filter(|(_, right, _)| *right).count();
    eprintln!(
        "root cause through Prometheus: {right}/{} ({:.0}%)",
        named.len(),
        100.0 * right as f64 / named.len() as f64
    );
    for (scenario, right, detail) in &named {
        assert!(
            right,
            "{scenario}: the cause named from PromQL\n{:#?}",
            detail.hypotheses.first()
        );
        assert_advisory(scenario, detail);
    }

    // A selector that matches nothing: Prometheus answers, the estate does
    // not read. The incident says why, and so does readiness once it knows.
    let lost = spawn_app_with(|data| watching(data, &prometheus.url, "nobody")).await;
    assert_eq!(lost.get("/readyz").await.0, 200, "Prometheus answers");
    let detail = closed(&lost, report(&lost, &["order-service".to_owned()]).await).await;
    assert_eq!(detail.incident.status, IncidentStatus::Failed);
    let (status, ready) = lost.get("/readyz").await;
    let said = ready["prometheus"].as_str().unwrap_or_default();
    assert!(
        status == 503 && said.contains("no series") && said.contains("job=\"nobody\""),
        "{ready}"
    );
    drop(prometheus);
}

/// An advisory incident: the plan proposed, nothing run, and every finding
/// with the PromQL behind it.
fn assert_advisory(scenario: &str, detail: &IncidentDetail) {
    assert_eq!(detail.incident.status, IncidentStatus::Advised, "{scenario}");
    let finished: Vec<&AgentAction> = (detail.timeline.iter())
        .filter_map(|e| match &e.message {
            ServerMessage::AgentAction { action, .. } if action.status != ActionStatus::InProgress => Some(action),
            _ => None,
        })
        .collect();
    let kinds: Vec<&str> = finished.iter().map(|a| a.details.kind()).collect();
    assert!(kinds.contains(&"advice"), "{scenario}: {kinds:?}");
    assert!(
        !kinds
            .iter()
            .any(|k| ["step", "safety_checks", "verification", "rollback"].contains(k)),
        "{scenario}: nothing runs on a watched estate: {kinds:?}"
    );
    let advice = finished.iter().find_map(|a| match &a.details {
        ActionDetails::Advice(advice) => Some(advice),
        _ => None,
    });
    let top = &detail.hypotheses[0].root;
    assert_eq!(
        &advice.unwrap().proposed.root,
        top,
        "{scenario}: the leading cause's plan"
    );
    for kind in ["detection", "diagnosis"] {
        let action = finished.iter().find(|a| a.details.kind() == kind).expect(kind);
        assert!(!action.queries.is_empty(), "{scenario}: {kind} shows its PromQL");
    }
    let detection = finished.iter().find(|a| a.details.kind() == "detection").unwrap();
    let evidence = &detection.queries[0];
    assert!(evidence.query.contains("job=\"twin"), "{scenario}: {}", evidence.query);
    assert!(
        evidence.end > evidence.start && !evidence.values.is_empty(),
        "{evidence:?}"
    );
    let mapping = Mapping::embedded().unwrap();
    let selector = evidence
        .query
        .split("job=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    assert_eq!(
        evidence.query,
        mapping.query(evidence.metric, &format!("job=\"{selector}\""), None),
        "the query is the mapping's"
    );
}

#[tokio::test]
async fn an_alert_through_real_prometheus_and_alertmanager_is_diagnosed_from_promql_and_advised() {
    use crate::components::{TempAlertmanager, free_port};
    if crate::helpers::on_postgres() {
        eprintln!("(the store's backend changes nothing of this path: run once, on SQLite)");
        return;
    }
    // The estate; Prometheus's address, known before it starts, for the
    // watching server; the Alertmanager posting to that server.
    let estate = twin().await;
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let watcher = spawn_app_with(|data| watching(data, &url, "twin")).await;
    let intake = watcher.url("/api/alerts/alertmanager");
    let Some(alertmanager) = TempAlertmanager::posting_to(&intake, TOKEN).await else {
        return;
    };
    let rules = crate::components::shipped("deploy/prometheus/twin-rules.yml");
    let target = estate.addr.to_string();
    let Some(prometheus) =
        TempPrometheus::alerting_on(port, &target, "/twin/metrics", &[rules], Some(&alertmanager.addr)).await
    else {
        return;
    };
    tokio::time::sleep(Duration::from_secs(BASELINE_SECONDS)).await;
    assert!(
        watcher.snapshot().await.incidents.is_empty(),
        "a healthy estate raises nothing"
    );
    estate.inject(engine::twin::FaultKind::CrashLoop, "order-service");
    let incident = eventually(
        "an incident opens from the alert",
        Duration::from_millis(500),
        Duration::from_secs(60),
        // The gateway's errors may be reported first: it calls the crashing
        // service, and the desk joins the crash's own alert to that
        // incident. Which service reported it is not the cause.
        || async { watcher.snapshot().await.incidents.into_iter().next() },
    )
    .await;
    assert_eq!(incident.scenario_id, None, "opened by an alert, not a scenario");
    assert!(
        incident.title.contains("fails"),
        "the rule's summary: {}",
        incident.title
    );
    let detail = closed(&watcher, incident.id).await;
    let top = &detail.hypotheses[0].root;
    assert_eq!(
        (top.service.as_str(), top.fault),
        ("order-service", engine::twin::FaultKind::CrashLoop),
        "the cause, from PromQL alone\nprometheus: {}\nalertmanager: {}",
        prometheus.log().lines().last().unwrap_or_default(),
        alertmanager.log().lines().last().unwrap_or_default()
    );
    assert_advisory("the alert", &detail);
    let placed = alerts_on(&detail);
    assert_eq!(placed[0].placement, AlertPlacement::Opened, "{placed:?}");
    assert!(
        placed
            .iter()
            .all(|a| a.generator_url.as_deref().is_some_and(|u| u.starts_with(&url))),
        "each alert links its expression in Prometheus: {placed:?}"
    );
    assert_eq!(placed[0].labels["severity"], "critical", "every label kept");

    // A person carries out the advice on the estate; the alerts resolve
    // into the incident's record.
    let advice = advice_of(&detail).expect("advice");
    for step in &advice.proposed.steps {
        estate
            .engine
            .with_twin(|twin| twin.apply(&step.remediation))
            .expect("a twin")
            .expect("the advised step applies");
    }
    resolved_alert(&watcher, incident.id).await;
}

/// The plan an advisory incident proposed.
fn advice_of(detail: &IncidentDetail) -> Option<Advice> {
    detail.timeline.iter().find_map(|e| match &e.message {
        ServerMessage::AgentAction { action, .. } => match &action.details {
            ActionDetails::Advice(advice) => Some(advice.clone()),
            _ => None,
        },
        _ => None,
    })
}

#[tokio::test]
async fn a_prometheus_that_does_not_answer_is_named_on_readyz_and_in_the_incident() {
    // A port nothing listens on: bound, never listening, and held for the
    // whole test, so no server started meanwhile can take it (connections
    // to it are refused).
    let reserved = tokio::net::TcpSocket::new_v4().unwrap();
    reserved.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = reserved.local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let app = spawn_app_with(|data| Settings {
        speed: engine::clock::Speed::new(200.0).unwrap(),
        ..watching(data, &url, "twin")
    })
    .await;
    let (status, ready) = app.get("/readyz").await;
    assert_eq!(status, 503, "{ready}");
    let said = ready["prometheus"].as_str().unwrap();
    assert!(said.contains(&url) && said.contains("did not answer"), "{said}");

    let id = report(&app, &["order-service".to_owned()]).await;
    let detail = closed(&app, id).await;
    assert_eq!(detail.incident.status, IncidentStatus::Failed, "handed to people");
    let unreadable: Vec<_> = (detail.timeline.iter())
        .filter_map(|e| match &e.message {
            ServerMessage::AgentAction { action, .. } => match &action.details {
                ActionDetails::EstateUnreadable(u) => Some(u),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(unreadable.len(), 5, "every try, then people: {unreadable:?}");
    assert!(unreadable[0].reason.contains(&url), "{:?}", unreadable[0]);
    assert!(detail.hypotheses.is_empty(), "nothing diagnosed blind");
}

#[tokio::test]
async fn a_scenario_cannot_be_triggered_on_a_watched_estate() {
    let app = spawn_app_with(|data| watching(data, "http://127.0.0.1:9", "twin")).await;
    let response = app.trigger("pod_crash_loop").await;
    assert_eq!(response.status(), 409);
    let problem: serde_json::Value = response.json().await.unwrap();
    assert!(problem["detail"].as_str().unwrap().contains("Prometheus"), "{problem}");
}

#[tokio::test]
async fn every_shipped_mapping_renders_to_promql_that_promtool_accepts() {
    let Some(promtool) = crate::components::installed("promtool") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for file in [
        "engine/data/promql/twin.toml",
        "deploy/prometheus/kube-prometheus-mapping.toml",
    ] {
        let text = std::fs::read_to_string(crate::components::shipped(file)).unwrap();
        let mapping = Mapping::parse(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        // With no selector (a trailing comma in the braces) and with one.
        let mut rules = String::from("groups:\n  - name: mapping\n    rules:\n");
        for selector in ["", "job=\"twin\",namespace=~\"shop|pay\""] {
            for (i, metric) in engine::protocol::Metric::ALL.into_iter().enumerate() {
                let query = mapping.query(metric, selector, Some("order-service"));
                let record = format!("mapping:{}:{}{i}", metric.as_str(), selector.len());
                rules.push_str(&format!(
                    "      - record: {record}\n        expr: {}\n",
                    serde_json::json!(query)
                ));
            }
        }
        let path = dir.path().join("rules.yml");
        std::fs::write(&path, &rules).unwrap();
        let (passed, said) = crate::components::check_with(&promtool, &["check", "rules"], &path).await;
        assert!(passed, "{file}: promtool check rules:\n{said}\n{rules}");
        assert!(said.contains("34 rules found"), "{file}: {said}");
    }
}

#[tokio::test]
async fn a_watched_estate_of_its_own_services_takes_alerts_about_them_only() {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        file.path(),
        r#"
[[service]]
name = "checkout"
kind = "gateway"
depends_on = ["payments"]
rps = 300.0
latency_ms = 5.0
cpu = 0.3
memory = 0.4
instances = 3
slo_p99_ms = 800.0
slo_error = 0.02

[[service]]
name = "payments"
kind = "service"
depends_on = ["ledger-db"]
latency_ms = 9.0
cpu = 0.4
memory = 0.5
instances = 2
pool_size = 20
slo_p99_ms = 400.0
slo_error = 0.01

[[service]]
name = "ledger-db"
kind = "database"
latency_ms = 3.0
cpu = 0.3
memory = 0.6
instances = 1
pool_size = 100
slo_p99_ms = 200.0
slo_error = 0.005
"#,
    )
    .unwrap();
    use clap::Parser as _;
    let topology = server::configuration::Settings::try_parse_from([
        "antibody",
        "--estate",
        "prometheus",
        "--topology",
        file.path().to_str().unwrap(),
    ])
    .unwrap()
    .estate
    .topology;
    let app = spawn_app_with(|data| {
        let mut settings = watching(data, "http://127.0.0.1:9", "shop");
        settings.estate.topology = topology;
        settings
    })
    .await;
    let alert = |service: &str| {
        serde_json::json!({"version": "4", "status": "firing", "alerts": [{
            "status": "firing", "fingerprint": service, "startsAt": "2026-12-07T10:00:00Z",
            "labels": {"alertname": "HighErrorRate", "service": service, "severity": "critical"},
        }]})
    };
    let deliver = |body: serde_json::Value| {
        app.http
            .post(app.url("/api/alerts/alertmanager"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
    };
    assert_eq!(deliver(alert("payments")).await.unwrap().status(), 202);
    let refused = deliver(alert("order-service")).await.unwrap();
    assert_eq!(refused.status(), 422, "the twin's services are not this estate's");
    let problem: serde_json::Value = refused.json().await.unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("checkout, payments, ledger-db"),
        "{problem}"
    );
    let scenarios: serde_json::Value = app.json("/api/scenarios").await;
    assert_eq!(
        scenarios,
        serde_json::json!([]),
        "no twin scenarios on a watched estate"
    );
    assert_eq!(app.trigger("pod_crash_loop").await.status(), 409);
}
