//! The incident history: `/incidents` (a filtered, paged list, newest
//! first) and `/incidents/:id` (one incident's whole story: hypotheses,
//! votes, executed steps, timeline and report). Both are server-rendered
//! from the store and shareable as links; the filters are a plain GET form,
//! so they work without JavaScript too.

use engine::protocol::{
    ActionStatus, AgentAction, AuditEntry, CauseStory, ConsensusRound, Envelope, Hypothesis, Incident, IncidentDetail,
    IncidentPage, IncidentStatus, QueryEvidence, ServerMessage, Severity,
};
use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};

use super::impact::format_duration;
use crate::{
    api::{
        ActuationView, AlertView, ChartSet, FindingEvidence, INCIDENTS_PER_PAGE, IncidentView, get_incident,
        list_incidents,
    },
    codec::Json,
    state::format_dollars,
};

/// An enum from its wire name (`"resolved"`), or `None`.
fn wire<T: serde::de::DeserializeOwned>(name: Option<String>) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(name?)).ok()
}

/// The page's chrome: the brand (back to the dashboard) and a title.
#[component]
pub(crate) fn HistoryShell(children: Children) -> impl IntoView {
    view! {
        <div class="page">
            <header class="topbar">
                <super::Brand/>
                <nav class="topnav"><a href="/">"Live dashboard"</a><a href="/incidents">"Incident history"</a><a href="/timelines">"Timeline runs"</a><a href="/analytics">"Analytics"</a></nav>
            </header>
            <main class="history">{children()}</main>
        </div>
    }
}

fn status_badge(status: IncidentStatus) -> impl IntoView {
    view! { <span class=format!("badge badge-{}", status.as_str())>{status.as_str()}</span> }
}

#[component]
pub fn IncidentsPage() -> impl IntoView {
    let query = use_query_map();
    let filter = move || {
        query.with(|q| {
            (
                wire::<IncidentStatus>(q.get("status")),
                wire::<Severity>(q.get("severity")),
                q.get("scenario").filter(|s| !s.is_empty()),
                q.get("page").and_then(|p| p.parse::<u32>().ok()).unwrap_or(1).max(1),
            )
        })
    };
    let incidents = Resource::<_, Json>::new_with_options(
        filter,
        |(status, severity, scenario, page)| list_incidents(status, severity, scenario, page),
        false,
    );
    view! {
        <HistoryShell>
            <section class="panel" aria-labelledby="history-title">
                <h1 id="history-title" class="panel-title">"Incident history"</h1>
                <FilterForm/>
                <Suspense fallback=|| view! { <p class="empty">"Loading…"</p> }>
                    {move || incidents.get().map(|page| match page {
                        Ok(page) => view! { <IncidentTable page filter=filter()/> }.into_any(),
                        Err(e) => view! { <p class="trigger-error" role="alert">{e.to_string()}</p> }.into_any(),
                    })}
                </Suspense>
            </section>
        </HistoryShell>
    }
}

#[component]
fn FilterForm() -> impl IntoView {
    let query = use_query_map();
    let selected = move |key: &'static str, value: &'static str| query.with(|q| q.get(key).as_deref() == Some(value));
    let option = move |key: &'static str, value: &'static str| {
        view! { <option value=value selected=move || selected(key, value)>{value}</option> }
    };
    view! {
        <form class="filters" method="get" action="/incidents">
            <label>"Status "
                <select name="status">
                    <option value="">"any"</option>
                    {["active", "resolved", "advised", "watching", "failed", "interrupted"].map(|v| option("status", v))}
                </select>
            </label>
            <label>"Severity "
                <select name="severity">
                    <option value="">"any"</option>
                    {["critical", "high", "medium", "low"].map(|v| option("severity", v))}
                </select>
            </label>
            <label>"Scenario "
                <input name="scenario" placeholder="e.g. database_cascade"
                    value=move || query.with(|q| q.get("scenario").unwrap_or_default())/>
            </label>
            <button class="btn" type="submit">"Filter"</button>
        </form>
    }
}

