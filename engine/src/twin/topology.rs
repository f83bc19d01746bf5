//! The estate's static shape: its services, what each calls, and each one's
//! healthy operating point, read from `data/twin/estate.toml`.
//!
//! The topology is checked once at start (unknown dependencies, cycles,
//! nonsense figures) and shared read-only by every copy of the estate.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// What a service is; decides which metrics it has, which faults can hit
/// it and which actions apply to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceKind {
    Gateway,
    Service,
    Database,
    Cache,
    Queue,
    External,
    Model,
    Agent,
}

impl ServiceKind {
    /// The wire name (serde's).
    pub fn as_str(self) -> &'static str {
        crate::protocol::wire_name(&self)
    }

    /// Keeps data on disk (so it can fill one).
    pub fn is_stateful(self) -> bool {
        matches!(self, Self::Database | Self::Queue)
    }

    /// Serves TLS with a certificate we manage.
    pub fn has_certificate(self) -> bool {
        matches!(self, Self::Gateway | Self::Service | Self::Model)
    }
}

/// One service as written in the data file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceFile {
    name: String,
    kind: ServiceKind,
    #[serde(default)]
    depends_on: Vec<String>,
    #[serde(default)]
    calls: Vec<f64>,
    #[serde(default)]
    rps: Option<f64>,
    latency_ms: f64,
    cpu: f64,
    memory: f64,
    instances: u32,
    #[serde(default)]
    pool_size: u32,
    slo_p99_ms: f64,
    slo_error: f64,
    #[serde(default)]
    fallback: Option<String>,
    #[serde(default)]
    replica: Option<String>,
    #[serde(default = "yes")]
    owned: bool,
    #[serde(default)]
    models: Vec<ModelProfile>,
}

/// A model version in the registry, with its accuracy profile.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModelProfile {
    /// 1, 2, …
    pub version: u32,
    /// Share of labelled outcomes it predicts right on the data it was
    /// trained for.
    pub accuracy: f64,
}

fn yes() -> bool {
    true
}

impl ServiceFile {
    /// The error for this service, naming it.
    fn bad(&self, reason: &str) -> TopologyError {
        TopologyError(format!("service `{}`: {reason}", self.name))
    }

    /// Checks the figures that need no other service: calls, latencies,
    /// objectives, utilisation, instances and the model registry.
    fn check(&self) -> Result<(), TopologyError> {
        if !self.calls.is_empty() && self.calls.len() != self.depends_on.len() {
            return Err(self.bad("`calls` needs one figure per entry of `depends_on`"));
        }
        if !(self.latency_ms > 0.0 && self.slo_p99_ms > 0.0 && (0.0..1.0).contains(&self.slo_error)) {
            return Err(self.bad("latency_ms and slo_p99_ms must be positive, slo_error in [0, 1)"));
        }
        if !((0.0..0.95).contains(&self.cpu) && (0.0..0.95).contains(&self.memory)) || self.instances == 0 {
            return Err(self.bad("cpu and memory must be in [0, 0.95), instances at least 1"));
        }
        if (self.kind == ServiceKind::Model) == self.models.is_empty() {
            return Err(self.bad("a model service needs `models` (its registry), and only a model has one"));
        }
        for (i, model) in self.models.iter().enumerate() {
            if model.version as usize != i + 1 || !(model.accuracy > 0.5 && model.accuracy <= 1.0) {
                return Err(self.bad("`models` must number versions 1, 2, … in order, accuracy in (0.5, 1]"));
            }
        }
        Ok(())
    }

