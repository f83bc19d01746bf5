//! The timelines panel: pick a built-in timeline (its schedule previews
//! below the picker) and start it, paste or upload one of your own (checked
//! field by field before it runs), and follow each run live: a progress
//! bar, pause, resume and cancel, each incident's outcome, and the
//! game-day score when it ends. Runs come from the live state, so every
//! dashboard sees the same ones.

use engine::protocol::{RunEntry, RunState, ScheduledEntry, TimelineRun, TimelineSummary, schedule_clock};
use leptos::prelude::*;

use crate::{
    api::{CustomTimeline, StartTimeline, SteerTimeline, TimelineCheck},
    state::DashboardState,
};

/// Runs shown at once, newest first.
const RUNS_SHOWN: usize = 3;

#[component]
pub fn TimelinePanel(state: RwSignal<DashboardState>, timelines: Vec<TimelineSummary>) -> impl IntoView {
    let start = ServerAction::<StartTimeline>::new();
    let runs = Memo::new(move |_| state.with(|s| s.timelines.iter().take(RUNS_SHOWN).cloned().collect::<Vec<_>>()));
    view! {
        <section class="panel timelines" aria-labelledby="timelines-title">
            <h2 id="timelines-title" class="panel-title">"Timelines"</h2>
            <BuiltInPicker list=timelines start/>
            <div class="trigger-outcome" aria-live="polite">
                {move || start.value().get().and_then(Result::err).map(|e| view! {
                    <p class="trigger-error" role="alert">{e.to_string()}</p>
                })}
            </div>
            <CustomTimelineForm/>
            // At most a few small cards: each is redrawn whole when its run
            // changes.
            <div class="runs" data-testid="timeline-runs">
                {move || runs.get().into_iter().map(|run| view! { <RunCard run/> }).collect_view()}
            </div>
        </section>
    }
}

/// The built-in timelines in a picker, with the chosen one's schedule. A
/// plain form: it works before the wasm loads.
#[component]
fn BuiltInPicker(list: Vec<TimelineSummary>, start: ServerAction<StartTimeline>) -> impl IntoView {
    let chosen = RwSignal::new(list.first().map(|t| t.id.clone()).unwrap_or_default());
    let preview = {
        let list = list.clone();
        move || {
            chosen.with(|id| list.iter().find(|t| &t.id == id).cloned()).map(|t| {
                view! {
                    <p class="timeline-description">{t.description.clone()}</p>
                    <Schedule entries=t.schedule.clone()/>
                }
            })
        }
    };
    view! {
        <ActionForm action=start attr:class="timeline-form">
            <label class="field">
                <span>"Timeline"</span>
                <select name="timeline_id" on:change=move |ev| chosen.set(event_target_value(&ev))>
                    {list.iter().map(|t| view! {
                        <option value=t.id.clone()>
                            {format!("{} — {} min, {} incidents", t.name, t.duration_minutes, t.schedule.len())}
                        </option>
                    }).collect_view()}
                </select>
            </label>
            <label class="field field-narrow">
                <span>"Speed"</span>
                <input name="speed" inputmode="decimal" placeholder="server" size="6"
                    title="Time compression for the schedule; empty runs at the server's speed"/>
            </label>
            <button type="submit" class="btn btn-primary" disabled=move || start.pending().get()>
                "Start timeline"
            </button>
        </ActionForm>
        <div class="timeline-preview">{preview}</div>
    }
}

