//! Step 2 of a tick: the state that moves slowly, second by second —
//! memory, disk, a cache warming, restarts.
//!
//! Kept apart from the traffic steps because this state integrates over many
//! ticks (a leak accumulates, a cold cache warms), where offered load and
//! outcomes are worked out afresh each tick from it.

use super::{Estate, ServiceKind, Topology, WARM_HIT_RATE, active_faults::Effects};

/// Restarts are counted over this many seconds.
const RESTART_WINDOW: u64 = 60;

impl Estate {
    pub(super) fn integrate_state(&mut self, topology: &Topology, effects: &[Effects]) {
        let tick = self.tick;
        for (i, state) in self.services.iter_mut().enumerate() {
            let spec = topology.spec(i);
            let e = effects[i];
            state.transient_errors *= 0.5;
            if e.memory_leak_per_tick > 0.0 {
                state.memory += e.memory_leak_per_tick;
                if state.memory >= 0.97 {
                    // Out of memory: the instance is killed and restarts.
                    state.memory = spec.memory;
                    state.restart_ticks.push_back(tick);
                    state.transient_errors = state.transient_errors.max(0.25);
                }
            } else {
                state.memory += (spec.memory - state.memory) * 0.05;
            }
            state.disk = (state.disk + e.disk_growth).min(0.999);
            if spec.kind == ServiceKind::Cache {
                let target = WARM_HIT_RATE * (1.0 - e.cache_failure);
                let rate = if target > state.hit_rate { 0.35 } else { 0.8 };
                state.hit_rate += (target - state.hit_rate) * rate;
            }
            if e.crash > 0.3 && tick.is_multiple_of(4) {
                state.restart_ticks.push_back(tick);
            }
            while state.restart_ticks.front().is_some_and(|&t| t + RESTART_WINDOW <= tick) {
                state.restart_ticks.pop_front();
            }
        }
    }
}
