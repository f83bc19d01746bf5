//! The Business Impact Meter: savings, resolved incidents, MTTR and success
//! rate, all as computed by the server.

use leptos::prelude::*;

use crate::state::{DashboardState, format_dollars};

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
    view! {
        <section class="panel impact" aria-labelledby="impact-title">
            <h2 id="impact-title" class="panel-title">"Business impact"</h2>
            <div class="kpis">
                <Kpi label="Cost savings" testid="kpi-savings"
                    value=Signal::derive(move || format_dollars(metrics.with(|m| m.total_cost_savings)))
                    note=Signal::derive(|| "vs. a manual response".to_owned())/>
                <Kpi label="Incidents resolved" testid="kpi-resolved"
                    value=Signal::derive(move || metrics.with(|m| m.incidents_resolved).to_string())
                    note=Signal::derive(move || format!("{} active", metrics.with(|m| m.incidents_active)))/>
                <Kpi label="Mean time to resolve" testid="kpi-mttr"
                    value=Signal::derive(move || {
                        let m = metrics.get();
                        if m.incidents_resolved == 0 { "—".to_owned() } else { format_duration(m.avg_mttr) }
                    })
                    note=Signal::derive(|| "simulated time".to_owned())/>
                <Kpi label="Success rate" testid="kpi-success"
                    value=Signal::derive(move || {
                        if finished() == 0 { "—".to_owned() } else { format!("{:.1}%", metrics.with(|m| m.success_rate) * 100.0) }
                    })
                    note=Signal::derive(move || format!("{} finished", finished()))/>
            </div>
        </section>
    }
}

#[component]
fn Kpi(label: &'static str, testid: &'static str, value: Signal<String>, note: Signal<String>) -> impl IntoView {
    view! {
        <div class="kpi" data-testid=testid>
            <div class="kpi-label">{label}</div>
            <div class="kpi-value">{value}</div>
            <div class="kpi-note">{note}</div>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(18.24), "18.2 s");
        assert_eq!(format_duration(125.0), "2 min 05 s");
    }
}
