//! Whatever arrives, the answer is a 2xx or a 4xx: never a 5xx, never a
//! dropped connection. Random JSON bodies and random query strings at
//! every input.

use proptest::{
    prelude::*,
    test_runner::{TestCaseError, TestRunner},
};
use serde_json::Value;

use crate::helpers::{TestApp, spawn_app};

/// Arbitrary JSON, a few levels deep, with the API's own field names mixed
/// in so that some bodies get past the first checks.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,40}".prop_map(Value::String),
        prop_oneof![
            Just("critical"),
            Just("low"),
            Just("api-gateway"),
            Just("database_cascade")
        ]
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("title".to_owned()),
                    Just("severity".to_owned()),
                    Just("affected_services".to_owned()),
                    Just("scenario_id".to_owned()),
                    Just("decision".to_owned()),
                    Just("approver".to_owned()),
                    Just("comment".to_owned()),
                    "[a-z_]{1,12}",
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A query string of random keys (known ones among them) and values.
fn query() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (
            prop_oneof![
                Just("since"),
                Just("limit"),
                Just("offset"),
                Just("status"),
                Just("severity"),
                Just("scenario"),
                Just("epoch"),
                Just("incident_id"),
                Just("approval_id"),
                Just("before_seq"),
                Just("state"),
                Just("x")
            ],
            prop_oneof![".{0,12}", any::<i64>().prop_map(|n| n.to_string())],
        ),
        0..4,
    )
    .prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(k, v)| format!("{k}={}", urlencode(&v)))
            .collect::<Vec<_>>()
            .join("&")
    })
}

fn urlencode(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Sends every kind of request built from one random case; the first
/// answer of 500 or more is the failure.
async fn probe(app: &TestApp, body: &Value, query: &str, mangled: bool) -> Result<(), String> {
    let text = if mangled {
        // Broken JSON of the same size, such as `}]1,"a"[{`.
        body.to_string().chars().rev().collect()
    } else {
        body.to_string()
    };
    let requests = [
        app.http
            .post(app.url("/api/incidents"))
            .header("content-type", "application/json")
            .body(text.clone()),
        app.http
            .post(app.url("/api/scenarios/database_cascade/trigger"))
            .header("content-type", "application/json")
            .body(text.clone()),
        app.http
            .post(app.url("/api/timelines/validate"))
            .header("content-type", "application/json")
            .body(text.clone()),
        app.http
            .post(app.url("/api/timeline-runs"))
            .header("content-type", "application/json")
            .body(text.clone()),
        app.http
            .post(app.url(&format!("/api/timeline-runs/{}/pause", urlencode(&text))))
            .header("content-type", "application/json")
            .body(text.clone()),
        app.http.get(app.url(&format!("/api/timeline-runs?{query}"))),
        app.http
            .post(app.url(&format!("/api/approvals/{}/decision", uuid::Uuid::new_v4())))
            .header("content-type", "application/json")
            .body(text.clone()),
        app.http
            .post(app.url(&format!("/api/approvals/{}/decision", urlencode(&text))))
            .header("content-type", "application/json")
            .body(text.clone()),
        app.http.get(app.url(&format!("/api/approvals?{query}"))),
        app.http.get(app.url(&format!("/api/audit?{query}"))),
        app.http.get(app.url(&format!("/api/incidents?{query}"))),
        app.http.get(app.url(&format!("/api/events?{query}"))),
        app.http.get(app.url(&format!("/ws?{query}"))),
        app.http.get(app.url(&format!("/api/incidents/{}", urlencode(&text)))),
    ];
    for request in requests {
        let request = request.build().map_err(|e| e.to_string())?;
        let described = format!("{} {}", request.method(), request.url());
        let response = app
            .http
            .execute(request)
            .await
            .map_err(|e| format!("{described}: {e}"))?;
        let status = response.status().as_u16();
        if status >= 500 {
            return Err(format!("{described} with {text:?}: {status}"));
        }
    }
    Ok(())
}

#[test]
fn random_input_anywhere_gets_a_2xx_or_a_4xx() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let app = runtime.block_on(spawn_app());
    let mut runner = TestRunner::new(proptest::test_runner::Config {
        cases: 96,
        ..Default::default()
    });
    runner
        .run(&(json(), query(), any::<bool>()), |(body, query, mangled)| {
            runtime
                .block_on(probe(&app, &body, &query, mangled))
                .map_err(TestCaseError::fail)
        })
        .unwrap();
}
