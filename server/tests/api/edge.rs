//! The edge for a public demo link: operator mode, the login cookie, the
//! WebSocket origin check and per-IP rate limits.

use std::time::Duration;

use serde_json::Value;
use server::configuration::Settings;

use crate::helpers::{TestApp, settings_in, spawn_app_with};

async fn app_with(change: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_with(|data| {
        let mut settings = settings_in(data, 200.0, Duration::from_secs(5));
        change(&mut settings);
        settings
    })
    .await
}

fn trigger(app: &TestApp) -> reqwest::RequestBuilder {
    app.http.post(app.url("/api/scenarios/service_down/trigger"))
}

#[tokio::test]
async fn in_operator_mode_acting_needs_the_token_and_watching_does_not() {
    let app = app_with(|s| s.operator_token = Some("s3cret".into())).await;

    let missing = trigger(&app).send().await.unwrap();
    assert_eq!(missing.status(), 401);
    assert_eq!(missing.headers()["www-authenticate"], "Bearer");
    assert_eq!(missing.json::<Value>().await.unwrap()["field"], "authorization");
    let wrong = trigger(&app).bearer_auth("guess").send().await.unwrap();
    assert_eq!(wrong.status(), 403);
    let refused = app
        .http
        .post(app.url("/api/incidents"))
        .json(&serde_json::json!({"title": "t", "severity": "low", "affected_services": ["api-gateway"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401, "every mutating endpoint is guarded");
    assert_eq!(trigger(&app).bearer_auth("s3cret").send().await.unwrap().status(), 201);

    // Viewers still see everything.
    assert_eq!(
        app.http.get(app.url("/api/incidents")).send().await.unwrap().status(),
        200
    );
    assert_eq!(
        app.http.get(app.url("/api/snapshot")).send().await.unwrap().status(),
        200
    );
    let mut socket = app.connect("").await;
    crate::helpers::next_event(&mut socket).await;

    // The dashboard's login sets an HttpOnly cookie that then works alone.
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let bad = no_redirects
        .post(app.url("/login"))
        .form(&[("token", "guess")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 403);
    let login = no_redirects
        .post(app.url("/login"))
        .form(&[("token", "s3cret")])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303);
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap();
    let with_cookie = trigger(&app).header("cookie", pair).send().await.unwrap();
    assert_eq!(with_cookie.status(), 201);
}

#[tokio::test]
async fn cross_site_websocket_hijacking_is_refused_with_403() {
    use tokio_tungstenite::tungstenite::{client::IntoClientRequest, http::HeaderValue};

    let app = app_with(|s| s.allowed_origins = vec!["https://demo.example.com".into()]).await;
    let open = |origin: &'static str| {
        let mut request = format!("ws://{}/ws", app.addr).into_client_request().unwrap();
        request.headers_mut().insert("origin", HeaderValue::from_static(origin));
        tokio_tungstenite::connect_async(request)
    };
    match open("https://evil.example").await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403);
            let body: Value = serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
            assert_eq!(body["field"], "origin");
        }
        other => panic!("a foreign origin must be refused, got {other:?}"),
    }
    assert!(
        open("https://demo.example.com").await.is_ok(),
        "a listed origin is admitted"
    );
    let same = format!("http://{}", app.addr);
    let mut request = format!("ws://{}/ws", app.addr).into_client_request().unwrap();
    request.headers_mut().insert("origin", same.parse().unwrap());
    assert!(
        tokio_tungstenite::connect_async(request).await.is_ok(),
        "the page's own origin is admitted"
    );
}

#[tokio::test]
async fn mutating_requests_are_rate_limited_per_client_and_reads_are_not() {
    let app = app_with(|s| {
        s.rate_limit = 1;
        s.rate_burst = 2;
    })
    .await;
    assert_eq!(trigger(&app).send().await.unwrap().status(), 201);
    assert_eq!(trigger(&app).send().await.unwrap().status(), 201);
    let limited = trigger(&app).send().await.unwrap();
    assert_eq!(limited.status(), 429);
    assert!(
        limited.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    assert_eq!(limited.headers()["content-type"], "application/problem+json");
    for _ in 0..5 {
        assert_eq!(
            app.http.get(app.url("/api/incidents")).send().await.unwrap().status(),
            200
        );
    }
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_address_is_the_client() {
    let app = app_with(|s| {
        s.rate_limit = 1;
        s.rate_burst = 1;
        s.trust_proxy = true;
    })
    .await;
    let from = |ip: &'static str| trigger(&app).header("x-forwarded-for", ip);
    assert_eq!(from("203.0.113.7").send().await.unwrap().status(), 201);
    assert_eq!(from("203.0.113.7").send().await.unwrap().status(), 429);
    assert_eq!(
        from("198.51.100.4").send().await.unwrap().status(),
        201,
        "another client has its own budget"
    );
}

#[tokio::test]
async fn the_login_page_is_a_form_and_a_browser_with_a_wrong_token_is_sent_back_to_it() {
    let app = app_with(|s| s.operator_token = Some("s3cret".into())).await;
    let page = app.text("/login").await;
    assert!(
        page.contains(r#"action="/login""#) && page.contains(r#"name="token""#),
        "{page}"
    );
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let wrong = no_redirects
        .post(app.url("/login"))
        .header("accept", "text/html")
        .form(&[("token", "guess")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 303);
    assert_eq!(wrong.headers()["location"], "/login?failed=1");
    let again = app.text("/login?failed=1").await;
    assert!(again.contains("not this server"), "the form says the token was wrong");
}

#[tokio::test]
async fn in_operator_mode_a_viewer_sees_the_buttons_disabled_with_the_reason() {
    let app = app_with(|s| s.operator_token = Some("s3cret".into())).await;
    let viewer = app.text("/").await;
    assert!(
        viewer.contains("Watching only: this server is in operator mode."),
        "the reason"
    );
    let button = |html: &str| {
        let at = html.find(r#"value="service_down""#).expect("the button is rendered");
        let start = html[..at].rfind("<button").unwrap();
        html[start..at + html[at..].find('>').unwrap()].to_owned()
    };
    assert!(button(&viewer).contains("disabled"), "{}", button(&viewer));
    let operator = app.http.get(app.url("/")).bearer_auth("s3cret").send().await.unwrap();
    let operator = operator.text().await.unwrap();
    assert!(!operator.contains("Watching only"), "the operator may fire");
    assert!(!button(&operator).contains("disabled"), "{}", button(&operator));
}
