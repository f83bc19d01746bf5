//! Scenario controls: one button per catalog scenario, primary ones first.
//! Each is a server-function form, so it works before the wasm loads.

use leptos::prelude::*;

use crate::api::{TriggerScenario, get_scenarios};

#[component]
pub fn ScenarioControls() -> impl IntoView {
    let scenarios = Resource::new_blocking(|| (), |_| get_scenarios());
    let trigger = ServerAction::<TriggerScenario>::new();
    let outcome = move || {
        trigger.value().get().map(|result| match result {
            Ok(incident) => view! {
                <p class="trigger-ok" role="status">"Opened: " {incident.title}</p>
            }
            .into_any(),
            Err(e) => view! { <p class="trigger-error" role="alert">{e.to_string()}</p> }.into_any(),
        })
    };
    view! {
        <section class="panel scenarios" aria-labelledby="scenarios-title">
            <h2 id="scenarios-title" class="panel-title">"Fire a scenario"</h2>
            <Suspense fallback=|| view! { <p class="loading">"Loading scenarios…"</p> }>
                {move || Suspend::new(async move {
                    scenarios.await.map(|list| view! {
                        <div class="scenario-buttons">
                            {list.into_iter().map(|scenario| view! {
                                <ActionForm action=trigger attr:class="scenario-form">
                                    <input type="hidden" name="scenario_id" value=scenario.id.clone()/>
                                    <button type="submit"
                                        class=if scenario.primary { "btn btn-primary" } else { "btn" }
                                        class:btn-critical=scenario.severity == engine::protocol::Severity::Critical
                                        title=format!("{} ({}) on {}", scenario.title, scenario.severity.as_str(), scenario.affected_services.join(", "))>
                                        {scenario.label}
                                    </button>
                                </ActionForm>
                            }).collect_view()}
                        </div>
                    })
                })}
            </Suspense>
            <div class="trigger-outcome" aria-live="polite">
                {move || trigger.pending().get().then(|| view! { <p class="trigger-pending">"Opening…"</p> })}
                {outcome}
            </div>
        </section>
    }
}
