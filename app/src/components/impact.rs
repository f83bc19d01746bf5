//! The Business Impact Meter: savings, resolved incidents, MTTR and success
//! rate, all as computed by the server and eased to each new figure; each
//! resolved incident's contribution flashes as it lands, and the savings
//! formula ([`SavingsFormulaPanel`], below the fold) is one click away with
//! its inputs and the latest incident worked through.

use engine::protocol::{Incident, IncidentStatus, SavingsFormula};
use leptos::prelude::*;

use crate::state::{DashboardState, format_dollars};

/// The latest resolved incident's savings, term by term, from the formula's
/// inputs: "$5,600/min × (1 + 0.25 × 5) × (45 − 0.5) min = $373,646".
pub fn worked_example(formula: &SavingsFormula, incident: &Incident) -> Option<String> {
    let savings = incident.cost_savings?;
    let seconds = incident.resolution_time?;
    let inputs = formula.severities.iter().find(|s| s.severity == incident.severity)?;
    let services = incident.affected_services.len().max(1);
    Some(format!(
        "{}/min × (1 + {} × {}) × ({} − {:.1}) min = {}",
        format_dollars(inputs.cost_per_minute),
        formula.blast_factor,
        services - 1,
        inputs.manual_mttr_minutes,
        seconds / 60.0,
        format_dollars(savings)
    ))
}

/// `18.2 s`, or `2 min 05 s` past a minute.
pub fn format_duration(seconds: f64) -> String {
    if seconds < 60.0 {
        format!("{seconds:.1} s")
    } else {
        let whole = seconds.round() as u64;
        format!("{} min {:02} s", whole / 60, whole % 60)
    }
}

#[component]
pub fn ImpactMeter(state: RwSignal<DashboardState>) -> impl IntoView {
    let metrics = Memo::new(move |_| state.with(|s| s.metrics.clone()));
    let finished = move || metrics.with(|m| m.incidents_resolved + m.incidents_failed);
    // The newest resolved incident with a figure: its contribution flashes
    // (keyed by id, so each lands once) and the formula works it through.
    let latest = Memo::new(move |_| state.with(latest_saving));
    view! {
        <section class="panel impact" aria-labelledby="impact-title">
            <h2 id="impact-title" class="panel-title">"Business impact"</h2>
            {move || latest.get().map(|incident| view! {
                <p class="impact-flash" data-testid="impact-flash" aria-live="polite">
                    {format!("+{} ", format_dollars(incident.cost_savings.unwrap_or_default()))}
                    <span class="muted">{incident.title.clone()}</span>
                </p>
            })}
            <div class="kpis">
                <Kpi label="Cost savings" testid="kpi-savings"
                    value=Signal::derive(move || Some(metrics.with(|m| m.total_cost_savings)))
                    format=format_dollars
                    note=Signal::derive(|| "vs. a manual response".to_owned())/>
                <Kpi label="Incidents resolved" testid="kpi-resolved"
                    value=Signal::derive(move || Some(metrics.with(|m| m.incidents_resolved) as f64))
                    format=|n| format!("{n:.0}")
                    note=Signal::derive(move || format!("{} active", metrics.with(|m| m.incidents_active)))/>
                <Kpi label="Mean time to resolve" testid="kpi-mttr"
                    value=Signal::derive(move || metrics.with(|m| (m.incidents_resolved > 0).then_some(m.avg_mttr)))
                    format=format_duration
                    note=Signal::derive(|| "simulated time".to_owned())/>
                <Kpi label="Success rate" testid="kpi-success"
                    value=Signal::derive(move || (finished() > 0).then(|| metrics.with(|m| m.success_rate) * 100.0))
                    format=|p| format!("{p:.1}%")
                    note=Signal::derive(move || format!("{} finished", finished()))/>
            </div>
        </section>
    }
}