    /// The service's spec, with its dependencies, fallback and replica
    /// resolved to indices through `by_name` (`base_rps` is derived later).
    fn resolve(&self, by_name: &HashMap<String, usize>) -> Result<ServiceSpec, TopologyError> {
        let find = |field: &str, name: &str| {
            by_name.get(name).copied().ok_or_else(|| {
                TopologyError(format!(
                    "service `{}`: {field} names unknown service `{name}`",
                    self.name
                ))
            })
        };
        let mut edges = Vec::new();
        for (i, dep) in self.depends_on.iter().enumerate() {
            let calls = self.calls.get(i).copied().unwrap_or(1.0);
            if !(calls > 0.0 && calls <= 10.0) {
                return Err(self.bad("calls must be in (0, 10]"));
            }
            edges.push(Edge {
                to: find("depends_on", dep)?,
                calls,
            });
        }
        Ok(ServiceSpec {
            name: self.name.clone(),
            kind: self.kind,
            edges,
            entry_rps: self.rps,
            base_rps: 0.0,
            latency_ms: self.latency_ms,
            cpu: self.cpu,
            memory: self.memory,
            instances: self.instances,
            pool_size: self.pool_size,
            slo_p99_ms: self.slo_p99_ms,
            slo_error: self.slo_error,
            fallback: self.fallback.as_deref().map(|f| find("fallback", f)).transpose()?,
            replica: self.replica.as_deref().map(|r| find("replica", r)).transpose()?,
            owned: self.owned,
            models: self.models.clone(),
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EstateFile {
    service: Vec<ServiceFile>,
}

/// A call edge: this service calls `to` `calls` times per request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Edge {
    /// Index of the called service.
    pub to: usize,
    /// Calls per request.
    pub calls: f64,
}

/// A service's static definition, with names resolved to indices.
#[derive(Debug, Clone)]
pub struct ServiceSpec {
    /// Unique name, as in `postgres-primary`.
    pub name: String,
    /// What it is.
    pub kind: ServiceKind,
    /// What it calls on each request.
    pub edges: Vec<Edge>,
    /// Requests/s at the daily average, for entry points.
    pub entry_rps: Option<f64>,
    /// Requests/s at the daily average, derived from the callers.
    pub base_rps: f64,
    /// Own p50 processing time in ms.
    pub latency_ms: f64,
    /// CPU utilisation at `base_rps` with `instances` instances.
    pub cpu: f64,
    /// Memory utilisation when healthy.
    pub memory: f64,
    /// Instances when healthy.
    pub instances: u32,
    /// Connection pool size (0 = none).
    pub pool_size: u32,
    /// The p99 latency objective, ms.
    pub slo_p99_ms: f64,
    /// The error-rate objective.
    pub slo_error: f64,
    /// A cache's miss path, or where an open breaker sends calls.
    pub fallback: Option<usize>,
    /// A database's standby.
    pub replica: Option<usize>,
    /// False for third parties we cannot change.
    pub owned: bool,
    /// A model service's registry, oldest version first (empty otherwise);
    /// the newest is deployed at start.
    pub models: Vec<ModelProfile>,
}

/// The whole service graph.
#[derive(Debug, Clone)]
pub struct Topology {
    /// Every service, in file order.
    pub services: Vec<ServiceSpec>,
    /// Indices with every service after all that it can send work to
    /// (dependencies, fallbacks, replicas): compute outcomes in this order.
    pub bottom_up: Vec<usize>,
    by_name: HashMap<String, usize>,
    /// `reach[a][b]`: work from `a` can reach `b` (precomputed: the agents
    /// ask this constantly).
    reach: Vec<Vec<bool>>,
}

/// The estate file does not make sense.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("data/twin/estate.toml: {0}")]
pub struct TopologyError(pub String);

impl Topology {
    /// The estate built into the binary.
    pub fn embedded() -> Result<Self, TopologyError> {
        Self::parse(include_str!("../../data/twin/estate.toml"))
    }

    /// Reads an estate file and checks it: names, figures, dependencies, no
    /// cycles, traffic for every service.
    pub fn parse(text: &str) -> Result<Self, TopologyError> {
        let file: EstateFile = toml::from_str(text).map_err(|e| TopologyError(e.to_string()))?;
        let by_name: HashMap<String, usize> = file
            .service
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.clone(), i))
            .collect();
        if by_name.len() != file.service.len() {
            return Err(TopologyError("two services share a name".into()));
        }
        let mut services = Vec::with_capacity(file.service.len());
        for s in &file.service {
            s.check()?;
            services.push(s.resolve(&by_name)?);
        }
        let bottom_up = bottom_up_order(&services)?;
        let mut topology = Self {
            services,
            bottom_up,
            by_name,
            reach: Vec::new(),
        };
        topology.derive_base_rps();
        topology.reach = topology.reach_matrix();
        if let Some(idle) = topology.services.iter().find(|s| s.base_rps <= 0.0) {
            return Err(TopologyError(format!(
                "service `{}` gets no traffic: give it `rps` or a caller",
                idle.name
            )));
        }
        Ok(topology)
    }

    /// `reach[a][b]` for every pair: whether work from `a` can reach `b`
    /// (through calls and cache fallbacks, as [`Topology::path`] goes).
    fn reach_matrix(&self) -> Vec<Vec<bool>> {
        (0..self.len())
            .map(|from| (0..self.len()).map(|to| self.path(from, to).is_some()).collect())
            .collect()
    }

    /// Pushes the entry points' traffic down the call edges.
    fn derive_base_rps(&mut self) {
        let mut rps: Vec<f64> = self.services.iter().map(|s| s.entry_rps.unwrap_or(0.0)).collect();
        for &i in self.bottom_up.iter().rev() {
            for edge in &self.services[i].edges {
                rps[edge.to] += rps[i] * edge.calls;
            }
        }
        for (service, rps) in self.services.iter_mut().zip(rps) {
            service.base_rps = rps;
        }
    }

    pub fn len(&self) -> usize {
        self.services.len()
    }

    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    /// Every (fault kind, service) pair this estate admits, by
    /// [`FaultKind::can_hit`](super::FaultKind::can_hit).
    pub fn fault_placements(&self) -> Vec<(super::FaultKind, String)> {
        super::FaultKind::ALL
            .iter()
            .flat_map(|&kind| {
                (self.services.iter())
                    .filter(move |spec| kind.can_hit(spec))
                    .map(move |spec| (kind, spec.name.clone()))
            })
            .collect()
    }

    pub fn index(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    pub fn spec(&self, index: usize) -> &ServiceSpec {
        &self.services[index]
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.services.iter().map(|s| s.name.as_str())
    }

    /// Services that call `index` directly.
    pub fn callers(&self, index: usize) -> impl Iterator<Item = usize> + '_ {
        self.services
            .iter()
            .enumerate()
            .filter(move |(_, s)| s.edges.iter().any(|e| e.to == index))
            .map(|(i, _)| i)
    }

    /// True when `from` reaches `to` through call edges (or is it).
    pub fn reaches(&self, from: usize, to: usize) -> bool {
        self.reach[from][to]
    }

    /// The shortest call path from `from` to `to`, both included.
    pub fn path(&self, from: usize, to: usize) -> Option<Vec<usize>> {
        let mut previous = vec![usize::MAX; self.len()];
        let mut queue = std::collections::VecDeque::from([from]);
        previous[from] = from;
        while let Some(at) = queue.pop_front() {
            if at == to {
                let mut path = vec![to];
                let mut cursor = to;
                while cursor != from {
                    cursor = previous[cursor];
                    path.push(cursor);
                }
                path.reverse();
                return Some(path);
            }
            for next in self.downstream(at) {
                if previous[next] == usize::MAX {
                    previous[next] = at;
                    queue.push_back(next);
                }
            }
        }
        None
    }

    /// Where work from `index` can go: its dependencies, and a cache's
    /// fallback (a failed cache sends its callers' reads there).
    fn downstream(&self, index: usize) -> impl Iterator<Item = usize> + '_ {
        let spec = &self.services[index];
        let cache_fallback = spec
            .edges
            .iter()
            .filter_map(|e| {
                let dep = &self.services[e.to];
                (dep.kind == ServiceKind::Cache).then_some(dep.fallback).flatten()
            })
            .collect::<Vec<_>>();
        spec.edges.iter().map(|e| e.to).chain(cache_fallback)
    }
}