#[component]
fn IncidentTable(
    page: IncidentPage,
    filter: (Option<IncidentStatus>, Option<Severity>, Option<String>, u32),
) -> impl IntoView {
    let (status, severity, scenario, number) = filter;
    let link = move |to: u32| {
        let mut parts = vec![format!("page={to}")];
        parts.extend(status.map(|s| format!("status={}", s.as_str())));
        parts.extend(severity.map(|s| format!("severity={}", s.as_str())));
        parts.extend(scenario.clone().map(|s| format!("scenario={s}")));
        format!("/incidents?{}", parts.join("&"))
    };
    let pages = page.total.div_ceil(u64::from(INCIDENTS_PER_PAGE)).max(1) as u32;
    if page.items.is_empty() {
        return view! { <p class="empty">"No incident matches. Fire a scenario from the dashboard."</p> }.into_any();
    }
    view! {
        <table class="history-table" data-testid="incident-table">
            <thead><tr>
                <th scope="col">"Opened"</th><th scope="col">"Incident"</th><th scope="col">"Severity"</th>
                <th scope="col">"Status"</th><th scope="col">"Root cause"</th><th scope="col">"Time to resolve"</th>
                <th scope="col">"Savings"</th>
            </tr></thead>
            <tbody>
                {page.items.into_iter().map(|i| view! { <IncidentRow incident=i/> }).collect_view()}
            </tbody>
        </table>
        <nav class="pager" aria-label="pages">
            <span>{format!("{} incidents · page {number} of {pages}", page.total)}</span>
            {(number > 1).then(|| view! { <a href=link(number - 1)>"← newer"</a> })}
            {(number < pages).then(|| view! { <a href=link(number + 1)>"older →"</a> })}
        </nav>
    }
    .into_any()
}

#[component]
fn IncidentRow(incident: Incident) -> impl IntoView {
    view! {
        <tr data-testid="incident-row">
            <td><time datetime=incident.created_at.to_rfc3339()>{crate::clock::month_day_time(&incident.created_at)}</time></td>
            <td><a href=format!("/incidents/{}", incident.id)>{incident.title.clone()}</a></td>
            <td><span class=format!("sev sev-{}", incident.severity.as_str())>{incident.severity.as_str()}</span></td>
            <td>{status_badge(incident.status)}</td>
            <td>{incident.root_cause.clone().unwrap_or_else(|| "—".into())}</td>
            <td>{incident.resolution_time.map(format_duration).unwrap_or_else(|| "—".into())}</td>
            <td>{incident.cost_savings.map(format_dollars).unwrap_or_else(|| "—".into())}</td>
        </tr>
    }
}

#[component]
pub fn IncidentDetailPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").and_then(|id| id.parse::<uuid::Uuid>().ok()));
    let detail = Resource::<_, Json>::new_with_options(
        id,
        |id| async move {
            match id {
                Some(id) => get_incident(id).await,
                None => Ok(None),
            }
        },
        false,
    );
    view! {
        <HistoryShell>
            <Suspense fallback=|| view! { <p class="empty">"Loading…"</p> }>
                {move || detail.get().map(|found| match found {
                    Ok(Some(page)) => view! { <IncidentStory page/> }.into_any(),
                    Ok(None) => view! {
                        <section class="panel"><h1 class="panel-title">"No such incident"</h1>
                        <p><a href="/incidents">"Back to the history"</a></p></section>
                    }.into_any(),
                    Err(e) => view! { <p class="trigger-error" role="alert">{e.to_string()}</p> }.into_any(),
                })}
            </Suspense>
        </HistoryShell>
    }
}