/// A schedule as a table.
#[component]
fn Schedule(entries: Vec<ScheduledEntry>) -> impl IntoView {
    view! {
        <table class="history-table schedule" data-testid="schedule">
            <thead><tr><th>"Time"</th><th>"Type"</th><th>"What"</th><th>"Comment"</th></tr></thead>
            <tbody>
                {entries.into_iter().map(|e| view! {
                    <tr>
                        <td class="mono">{schedule_clock(e.delay_seconds)}</td>
                        <td>{e.kind.label()}</td>
                        <td class="schedule-source">{e.source}</td>
                        <td>{e.comment}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
}

/// Paste or upload a timeline; check it, or start it. Few people open it,
/// so its code is a wasm chunk of its own, fetched when it is first opened.
#[component]
fn CustomTimelineForm() -> impl IntoView {
    let opened = RwSignal::new(false);
    view! {
        <details class="custom-timeline" on:toggle=move |_| opened.set(true)>
            <summary>"Paste or upload a timeline"</summary>
            {move || opened.get().then(|| Suspend::new(custom_timeline_editor()))}
        </details>
    }
}

/// The editor inside [`CustomTimelineForm`]. trunk's client-side-only build
/// cannot split the bundle, so there it is an ordinary function.
#[cfg_attr(not(feature = "csr"), leptos::lazy)]
async fn custom_timeline_editor() -> AnyView {
    let json = RwSignal::new(String::new());
    let speed = RwSignal::new(String::new());
    let custom = ServerAction::<CustomTimeline>::new();
    let submit = move |start: bool| {
        custom.dispatch(CustomTimeline {
            json: json.get_untracked(),
            speed: Some(speed.get_untracked()),
            start,
        });
    };
    let outcome = move || {
        custom.value().get().map(|result| match result {
            Ok(TimelineCheck::Invalid(problems)) => view! {
                <div class="timeline-problems" role="alert" data-testid="timeline-problems">
                    <p class="trigger-error">{format!("{} problem(s) in the timeline:", problems.len())}</p>
                    <ul>
                        {problems.into_iter().map(|p| view! {
                            <li>
                                <code>{if p.path.is_empty() { "(document)".to_owned() } else { p.path }}</code>
                                " " {p.reason}
                            </li>
                        }).collect_view()}
                    </ul>
                </div>
            }
            .into_any(),
            Ok(TimelineCheck::Valid(summary)) => view! {
                <div role="status">
                    <p class="trigger-ok">{format!(
                        "Valid: {} incidents over {} min.", summary.schedule.len(), summary.duration_minutes
                    )}</p>
                    <Schedule entries=summary.schedule/>
                </div>
            }
            .into_any(),
            Ok(TimelineCheck::Started(run)) => view! {
                <p class="trigger-ok" role="status">{format!("Started: {}", run.name)}</p>
            }
            .into_any(),
            Err(e) => view! { <p class="trigger-error" role="alert">{e.to_string()}</p> }.into_any(),
        })
    };
    view! {
        <label class="field">
            <span>"Timeline JSON (seed 004's schema)"</span>
            <textarea rows="8" spellcheck="false" data-testid="timeline-json"
                placeholder=r#"{"name": "…", "duration_minutes": 10, "incidents": [{"delay_seconds": 0, "type": "predefined", "scenario_id": "cache_failure"}]}"#
                prop:value=move || json.get()
                on:input=move |ev| json.set(event_target_value(&ev))></textarea>
        </label>
        <div class="custom-actions">
            <label class="field">
                <span>"Or upload a file"</span>
                <input type="file" accept=".json,application/json" on:change=move |_ev| {
                    #[cfg(feature = "browser")]
                    read_file(&_ev, json);
                }/>
            </label>
            <label class="field field-narrow">
                <span>"Speed"</span>
                <input inputmode="decimal" placeholder="server" size="6"
                    prop:value=move || speed.get()
                    on:input=move |ev| speed.set(event_target_value(&ev))/>
            </label>
            <button type="button" class="btn" on:click=move |_| submit(false)
                disabled=move || json.with(String::is_empty) || custom.pending().get()>"Check"</button>
            <button type="button" class="btn btn-primary" on:click=move |_| submit(true)
                disabled=move || json.with(String::is_empty) || custom.pending().get()>"Start pasted timeline"</button>
        </div>
        <div aria-live="polite">{outcome}</div>
    }
    .into_any()
}

/// Loads the chosen file's text into the editor.
#[cfg(feature = "browser")]
fn read_file(event: &leptos::ev::Event, json: RwSignal<String>) {
    use wasm_bindgen::JsCast;
    let Some(file) = event
        .target()
        .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
        .and_then(|input| input.files())
        .and_then(|files| files.get(0))
    else {
        return;
    };
    leptos::task::spawn_local(async move {
        if let Ok(text) = wasm_bindgen_futures::JsFuture::from(file.text()).await
            && let Some(text) = text.as_string()
        {
            json.set(text);
        }
    });
}

/// One run: progress, steering, outcomes and score.
#[component]
fn RunCard(run: TimelineRun) -> impl IntoView {
    let steer = ServerAction::<SteerTimeline>::new();
    let fired = run.entries.iter().filter(|e| e.incident_id.is_some()).count();
    let total = run.entries.len();
    let state = run.state;
    let controls = (!state.is_final()).then(|| {
        let (pause_or_resume, label) = if state == RunState::Paused {
            ("resume", "Resume")
        } else {
            ("pause", "Pause")
        };
        view! {
            <div class="run-controls">
                <ActionForm action=steer>
                    <input type="hidden" name="run_id" value=run.run_id.to_string()/>
                    <input type="hidden" name="action" value=pause_or_resume/>
                    <button type="submit" class="btn">{label}</button>
                </ActionForm>
                <ActionForm action=steer>
                    <input type="hidden" name="run_id" value=run.run_id.to_string()/>
                    <input type="hidden" name="action" value="cancel"/>
                    <button type="submit" class="btn">"Cancel"</button>
                </ActionForm>
            </div>
        }
    });
    let scored = state.is_final().then(|| format!("Score {}", run.score.summary()));
    view! {
        <article class="run" data-testid="timeline-run" data-state=state.as_str()>
            <header class="run-head">
                <strong>{run.name.clone()}</strong>
                <span class=format!("badge badge-run-{}", state.as_str())>{state.as_str()}</span>
                <span class="run-meta">{format!("{fired}/{total} fired · speed {}", run.speed)}</span>
            </header>
            // A completed run may end before its schedule's length: full.
            <progress max=run.duration_seconds
                value=if state == RunState::Completed { run.duration_seconds } else { run.elapsed_seconds.min(run.duration_seconds) }
                aria-label=format!("{} schedule progress", run.name)></progress>
            {controls}
            <div aria-live="polite">
                {move || steer.value().get().and_then(Result::err).map(|e| view! {
                    <p class="trigger-error" role="alert">{e.to_string()}</p>
                })}
            </div>
            {scored.map(|text| view! { <p class="run-score" data-testid="run-score">{text}</p> })}
            <table class="history-table run-entries">
                <thead><tr><th>"Time"</th><th>"Comment"</th><th>"Incident"</th><th>"Outcome"</th><th>"MTTR"</th><th>"Root cause"</th></tr></thead>
                <tbody>
                    {run.entries.iter().map(entry_row).collect_view()}
                </tbody>
            </table>
        </article>
    }
}

fn entry_row(entry: &RunEntry) -> impl IntoView + use<> {
    let incident = match (entry.incident_id, &entry.title) {
        (Some(id), title) => view! {
            <a href=format!("/incidents/{id}")>{title.clone().unwrap_or_else(|| id.to_string())}</a>
        }
        .into_any(),
        (None, _) => view! { <span class="dim">"–"</span> }.into_any(),
    };
    let (outcome, class) = match (&entry.refused, entry.status) {
        (Some(reason), _) => (format!("refused: {reason}"), "failed".to_owned()),
        (None, Some(status)) => (status.as_str().to_owned(), status.as_str().to_owned()),
        (None, None) => ("scheduled".to_owned(), "scheduled".to_owned()),
    };
    let root_cause = match entry.root_cause_correct {
        Some(true) => "right",
        Some(false) => "wrong",
        None => "–",
    };
    view! {
        <tr>
            <td class="mono">{schedule_clock(entry.scheduled.delay_seconds)}</td>
            <td>{entry.scheduled.comment.clone()}</td>
            <td>{incident}{entry.note.clone().map(|n| view! { <span class="run-note">{n}</span> })}</td>
            <td><span class=format!("badge badge-{class}")>{outcome}</span></td>
            <td class="mono">{entry.mttr_seconds.map(|s| format!("{s:.1} s")).unwrap_or_else(|| "–".into())}</td>
            <td>{root_cause}</td>
        </tr>
    }
}
