//! `GET /ws`: the live event stream. Sends a `snapshot` (or, when the client
//! resumes with `?epoch=…&since=…`, exactly the events it missed), then
//! every new event as it is appended. Never waits on a slow client: each
//! connection reads the shared broadcast ring at its own pace, bounded by
//! its capacity; one that falls further behind gets a `resync` message and
//! is closed with code 1013, and resumes from its last `seq` on reconnect.
//! Every socket is pinged each heartbeat (20 s by default) and closed when
//! it has not answered the previous ping.
//!
//! Sockets are capped per client address and in all. A refused one is
//! still upgraded, so that it can be told why: it gets a close frame with
//! code 1008 and the reason, which the dashboard shows.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    extract::{
        ConnectInfo, Query, State,
        rejection::QueryRejection,
        ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code},
    },
    response::{IntoResponse, Response},
};
use engine::{
    Engine, Feed, FeedStart, Resume,
    event_log::Published,
    protocol::{Envelope, ServerMessage},
};
use futures::SinkExt;
use serde::Deserialize;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{debug, warn};
use uuid::Uuid;

use crate::problem::Problem;

/// Largest message accepted from a client; clients only ever send control
/// frames.
const MAX_CLIENT_MESSAGE_BYTES: usize = 4 * 1024;

/// Read buffer per socket (see `stream`).
const READ_BUFFER_BYTES: usize = 4 * 1024;

/// How many sockets may be open.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    /// From one client address (`None`: no limit).
    pub per_address: Option<u32>,
    /// From everyone.
    pub total: u32,
}

/// The open sockets: counted per address, closed together at shutdown,
/// and waited for.
#[derive(Clone)]
pub struct Sockets {
    /// Cancelled at shutdown; every socket then sends a close frame.
    closing: CancellationToken,
    /// Tracks every socket task.
    tasks: TaskTracker,
    /// How often each socket is pinged.
    heartbeat: Duration,
    /// How many may be open.
    caps: Caps,
    /// Open sockets per client address.
    seats: Arc<Mutex<HashMap<IpAddr, u32>>>,
    /// How many are open in all; the demo watches it.
    open: Arc<tokio::sync::watch::Sender<u32>>,
}

/// One admitted socket's place, given back when it drops.
struct Seat {
    address: IpAddr,
    seats: Arc<Mutex<HashMap<IpAddr, u32>>>,
    open: Arc<tokio::sync::watch::Sender<u32>>,
}

impl Drop for Seat {
    fn drop(&mut self) {
        let mut seats = self.seats.lock().expect("seats lock poisoned");
        let held = seats.get_mut(&self.address).expect("a seat is counted while it lives");
        *held -= 1;
        if *held == 0 {
            seats.remove(&self.address);
        }
        self.open.send_modify(|open| *open -= 1);
    }
}

/// Why a socket was refused: its close frame's reason (at most 123 bytes).
const TOO_MANY_FROM_ADDRESS: &str = "too many dashboards open from your address: close one, then reload";
const TOO_MANY: &str = "this server has as many dashboards open as it allows: try again later";

impl Sockets {
    pub fn new(heartbeat: Duration, caps: Caps) -> Self {
        Self {
            closing: CancellationToken::new(),
            tasks: TaskTracker::new(),
            heartbeat,
            caps,
            seats: Arc::default(),
            open: Arc::new(tokio::sync::watch::Sender::new(0)),
        }
    }

    /// How many sockets are open, as it changes.
    pub fn open(&self) -> tokio::sync::watch::Receiver<u32> {
        self.open.subscribe()
    }

    /// A place for one more socket from `address`, or why there is none.
    fn seat(&self, address: IpAddr) -> Result<Seat, &'static str> {
        let mut seats = self.seats.lock().expect("seats lock poisoned");
        if *self.open.borrow() >= self.caps.total {
            return Err(TOO_MANY);
        }
        let held = seats.entry(address).or_default();
        if self.caps.per_address.is_some_and(|cap| *held >= cap) {
            return Err(TOO_MANY_FROM_ADDRESS);
        }
        *held += 1;
        // Under the seats lock, so the count and the map agree.
        self.open.send_modify(|open| *open += 1);
        Ok(Seat {
            address,
            seats: Arc::clone(&self.seats),
            open: Arc::clone(&self.open),
        })
    }

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

#[allow(clippy::too_many_arguments)]
pub async fn stream(
    State(engine): State<Engine>,
    State(sockets): State<Sockets>,
    State(origins): State<super::edge::AllowedOrigins>,
    State(proxy): State<super::edge::TrustProxy>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: axum::http::HeaderMap,
    query: Result<Query<StreamQuery>, QueryRejection>,
    upgrade: WebSocketUpgrade,
) -> Response {
    // Cross-site WebSocket hijacking: a page elsewhere opening this stream
    // with the visitor's cookies.
    if let Err(reason) = origins.admits(&headers) {
        return Problem::field(axum::http::StatusCode::FORBIDDEN, "origin", reason).into_response();
    }
    let Query(query) = match query {
        Ok(query) => query,
        Err(rejection) => return Problem::query(&rejection, &["since", "epoch"]).into_response(),
    };
    let resume = match (query.epoch, query.since) {
        (Some(epoch), Some(since)) => Some(Resume { epoch, since }),
        _ => None,
    };
    let seat = sockets.seat(app::operator::client_ip(&headers, peer, proxy.0));
    let token = sockets.tasks.token();
    let closing = sockets.closing.clone();
    let heartbeat = sockets.heartbeat;
    upgrade
        .max_message_size(MAX_CLIENT_MESSAGE_BYTES)
        // tungstenite zero-fills its whole read buffer before every read;
        // at the default 128 KiB that was a third of the server's CPU under
        // 2,000 dashboards. Clients only send control frames.
        .read_buffer_size(READ_BUFFER_BYTES)
        .on_upgrade(move |mut socket| async move {
            let _token = token;
            match seat {
                Ok(_seat) => serve(socket, engine.feed(resume), closing, heartbeat).await,
                Err(reason) => {
                    metrics::counter!("antibody_ws_refused_total").increment(1);
                    let _ = socket.send(close(close_code::POLICY, reason)).await;
                }
            }
        })
}

