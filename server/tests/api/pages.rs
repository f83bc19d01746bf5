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
