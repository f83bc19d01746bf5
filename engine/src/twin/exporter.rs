//! The twin as a Prometheus target: what its monitoring measured, in the
//! text exposition format (version 0.0.4), named as real exporters name it.
//!
//! Gauges are the latest noisy sample, the very figures the agents read.
//! Counters and the latency histogram are integrated tick by tick from
//! those samples: requests by status code, latency buckets from the
//! measured median and tail (the twin's latency is log-normal), and calls
//! along each edge of the call graph (Tempo's service-graph names). Only
//! an estate told to [`start_exporting`](Estate::start_exporting) keeps
//! them, so forks for evaluation pay nothing.

use std::fmt::Write;

use super::{Estate, Metric, Sample, ServiceKind, Topology, outcome::normal_cdf, psi};

/// Upper bounds of the latency histogram, in seconds: Prometheus's default
/// buckets. Every service's p99 objective is added to them, so that
/// `histogram_quantile` is exact where an alert compares it.
const DEFAULT_BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// z of the 99th percentile: the measured p99 over p50 gives sigma.
const Z99: f64 = 2.326;

/// One service's running totals.
#[derive(Debug, Clone, Default)]
struct ServiceTotals {
    /// Answered requests, and failed ones.
    ok: f64,
    failed: f64,
    /// Requests at or under each bound of [`Totals::bounds`] (cumulative,
    /// as exposed).
    buckets: Vec<f64>,
    /// Seconds spent answering.
    seconds: f64,
}

/// Running totals of one edge of the call graph.
#[derive(Debug, Clone, Default)]
struct EdgeTotals {
    calls: f64,
    failed: f64,
}

/// Everything the counters have added up since exporting started.
#[derive(Debug, Clone)]
pub(super) struct Totals {
    /// The histogram's upper bounds, in seconds, ascending.
    bounds: Vec<f64>,
    services: Vec<ServiceTotals>,
    /// By caller, then by the caller's edge.
    edges: Vec<Vec<EdgeTotals>>,
}

impl Estate {
    /// Keeps counters and the latency histogram from now on, for
    /// [`exposition`](Self::exposition).
    pub fn start_exporting(&mut self) {
        let topology = &self.topology;
        let objectives = topology.services.iter().map(|s| s.slo_p99_ms / 1000.0);
        let mut bounds: Vec<f64> = DEFAULT_BUCKETS.into_iter().chain(objectives).collect();
        bounds.sort_by(f64::total_cmp);
        bounds.dedup();
        let service = ServiceTotals {
            buckets: vec![0.0; bounds.len()],
            ..ServiceTotals::default()
        };
        self.totals = Some(Box::new(Totals {
            bounds,
            services: vec![service; topology.services.len()],
            edges: topology
                .services
                .iter()
                .map(|s| vec![EdgeTotals::default(); s.edges.len()])
                .collect(),
        }));
    }

    /// Adds service `i`'s second to the counters; `sample` is what its
    /// monitoring measured, `offered` the requests it was sent.
    pub(super) fn count(&mut self, topology: &Topology, i: usize, sample: &Sample, offered: f64) {
        let Some(totals) = self.totals.as_deref_mut() else {
            return;
        };
        let answered = sample.get(Metric::Rps);
        let errors = sample.get(Metric::ErrorRate).clamp(0.0, 1.0);
        let service = &mut totals.services[i];
        service.ok += answered;
        // The answered share is the one that did not fail; when next to
        // nothing is answered, the failures are of what it was sent.
        let failed = if errors < 0.99 {
            answered * errors / (1.0 - errors)
        } else {
            offered * errors
        };
        service.failed += failed;
        let (p50, p99) = (sample.get(Metric::LatencyP50), sample.get(Metric::LatencyP99));
        if p50 > 0.0 {
            let sigma = ((p99 / p50).ln() / Z99).max(1e-6);
            let requests = answered + failed;
            for (count, bound) in service.buckets.iter_mut().zip(&totals.bounds) {
                *count += requests * normal_cdf(((bound * 1000.0).ln() - p50.ln()) / sigma);
            }
            // The mean of a log-normal: the median times e^(σ²/2).
            service.seconds += requests * p50 / 1000.0 * (sigma * sigma / 2.0).exp();
        }
        for (edge, total) in topology.spec(i).edges.iter().zip(&mut totals.edges[i]) {
            let calls = offered * edge.calls;
            total.calls += calls;
            total.failed += calls * self.services[edge.to].outcome.errors;
        }
    }

