//! The twin as a service of its own (`antibody twin serve`): the simulated
//! estate with no engine inside, reached over HTTP like a real one. It is
//! scraped by Prometheus, takes faults for tests and game days, and takes
//! actions through the same kind of order a runbook system gets, each
//! applied once per idempotency key.
//!
//! This module is the service's logic; the server's `twin_serve` is its
//! thin HTTP edge.

mod ledger;
mod remote;

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use serde::{Deserialize, Serialize};

use self::ledger::{Entry, Ledger};
pub use self::{
    ledger::{IdempotencyKey, KeyError},
    remote::{RemoteError, RemoteTwin},
};
use crate::{
    catalog::{self, Catalog, CatalogError},
    clock::{SimClock, Speed},
    orchestrator::SharedTwin,
    protocol::{ActionOrder, ActionOutcome, ActionReceipt, ServiceTelemetry},
    twin::{ConfigChange, Estate, FaultSpec, ServiceConfig, Topology, TopologyError},
};

/// Samples of history the service's estate keeps (one a simulated second).
const HISTORY: usize = 600;
/// Seconds after midnight at which the estate starts its day.
const START_OF_DAY: f64 = 10.0 * 3600.0;

/// A cheap-to-clone handle to the standalone twin.
#[derive(Clone)]
pub struct TwinService {
    inner: Arc<Inner>,
}

struct Inner {
    /// The estate, advanced lazily to the service's simulated time.
    twin: SharedTwin,
    /// The estate's services, to check orders against without the lock.
    topology: Arc<Topology>,
    /// The scenarios whose faults `POST /api/faults` may inject by id.
    catalog: Catalog,
    /// Every action taken, by id and by idempotency key.
    ledger: Mutex<Ledger>,
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("the twin's topology: {0}")]
    Topology(#[from] TopologyError),
    #[error("the scenario catalog: {0}")]
    Catalog(#[from] CatalogError),
}

/// Faults to inject: a catalog scenario's, or faults given in full.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FaultOrder {
    /// A catalog scenario, as in `database_cascade`: its faults.
    #[serde(default)]
    pub scenario: Option<String>,
    /// Faults in the scenario file's form.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub faults: Vec<FaultSpec>,
}

/// What `POST /api/faults` did.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Injected {
    /// The estate's simulated second when they started.
    pub tick: u64,
    /// The faults that started.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub injected: Vec<FaultSpec>,
    /// The same fault already running on its target: not doubled.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub already_active: Vec<FaultSpec>,
}

/// Why faults were refused; nothing was injected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FaultError {
    #[error("give either `scenario` or `faults`, not both and not neither")]
    Ambiguous,
    #[error("unknown scenario `{id}`{}", suggestion.as_ref().map(|s| format!("; did you mean `{s}`?")).unwrap_or_default())]
    UnknownScenario { id: String, suggestion: Option<String> },
    #[error("faults[{index}]: {reason}")]
    Invalid { index: usize, reason: String },
}

/// The estate as `GET /api/estate` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EstateDocument {
    /// Simulated seconds since the estate started.
    pub tick: u64,
    /// Each service's health and latest figures, with its dependencies.
    pub services: Vec<ServiceTelemetry>,
    /// Each service's configuration: everything an action can change.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub config: BTreeMap<String, ServiceConfig>,
    /// Every configuration change since start, oldest first.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub config_history: Vec<ConfigChange>,
}

/// Each service's recent telemetry as `GET /api/telemetry` serves it:
/// what a server on `ANTIBODY_TWIN_URL` reads, the same figures and
/// baselines the embedded twin's agents see.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TelemetryDocument {
    /// Simulated seconds since the estate started.
    pub tick: u64,
    /// One window per service, in topology order.
    pub services: Vec<ServiceWindow>,
}

/// One service's recent samples (oldest first, one a simulated second) and
/// the baselines they are judged against.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceWindow {
    pub name: String,
    pub samples: Vec<crate::twin::Sample>,
    /// One per metric, in `Metric` order.
    pub baselines: Vec<crate::twin::Ewma>,
    /// The evidence accumulated per metric, in `Metric` order.
    pub cusums: Vec<crate::twin::cusum::Cusum>,
}

