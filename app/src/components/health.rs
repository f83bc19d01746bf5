//! System Health: the services named by incidents and how they stand, plus
//! the dashboard's own link to the server.

use engine::protocol::{IncidentStatus, Severity};
use leptos::prelude::*;

use crate::{live::Connection, state::DashboardState};

#[component]
pub fn SystemHealth(
    state: RwSignal<DashboardState>,
    connection: RwSignal<Connection>,
    lag_ms: RwSignal<Option<i64>>,
) -> impl IntoView {
    let services = Memo::new(move |_| state.with(|s| s.service_health()));
    let last_seq = Memo::new(move |_| state.with(|s| s.last_seq));
    view! {
        <section class="panel health" aria-labelledby="health-title">
            <h2 id="health-title" class="panel-title">"System health"</h2>
            <Show when=move || services.with(|s| !s.is_empty())
                fallback=|| view! { <p class="empty">"No incidents reported yet."</p> }>
                <ul class="services">
                    <For each=move || services.get() key=|s| (s.name.clone(), s.active_severity, s.last_status) let:service>
                        {
                            let (class, label) = match (service.active_severity, service.last_status) {
                                (Some(Severity::Critical), _) => ("svc svc-critical", "critical".to_owned()),
                                (Some(_), _) => ("svc svc-degraded", "degraded".to_owned()),
                                (None, IncidentStatus::Resolved) => ("svc svc-recovered", "recovered".to_owned()),
                                (None, status) => ("svc svc-attention", status.as_str().to_owned()),
                            };
                            view! {
                                <li class=class data-testid="service" data-service=service.name.clone()>
                                    <span class="svc-name">{service.name.clone()}</span>
                                    <span class="svc-state">{label}</span>
                                    {(service.active_incidents > 0).then(|| view! {
                                        <span class="svc-count">{format!("{} active", service.active_incidents)}</span>
                                    })}
                                </li>
                            }
                        }
                    </For>
                </ul>
            </Show>
            <dl class="link-stats">
                <div><dt>"Stream"</dt><dd>{move || match connection.get() {
                    Connection::Live => "live".to_owned(),
                    Connection::Connecting => "connecting".to_owned(),
                    Connection::Reconnecting { in_secs } => format!("retry in {in_secs}s"),
                }}</dd></div>
                <div><dt>"Event lag"</dt><dd>{move || lag_ms.get().map(|ms| format!("{ms} ms")).unwrap_or_else(|| "—".to_owned())}</dd></div>
                <div><dt>"Last event"</dt><dd data-testid="last-seq">{move || format!("#{}", last_seq.get())}</dd></div>
            </dl>
        </section>
    }
}
