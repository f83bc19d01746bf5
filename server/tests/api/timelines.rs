//! Timelines over HTTP: listing, checking files, starting runs (built-in
//! and pasted), following them on the stream, steering them, and finding
//! them again after a restart.

use std::time::Duration;

use engine::protocol::{RunState, ServerMessage, TimelineRun};
use serde_json::{Value, json};

use crate::helpers::{events_until, eventually, settings_in, spawn_app, spawn_app_in};

/// Two quick incidents, one of them generated.
fn quick_timeline() -> Value {
    json!({
        "name": "Quick pair",
        "description": "two incidents, one generated",
        "duration_minutes": 1,
        "incidents": [
            {"delay_seconds": 0, "type": "predefined", "scenario_id": "service_down", "comment": "first"},
            {"delay_seconds": 10, "type": "llm_generated", "llm_prompt": "redis cache failure", "comment": "second"}
        ]
    })
}

#[tokio::test]
async fn the_built_in_timelines_are_listed_with_their_schedules() {
    let app = spawn_app().await;
    let list: Value = app.json("/api/timelines").await;
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["busy_day", "demo_loop", "gradual_escalation", "incident_storm"]);
    let busy_day = &list[0];
    assert_eq!(busy_day["duration_minutes"], 30.0);
    assert_eq!(busy_day["schedule"].as_array().unwrap().len(), 4);
    assert_eq!(busy_day["schedule"][1]["delay_seconds"], 300.0);
    assert_eq!(busy_day["schedule"][1]["source"], "cpu_spike_traffic_surge");
}