    /// The exposition a scrape gets, or `None` when this estate does not
    /// export. `now` is the scrape's Unix time in seconds (heartbeats are
    /// timestamps).
    pub fn exposition(&self, now: f64) -> Option<String> {
        let totals = self.totals.as_deref()?;
        let mut out = Exposition::default();
        self.requests(&mut out, totals);
        self.gauges(&mut out);
        self.pipeline(&mut out, now);
        self.service_graph(&mut out, totals);
        Some(out.text)
    }

    fn requests(&self, out: &mut Exposition, totals: &Totals) {
        let names = self.topology.services.iter().map(|s| s.name.as_str());
        out.family("http_requests_total", "counter", "Requests answered, by status code.");
        for (service, t) in names.clone().zip(&totals.services) {
            out.sample(
                "http_requests_total",
                &[("service", service), ("code", "200")],
                t.ok.floor(),
            );
            out.sample(
                "http_requests_total",
                &[("service", service), ("code", "500")],
                t.failed.floor(),
            );
        }
        let name = "http_request_duration_seconds";
        out.family(name, "histogram", "Time to answer a request.");
        for (service, t) in names.zip(&totals.services) {
            let count = (t.ok + t.failed).floor();
            for (bound, value) in totals.bounds.iter().zip(&t.buckets) {
                let le = bound.to_string();
                // Rounded down, each bucket stays at most the next and the count.
                out.sample(
                    &format!("{name}_bucket"),
                    &[("service", service), ("le", &le)],
                    value.floor().min(count),
                );
            }
            out.sample(
                &format!("{name}_bucket"),
                &[("service", service), ("le", "+Inf")],
                count,
            );
            out.sample(&format!("{name}_sum"), &[("service", service)], t.seconds);
            out.sample(&format!("{name}_count"), &[("service", service)], count);
        }
    }

    fn gauges(&self, out: &mut Exposition) {
        // Name, help, the metric, and the factor to the exposed unit.
        let gauges = [
            (
                "cpu_usage_ratio",
                "CPU in use, of what the instances have.",
                Metric::Cpu,
                1.0,
            ),
            (
                "memory_usage_ratio",
                "Memory in use, of the limit.",
                Metric::Memory,
                1.0,
            ),
            (
                "connection_pool_usage_ratio",
                "Connections in use, of the pool.",
                Metric::PoolUsage,
                1.0,
            ),
            ("disk_usage_ratio", "Disk in use, of its size.", Metric::DiskUsage, 1.0),
            ("queue_depth", "Messages waiting.", Metric::QueueDepth, 1.0),
            (
                "service_health_check_ratio",
                "Share of health checks answered this second.",
                Metric::Heartbeat,
                1.0,
            ),
            (
                "service_restarts",
                "Restarts in the recent window.",
                Metric::Restarts,
                1.0,
            ),
            (
                "ssl_certificate_expiry_seconds",
                "Seconds until the certificate expires.",
                Metric::CertDaysLeft,
                86_400.0,
            ),
        ];
        for (name, help, metric, scale) in gauges {
            out.family(name, "gauge", help);
            for (spec, state) in self.topology.services.iter().zip(&self.services) {
                let applies = match metric {
                    Metric::DiskUsage => spec.kind.is_stateful(),
                    Metric::CertDaysLeft => spec.kind.has_certificate(),
                    Metric::PoolUsage => spec.pool_size > 0,
                    _ => true,
                };
                if applies {
                    out.sample(
                        name,
                        &[("service", &spec.name)],
                        scale * state.telemetry.latest().get(metric),
                    );
                }
            }
        }
        out.family("slo_latency_p99_seconds", "gauge", "The p99 latency objective.");
        for spec in &self.topology.services {
            out.sample(
                "slo_latency_p99_seconds",
                &[("service", &spec.name)],
                spec.slo_p99_ms / 1000.0,
            );
        }
        out.family("slo_error_ratio", "gauge", "The error-rate objective.");
        for spec in &self.topology.services {
            out.sample("slo_error_ratio", &[("service", &spec.name)], spec.slo_error);
        }
        out.family("service_instances", "gauge", "Instances running.");
        for (spec, state) in self.topology.services.iter().zip(&self.services) {
            out.sample(
                "service_instances",
                &[("service", &spec.name)],
                f64::from(state.config.instances),
            );
        }
        out.family("cache_hit_ratio", "gauge", "Lookups answered from the cache.");
        self.each_latest(out, "cache_hit_ratio", ServiceKind::Cache, Metric::CacheHitRate);
    }

