//! The data behind an incident's charts, on the shared estate: which
//! series to watch (the affected services' latency and errors, then what
//! detection found anomalous), each series' baseline as the incident
//! opened, and the moments to mark. The readings themselves are the
//! estate's own history, read when a chart is asked for; when the incident
//! closes, its window is kept (and handed to the journal, so a page loaded
//! after a restart still has it).

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
};

use uuid::Uuid;

use crate::{
    protocol::{ChartMark, IncidentTelemetry, MarkKind, MetricSeries},
    twin::{Estate, Metric},
};

/// Seconds of telemetry shown before the incident opened: the onset.
const LEAD_SECONDS: u64 = 20;
/// Most series one incident charts.
const MAX_SERIES: usize = 8;
/// Closed incidents' windows kept in memory, newest last.
const FINISHED_KEPT: usize = 200;
/// What every affected service shows before detection says more.
const DEFAULT_METRICS: [Metric; 2] = [Metric::LatencyP99, Metric::ErrorRate];

/// One incident's chart, while it is open.
struct Spec {
    /// The estate's tick when it opened.
    opened_tick: u64,
    /// Watched series: the service's index and name, the metric, and the
    /// baseline's mean and sigma when it opened.
    series: Vec<(usize, String, Metric, f64, f64)>,
    /// Marks so far.
    marks: Vec<ChartMark>,
}

/// The charts of open incidents, and the windows of recently closed ones.
#[derive(Default)]
pub(crate) struct Charts {
    open: Mutex<HashMap<Uuid, Spec>>,
    closed: Mutex<VecDeque<IncidentTelemetry>>,
}

impl Charts {
    /// Starts charting an incident on `services`, opened at the estate's
    /// `opened_tick` (the estate may already have run ahead with its fault).
    pub fn open(&self, id: Uuid, estate: &Estate, opened_tick: u64, services: &[String]) {
        let mut spec = Spec {
            opened_tick,
            series: Vec::new(),
            marks: vec![ChartMark {
                at_seconds: 0.0,
                kind: MarkKind::Opened,
                label: "incident opened".into(),
            }],
        };
        for service in services {
            for metric in DEFAULT_METRICS {
                watch(&mut spec, estate, service, metric);
            }
        }
        self.open.lock().expect("charts lock poisoned").insert(id, spec);
    }

    /// Adds the series detection found anomalous, strongest first.
    pub fn watch(&self, id: Uuid, estate: &Estate, anomalies: &[(String, Metric)]) {
        if let Some(spec) = self.open.lock().expect("charts lock poisoned").get_mut(&id) {
            // Anomalies lead: they replace the defaults when space runs out.
            let defaults: Vec<_> = spec.series.drain(..).collect();
            for (service, metric) in anomalies {
                watch(spec, estate, service, *metric);
            }
            for (index, name, metric, mean, sigma) in defaults {
                if spec.series.len() < MAX_SERIES && !spec.series.iter().any(|s| s.0 == index && s.2 == metric) {
                    spec.series.push((index, name, metric, mean, sigma));
                }
            }
        }
    }

    /// Marks a moment, `at_seconds` after the opening.
    pub fn mark(&self, id: Uuid, at_seconds: f64, kind: MarkKind, label: String) {
        if let Some(spec) = self.open.lock().expect("charts lock poisoned").get_mut(&id) {
            spec.marks.push(ChartMark {
                at_seconds: (at_seconds * 10.0).round() / 10.0,
                kind,
                label,
            });
        }
    }

    /// The window so far, for an open incident; the kept window for a
    /// recently closed one.
    pub fn telemetry(&self, id: Uuid, estate: Option<&Estate>) -> Option<IncidentTelemetry> {
        if let Some(estate) = estate
            && let Some(spec) = self.open.lock().expect("charts lock poisoned").get(&id)
        {
            return Some(window(id, spec, estate, true));
        }
        self.closed
            .lock()
            .expect("charts lock poisoned")
            .iter()
            .find(|t| t.incident_id == id)
            .cloned()
    }

    /// Closes an incident's chart; returns its final window.
    pub fn close(&self, id: Uuid, estate: &Estate, at_seconds: f64, label: String) -> Option<IncidentTelemetry> {
        let mut spec = self.open.lock().expect("charts lock poisoned").remove(&id)?;
        spec.marks.push(ChartMark {
            at_seconds: (at_seconds * 10.0).round() / 10.0,
            kind: MarkKind::Closed,
            label,
        });
        let telemetry = window(id, &spec, estate, false);
        let mut closed = self.closed.lock().expect("charts lock poisoned");
        closed.push_back(telemetry.clone());
        while closed.len() > FINISHED_KEPT {
            closed.pop_front();
        }
        Some(telemetry)
    }
}

