//! Exponential backoff with full jitter, the one rule every retry here
//! follows: the webhook notifier, agent jobs, the event writer against a
//! refusing store, and the browser's reconnects. Waiting a uniform share
//! of an exponentially growing ceiling keeps many retriers from arriving
//! in lockstep (AWS's "full jitter").

use std::time::Duration;

/// How retries back off: the ceiling doubles from `base` up to `cap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling before the first retry.
    pub base: Duration,
    /// The largest ceiling.
    pub cap: Duration,
}

impl Backoff {
    /// The longest wait before retry number `retry` (0 for the first):
    /// `min(cap, base × 2^retry)`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        self.base.saturating_mul(2u32.saturating_pow(retry)).min(self.cap)
    }

    /// The wait before retry number `retry`, with `unit` a uniform draw in
    /// [0, 1): uniform in `[0, ceiling(retry)]`.
    pub fn wait(&self, retry: u32, unit: f64) -> Duration {
        self.ceiling(retry).mul_f64(unit.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const POLICY: Backoff = Backoff {
        base: Duration::from_millis(200),
        cap: Duration::from_secs(5),
    };

    #[test]
    fn the_ceiling_doubles_up_to_the_cap() {
        assert_eq!(POLICY.wait(0, 1.0), Duration::from_millis(200));
        assert_eq!(POLICY.wait(2, 1.0), Duration::from_millis(800));
        assert_eq!(POLICY.wait(10, 1.0), Duration::from_secs(5));
        assert_eq!(POLICY.wait(3, 0.0), Duration::ZERO);
        assert_eq!(POLICY.wait(3, 0.5), Duration::from_millis(800));
    }

    proptest! {
        #[test]
        fn a_wait_never_exceeds_its_ceiling_nor_the_cap(retry in 0u32..100, unit in 0.0f64..1.0) {
            let wait = POLICY.wait(retry, unit);
            prop_assert!(wait <= POLICY.ceiling(retry));
            prop_assert!(POLICY.ceiling(retry) <= POLICY.cap);
            prop_assert!(POLICY.ceiling(retry) <= POLICY.ceiling(retry + 1));
        }
    }
}
