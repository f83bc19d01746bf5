//! Durability: the real binary, killed with SIGKILL mid-incident, then
//! started again on the same database.

use std::time::Duration;

use engine::protocol::{Envelope, ServerMessage};
use futures::StreamExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::spawn_binary;

#[cfg(unix)]
#[tokio::test]
async fn a_killed_server_restarts_with_its_history_and_marks_the_interrupted_incident() {
    killed_mid_incident_then_restarted("full").await;
}

/// `synchronous = NORMAL` defers the fsync, not the write: what the
/// process committed is in the OS, so a killed process loses nothing
/// either (a power cut could; docs/durability.md).
#[cfg(unix)]
#[tokio::test]
async fn a_killed_server_loses_nothing_under_normal_sync_either() {
    killed_mid_incident_then_restarted("normal").await;
}

#[cfg(unix)]
async fn killed_mid_incident_then_restarted(sqlite_sync: &str) {
    let data = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let args = ["--speed", "1", "--sqlite-sync", sqlite_sync];
    // Real time: an incident takes about 15 s, so the kill lands mid-way.
    let (mut child, addr) = spawn_binary(data.path(), &args).await;
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .unwrap();
    let response = http
        .post(format!("http://{addr}/api/scenarios/database_cascade/trigger"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Everything a dashboard saw before the kill, agent work included.
    let mut seen: Vec<Envelope> = Vec::new();
    while !seen
        .iter()
        .any(|e| matches!(&e.message, ServerMessage::AgentAction { action, .. } if action.duration_ms.is_some()))
    {
        let frame = tokio::time::timeout(Duration::from_secs(20), socket.next())
            .await
            .expect("agents report within 20 s")
            .unwrap()
            .unwrap();
        if let Message::Text(text) = frame {
            let envelope: Envelope = serde_json::from_str(&text).unwrap();
            if !matches!(envelope.message, ServerMessage::Snapshot { .. }) {
                seen.push(envelope);
            }
        }
    }
    child.start_kill().unwrap();
    child.wait().await.unwrap();

    let (_child, addr) = spawn_binary(data.path(), &args).await;
    let detail: Value = http
        .get(format!("http://{addr}/api/incidents/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(detail["incident"]["status"], "interrupted", "{detail}");
    let stored: Vec<Envelope> =
        serde_json::from_value(detail["timeline"].clone()).expect("the timeline parses as events");
    for event in seen.iter().filter(|e| {
        !matches!(
            e.message,
            ServerMessage::TwinHealth { .. }
                | ServerMessage::SwarmStats { .. }
                | ServerMessage::PerformanceMetrics { .. }
        )
    }) {
        assert!(
            stored.contains(event),
            "event {} reached a dashboard before the kill but is not stored",
            event.seq
        );
    }
    let page: Value = http
        .get(format!("http://{addr}/api/events?since=0&limit=1000"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let all: Vec<Envelope> = serde_json::from_value(page["events"].clone()).unwrap();
    for event in &seen {
        assert!(all.contains(event), "event {} is lost", event.seq);
    }
    let seqs: Vec<u64> = all.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "gap-free across the restart"
    );
    let metrics: Value = http
        .get(format!("http://{addr}/api/metrics"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metrics["incidents_failed"], 1, "the interruption counts");
    assert_eq!(metrics["incidents_active"], 0, "nothing is left active forever");

    // A dashboard that reconnects with its old position gets exactly the rest.
    let snapshot_epoch = {
        let (mut fresh, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
            .await
            .unwrap();
        let Some(Ok(Message::Text(text))) = fresh.next().await else {
            panic!("a snapshot")
        };
        let envelope: Envelope = serde_json::from_str(&text).unwrap();
        let ServerMessage::Snapshot { snapshot } = envelope.message else {
            panic!("a snapshot first")
        };
        assert!(snapshot.incidents.iter().any(|i| i.id.to_string() == id));
        snapshot.epoch
    };
    let last_seen = seen.last().unwrap().seq;
    let (mut resumed, _) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/ws?epoch={snapshot_epoch}&since={last_seen}"))
            .await
            .unwrap();
    let Some(Ok(Message::Text(text))) = resumed.next().await else {
        panic!("an event")
    };
    let first: Envelope = serde_json::from_str(&text).unwrap();
    assert_eq!(
        first.seq,
        last_seen + 1,
        "the epoch survived the restart, so the client resumes by seq"
    );
}

/// A store that answers pings but refuses every event (here a trigger that
/// aborts each insert, as a full disk would): `/readyz` says so and why, a
/// request that needs its event stored waits instead of failing, and once
/// the store takes events again nothing was lost.
#[tokio::test]
async fn a_store_that_refuses_events_makes_the_server_unready_until_it_takes_them() {
    if crate::helpers::on_postgres() {
        // The refusal is made with SQLite's triggers; the writer and the
        // route are the same on both backends.
        return;
    }
    let mut database_url = String::new();
    let app = crate::helpers::spawn_app_with(|data| {
        let settings = crate::helpers::settings_in(data, 200.0, Duration::from_secs(5));
        database_url.clone_from(&settings.database_url);
        settings
    })
    .await;
    assert_eq!(app.get("/readyz").await.0, 200);

    let db = sqlx::AnyPool::connect(&database_url).await.unwrap();
    sqlx::query("CREATE TRIGGER refuse_events BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'disk full'); END")
        .execute(&db)
        .await
        .unwrap();
    // Sent on its own task (reqwest's future owns what it needs), so the
    // test can watch /readyz while the request waits on the store.
    let waiting = tokio::spawn(app.http.post(app.url("/api/scenarios/cache_failure/trigger")).send());
    let body = crate::helpers::eventually(
        "/readyz turned 503 while the store refused events",
        Duration::from_millis(50),
        Duration::from_secs(10),
        || async {
            let (status, body) = app.get("/readyz").await;
            (status == 503).then_some(body)
        },
    )
    .await;
    let reason = body["store"].as_str().unwrap();
    assert!(
        reason.starts_with("refusing events for ") && reason.contains("disk full"),
        "{reason}"
    );
    assert!(!waiting.is_finished(), "answered before its event was stored");

    sqlx::query("DROP TRIGGER refuse_events").execute(&db).await.unwrap();
    let response = tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .expect("the request is answered once the store takes events")
        .unwrap()
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.get("/readyz").await,
        (200, serde_json::json!({ "status": "ready", "store": "ok" }))
    );
    let (stored, _) = app.get(&format!("/api/incidents/{id}")).await;
    assert_eq!(stored, 200, "the incident was stored, not lost");
}

/// Another writer on the same store (here, a bump of the store's `seq`
/// counter, as a second server would make): this server's next batch is
/// numbered past a gap, so it stops publishing rather than show every
/// dashboard a gap; the request waiting on it is refused (503) instead of
/// hanging or being acknowledged, and `/readyz` says why.
#[tokio::test]
async fn a_seq_taken_by_another_writer_stops_publishing_and_says_why() {
    let app = crate::helpers::spawn_app().await;
    assert_eq!(app.get("/readyz").await.0, 200);
    let published = app.engine.log().last_seq();

    sqlx::any::install_default_drivers();
    let db = sqlx::AnyPool::connect(&app.database_url).await.unwrap();
    sqlx::query("UPDATE log_head SET last_seq = last_seq + 2 WHERE id = 1")
        .execute(&db)
        .await
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(30), app.trigger("cache_failure"))
        .await
        .expect("a halted log does not hang the request");
    assert_eq!(response.status().as_u16(), 503);
    let refused: Value = response.json().await.unwrap();
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .starts_with("the event log stopped publishing"),
        "{refused}"
    );

    let (status, body) = app.get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    let reason = body["store"].as_str().unwrap();
    assert!(
        reason.contains(&format!("where {} was next", published + 1)) && reason.contains("publishing stopped"),
        "{reason}"
    );
    assert_eq!(app.engine.log().last_seq(), published, "nothing published past the gap");
}
