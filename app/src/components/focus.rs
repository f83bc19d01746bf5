//! Focus on one incident, in place: where its course stands (the five
//! agents, the vote, governance), its vote, its steps and a link to its
//! page, under the map (in the picked service's place), while the feed
//! narrows to its lines. Picked from the feed, its root cause on the map,
//! the map's service tile or the feed's incident filter; Esc or "Back"
//! returns to everything.
//!
//! It is never on a page as it loads, only after a click, so its code is a
//! wasm chunk of its own, fetched the first time an incident is focused.

use leptos::prelude::*;
use uuid::Uuid;

use crate::state::{DashboardState, IncidentFocus};

#[component]
pub fn IncidentFocusPanel(state: RwSignal<DashboardState>, focus: RwSignal<Option<Uuid>>) -> impl IntoView {
    Suspend::new(incident_focus(state, focus))
}

/// The panel itself. trunk's client-side-only build cannot split the
/// bundle, so there it is an ordinary function.
#[cfg_attr(not(feature = "csr"), leptos::lazy)]
async fn incident_focus(state: RwSignal<DashboardState>, focus: RwSignal<Option<Uuid>>) -> AnyView {
    let focused = Memo::new(move |_| focus.get().and_then(|id| state.with(|s| s.incident_focus(id))));
    // Esc returns to the whole dashboard, wherever the keyboard is.
    #[cfg(feature = "browser")]
    {
        let handle = window_event_listener(leptos::ev::keydown, move |ev| {
            if ev.key() == "Escape" && focus.get_untracked().is_some() {
                focus.set(None);
            }
        });
        on_cleanup(move || handle.remove());
    }
    // The section stays while the same incident is focused: its parts
    // follow the incident's events, so the element (and the keyboard's
    // place in it) is not rebuilt on every line.
    let shown = Memo::new(move |_| focused.with(|f| f.as_ref().map(|f| f.incident.id)));
    let part =
        move |read: fn(&IncidentFocus) -> String| move || focused.with(|f| f.as_ref().map(read).unwrap_or_default());
    view! {
        {move || shown.get().map(|id| view! {
            <section class="focus" aria-labelledby="focus-title" data-testid="incident-focus"
                data-incident=id.to_string()>
                <header class="focus-head">
                    <h2 id="focus-title" class="focus-title">
                        <span class=part(|f| format!("sev sev-{}", f.incident.severity.as_str()))>
                            {part(|f| f.incident.severity.as_str().to_owned())}
                        </span>
                        " " {part(|f| f.incident.title.clone())}
                    </h2>
                    <span class=part(|f| format!("badge badge-{}", f.incident.status.as_str()))>
                        {part(|f| f.incident.status.as_str().to_owned())}
                    </span>
                    <a class="focus-link" href=format!("/incidents/{id}")>"Its page →"</a>
                    <button type="button" class="focus-back" data-testid="focus-back" aria-keyshortcuts="Escape"
                        on:click=move |_| focus.set(None)>"Back (Esc)"</button>
                </header>
                <ol class="phases" aria-label="Where its course stands">
                    {move || focused.with(|f| f.as_ref().map(|f| f.phases.iter().map(|(name, status)| view! {
                        <li class="phase" data-status=status.clone().unwrap_or_else(|| "waiting".to_owned())>
                            {*name}
                        </li>
                    }).collect_view()))}
                </ol>
                <p class="focus-vote" data-testid="focus-vote">
                    <strong>"Vote: "</strong>
                    {part(|f| f.vote.clone().map_or_else(|| "not yet".to_owned(), |(line, _)| line))}
                </p>
                {move || focused.with(|f| f.as_ref().map(|f| steps(&f.steps)))}
            </section>
        })}
    }
    .into_any()
}

/// Resolution's lines, or that there are none yet.
fn steps(steps: &[(String, String)]) -> AnyView {
    if steps.is_empty() {
        return view! { <p class="focus-steps empty">"No steps yet."</p> }.into_any();
    }
    view! {
        <ol class="focus-steps" data-testid="focus-steps">
            {steps.iter().map(|(line, status)| view! {
                <li data-status=status.clone()>{line.clone()}</li>
            }).collect_view()}
        </ol>
    }
    .into_any()
}
