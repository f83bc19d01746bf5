//! How the estate is doing against its objectives: per-service health, the
//! dashboard's report, and the violations that say an incident is not over.
//!
//! Read-only views over telemetry and configuration, shared by the agents,
//! the dashboard and the orchestrator's verification, so that all three
//! judge recovery alike.

use super::{
    Estate, HealthState, Metric, ServiceKind, registry,
    telemetry::{self, Telemetry},
    topology::ServiceSpec,
};

impl Estate {
    /// Whether `index` takes traffic (a failed-over database does not).
    pub fn in_rotation(&self, index: usize) -> bool {
        !self.services[index].config.failed_over
    }

    /// How `index` is doing against its objectives, from the mean of its
    /// last `window` samples.
    pub fn health(&self, index: usize, window: usize) -> HealthState {
        health_of(self.topology.spec(index), &self.services[index].telemetry, window)
    }

    /// Every service's health and key figures now, for the dashboard.
    pub fn health_report(&self) -> Vec<crate::protocol::ServiceTelemetry> {
        self.topology
            .services
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let latest = self.services[i].telemetry.latest();
                crate::protocol::ServiceTelemetry {
                    name: spec.name.clone(),
                    kind: spec.kind.as_str().to_owned(),
                    state: self.health(i, 3),
                    in_rotation: self.in_rotation(i),
                    owned: spec.owned,
                    p99_ms: (latest.get(Metric::LatencyP99) * 10.0).round() / 10.0,
                    error_rate: (latest.get(Metric::ErrorRate) * 10_000.0).round() / 10_000.0,
                    rps: latest.get(Metric::Rps).round(),
                    cpu: (latest.get(Metric::Cpu) * 100.0).round() / 100.0,
                    depends_on: spec
                        .edges
                        .iter()
                        .map(|e| self.topology.spec(e.to).name.clone())
                        .collect(),
                    breakers: spec
                        .edges
                        .iter()
                        .enumerate()
                        .filter(|(e, _)| self.services[i].config.breakers[*e])
                        .map(|(e, edge)| crate::protocol::CircuitBreaker {
                            to: self.topology.spec(edge.to).name.clone(),
                            open: self.services[i].breaker_open[e],
                        })
                        .collect(),
                }
            })
            .collect()
    }

    /// True when every service we own and route to meets its objectives
    /// over the last `window` seconds, and no slow resource is still
    /// heading for trouble (memory or disk climbing, a certificate within a
    /// day of expiry, model accuracy or input drift out of bounds).
    pub fn slos_met(&self, window: usize) -> bool {
        self.violations(window).is_empty()
    }

    /// Every objective not met over the last `window` seconds, as
    /// `service: reason`.
    pub fn violations(&self, window: usize) -> Vec<String> {
        self.missed(window).iter().map(Missed::to_string).collect()
    }

    /// Every objective not met over the last `window` seconds.
    pub fn missed(&self, window: usize) -> Vec<Missed> {
        crate::observe::Observed::missed(self, window)
    }

    /// Every service's health now, by index, over the last `window`
    /// seconds: what [`Estate::worse_than`] compares with later.
    pub fn healths(&self, window: usize) -> Vec<HealthState> {
        (0..self.services.len()).map(|i| self.health(i, window)).collect()
    }

    /// The services we own and route to whose health is worse now than in
    /// `before` (from [`Estate::healths`] on this estate), by name. A
    /// service taken out of rotation (a failed-over database) is not
    /// counted: its traffic went elsewhere.
    pub fn worse_than(&self, before: &[HealthState], window: usize) -> Vec<String> {
        assert_eq!(before.len(), self.services.len(), "healths of this estate");
        (self.topology.services.iter().enumerate())
            .filter(|&(i, spec)| spec.owned && self.in_rotation(i) && self.health(i, window) > before[i])
            .map(|(_, spec)| spec.name.clone())
            .collect()
    }
}

/// How a service is doing against its objectives, from the mean of its
/// last `window` samples: the one judgement the twin and any recorded
/// estate share.
pub fn health_of(spec: &ServiceSpec, telemetry: &Telemetry, window: usize) -> HealthState {
    let mean = |m| telemetry.recent_mean(m, window);
    let errors = mean(Metric::ErrorRate);
    let heartbeat = if spec.kind == ServiceKind::External {
        1.0
    } else {
        mean(Metric::Heartbeat)
    };
    if errors > 0.5 || heartbeat < 0.5 {
        HealthState::Down
    } else if errors > spec.slo_error || mean(Metric::LatencyP99) > spec.slo_p99_ms || heartbeat < 0.95 {
        HealthState::Degraded
    } else {
        HealthState::Healthy
    }
}

/// An objective a service misses over a window, or a slow resource of it
/// heading for trouble.
#[derive(Debug, Clone, PartialEq)]
pub struct Missed {
    /// The service.
    pub service: String,
    /// What it misses.
    pub what: Shortfall,
    /// The metrics that show it.
    pub metrics: Vec<Metric>,
}

