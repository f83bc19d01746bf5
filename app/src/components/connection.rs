//! The connection indicator: green only while the WebSocket is open.

use leptos::prelude::*;

use crate::live::Connection;

#[component]
pub fn ConnectionIndicator(connection: RwSignal<Connection>) -> impl IntoView {
    let class = move || match connection.get() {
        Connection::Live => "conn conn-live",
        Connection::Connecting => "conn conn-connecting",
        Connection::Reconnecting { .. } => "conn conn-down",
    };
    let text = move || match connection.get() {
        Connection::Live => "Live".to_owned(),
        Connection::Connecting => "Connecting…".to_owned(),
        Connection::Reconnecting { in_secs } => format!("Reconnecting in {in_secs}s"),
    };
    view! {
        <div class=class data-testid="connection" data-state=move || match connection.get() {
            Connection::Live => "live",
            Connection::Connecting => "connecting",
            Connection::Reconnecting { .. } => "reconnecting",
        } role="status" aria-live="polite">
            <span class="conn-dot" aria-hidden="true"></span>
            <span class="conn-text">{text}</span>
        </div>
    }
}
