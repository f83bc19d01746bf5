//! `/analytics`: seed 003's metrics to track, from the store (so they hold
//! across restarts): healing success, false positives and model latency
//! SLO compliance against the seed's targets, MTTR by incident type, the
//! trend charts, and the incident memory with export and clear.

use engine::protocol::Analytics;
use leptos::prelude::*;

use super::incidents::HistoryShell;
use crate::{
    api::{AnalyticsView, ClearMemory, get_analytics},
    codec::Json,
};

#[component]
pub fn AnalyticsPage() -> impl IntoView {
    let clear = ServerAction::<ClearMemory>::new();
    // Reloads after a clear, so the memory's size is the server's.
    let view = Resource::<_, Json>::new_with_options(move || clear.version().get(), |_| get_analytics(), false);
    view! {
        <HistoryShell>
            <section class="panel" aria-labelledby="analytics-title">
                <h1 id="analytics-title" class="panel-title">"Analytics"</h1>
                <Suspense fallback=|| view! { <p class="empty">"Loading…"</p> }>
                    {move || view.get().map(|view| match view {
                        Ok(view) => view! { <Figures view=view.clone() clear/> }.into_any(),
                        Err(e) => view! { <p class="trigger-error" role="alert">{e.to_string()}</p> }.into_any(),
                    })}
                </Suspense>
            </section>
        </HistoryShell>
    }
}

/// "97.5%", or "–" without data.
fn percent(share: Option<f64>) -> String {
    share.map_or_else(|| "–".to_owned(), |s| format!("{:.1}%", s * 100.0))
}

/// One figure against its target: `met` says which side it is on.
#[component]
fn Kpi(label: &'static str, value: String, target: &'static str, met: Option<bool>, detail: String) -> impl IntoView {
    let class = match met {
        Some(true) => "kpi kpi-met",
        Some(false) => "kpi kpi-missed",
        None => "kpi",
    };
    view! {
        <div class=class data-testid="kpi">
            <div class="kpi-label">{label}</div>
            <div class="kpi-value">{value}</div>
            <div class="kpi-note">"target "{target}</div>
            <div class="kpi-note">{detail}</div>
        </div>
    }
}

#[component]
fn Figures(view: AnalyticsView, clear: ServerAction<ClearMemory>) -> impl IntoView {
    let Analytics {
        resolved,
        failed,
        interrupted,
        healing_success_rate,
        steps_run,
        steps_rolled_back,
        false_positive_rate,
        latency_slo_compliance,
        health_reports,
        ref mttr_by_type,
        ..
    } = view.analytics;
    let mttr_rows = mttr_by_type
        .iter()
        .map(|t| {
            view! {
                <tr data-testid="mttr-row">
                    <td>{t.incident_type.clone()}</td>
                    <td class="num">{t.resolved}</td>
                    <td class="num">{format!("{:.1} s", t.mttr_seconds)}</td>
                </tr>
            }
        })
        .collect_view();
    let charts = view
        .charts
        .iter()
        .map(|c| {
            view! {
                <figure class="chart" data-testid="analytics-chart">
                    <figcaption class="chart-title">{c.title.clone()}</figcaption>
                    <div class="chart-svg" role="img" aria-label=c.summary.clone() inner_html=c.svg.clone()></div>
                </figure>
            }
        })
        .collect_view();
    let cleared = move || {
        clear.value().get().map(|result| match result {
            Ok(removed) => {
                view! { <p class="muted" role="status">{format!("Forgot {removed} incident(s).")}</p> }.into_any()
            }
            Err(e) => view! { <p class="trigger-error" role="alert">{e.to_string()}</p> }.into_any(),
        })
    };
    view! {
        <div class="kpis kpis-3">
            <Kpi
                label="Healing success"
                value=percent(healing_success_rate)
                target="> 95%"
                met=healing_success_rate.map(|r| r > 0.95)
                detail=format!("{resolved} resolved, {failed} handed to people, {interrupted} interrupted")
            />
            <Kpi
                label="False positives"
                value=percent(false_positive_rate)
                target="< 5%"
                met=false_positive_rate.map(|r| r < 0.05)
                detail=format!("{steps_rolled_back} of {steps_run} steps rolled back as unnecessary")
            />
            <Kpi
                label="Model latency SLO"
                value=percent(latency_slo_compliance)
                target="> 99% within 300 ms"
                met=latency_slo_compliance.map(|r| r > 0.99)
                detail=format!("over {health_reports} health reports")
            />
        </div>
        <h2 class="section-title">"MTTR by incident type"</h2>
        {if mttr_by_type.is_empty() {
            view! { <p class="empty">"No incident resolved yet: fire a scenario from the dashboard."</p> }.into_any()
        } else {
            view! {
                <table class="history-table" data-testid="mttr-table">
                    <thead><tr><th>"Type"</th><th class="num">"Resolved"</th><th class="num">"MTTR"</th></tr></thead>
                    <tbody>{mttr_rows}</tbody>
                </table>
            }.into_any()
        }}
        <div class="charts">{charts}</div>
        <h2 class="section-title">"Incident memory"</h2>
        <p data-testid="memory-summary">
            {format!(
                "{} of {} incidents remembered (the oldest is forgotten first). A past incident counts as similar from {:.0}% cosine similarity of the anomalous series.",
                view.memory_entries,
                view.memory_capacity,
                view.similarity_threshold * 100.0
            )}
        </p>
        <div class="memory-actions">
            <a class="btn" href="/api/memory" download="antibody-memory.json">"Export (JSON)"</a>
            <ActionForm action=clear attr:class="inline-form">
                <button type="submit" class="btn btn-reject" data-testid="clear-memory">"Clear memory"</button>
            </ActionForm>
        </div>
        {cleared}
    }
}
