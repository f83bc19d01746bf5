//! Step 3 of a tick: the traffic each service is offered.
//!
//! Requests enter at the topology's entry points with a daily shape and flow down the call
//! graph, through caches (misses fall through to the fallback) and open
//! circuit breakers (diverted to the fallback), to whichever service answers
//! for a dependency once it failed over.

use std::f64::consts::PI;

use super::{Estate, ServiceKind, Topology};

impl Estate {
    /// Traffic multiplier for the time of day: lowest at midnight, highest
    /// at noon.
    fn daily_traffic(&self) -> f64 {
        let day_fraction = ((self.start_of_day + self.tick as f64) % 86_400.0) / 86_400.0;
        1.0 + 0.3 * (2.0 * PI * (day_fraction - 0.25)).sin()
    }

    /// Where a call from `caller` on edge `edge_index` actually goes.
    pub(super) fn route(&self, topology: &Topology, caller: usize, edge_index: usize) -> usize {
        self.serving(topology, topology.spec(caller).edges[edge_index].to)
    }

    /// The service that answers for `index`: its promoted replica once it
    /// failed over.
    pub(super) fn serving(&self, topology: &Topology, index: usize) -> usize {
        match topology.spec(index).replica {
            Some(replica) if self.services[index].config.failed_over => replica,
            _ => index,
        }
    }

    /// Requests/s offered to every service this tick, and the part of it
    /// that open circuit breakers diverted there.
    pub(super) fn offered_load(&mut self, topology: &Topology) -> (Vec<f64>, Vec<f64>) {
        let traffic = self.daily_traffic();
        let mut rps: Vec<f64> = topology
            .services
            .iter()
            .map(|s| s.entry_rps.unwrap_or(0.0) * traffic)
            .collect();
        let mut diverted = vec![0.0; rps.len()];
        for &i in topology.bottom_up.iter().rev() {
            for (e, edge) in topology.spec(i).edges.iter().enumerate() {
                let load = rps[i] * edge.calls;
                let to = self.route(topology, i, e);
                let dep = topology.spec(to);
                if dep.kind == ServiceKind::Cache {
                    let hit = self.services[to].hit_rate * (1.0 - self.services[to].outcome.errors);
                    rps[to] += load;
                    if let Some(fallback) = dep.fallback {
                        rps[self.serving(topology, fallback)] += load * (1.0 - hit);
                    }
                } else if self.services[i].breaker_open[e] {
                    if let Some(fallback) = dep.fallback {
                        let fallback = self.serving(topology, fallback);
                        rps[fallback] += load;
                        diverted[fallback] += load;
                    }
                } else {
                    rps[to] += load;
                }
            }
        }
        (rps, diverted)
    }
}
