//! The live connection: follows `/ws` and folds every event into the
//! dashboard state. Reconnects with exponential backoff and full jitter,
//! resuming from the last `seq` it applied, so nothing is lost or doubled.
//! When the socket keeps failing (a proxy that blocks WebSockets), it polls
//! `/api/events?since=` instead, from the same `seq`, and tries the socket
//! again every [`SOCKET_RETRY_WHILE_POLLING`]. A socket the server refuses
//! (close code 1008: too many dashboards) shows the server's reason, and is
//! tried again after [`RETRY_AFTER_REFUSAL`] or so, without polling.

#[cfg(feature = "browser")]
use leptos::prelude::*;

#[cfg(feature = "browser")]
use crate::{codec, state::DashboardState};

/// The WebSocket's state, as the connection indicator shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    /// Opening the socket.
    Connecting,
    /// Open: events arrive live.
    Live,
    /// Closed; trying again in this many seconds.
    Reconnecting { in_secs: u32 },
    /// Refused by the server (its reason is beside the signal); trying
    /// again in this many seconds.
    Refused { in_secs: u32 },
    /// The socket keeps failing: events arrive by polling.
    Polling,
    /// Neither the socket nor polling reaches the server.
    Offline,
}

impl Connection {
    /// The indicator's `data-state`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Live => "live",
            Self::Reconnecting { .. } => "reconnecting",
            Self::Refused { .. } => "refused",
            Self::Polling => "polling",
            Self::Offline => "offline",
        }
    }
}

/// How long a socket may take to open.
#[cfg(feature = "browser")]
const OPEN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// Socket attempts in a row that never delivered, before polling.
#[cfg(feature = "browser")]
const POLL_AFTER_FAILURES: u32 = 2;
/// How often to poll.
#[cfg(feature = "browser")]
const POLL_EVERY: std::time::Duration = std::time::Duration::from_secs(2);
/// While polling, how often to try the socket again.
#[cfg(feature = "browser")]
pub const SOCKET_RETRY_WHILE_POLLING: std::time::Duration = std::time::Duration::from_secs(10);
/// The close code of a socket the server refused (policy violation).
#[cfg(feature = "browser")]
const REFUSED: u16 = 1008;
/// The least wait after a refusal; as much again is added at random.
#[cfg(feature = "browser")]
pub const RETRY_AFTER_REFUSAL: std::time::Duration = std::time::Duration::from_secs(15);

/// Events asked for per poll (the API's largest page).
#[cfg(feature = "browser")]
const POLL_PAGE: u32 = 1000;

/// Reconnects back off from half a second to fifteen, with full jitter.
#[cfg(feature = "browser")]
const RECONNECT_BACKOFF: engine::protocol::Backoff = engine::protocol::Backoff {
    base: std::time::Duration::from_millis(500),
    cap: std::time::Duration::from_secs(15),
};

/// Follows the server's event stream for as long as the page lives;
/// `refusal` holds the server's reason while it refuses the socket.
#[cfg(feature = "browser")]
pub async fn follow(
    state: RwSignal<DashboardState>,
    connection: RwSignal<Connection>,
    lag_ms: RwSignal<Option<i64>>,
    refusal: RwSignal<Option<String>>,
) {
    use engine::protocol::Envelope;
    use futures::{SinkExt, StreamExt, future};
    use gloo_net::websocket::{Message, State, WebSocketError, futures::WebSocket};

    use crate::state::Applied;

    let mut failures: u32 = 0;
    loop {
        if failures >= POLL_AFTER_FAILURES {
            poll(state, connection, lag_ms).await;
        }
        connection.set(Connection::Connecting);
        // A statement of its own: the read guard must be gone before the
        // loop below writes to the state.
        let Some(url) = state.try_with_untracked(socket_url) else {
            // The dashboard is gone.
            return;
        };
        if let Ok(mut socket) = WebSocket::open(&url) {
            // The sink turns ready when the socket opens or fails to; a
            // proxy that swallows the upgrade gets neither, so the wait is
            // bounded.
            {
                let ready = future::poll_fn(|cx| socket.poll_ready_unpin(cx));
                let timeout = gloo_timers::future::sleep(OPEN_TIMEOUT);
                futures::pin_mut!(ready, timeout);
                let _ = future::select(ready, timeout).await;
            }
            let mut refused = None;
            if matches!(socket.state(), State::Open) {
                connection.set(Connection::Live);
                loop {
                    let message = match socket.next().await {
                        Some(Ok(message)) => message,
                        Some(Err(WebSocketError::ConnectionClose(event))) if event.code == REFUSED => {
                            refused = Some(event.reason);
                            break;
                        }
                        _ => break,
                    };
                    if refusal.try_with_untracked(Option::is_some) == Some(true) {
                        refusal.set(None);
                    }
                    // Only a connection that delivers resets the backoff, so
                    // a server that accepts and at once closes is not hammered.
                    failures = 0;
                    let Message::Text(text) = message else { continue };
                    let Ok(envelope) = codec::decode::<Envelope>(text.as_bytes()) else {
                        leptos::logging::warn!("ignoring a message that is not an event");
                        continue;
                    };
                    lag_ms.set(Some(
                        (js_sys::Date::now() as i64 - envelope.ts.timestamp_millis()).max(0),
                    ));
                    match state.try_update(|s| s.apply(&envelope)) {
                        // The dashboard is gone (a client-side navigation),
                        // and its stream with it: the server's seat is freed.
                        None => {
                            let _ = socket.close(None, None);
                            return;
                        }
                        // Reconnect at once: the server replays from last_seq.
                        Some(Applied::Gap) => break,
                        Some(_) => {}
                    }
                }
            }
            let _ = socket.close(None, None);
            if let Some(reason) = refused {
                refusal.set(Some(reason));
                let wait_ms = RETRY_AFTER_REFUSAL.as_secs_f64() * 1000.0 * (1.0 + js_sys::Math::random());
                count_down(wait_ms, |in_secs| connection.set(Connection::Refused { in_secs })).await;
                continue;
            }
        }
        failures = failures.saturating_add(1);
        if failures >= POLL_AFTER_FAILURES {
            continue;
        }
        // Full jitter under the backoff's ceiling, drawn in milliseconds:
        // `Backoff::wait`'s float-to-Duration conversion would bring its
        // panic formatting into the bundle for the same number.
        let ceiling_ms = RECONNECT_BACKOFF.ceiling(failures - 1).as_secs_f64() * 1000.0;
        let wait_ms = js_sys::Math::random() * ceiling_ms;
        count_down(wait_ms, |in_secs| connection.set(Connection::Reconnecting { in_secs })).await;
    }
}