fn encode(envelope: &Envelope) -> Message {
    Message::Text(Utf8Bytes::from(
        serde_json::to_string(envelope).expect("protocol types always serialize"),
    ))
}

/// A published event's shared JSON, as a frame, without copying it.
fn frame(event: &Published) -> Message {
    struct Json(std::sync::Arc<str>);
    impl AsRef<[u8]> for Json {
        fn as_ref(&self) -> &[u8] {
            self.0.as_bytes()
        }
    }
    let bytes = axum::body::Bytes::from_owner(Json(event.json()));
    Message::Text(Utf8Bytes::try_from(bytes).expect("JSON is UTF-8"))
}

/// Most frames written before one flush.
const MAX_FRAMES_PER_FLUSH: usize = 256;

fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }))
}

/// Counts the connection in `antibody_ws_connections` while it lives.
struct Connected;

impl Connected {
    fn new() -> Self {
        metrics::gauge!("antibody_ws_connections").increment(1.0);
        Self
    }
}

impl Drop for Connected {
    fn drop(&mut self) {
        metrics::gauge!("antibody_ws_connections").decrement(1.0);
    }
}

/// Sends one frame, counting it.
async fn send(socket: &mut WebSocket, message: Message) -> bool {
    let sent = socket.send(message).await.is_ok();
    if sent {
        metrics::counter!("antibody_ws_messages_sent_total").increment(1);
    }
    sent
}

/// The connection fell `missed` events behind: its queue overflowed. The
/// others are never slowed down for it; it is told to resync and closed,
/// and resumes from its last `seq` (or gets a fresh snapshot when that is
/// too old).
async fn resync(socket: &mut WebSocket, last_sent: u64, missed: u64) {
    warn!(missed, "a dashboard fell behind; asking it to resync");
    metrics::counter!("antibody_ws_resyncs_total").increment(1);
    let resync = Envelope {
        seq: last_sent,
        ts: chrono::Utc::now(),
        message: ServerMessage::Resync {
            reason: format!("this connection fell {missed} events behind; resume from your last seq"),
        },
    };
    let _ = send(socket, encode(&resync)).await;
    let _ = socket
        .send(close(close_code::AGAIN, "lagged: resume from your last seq"))
        .await;
}

async fn serve(mut socket: WebSocket, feed: Feed, closing: CancellationToken, heartbeat: Duration) {
    let _connected = Connected::new();
    let Feed { start, mut live } = feed;
    let (first, mut last_sent): (Vec<Message>, u64) = match start {
        FeedStart::Replay(events) => (
            events.iter().map(|e| frame(e)).collect(),
            events.last().map_or(0, |e| e.seq),
        ),
        FeedStart::Snapshot(snapshot) => {
            let seq = snapshot.last_seq;
            let message = encode(&Envelope {
                seq,
                ts: chrono::Utc::now(),
                message: ServerMessage::Snapshot { snapshot: *snapshot },
            });
            (vec![message], seq)
        }
    };
    for message in first {
        if !send(&mut socket, message).await {
            return;
        }
    }
    // A ping every `heartbeat`; a client that has not answered the last one
    // when the next is due is gone (a dead network, a frozen tab).
    let mut pings = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    let mut awaiting_pong = false;
    loop {
        tokio::select! {
            // Biased: events already appended (such as the interruptions
            // published at shutdown) go out before the close frame.
            biased;
            event = live.recv() => match event {
                Ok(event) => {
                    // Whatever else is already waiting goes out in the same
                    // flush: one write for many frames under load.
                    let mut frames = 1;
                    last_sent = event.seq;
                    if socket.feed(frame(&event)).await.is_err() {
                        return;
                    }
                    let mut lagged = None;
                    while frames < MAX_FRAMES_PER_FLUSH {
                        match live.try_recv() {
                            Ok(event) => {
                                last_sent = event.seq;
                                frames += 1;
                                if socket.feed(frame(&event)).await.is_err() {
                                    return;
                                }
                            }
                            Err(TryRecvError::Lagged(missed)) => {
                                lagged = Some(missed);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    if socket.flush().await.is_err() {
                        return;
                    }
                    metrics::counter!("antibody_ws_messages_sent_total").increment(frames as u64);
                    if let Some(missed) = lagged {
                        resync(&mut socket, last_sent, missed).await;
                        return;
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    resync(&mut socket, last_sent, missed).await;
                    return;
                }
                Err(RecvError::Closed) => return,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                // Clients send nothing but control frames; any frame shows
                // the connection is alive.
                Some(Ok(_)) => awaiting_pong = false,
            },
            _ = pings.tick() => {
                if awaiting_pong {
                    debug!("a dashboard missed its heartbeat; closing");
                    let _ = socket.send(close(close_code::AWAY, "no answer to ping")).await;
                    return;
                }
                awaiting_pong = true;
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
            },
            () = closing.cancelled() => {
                debug!("closing a dashboard for shutdown");
                let _ = socket.send(close(close_code::AWAY, "server shutting down")).await;
                return;
            }
        }
    }
}