#[component]
fn IncidentStory(page: IncidentView) -> impl IntoView {
    let IncidentView {
        detail,
        report_html,
        charts,
        alerts,
        evidence,
        actuations,
    } = page;
    let IncidentDetail {
        incident,
        timeline,
        hypotheses,
        votes,
        actions,
        audit,
        causes,
    } = detail;
    view! {
        <section class="panel incident-head" aria-labelledby="incident-title">
            <p class="muted"><a href="/incidents">"Incident history"</a>" / "{incident.id.to_string()}</p>
            <h1 id="incident-title">{incident.title.clone()}" "{status_badge(incident.status)}</h1>
            <dl class="link-stats">
                <div><dt>"Severity"</dt><dd>{incident.severity.as_str()}</dd></div>
                <div><dt>"Scenario"</dt><dd>{incident.scenario_id.clone().unwrap_or_else(|| "ad hoc".into())}</dd></div>
                <div><dt>"Root cause"</dt><dd>{incident.root_cause.clone().unwrap_or_else(|| "—".into())}</dd></div>
                <div><dt>"Time to resolve"</dt><dd>{incident.resolution_time.map(format_duration).unwrap_or_else(|| "—".into())}</dd></div>
                <div><dt>"Savings"</dt><dd>{incident.cost_savings.map(format_dollars).unwrap_or_else(|| "—".into())}</dd></div>
                <div><dt>"Services"</dt><dd>{incident.affected_services.join(", ")}</dd></div>
            </dl>
        </section>
        <Causes causes/>
        <div class="story">
            <section class="panel" aria-labelledby="hypotheses-title">
                <h2 id="hypotheses-title" class="panel-title">"Hypotheses (latest diagnosis)"</h2>
                {if hypotheses.is_empty() {
                    view! { <p class="empty">"Diagnosis produced no hypothesis."</p> }.into_any()
                } else {
                    view! { <ol class="hypotheses" data-testid="hypotheses">{hypotheses.into_iter().map(hypothesis).collect_view()}</ol> }.into_any()
                }}
            </section>
            <section class="panel" aria-labelledby="votes-title">
                <h2 id="votes-title" class="panel-title">"Consensus"</h2>
                {votes.into_iter().map(|round| view! { <Round round/> }).collect_view()}
            </section>
            <section class="panel" aria-labelledby="governance-title">
                <h2 id="governance-title" class="panel-title">"Governance (audit log)"</h2>
                {if audit.is_empty() {
                    view! { <p class="empty">"No plan reached governance."</p> }.into_any()
                } else {
                    view! { <ol class="audit" data-testid="audit">{audit.into_iter().map(audit_line).collect_view()}</ol> }.into_any()
                }}
            </section>
            <section class="panel" aria-labelledby="steps-title">
                <h2 id="steps-title" class="panel-title">"Remediation"</h2>
                <ol class="steps" data-testid="steps">{actions.into_iter().map(step).collect_view()}</ol>
            </section>
        </div>
        <ActionsOut actuations/>
        <Alerts alerts/>
        <Evidence findings=evidence/>
        <section class="panel" aria-labelledby="timeline-title">
            <h2 id="timeline-title" class="panel-title">"Timeline"</h2>
            <ol class="timeline" data-testid="timeline">{timeline.into_iter().filter_map(timeline_line).collect_view()}</ol>
        </section>
        <Telemetry id=incident.id charts/>
        {report_html.map(|html| view! {
            <section class="panel" aria-labelledby="report-title">
                <h2 id="report-title" class="panel-title">"Report"</h2>
                <div class="report" data-testid="report" inner_html=html></div>
            </section>
        })}
    }
}

/// The incident's telemetry: each watched metric against its baseline,
/// drawn on the server; polled again every two seconds while it is open.
#[component]
fn Telemetry(id: uuid::Uuid, charts: ChartSet) -> impl IntoView {
    let charts = RwSignal::new(charts);
    Effect::new(move |_| {
        #[cfg(feature = "browser")]
        if charts.with_untracked(|c| c.live) {
            let handle = set_interval_with_handle(
                move || {
                    leptos::task::spawn_local(async move {
                        if let Ok(fresh) = crate::api::incident_charts(id).await {
                            charts.set(fresh);
                        }
                    });
                },
                std::time::Duration::from_secs(2),
            );
            // Stop once the incident closes, or the page goes.
            if let Ok(handle) = handle {
                Effect::new(move |_| {
                    if !charts.with(|c| c.live) {
                        handle.clear();
                    }
                });
                on_cleanup(move || handle.clear());
            }
        }
        #[cfg(not(feature = "browser"))]
        let _ = id;
    });
    view! {
        <section class="panel" aria-labelledby="telemetry-title">
            <h2 id="telemetry-title" class="panel-title">
                "Telemetry"
                {move || charts.with(|c| c.live).then(|| view! { <span class="live-tag">"live"</span> })}
            </h2>
            <Show when=move || charts.with(|c| !c.charts.is_empty())
                fallback=|| view! { <p class="empty">"No telemetry was kept for this incident."</p> }>
                <p class="muted chart-key">
                    "Each metric (blue) against its baseline (dashed) and ±2σ band (green); vertical lines mark the moments below. Time is simulated seconds since the incident opened."
                </p>
                <div class="charts" data-testid="charts">
                    <For each=move || charts.get().charts key=|c| (c.title.clone(), c.svg.len(), c.summary.clone()) let:chart>
                        <figure class="chart" data-testid="chart">
                            <figcaption class="chart-title">{chart.title.clone()}</figcaption>
                            <div class="chart-svg" role="img" aria-label=chart.summary.clone() inner_html=chart.svg></div>
                        </figure>
                    </For>
                </div>
                <ol class="marks" data-testid="chart-marks">
                    <For each=move || charts.get().marks key=|m| (m.at_seconds.to_bits(), m.label.clone()) let:mark>
                        <li>
                            <span class="mark-swatch" style=format!("background:{}", crate::charts::mark_colour(mark.kind))></span>
                            <span class="mono">{format!("{:+.1} s", mark.at_seconds)}</span>
                            " " {mark.label}
                        </li>
                    </For>
                </ol>
            </Show>
        </section>
    }
}

