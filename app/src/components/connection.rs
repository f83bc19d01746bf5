//! The connection indicator: green while the WebSocket is open, amber while
//! connecting, reconnecting or polling, red when the server is unreachable
//! or refuses the connection (with the server's reason).

use leptos::prelude::*;

use crate::live::Connection;

#[component]
pub fn ConnectionIndicator(connection: RwSignal<Connection>, refusal: RwSignal<Option<String>>) -> impl IntoView {
    let class = move || match connection.get() {
        Connection::Live => "conn conn-live",
        Connection::Connecting | Connection::Reconnecting { .. } | Connection::Polling => "conn conn-connecting",
        Connection::Offline | Connection::Refused { .. } => "conn conn-down",
    };
    let text = move || match connection.get() {
        Connection::Live => "Live".to_owned(),
        Connection::Connecting => "Connecting…".to_owned(),
        Connection::Reconnecting { in_secs } => format!("Reconnecting in {in_secs}s"),
        Connection::Refused { in_secs } => format!(
            "Refused: {}. Retrying in {in_secs}s",
            refusal
                .get()
                .unwrap_or_else(|| "the server turned this dashboard away".to_owned())
        ),
        Connection::Polling => "Polling".to_owned(),
        Connection::Offline => "Offline".to_owned(),
    };
    let title = move || match connection.get() {
        Connection::Polling => "WebSockets are not getting through: events arrive every 2 s by polling",
        Connection::Offline => "The server cannot be reached; retrying",
        _ => "",
    };
    view! {
        <div class=class data-testid="connection" data-state=move || connection.get().as_str()
            title=title role="status" aria-live="polite">
            <span class="conn-dot" aria-hidden="true"></span>
            <span class="conn-text">{text}</span>
        </div>
    }
}