/// Kahn's algorithm over every way work can flow; a cycle is an error.
fn bottom_up_order(services: &[ServiceSpec]) -> Result<Vec<usize>, TopologyError> {
    let n = services.len();
    // below[i]: services i may send work to.
    let below: Vec<Vec<usize>> = services
        .iter()
        .map(|s| {
            let mut v: Vec<usize> = s.edges.iter().map(|e| e.to).collect();
            v.extend(s.fallback);
            v.extend(s.replica);
            v
        })
        .collect();
    let mut pending: Vec<usize> = below.iter().map(Vec::len).collect();
    let mut order: Vec<usize> = (0..n).filter(|&i| pending[i] == 0).collect();
    let mut cursor = 0;
    while cursor < order.len() {
        let done = order[cursor];
        cursor += 1;
        for (i, deps) in below.iter().enumerate() {
            for &d in deps {
                if d == done {
                    pending[i] -= 1;
                    if pending[i] == 0 {
                        order.push(i);
                    }
                }
            }
        }
    }
    if order.len() != n {
        let stuck: Vec<&str> = (0..n)
            .filter(|i| !order.contains(i))
            .map(|i| services[i].name.as_str())
            .collect();
        return Err(TopologyError(format!(
            "the services {stuck:?} depend on each other in a cycle"
        )));
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_estate_has_the_required_services_in_a_dag() {
        let topology = Topology::embedded().unwrap();
        for name in [
            "api-gateway",
            "user-service",
            "order-service",
            "payment-service",
            "inventory-service",
            "postgres-primary",
            "postgres-replica",
            "redis-cache",
            "message-queue",
            "payment-gateway",
            "ml-model-service",
        ] {
            assert!(topology.index(name).is_some(), "{name}");
        }
        let position = |name| {
            let i = topology.index(name).unwrap();
            topology.bottom_up.iter().position(|&x| x == i).unwrap()
        };
        assert!(position("postgres-primary") < position("order-service"));
        assert!(position("order-service") < position("api-gateway"));
        // Traffic reaches the database from several callers.
        let db = topology.spec(topology.index("postgres-primary").unwrap());
        assert!(db.base_rps > 500.0, "{}", db.base_rps);
    }

    #[test]
    fn paths_follow_calls_and_cache_fallbacks() {
        let t = Topology::embedded().unwrap();
        let i = |n| t.index(n).unwrap();
        let path = t.path(i("api-gateway"), i("postgres-primary")).unwrap();
        assert_eq!(path.first(), Some(&i("api-gateway")));
        assert_eq!(path.last(), Some(&i("postgres-primary")));
        assert!(
            t.reaches(i("inventory-service"), i("postgres-primary")),
            "through the cache's fallback"
        );
        assert!(!t.reaches(i("postgres-primary"), i("api-gateway")));
    }

    #[test]
    fn cycles_and_unknown_names_are_refused_by_name() {
        let cyclic = r#"
            [[service]]
            name = "a"
            kind = "service"
            depends_on = ["b"]
            rps = 1.0
            latency_ms = 1.0
            cpu = 0.1
            memory = 0.1
            instances = 1
            slo_p99_ms = 10.0
            slo_error = 0.01
            [[service]]
            name = "b"
            kind = "service"
            depends_on = ["a"]
            latency_ms = 1.0
            cpu = 0.1
            memory = 0.1
            instances = 1
            slo_p99_ms = 10.0
            slo_error = 0.01
        "#;
        let err = Topology::parse(cyclic).unwrap_err();
        assert!(err.to_string().contains("cycle"), "{err}");
        let unknown = cyclic.replacen("depends_on = [\"b\"]", "depends_on = [\"zz\"]", 1);
        let err = Topology::parse(&unknown).unwrap_err();
        assert!(err.to_string().contains("`zz`"), "{err}");
    }
}
