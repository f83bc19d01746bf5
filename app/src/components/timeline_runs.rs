//! `/timelines`: past timeline runs from the store, newest first, and a
//! side-by-side comparison of two runs (`?a=RUN&b=RUN`), entry by entry,
//! with the score's differences. Server-rendered, and the picker is a plain
//! GET form, so a comparison is a shareable link.

use engine::protocol::{GameDayScore, RunEntry, TimelineRun, schedule_clock};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use uuid::Uuid;

use super::incidents::HistoryShell;
use crate::{
    api::{get_timeline_run, list_timeline_runs},
    codec::Json,
};

#[component]
pub fn TimelineRunsPage() -> impl IntoView {
    let query = use_query_map();
    let filter = move || query.with(|q| q.get("timeline").filter(|t| !t.is_empty()));
    let picked = move || {
        query.with(|q| {
            let id = |key| q.get(key).and_then(|v| v.parse::<Uuid>().ok());
            (id("a"), id("b"))
        })
    };
    let runs = Resource::<_, Json>::new_with_options(filter, list_timeline_runs, false);
    let compared = Resource::<_, Json>::new_with_options(
        picked,
        |(a, b)| async move {
            let fetch = |id: Option<Uuid>| async move {
                match id {
                    Some(id) => get_timeline_run(id).await,
                    None => Ok(None),
                }
            };
            Ok::<_, ServerFnError>((fetch(a).await?, fetch(b).await?))
        },
        false,
    );
    view! {
        <HistoryShell>
            <section class="panel" aria-labelledby="runs-title">
                <h1 id="runs-title" class="panel-title">"Timeline runs"</h1>
                <Suspense fallback=|| view! { <p class="empty">"Loading…"</p> }>
                    {move || compared.get().map(|pair| match pair {
                        Ok((Some(a), b)) => view! { <Comparison a b/> }.into_any(),
                        Ok((None, _)) => ().into_any(),
                        Err(e) => view! { <p class="trigger-error" role="alert">{e.to_string()}</p> }.into_any(),
                    })}
                </Suspense>
                <Suspense fallback=|| view! { <p class="empty">"Loading…"</p> }>
                    {move || runs.get().map(|runs| match runs {
                        Ok(runs) if runs.is_empty() => view! {
                            <p class="empty">"No run yet. Start a timeline from the dashboard or with `antibody timeline run`."</p>
                        }.into_any(),
                        Ok(runs) => view! { <Picker runs=runs.clone() picked=picked()/><RunTable runs/> }.into_any(),
                        Err(e) => view! { <p class="trigger-error" role="alert">{e.to_string()}</p> }.into_any(),
                    })}
                </Suspense>
            </section>
        </HistoryShell>
    }
}

/// A run's one-line label.
fn label(run: &TimelineRun) -> String {
    format!(
        "{} · {} · {} · score {:.0}",
        run.name,
        crate::clock::date_time(&run.started_at),
        run.state.as_str(),
        run.score.points
    )
}

/// Two selects and a submit: a GET form, so it works without JavaScript.
#[component]
fn Picker(runs: Vec<TimelineRun>, picked: (Option<Uuid>, Option<Uuid>)) -> impl IntoView {
    let options = move |chosen: Option<Uuid>| {
        runs.iter()
            .map(|r| view! { <option value=r.run_id.to_string() selected=chosen == Some(r.run_id)>{label(r)}</option> })
            .collect_view()
    };
    view! {
        <form class="filters" method="get" action="/timelines">
            <label>"Run "<select name="a">{options(picked.0)}</select></label>
            <label>"compared with "
                <select name="b"><option value="">"(none)"</option>{options(picked.1)}</select>
            </label>
            <button class="btn" type="submit">"Compare"</button>
        </form>
    }
}

