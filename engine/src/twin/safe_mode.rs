//! A model's safe mode: how it is left on its own once the primary path is
//! healthy again, and the primary path's true accuracy it is judged by.
//!
//! Leaving safe mode is the one configuration change the estate makes by
//! itself, so it lives apart from the actions that make the others.

use super::{Estate, SAFE_MODE_ACCURACY, ServiceKind, Topology, active_faults::Effects, registry};

/// Seed 003's model latency objective: median inference time.
const MODEL_P50_OBJECTIVE_MS: f64 = 300.0;
/// Seconds the primary path must meet it before safe mode is left.
const SAFE_MODE_PROBE_SECONDS: u32 = 10;

impl Estate {
    /// A model in safe mode keeps probing its primary path with shadow
    /// traffic; once the primary meets seed 003's objectives (median
    /// latency, and accuracy on labelled feedback) for
    /// [`SAFE_MODE_PROBE_SECONDS`] in a row, whatever sent it to safe mode
    /// is gone, and it leaves safe mode, recorded as a change of its own.
    pub(super) fn probe_safe_mode(&mut self, topology: &Topology, effects: &[Effects], offered: &[f64]) {
        for i in 0..self.services.len() {
            let spec = topology.spec(i);
            if spec.kind != ServiceKind::Model || !self.services[i].config.safe_mode {
                continue;
            }
            let (state, e) = (&self.services[i], &effects[i]);
            let cpu = self.cpu(spec, state, e, offered[i]);
            let queueing = (1.0 - spec.cpu) / (1.0 - cpu.min(0.985));
            let primary_p50 = spec.latency_ms * queueing * e.model_latency_factor();
            let primary_accuracy = self.primary_accuracy(i, e);
            let healthy = primary_p50 <= MODEL_P50_OBJECTIVE_MS && primary_accuracy >= registry::GOOD_ACCURACY;
            let state = &mut self.services[i];
            state.primary_ok_seconds = if healthy { state.primary_ok_seconds + 1 } else { 0 };
            if state.primary_ok_seconds >= SAFE_MODE_PROBE_SECONDS {
                state.primary_ok_seconds = 0;
                let before = self.config_log.len();
                self.set(
                    i,
                    "safe_mode",
                    true,
                    false,
                    &format!(
                        "safe-mode exit: the model itself met {MODEL_P50_OBJECTIVE_MS} ms median latency and {} accuracy for {SAFE_MODE_PROBE_SECONDS} s (root cause gone)",
                        registry::GOOD_ACCURACY
                    ),
                    |c| &mut c.safe_mode,
                );
                self.spontaneous.extend_from_slice(&self.config_log[before..]);
            }
        }
    }

    /// The true accuracy of model `index`'s serving version under effects
    /// `e` (safe mode's rules aside): its profile, less what its faults take.
    pub(super) fn primary_accuracy(&self, index: usize, e: &Effects) -> f64 {
        let state = &self.services[index];
        let profile = state
            .registry
            .iter()
            .find(|v| v.version == state.config.model_version)
            .map_or(SAFE_MODE_ACCURACY, |v| v.profile_accuracy);
        profile - 0.22 * e.accuracy_drop - 0.09 * e.drift
    }
}
