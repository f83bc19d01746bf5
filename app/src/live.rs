//! The live connection: follows `/ws` and folds every event into the
//! dashboard state. Reconnects with exponential backoff and full jitter,
//! resuming from the last `seq` it applied, so nothing is lost or doubled.

#[cfg(feature = "hydrate")]
use leptos::prelude::*;

#[cfg(feature = "hydrate")]
use crate::state::DashboardState;

/// The WebSocket's state, as the connection indicator shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    /// Opening the socket.
    Connecting,
    /// Open: events arrive live.
    Live,
    /// Closed; trying again in this many seconds.
    Reconnecting { in_secs: u32 },
}

/// The first retry waits up to this long; each further one doubles it.
#[cfg(feature = "hydrate")]
const BACKOFF_BASE_MS: f64 = 500.0;
/// No retry waits longer than this.
#[cfg(feature = "hydrate")]
const BACKOFF_CAP_MS: f64 = 15_000.0;

/// Follows the server's event stream for as long as the page lives.
#[cfg(feature = "hydrate")]
pub async fn follow(state: RwSignal<DashboardState>, connection: RwSignal<Connection>, lag_ms: RwSignal<Option<i64>>) {
    use engine::protocol::Envelope;
    use futures::{SinkExt, StreamExt, future};
    use gloo_net::websocket::{Message, State, futures::WebSocket};

    use crate::state::Applied;

    let mut failures: u32 = 0;
    loop {
        connection.set(Connection::Connecting);
        // A statement of its own: the read guard must be gone before the
        // loop below writes to the state.
        let url = state.with_untracked(socket_url);
        if let Ok(mut socket) = WebSocket::open(&url) {
            // The sink turns ready when the socket opens or fails to.
            let _ = future::poll_fn(|cx| socket.poll_ready_unpin(cx)).await;
            if matches!(socket.state(), State::Open) {
                connection.set(Connection::Live);
                while let Some(Ok(message)) = socket.next().await {
                    // Only a connection that delivers resets the backoff, so
                    // a server that accepts and at once closes is not hammered.
                    failures = 0;
                    let Message::Text(text) = message else { continue };
                    let Ok(envelope) = serde_json::from_str::<Envelope>(&text) else {
                        leptos::logging::warn!("ignoring a message that is not an event");
                        continue;
                    };
                    lag_ms.set(Some(
                        (js_sys::Date::now() as i64 - envelope.ts.timestamp_millis()).max(0),
                    ));
                    if state.try_update(|s| s.apply(&envelope)) == Some(Applied::Gap) {
                        // Reconnect at once: the server replays from last_seq.
                        break;
                    }
                }
            }
            let _ = socket.close(None, None);
        }
        failures = failures.saturating_add(1);
        let ceiling = (BACKOFF_BASE_MS * 2f64.powi(failures.min(16) as i32 - 1)).min(BACKOFF_CAP_MS);
        let mut wait_ms = js_sys::Math::random() * ceiling;
        while wait_ms > 0.0 {
            connection.set(Connection::Reconnecting {
                in_secs: (wait_ms / 1000.0).ceil() as u32,
            });
            let step = wait_ms.min(1000.0);
            gloo_timers::future::sleep(std::time::Duration::from_millis(step as u64)).await;
            wait_ms -= step;
        }
    }
}

/// `ws(s)://<this host>/ws`, resuming after what `state` already has.
#[cfg(feature = "hydrate")]
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
