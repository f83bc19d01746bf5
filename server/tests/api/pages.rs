use std::time::Duration;

use server::configuration::Settings;

use crate::helpers::{settings_in, spawn_app, spawn_app_with};

#[tokio::test]
async fn healthz_answers_with_the_version() {
    let app = spawn_app().await;
    let response = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn the_dashboard_is_server_rendered_with_its_five_regions() {
    let app = spawn_app().await;
    app.fire("api_slowdown").await;
    let response = app.http.get(app.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    for needle in [
        "Business impact",
        "Agent swarm",
        "System health",
        "Live activity",
        "Database Cascade",
        "API Slowdown",
        "Service Down",
        "/pkg/antibody.js",
        "/pkg/antibody.css",
        // The incident fired above is in the first paint.
        "Incident opened: Test api_slowdown",
    ] {
        assert!(html.contains(needle), "the page lacks {needle:?}");
    }
    // Sent whole: no placeholder waiting for a script to swap it out.
    assert!(
        !html.contains("Loading the dashboard"),
        "the page is streamed out of order"
    );
}

#[tokio::test]
async fn an_unknown_page_is_a_404() {
    let app = spawn_app().await;
    let response = app.http.get(app.url("/no/such/page")).send().await.unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn prometheus_metrics_cover_http_websockets_the_store_incidents_agents_and_votes() {
    let app = spawn_app().await;
    crate::helpers::fire_and_finish(&app, "database_cascade").await;
    let response = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    for needle in [
        r#"antibody_http_requests_total{method="POST",route="/api/incidents",status="201"}"#,
        r#"antibody_http_request_duration_seconds_bucket{method="POST",route="/api/incidents",status="201",le="#,
        "antibody_ws_connections ",
        "antibody_ws_messages_sent_total ",
        "antibody_event_store_write_seconds_bucket",
        "antibody_event_broadcast_delay_seconds_bucket",
        r#"antibody_incidents{status="resolved"}"#,
        r#"antibody_agent_queue_depth{agent="diagnosis"}"#,
        r#"antibody_consensus_rounds_total{outcome="passed"}"#,
    ] {
        assert!(text.contains(needle), "/metrics lacks {needle}:\n{text}");
    }
}

#[tokio::test]
async fn the_openapi_document_and_its_docs_page_are_served() {
    let app = spawn_app().await;
    let doc: serde_json::Value = app
        .http
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/api/incidents"]["post"]["requestBody"].is_object());
    let page = app.http.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("/docs/swagger-ui-bundle.js") && html.contains("/api/openapi.json"));
    assert!(!html.contains("https://"), "no asset comes from elsewhere");
}

/// The document states what the server enforces, and the server enforces
/// what the document states (schemathesis `--checks all` judges the rest).
#[tokio::test]
async fn the_openapi_document_states_the_limits_the_server_enforces() {
    let app = spawn_app().await;
    let (_, doc) = app.get("/api/openapi.json").await;
    let param = |path: &str, name: &str| {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{path} has no `{name}`"))["schema"]
            .clone()
    };
    let limit = param("/api/events", "limit");
    assert_eq!(
        (limit["minimum"].as_u64(), limit["maximum"].as_u64()),
        (Some(1), Some(1000))
    );
    assert_eq!(param("/api/events", "since")["maximum"].as_i64(), Some(i64::MAX));
    let incident = &doc["components"]["schemas"]["NewIncident"]["properties"];
    let scenarios = incident["scenario_id"]["enum"].as_array().unwrap();
    assert!(
        scenarios.iter().any(|s| s == "database_cascade"),
        "the catalog: {scenarios:?}"
    );
    assert_eq!(incident["affected_services"]["uniqueItems"], true);

    // Past the stated maximum: a 400 naming the field, not a store error.
    let (status, problem) = app.get(&format!("/api/events?since={}", i64::MAX as u64 + 1)).await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("since")), "{problem}");
    let (status, _) = app.get(&format!("/api/events?since={}", i64::MAX)).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_incident_history_and_an_incidents_story_are_server_rendered() {
    let app = spawn_app().await;
    let id = crate::helpers::fire_and_finish(&app, "database_cascade").await;

    let list = app.http.get(app.url("/incidents")).send().await.unwrap();
    assert_eq!(list.status(), 200);
    let html = list.text().await.unwrap();
    assert!(
        html.contains(&format!("/incidents/{id}")),
        "the list links to the incident"
    );
    assert!(html.contains("Test database_cascade") && html.contains("resolved"));
    let filtered = app.text("/incidents?status=failed").await;
    assert!(
        !filtered.contains(&format!("/incidents/{id}")),
        "the filter applies on the server"
    );

    let story = app.http.get(app.url(&format!("/incidents/{id}"))).send().await.unwrap();
    assert_eq!(story.status(), 200);
    let html = story.text().await.unwrap();
    for needle in [
        "Hypotheses",
        "Consensus",
        "Remediation",
        "Timeline",
        "Report",
        "Step 1/",
        "postgres-primary",
    ] {
        assert!(html.contains(needle), "the story lacks {needle:?}");
    }
    let missing = app.text("/incidents/00000000-0000-4000-8000-000000000000").await;
    assert!(missing.contains("No such incident"));
}

#[tokio::test]
async fn the_bundle_is_served_precompressed_and_pages_are_compressed_on_the_fly() {
    let site = tempfile::tempdir().unwrap();
    let pkg = site.path().join("pkg");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(pkg.join("antibody.js"), "console.log('raw')").unwrap();
    std::fs::write(pkg.join("antibody.js.br"), "brotli bytes").unwrap();
    std::fs::write(pkg.join("antibody.js.gz"), "gzip bytes").unwrap();
    std::fs::write(site.path().join("favicon.svg"), "<svg/>").unwrap();
    let root = site.path().to_owned();
    let app = spawn_app_with(move |data| Settings {
        site_root: Some(root),
        ..settings_in(data, 200.0, Duration::from_secs(5))
    })
    .await;
    for (accept, encoding, body) in [
        ("br, gzip", Some("br"), "brotli bytes"),
        ("gzip", Some("gzip"), "gzip bytes"),
        ("identity", None, "console.log('raw')"),
    ] {
        let response = app
            .http
            .get(app.url("/pkg/antibody.js"))
            .header("accept-encoding", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{accept}");
        let got = response
            .headers()
            .get("content-encoding")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(got.as_deref(), encoding, "{accept}");
        assert_eq!(response.headers()["cache-control"], "no-cache");
        // The client decompresses nothing: these are the bytes on disk.
        assert_eq!(response.text().await.unwrap(), body, "{accept}");
    }
    let missing = app.http.get(app.url("/pkg/nothing.js")).send().await.unwrap();
    assert_eq!(missing.status(), 404);

    let page = app
        .http
        .get(app.url("/"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-encoding"], "gzip");
    assert_eq!(page.headers()["cache-control"], "no-cache");
    let html = app.text("/").await;
    assert!(
        html.contains(r#"href="/pkg/antibody.css""#) && html.contains("import('/pkg/antibody.js')"),
        "a folder's bundle is unversioned"
    );

    // A file beside the bundle, revalidated by its ETag.
    let icon = app.http.get(app.url("/favicon.svg")).send().await.unwrap();
    assert_eq!(icon.status(), 200);
    assert_eq!(icon.headers()["content-type"], "image/svg+xml");
    let etag = icon.headers()["etag"].clone();
    let again = app
        .http
        .get(app.url("/favicon.svg"))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    // A path that is neither a file nor a page gets the app's page, as 404.
    let nowhere = app.http.get(app.url("/nowhere")).send().await.unwrap();
    assert_eq!(nowhere.status(), 404);
    assert!(nowhere.text().await.unwrap().contains("Page not found"));
}
