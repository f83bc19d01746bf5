//! System Health: the dependency map (active incidents' blast radius and
//! recovery on the service graph), then every service of the estate against
//! its objectives (from `twin_health`), with a sparkline of its p99 over the
//! last reports, its circuit breakers, and the incidents naming it; plus the
//! dashboard's own link to the server.

use engine::protocol::{HealthState, IncidentStatus, Severity};
use leptos::prelude::*;

use crate::{
    estate_map::{MAP_WIDTH, MapState},
    live::Connection,
    state::DashboardState,
};

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
            <DependencyMap state/>
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
                                    {sparkline(&service.p99_history)}
                                    {service.telemetry.as_ref().map(|t| breakers(&t.breakers))}
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
                    Connection::Reconnecting { in_secs } | Connection::Refused { in_secs } => format!("retry in {in_secs}s"),
                    other => other.as_str().to_owned(),
                }}</dd></div>
                <div><dt>"Event lag"</dt><dd>{move || lag_ms.get().map(|ms| format!("{ms} ms")).unwrap_or_else(|| "—".to_owned())}</dd></div>
                <div><dt>"Last event"</dt><dd data-testid="last-seq">{move || format!("#{}", last_seq.get())}</dd></div>
            </dl>
        </section>
    }
}

/// The p99 history as a small SVG polyline, scaled to its own range (the
/// figure beside it gives the scale); nothing under two points.
fn sparkline(history: &[f64]) -> Option<impl IntoView + use<>> {
    const W: f64 = 120.0;
    const H: f64 = 22.0;
    if history.len() < 2 {
        return None;
    }
    let (low, high) = history
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    let span = (high - low).max(1e-9);
    let step = W / (history.len() - 1) as f64;
    let points = history
        .iter()
        .enumerate()
        .map(|(i, v)| format!("{:.1},{:.1}", i as f64 * step, H - 2.0 - (v - low) / span * (H - 4.0)))
        .collect::<Vec<_>>()
        .join(" ");
    let label = format!(
        "p99 over the last {} reports: {:.0} to {:.0} ms",
        history.len(),
        low,
        high
    );
    Some(view! {
        <svg class="spark" data-testid="sparkline" viewBox=format!("0 0 {W} {H}") preserveAspectRatio="none"
            role="img" aria-label=label>
            <polyline points=points fill="none" stroke="currentColor" stroke-width="1.5"
                vector-effect="non-scaling-stroke"/>
        </svg>
    })
}

/// A tile's circuit breakers: each open one on its own (it matters), the
/// armed ones in one line.
fn breakers(breakers: &[engine::protocol::CircuitBreaker]) -> impl IntoView + use<> {
    let open = breakers
        .iter()
        .filter(|b| b.open)
        .map(|b| {
            view! {
                <span class="breaker breaker-open" data-testid="breaker" data-state="open"
                    title=format!("the circuit breaker on calls to {} is open: they go to the fallback", b.to)>
                    {format!("breaker open → {}", b.to)}
                </span>
            }
        })
        .collect_view();
    let armed: Vec<&str> = breakers.iter().filter(|b| !b.open).map(|b| b.to.as_str()).collect();
    let armed = (!armed.is_empty()).then(|| {
        view! {
            <span class="breaker" data-testid="breaker" data-state="armed"
                title="circuit breakers armed on calls to these (closed: calls go through)">
                {format!("breakers armed → {}", armed.join(", "))}
            </span>
        }
    });
    (open, armed)
}

/// Half a map node's size, in map units.
const NODE_HALF_WIDTH: f64 = 56.0;
const NODE_HALF_HEIGHT: f64 = 13.0;

/// The services as a graph, callers above what they call; the active
/// incidents' root causes and blast radius light up, and recovery shows as
/// it happens.
#[component]
fn DependencyMap(state: RwSignal<DashboardState>) -> impl IntoView {
    let map = Memo::new(move |_| state.with(|s| s.estate_map()));
    view! {
        <Show when=move || map.with(|m| !m.nodes.is_empty())>
            // Focusable: on a phone it scrolls sideways inside the panel.
            <figure class="estate-map" tabindex="0">
                <svg data-testid="dependency-map" role="img"
                    viewBox=move || format!("0 0 {MAP_WIDTH} {}", map.with(|m| m.height))
                    aria-label=move || map.with(|m| {
                        let named = |state: MapState| m.nodes.iter().filter(|n| n.state == state)
                            .map(|n| n.name.as_str()).collect::<Vec<_>>().join(", ");
                        match (named(MapState::Root), named(MapState::Blast)) {
                            (root, _) if root.is_empty() => "Service dependency map: no active blast radius".to_owned(),
                            (root, blast) => format!("Service dependency map: root cause at {root}; blast radius {blast}"),
                        }
                    })>
                    {move || map.with(|m| m.edges.iter().map(|e| view! {
                        <line class="map-edge" class:map-edge-hot=e.hot x1=e.from.0 y1=e.from.1 + NODE_HALF_HEIGHT
                            x2=e.to.0 y2=e.to.1 - NODE_HALF_HEIGHT/>
                    }).collect_view())}
                    {move || map.with(|m| m.nodes.iter().map(|n| view! {
                        <g class=format!("map-node map-{}", n.state.as_str()) data-testid="map-node"
                            data-service=n.name.clone() data-state=n.state.as_str()>
                            <title>{format!("{}: {}", n.name, n.state.as_str())}</title>
                            <rect x=n.x - NODE_HALF_WIDTH y=n.y - NODE_HALF_HEIGHT width=2.0 * NODE_HALF_WIDTH
                                height=2.0 * NODE_HALF_HEIGHT rx="8"/>
                            <text x=n.x y=n.y + 4.0>{n.name.clone()}</text>
                        </g>
                    }).collect_view())}
                </svg>
                <figcaption class="map-legend">
                    <span class="key key-root">"root cause"</span>
                    <span class="key key-blast">"blast radius"</span>
                    <span class="key key-recovered">"recovered"</span>
                    <span class="key key-down">"down / degraded"</span>
                </figcaption>
            </figure>
        </Show>
    }
}