    fn pipeline(&self, out: &mut Exposition, now: f64) {
        out.family(
            "model_accuracy_ratio",
            "gauge",
            "Accuracy on this second's labelled outcomes.",
        );
        self.each_latest(out, "model_accuracy_ratio", ServiceKind::Model, Metric::ModelAccuracy);
        out.family(
            "model_feature_psi",
            "gauge",
            "Population stability index of an input feature.",
        );
        for (i, spec) in self.topology.services.iter().enumerate() {
            if spec.kind == ServiceKind::Model {
                for (feature, value) in psi::FEATURES.iter().zip(self.services[i].feature_psi) {
                    out.sample(
                        "model_feature_psi",
                        &[("service", &spec.name), ("feature", feature.name)],
                        value,
                    );
                }
            }
        }
        let name = "pipeline_heartbeat_timestamp_seconds";
        out.family(name, "gauge", "When the agent last sent a heartbeat.");
        for (spec, state) in self.topology.services.iter().zip(&self.services) {
            if spec.kind == ServiceKind::Agent {
                out.sample(name, &[("service", &spec.name)], (now - state.silent_seconds).floor());
            }
        }
    }

    fn service_graph(&self, out: &mut Exposition, totals: &Totals) {
        for (name, help, failed) in [
            (
                "traces_service_graph_request_total",
                "Calls from client to server.",
                false,
            ),
            (
                "traces_service_graph_request_failed_total",
                "Calls from client to server that failed.",
                true,
            ),
        ] {
            out.family(name, "counter", help);
            for (spec, edges) in self.topology.services.iter().zip(&totals.edges) {
                for (edge, total) in spec.edges.iter().zip(edges) {
                    let server = &self.topology.spec(edge.to).name;
                    let value = if failed { total.failed } else { total.calls };
                    out.sample(name, &[("client", &spec.name), ("server", server)], value.floor());
                }
            }
        }
    }

    /// A gauge of the latest `metric` of every service of `kind`.
    fn each_latest(&self, out: &mut Exposition, name: &str, kind: ServiceKind, metric: Metric) {
        for (spec, state) in self.topology.services.iter().zip(&self.services) {
            if spec.kind == kind {
                out.sample(name, &[("service", &spec.name)], state.telemetry.latest().get(metric));
            }
        }
    }
}

/// The text format, written family by family.
#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        debug_assert!(value.is_finite(), "{name} {labels:?} is {value}");
        self.text.push_str(name);
        self.text.push('{');
        for (i, (label, value)) in labels.iter().enumerate() {
            if i > 0 {
                self.text.push(',');
            }
            let _ = write!(self.text, "{label}=\"{}\"", escape(value));
        }
        let _ = writeln!(self.text, "}} {value}");
    }
}

