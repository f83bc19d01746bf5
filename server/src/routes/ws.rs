//! `GET /ws`: the live event stream. Sends a `snapshot` (or, when the client
//! resumes with `?epoch=…&since=…`, exactly the events it missed), then
//! every new event as it is appended. Never waits on a slow client: one
//! that falls too far behind is closed with code 1013 and resumes from its
//! last `seq` on reconnect.

use std::time::Duration;

use axum::{
    extract::{
        Query, State,
        rejection::QueryRejection,
        ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code},
    },
    response::{IntoResponse, Response},
};
use engine::{
    Engine, Feed, FeedStart, Resume,
    protocol::{Envelope, ServerMessage},
};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{debug, warn};
use uuid::Uuid;

use crate::problem::Problem;

/// Largest message accepted from a client; clients only ever send control
/// frames.
const MAX_CLIENT_MESSAGE_BYTES: usize = 4 * 1024;

/// The open sockets: closed together at shutdown, and waited for.
#[derive(Clone, Default)]
pub struct Sockets {
    /// Cancelled at shutdown; every socket then sends a close frame.
    closing: CancellationToken,
    /// Tracks every socket task.
    tasks: TaskTracker,
}

impl Sockets {
    /// Sends every socket a close frame and waits for them to finish, for
    /// at most `patience`: a client that stopped reading must not hold the
    /// server up.
    pub async fn close_all(&self, patience: Duration) {
        self.closing.cancel();
        self.tasks.close();
        if tokio::time::timeout(patience, self.tasks.wait()).await.is_err() {
            warn!(
                open = self.tasks.len(),
                "some dashboards did not take their close frame in time"
            );
        }
    }
}

/// Where the client's stream should start.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    /// The epoch of the client's last snapshot.
    epoch: Option<Uuid>,
    /// The last `seq` the client applied.
    since: Option<u64>,
}

pub async fn stream(
    State(engine): State<Engine>,
    State(sockets): State<Sockets>,
    query: Result<Query<StreamQuery>, QueryRejection>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let Query(query) = match query {
        Ok(query) => query,
        Err(rejection) => return Problem::query(&rejection, &["since", "epoch"]).into_response(),
    };
    let resume = match (query.epoch, query.since) {
        (Some(epoch), Some(since)) => Some(Resume { epoch, since }),
        _ => None,
    };
    let token = sockets.tasks.token();
    let closing = sockets.closing.clone();
    upgrade
        .max_message_size(MAX_CLIENT_MESSAGE_BYTES)
        .on_upgrade(move |socket| async move {
            let _token = token;
            serve(socket, engine.feed(resume), closing).await;
        })
}

fn encode(envelope: &Envelope) -> Message {
    Message::Text(Utf8Bytes::from(
        serde_json::to_string(envelope).expect("protocol types always serialize"),
    ))
}

fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }))
}

async fn serve(mut socket: WebSocket, feed: Feed, closing: CancellationToken) {
    let Feed { start, mut live } = feed;
    let first: Vec<Message> = match start {
        FeedStart::Replay(events) => events.iter().map(|e| encode(e)).collect(),
        FeedStart::Snapshot(snapshot) => vec![encode(&Envelope {
            seq: snapshot.last_seq,
            ts: chrono::Utc::now(),
            message: ServerMessage::Snapshot { snapshot },
        })],
    };
    for message in first {
        if socket.send(message).await.is_err() {
            return;
        }
    }
    loop {
        tokio::select! {
            // Biased: events already appended (such as the interruptions
            // published at shutdown) go out before the close frame.
            biased;
            event = live.recv() => match event {
                Ok(event) => {
                    if socket.send(encode(&event)).await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    warn!(missed, "a dashboard fell behind; asking it to resume");
                    let _ = socket.send(close(close_code::AGAIN, "lagged: resume from your last seq")).await;
                    return;
                }
                Err(RecvError::Closed) => return,
            },
            incoming = socket.recv() => match incoming {
                // Pings are answered by the protocol layer; clients send nothing else.
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
            () = closing.cancelled() => {
                debug!("closing a dashboard for shutdown");
                let _ = socket.send(close(close_code::AWAY, "server shutting down")).await;
                return;
            }
        }
    }
}
