//! Counters that ease to each new figure the server sends, frame by frame
//! with `requestAnimationFrame`. Hidden tabs get no frames: a counter whose
//! tab is hidden (or whose reader prefers reduced motion) jumps straight to
//! the figure, and one hidden mid-way lands on it at the first frame back.
//! The server renders the figure itself, so the first paint is exact.

use leptos::prelude::*;

/// How long a counter takes to reach a new figure.
pub const DURATION_MS: f64 = 700.0;

/// Ease-out cubic: fast at first, settling gently; 0 at 0, 1 from 1 on.
pub fn ease_out(t: f64) -> f64 {
    let t = t.clamp(0.0, 1.0);
    1.0 - (1.0 - t).powi(3)
}

/// The figure shown `elapsed_ms` into the way from `from` to `to`.
pub fn tween(from: f64, to: f64, elapsed_ms: f64) -> f64 {
    if elapsed_ms >= DURATION_MS {
        to
    } else {
        from + (to - from) * ease_out(elapsed_ms / DURATION_MS)
    }
}

/// `value`, eased in the browser; on the server, `value` itself.
pub fn animated(value: Signal<Option<f64>>) -> Signal<Option<f64>> {
    #[cfg(feature = "browser")]
    {
        let shown = RwSignal::new(value.get_untracked());
        // Each new figure starts a new run; frames of an older run stop.
        let run = StoredValue::new(0u64);
        Effect::new(move |_| {
            let to = value.get();
            match (shown.get_untracked(), to) {
                (Some(from), Some(to)) if from != to && motion_allowed() => {
                    run.update_value(|r| *r += 1);
                    frame(shown, run, run.get_value(), from, to, now_ms());
                }
                _ => shown.set(to),
            }
        });
        shown.into()
    }
    #[cfg(not(feature = "browser"))]
    {
        value
    }
}

#[cfg(feature = "browser")]
fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map_or_else(js_sys::Date::now, |p| p.now())
}

/// Whether to animate: the tab is visible and the reader has not asked for
/// reduced motion.
#[cfg(feature = "browser")]
fn motion_allowed() -> bool {
    let Some(window) = web_sys::window() else { return false };
    let hidden = window.document().is_some_and(|d| d.hidden());
    let reduced = window
        .match_media("(prefers-reduced-motion: reduce)")
        .ok()
        .flatten()
        .is_some_and(|m| m.matches());
    !hidden && !reduced
}

#[cfg(feature = "browser")]
fn frame(shown: RwSignal<Option<f64>>, run: StoredValue<u64>, this: u64, from: f64, to: f64, start: f64) {
    request_animation_frame(move || {
        if run.try_get_value() != Some(this) {
            return;
        }
        let elapsed = now_ms() - start;
        shown.set(Some(tween(from, to, elapsed)));
        if elapsed < DURATION_MS {
            frame(shown, run, this, from, to, start);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ease_starts_at_zero_ends_at_one_and_never_overshoots() {
        assert_eq!(ease_out(0.0), 0.0);
        assert_eq!(ease_out(1.0), 1.0);
        assert_eq!(ease_out(2.0), 1.0);
        // Half the time, seven eighths of the way.
        assert!((ease_out(0.5) - 0.875).abs() < 1e-12);
        let mut last = 0.0;
        for i in 0..=100 {
            let v = ease_out(f64::from(i) / 100.0);
            assert!(v >= last && v <= 1.0);
            last = v;
        }
    }

    #[test]
    fn a_tween_lands_exactly_on_the_figure() {
        assert_eq!(tween(10.0, 20.0, 0.0), 10.0);
        assert!((tween(10.0, 20.0, DURATION_MS / 2.0) - 18.75).abs() < 1e-9);
        assert_eq!(tween(10.0, 20.0, DURATION_MS), 20.0);
        assert_eq!(tween(10.0, 20.0, 10.0 * DURATION_MS), 20.0);
        assert!(
            (tween(20.0, 10.0, DURATION_MS / 2.0) - 11.25).abs() < 1e-9,
            "downwards too"
        );
    }
}
