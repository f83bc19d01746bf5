use engine::protocol::{ActionStatus, AgentType, HealthState, IncidentStatus, ServerMessage};

use crate::helpers::{events_until, next_event, settings_in, spawn_app, spawn_app_with};

fn is_metrics_with(resolved: u64) -> impl Fn(&engine::protocol::Envelope) -> bool {
    move |e| matches!(&e.message, ServerMessage::PerformanceMetrics { metrics } if metrics.incidents_resolved == resolved)
}

#[tokio::test]
async fn a_client_receives_every_phase_of_an_incident_in_order() {
    let app = spawn_app().await;
    let mut socket = app.connect("").await;
    let (_, first) = next_event(&mut socket).await;
    let ServerMessage::Snapshot { snapshot } = first.message else {
        panic!("the first message is a snapshot");
    };
    assert_eq!(snapshot.last_seq, 0);

    let incident = app.fire("database_cascade").await;
    let events = events_until(&mut socket, is_metrics_with(1)).await;

    let seqs: Vec<u64> = events.iter().map(|(_, e)| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "seq is gap-free and ordered"
    );
    for (raw, _) in &events {
        let json: serde_json::Value = serde_json::from_str(raw).unwrap();
        assert!(json["ts"].as_str().is_some() && json["seq"].as_u64().is_some(), "{raw}");
    }

    let ServerMessage::IncidentCreated { incident: created } = &events[0].1.message else {
        panic!("the incident is announced first");
    };
    assert_eq!(created.id, incident.id);

    let phases: Vec<(AgentType, ActionStatus)> = events
        .iter()
        .filter_map(|(_, e)| match &e.message {
            ServerMessage::AgentAction { action, .. } => Some((action.agent_type, action.status)),
            _ => None,
        })
        .collect();
    // Each action starts, then completes, before the next starts.
    for pair in phases.chunks(2) {
        assert_eq!(pair[0], (pair[1].0, ActionStatus::InProgress), "{phases:?}");
        assert_eq!(pair[1].1, ActionStatus::Completed, "{phases:?}");
    }
    let agents: Vec<AgentType> = phases.iter().step_by(2).map(|p| p.0).collect();
    assert_eq!(
        agents[..3],
        [AgentType::Detection, AgentType::Diagnosis, AgentType::Prediction]
    );
    assert_eq!(agents.last(), Some(&AgentType::Communication));
    let resolution = &agents[3..agents.len() - 1];
    // The vote, the safety checks, at least one step, the verification.
    assert!(
        resolution.len() >= 4 && resolution.iter().all(|a| *a == AgentType::Resolution),
        "{agents:?}"
    );
    assert!(
        events.iter().any(
            |(raw, e)| matches!(&e.message, ServerMessage::Consensus { round, .. } if round.passed)
                && raw.contains("\"type\":\"consensus\"")
        ),
        "the vote is published"
    );
    for (_, e) in &events {
        if let ServerMessage::AgentAction { action, .. } = &e.message {
            if action.status == ActionStatus::Completed {
                assert!(
                    action.duration_ms.is_some() && action.confidence.is_some(),
                    "{action:?}"
                );
            } else {
                assert!(
                    action.duration_ms.is_none() && action.confidence.is_none(),
                    "{action:?}"
                );
            }
        }
    }

    let n = events.len();
    assert!(matches!(
        events[n - 2].1.message,
        ServerMessage::IncidentStatus { status: IncidentStatus::Resolved, cost_savings: Some(s), resolution_time: Some(t), .. }
            if s > 0.0 && t > 0.0
    ));
}