/// A label value as the format writes it: backslash, quote and newline
/// escaped.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use std::{collections::HashMap, sync::Arc};

    use super::*;
    use crate::twin::{FaultKind, tests::fault};

    fn exporting(seed: u64) -> Estate {
        let mut estate = Estate::new(Arc::new(Topology::embedded().unwrap()), seed, 10.0 * 3600.0);
        estate.start_exporting();
        estate
    }

    /// `name{labels}` → value, every sample of a scrape.
    fn scrape(estate: &Estate, now: f64) -> HashMap<String, f64> {
        let text = estate.exposition(now).expect("it exports");
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| {
                let (series, value) = l.rsplit_once(' ').unwrap();
                (series.to_owned(), value.parse().unwrap())
            })
            .collect()
    }

    fn estate_bounds(estate: &Estate) -> Vec<f64> {
        estate.totals.as_ref().unwrap().bounds.clone()
    }

    #[test]
    fn the_buckets_hold_every_latency_objective() {
        let estate = exporting(3);
        let bounds = estate_bounds(&estate);
        assert!(
            bounds.windows(2).all(|w| w[0] < w[1]),
            "ascending, no repeats: {bounds:?}"
        );
        for spec in &estate.topology.services {
            assert!(
                bounds.contains(&(spec.slo_p99_ms / 1000.0)),
                "{}'s objective is a bound",
                spec.name
            );
        }
    }

    #[test]
    fn an_estate_exports_only_once_told_to() {
        let estate = Estate::new(Arc::new(Topology::embedded().unwrap()), 1, 0.0);
        assert!(estate.exposition(0.0).is_none());
    }

    #[test]
    fn counters_only_grow_and_the_histogram_adds_up_to_the_requests() {
        let mut estate = exporting(1);
        estate.advance(30);
        let before = scrape(&estate, 0.0);
        estate.advance(30);
        let after = scrape(&estate, 30.0);
        for (series, value) in &after {
            if series.contains("_total{") || series.contains("_bucket{") || series.contains("_count{") {
                assert!(
                    value >= &before[series],
                    "{series} went down: {} to {value}",
                    before[series]
                );
            }
        }
        let service = "service=\"order-service\"";
        let count = after[&format!("http_request_duration_seconds_count{{{service}}}")];
        let answered: f64 = ["200", "500"]
            .iter()
            .map(|code| after[&format!("http_requests_total{{{service},code=\"{code}\"}}")])
            .sum();
        assert!(
            (count - answered).abs() <= 1.0,
            "{count} requests timed, {answered} counted"
        );
        assert!(count > 1_000.0, "a minute of order-service traffic: {count}");
        let mut last = 0.0;
        let bounds = &estate_bounds(&estate);
        for bound in bounds.iter().map(f64::to_string).chain(["+Inf".to_owned()]) {
            let bucket = after[&format!("http_request_duration_seconds_bucket{{{service},le=\"{bound}\"}}")];
            assert!(bucket >= last, "buckets are cumulative at le={bound}");
            last = bucket;
        }
        assert_eq!(last, count);
    }

    #[test]
    fn a_crash_loop_shows_as_failed_requests_and_failed_calls_to_it() {
        let failed = |estate: &Estate| {
            let now = scrape(estate, 0.0);
            (
                now["http_requests_total{service=\"order-service\",code=\"500\"}"],
                now["traces_service_graph_request_failed_total{client=\"api-gateway\",server=\"order-service\"}"],
            )
        };
        let mut healthy = exporting(2);
        let mut broken = exporting(2);
        broken.inject(&fault(FaultKind::CrashLoop, "order-service")).unwrap();
        healthy.advance(60);
        broken.advance(60);
        let ((healthy_errors, healthy_calls), (errors, calls)) = (failed(&healthy), failed(&broken));
        assert!(
            errors > 10.0 * healthy_errors.max(1.0),
            "{errors} failed requests against {healthy_errors}"
        );
        assert!(
            calls > 10.0 * healthy_calls.max(1.0),
            "{calls} failed calls against {healthy_calls}"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
