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
        let find = |owner: &str, field: &str, name: &str| {
            by_name
                .get(name)
                .copied()
                .ok_or_else(|| TopologyError(format!("service `{owner}`: {field} names unknown service `{name}`")))
        };
        let mut services = Vec::with_capacity(file.service.len());
        for s in &file.service {
            let bad = |reason: &str| TopologyError(format!("service `{}`: {reason}", s.name));
            if !s.calls.is_empty() && s.calls.len() != s.depends_on.len() {
                return Err(bad("`calls` needs one figure per entry of `depends_on`"));
            }
            if !(s.latency_ms > 0.0 && s.slo_p99_ms > 0.0 && (0.0..1.0).contains(&s.slo_error)) {
                return Err(bad("latency_ms and slo_p99_ms must be positive, slo_error in [0, 1)"));
            }
            if !((0.0..0.95).contains(&s.cpu) && (0.0..0.95).contains(&s.memory)) || s.instances == 0 {
                return Err(bad("cpu and memory must be in [0, 0.95), instances at least 1"));
            }
            if (s.kind == ServiceKind::Model) == s.models.is_empty() {
                return Err(bad(
                    "a model service needs `models` (its registry), and only a model has one",
                ));
            }
            for (i, model) in s.models.iter().enumerate() {
                if model.version as usize != i + 1 || !(model.accuracy > 0.5 && model.accuracy <= 1.0) {
                    return Err(bad(
                        "`models` must number versions 1, 2, … in order, accuracy in (0.5, 1]",
                    ));
                }
            }
            let mut edges = Vec::new();
            for (i, dep) in s.depends_on.iter().enumerate() {
                let calls = s.calls.get(i).copied().unwrap_or(1.0);
                if !(calls > 0.0 && calls <= 10.0) {
                    return Err(bad("calls must be in (0, 10]"));
                }
                edges.push(Edge {
                    to: find(&s.name, "depends_on", dep)?,
                    calls,
                });
            }
            services.push(ServiceSpec {
                name: s.name.clone(),
                kind: s.kind,
                edges,
                entry_rps: s.rps,
                base_rps: 0.0,
                latency_ms: s.latency_ms,
                cpu: s.cpu,
                memory: s.memory,
                instances: s.instances,
                pool_size: s.pool_size,
                slo_p99_ms: s.slo_p99_ms,
                slo_error: s.slo_error,
                fallback: s
                    .fallback
                    .as_deref()
                    .map(|f| find(&s.name, "fallback", f))
                    .transpose()?,
                replica: s.replica.as_deref().map(|r| find(&s.name, "replica", r)).transpose()?,
                owned: s.owned,
                models: s.models.clone(),
            });
        }
        let bottom_up = bottom_up_order(&services)?;
        let mut topology = Self {
            services,
            bottom_up,
            by_name,
            reach: Vec::new(),
        };
        topology.derive_base_rps();
        topology.reach = (0..topology.len())
            .map(|from| {
                (0..topology.len())
                    .map(|to| topology.path(from, to).is_some())
                    .collect()
            })
            .collect();
        if let Some(idle) = topology.services.iter().find(|s| s.base_rps <= 0.0) {
            return Err(TopologyError(format!(
                "service `{}` gets no traffic: give it `rps` or a caller",
                idle.name
            )));
        }
        Ok(topology)
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
