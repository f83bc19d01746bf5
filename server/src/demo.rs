//! Demo mode (`ANTIBODY_DEMO=1`): a hosted link that is alive when a visitor
//! arrives, and costs nothing while nobody looks.
//!
//! - **Activity.** A built-in timeline loops while at least one dashboard
//!   is connected, and pauses while none is: its schedule stops, and what
//!   it opened runs to its end. A fresh store is seeded once with the
//!   primary scenarios, so the first page is never empty.
//! - **Approvals** are the engine's business: its autopilot approves a
//!   plan nobody decided on after a countdown (`EngineConfig::autopilot`).
//! - **Viewers** may fire the primary scenarios within a rate, and
//!   WebSockets are capped per address and in all: both at the edge
//!   (`app::operator::ViewerAllowance`, `routes::ws`).

use engine::{
    Engine,
    timeline::{Timeline, runner::Timelines},
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use uuid::Uuid;

/// How often the loop looks whether its run has ended.
const RUN_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// Starts the demo's loop of `timeline_id` over `timelines`, driven by how
/// many dashboards are `open`, until `stop` (the server's shutdown); seeds
/// the history first when `fresh`.
pub fn start(
    engine: &Engine,
    timelines: Timelines,
    open: watch::Receiver<u32>,
    timeline_id: &str,
    fresh: bool,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let timeline = timelines
        .find(timeline_id)
        .map_err(|e| anyhow::anyhow!("ANTIBODY_DEMO_TIMELINE: {e}"))?
        .clone();
    if fresh {
        seed(engine);
    }
    tokio::spawn(async move {
        tokio::select! {
            () = follow_viewers(timelines, open, timeline) => {}
            () = stop.cancelled() => {}
        }
    });
    Ok(())
}

/// Opens one incident of each primary scenario: the history a first
/// visitor sees.
fn seed(engine: &Engine) {
    let primary: Vec<String> = (engine.scenarios().into_iter())
        .filter(|s| s.primary)
        .map(|s| s.id)
        .collect();
    info!(scenarios = ?primary, "demo: seeding a fresh store's history");
    for id in primary {
        if let Err(error) = engine.trigger_scenario(&id, None) {
            warn!(%error, scenario = %id, "demo: could not seed");
        }
    }
}

/// Runs the timeline while anyone watches, pauses it while nobody does,
/// and starts it again when it ends.
async fn follow_viewers(timelines: Timelines, mut open: watch::Receiver<u32>, timeline: Timeline) {
    let mut run: Option<Uuid> = None;
    let mut loops: u64 = 0;
    loop {
        if open.wait_for(|open| *open > 0).await.is_err() {
            return;
        }
        let live = run.filter(|id| timelines.run(*id).is_some_and(|r| !r.state.is_final()));
        run = match live {
            Some(id) => timelines.resume(id).ok().map(|_| id),
            None => {
                loops += 1;
                match timelines.start(timeline.clone(), None, loops) {
                    Ok(started) => {
                        info!(run = %started.run_id, loops, "demo: someone is watching; the timeline runs");
                        Some(started.run_id)
                    }
                    Err(error) => {
                        warn!(%error, "demo: the timeline could not start; trying again shortly");
                        None
                    }
                }
            }
        };
        // Until nobody watches (pause), or the run ends (start another).
        loop {
            tokio::select! {
                nobody = open.wait_for(|open| *open == 0) => {
                    if nobody.is_err() {
                        return;
                    }
                    if let Some(id) = run {
                        info!(run = %id, "demo: nobody is watching; the timeline pauses");
                        let _ = timelines.pause(id);
                    }
                    break;
                }
                () = tokio::time::sleep(RUN_CHECK) => {
                    let ended = run.is_none_or(|id| timelines.run(id).is_none_or(|r| r.state.is_final()));
                    if ended {
                        break;
                    }
                }
            }
        }
    }
}
