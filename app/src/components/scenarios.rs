//! Scenario controls: one button per catalog scenario, the primary ones in
//! sight and the rest in a menu (a plain `<details>`), with a severity
//! override and "fire several at once". It is one server-function form
//! whose buttons each name their scenario, so it works before the wasm
//! loads. When this visitor cannot fire (no operator token, or the server
//! at capacity), the buttons are disabled and the reason is shown; on a
//! demo server a visitor without the token keeps the primary scenarios.

use engine::protocol::ScenarioSummary;
use leptos::prelude::*;

use crate::{
    api::{Access, MAX_FIRED_AT_ONCE, TriggerScenario},
    state::DashboardState,
};

#[component]
pub fn ScenarioControls(
    state: RwSignal<DashboardState>,
    access: Access,
    scenarios: Vec<ScenarioSummary>,
) -> impl IntoView {
    let Access {
        blocked,
        max_active,
        demo,
    } = access;
    let signed_out = blocked.is_some();
    // What a visitor without the token may still fire (a demo's viewers).
    let allowed: Vec<String> = demo.as_ref().map(|d| d.primary.clone()).unwrap_or_default();
    let trigger = ServerAction::<TriggerScenario>::new();
    let full = move || state.with(|s| s.metrics.incidents_active) >= max_active;
    // Why some or all buttons are off, if they are, and whether signing in
    // helps: capacity first (live, from the metrics), else the token.
    let notice = StoredValue::new(match (&blocked, &demo) {
        (Some(_), Some(demo)) => Some(format!(
            "This is a demo on a simulated estate. Without the operator token you may fire the highlighted \
             scenarios, one at a time, {} a minute; the rest need the token.",
            demo.per_minute
        )),
        (blocked, _) => blocked.clone(),
    });
    let reason = move || {
        if full() {
            let active = state.with(|s| s.metrics.incidents_active);
            return Some((
                format!(
                    "At capacity: {active} of {max_active} incidents are open. The buttons come back as they close."
                ),
                false,
            ));
        }
        notice.get_value().map(|text| (text, true))
    };
    // One button per scenario; its title says what it does and where.
    let button = move |scenario: ScenarioSummary, primary: bool| {
        let locked = signed_out && !allowed.contains(&scenario.id);
        view! {
            <button type="submit" name="scenario_id" value=scenario.id.clone()
                class=if primary { "btn btn-primary" } else { "btn" }
                class:btn-critical=scenario.severity == engine::protocol::Severity::Critical
                disabled=move || locked || full()
                title=format!("{} ({}) on {}", scenario.title, scenario.severity.as_str(), scenario.affected_services.join(", "))>
                {scenario.label}
            </button>
        }
    };
    let menu = NodeRef::<leptos::html::Details>::new();
    let (primary, others): (Vec<_>, Vec<_>) = scenarios.into_iter().partition(|s| s.primary);
    let outcome = move || {
        trigger.value().get().map(|result| match result {
            Ok(incidents) => {
                let text = match incidents.as_slice() {
                    [one] => format!("Opened: {}", one.title),
                    [first, ..] => format!("Opened {} × {}", incidents.len(), first.title),
                    [] => "Nothing opened".to_owned(),
                };
                view! { <p class="trigger-ok" role="status">{text}</p> }.into_any()
            }
            Err(e) => view! { <p class="trigger-error" role="alert">{e.to_string()}</p> }.into_any(),
        })
    };
    view! {
        <section class="panel scenarios" aria-labelledby="scenarios-title">
            <h2 id="scenarios-title" class="panel-title">"Fire a scenario"</h2>
            <ActionForm action=trigger attr:class="scenario-form">
                <div class="scenario-buttons">
                    {primary.into_iter().map(|scenario| button(scenario, true)).collect_view()}
                    // The rest in a menu: a plain <details>, so it opens
                    // without the wasm too.
                    <details class="scenario-more" data-testid="more-scenarios" node_ref=menu>
                        <summary class="btn">{format!("More scenarios ({})", others.len())}</summary>
                        // Closes once a scenario is picked, out of the way
                        // of what it opened.
                        <div class="scenario-menu" on:click=move |_| {
                            if let Some(menu) = menu.get() {
                                let _ = menu.remove_attribute("open");
                            }
                        }>
                            {others.into_iter().map(|scenario| button(scenario, false)).collect_view()}
                        </div>
                    </details>
                </div>
                <div class="scenario-options">
                    <label class="field">
                        <span>"Severity"</span>
                        <select name="severity">
                            <option value="">"as the scenario says"</option>
                            {["low", "medium", "high", "critical"].map(|s| view! { <option value=s>{s}</option> })}
                        </select>
                    </label>
                    <label class="field field-narrow">
                        <span>"How many"</span>
                        <input type="number" name="count" value="1" min="1" max=MAX_FIRED_AT_ONCE.to_string()
                            title="Fire several at once"/>
                    </label>
                </div>
            </ActionForm>
            <div class="trigger-outcome" aria-live="polite">
                {move || reason().map(|(text, sign_in)| view! {
                    <p class="trigger-blocked" data-testid="firing-blocked">
                        {text} {sign_in.then(|| view! { " " <a href="/login">"Sign in"</a> })}
                    </p>
                })}
                {move || trigger.pending().get().then(|| view! { <p class="trigger-pending">"Opening…"</p> })}
                {outcome}
            </div>
        </section>
    }
}
