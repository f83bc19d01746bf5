//! A Prometheus estate: the agents read a real estate's telemetry by PromQL
//! instead of the twin's, through the same [`Observed`] boundary.
//!
//! Each read runs one range query per figure (the [`mapping`]) over the
//! lookback, at the mapping's step, for every service at once, and records
//! the answers as a [`View`]: per service, one sample a step, fed through
//! the same baselines as the twin's telemetry, so detection judges both
//! alike. The topology (services, kinds, objectives, call graph) comes from
//! a topology file, the twin's own by default. A view remembers the queries
//! it ran, so every finding can show the PromQL behind it.
//!
//! This module only reads: a plan runs on the estate through an actuator
//! (`crate::actuator`), or, without one, is proposed only (advisory).

pub mod api;
pub mod mapping;

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use futures::future::join_all;

pub use api::{Auth, Endpoint, QueryError};
pub use mapping::Mapping;

use crate::{
    observe::Observed,
    protocol::{HealthState, Metric, QueryEvidence},
    twin::{Sample, health::health_of, telemetry::Telemetry, topology::Topology},
};

/// What readiness asks Prometheus: the cheapest query that proves it
/// answers queries.
pub const PROBE_QUERY: &str = "vector(1)";
/// Most recent points of a series a finding's evidence shows.
const EVIDENCE_POINTS: usize = 10;

/// A Prometheus estate; cheap to clone.
#[derive(Clone)]
pub struct PrometheusEstate {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PrometheusEstate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrometheusEstate")
            .field("url", &self.url())
            .field("selector", &self.inner.selector)
            .finish_non_exhaustive()
    }
}

struct Inner {
    client: api::Client,
    mapping: Mapping,
    /// Extra label matchers for every query, as in `job="twin"`.
    selector: String,
    topology: Arc<Topology>,
    /// The last read's failure, cleared by a read that succeeds.
    last_error: Mutex<Option<String>>,
}

/// What one range query ran: shown beside the findings read from it.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryRun {
    pub metric: Metric,
    /// The PromQL, placeholders filled in.
    pub query: String,
}

/// An estate as Prometheus recorded it over the lookback.
#[derive(Debug, Clone)]
pub struct View {
    topology: Arc<Topology>,
    /// Per service, one sample a step, oldest first, with baselines.
    telemetry: Vec<Telemetry>,
    /// The queries run, one per figure (or per figure and service).
    pub queries: Vec<QueryRun>,
    /// The range read, and its step.
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub step_seconds: u64,
}

impl PrometheusEstate {
    pub fn new(endpoint: Endpoint, mapping: Mapping, selector: String, topology: Arc<Topology>) -> Self {
        Self {
            inner: Arc::new(Inner {
                client: api::Client::new(endpoint),
                mapping,
                selector,
                topology,
                last_error: Mutex::new(None),
            }),
        }
    }

    /// The Prometheus read, for messages.
    pub fn url(&self) -> &str {
        self.inner.client.url()
    }

    pub fn topology(&self) -> &Arc<Topology> {
        &self.inner.topology
    }

    /// Why the last read failed, while no read since has succeeded.
    pub fn last_error(&self) -> Option<String> {
        self.inner
            .last_error
            .lock()
            .expect("estate error lock poisoned")
            .clone()
    }

    /// Asks Prometheus a trivial query: the readiness probe.
    pub async fn probe(&self) -> Result<(), QueryError> {
        self.inner.client.instant(PROBE_QUERY).await.map(drop)
    }

    /// Reads the estate over the lookback ending now.
    pub async fn read(&self) -> Result<View, QueryError> {
        let result = self.read_until(Utc::now()).await;
        *self.inner.last_error.lock().expect("estate error lock poisoned") =
            result.as_ref().err().map(ToString::to_string);
        result
    }

    /// Reads the estate over the lookback ending at `end`.
    pub async fn read_until(&self, end: DateTime<Utc>) -> Result<View, QueryError> {
        let Inner {
            client,
            mapping,
            selector,
            topology,
            ..
        } = &*self.inner;
        let step = mapping.step_seconds;
        // Aligned to the step, so successive reads share their grid.
        let end_s = (end.timestamp() as u64 / step * step) as f64;
        let start_s = end_s - mapping.lookback_seconds as f64;
        let mut queries = Vec::new();
        for metric in Metric::ALL {
            if mapping.per_service(metric) {
                for name in topology.names() {
                    let query = mapping.query(metric, selector, Some(name));
                    queries.push((metric, Some(name), query));
                }
            } else {
                queries.push((metric, None, mapping.query(metric, selector, None)));
            }
        }
        let answers = join_all(
            queries
                .iter()
                .map(|(_, _, query)| client.range(query, start_s, end_s, step)),
        )
        .await;
        let mut grid = Grid::new(topology, start_s, end_s, step);
        for ((metric, service, _), answer) in queries.iter().zip(answers) {
            for series in answer? {
                let name = service.or_else(|| series.labels.get(&mapping.service_label).map(String::as_str));
                if let Some(index) = name.and_then(|n| topology.index(n)) {
                    grid.fill(index, *metric, &series.points);
                }
            }
        }
        let telemetry = grid.telemetry();
        if telemetry.iter().all(|t| t.history.is_empty()) {
            return Err(QueryError::NoData {
                url: client.url().to_owned(),
                selector: selector.clone(),
                label: mapping.service_label.clone(),
            });
        }
        Ok(View {
            topology: Arc::clone(topology),
            telemetry,
            queries: queries
                .into_iter()
                .map(|(metric, _, query)| QueryRun { metric, query })
                .collect(),
            start: seconds(start_s),
            end: seconds(end_s),
            step_seconds: step,
        })
    }
}

