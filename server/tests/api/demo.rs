//! Demo mode (`ANTIBODY_DEMO=1`): the page is alive while someone watches
//! and quiet while nobody does; the autopilot decides what waits for a
//! person, and says so; viewers fire the primary scenarios within their
//! rate; WebSockets are capped, and a refused one is told why.

use std::{sync::Arc, time::Duration};

use engine::protocol::{RunState, ServerMessage};
use futures::StreamExt;
use server::configuration::{DemoArgs, Settings};
use tokio_tungstenite::tungstenite::{Message, protocol::frame::coding::CloseCode};

use crate::helpers::{TestApp, events_until, eventually, settings_in, spawn_app_with};

const TOKEN: &str = "operator-secret";

/// A demo server at `speed`, with a 2 s autopilot and the default policy
/// (which asks a person for wide or destructive plans).
fn demo(data: &tempfile::TempDir, speed: f64) -> Settings {
    Settings {
        demo: DemoArgs {
            enabled: true,
            autopilot: Duration::from_secs(2),
            ..DemoArgs::default()
        },
        operator_token: Some(TOKEN.into()),
        policy: Arc::new(engine::governance::Policy::builtin("default").unwrap()),
        ..settings_in(data, speed, Duration::from_millis(50))
    }
}

/// `events`, which must arrive within a minute.
async fn within<T>(what: &str, events: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), events)
        .await
        .unwrap_or_else(|_| panic!("{what}: not within a minute"))
}

async fn runs(app: &TestApp) -> Vec<engine::protocol::TimelineRun> {
    app.json("/api/timeline-runs").await
}

/// Every incident the server has opened, by its totals.
async fn opened(app: &TestApp) -> u64 {
    let metrics = app.snapshot().await.metrics;
    metrics.incidents_resolved + metrics.incidents_failed + metrics.incidents_active
}

#[tokio::test]
async fn a_demo_seeds_its_history_then_runs_only_while_someone_watches() {
    let app = spawn_app_with(|data| demo(data, 20.0)).await;
    // A fresh store: the primary scenarios, once, so the first page has history.
    let mut seeded = eventually(
        "the history is seeded",
        Duration::from_millis(100),
        Duration::from_secs(5),
        || async {
            let incidents = app.snapshot().await.incidents;
            (incidents.len() >= 3).then(|| {
                incidents
                    .iter()
                    .filter_map(|i| i.scenario_id.clone())
                    .collect::<Vec<_>>()
            })
        },
    )
    .await;
    seeded.sort();
    assert_eq!(seeded, ["api_slowdown", "database_cascade", "service_down"]);
    eventually(
        "the seeded incidents close",
        Duration::from_millis(250),
        Duration::from_secs(60),
        || async { (app.snapshot().await.metrics.incidents_active == 0).then_some(()) },
    )
    .await;

    // Nobody watching: nothing starts.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(opened(&app).await, 3, "an incident started with nobody watching");
    assert!(runs(&app).await.is_empty(), "the loop ran with nobody watching");

    // A viewer (no token; watching needs none) sees incidents flow within 10 s.
    let mut viewer = app.connect("").await;
    let created = tokio::time::timeout(
        Duration::from_secs(10),
        events_until(&mut viewer, |e| {
            matches!(e.message, ServerMessage::IncidentCreated { .. })
        }),
    )
    .await
    .expect("an incident within 10 s of a viewer arriving");
    assert!(!created.is_empty());
    let run = runs(&app).await.into_iter().next().expect("the demo's run");
    assert_eq!((run.timeline_id.as_str(), run.state), ("demo_loop", RunState::Running));

    // The viewer leaves: the schedule pauses (what it opened carries on).
    viewer.close(None).await.unwrap();
    drop(viewer);
    eventually(
        "the loop pauses",
        Duration::from_millis(100),
        Duration::from_secs(5),
        || async {
            let runs = runs(&app).await;
            (runs[0].state == RunState::Paused).then_some(())
        },
    )
    .await;
    let paused_at = runs(&app).await[0].elapsed_seconds;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        runs(&app).await[0].elapsed_seconds,
        paused_at,
        "the schedule kept going"
    );

    // Someone comes back: the same run resumes.
    let _back = app.connect("").await;
    eventually(
        "the loop resumes",
        Duration::from_millis(100),
        Duration::from_secs(5),
        || async {
            let runs = runs(&app).await;
            (runs.len() == 1 && runs[0].state == RunState::Running).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn the_autopilot_decides_after_its_countdown_and_the_audit_log_says_so() {
    let app = spawn_app_with(|data| demo(data, 10.0)).await;
    // The seeded cascade asks a person (the default policy's rule for wide
    // plans); nobody answers.
    let mut socket = app.connect("").await;
    let asked = within(
        "an approval is requested",
        events_until(&mut socket, |e| {
            matches!(&e.message, ServerMessage::ApprovalRequested { .. })
        }),
    )
    .await;
    let ServerMessage::ApprovalRequested { approval } = &asked.last().unwrap().1.message else {
        unreachable!()
    };
    let incident = approval.incident_id;
    let countdown = approval.autopilot_at.expect("the countdown is on the request") - approval.requested_at;
    assert_eq!(countdown.num_seconds(), 2);
    let decided = within(
        "the autopilot decides",
        events_until(&mut socket, |e| {
            matches!(&e.message, ServerMessage::ApprovalDecided { approval: a } if a.approval_id == approval.approval_id)
        }),
    )
    .await;
    let ServerMessage::ApprovalDecided { approval: decided } = &decided.last().unwrap().1.message else {
        unreachable!()
    };
    assert_eq!(decided.state, engine::protocol::ApprovalState::Approved);
    assert_eq!(decided.decided_by.as_deref(), Some(engine::governance::AUTOPILOT));
    app.engine.flush().await;
    let audit: Vec<engine::protocol::AuditEntry> = app.json(&format!("/api/audit?incident_id={incident}")).await;
    let row = audit
        .iter()
        .find(|row| row.kind == "approval_decided")
        .expect("the decision is audited");
    assert_eq!(
        (row.actor.as_str(), row.decision.as_str()),
        ("autopilot (demo)", "approved")
    );

    // Nobody may pose as the autopilot.
    let posing = app
        .http
        .post(app.url(&format!("/api/approvals/{}/decision", approval.approval_id)))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"decision": "approve", "approver": "Autopilot (demo)"}))
        .send()
        .await
        .unwrap();
    assert_eq!(posing.status(), 422);
}

