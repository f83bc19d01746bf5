//! The estate an incident works on: the server's one shared twin, advanced
//! lazily to the engine's simulated time, or an estate of the incident's
//! own (evaluation and benchmarks), advanced by the incident's own time.

use std::{sync::Mutex, time::Duration};

use super::MAX_CATCH_UP;
use crate::{
    clock::SimClock,
    twin::{Estate, WARMUP_TICKS},
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
    },
}

impl TwinRef {
    pub(super) fn with<R>(&mut self, elapsed: Duration, f: impl FnOnce(&mut Estate) -> R) -> R {
        match self {
            Self::Shared(shared) => shared.with(f),
            Self::Own { estate, start } => {
                let due = *start + elapsed.as_secs();
                let behind = due.saturating_sub(estate.now());
                estate.advance(behind);
                f(estate)
            }
        }
    }
}