/// With two faults at once, each cause with its harm, its evidence, what it
/// explains and the steps taken for it, the larger harm first. Absent with
/// one cause: the root cause and the remediation panels tell it.
#[component]
fn Causes(causes: Vec<CauseStory>) -> impl IntoView {
    (!causes.is_empty()).then(|| {
        let count = causes.len();
        view! {
            <section class="panel" aria-labelledby="causes-title">
                <h2 id="causes-title" class="panel-title">{format!("Causes ({count} at once, the larger harm first)")}</h2>
                <ol class="causes" data-testid="causes">{causes.into_iter().map(cause).collect_view()}</ol>
            </section>
        }
    })
}

/// One cause of several: what diagnosis saw and what resolution did.
fn cause(story: CauseStory) -> impl IntoView {
    let CauseStory {
        cause,
        hypothesis,
        steps,
        fixed,
    } = story;
    let evidence: Vec<String> = (hypothesis.iter().flat_map(|h| &h.evidence))
        .map(|m| format!("{} {:.1}σ", m.metric.as_str(), m.sigma))
        .collect();
    let (badge, state) = match (fixed, steps.is_empty()) {
        (true, _) => ("badge badge-completed", "fixed"),
        (false, true) => ("badge", "not acted on"),
        (false, false) => ("badge badge-failed", "not fixed"),
    };
    view! {
        <li class="cause" data-testid="cause">
            <div class="hypothesis-head">
                <strong>{cause.root.label()}</strong>
                <span class=badge>{state}</span>
            </div>
            <p class="muted">{format!("Harm {} · explains {}", cause.impact, cause.explains.join(", "))}</p>
            <p class="muted">"Evidence: "{if evidence.is_empty() { "none".to_owned() } else { evidence.join(", ") }}</p>
            {(!steps.is_empty()).then(|| view! { <ol class="steps">{steps.into_iter().map(step).collect_view()}</ol> })}
        </li>
    }
}

/// One ranked hypothesis, as diagnosis published it.
fn hypothesis(h: Hypothesis) -> impl IntoView {
    let evidence: Vec<String> = h
        .evidence
        .iter()
        .map(|m| format!("{} {:.1}σ", m.metric.as_str(), m.sigma))
        .collect();
    view! {
        <li class="hypothesis">
            <div class="hypothesis-head"><strong>{h.label()}</strong><span class="mono">{format!("{:.0}%", h.confidence * 100.0)}</span></div>
            <div class="meter" aria-hidden="true"><span style=format!("width:{:.0}%", h.confidence * 100.0)></span></div>
            <p class="muted">"Evidence: "{if evidence.is_empty() { "none".to_owned() } else { evidence.join(", ") }}</p>
            {(!h.path.is_empty()).then(|| view! { <p class="muted">"Path: "{h.path.join(" → ")}</p> })}
        </li>
    }
}

#[component]
fn Round(round: ConsensusRound) -> impl IntoView {
    view! {
        <div class="round">
            <p>
                <strong>{round.plan.clone()}</strong>" — "
                {if round.passed { "passed" } else { "failed" }}
                {format!(" ({} of {} approvals, quorum {})", round.approvals, round.voters, round.quorum)}
            </p>
            <ul class="votes">
                {round.votes.into_iter().map(|vote| view! {
                    <li class=format!("vote vote-{}", serde_json::to_value(vote.choice).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default())>
                        <span class="mono">{vote.agent.label()}</span>
                        <span>{serde_json::to_value(vote.choice).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()}</span>
                        {vote.injected_fault.map(|f| view! { <span class="badge badge-failed">{format!("faulty: {f}")}</span> })}
                        <span class="muted">{vote.reason}</span>
                    </li>
                }).collect_view()}
            </ul>
        </div>
    }
}