/// How savings are computed, with the server's inputs and the latest
/// resolved incident worked through: below the fold, one click away.
#[component]
pub fn SavingsFormulaPanel(state: RwSignal<DashboardState>, formula: SavingsFormula) -> impl IntoView {
    let latest = Memo::new(move |_| state.with(latest_saving));
    let formula = StoredValue::new(formula);
    view! {
        <section class="panel savings" aria-label="How savings are computed">
            <details class="formula" data-testid="savings-formula">
                <summary>"How savings are computed"</summary>
                <p class="mono">
                    "savings = cost_per_minute[severity] × (1 + blast_factor × (services − 1)) × max(0, manual_mttr[severity] − resolution_time)"
                </p>
                <p class="muted">
                    "What the outage would have cost at the usual manual time to restore, minus what it cost while the swarm handled it. blast_factor = "
                    {formula.with_value(|f| f.blast_factor)}
                    "; the inputs are engine/data/impact.toml."
                </p>
                <table class="formula-inputs">
                    <thead><tr><th>"severity"</th><th>"cost per minute"</th><th>"manual time to restore"</th></tr></thead>
                    <tbody>
                        {formula.with_value(|f| f.severities.iter().map(|s| view! {
                            <tr>
                                <td>{s.severity.as_str()}</td>
                                <td class="mono">{format_dollars(s.cost_per_minute)}</td>
                                <td class="mono">{format!("{} min", s.manual_mttr_minutes)}</td>
                            </tr>
                        }).collect_view())}
                    </tbody>
                </table>
                {move || latest.get().and_then(|incident| {
                    formula.with_value(|f| worked_example(f, &incident)).map(|example| view! {
                        <p data-testid="savings-example">
                            "Latest: " <strong>{incident.title.clone()}</strong>
                            {format!(" ({}, {} services): ", incident.severity.as_str(), incident.affected_services.len())}
                            <span class="mono">{example}</span>
                        </p>
                    })
                })}
            </details>
        </section>
    }
}

/// The newest resolved incident with a savings figure.
fn latest_saving(state: &DashboardState) -> Option<Incident> {
    state
        .incidents
        .iter()
        .find(|i| i.status == IncidentStatus::Resolved && i.cost_savings.is_some())
        .cloned()
}

/// One figure, eased to each new value (see [`crate::tween`]); "—" while
/// there is none.
#[component]
fn Kpi(
    label: &'static str,
    testid: &'static str,
    value: Signal<Option<f64>>,
    format: fn(f64) -> String,
    note: Signal<String>,
) -> impl IntoView {
    let shown = crate::tween::animated(value);
    view! {
        <div class="kpi" data-testid=testid>
            <div class="kpi-label">{label}</div>
            <div class="kpi-value">{move || shown.get().map_or_else(|| "—".to_owned(), format)}</div>
            <div class="kpi-note">{note}</div>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worked_example_uses_the_servers_inputs_and_figure() {
        use engine::protocol::{Severity, SeverityInputs};
        let formula = SavingsFormula {
            blast_factor: 0.25,
            severities: vec![SeverityInputs {
                severity: Severity::Critical,
                cost_per_minute: 5600.0,
                manual_mttr_minutes: 45.0,
            }],
        };
        let incident = Incident {
            id: uuid::Uuid::nil(),
            title: "Database Cascade".into(),
            severity: Severity::Critical,
            affected_services: vec!["a".into(), "b".into(), "c".into()],
            scenario_id: None,
            status: IncidentStatus::Resolved,
            created_at: chrono::Utc::now(),
            finished_at: None,
            resolution_time: Some(18.0),
            cost_savings: Some(367_920.0),
            root_cause: None,
            report: None,
        };
        assert_eq!(
            worked_example(&formula, &incident).as_deref(),
            Some("$5,600/min × (1 + 0.25 × 2) × (45 − 0.3) min = $367,920")
        );
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(18.24), "18.2 s");
        assert_eq!(format_duration(125.0), "2 min 05 s");
    }
}