fn seconds(unix: f64) -> DateTime<Utc> {
    DateTime::from_timestamp(unix as i64, 0).unwrap_or_default()
}

/// The answers laid on one time grid: per service, per step, the value of
/// each figure (`None` where its series had no point).
struct Grid {
    start: f64,
    step: f64,
    points: usize,
    /// `[service][point][metric as usize]`.
    values: Vec<Vec<[Option<f64>; Metric::COUNT]>>,
}

impl Grid {
    fn new(topology: &Topology, start: f64, end: f64, step: u64) -> Self {
        let points = ((end - start) / step as f64) as usize + 1;
        assert!(points as u64 <= mapping::MAX_POINTS, "the mapping caps the points");
        Self {
            start,
            step: step as f64,
            points,
            values: vec![vec![[None; Metric::COUNT]; points]; topology.len()],
        }
    }

    fn fill(&mut self, service: usize, metric: Metric, points: &[(f64, f64)]) {
        for &(t, value) in points {
            let at = ((t - self.start) / self.step).round();
            if at >= 0.0 && (at as usize) < self.points {
                self.values[service][at as usize][metric as usize] = Some(value);
            }
        }
    }

    /// Each service's samples from its first step with any figure, a gap
    /// in a figure holding its last value (its first, before it began), a
    /// figure never seen reading 0 as on the twin for what a service lacks;
    /// fed through the baselines in order.
    fn telemetry(self) -> Vec<Telemetry> {
        let keep = self.points;
        self.values
            .into_iter()
            .map(|steps| {
                let mut telemetry = Telemetry::new();
                let Some(first) = steps.iter().position(|step| step.iter().any(Option::is_some)) else {
                    return telemetry;
                };
                let mut last: [f64; Metric::COUNT] =
                    std::array::from_fn(|m| steps.iter().find_map(|step| step[m]).unwrap_or(0.0));
                for step in &steps[first..] {
                    for (held, seen) in last.iter_mut().zip(step) {
                        if let Some(value) = seen {
                            *held = *value;
                        }
                    }
                    telemetry.record(Sample(last), keep);
                }
                telemetry
            })
            .collect()
    }
}

impl View {
    /// A view of figures recorded elsewhere (a standalone twin's own
    /// telemetry), read at `end`: no queries, so no PromQL evidence.
    pub fn recorded(topology: Arc<Topology>, telemetry: Vec<Telemetry>, end: DateTime<Utc>) -> Self {
        assert_eq!(topology.len(), telemetry.len(), "one window per service");
        Self {
            topology,
            telemetry,
            queries: Vec::new(),
            start: end,
            end,
            step_seconds: 1,
        }
    }

    /// The evidence behind a finding about `metric` on `service`: the query,
    /// the range and the last values seen, against the baseline.
    pub fn evidence(&self, service: &str, metric: Metric) -> Option<QueryEvidence> {
        let index = self.topology.index(service)?;
        let run = self.queries.iter().find(|q| q.metric == metric)?;
        let telemetry = &self.telemetry[index];
        Some(QueryEvidence {
            service: service.to_owned(),
            metric,
            query: run.query.clone(),
            start: self.start,
            end: self.end,
            step_seconds: self.step_seconds,
            values: telemetry.recent(metric, EVIDENCE_POINTS),
            baseline: telemetry.baseline(metric).mean,
        })
    }
}

impl Observed for View {
    fn topology(&self) -> &Topology {
        &self.topology
    }

    fn telemetry(&self, index: usize) -> &Telemetry {
        &self.telemetry[index]
    }

    fn health(&self, index: usize, window: usize) -> HealthState {
        health_of(self.topology.spec(index), &self.telemetry[index], window)
    }

    fn in_rotation(&self, _index: usize) -> bool {
        // Prometheus records only what takes traffic.
        true
    }
}

#[cfg(test)]
mod tests;
