//! A watched estate: one this server does not run, read afresh before each
//! look. Either a real estate through Prometheus (PromQL), or a standalone
//! twin through its telemetry API (`ANTIBODY_TWIN_URL`). Both hand the
//! agents a [`View`] through the same `Observed` boundary; an actuator, if
//! set, carries out their steps.

use std::sync::Arc;

use crate::{
    prometheus::{PrometheusEstate, QueryError, View},
    twin::Topology,
    twin_service::{RemoteError, RemoteTwin},
};

/// A watched estate; cheap to clone.
#[derive(Debug, Clone)]
pub enum WatchedEstate {
    /// Read by PromQL.
    Prometheus(PrometheusEstate),
    /// A standalone twin, read over HTTP.
    Twin(RemoteTwin),
}

/// Why a watched estate could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Prometheus(#[from] QueryError),
    #[error(transparent)]
    Twin(#[from] RemoteError),
}

impl WatchedEstate {
    /// What is read, as readiness names it: `prometheus` or `twin`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Prometheus(_) => "prometheus",
            Self::Twin(_) => "twin",
        }
    }

    /// Where it is read from.
    pub fn url(&self) -> &str {
        match self {
            Self::Prometheus(estate) => estate.url(),
            Self::Twin(twin) => twin.url(),
        }
    }

    pub fn topology(&self) -> &Arc<Topology> {
        match self {
            Self::Prometheus(estate) => estate.topology(),
            Self::Twin(twin) => twin.topology(),
        }
    }

    /// Why the last read failed, while no read since has succeeded.
    pub fn last_error(&self) -> Option<String> {
        match self {
            Self::Prometheus(estate) => estate.last_error(),
            Self::Twin(twin) => twin.last_error(),
        }
    }

    /// The cheapest request that proves the source answers.
    pub async fn probe(&self) -> Result<(), ReadError> {
        match self {
            Self::Prometheus(estate) => Ok(estate.probe().await?),
            Self::Twin(twin) => Ok(twin.probe().await?),
        }
    }

    /// Reads the estate as it is now.
    pub async fn read(&self) -> Result<View, ReadError> {
        match self {
            Self::Prometheus(estate) => Ok(estate.read().await?),
            Self::Twin(twin) => Ok(twin.read().await?),
        }
    }
}