/// Adds `service`'s `metric`, if the estate has the service and there is
/// room, with the baseline as it is now.
fn watch(spec: &mut Spec, estate: &Estate, service: &str, metric: Metric) {
    let Some(index) = estate.topology().index(service) else {
        return;
    };
    if spec.series.len() >= MAX_SERIES || spec.series.iter().any(|s| s.0 == index && s.2 == metric) {
        return;
    }
    let baseline = estate.service(index).telemetry.baseline(metric);
    spec.series
        .push((index, service.to_owned(), metric, baseline.mean, baseline.sigma(metric)));
}

/// The readings from a little before the opening to now.
fn window(id: Uuid, spec: &Spec, estate: &Estate, live: bool) -> IncidentTelemetry {
    let since_open = estate.now().saturating_sub(spec.opened_tick);
    let wanted = (since_open + LEAD_SECONDS + 1) as usize;
    let series: Vec<MetricSeries> = spec
        .series
        .iter()
        .map(|(index, service, metric, mean, sigma)| {
            let history = &estate.service(*index).telemetry.history;
            let skip = history.len().saturating_sub(wanted);
            MetricSeries {
                service: service.clone(),
                metric: metric.as_str().to_owned(),
                values: history.iter().skip(skip).map(|s| round(s.get(*metric))).collect(),
                baseline: round(*mean),
                sigma: round(*sigma),
            }
        })
        .collect();
    let readings = series.iter().map(|s| s.values.len()).max().unwrap_or(0);
    IncidentTelemetry {
        incident_id: id,
        start_seconds: since_open as f64 - readings.saturating_sub(1) as f64,
        step_seconds: 1.0,
        series,
        marks: spec.marks.clone(),
        live,
    }
}

/// Four significant digits: charts need no more, and the JSON stays small.
fn round(value: f64) -> f64 {
    if value == 0.0 || !value.is_finite() {
        return 0.0;
    }
    let scale = 10f64.powi(3 - value.abs().log10().floor() as i32);
    (value * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::{
        Engine, EngineConfig,
        protocol::{MarkKind, ServerMessage},
    };

    #[tokio::test(start_paused = true)]
    async fn an_incidents_chart_shows_the_fault_against_its_baseline_and_the_fix_marked() {
        let engine = Engine::new(EngineConfig {
            seed: Some(3),
            ..EngineConfig::default()
        })
        .unwrap();
        let mut live = engine.feed(None).live;
        let incident = engine.trigger_scenario("database_cascade", None).unwrap();

        // While it runs, the window grows and is live.
        tokio::time::sleep(Duration::from_secs(4)).await;
        let early = engine.incident_telemetry(incident.id).unwrap();
        assert!(early.live);
        loop {
            let event = live.recv().await.unwrap();
            if matches!(&event.message, ServerMessage::IncidentStatus { status, .. } if status.is_terminal()) {
                break;
            }
        }
        let chart = engine.incident_telemetry(incident.id).unwrap();
        assert!(!chart.live);
        assert!(
            chart.start_seconds <= -19.0,
            "the onset is shown: {}",
            chart.start_seconds
        );

        // Detection's strongest finding is charted: the pool on the
        // database, far above its baseline band after the opening.
        let pool = chart
            .series
            .iter()
            .find(|s| s.service == "postgres-primary" && s.metric == "pool_usage")
            .expect("the anomalous pool is watched");
        let at = |seconds: f64| pool.values[(seconds - chart.start_seconds) as usize];
        let band = pool.baseline + 2.0 * pool.sigma;
        assert!(at(-19.0) <= band, "{} before the fault, band {band}", at(-19.0));
        assert!(at(1.0) > band, "{} after the opening, band {band}", at(1.0));
        assert!(chart.series.len() <= 8);

        let kinds: Vec<MarkKind> = chart.marks.iter().map(|m| m.kind).collect();
        assert_eq!(kinds.first(), Some(&MarkKind::Opened));
        assert_eq!(kinds.last(), Some(&MarkKind::Closed));
        assert!(
            kinds.contains(&MarkKind::Step) && kinds.contains(&MarkKind::Verified),
            "{kinds:?}"
        );
        let first_step = chart.marks.iter().find(|m| m.kind == MarkKind::Step).unwrap();
        assert_eq!(first_step.label, "Scale connection pool on postgres-primary");
        // After the fix and its verification, the pool is back near normal.
        let verified = chart.marks.iter().find(|m| m.kind == MarkKind::Verified).unwrap();
        assert!(at(verified.at_seconds.floor()) < at(1.0));
        assert!(chart.marks.windows(2).all(|w| w[0].at_seconds <= w[1].at_seconds));
    }

    #[test]
    fn readings_keep_four_significant_digits() {
        assert_eq!(super::round(123.456_78), 123.5);
        assert_eq!(super::round(0.012_345_6), 0.012_35);
        assert_eq!(super::round(0.0), 0.0);
        assert_eq!(super::round(f64::NAN), 0.0);
    }
}