#[component]
fn RunTable(runs: Vec<TimelineRun>) -> impl IntoView {
    view! {
        <table class="history-table" data-testid="run-table">
            <thead><tr>
                <th scope="col">"Started"</th><th scope="col">"Timeline"</th><th scope="col">"State"</th>
                <th scope="col">"Incidents"</th><th scope="col">"Score"</th><th scope="col">"Mean MTTR"</th>
            </tr></thead>
            <tbody>
                {runs.into_iter().map(|run| {
                    let fired = run.entries.iter().filter(|e| e.incident_id.is_some()).count();
                    view! {
                        <tr data-testid="run-row">
                            <td class="mono">{crate::clock::date_time(&run.started_at)}</td>
                            <td><a href=format!("/timelines?a={}", run.run_id)>{run.name.clone()}</a>
                                <span class="run-note">{run.timeline_id.clone()}</span></td>
                            <td><span class=format!("badge badge-run-{}", run.state.as_str())>{run.state.as_str()}</span></td>
                            <td>{format!("{fired}/{}", run.entries.len())}</td>
                            <td>{format!("{:.0}", run.score.points)}</td>
                            <td class="mono">{mttr(&run.score)}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}

fn mttr(score: &GameDayScore) -> String {
    score
        .mean_mttr_seconds
        .map(|s| format!("{s:.1} s"))
        .unwrap_or_else(|| "–".into())
}

/// One run, or two side by side with the differences.
#[component]
fn Comparison(a: TimelineRun, b: Option<TimelineRun>) -> impl IntoView {
    let rows = a.entries.len().max(b.as_ref().map_or(0, |b| b.entries.len()));
    let same_timeline = b.as_ref().is_none_or(|b| b.timeline_id == a.timeline_id);
    let delta = |f: fn(&GameDayScore) -> f64, scale: f64, unit: &'static str| {
        b.as_ref().map(|b| {
            let d = (f(&b.score) - f(&a.score)) * scale;
            view! { <span class="delta">{format!(" ({d:+.0}{unit})")}</span> }
        })
    };
    let score_row = |name: &'static str, f: fn(&GameDayScore) -> f64, scale: f64, unit: &'static str| {
        view! {
            <tr>
                <th scope="row">{name}</th>
                <td>{format!("{:.0}{unit}", f(&a.score) * scale)}</td>
                {b.as_ref().map(|b| view! { <td>{format!("{:.0}{unit}", f(&b.score) * scale)}{delta(f, scale, unit)}</td> })}
            </tr>
        }
    };
    let cell = |entry: Option<&RunEntry>| match entry {
        None => view! { <td class="dim">"–"</td> }.into_any(),
        Some(e) => {
            let outcome = match (&e.refused, e.status) {
                (Some(_), _) => "refused".to_owned(),
                (None, Some(s)) => s.as_str().to_owned(),
                (None, None) => "not fired".to_owned(),
            };
            let detail = format!(
                "{} · root cause {}",
                e.mttr_seconds
                    .map(|s| format!("{s:.1} s"))
                    .unwrap_or_else(|| "–".into()),
                match e.root_cause_correct {
                    Some(true) => "right",
                    Some(false) => "wrong",
                    None => "–",
                }
            );
            let link = e.incident_id.map(|id| format!("/incidents/{id}"));
            view! {
                <td>
                    <span class=format!("badge badge-{outcome}")>{outcome.clone()}</span>
                    " " {detail}
                    {link.map(|href| view! { " " <a href=href>"open"</a> })}
                </td>
            }
            .into_any()
        }
    };
    view! {
        <div class="comparison" data-testid="comparison">
            {(!same_timeline).then(|| view! {
                <p class="trigger-error">"These runs are of different timelines; entries are compared by position."</p>
            })}
            <table class="history-table">
                <thead><tr>
                    <th scope="col"></th>
                    <th scope="col">{label(&a)}</th>
                    {b.as_ref().map(|b| view! { <th scope="col">{label(b)}</th> })}
                </tr></thead>
                <tbody>
                    {score_row("Score", |s| s.points, 1.0, "")}
                    {score_row("Root cause right", |s| s.root_cause_accuracy, 100.0, "%")}
                    {score_row("Healed", |s| s.healing_success, 100.0, "%")}
                    {score_row("Mean MTTR", |s| s.mean_mttr_seconds.unwrap_or(0.0), 1.0, " s")}
                    {score_row("Unnecessary actions", |s| f64::from(s.unnecessary_actions), 1.0, "")}
                    {score_row("Rollbacks", |s| f64::from(s.rollbacks), 1.0, "")}
                </tbody>
            </table>
            <table class="history-table" data-testid="comparison-entries">
                <thead><tr>
                    <th scope="col">"Entry"</th>
                    <th scope="col">"Run A"</th>
                    {b.as_ref().map(|_| view! { <th scope="col">"Run B"</th> })}
                </tr></thead>
                <tbody>
                    {(0..rows).map(|i| {
                        let scheduled = a.entries.get(i).or_else(|| b.as_ref().and_then(|b| b.entries.get(i)))
                            .map(|e| format!("{} {}", schedule_clock(e.scheduled.delay_seconds), e.scheduled.comment))
                            .unwrap_or_default();
                        view! {
                            <tr>
                                <td>{scheduled}</td>
                                {cell(a.entries.get(i))}
                                {b.as_ref().map(|b| cell(b.entries.get(i)))}
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}
