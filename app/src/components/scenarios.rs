//! Scenario controls: one button per catalog scenario, primary ones first,
//! with a severity override and "fire several at once". It is one
//! server-function form whose buttons each name their scenario, so it
//! works before the wasm loads. When this visitor cannot fire (no operator
//! token, or the server at capacity), the buttons are disabled and the
//! reason is shown.

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
    let Access { blocked, max_active } = access;
    // Copy, so the reason can be asked for wherever a button needs it.
    let blocked = StoredValue::new(blocked);
    let trigger = ServerAction::<TriggerScenario>::new();
    // Why the buttons are off, if they are, and whether signing in helps:
    // the token first, else capacity (live, from the metrics).
    let reason = move || {
        if let Some(reason) = blocked.get_value() {
            return Some((reason, true));
        }
        let active = state.with(|s| s.metrics.incidents_active);
        (active >= max_active).then(|| {
            (
                format!(
                    "At capacity: {active} of {max_active} incidents are open. The buttons come back as they close."
                ),
                false,
            )
        })
    };
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
                <div class="scenario-buttons">
                    {scenarios.into_iter().map(|scenario| view! {
                        <button type="submit" name="scenario_id" value=scenario.id.clone()
                            class=if scenario.primary { "btn btn-primary" } else { "btn" }
                            class:btn-critical=scenario.severity == engine::protocol::Severity::Critical
                            disabled=move || reason().is_some()
                            title=format!("{} ({}) on {}", scenario.title, scenario.severity.as_str(), scenario.affected_services.join(", "))>
                            {scenario.label}
                        </button>
                    }).collect_view()}
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