/// Most samples `GET /api/telemetry` serves per service.
pub const MAX_SAMPLES: usize = HISTORY;

/// What an order came to.
#[derive(Debug, Clone, PartialEq)]
pub struct Acted {
    /// The receipt: this order's, or the first one's under the same key.
    pub receipt: ActionReceipt,
    /// The key had been seen: nothing was applied this time.
    pub replayed: bool,
}

/// Why an order was refused; nothing was applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OrderError {
    #[error("remediation.target: `{target}` is not a service of the estate{}", suggestion.as_ref().map(|s| format!("; did you mean `{s}`?")).unwrap_or_default())]
    UnknownService { target: String, suggestion: Option<String> },
    #[error("remediation.kind: {0}")]
    Refused(String),
    #[error("Idempotency-Key `{0}` was used for a different order")]
    KeyReused(String),
}

/// Why an undo was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UndoError {
    #[error("no action `{0}`")]
    Unknown(String),
    #[error("action `{id}` is {}: only a succeeded action can be undone", status.as_str())]
    NotUndoable { id: String, status: ActionOutcome },
}

impl TwinService {
    /// A healthy estate of the embedded topology, seeded with `seed`, whose
    /// time runs at `speed`.
    pub fn new(seed: u64, speed: Speed) -> Result<Self, StartError> {
        let topology = Arc::new(Topology::embedded()?);
        let catalog = Catalog::embedded(&topology)?;
        let mut estate = Estate::new(Arc::clone(&topology), seed, START_OF_DAY);
        estate.keep_history(HISTORY);
        estate.start_exporting();
        Ok(Self {
            inner: Arc::new(Inner {
                twin: SharedTwin::new(estate, SimClock::new(speed)),
                topology,
                catalog,
                ledger: Mutex::new(Ledger::default()),
            }),
        })
    }

    /// The estate's services and call graph.
    pub fn topology(&self) -> &Arc<Topology> {
        &self.inner.topology
    }

    /// The Prometheus scrape (text exposition format 0.0.4).
    pub fn exposition(&self) -> String {
        let now = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
        (self.inner.twin)
            .with(|estate| estate.exposition(now))
            .expect("the service's estate exports from the start")
    }

    /// Topology, configuration and config history.
    pub fn estate(&self) -> EstateDocument {
        self.inner.twin.with(|estate| EstateDocument {
            tick: estate.now(),
            services: estate.health_report(),
            config: (0..estate.topology().len())
                .map(|i| (estate.topology().spec(i).name.clone(), estate.service(i).config.clone()))
                .collect(),
            config_history: estate.config_history().to_vec(),
        })
    }

    /// Each service's last `samples` samples (at most [`MAX_SAMPLES`]) and
    /// its baselines.
    pub fn telemetry(&self, samples: usize) -> TelemetryDocument {
        let samples = samples.min(MAX_SAMPLES);
        self.inner.twin.with(|estate| TelemetryDocument {
            tick: estate.now(),
            services: (0..estate.topology().len())
                .map(|i| {
                    let telemetry = &estate.service(i).telemetry;
                    let skip = telemetry.history.len().saturating_sub(samples);
                    ServiceWindow {
                        name: estate.topology().spec(i).name.clone(),
                        samples: telemetry.history.iter().skip(skip).copied().collect(),
                        baselines: telemetry.baselines.to_vec(),
                        cusums: telemetry.cusums.to_vec(),
                    }
                })
                .collect(),
        })
    }

