//! The REST API over the store: lists, details, the event log, the
//! snapshot, the catalog, readiness; and their refusals.

use engine::protocol::IncidentStatus;
use serde_json::Value;

use crate::helpers::{fire_and_finish, spawn_app};

#[tokio::test]
async fn an_incident_is_served_with_its_whole_story() {
    let app = spawn_app().await;
    let id = fire_and_finish(&app, "database_cascade").await;
    let (status, detail) = app.get(&format!("/api/incidents/{id}")).await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["incident"]["status"], "resolved");
    assert!(detail["incident"]["report"].as_str().unwrap().starts_with('#'));
    assert!(detail["incident"]["root_cause"].as_str().unwrap().contains("postgres"));
    let timeline = detail["timeline"].as_array().unwrap();
    assert_eq!(timeline[0]["type"], "incident_created");
    assert_eq!(timeline.last().unwrap()["type"], "incident_status");
    let seqs: Vec<u64> = timeline.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "oldest first");
    assert!(!detail["hypotheses"].as_array().unwrap().is_empty());
    assert!(detail["votes"][0]["passed"].as_bool().unwrap());
    assert!(
        detail["actions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["details"]["kind"] == "step" && a["details"]["step"] == 1),
        "the executed steps are listed"
    );
}

#[tokio::test]
async fn incidents_are_listed_newest_first_with_filters_and_pages() {
    let app = spawn_app().await;
    let first = fire_and_finish(&app, "service_down").await;
    let second = fire_and_finish(&app, "api_slowdown").await;
    let (status, page) = app.get("/api/incidents?limit=1").await;
    assert_eq!(status, 200);
    assert_eq!(page["total"], 2);
    assert_eq!(page["items"][0]["id"], second.as_str());
    let (_, next) = app.get("/api/incidents?limit=1&offset=1").await;
    assert_eq!(next["items"][0]["id"], first.as_str());
    let (_, filtered) = app
        .get("/api/incidents?scenario=service_down&status=resolved&severity=critical")
        .await;
    assert_eq!(filtered["total"], 1);
    assert_eq!(filtered["items"][0]["id"], first.as_str());
    let (_, none) = app.get("/api/incidents?status=failed").await;
    assert_eq!(none["total"], 0);
}

