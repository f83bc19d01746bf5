//! The dashboard page: loads the snapshot (rendered on the server for the
//! first paint), then follows the live stream in the browser.

use engine::protocol::Snapshot;
use leptos::prelude::*;

use super::{
    approvals::ApprovalsPanel, connection::ConnectionIndicator, feed::ActivityFeed, health::SystemHealth,
    impact::ImpactMeter, scenarios::ScenarioControls, swarm::AgentSwarm, timelines::TimelinePanel,
};
use crate::{
    api::{Access, dashboard_access, get_savings_formula, get_snapshot},
    codec::Json,
    live::Connection,
    state::DashboardState,
};

/// `/`: the live dashboard.
#[component]
pub fn DashboardPage() -> impl IntoView {
    let snapshot = Resource::<_, Json>::new_with_options(|| (), |_| get_snapshot(), true);
    // Fetched with the page and handed down: the panels read plain values,
    // and the server renders the whole page once both are in.
    let access = Resource::<_, Json>::new_with_options(|| (), |_| dashboard_access(), true);
    let formula = Resource::<_, Json>::new_with_options(|| (), |_| get_savings_formula(), true);
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading the dashboard…"</p> }>
            {move || Suspend::new(async move {
                let access = access.await.unwrap_or_default();
                let formula = formula.await.unwrap_or_default();
                match snapshot.await {
                    Ok(snapshot) => view! { <Dashboard snapshot access formula/> }.into_any(),
                    Err(e) => view! {
                        <p class="error" role="alert">"Could not load the dashboard: " {e.to_string()}</p>
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// The five regions of seed 000, over one state signal.
#[component]
fn Dashboard(snapshot: Snapshot, access: Access, formula: engine::protocol::SavingsFormula) -> impl IntoView {
    let state = RwSignal::new(DashboardState::from_snapshot(&snapshot));
    let connection = RwSignal::new(Connection::Connecting);
    let lag_ms = RwSignal::new(None::<i64>);

    // Effects run only in the browser, after hydration.
    Effect::new(move |_| {
        #[cfg(feature = "browser")]
        leptos::task::spawn_local(crate::live::follow(state, connection, lag_ms));
    });

    view! {
        <div class="page">
            <header class="topbar">
                <super::Brand/>
                <nav class="topnav">
                    <a href="/incidents">"Incident history"</a>
                    <a href="/timelines">"Timeline runs"</a>
                    <a href="/analytics">"Analytics"</a>
                    <a href="/docs">"API"</a>
                    <ConnectionIndicator connection/>
                </nav>
            </header>
            <main class="dashboard">
                // Type-erased, so the page's view type stays shallow enough
                // for the compiler (and the wasm stays smaller).
                {view! { <ImpactMeter state formula/> }.into_any()}
                {view! { <ApprovalsPanel state blocked=access.blocked.clone()/> }.into_any()}
                {view! { <AgentSwarm state/> }.into_any()}
                {view! { <SystemHealth state connection lag_ms/> }.into_any()}
                {view! { <ScenarioControls state access/> }.into_any()}
                {view! { <ActivityFeed state/> }.into_any()}
                {view! { <TimelinePanel state/> }.into_any()}
            </main>
        </div>
    }
}
