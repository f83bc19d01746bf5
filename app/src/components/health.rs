//! System Health: every service of the estate against its objectives (from
//! `twin_health`), with the incidents naming it, plus the dashboard's own
//! link to the server.

use engine::protocol::{HealthState, IncidentStatus, Severity};
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
                fallback=|| view! { <p class="empty">"Waiting for the estate's telemetry."</p> }>
                <ul class="services">
                    <For each=move || services.get() key=|s| s.render_key() let:service>
                        {
                            let state = service.telemetry.as_ref().map(|t| t.state);
                            let (class, label) = match (state, service.active_severity, service.last_status) {
                                (Some(HealthState::Down), _, _) => ("svc svc-critical", "down".to_owned()),
                                (Some(HealthState::Degraded), _, _) => ("svc svc-degraded", "degraded".to_owned()),
                                (Some(HealthState::Healthy), _, Some(IncidentStatus::Resolved)) => {
                                    ("svc svc-recovered", "recovered".to_owned())
                                }
                                (Some(HealthState::Healthy), _, _) => ("svc svc-healthy", "healthy".to_owned()),
                                (None, Some(Severity::Critical), _) => ("svc svc-critical", "critical".to_owned()),
                                (None, Some(_), _) => ("svc svc-degraded", "degraded".to_owned()),
                                (None, None, Some(IncidentStatus::Resolved)) => ("svc svc-recovered", "recovered".to_owned()),
                                (None, None, status) => (
                                    "svc svc-attention",
                                    status.map(|s| s.as_str()).unwrap_or("unknown").to_owned(),
                                ),
                            };
                            let data_state = label.clone();
                            let figures = service.telemetry.as_ref().map(|t| {
                                if t.in_rotation {
                                    format!("p99 {:.0} ms · {:.1}% err", t.p99_ms, t.error_rate * 100.0)
                                } else {
                                    "out of rotation".to_owned()
                                }
                            });
                            view! {
                                <li class=class data-testid="service" data-service=service.name.clone() data-state=data_state>
                                    <span class="svc-name">{service.name.clone()}</span>
                                    <span class="svc-state">{label}</span>
                                    {figures.map(|f| view! { <span class="svc-figures">{f}</span> })}
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
                    Connection::Reconnecting { in_secs } => format!("retry in {in_secs}s"),
                    other => other.as_str().to_owned(),
                }}</dd></div>
                <div><dt>"Event lag"</dt><dd>{move || lag_ms.get().map(|ms| format!("{ms} ms")).unwrap_or_else(|| "—".to_owned())}</dd></div>
                <div><dt>"Last event"</dt><dd data-testid="last-seq">{move || format!("#{}", last_seq.get())}</dd></div>
            </dl>
        </section>
    }
}