/// Waits `wait_ms`, telling `show` the whole seconds left each second.
#[cfg(feature = "browser")]
async fn count_down(mut wait_ms: f64, show: impl Fn(u32)) {
    while wait_ms > 0.0 {
        show((wait_ms / 1000.0).ceil() as u32);
        let step = wait_ms.min(1000.0);
        gloo_timers::future::sleep(std::time::Duration::from_millis(step as u64)).await;
        wait_ms -= step;
    }
}

/// A JSON answer's body, read the one way the browser build reads JSON
/// ([`codec`]); none if it does not arrive whole or does not parse.
#[cfg(feature = "browser")]
async fn read<T: serde::de::DeserializeOwned>(response: gloo_net::http::Response) -> Option<T> {
    codec::decode(&response.binary().await.ok()?).ok()
}

/// Polls the event log for [`SOCKET_RETRY_WHILE_POLLING`], folding in what
/// it returns; then the caller tries the socket again.
#[cfg(feature = "browser")]
async fn poll(state: RwSignal<DashboardState>, connection: RwSignal<Connection>, lag_ms: RwSignal<Option<i64>>) {
    use engine::protocol::{EventPage, Snapshot};
    use gloo_net::http::Request;

    let until = js_sys::Date::now() + SOCKET_RETRY_WHILE_POLLING.as_millis() as f64;
    while js_sys::Date::now() < until {
        let Some(since) = state.try_with_untracked(|s| s.last_seq) else {
            // The dashboard is gone; `follow` sees it next.
            return;
        };
        let page = match Request::get(&format!("/api/events?since={since}&limit={POLL_PAGE}"))
            .send()
            .await
        {
            Ok(response) if response.ok() => read::<EventPage>(response).await,
            _ => None,
        };
        let Some(page) = page else {
            connection.set(Connection::Offline);
            gloo_timers::future::sleep(POLL_EVERY).await;
            continue;
        };
        connection.set(Connection::Polling);
        if page.last_seq < since {
            // Another log (the server restarted on another database): start
            // again from its snapshot.
            if let Ok(response) = Request::get("/api/snapshot").send().await
                && let Some(snapshot) = read::<Snapshot>(response).await
            {
                state.set(DashboardState::from_snapshot(&snapshot));
            }
            continue;
        }
        let full = page.events.len() as u32 == POLL_PAGE;
        if let Some(newest) = page.events.last() {
            lag_ms.set(Some((js_sys::Date::now() as i64 - newest.ts.timestamp_millis()).max(0)));
        }
        state.update(|s| {
            for envelope in &page.events {
                s.apply(envelope);
            }
        });
        // A full page means more are waiting: fetch them at once.
        if !full {
            gloo_timers::future::sleep(POLL_EVERY).await;
        }
    }
}

/// `ws(s)://<this host>/ws`, resuming after what `state` already has.
#[cfg(feature = "browser")]
fn socket_url(state: &DashboardState) -> String {
    let location = web_sys::window().expect("a browser window").location();
    let scheme = if location.protocol().ok().as_deref() == Some("https:") {
        "wss"
    } else {
        "ws"
    };
    let host = location.host().unwrap_or_default();
    format!("{scheme}://{host}/ws?epoch={}&since={}", state.epoch, state.last_seq)
}
