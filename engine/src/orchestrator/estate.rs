//! The estate an incident works on: the server's one shared twin, advanced
//! lazily to the engine's simulated time; an estate of the incident's own
//! (evaluation and benchmarks), advanced by the incident's own time; or a
//! real estate watched through Prometheus, read afresh before each agent
//! looks and never acted on.

use std::{sync::Mutex, time::Duration};

use super::MAX_CATCH_UP;
use crate::{
    actuator::HttpActuator,
    clock::SimClock,
    observe::{Observed, Remediable},
    prometheus::View,
    protocol::{ActionDetails, Metric, QueryEvidence},
    twin::{Estate, FaultSpec, WARMUP_TICKS},
    watched::{ReadError, WatchedEstate},
};

/// The estate every incident of a server shares, advanced lazily to the
/// engine's simulated time whenever someone looks.
pub struct SharedTwin {
    /// The estate.
    estate: Mutex<Estate>,
    /// The engine's clock.
    clock: SimClock,
}

impl SharedTwin {
    pub fn new(estate: Estate, clock: SimClock) -> Self {
        Self {
            estate: Mutex::new(estate),
            clock,
        }
    }

    /// Runs `f` on the estate, brought up to the current simulated time.
    pub fn with<R>(&self, f: impl FnOnce(&mut Estate) -> R) -> R {
        let mut estate = self.estate.lock().expect("twin lock poisoned");
        let due = WARMUP_TICKS + self.clock.now().as_secs();
        let behind = due.saturating_sub(estate.now());
        if behind > MAX_CATCH_UP {
            estate.skip(behind - MAX_CATCH_UP);
        }
        let behind = due.saturating_sub(estate.now());
        estate.advance(behind);
        f(&mut estate)
    }
}

/// The estate an incident works on.
pub enum TwinRef {
    /// The server's shared estate.
    Shared(std::sync::Arc<SharedTwin>),
    /// An estate of its own (evaluation and benchmarks), advanced by the
    /// incident's own simulated time.
    Own {
        /// The estate.
        estate: Box<Estate>,
        /// Its tick when the incident opened.
        start: u64,
        /// Every service's health then, to tell whether the incident left
        /// the estate worse than it found it.
        opened: Vec<crate::protocol::HealthState>,
    },
    /// A real estate, read from Prometheus, and acted on through an
    /// actuator when there is one (advisory without, or in a dry run).
    Watched {
        /// Where it is read from.
        estate: WatchedEstate,
        /// The latest read, which the agents observe.
        view: Option<Box<View>>,
        /// What carries out its steps.
        actuator: Option<HttpActuator>,
        /// A scenario's faults, for a standalone twin to start before the
        /// incident first reads it.
        faults: Vec<FaultSpec>,
    },
}

impl TwinRef {
    /// Runs `f` on what resolution may change of the twin in-process. A
    /// watched estate is acted on through its actuator instead.
    pub(super) fn act<R>(&mut self, elapsed: Duration, f: impl FnOnce(&mut dyn Remediable) -> R) -> R {
        self.with(elapsed, |estate| f(estate))
    }

    /// Runs `f` on the twin, brought up to the incident's time.
    fn with<R>(&mut self, elapsed: Duration, f: impl FnOnce(&mut Estate) -> R) -> R {
        match self {
            Self::Watched { .. } => unreachable!("a watched estate is acted on through its actuator"),
            Self::Shared(shared) => shared.with(f),
            Self::Own { estate, start, .. } => {
                let due = *start + elapsed.as_secs();
                let behind = due.saturating_sub(estate.now());
                estate.advance(behind);
                f(estate)
            }
        }
    }
}

impl TwinRef {
    /// Runs `f` on what the agents may observe: the twin as it is now, or
    /// the latest read of a watched estate.
    pub(super) fn observe<R>(&mut self, elapsed: Duration, f: impl FnOnce(&dyn Observed) -> R) -> R {
        match self {
            Self::Watched { view, .. } => f(view
                .as_deref()
                .expect("a watched estate is read before anyone observes it")),
            twin => twin.with(elapsed, |estate| f(estate)),
        }
    }

    /// Starts a scenario's faults on a standalone twin, once, before
    /// anything reads it; whether there were any.
    pub(super) async fn inject_pending(&mut self) -> Result<bool, ReadError> {
        let Self::Watched {
            estate: WatchedEstate::Twin(twin),
            faults,
            ..
        } = self
        else {
            return Ok(false);
        };
        if faults.is_empty() {
            return Ok(false);
        }
        twin.inject(&std::mem::take(faults)).await?;
        Ok(true)
    }

    /// Reads a watched estate afresh; a twin is always current.
    pub(super) async fn refresh(&mut self) -> Result<(), ReadError> {
        if let Self::Watched { estate, view, .. } = self {
            *view = Some(Box::new(estate.read().await?));
        }
        Ok(())
    }

    /// How many services the estate has.
    pub(super) fn service_count(&mut self, elapsed: Duration) -> usize {
        match self {
            Self::Watched { estate, .. } => estate.topology().len(),
            twin => twin.with(elapsed, |estate| estate.topology().len()),
        }
    }

    /// Whether plans on this estate are proposed only, never run: a
    /// watched estate with no actuator (a dry run is the engine's own flag).
    pub(super) fn advisory(&self) -> bool {
        match self {
            Self::Watched { actuator, .. } => actuator.is_none(),
            Self::Shared(_) | Self::Own { .. } => false,
        }
    }

    /// The actuator outside the engine that carries out steps, if any (the
    /// embedded twin is acted on in-process).
    pub(super) fn actuator(&self) -> Option<HttpActuator> {
        match self {
            Self::Watched { actuator, .. } => actuator.clone(),
            Self::Shared(_) | Self::Own { .. } => None,
        }
    }

    /// The PromQL behind a finding, when the estate is watched: each series
    /// the finding names, with the query, the range and the values read.
    pub(super) fn evidence(&self, details: &ActionDetails) -> Vec<QueryEvidence> {
        let Self::Watched { view: Some(view), .. } = self else {
            return Vec::new();
        };
        let series = named_series(details);
        series
            .iter()
            .filter_map(|(service, metric)| view.evidence(service, *metric))
            .collect()
    }
}

/// Most series a finding's evidence shows.
const EVIDENCE_SERIES: usize = 8;

/// The series a finding rests on: detection's anomalies and breached
/// monitors, diagnosis's evidence for its leading hypotheses, prediction's
/// objectives at risk.
fn named_series(details: &ActionDetails) -> Vec<(String, Metric)> {
    let mut series: Vec<(String, Metric)> = match details {
        ActionDetails::Detection(d) => (d.top_anomalies.iter().map(|a| (a.service.clone(), a.metric)))
            .chain(d.monitor_breaches.iter().map(|b| (b.service.clone(), b.metric)))
            .collect(),
        ActionDetails::Diagnosis(d) => (d.hypotheses.iter().take(2))
            .flat_map(|h| h.evidence.iter().map(|e| (h.root.service.clone(), e.metric)))
            .collect(),
        ActionDetails::Prediction(p) => (p.breaches.iter().map(|b| &b.service))
            .flat_map(|s| [(s.clone(), Metric::ErrorRate), (s.clone(), Metric::LatencyP99)])
            .collect(),
        _ => Vec::new(),
    };
    let mut seen = std::collections::HashSet::new();
    series.retain(|s| seen.insert(s.clone()));
    series.truncate(EVIDENCE_SERIES);
    series
}