/// What a service misses: its health, or one of its slow resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shortfall {
    /// Degraded or down (never healthy).
    Health(HealthState),
    /// Memory still climbing.
    MemoryClimbing,
    /// Disk full within the hour.
    DiskFilling,
    /// A certificate within a day of expiry.
    CertificateExpiring,
    /// A cache's hit rate below half.
    CacheCold,
    /// A model's accuracy below [`registry::GOOD_ACCURACY`].
    AccuracyLow,
    /// A model's inputs drifted (PSI above 0.2).
    InputDrift,
}

impl Shortfall {
    /// In words, as verification lists what is outstanding.
    pub fn as_str(self) -> &'static str {
        match self {
            Shortfall::Health(state) => state.as_str(),
            Shortfall::MemoryClimbing => "memory still climbing",
            Shortfall::DiskFilling => "disk full within the hour",
            Shortfall::CertificateExpiring => "certificate expires within a day",
            Shortfall::CacheCold => "hit rate below 50%",
            Shortfall::AccuracyLow => "accuracy below 0.8",
            Shortfall::InputDrift => "input drift (PSI above 0.2)",
        }
    }
}

impl Missed {
    /// Whether this is the service's health rather than a slow resource.
    pub fn is_health(&self) -> bool {
        matches!(self.what, Shortfall::Health(_))
    }
}

impl std::fmt::Display for Missed {
    /// `service: what`, as verification lists what is outstanding.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.service, self.what.as_str())
    }
}

/// What one service misses over the last `window` samples: its health,
/// with the metrics that break it, and its slow resources. Whose misses
/// count is the estate's to say ([`crate::observe::Observed::missed_by`]).
pub fn missed_by(spec: &ServiceSpec, telemetry: &Telemetry, window: usize) -> Vec<Missed> {
    let mut found = Vec::new();
    let health = health_of(spec, telemetry, window);
    if health != HealthState::Healthy {
        let mean = |m| telemetry.recent_mean(m, window);
        let mut metrics = Vec::new();
        if mean(Metric::ErrorRate) > spec.slo_error {
            metrics.push(Metric::ErrorRate);
        }
        if mean(Metric::LatencyP99) > spec.slo_p99_ms {
            metrics.push(Metric::LatencyP99);
        }
        if spec.kind != ServiceKind::External && mean(Metric::Heartbeat) < 0.95 {
            metrics.push(Metric::Heartbeat);
        }
        found.push(missed(spec, Shortfall::Health(health), metrics));
    }
    trends(spec, telemetry, window, &mut found);
    found
}

fn missed(spec: &ServiceSpec, what: Shortfall, metrics: Vec<Metric>) -> Missed {
    Missed {
        service: spec.name.clone(),
        what,
        metrics,
    }
}

/// A service's slow resources heading for trouble: memory still climbing,
/// disk full within the hour, a certificate within a day of expiry, a cold
/// cache, a model's accuracy or inputs out of bounds.
fn trends(spec: &ServiceSpec, telemetry: &Telemetry, window: usize, found: &mut Vec<Missed>) {
    if Metric::Memory.applies_to(spec) && telemetry::slope(&telemetry.recent(Metric::Memory, window.max(15))) > 0.0008 {
        found.push(missed(spec, Shortfall::MemoryClimbing, vec![Metric::Memory]));
    }
    if Metric::DiskUsage.applies_to(spec) {
        let disk = telemetry.recent(Metric::DiskUsage, window.max(15));
        let rate = telemetry::slope(&disk);
        let free = 1.0 - disk.last().copied().unwrap_or_default();
        if free < 0.1 || (rate > 0.0002 && free / rate < 3600.0) {
            found.push(missed(spec, Shortfall::DiskFilling, vec![Metric::DiskUsage]));
        }
    }
    if Metric::CertDaysLeft.applies_to(spec) && telemetry.latest().get(Metric::CertDaysLeft) < 1.0 {
        found.push(missed(spec, Shortfall::CertificateExpiring, vec![Metric::CertDaysLeft]));
    }
    if spec.kind == ServiceKind::Cache && telemetry.latest().get(Metric::CacheHitRate) < 0.5 {
        found.push(missed(spec, Shortfall::CacheCold, vec![Metric::CacheHitRate]));
    }
    if spec.kind == ServiceKind::Model {
        // Over the window: one second's feedback (200 outcomes) is
        // a noisy measure of accuracy.
        if telemetry.recent_mean(Metric::ModelAccuracy, window) < registry::GOOD_ACCURACY {
            found.push(missed(spec, Shortfall::AccuracyLow, vec![Metric::ModelAccuracy]));
        }
        if telemetry.recent_mean(Metric::FeaturePsi, window) > 0.2 {
            found.push(missed(spec, Shortfall::InputDrift, vec![Metric::FeaturePsi]));
        }
    }
}

impl crate::observe::Observed for Estate {
    fn topology(&self) -> &super::Topology {
        &self.topology
    }

    fn telemetry(&self, index: usize) -> &telemetry::Telemetry {
        &self.services[index].telemetry
    }

    fn health(&self, index: usize, window: usize) -> HealthState {
        Estate::health(self, index, window)
    }

    fn in_rotation(&self, index: usize) -> bool {
        Estate::in_rotation(self, index)
    }
}
