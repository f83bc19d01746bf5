//! A standalone twin read over HTTP (`ANTIBODY_TWIN_URL`): the server's
//! estate when the twin runs in a process of its own. Each read fetches
//! every service's recent samples and baselines (`GET /api/telemetry`), so
//! the agents judge them exactly as they judge the embedded twin.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Duration,
};

use super::TelemetryDocument;
use crate::{
    prometheus::View,
    protocol::ServiceTelemetry,
    twin::{FaultSpec, Metric, Topology, telemetry::Telemetry},
};

/// Samples read per service: more than any agent's window.
const SAMPLES: usize = 60;

/// A standalone twin; cheap to clone.
#[derive(Clone)]
pub struct RemoteTwin {
    inner: Arc<Inner>,
}

struct Inner {
    url: String,
    http: reqwest::Client,
    topology: Arc<Topology>,
    /// The last read's failure, cleared by a read that succeeds.
    last_error: Mutex<Option<String>>,
}

impl std::fmt::Debug for RemoteTwin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteTwin")
            .field("url", &self.inner.url)
            .finish_non_exhaustive()
    }
}

/// Why the twin could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the twin at {url} {reason}")]
pub struct RemoteError {
    pub url: String,
    pub reason: String,
}

impl RemoteTwin {
    /// The twin at `url`, whose services are `topology`'s; each request
    /// may take `timeout`.
    pub fn new(url: &str, topology: Arc<Topology>, timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .expect("a client with a timeout builds");
        Self {
            inner: Arc::new(Inner {
                url: url.trim_end_matches('/').to_owned(),
                http,
                topology,
                last_error: Mutex::new(None),
            }),
        }
    }

    pub fn url(&self) -> &str {
        &self.inner.url
    }

    pub fn topology(&self) -> &Arc<Topology> {
        &self.inner.topology
    }

    /// Why the last read failed, while no read since has succeeded.
    pub fn last_error(&self) -> Option<String> {
        self.inner.last_error.lock().expect("twin error lock poisoned").clone()
    }

    fn error(&self, reason: impl Into<String>) -> RemoteError {
        RemoteError {
            url: self.inner.url.clone(),
            reason: reason.into(),
        }
    }

    /// Asks the twin whether it lives: the readiness probe.
    pub async fn probe(&self) -> Result<(), RemoteError> {
        let url = format!("{}/healthz", self.inner.url);
        let response =
            (self.inner.http.get(url).send().await).map_err(|e| self.error(format!("did not answer: {e}")))?;
        if !response.status().is_success() {
            return Err(self.error(format!("answered HTTP {}", response.status())));
        }
        Ok(())
    }

    /// Starts `faults` on the twin (a scenario's, triggered on this server).
    pub async fn inject(&self, faults: &[FaultSpec]) -> Result<(), RemoteError> {
        let url = format!("{}/api/faults", self.inner.url);
        let order = serde_json::json!({ "faults": faults });
        let response = (self.inner.http.post(url).json(&order).send().await)
            .map_err(|e| self.error(format!("did not answer: {e}")))?;
        if !response.status().is_success() {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            return Err(self.error(format!("refused the faults with HTTP {status}: {}", body.trim())));
        }
        Ok(())
    }

    /// Each service's health and latest figures, as the dashboard's tiles
    /// show them (`GET /api/estate`).
    pub async fn health(&self) -> Result<Vec<ServiceTelemetry>, RemoteError> {
        #[derive(serde::Deserialize)]
        struct Services {
            services: Vec<ServiceTelemetry>,
        }
        let url = format!("{}/api/estate", self.inner.url);
        let response =
            (self.inner.http.get(url).send().await).map_err(|e| self.error(format!("did not answer: {e}")))?;
        if !response.status().is_success() {
            return Err(self.error(format!("answered HTTP {}", response.status())));
        }
        let estate: Services = (response.json().await)
            .map_err(|e| self.error(format!("answered something that is not its estate: {e}")))?;
        Ok(estate.services)
    }

    /// Reads every service's recent telemetry.
    pub async fn read(&self) -> Result<View, RemoteError> {
        let result = self.fetch().await;
        *self.inner.last_error.lock().expect("twin error lock poisoned") =
            result.as_ref().err().map(ToString::to_string);
        result
    }

    async fn fetch(&self) -> Result<View, RemoteError> {
        let url = format!("{}/api/telemetry?samples={SAMPLES}", self.inner.url);
        let response =
            (self.inner.http.get(url).send().await).map_err(|e| self.error(format!("did not answer: {e}")))?;
        if !response.status().is_success() {
            return Err(self.error(format!("answered HTTP {}", response.status())));
        }
        let document: TelemetryDocument = (response.json().await)
            .map_err(|e| self.error(format!("answered something that is not its telemetry: {e}")))?;
        let topology = &self.inner.topology;
        let mut telemetry = vec![None; topology.len()];
        for window in document.services {
            let Some(index) = topology.index(&window.name) else {
                continue;
            };
            if window.baselines.len() != Metric::COUNT || window.cusums.len() != Metric::COUNT {
                return Err(self.error(format!(
                    "sent {} baselines and {} CUSUMs for `{}`, not {}",
                    window.baselines.len(),
                    window.cusums.len(),
                    window.name,
                    Metric::COUNT
                )));
            }
            telemetry[index] = Some(Telemetry {
                history: VecDeque::from(window.samples),
                baselines: std::array::from_fn(|m| window.baselines[m]),
                cusums: std::array::from_fn(|m| window.cusums[m]),
            });
        }
        let telemetry = (telemetry.into_iter().enumerate())
            .map(|(i, t)| t.ok_or_else(|| self.error(format!("has no service `{}`", topology.spec(i).name))))
            .collect::<Result<_, _>>()?;
        Ok(View::recorded(Arc::clone(topology), telemetry, chrono::Utc::now()))
    }
}
