use crate::helpers::spawn_app;

#[tokio::test]
async fn a_valid_incident_is_created_active_with_a_v4_id() {
    let app = spawn_app().await;
    let response = app
        .post_incident(
            r#"{"title":"Database Cascade","severity":"critical","affected_services":["api-gateway","user-service"]}"#,
        )
        .await;
    assert_eq!(response.status(), 201);
    let incident: serde_json::Value = response.json().await.unwrap();
    let id: uuid::Uuid = incident["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(id.get_version_num(), 4);
    assert_eq!(incident["status"], "active");
    assert_eq!(incident["severity"], "critical");
    assert!(
        incident["created_at"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<chrono::Utc>>()
            .is_ok()
    );
    assert!(app.engine.incident(id).is_some());
}

/// Each bad input gets its 4xx, as problem details naming the field.
#[tokio::test]
async fn bad_input_gets_a_4xx_that_names_the_field_and_the_reason() {
    let app = spawn_app().await;
    let services = (0..33).map(|i| format!("\"svc-{i}\"")).collect::<Vec<_>>().join(",");
    let too_many = format!(r#"{{"title":"t","severity":"low","affected_services":[{services}]}}"#);
    let oversized = format!(
        r#"{{"title":"{}","severity":"low","affected_services":["a"]}}"#,
        "x".repeat(20_000)
    );
    let cases: Vec<(&str, String, u16, &str, &str)> = vec![
        ("malformed JSON", r#"{"title": "#.into(), 400, "body", "not valid JSON"),
        ("not an object", "[1,2]".into(), 422, "body", "must be a JSON object"),
        (
            "unknown severity",
            r#"{"title":"t","severity":"urgent","affected_services":["a"]}"#.into(),
            422,
            "severity",
            "urgent",
        ),
        (
            "unknown scenario",
            r#"{"title":"t","severity":"low","affected_services":["a"],"scenario_id":"database_cascde"}"#.into(),
            422,
            "scenario_id",
            "did you mean `database_cascade`",
        ),
        (
            "empty title",
            r#"{"title":"  ","severity":"low","affected_services":["a"]}"#.into(),
            422,
            "title",
            "empty",
        ),
        (
            "no services",
            r#"{"title":"t","severity":"low","affected_services":[]}"#.into(),
            422,
            "affected_services",
            "at least one",
        ),
        ("too many services", too_many, 422, "affected_services", "limit is 32"),
        (
            "bad service name",
            r#"{"title":"t","severity":"low","affected_services":["ok","Not OK"]}"#.into(),
            422,
            "affected_services[1]",
            "not a service name",
        ),
        (
            "unknown field",
            r#"{"title":"t","severity":"low","affected_services":["a"],"priority":1}"#.into(),
            422,
            "priority",
            "unknown field",
        ),
        (
            "missing field",
            r#"{"severity":"low","affected_services":["a"]}"#.into(),
            422,
            "title",
            "missing field",
        ),
        ("oversized body", oversized, 413, "body", "larger than"),
    ];
    for (name, body, status, field, reason) in cases {
        let response = app.post_incident(&body).await;
        assert_eq!(response.status().as_u16(), status, "{name}");
        assert_eq!(response.headers()["content-type"], "application/problem+json", "{name}");
        let problem: serde_json::Value = response.json().await.unwrap();
        assert_eq!(problem["status"], status, "{name}");
        assert_eq!(problem["field"], field, "{name}: {problem}");
        assert!(
            problem["reason"].as_str().unwrap().contains(reason),
            "{name}: {problem}"
        );
    }

    let response = app
        .http
        .post(app.url("/api/incidents"))
        .header("content-type", "text/plain")
        .body(r#"{"title":"t","severity":"low","affected_services":["a"]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    let problem: serde_json::Value = response.json().await.unwrap();
    assert_eq!(problem["field"], "content-type");

    // Nothing bad was opened.
    assert_eq!(app.engine.snapshot().incidents.len(), 0);
}

#[tokio::test]
async fn a_closed_incident_is_announced_to_the_webhook() {
    use std::sync::{Arc, Mutex};

    use axum::{Json, Router, extract::State, routing::post};

    let received: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let hook = Router::new()
        .route(
            "/hook",
            post(
                |State(seen): State<Arc<Mutex<Vec<serde_json::Value>>>>, Json(body): Json<serde_json::Value>| async move {
                    seen.lock().unwrap().push(body);
                },
            ),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, hook).await.unwrap() });

    let app = crate::helpers::spawn_app_with(|data| server::configuration::Settings {
        webhook_url: Some(url.parse().unwrap()),
        ..crate::helpers::settings_in(data, 200.0, std::time::Duration::from_secs(5))
    })
    .await;
    app.fire("service_down").await;
    let body = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            if let Some(body) = received.lock().unwrap().first().cloned() {
                return body;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the webhook is called within 10 s");
    let text = body["text"].as_str().unwrap();
    assert!(
        text.contains("[resolved]") && text.contains("crash loop on order-service"),
        "{text}"
    );
    assert!(body["blocks"].is_array());
}