    /// Starts `order`'s faults, all or none: every one is checked first.
    pub fn inject(&self, order: FaultOrder) -> Result<Injected, FaultError> {
        let faults = match (order.scenario, order.faults.is_empty()) {
            (Some(id), true) => self.scenario_faults(&id)?,
            (None, false) => order.faults,
            _ => return Err(FaultError::Ambiguous),
        };
        let topology = &self.inner.topology;
        for (index, fault) in faults.iter().enumerate() {
            let target = topology.index(&fault.target).map(|i| topology.spec(i));
            fault
                .validate(target)
                .map_err(|reason| FaultError::Invalid { index, reason })?;
        }
        Ok(self.inner.twin.with(|estate| {
            let (mut injected, mut already_active) = (Vec::new(), Vec::new());
            for fault in faults {
                if estate.has_active_fault(fault.kind, &fault.target) {
                    already_active.push(fault);
                } else {
                    estate.inject(&fault).expect("checked above");
                    injected.push(fault);
                }
            }
            Injected {
                tick: estate.now(),
                injected,
                already_active,
            }
        }))
    }

    fn scenario_faults(&self, id: &str) -> Result<Vec<FaultSpec>, FaultError> {
        let catalog = &self.inner.catalog;
        match catalog.scenario(id) {
            Some(scenario) => Ok(scenario.fault.clone()),
            None => Err(FaultError::UnknownScenario {
                id: id.to_owned(),
                suggestion: catalog.closest_scenario(id).map(str::to_owned),
            }),
        }
    }

    /// Carries out `order` once per `key`: a key seen before answers with
    /// its first receipt and applies nothing.
    pub fn act(&self, key: IdempotencyKey, order: ActionOrder) -> Result<Acted, OrderError> {
        let remediation = &order.remediation;
        let topology = &self.inner.topology;
        let Some(index) = topology.index(&remediation.target) else {
            return Err(OrderError::UnknownService {
                target: remediation.target.clone(),
                suggestion: catalog::closest(&remediation.target, topology.names()).map(str::to_owned),
            });
        };
        if let Some(reason) = remediation.kind.refusal(topology.spec(index)) {
            return Err(OrderError::Refused(reason));
        }
        // The ledger's lock is held across the apply, so two deliveries of
        // one key cannot both find it new.
        let mut ledger = self.inner.ledger.lock().expect("ledger lock poisoned");
        if let Some(entry) = ledger.by_key(&key) {
            if entry.order.remediation != order.remediation || entry.order.incident_id != order.incident_id {
                return Err(OrderError::KeyReused(key.into_inner()));
            }
            return Ok(Acted {
                receipt: entry.receipt.clone(),
                replayed: true,
            });
        }
        let applied = self.inner.twin.with(|estate| estate.apply(remediation));
        let entry = Entry::new(ledger.next_id(), key, order, applied);
        let receipt = entry.receipt.clone();
        ledger.insert(entry);
        Ok(Acted {
            receipt,
            replayed: false,
        })
    }

    /// The receipt of action `id` (or of the order sent under the
    /// idempotency key `id`: a sender that lost the receipt asks by key),
    /// as it stands now.
    pub fn receipt(&self, id: &str) -> Option<ActionReceipt> {
        let ledger = self.inner.ledger.lock().expect("ledger lock poisoned");
        let by_key = || IdempotencyKey::parse(Some(id)).ok().and_then(|key| ledger.by_key(&key));
        ledger.get(id).or_else(by_key).map(|entry| entry.receipt.clone())
    }

    /// Takes back action `id`, once: undoing it again answers with the same
    /// receipt and changes nothing.
    pub fn undo(&self, id: &str) -> Result<ActionReceipt, UndoError> {
        let mut ledger = self.inner.ledger.lock().expect("ledger lock poisoned");
        let entry = ledger.get_mut(id).ok_or_else(|| UndoError::Unknown(id.to_owned()))?;
        match entry.receipt.status {
            ActionOutcome::Undone => Ok(entry.receipt.clone()),
            ActionOutcome::Succeeded => {
                let applied = entry.applied.as_ref().expect("a succeeded action kept what it changed");
                let undone = self.inner.twin.with(|estate| estate.undo(applied));
                entry.undone(undone);
                Ok(entry.receipt.clone())
            }
            status => Err(UndoError::NotUndoable {
                id: id.to_owned(),
                status,
            }),
        }
    }
}

#[cfg(test)]
mod tests;
