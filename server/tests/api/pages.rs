use crate::helpers::spawn_app;

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