#[tokio::test]
async fn two_clients_receive_identical_sequences() {
    let app = spawn_app().await;
    let mut first = app.connect("").await;
    let mut second = app.connect("").await;
    next_event(&mut first).await;
    next_event(&mut second).await;

    // Two incidents at once, interleaving their events.
    let (a, b) = tokio::join!(app.fire("database_cascade"), app.fire("service_down"));
    assert_ne!(a.id, b.id);

    let seen_first = events_until(&mut first, is_metrics_with(2)).await;
    let seen_second = events_until(&mut second, is_metrics_with(2)).await;
    let raw = |events: &[(String, _)]| events.iter().map(|(raw, _)| raw.clone()).collect::<Vec<_>>();
    assert_eq!(raw(&seen_first), raw(&seen_second), "byte-identical streams");
    assert!(seen_first.len() >= 2 * 21);
}

#[tokio::test]
async fn a_client_that_resumes_gets_exactly_what_it_missed() {
    let app = spawn_app().await;
    let mut watcher = app.connect("").await;
    let (_, snapshot) = next_event(&mut watcher).await;
    let ServerMessage::Snapshot { snapshot } = snapshot.message else {
        panic!()
    };

    app.fire("api_slowdown").await;
    let all = events_until(&mut watcher, is_metrics_with(1)).await;

    let mut resumed = app.connect(&format!("?epoch={}&since=5", snapshot.epoch)).await;
    let replayed = events_until(&mut resumed, is_metrics_with(1)).await;
    let raw =
        |events: &[(String, engine::protocol::Envelope)]| events.iter().map(|(r, _)| r.clone()).collect::<Vec<_>>();
    assert_eq!(raw(&replayed), raw(&all[5..]), "events 6.. exactly, byte for byte");

    // A client from another server run gets a snapshot instead.
    let mut stranger = app.connect(&format!("?epoch={}&since=5", uuid::Uuid::nil())).await;
    let (_, first) = next_event(&mut stranger).await;
    assert!(matches!(first.message, ServerMessage::Snapshot { snapshot } if snapshot.last_seq == all.len() as u64));
}

#[tokio::test]
async fn a_malformed_since_is_refused_before_the_upgrade() {
    let app = spawn_app().await;
    let error = tokio_tungstenite::connect_async(format!("ws://{}/ws?since=yesterday", app.addr))
        .await
        .expect_err("the upgrade is refused");
    let tokio_tungstenite::tungstenite::Error::Http(response) = error else {
        panic!("expected an HTTP refusal, got {error:?}");
    };
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
    assert_eq!(body["field"], "since");
}

#[tokio::test]
async fn the_estate_is_in_the_snapshot_then_reported_live_through_fault_and_recovery() {
    // Slow enough that periodic reports (one per wall second) catch the
    // fault before the swarm repairs it.
    let app = spawn_app_with(|data| settings_in(data, 2.0, std::time::Duration::from_secs(5))).await;
    let mut socket = app.connect("").await;
    let (_, first) = next_event(&mut socket).await;
    let ServerMessage::Snapshot { snapshot } = first.message else {
        panic!("the first message is a snapshot");
    };
    assert_eq!(
        snapshot.twin.len(),
        17,
        "the estate file's services, the six pipeline agents included"
    );
    assert!(
        snapshot.twin.iter().all(|s| s.state == HealthState::Healthy),
        "{:?}",
        snapshot.twin
    );

    app.fire("database_cascade").await;
    let database_down = |e: &engine::protocol::Envelope| {
        matches!(&e.message, ServerMessage::TwinHealth { services }
            if services.iter().any(|s| s.name == "postgres-primary" && s.state != HealthState::Healthy))
    };
    events_until(&mut socket, database_down).await;
    events_until(&mut socket, |e| {
        matches!(
            &e.message,
            ServerMessage::IncidentStatus {
                status: IncidentStatus::Resolved,
                ..
            }
        )
    })
    .await;
    // The next report shows every service we own back within objectives.
    let (_, report) = loop {
        let event = next_event(&mut socket).await;
        if matches!(event.1.message, ServerMessage::TwinHealth { .. }) {
            break event;
        }
    };
    let ServerMessage::TwinHealth { services } = report.message else {
        unreachable!()
    };
    assert!(
        services.iter().all(|s| !s.owned || s.state == HealthState::Healthy),
        "{services:?}"
    );
}

