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
//!
//! `connection.rs` serves one admitted socket, and paces its writes.

mod connection;

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    num::NonZeroU32,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    extract::{
        ConnectInfo, Query, State,
        rejection::QueryRejection,
        ws::{WebSocketUpgrade, close_code},
    },
    response::{IntoResponse, Response},
};
use connection::{Pacing, Rhythm};
use engine::{Engine, Resume};
use serde::Deserialize;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::warn;
use uuid::Uuid;

use crate::problem::Problem;

/// Largest message accepted from a client; clients only ever send control
/// frames.
const MAX_CLIENT_MESSAGE_BYTES: usize = 4 * 1024;

/// Read buffer per socket (see `stream`).
const READ_BUFFER_BYTES: usize = 4 * 1024;

/// Write buffer per socket (see `stream`): a paced batch of a few events
/// fits in one write.
const WRITE_BUFFER_BYTES: usize = 8 * 1024;

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
    /// Socket writes a second for all sockets together (`None`: no limit).
    write_budget: Option<NonZeroU32>,
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
    /// Sockets pinged every `heartbeat`, capped by `caps`, writing
    /// `write_budget` times a second together at most (0: no limit).
    pub fn new(heartbeat: Duration, caps: Caps, write_budget: u32) -> Self {
        Self {
            closing: CancellationToken::new(),
            tasks: TaskTracker::new(),
            heartbeat,
            caps,
            write_budget: NonZeroU32::new(write_budget),
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
    let rhythm = Rhythm {
        closing: sockets.closing.clone(),
        heartbeat: sockets.heartbeat,
        pacing: Pacing {
            budget: sockets.write_budget,
            open: Arc::clone(&sockets.open),
        },
    };
    upgrade
        .max_message_size(MAX_CLIENT_MESSAGE_BYTES)
        // tungstenite zero-fills its whole read buffer before every read;
        // at the default 128 KiB that was a third of the server's CPU under
        // 2,000 dashboards. Clients only send control frames.
        .read_buffer_size(READ_BUFFER_BYTES)
        // tungstenite's write buffer keeps the capacity of the most it ever
        // held, for the socket's life: a replay of thousands of events fed
        // at once would stay allocated. Past this much, it writes while it
        // is fed, so only one frame larger than it can grow it.
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .on_upgrade(move |mut socket| async move {
            let _token = token;
            match seat {
                Ok(_seat) => connection::serve(socket, engine.feed(resume), rhythm).await,
                Err(reason) => {
                    metrics::counter!("antibody_ws_refused_total").increment(1);
                    let _ = socket.send(connection::close(close_code::POLICY, reason)).await;
                }
            }
        })
}
