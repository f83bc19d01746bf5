//! The agent bus: how incidents get an agent's time.
//!
//! Each agent has a lane with a fixed number of workers. An incident that
//! needs the agent takes a worker, or waits in the lane's queue; waiters are
//! served most severe first, then first come. Every lane measures itself
//! (queue depth, busy workers, messages per minute, latency percentiles),
//! and the engine publishes that as `swarm_stats`. Each lane also has a
//! circuit breaker: after repeated failures it refuses work for a while,
//! then lets one job probe.

use std::{
    cmp::Ordering,
    collections::{BinaryHeap, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::oneshot;

use crate::{
    clock::SimClock,
    protocol::{AgentStats, AgentType, BreakerState, Severity},
};

/// Latency samples kept per lane for percentiles.
const LATENCY_SAMPLES: usize = 1024;
/// Completions counted for the per-minute rate.
const RATE_WINDOW: Duration = Duration::from_secs(60);

/// One incident waiting for a worker.
struct Waiter {
    /// More severe first.
    severity: Severity,
    /// Then first come, first served.
    order: u64,
    /// Where the worker is handed over.
    grant: oneshot::Sender<()>,
}

impl PartialEq for Waiter {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Waiter {}

impl PartialOrd for Waiter {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Waiter {
    /// The heap's greatest is served first: most severe, then oldest.
    fn cmp(&self, other: &Self) -> Ordering {
        self.severity
            .cmp(&other.severity)
            .then_with(|| other.order.cmp(&self.order))
    }
}

/// One agent's lane.
struct Lane {
    /// Workers not in use.
    idle: usize,
    /// Workers in all.
    workers: usize,
    /// Incidents waiting, best first.
    queue: BinaryHeap<Waiter>,
    /// Arrival counter, for first-come order.
    arrivals: u64,
    /// Recent job durations, in simulated ms.
    latencies: VecDeque<u64>,
    /// Simulated completion times within the rate window.
    completions: VecDeque<Duration>,
    /// Jobs completed since start.
    completed: u64,
    /// The lane's circuit breaker.
    breaker: Breaker,
}

/// Consecutive failures that open a lane's circuit.
const TRIP_AFTER: u32 = 3;
/// How long an open circuit refuses work before letting one job probe.
const COOL_DOWN: Duration = Duration::from_secs(10);

/// A circuit breaker: closed (work flows), open (work refused until the
/// cool-down ends), half-open (one probe decides).
#[derive(Debug, Default)]
struct Breaker {
    /// Failures since the last success.
    consecutive_failures: u32,
    /// Simulated time the circuit opened, while open.
    opened_at: Option<Duration>,
    /// Failures since start.
    failures: u64,
}

impl Breaker {
    fn state(&self, now: Duration) -> BreakerState {
        match self.opened_at {
            None => BreakerState::Closed,
            Some(at) if now.saturating_sub(at) < COOL_DOWN => BreakerState::Open,
            Some(_) => BreakerState::HalfOpen,
        }
    }
}

/// The lanes of every agent. Cheap to clone.
#[derive(Clone)]
pub struct AgentBus {
    lanes: Arc<[Mutex<Lane>; 5]>,
    clock: SimClock,
}

/// A worker of one lane, returned when dropped.
pub struct Worker {
    bus: AgentBus,
    agent: AgentType,
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.bus.release(self.agent);
    }
}

fn index(agent: AgentType) -> usize {
    AgentType::ALL
        .iter()
        .position(|a| *a == agent)
        .expect("every agent has a lane")
}

impl AgentBus {
    /// Lanes of `workers` workers each.
    pub fn new(workers: usize, clock: SimClock) -> Self {
        let lane = || {
            Mutex::new(Lane {
                idle: workers,
                workers,
                queue: BinaryHeap::new(),
                arrivals: 0,
                latencies: VecDeque::with_capacity(LATENCY_SAMPLES),
                completions: VecDeque::new(),
                completed: 0,
                breaker: Breaker::default(),
            })
        };
        Self {
            lanes: Arc::new([lane(), lane(), lane(), lane(), lane()]),
            clock,
        }
    }

    fn lane(&self, agent: AgentType) -> std::sync::MutexGuard<'_, Lane> {
        self.lanes[index(agent)].lock().expect("bus lane poisoned")
    }

    /// A worker of `agent`, now or when one frees up (most severe waiter
    /// first).
    pub async fn worker(&self, agent: AgentType, severity: Severity) -> Worker {
        let wait = {
            let mut lane = self.lane(agent);
            if lane.idle > 0 && lane.queue.is_empty() {
                lane.idle -= 1;
                None
            } else {
                let (grant, granted) = oneshot::channel();
                lane.arrivals += 1;
                let order = lane.arrivals;
                lane.queue.push(Waiter { severity, order, grant });
                Some(granted)
            }
        };
        if let Some(granted) = wait {
            // The sender lives in the queue until a worker is handed over.
            let _ = granted.await;
        }
        Worker {
            bus: self.clone(),
            agent,
        }
    }

    fn release(&self, agent: AgentType) {
        let mut lane = self.lane(agent);
        // Hand the worker straight to the best waiter still listening.
        while let Some(waiter) = lane.queue.pop() {
            if waiter.grant.send(()).is_ok() {
                return;
            }
        }
        lane.idle += 1;
    }

    /// Whether `agent` takes work now; how long its circuit stays open if
    /// not. A half-open circuit lets work through: the next outcome decides.
    pub fn admit(&self, agent: AgentType) -> Result<(), Duration> {
        let now = self.clock.now();
        let lane = self.lane(agent);
        match (lane.breaker.state(now), lane.breaker.opened_at) {
            (BreakerState::Open, Some(at)) => Err(COOL_DOWN.saturating_sub(now.saturating_sub(at))),
            _ => Ok(()),
        }
    }

    /// Records whether a job of `agent` succeeded, tripping or closing its
    /// circuit.
    pub fn outcome(&self, agent: AgentType, ok: bool) {
        let now = self.clock.now();
        let mut lane = self.lane(agent);
        let breaker = &mut lane.breaker;
        if ok {
            breaker.consecutive_failures = 0;
            breaker.opened_at = None;
            return;
        }
        breaker.failures += 1;
        breaker.consecutive_failures += 1;
        let half_open = breaker.state(now) == BreakerState::HalfOpen;
        if half_open || breaker.consecutive_failures >= TRIP_AFTER {
            breaker.opened_at = Some(now);
        }
    }

    /// Records that `agent` finished a job that took `took` simulated time.
    pub fn record(&self, agent: AgentType, took: Duration) {
        let now = self.clock.now();
        let mut lane = self.lane(agent);
        if lane.latencies.len() == LATENCY_SAMPLES {
            lane.latencies.pop_front();
        }
        lane.latencies.push_back(took.as_millis() as u64);
        lane.completions.push_back(now);
        while lane
            .completions
            .front()
            .is_some_and(|t| now.saturating_sub(*t) > RATE_WINDOW)
        {
            lane.completions.pop_front();
        }
        lane.completed += 1;
    }

    /// Every lane's figures now.
    pub fn stats(&self) -> Vec<AgentStats> {
        let now = self.clock.now();
        AgentType::ALL
            .iter()
            .map(|&agent| {
                let mut lane = self.lane(agent);
                while lane
                    .completions
                    .front()
                    .is_some_and(|t| now.saturating_sub(*t) > RATE_WINDOW)
                {
                    lane.completions.pop_front();
                }
                let mut sorted: Vec<u64> = lane.latencies.iter().copied().collect();
                sorted.sort_unstable();
                let percentile =
                    |p: f64| (!sorted.is_empty()).then(|| sorted[((sorted.len() - 1) as f64 * p).round() as usize]);
                let busy = lane.workers - lane.idle;
                AgentStats {
                    agent,
                    queue_depth: lane.queue.len(),
                    busy,
                    workers: lane.workers,
                    utilization: busy as f64 / lane.workers as f64,
                    messages_per_minute: lane.completions.len() as u64,
                    p50_ms: percentile(0.5),
                    p99_ms: percentile(0.99),
                    completed: lane.completed,
                    breaker: lane.breaker.state(now),
                    failures: lane.breaker.failures,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Speed;

    #[tokio::test(start_paused = true)]
    async fn a_failing_lane_opens_its_circuit_then_probes_then_closes() {
        let bus = AgentBus::new(2, SimClock::new(Speed::REAL_TIME));
        for _ in 0..TRIP_AFTER - 1 {
            bus.outcome(AgentType::Prediction, false);
        }
        assert!(bus.admit(AgentType::Prediction).is_ok(), "not yet tripped");
        bus.outcome(AgentType::Prediction, false);
        let open_for = bus.admit(AgentType::Prediction).unwrap_err();
        assert_eq!(open_for, COOL_DOWN);
        assert_eq!(bus.stats()[2].breaker, BreakerState::Open);
        // Other lanes are unaffected.
        assert!(bus.admit(AgentType::Detection).is_ok());

        tokio::time::advance(COOL_DOWN).await;
        assert_eq!(bus.stats()[2].breaker, BreakerState::HalfOpen);
        assert!(bus.admit(AgentType::Prediction).is_ok(), "one probe goes through");
        // A failed probe opens it again at once.
        bus.outcome(AgentType::Prediction, false);
        assert!(bus.admit(AgentType::Prediction).is_err());
        tokio::time::advance(COOL_DOWN).await;
        bus.outcome(AgentType::Prediction, true);
        assert_eq!(bus.stats()[2].breaker, BreakerState::Closed);
        assert_eq!(bus.stats()[2].failures, TRIP_AFTER as u64 + 1);
    }

    #[tokio::test(start_paused = true)]
    async fn waiters_are_served_most_severe_first_then_in_order() {
        let bus = AgentBus::new(1, SimClock::new(Speed::REAL_TIME));
        let held = bus.worker(AgentType::Diagnosis, Severity::Low).await;
        let served = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (name, severity) in [
            ("low-1", Severity::Low),
            ("critical", Severity::Critical),
            ("low-2", Severity::Low),
            ("high", Severity::High),
        ] {
            let (bus, served) = (bus.clone(), served.clone());
            tasks.push(tokio::spawn(async move {
                let _worker = bus.worker(AgentType::Diagnosis, severity).await;
                served.lock().unwrap().push(name);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }));
            tokio::task::yield_now().await;
        }
        assert_eq!(bus.stats()[1].queue_depth, 4);
        assert_eq!(bus.stats()[1].utilization, 1.0);
        drop(held);
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(*served.lock().unwrap(), ["critical", "high", "low-1", "low-2"]);
        let stats = &bus.stats()[1];
        assert_eq!((stats.queue_depth, stats.busy), (0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn latency_percentiles_and_rate_come_from_recorded_jobs() {
        let bus = AgentBus::new(4, SimClock::new(Speed::REAL_TIME));
        for ms in 1..=100 {
            bus.record(AgentType::Detection, Duration::from_millis(ms));
        }
        let stats = &bus.stats()[0];
        assert_eq!(stats.p50_ms, Some(51));
        assert_eq!(stats.p99_ms, Some(99));
        assert_eq!(stats.messages_per_minute, 100);
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(bus.stats()[0].messages_per_minute, 0);
        assert_eq!(bus.stats()[0].completed, 100);
    }
}
