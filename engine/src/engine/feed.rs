//! What a client follows: a start (the exact events it missed, or a fresh
//! snapshot) and a live receiver, taken under one lock, so there is no gap
//! and no duplicate at the seam.

use std::sync::Arc;

use tokio::sync::broadcast;
use uuid::Uuid;

use super::Engine;
use crate::{event_log::Published, protocol::Snapshot};

/// Where a client's event stream starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resume {
    /// The log the client's `since` belongs to (from its last snapshot).
    pub epoch: Uuid,
    /// The last `seq` the client has.
    pub since: u64,
}

/// The first thing a client receives.
#[derive(Debug)]
pub enum FeedStart {
    /// Exactly the events the client missed, oldest first.
    Replay(Vec<Arc<Published>>),
    /// A fresh view that replaces whatever the client had.
    Snapshot(Box<Snapshot>),
}

/// A client's stream: a start, then every later event, with no gap and no
/// duplicate between the two.
pub struct Feed {
    pub start: FeedStart,
    pub live: broadcast::Receiver<Arc<Published>>,
}

impl Engine {
    /// Everything a dashboard needs for its first paint.
    pub fn snapshot(&self) -> Snapshot {
        self.snapshot_and_subscribe().0
    }

    fn snapshot_and_subscribe(&self) -> (Snapshot, broadcast::Receiver<Arc<Published>>) {
        let epoch = self.shared.log.epoch();
        let (mut snapshot, live) = self.shared.log.project_and_subscribe(|last_seq, projection| Snapshot {
            epoch,
            last_seq,
            metrics: projection.metrics.clone(),
            incidents: projection.incidents.iter().cloned().collect(),
            recent_events: projection.recent.iter().cloned().collect(),
            twin: projection.twin.clone(),
            swarm: projection.swarm.clone(),
            timelines: projection.timelines.iter().cloned().collect(),
            approvals: projection.approvals.iter().cloned().collect(),
        });
        // Before the first reports, read the gauges directly.
        if snapshot.twin.is_empty() {
            snapshot.twin = self.twin_health().unwrap_or_default();
        }
        if snapshot.swarm.is_empty() {
            snapshot.swarm = self.swarm_stats();
        }
        (snapshot, live)
    }

    /// A stream for one client: the events it missed since `resume` when
    /// the log still has them all, or else a fresh snapshot; then live.
    pub fn feed(&self, resume: Option<Resume>) -> Feed {
        if let Some(resume) = resume.filter(|r| r.epoch == self.shared.log.epoch()) {
            let subscription = self.shared.log.subscribe_since(resume.since);
            if subscription.complete {
                return Feed {
                    start: FeedStart::Replay(subscription.backlog),
                    live: subscription.live,
                };
            }
        }
        let (snapshot, live) = self.snapshot_and_subscribe();
        Feed {
            start: FeedStart::Snapshot(Box::new(snapshot)),
            live,
        }
    }
}
