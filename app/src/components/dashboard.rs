//! The dashboard page: loads its data in one request (rendered on the
//! server for the first paint), then follows the live stream in the
//! browser.

use leptos::prelude::*;

use uuid::Uuid;

use super::{
    approvals::ApprovalsPanel,
    connection::ConnectionIndicator,
    feed::ActivityFeed,
    health::{EstatePanel, ServiceTiles},
    impact::{ImpactMeter, SavingsFormulaPanel},
    scenarios::ScenarioControls,
    swarm::AgentSwarm,
    timelines::TimelinePanel,
};
use crate::{
    api::{DashboardData, get_dashboard},
    codec::Json,
    live::Connection,
    state::DashboardState,
};

/// `/`: the live dashboard.
#[component]
pub fn DashboardPage() -> impl IntoView {
    // One request for everything the panels read; the server renders the
    // whole page once it is in.
    let data = Resource::<_, Json>::new_with_options(|| (), |_| get_dashboard(), true);
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading the dashboard…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(data) => view! { <Dashboard data/> }.into_any(),
                    Err(e) => view! {
                        <p class="error" role="alert">"Could not load the dashboard: " {e.to_string()}</p>
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// The command center: what acts and what reacts on the first screen (the
/// scenario buttons, the impact meter, the swarm, the dependency map with
/// the picked service or the focused incident, and a column with what waits
/// for a person and the live feed); the service tiles, timelines and the
/// savings formula below it.
#[component]
fn Dashboard(data: DashboardData) -> impl IntoView {
    let DashboardData {
        snapshot,
        access,
        formula,
        scenarios,
        timelines,
    } = data;
    let state = RwSignal::new(DashboardState::from_snapshot(&snapshot));
    let connection = RwSignal::new(Connection::Connecting);
    let lag_ms = RwSignal::new(None::<i64>);
    let refusal = RwSignal::new(None::<String>);
    // The incident the dashboard is focused on, if any.
    let focus = RwSignal::new(None::<Uuid>);
    // Once per state change, for the map's picked tile and every tile.
    let health = Memo::new(move |_| state.with(|s| s.service_health()));

    // Effects run only in the browser, after hydration.
    Effect::new(move |_| {
        #[cfg(feature = "browser")]
        leptos::task::spawn_local(crate::live::follow(state, connection, lag_ms, refusal));
    });

    let demo = access.demo.is_some();
    let blocked = access.blocked.clone();
    view! {
        <div class="page" class:page-demo=demo>
            {demo.then(|| view! {
                <p class="demo-banner" role="note" data-testid="demo-banner">
                    <strong>"Demo"</strong>
                    " · a simulated estate: every service, fault and fix here is simulated. Incidents run on a \
                     loop while anyone watches, and an autopilot approves the plans nobody decides on."
                </p>
            })}
            <header class="topbar">
                <super::Brand/>
                <nav class="topnav">
                    <a href="/incidents">"Incident history"</a>
                    <a href="/timelines">"Timeline runs"</a>
                    <a href="/analytics">"Analytics"</a>
                    <a href="/docs">"API"</a>
                    <ConnectionIndicator connection refusal/>
                </nav>
            </header>
            <main class="dashboard">
                // Type-erased, so the page's view type stays shallow enough
                // for the compiler (and the wasm stays smaller).
                // The first screen.
                <div class="deck">
                    {view! { <ScenarioControls state access scenarios/> }.into_any()}
                    {view! { <ImpactMeter state/> }.into_any()}
                    {view! { <AgentSwarm state/> }.into_any()}
                    {view! { <EstatePanel state connection lag_ms focus health/> }.into_any()}
                    <div class="desk">
                        {view! { <ApprovalsPanel state blocked/> }.into_any()}
                        {view! { <ActivityFeed state focus/> }.into_any()}
                    </div>
                </div>
                {view! { <ServiceTiles services=health/> }.into_any()}
                {view! { <TimelinePanel state timelines/> }.into_any()}
                {view! { <SavingsFormulaPanel state formula/> }.into_any()}
            </main>
        </div>
    }
}