/// One audit entry: who or what decided, when, and why.
fn audit_line(entry: AuditEntry) -> impl IntoView {
    let kind = entry.kind.replace('_', " ");
    view! {
        <li class="audit-line" data-kind=entry.kind.clone()>
            <time class="mono muted" datetime=entry.at.to_rfc3339()>{crate::clock::time_of_day(&entry.at)}</time>
            <span class=format!("badge badge-{}", entry.decision)>{entry.decision.clone()}</span>
            <span>
                <strong>{entry.actor}</strong>" · "{kind}
                {(!entry.reason.is_empty()).then(|| view! { <span class="muted">" — "{entry.reason}</span> })}
            </span>
        </li>
    }
}

/// One of resolution's finished actions.
fn step(action: AgentAction) -> impl IntoView {
    let status = match action.status {
        ActionStatus::Completed => "completed",
        ActionStatus::Failed => "failed",
        ActionStatus::InProgress => "in_progress",
    };
    view! {
        <li class="step">
            <span class=format!("badge badge-{status}")>{status}</span>
            <span>{action.description}</span>
            <span class="mono muted">{action.duration_ms.map(|ms| format!("{:.1} s", ms as f64 / 1000.0))}</span>
        </li>
    }
}

/// The alerts the incident grouped, as their senders sent them: what each
/// did (opened, joined, resolved), its severity label and what it mapped
/// to, every label and annotation, and a link to its expression. Absent for
/// an incident no alert opened.
#[component]
fn Alerts(alerts: Vec<AlertView>) -> impl IntoView {
    (!alerts.is_empty()).then(|| {
        view! {
            <section class="panel" aria-labelledby="alerts-title">
                <h2 id="alerts-title" class="panel-title">"Alerts"</h2>
                <ol class="alerts" data-testid="alerts">{alerts.into_iter().map(alert_line).collect_view()}</ol>
            </section>
        }
    })
}

/// One alert on the record.
fn alert_line(alert: AlertView) -> impl IntoView {
    let placement = alert.placement.as_str();
    let severity = match &alert.severity_label {
        Some(label) => format!("severity {label} → {}", alert.severity.as_str()),
        None => format!("no severity label → {}", alert.severity.as_str()),
    };
    view! {
        <li class="alert-record">
            <div>
                <span class=format!("badge badge-{placement}")>{placement}</span>" "
                <strong>{alert.name}</strong>" on "{alert.service}
                <span class="muted">" · "{alert.source}" · "{severity}" · since "{alert.starts_at.format("%H:%M:%S UTC").to_string()}</span>
            </div>
            <div>{alert.summary}</div>
            <div class="chips">
                {alert.pairs.into_iter().map(|(k, v)| view! { <span class="chip mono">{k}"="{v}</span> }).collect_view()}
            </div>
            {alert
                .generator_url
                // Only a web link: the sender's text is not trusted as a URL scheme.
                .filter(|url| url.starts_with("http://") || url.starts_with("https://"))
                .map(|url| view! { <a href=url rel="noopener noreferrer" target="_blank">"The alert's expression"</a> })}
        </li>
    }
}

/// On a watched estate, the PromQL behind each agent's finding: the query,
/// the range and the values it read, so a person can run it again. Absent
/// on the twin, whose findings carry none.
#[component]
fn Evidence(findings: Vec<FindingEvidence>) -> impl IntoView {
    (!findings.is_empty()).then(|| {
        view! {
            <section class="panel" aria-labelledby="evidence-title">
                <h2 id="evidence-title" class="panel-title">"Evidence (PromQL)"</h2>
                <ol class="evidence" data-testid="evidence">
                    {findings.into_iter().map(|finding| view! {
                        <li>
                            <details>
                                <summary>
                                    <strong>{finding.agent.label()}</strong>" · "{finding.description}
                                    <span class="muted">{format!(" ({} series)", finding.queries.len())}</span>
                                </summary>
                                <ul>{finding.queries.into_iter().map(query_line).collect_view()}</ul>
                            </details>
                        </li>
                    }).collect_view()}
                </ol>
            </section>
        }
    })
}