#[tokio::test]
async fn a_client_that_stops_answering_pings_is_disconnected() {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;

    let app = spawn_app_with(|data| server::configuration::Settings {
        ws_heartbeat: std::time::Duration::from_millis(200),
        ..settings_in(data, 200.0, std::time::Duration::from_secs(5))
    })
    .await;
    // A client that reads keeps answering pings (tungstenite answers them
    // as it reads), so it stays connected across many heartbeats.
    let mut alive = app.connect("").await;
    let mut pings = 0;
    let until = tokio::time::Instant::now() + std::time::Duration::from_millis(1_500);
    while let Ok(Some(frame)) = tokio::time::timeout_at(until, alive.next()).await {
        match frame.unwrap() {
            Message::Ping(_) => pings += 1,
            Message::Close(frame) => panic!("a live client was closed: {frame:?}"),
            _ => {}
        }
    }
    assert!(pings >= 3, "pinged every heartbeat, got {pings}");

    // A client that stops reading never answers: it is closed.
    let mut silent = app.connect("").await;
    tokio::time::sleep(std::time::Duration::from_millis(1_000)).await;
    let mut closed = false;
    while let Ok(Some(Ok(frame))) = tokio::time::timeout(std::time::Duration::from_secs(2), silent.next()).await {
        if let Message::Close(Some(frame)) = frame {
            assert_eq!(frame.reason.as_str(), "no answer to ping");
            closed = true;
            break;
        }
    }
    assert!(closed, "the silent client was closed");
}

#[tokio::test]
async fn a_client_that_disconnects_again_and_again_ends_with_the_servers_log_exactly() {
    let app = spawn_app_with(|data| settings_in(data, 20.0, std::time::Duration::from_secs(5))).await;
    let mut socket = app.connect("").await;
    let (_, first) = next_event(&mut socket).await;
    let ServerMessage::Snapshot { snapshot } = first.message else {
        panic!("a snapshot first")
    };
    let (epoch, start) = (snapshot.epoch, snapshot.last_seq);
    for scenario in ["database_cascade", "memory_leak_gradual", "pod_crash_loop"] {
        app.fire(scenario).await;
    }
    // Read a few events, drop the connection mid-stream, resume from the
    // last one applied; until all three incidents have closed.
    let mut seen: Vec<(u64, String)> = Vec::new();
    let mut closed = 0;
    let mut reconnects = 0;
    let mut take = 1;
    while closed < 3 {
        for _ in 0..take {
            let (raw, event) = next_event(&mut socket).await;
            if let Some((last, _)) = seen.last() {
                assert_eq!(event.seq, last + 1, "no gap, no duplicate across reconnects");
            }
            if matches!(&event.message, ServerMessage::IncidentStatus { status, .. } if status.is_terminal()) {
                closed += 1;
            }
            seen.push((event.seq, raw));
            if closed == 3 {
                break;
            }
        }
        drop(socket);
        reconnects += 1;
        take = take % 7 + 1;
        let since = seen.last().map_or(start, |(seq, _)| *seq);
        socket = app.connect(&format!("?epoch={epoch}&since={since}")).await;
    }
    assert!(reconnects >= 10, "the client reconnected {reconnects} times");
    drop(socket.close(None).await);

    app.engine.flush().await;
    let last = seen.last().unwrap().0;
    let log: serde_json::Value = app
        .http
        .get(app.url(&format!("/api/events?since={start}&limit=1000")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let stored: Vec<(u64, String)> = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["seq"].as_u64().unwrap(), e.to_string()))
        .take_while(|(seq, _)| *seq <= last)
        .collect();
    assert_eq!(
        seen.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(),
        stored.iter().map(|(seq, _)| *seq).collect::<Vec<_>>()
    );
    for ((seq, raw), (_, stored)) in seen.iter().zip(&stored) {
        let live: serde_json::Value = serde_json::from_str(raw).unwrap();
        assert_eq!(
            live.to_string(),
            *stored,
            "event {seq} as received equals event {seq} as stored"
        );
    }
}