#[tokio::test]
async fn a_viewers_fourth_primary_scenario_in_a_minute_gets_429_with_retry_after() {
    let app = spawn_app_with(|data| demo(data, 10.0)).await;
    for _ in 0..3 {
        assert_eq!(app.trigger("service_down").await.status(), 201);
    }
    let fourth = app.trigger("database_cascade").await;
    assert_eq!(fourth.status(), 429);
    let wait: u64 = fourth.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=20).contains(&wait), "{wait}");
    let problem: serde_json::Value = fourth.json().await.unwrap();
    assert!(problem["detail"].as_str().unwrap().contains("3 scenarios a minute"));

    // Anything but the primary scenarios needs the token, viewer or not.
    let other = app.trigger("memory_leak_gradual").await;
    assert_eq!(other.status(), 401);
    // The dashboard's form says the same: one at a time, primary only.
    let form = |body: &'static str| {
        app.http
            .post(app.url("/api/trigger_scenario"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    assert_eq!(form("scenario_id=memory_leak_gradual").await.unwrap().status(), 401);
    assert_eq!(form("scenario_id=service_down&count=2").await.unwrap().status(), 401);
    let spent = form("scenario_id=service_down").await.unwrap();
    assert_eq!(spent.status(), 429);
    assert!(spent.headers().contains_key("retry-after"));
    // The operator is not a viewer.
    let operator = app
        .http
        .post(app.url("/api/scenarios/memory_leak_gradual/trigger"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(operator.status(), 201);
}

/// The close frame a refused socket gets, if it gets one first.
async fn refusal(socket: &mut crate::helpers::Socket) -> Option<(CloseCode, String)> {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .ok()??
        {
            Ok(Message::Close(Some(frame))) => return Some((frame.code, frame.reason.to_string())),
            Ok(Message::Text(text)) => {
                let envelope: engine::protocol::Envelope = serde_json::from_str(&text).unwrap();
                if matches!(envelope.message, ServerMessage::Snapshot { .. }) {
                    return None;
                }
            }
            Ok(_) => {}
            Err(_) => return None,
        }
    }
}

#[tokio::test]
async fn the_socket_past_the_cap_from_one_address_is_refused_with_its_reason() {
    let app = spawn_app_with(|data| Settings {
        ws_max_per_ip: Some(2),
        ..demo(data, 10.0)
    })
    .await;
    let mut first = app.connect("").await;
    let mut second = app.connect("").await;
    assert_eq!(refusal(&mut first).await, None, "within the cap: a snapshot");
    assert_eq!(refusal(&mut second).await, None);
    let mut third = app.connect("").await;
    let (code, reason) = refusal(&mut third).await.expect("the third is refused");
    assert_eq!(code, CloseCode::Policy);
    assert!(
        reason.contains("too many dashboards open from your address"),
        "{reason}"
    );

    // A seat comes free when a dashboard leaves.
    first.close(None).await.unwrap();
    drop(first);
    eventually(
        "a seat comes free",
        Duration::from_millis(100),
        Duration::from_secs(5),
        || async {
            let mut again = app.connect("").await;
            refusal(&mut again).await.is_none().then_some(again)
        },
    )
    .await;
}

#[tokio::test]
async fn the_socket_past_the_total_cap_is_refused_with_its_reason() {
    let app = spawn_app_with(|data| Settings {
        ws_max: 1,
        ..settings_in(data, 10.0, Duration::from_millis(50))
    })
    .await;
    let mut first = app.connect("").await;
    assert_eq!(refusal(&mut first).await, None);
    let mut second = app.connect("").await;
    let (code, reason) = refusal(&mut second).await.expect("the second is refused");
    assert_eq!(code, CloseCode::Policy);
    assert!(reason.contains("as many dashboards open as it allows"), "{reason}");
}