/// How each step went out: its actuator, the exact request (the order as
/// sent, with its idempotency key), the receipt and the outcome; and each
/// undo's receipt. Absent when no step ran.
#[component]
fn ActionsOut(actuations: Vec<ActuationView>) -> impl IntoView {
    (!actuations.is_empty()).then(|| {
        view! {
            <section class="panel" id="actions-out" aria-labelledby="actions-out-title">
                <h2 id="actions-out-title" class="panel-title">"Actions out"</h2>
                <ol class="actuations" data-testid="actuations">
                    {actuations.into_iter().map(actuation_line).collect_view()}
                </ol>
            </section>
        }
    })
}

fn actuation_line(a: ActuationView) -> impl IntoView {
    let badge = match a.status.as_str() {
        "completed" | "failed" => a.status.clone(),
        _ => "in_progress".to_owned(),
    };
    let attempts = (a.attempts > 1).then(|| format!(" · {} attempts", a.attempts));
    view! {
        <li class="actuation">
            <details>
                <summary>
                    <span class=format!("badge badge-{badge}")>{a.status.clone()}</span>
                    " "<strong>{a.what}</strong>
                    {(!a.actuator.is_empty()).then(|| view! { <span class="muted">" via "{a.actuator.clone()}</span> })}
                    {a.receipt.map(|r| view! { <span class="mono">" · receipt "{r}</span> })}
                    {attempts.map(|t| view! { <span class="muted">{t}</span> })}
                </summary>
                {a.error.map(|e| view! { <p class="trigger-error">{e}</p> })}
                {(!a.request_line.is_empty()).then(|| view! {
                    <p class="mono">{a.request_line.clone()}</p>
                    <p class="muted">"Idempotency-Key: "<span class="mono">{a.idempotency_key.clone()}</span></p>
                    <pre class="mono order">{a.body.clone()}</pre>
                })}
            </details>
        </li>
    }
}

/// One query a finding rests on.
fn query_line(q: QueryEvidence) -> impl IntoView {
    let values: Vec<String> = q.values.iter().map(|v| format!("{v:.4}")).collect();
    view! {
        <li class="evidence-query">
            <span class="mono">{q.service}" · "{q.metric.as_str()}</span>
            <code class="mono">{q.query}</code>
            <span class="muted">
                {format!(
                    "{} to {} UTC, every {} s · last values {} · baseline {:.4}",
                    q.start.format("%H:%M:%S"),
                    q.end.format("%H:%M:%S"),
                    q.step_seconds,
                    values.join(", "),
                    q.baseline
                )}
            </span>
        </li>
    }
}

/// One line of the timeline; reports and metrics are left out.
fn timeline_line(event: Envelope) -> Option<impl IntoView> {
    let (who, what) = match &event.message {
        ServerMessage::IncidentCreated { incident } => ("incident".to_owned(), format!("opened: {}", incident.title)),
        ServerMessage::AgentAction { action, .. } if action.status != ActionStatus::InProgress => {
            (action.agent_type.label().to_owned(), action.description.clone())
        }
        ServerMessage::Consensus { round, .. } => (
            "consensus".to_owned(),
            format!("{} — {}", round.plan, if round.passed { "passed" } else { "failed" }),
        ),
        ServerMessage::ConfigChange { change, .. } => (
            "estate".to_owned(),
            format!(
                "{} {}: {} → {} ({})",
                change.service, change.key, change.from, change.to, change.cause
            ),
        ),
        ServerMessage::IncidentStatus { status, .. } => ("incident".to_owned(), status.as_str().to_owned()),
        ServerMessage::AlertReceived { alert, .. } => ("alert".to_owned(), alert.describe()),
        ServerMessage::ApprovalRequested { approval } | ServerMessage::ApprovalDecided { approval } => {
            ("governance".to_owned(), approval.outcome())
        }
        ServerMessage::PolicyDecision { decision, .. } => (
            "governance".to_owned(),
            format!(
                "policy {} ({}): {}",
                decision.verdict.as_str(),
                decision.rule,
                decision.reason
            ),
        ),
        _ => return None,
    };
    Some(view! {
        <li class="timeline-line">
            <time class="mono muted" datetime=event.ts.to_rfc3339()>{crate::clock::time_of_day_ms(&event.ts)}</time>
            <span class="mono">{who}</span>
            <span>{what}</span>
        </li>
    })
}
