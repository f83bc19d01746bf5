//! System Health: the dependency map (active incidents' blast radius and
//! recovery on the service graph) with the health of the service picked on
//! it, and the dashboard's own link to the server ([`EstatePanel`], on the
//! first screen); then every service of the estate against its objectives
//! (from `twin_health`) as compact tiles below the fold ([`ServiceTiles`]).
//! A tile shows a sparkline of the p99 over the last reports, the circuit
//! breakers, and the incidents naming the service.

use engine::protocol::{HealthState, IncidentStatus, Severity};
use leptos::prelude::*;

use uuid::Uuid;

use super::focus::IncidentFocusPanel;
use crate::{
    estate_map::{EstateMap, MAP_WIDTH, MapState},
    live::Connection,
    state::{DashboardState, ServiceHealth},
};

/// The dependency map, the health of the service picked on it (or of the
/// root of the newest active incident) or the incident the dashboard is
/// focused on, and the dashboard's own link to the server: in sight on the
/// first screen.
#[component]
pub fn EstatePanel(
    state: RwSignal<DashboardState>,
    connection: RwSignal<Connection>,
    lag_ms: RwSignal<Option<i64>>,
    /// The incident the dashboard is focused on.
    focus: RwSignal<Option<Uuid>>,
    /// Every service's health, derived once for this panel and the tiles.
    health: Memo<Vec<ServiceHealth>>,
) -> impl IntoView {
    let picked = RwSignal::new(None::<String>);
    let map = Memo::new(move |_| state.with(|s| s.estate_map()));
    // Derived, not copied: what was picked, else where trouble starts.
    let shown = Memo::new(move |_| {
        picked.get().or_else(|| {
            map.with(|m| {
                m.nodes
                    .iter()
                    .find(|n| n.state == MapState::Root)
                    .map(|n| n.name.clone())
            })
        })
    });
    let tile = Memo::new(move |_| {
        let name = shown.get()?;
        health.with(|all| all.iter().find(|h| h.name == name).cloned())
    });
    let last_seq = Memo::new(move |_| state.with(|s| s.last_seq));
    view! {
        <section class="panel health" aria-labelledby="health-title">
            <h2 id="health-title" class="panel-title">"System health"</h2>
            <DependencyMap map picked state focus/>
            // The focused incident, else the picked service's tile.
            // Not a live region: the figures change with every report.
            <div class="svc-picked" data-testid="service-picked">
                {move || match tile.get() {
                    _ if focus.with(Option::is_some) => view! { <IncidentFocusPanel state focus/> }.into_any(),
                    Some(service) => {
                        let incidents = state.with(|s| s.active_incidents_on(&service.name));
                        view! { <ServiceTile service incidents focus/> }.into_any()
                    }
                    None => view! {
                        <p class="empty">"Pick a service on the map for its p99, errors and breakers."</p>
                    }.into_any(),
                }}
            </div>
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

/// Every service of the estate as a compact tile, below the fold (each with
/// an anchor, `#svc-NAME`).
#[component]
pub fn ServiceTiles(
    /// Every service's health, derived once for the map's panel and these.
    services: Memo<Vec<ServiceHealth>>,
) -> impl IntoView {
    view! {
        <section class="panel services-panel" aria-labelledby="services-title">
            <h2 id="services-title" class="panel-title">"Every service"</h2>
            <Show when=move || services.with(|s| !s.is_empty())
                fallback=|| view! { <p class="empty">"Waiting for the estate's telemetry."</p> }>
                <ul class="services">
                    <For each=move || services.get() key=|s| s.render_key() let:service>
                        {
                            let (class, label) = tile_look(&service);
                            view! {
                                <li class=class data-testid="service" data-service=service.name.clone()
                                    data-state=label id=format!("svc-{}", service.name)>
                                    <span class="svc-name">{service.name.clone()}</span>
                                    <span class="svc-state">{label}</span>
                                    {figures(&service).map(|f| view! { <span class="svc-figures">{f}</span> })}
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
        </section>
    }
}

/// The picked service in full, and the active incidents on it, each a
/// button that focuses the dashboard on it.
#[component]
fn ServiceTile(service: ServiceHealth, incidents: Vec<(Uuid, String)>, focus: RwSignal<Option<Uuid>>) -> impl IntoView {
    let (class, label) = tile_look(&service);
    view! {
        <div class=format!("{class} svc-wide") data-testid="service-tile" data-service=service.name.clone() data-state=label>
            <span class="svc-name">{service.name.clone()}</span>
            <span class="svc-state">{label}</span>
            {figures(&service).map(|f| view! { <span class="svc-figures">{f}</span> })}
            {sparkline(&service.p99_history)}
            {service.telemetry.as_ref().map(|t| breakers(&t.breakers))}
            {incidents.into_iter().map(|(id, title)| view! {
                <button type="button" class="svc-incident" data-testid="focus-incident"
                    on:click=move |_| focus.set(Some(id))>
                    {format!("Focus on {title} · {}", &id.to_string()[..8])}
                </button>
            }).collect_view()}
        </div>
    }
}

/// A tile's class and the word for its state: the estate's health first,
/// else what the incidents naming it say.
fn tile_look(service: &ServiceHealth) -> (&'static str, &'static str) {
    let state = service.telemetry.as_ref().map(|t| t.state);
    match (state, service.active_severity, service.last_status) {
        (Some(HealthState::Down), _, _) => ("svc svc-critical", "down"),
        (Some(HealthState::Degraded), _, _) => ("svc svc-degraded", "degraded"),
        (Some(HealthState::Healthy), _, Some(IncidentStatus::Resolved)) => ("svc svc-recovered", "recovered"),
        (Some(HealthState::Healthy), _, _) => ("svc svc-healthy", "healthy"),
        (None, Some(Severity::Critical), _) => ("svc svc-critical", "critical"),
        (None, Some(_), _) => ("svc svc-degraded", "degraded"),
        (None, None, Some(IncidentStatus::Resolved)) => ("svc svc-recovered", "recovered"),
        (None, None, status) => ("svc svc-attention", status.map_or("unknown", |s| s.as_str())),
    }
}

/// "p99 226 ms · 0.2% err", or that it is out of rotation.
fn figures(service: &ServiceHealth) -> Option<String> {
    service.telemetry.as_ref().map(|t| {
        if t.in_rotation {
            format!("p99 {:.0} ms · {:.1}% err", t.p99_ms, t.error_rate * 100.0)
        } else {
            "out of rotation".to_owned()
        }
    })
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
/// it happens. Each node is a button: focusing or clicking it picks its
/// service, and clicking a root cause (or Enter on it) focuses its incident.
#[component]
fn DependencyMap(
    map: Memo<EstateMap>,
    picked: RwSignal<Option<String>>,
    state: RwSignal<DashboardState>,
    focus: RwSignal<Option<Uuid>>,
) -> impl IntoView {
    view! {
        <Show when=move || map.with(|m| !m.nodes.is_empty())>
            // On a phone it scrolls sideways inside the panel; its nodes
            // take the keyboard's focus.
            <figure class="estate-map">
                <svg data-testid="dependency-map" role="group"
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
                    // Keyed by service: a node keeps its element (and the
                    // keyboard's focus) while its state, read from the map,
                    // changes its attributes.
                    <For each=move || map.with(|m| m.nodes.clone()) key=|n| n.name.clone() let:n>
                        {
                            let now = {
                                let name = n.name.clone();
                                Memo::new(move |_| map.with(|m| {
                                    m.nodes.iter().find(|x| x.name == name).map_or(MapState::Healthy, |x| x.state)
                                }))
                            };
                            // One label for the eye (a tooltip) and for assistive technology.
                            let title = {
                                let name = n.name.clone();
                                Memo::new(move |_| format!("{}: {}", name, now.get().as_str()))
                            };
                            let (on_focus, is_picked) = (n.name.clone(), n.name.clone());
                            // Activating a node picks its service; a red one (a
                            // root cause) also focuses the incident it stands for.
                            let activate = {
                                let name = n.name.clone();
                                move || {
                                    picked.set(Some(name.clone()));
                                    let root = now.get_untracked() == MapState::Root;
                                    if let Some(id) = root.then(|| state.with_untracked(|s| s.incident_rooted_at(&name))).flatten() {
                                        focus.set(Some(id));
                                    }
                                }
                            };
                            let on_key = activate.clone();
                            view! {
                                <g class=move || format!("map-node map-{}", now.get().as_str())
                                    class:map-picked=move || picked.with(|p| p.as_ref() == Some(&is_picked))
                                    data-testid="map-node" data-service=n.name.clone() data-state=move || now.get().as_str()
                                    tabindex="0" role="button" aria-label=title
                                    on:click=move |_| activate()
                                    on:keydown=move |ev| if ev.key() == "Enter" { on_key() }
                                    on:focus=move |_| picked.set(Some(on_focus.clone()))>
                                    <title>{title}</title>
                                    <rect x=n.x - NODE_HALF_WIDTH y=n.y - NODE_HALF_HEIGHT width=2.0 * NODE_HALF_WIDTH
                                        height=2.0 * NODE_HALF_HEIGHT rx="8"/>
                                    <text x=n.x y=n.y + 4.0>{n.name.clone()}</text>
                                </g>
                            }
                        }
                    </For>
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