#[tokio::test]
async fn a_timeline_file_is_checked_with_every_problem_at_its_path() {
    let app = spawn_app().await;
    let validate = |body: String| app.validate_timeline(body);
    let good = validate(quick_timeline().to_string()).await;
    assert_eq!(good.status(), 200);
    let summary: Value = good.json().await.unwrap();
    assert_eq!(summary["schedule"][1]["kind"], "llm_generated");

    let bad = json!({"name": "x", "duration_minutes": 1, "incidents": [
        {"delay_seconds": -1, "type": "predefined", "scenario_id": "servce_down"},
        {"delay_seconds": 0, "type": "llm_generated"}
    ]});
    let response = validate(bad.to_string()).await;
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.unwrap();
    let errors: Vec<(String, String)> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap().to_owned(),
                e["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert_eq!(errors[0].0, "incidents[0].delay_seconds");
    assert_eq!(
        errors[1],
        (
            "incidents[0].scenario_id".to_owned(),
            "no scenario `servce_down`; did you mean `service_down`?".to_owned()
        )
    );
    assert_eq!(errors[2].0, "incidents[1].llm_prompt");

    let not_json = validate("{\"name\": ".into()).await;
    assert_eq!(not_json.status(), 422);
    let not_text = app.validate_timeline(vec![0xff, b'{']).await;
    assert_eq!(not_text.status(), 400);
    let problem: Value = not_text.json().await.unwrap();
    assert!(problem["detail"].as_str().unwrap().contains("not UTF-8"), "{problem}");
}

#[tokio::test]
async fn a_pasted_timeline_runs_to_a_scored_end_on_the_stream_and_in_the_store() {
    let app = spawn_app().await;
    let mut socket = app.connect("").await;
    let response = app
        .http
        .post(app.url("/api/timeline-runs"))
        .json(&json!({"timeline": quick_timeline(), "speed": 100.0, "seed": 4}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let started: TimelineRun = response.json().await.unwrap();
    assert_eq!(started.state, RunState::Running);
    assert_eq!(started.timeline_id, "custom");

    let events = events_until(&mut socket, |e| {
        matches!(&e.message, ServerMessage::TimelineProgress { run }
            if run.run_id == started.run_id && run.state.is_final())
    })
    .await;
    let progress: Vec<&TimelineRun> = events
        .iter()
        .filter_map(|(_, e)| match &e.message {
            ServerMessage::TimelineProgress { run } if run.run_id == started.run_id => Some(run),
            _ => None,
        })
        .collect();
    let done = progress.last().unwrap();
    assert_eq!(done.state, RunState::Completed);
    assert!(progress.len() >= 4, "started, two fired, closed...: {}", progress.len());
    for entry in &done.entries {
        let id = entry.incident_id.expect("every entry opened an incident");
        assert!(entry.status.is_some_and(|s| s.is_terminal()));
        // The incident is a real one, with its own page.
        let detail = app
            .http
            .get(app.url(&format!("/api/incidents/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(detail.status(), 200);
    }
    assert!(done.entries[1].note.as_deref().unwrap().contains("family `cache`"));
    assert!(done.score.points > 0.0);

    let stored: TimelineRun = app.json(&format!("/api/timeline-runs/{}", started.run_id)).await;
    assert_eq!(&stored, *done);
    let listed: Vec<TimelineRun> = app.json("/api/timeline-runs?timeline_id=custom").await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].run_id, started.run_id);
    // A reloaded page finds the run in its first snapshot.
    assert_eq!(app.snapshot().await.timelines[0].run_id, started.run_id);
}

#[tokio::test]
async fn runs_are_paused_resumed_and_cancelled_and_bad_requests_are_named() {
    let app = spawn_app().await;
    let post = |path: String, body: Value| app.http.post(app.url(&path)).json(&body).send();
    // busy_day at speed 1: nothing after its first incident for 5 minutes.
    let started: TimelineRun = post(
        "/api/timeline-runs".into(),
        json!({"timeline_id": "busy_day", "speed": 1.0}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let steer = |action: &str| post(format!("/api/timeline-runs/{}/{action}", started.run_id), json!({}));
    assert_eq!(steer("pause").await.unwrap().status(), 200);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let paused: TimelineRun = app.json(&format!("/api/timeline-runs/{}", started.run_id)).await;
    assert_eq!(paused.state, RunState::Paused);
    assert_eq!(steer("resume").await.unwrap().status(), 200);
    assert_eq!(steer("cancel").await.unwrap().status(), 200);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let again = steer("cancel").await.unwrap();
    assert_eq!(again.status(), 409);
    assert!(again.text().await.unwrap().contains("already cancelled"));
    let bad = steer("explode").await.unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("use pause, resume or cancel"));

    let unknown = post(format!("/api/timeline-runs/{}/pause", uuid::Uuid::nil()), json!({}))
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let misspelt = post("/api/timeline-runs".into(), json!({"timeline_id": "busyday"}))
        .await
        .unwrap();
    assert_eq!(misspelt.status(), 404);
    assert!(misspelt.text().await.unwrap().contains("did you mean `busy_day`?"));
    let neither = post("/api/timeline-runs".into(), json!({"speed": 2.0})).await.unwrap();
    assert_eq!(neither.status(), 422);
    let too_fast = post(
        "/api/timeline-runs".into(),
        json!({"timeline_id": "busy_day", "speed": 1e9}),
    )
    .await
    .unwrap();
    assert_eq!(too_fast.status(), 422);
    let problem: Value = too_fast.json().await.unwrap();
    assert_eq!(problem["field"], "speed");
    let wrong_type = post("/api/timeline-runs".into(), json!({"timeline_id": 7}))
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), 422);
    let bad_limit = app
        .http
        .get(app.url("/api/timeline-runs?limit=0"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_limit.status(), 400);
}

#[tokio::test]
async fn a_run_the_server_stopped_during_is_marked_interrupted_after_a_restart() {
    let data = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let settings = || settings_in(&data, 200.0, Duration::from_millis(200));
    let mut app = spawn_app_in(data.clone(), settings()).await;
    let started: TimelineRun = app
        .http
        .post(app.url("/api/timeline-runs"))
        .json(&json!({"timeline_id": "busy_day", "speed": 1.0}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    app.engine.flush().await;
    app.stop().await.unwrap();

    let app = spawn_app_in(data.clone(), settings()).await;
    let run: TimelineRun = app.json(&format!("/api/timeline-runs/{}", started.run_id)).await;
    assert_eq!(run.state, RunState::Interrupted);
    assert_eq!(run.name, "Busy Day");
}

/// `antibody timeline ...` against the app, as a user would run it.
async fn cli(app: &crate::helpers::TestApp, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_antibody"))
        .arg("timeline")
        .args(args)
        .args(["--url", &app.url("")])
        .env("RUST_BACKTRACE", "0")
        .output()
        .await
        .expect("the binary runs")
}

#[tokio::test]
async fn the_command_line_lists_and_runs_timelines_on_a_server() {
    let app = spawn_app().await;
    let list = cli(&app, &["list"]).await;
    assert!(list.status.success(), "{}", String::from_utf8_lossy(&list.stderr));
    let table = String::from_utf8(list.stdout).unwrap();
    for needle in ["| busy_day", "| Incident Storm", "| 30 min", "| 5 "] {
        assert!(table.contains(needle), "{needle} in\n{table}");
    }

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pair.json");
    std::fs::write(&file, quick_timeline().to_string()).unwrap();
    let file = file.to_str().unwrap();
    let run = cli(&app, &["run", "--file", file, "--speed", "100", "--yes"]).await;
    let out = String::from_utf8_lossy(&run.stdout);
    assert_eq!(
        run.status.code(),
        Some(0),
        "{out}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        out.contains("| +00:10 | generated  | redis cache failure |"),
        "the schedule first:\n{out}"
    );
    assert!(
        out.contains("opened Cache failure on"),
        "each incident as it opens:\n{out}"
    );
    assert!(out.contains("completed: score"), "the summary:\n{out}");
    // The run is the server's: the store has it.
    let runs: Vec<TimelineRun> = app.json("/api/timeline-runs").await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].state, RunState::Completed);

    std::fs::write(
        dir.path().join("bad.json"),
        r#"{"name": "x", "duration_minutes": 1, "incidents": []}"#,
    )
    .unwrap();
    let bad = cli(
        &app,
        &["run", "--file", dir.path().join("bad.json").to_str().unwrap(), "--yes"],
    )
    .await;
    assert_eq!(bad.status.code(), Some(2), "an invalid file exits 2");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("incidents: lists no incidents"));
    let unknown = cli(&app, &["run", "no_such_timeline", "--yes"]).await;
    assert_eq!(unknown.status.code(), Some(2));
}

#[test]
fn the_command_line_runs_a_timeline_on_an_embedded_engine_without_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pair.json");
    std::fs::write(&file, quick_timeline().to_string()).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_antibody"))
        .args([
            "timeline",
            "run",
            "--file",
            file.to_str().unwrap(),
            "--speed",
            "200",
            "--yes",
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let run: TimelineRun = serde_json::from_slice(&out.stdout).expect("--json prints the run");
    assert_eq!(run.state, RunState::Completed);
    assert!(run.entries.iter().all(|e| e.incident_id.is_some()));
}

#[tokio::test]
async fn no_more_runs_go_at_once_than_the_server_allows() {
    let app = spawn_app().await;
    let start = || app.start_run(json!({"timeline_id": "busy_day", "speed": 0.01}));
    let mut going = Vec::new();
    for _ in 0..engine::timeline::runner::MAX_ACTIVE_RUNS {
        let response = start().await;
        assert_eq!(response.status(), 201);
        going.push(response.json::<TimelineRun>().await.unwrap());
    }
    let refused = start().await;
    assert_eq!(refused.status(), 409);
    let problem: Value = refused.json().await.unwrap();
    assert!(
        problem["detail"].as_str().unwrap().contains("runs are already going"),
        "{problem}"
    );

    // A cancelled run makes room for the next.
    assert_eq!(app.steer_run(going[0].run_id, "cancel").await.status(), 200);
    eventually(
        "a run starts once another is cancelled",
        Duration::from_millis(20),
        Duration::from_secs(5),
        || async { (start().await.status() == 201).then_some(()) },
    )
    .await;
}