#[tokio::test]
async fn a_client_that_cannot_keep_up_is_told_to_resync_and_never_slows_the_others() {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::{Message, protocol::frame::coding::CloseCode};

    // A queue of 8 events per connection, so a stalled reader overflows soon.
    let app = spawn_app_with(|data| server::configuration::Settings {
        ws_queue: 8,
        ..settings_in(data, 200.0, std::time::Duration::from_secs(5))
    })
    .await;
    // The stalled dashboard: a tiny receive window, and it stops reading
    // after the snapshot, so the server's writes back up.
    let tcp = tokio::net::TcpSocket::new_v4().unwrap();
    tcp.set_recv_buffer_size(1024).unwrap();
    let stream = tcp.connect(app.addr).await.unwrap();
    let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
    let (mut stalled, _) = tokio_tungstenite::client_async(format!("ws://{}/ws", app.addr), stream)
        .await
        .unwrap();
    let snapshot = next_event(&mut stalled).await.1;
    assert!(matches!(snapshot.message, ServerMessage::Snapshot { .. }));
    let mut healthy = app.connect("").await;
    let first = next_event(&mut healthy).await.1.seq;

    // Incidents, 25 at a time, until the healthy dashboard has received
    // more than the kernel can buffer for the stalled one (its send buffer
    // at most, plus a little); the healthy one must miss nothing meanwhile.
    // The server's writes to the stalled socket then block, and its queue
    // overflows; it finds out when it can next write.
    let send_buffer_max: usize = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem")
        .ok()
        .and_then(|t| t.split_whitespace().nth(2)?.parse().ok())
        .unwrap_or(4 << 20);
    let mut received_bytes = 0;
    let mut expected = first;
    while received_bytes < send_buffer_max + (1 << 20) {
        let fired = futures::future::join_all((0..25).map(|_| app.fire("database_cascade"))).await;
        let mut open: std::collections::HashSet<String> = fired.iter().map(|i| i.id.to_string()).collect();
        while !open.is_empty() {
            let (text, event) = next_event(&mut healthy).await;
            received_bytes += text.len();
            assert!(
                !matches!(event.message, ServerMessage::Resync { .. }),
                "the healthy client is never told to resync"
            );
            expected += 1;
            assert_eq!(event.seq, expected, "the healthy client misses nothing");
            if let ServerMessage::IncidentStatus {
                incident_id, status, ..
            } = &event.message
                && status.is_terminal()
            {
                open.remove(&incident_id.to_string());
            }
        }
    }

    // The stalled client, reading at last: what was already in flight, in
    // order, then a `resync` naming how far behind it fell, then a close
    // saying why.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut last_seq = snapshot.seq;
    let resync = loop {
        let frame = tokio::time::timeout_at(deadline, stalled.next())
            .await
            .expect("the resync within 30 s")
            .expect("the resync comes before the end")
            .unwrap();
        if let Message::Text(text) = frame {
            let envelope: engine::protocol::Envelope = serde_json::from_str(&text).unwrap();
            if let ServerMessage::Resync { reason } = envelope.message {
                break (envelope.seq, reason);
            }
            assert_eq!(envelope.seq, last_seq + 1, "in order until it fell behind");
            last_seq = envelope.seq;
        }
    };
    assert_eq!(resync.0, last_seq, "the resync carries the last seq it was sent");
    assert!(resync.1.contains("fell") && resync.1.contains("behind"), "{}", resync.1);
    let close = loop {
        match stalled.next().await {
            Some(Ok(Message::Close(frame))) => break frame.expect("a close frame with a reason"),
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(
        close.code,
        CloseCode::Again,
        "1013: try again (resume from the last seq)"
    );
}
