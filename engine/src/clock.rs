//! The one clock that drives the swarm.
//!
//! Agents think in *simulated* time: at speed 1.0 an incident takes about
//! 18 s, as in seed 000. `ANTIBODY_SPEED` compresses wall time, so at speed
//! 10 the same incident takes 1.8 s of wall time yet still reports 18 s of
//! MTTR. Built on tokio's clock, so tests pause and advance it.

use std::{fmt, str::FromStr, time::Duration};

use tokio::time::Instant;

/// Time compression: simulated seconds per wall second. Finite, in
/// [`Speed::MIN`, `Speed::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Speed(f64);

impl Speed {
    pub const MIN: f64 = 0.01;
    pub const MAX: f64 = 10_000.0;
    /// Real time.
    pub const REAL_TIME: Speed = Speed(1.0);

    pub fn new(factor: f64) -> Result<Self, String> {
        if factor.is_finite() && (Self::MIN..=Self::MAX).contains(&factor) {
            Ok(Self(factor))
        } else {
            Err(format!(
                "{factor} is not a valid speed: use a number from {} to {}",
                Self::MIN,
                Self::MAX
            ))
        }
    }

    pub fn factor(self) -> f64 {
        self.0
    }
}

impl FromStr for Speed {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let factor: f64 = s.trim().parse().map_err(|_| format!("`{s}` is not a number"))?;
        Self::new(factor)
    }
}

impl fmt::Display for Speed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Sleeps and measures in simulated time. Cheap to copy.
#[derive(Debug, Clone, Copy)]
pub struct SimClock {
    /// Time compression.
    speed: Speed,
    /// When simulated time began.
    origin: Instant,
}

impl SimClock {
    pub fn new(speed: Speed) -> Self {
        Self {
            speed,
            origin: Instant::now(),
        }
    }

    /// Simulated time since the clock was made.
    pub fn now(&self) -> Duration {
        self.elapsed(self.origin)
    }

    pub fn speed(&self) -> Speed {
        self.speed
    }

    /// A point to measure simulated time from.
    pub fn start(&self) -> Instant {
        Instant::now()
    }

    /// Waits for `simulated` time to pass.
    pub async fn sleep(&self, simulated: Duration) {
        tokio::time::sleep(simulated.div_f64(self.speed.0)).await;
    }

    /// Simulated time since `start`.
    pub fn elapsed(&self, start: Instant) -> Duration {
        start.elapsed().mul_f64(self.speed.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speed_rejects_nonsense_with_a_reason() {
        for bad in ["0", "-1", "NaN", "inf", "fast", "", "100000"] {
            let err = bad.parse::<Speed>().unwrap_err();
            assert!(!err.is_empty(), "{bad}");
        }
        assert_eq!("2.5".parse::<Speed>().unwrap().factor(), 2.5);
    }

    #[tokio::test(start_paused = true)]
    async fn sleeping_is_compressed_and_elapsed_is_simulated() {
        let clock = SimClock::new(Speed::new(10.0).unwrap());
        let wall = Instant::now();
        let start = clock.start();
        clock.sleep(Duration::from_secs(18)).await;
        assert_eq!(wall.elapsed(), Duration::from_millis(1800));
        assert_eq!(clock.elapsed(start), Duration::from_secs(18));
    }
}
