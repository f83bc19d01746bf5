use std::time::Duration;

use engine::protocol::{IncidentStatus, ServerMessage};
use futures::StreamExt;
use tokio_tungstenite::tungstenite::{Message, protocol::frame::coding::CloseCode};

use crate::helpers::{next_event, settings_in, spawn_app_with};

/// In real time an incident takes ~15 s; with a 50 ms grace period, shutdown
/// must interrupt it, tell the dashboards, then close them properly.
#[tokio::test]
async fn shutdown_interrupts_in_flight_incidents_visibly_then_closes_sockets() {
    let mut app = spawn_app_with(|data| settings_in(data, 1.0, Duration::from_millis(50))).await;
    let mut socket = app.connect("").await;
    next_event(&mut socket).await;
    let incident = app.fire("database_cascade").await;
    let id = incident.id;

    app.stop().await.expect("a clean stop");

    let mut interrupted = false;
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("frames before the close")
        {
            Some(Ok(Message::Text(text))) => {
                let envelope: engine::protocol::Envelope = serde_json::from_str(&text).unwrap();
                if let ServerMessage::IncidentStatus {
                    incident_id, status, ..
                } = envelope.message
                {
                    interrupted |= incident_id == id && status == IncidentStatus::Interrupted;
                }
            }
            Some(Ok(Message::Close(frame))) => break frame,
            other => panic!("expected events then a close frame, got {other:?}"),
        }
    };
    assert!(interrupted, "the interruption was published before the close");
    assert_eq!(close.expect("a close frame with a code").code, CloseCode::Away);
    assert_eq!(app.engine.incident(id).unwrap().status, IncidentStatus::Interrupted);
}

#[tokio::test]
async fn shutdown_lets_incidents_finish_within_the_grace_period() {
    let mut app = spawn_app_with(|data| settings_in(data, 200.0, Duration::from_secs(10))).await;
    let incident = app.fire("service_down").await;
    let id = incident.id;
    app.stop().await.expect("a clean stop");
    assert_eq!(app.engine.incident(id).unwrap().status, IncidentStatus::Resolved);
}

/// The real binary, stopped by a real SIGTERM: exits 0 after closing its
/// WebSockets with 1001.
#[cfg(unix)]
#[tokio::test]
async fn sigterm_stops_the_binary_gracefully() {
    let data = tempfile::tempdir().unwrap();
    let (mut child, addr) = crate::helpers::spawn_binary(data.path(), &["--shutdown-grace", "1"]).await;
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .unwrap();
    socket.next().await.expect("a snapshot").unwrap();

    let pid = child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );

    let close = loop {
        match tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a close frame")
        {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(close.unwrap().code, CloseCode::Away);
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
}