#[tokio::test]
async fn bad_parameters_get_a_400_naming_the_parameter() {
    let app = spawn_app().await;
    for (path, status, field) in [
        ("/api/incidents?limit=0", 400, "limit"),
        ("/api/incidents?limit=9999", 400, "limit"),
        ("/api/incidents?limit=ten", 400, "limit"),
        ("/api/incidents?status=sleeping", 400, "status"),
        ("/api/incidents?severity=urgent", 400, "severity"),
        ("/api/incidents?offset=-1", 400, "offset"),
        ("/api/incidents?colour=red", 400, "colour"),
        ("/api/incidents?scenario=%00", 400, "scenario"),
        ("/api/incidents/not-a-uuid", 400, "id"),
        ("/api/incidents/00000000-0000-4000-8000-000000000000", 404, "id"),
        ("/api/events?since=-3", 400, "since"),
        ("/api/events?since=abc", 400, "since"),
        ("/api/events?limit=100000", 400, "limit"),
        ("/api/nothing/here", 404, "path"),
    ] {
        let response = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{path}");
        assert_eq!(response.headers()["content-type"], "application/problem+json", "{path}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["field"], field, "{path}: {problem}");
        assert!(!problem["reason"].as_str().unwrap().is_empty(), "{path}");
    }
}

#[tokio::test]
async fn the_event_log_pages_from_any_seq_without_gaps() {
    let app = spawn_app().await;
    fire_and_finish(&app, "pod_crash_loop").await;
    let (status, all) = app.get("/api/events?since=0&limit=1000").await;
    assert_eq!(status, 200);
    let seqs: Vec<u64> = all["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    let last = all["last_seq"].as_u64().unwrap();
    assert!(seqs.len() > 10);
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "from 1, no gaps");
    assert!(last >= *seqs.last().unwrap());
    let (_, tail) = app.get("/api/events?since=5&limit=3").await;
    let tail: Vec<u64> = tail["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(tail, [6, 7, 8]);
}

#[tokio::test]
async fn snapshot_metrics_catalog_and_readiness_are_served() {
    let app = spawn_app().await;
    fire_and_finish(&app, "memory_leak_gradual").await;
    let (status, snapshot) = app.get("/api/snapshot").await;
    assert_eq!(status, 200);
    assert_eq!(snapshot["metrics"]["incidents_resolved"], 1);
    assert_eq!(snapshot["incidents"][0]["status"], "resolved");
    let (_, again) = app.get("/api/snapshot").await;
    assert_eq!(again["last_seq"], snapshot["last_seq"], "warm: the same view");
    let (_, metrics) = app.get("/api/metrics").await;
    assert_eq!(metrics["incidents_resolved"], 1);
    assert!(metrics["avg_mttr"].as_f64().unwrap() > 0.0);
    let (_, catalog) = app.get("/api/scenarios").await;
    assert!(catalog.as_array().unwrap().len() >= 12);
    let (status, ready) = app.get("/readyz").await;
    assert_eq!((status, ready["status"].as_str()), (200, Some("ready")));
}

#[tokio::test]
async fn a_scenario_is_triggered_by_id_with_an_optional_severity() {
    let app = spawn_app().await;
    let response = app
        .http
        .post(app.url("/api/scenarios/cache_failure/trigger"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let incident: Value = response.json().await.unwrap();
    assert_eq!(incident["scenario_id"], "cache_failure");
    assert_eq!(incident["status"], IncidentStatus::Active.as_str());

    let response = app
        .http
        .post(app.url("/api/scenarios/cache_failure/trigger"))
        .json(&serde_json::json!({ "severity": "low" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.json::<Value>().await.unwrap()["severity"], "low");

    for (path, body, status, field) in [
        ("/api/scenarios/cache_failur/trigger", "{}", 404, "id"),
        (
            "/api/scenarios/cache_failure/trigger",
            r#"{"severity":"urgent"}"#,
            422,
            "severity",
        ),
        ("/api/scenarios/cache_failure/trigger", r#"{"colour":1}"#, 422, "colour"),
        // serde would read the optional body from an array of its fields.
        ("/api/scenarios/cache_failure/trigger", "[null]", 422, "body"),
        ("/api/scenarios/cache_failure/trigger", "{", 400, "body"),
    ] {
        let response = app
            .http
            .post(app.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{path} {body}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["field"], field, "{path} {body}: {problem}");
    }
    let problem: Value = app
        .http
        .post(app.url("/api/scenarios/cache_failur/trigger"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        problem["reason"].as_str().unwrap().contains("cache_failure"),
        "suggests the closest"
    );
}

#[tokio::test]
async fn beyond_capacity_creation_is_refused_with_429_and_retry_after() {
    let app = crate::helpers::spawn_app_with(|data| server::configuration::Settings {
        max_incidents: 1,
        ..crate::helpers::settings_in(data, 1.0, std::time::Duration::from_millis(50))
    })
    .await;
    app.fire("service_down").await;
    let response = app
        .http
        .post(app.url("/api/scenarios/api_slowdown/trigger"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "5");
    let problem: Value = response.json().await.unwrap();
    assert!(problem["detail"].as_str().unwrap().contains("at capacity"));

    // The dashboard's buttons (a server function, also a plain form post)
    // answer the same way, and the reason reaches the page.
    let form = |scenario: &str| {
        app.http
            .post(app.url("/api/trigger_scenario"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("scenario_id={scenario}"))
            .send()
    };
    let response = form("api_slowdown").await.unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "5");
    assert!(response.text().await.unwrap().contains("at capacity"));
    let response = form("no_such_scenario").await.unwrap();
    assert_eq!(response.status(), 422);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("no scenario `no_such_scenario`")
    );
}

#[tokio::test]
async fn the_dashboards_form_fires_several_at_a_chosen_severity_and_names_bad_fields() {
    let app = crate::helpers::spawn_app_with(|data| server::configuration::Settings {
        max_incidents: 4,
        ..crate::helpers::settings_in(data, 1.0, std::time::Duration::from_millis(50))
    })
    .await;
    let form = |body: &str| {
        app.http
            .post(app.url("/api/trigger_scenario"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_owned())
            .send()
    };
    let response = form("scenario_id=cache_failure&severity=low&count=3").await.unwrap();
    assert_eq!(response.status(), 200);
    let opened: Vec<engine::protocol::Incident> = response.json().await.unwrap();
    assert_eq!(opened.len(), 3);
    assert!(opened.iter().all(|i| i.severity == engine::protocol::Severity::Low));
    assert!(opened.iter().all(|i| i.scenario_id.as_deref() == Some("cache_failure")));

    // Two more than the server holds: one opens, then capacity says why.
    let response = form("scenario_id=service_down&count=2").await.unwrap();
    assert_eq!(response.status(), 429);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("opened 1 of 2, then: at capacity")
    );

    for (body, reason) in [
        (
            "scenario_id=cache_failure&severity=dire",
            "severity: `dire` is not one of",
        ),
        (
            "scenario_id=cache_failure&count=0",
            "count: `0` is not a whole number from 1 to 10",
        ),
        ("scenario_id=cache_failure&count=11", "count: `11`"),
    ] {
        let response = form(body).await.unwrap();
        assert_eq!(response.status(), 422, "{body}");
        assert!(response.text().await.unwrap().contains(reason), "{body}");
    }
}

/// An incident's charts' data: live from the estate, then kept in the
/// store, so the page still draws them after a restart.
#[tokio::test]
async fn an_incidents_telemetry_is_served_and_survives_a_restart() {
    let data = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let settings = || crate::helpers::settings_in(&data, 200.0, std::time::Duration::from_secs(5));
    let mut app = crate::helpers::spawn_app_in(data.clone(), settings()).await;
    let id = crate::helpers::fire_and_finish(&app, "database_cascade").await;
    let telemetry: Value = app.json(&format!("/api/incidents/{id}/telemetry")).await;
    assert_eq!(telemetry["live"], false);
    assert!(
        telemetry["start_seconds"].as_f64().unwrap() < 0.0,
        "the onset is included"
    );
    let series = telemetry["series"].as_array().unwrap();
    let pool = series
        .iter()
        .find(|s| s["service"] == "postgres-primary" && s["metric"] == "pool_usage")
        .expect("the anomalous pool is charted");
    assert!(pool["values"].as_array().unwrap().len() > 20);
    let kinds: Vec<&str> = telemetry["marks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.starts_with(&["opened"]) && kinds.contains(&"step") && kinds.ends_with(&["closed"]),
        "{kinds:?}"
    );

    // The incident's page draws them, server-side, as SVG.
    let page = app.text(&format!("/incidents/{id}")).await;
    assert!(page.contains("data-testid=\"chart\""), "no chart on the page");
    assert!(page.contains("<svg"), "charts are SVG at first paint");
    assert!(page.contains("postgres-primary · pool_usage"));
    assert!(page.contains("<h4>Root cause</h4>"), "the report is rendered markdown");

    app.stop().await.unwrap();
    let app = crate::helpers::spawn_app_in(data.clone(), settings()).await;
    let kept: Value = app.json(&format!("/api/incidents/{id}/telemetry")).await;
    assert_eq!(kept, telemetry, "the store keeps the window as it closed");
    let missing = app
        .http
        .get(app.url(&format!("/api/incidents/{}/telemetry", uuid::Uuid::new_v4())))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}
