//! Several instances on one PostgreSQL: the leases an instance holds, and
//! the port through which it coordinates with the others.
//!
//! Every instance appends to the one shared log and publishes only what it
//! reads back from it (`event_log`'s tail), so all dashboards on all
//! instances see one order. What runs is owned: an incident (and a timeline
//! run) is owned by the instance that opened it, through a lease row
//! created in the transaction that stores its first event and renewed by
//! its owner. Each event about a held subject carries a [`Fence`], checked
//! inside the append's transaction, so an owner that lost its lease (it
//! paused, and another took over) cannot write about it any more.
//!
//! When an owner stops renewing (it died, or paused past the lease's time),
//! a reaper on every instance takes the lease over within the lease's time
//! plus one reaper tick, and **interrupts** what it covered: the lost
//! owner's in-memory course (agents' findings, a vote under way, the wait
//! for a person) cannot be resumed elsewhere, and a half-run plan must not
//! be run twice. The takeover is one `lease_taken_over` event, with the
//! new epoch; the interruption follows under that epoch.
//!
//! [`Fence`]: crate::journal::Fence

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use uuid::Uuid;

use crate::{
    journal::{Fence, JournalFuture, LeaseKind},
    protocol::{Approval, ServerMessage, TimelineRun},
};

/// How long a lease lasts unless renewed, by default.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(10);

/// The leases this instance holds: subject → epoch. A cheap-to-clone
/// handle, shared by the event log (which fences events with it) and the
/// engine (which renews and takes over).
#[derive(Clone, Default)]
pub struct Leases {
    held: Arc<Mutex<HashMap<Uuid, Lease>>>,
}

/// One lease as this instance knows it.
#[derive(Debug, Clone, Copy)]
struct Lease {
    /// The epoch it was held at.
    epoch: u64,
    /// Taken over by another instance: what this one still writes about
    /// the subject is fenced at the old epoch, so the store refuses it.
    lost: bool,
}

impl Leases {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Lease>> {
        self.held.lock().expect("leases lock poisoned")
    }

    /// The fence `message` must pass to be stored, updating what is held:
    /// an incident's creation (or a timeline run's first progress) opens a
    /// lease; its final event releases it.
    pub fn fence_for(&self, message: &ServerMessage) -> Option<Fence> {
        let mut held = self.lock();
        match message {
            ServerMessage::IncidentCreated { incident } => {
                held.insert(incident.id, Lease { epoch: 1, lost: false });
                Some(Fence::Open {
                    subject: incident.id,
                    kind: LeaseKind::Incident,
                })
            }
            ServerMessage::TimelineProgress { run } => match held.get(&run.run_id).map(|lease| lease.epoch) {
                Some(epoch) => {
                    if run.state.is_final() {
                        held.remove(&run.run_id);
                    }
                    Some(Fence::Holds {
                        subject: run.run_id,
                        epoch,
                    })
                }
                None if !run.state.is_final() => {
                    held.insert(run.run_id, Lease { epoch: 1, lost: false });
                    Some(Fence::Open {
                        subject: run.run_id,
                        kind: LeaseKind::Timeline,
                    })
                }
                None => None,
            },
            other => {
                let subject = other.incident_id()?;
                let epoch = held.get(&subject)?.epoch;
                if let ServerMessage::IncidentStatus { status, .. } = other
                    && status.is_terminal()
                {
                    held.remove(&subject);
                }
                Some(Fence::Holds { subject, epoch })
            }
        }
    }

    /// Every lease held (not lost), with its epoch.
    pub fn held(&self) -> Vec<(Uuid, u64)> {
        (self.lock().iter())
            .filter(|(_, lease)| !lease.lost)
            .map(|(subject, lease)| (*subject, lease.epoch))
            .collect()
    }

    /// Whether `subject`'s lease is held here (and not lost).
    pub fn holds(&self, subject: Uuid) -> bool {
        self.lock().get(&subject).is_some_and(|lease| !lease.lost)
    }

    /// Records a lease taken over at `epoch`.
    pub fn hold(&self, subject: Uuid, epoch: u64) {
        self.lock().insert(subject, Lease { epoch, lost: false });
    }

    /// Marks `subject`'s lease lost if it is held at `epoch`; true when it
    /// was. Events about it stay fenced at that epoch, so the store refuses
    /// them, until its final one.
    pub fn lose(&self, subject: Uuid, epoch: u64) -> bool {
        match self.lock().get_mut(&subject) {
            Some(lease) if lease.epoch == epoch && !lease.lost => {
                lease.lost = true;
                true
            }
            _ => false,
        }
    }
}

/// A lease this instance took over from one that stopped renewing it.
#[derive(Debug, Clone, PartialEq)]
pub struct Takeover {
    /// The incident or timeline run.
    pub subject: Uuid,
    /// Which of the two.
    pub kind: LeaseKind,
    /// The new epoch (the lost owner's plus one).
    pub epoch: u64,
    /// The instance that stopped renewing it.
    pub previous_owner: String,
    /// A timeline run's last stored state (timeline leases only).
    pub run: Option<TimelineRun>,
}

/// Why this instance may not join the ones already on the store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct JoinRefused(pub String);

/// What an instance may ask of the store it shares with others.
pub trait Coordination: Send + Sync + 'static {
    /// This instance's id, as leases and the log name it.
    fn instance(&self) -> &str;

    /// How long a lease lasts unless renewed.
    fn lease_ttl(&self) -> Duration;

    /// Says this instance is alive and renews every lease it owns; returns
    /// those of `held` (subject, epoch) it lost: taken over, or released.
    /// A lease not stored yet is not lost.
    fn renew<'a>(&'a self, held: &'a [(Uuid, u64)]) -> JournalFuture<'a, Vec<(Uuid, u64)>>;

    /// Takes over every lease whose owner stopped renewing it.
    fn take_over_expired(&self) -> JournalFuture<'_, Vec<Takeover>>;

    /// Records `decided` as its approval's decision, unless one is already
    /// recorded: `Ok` for the first, `Err` with the recorded one after.
    fn claim_decision<'a>(&'a self, decided: &'a Approval) -> JournalFuture<'a, Result<(), Approval>>;

    /// The recorded decision on `approval`, if any.
    fn decision(&self, approval: Uuid) -> JournalFuture<'_, Option<Approval>>;

    /// Leaves: this instance's leases expire now, for the others to take.
    fn leave(&self) -> JournalFuture<'_, ()>;

    /// Says a step here waits on action `id`'s result, which a runbook
    /// system may post to any instance.
    fn expect_result<'a>(&'a self, id: &'a str) -> JournalFuture<'a, ()>;

    /// Records a result that reached this instance for a step waiting on
    /// another: true when one waits and had none yet.
    fn post_result<'a>(&'a self, id: &'a str, result: &'a crate::protocol::ActionResult) -> JournalFuture<'a, bool>;

    /// The result posted for action `id` on another instance, if any;
    /// taking it forgets the registration.
    fn take_result<'a>(&'a self, id: &'a str) -> JournalFuture<'a, Option<crate::protocol::ActionResult>>;

    /// Forgets the registration of action `id` (its step stopped waiting).
    fn forget_result<'a>(&'a self, id: &'a str) -> JournalFuture<'a, ()>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Incident, IncidentStatus, Severity};

    fn incident(id: u128) -> Incident {
        Incident {
            id: Uuid::from_u128(id),
            title: "t".into(),
            severity: Severity::High,
            affected_services: vec![],
            scenario_id: None,
            status: IncidentStatus::Active,
            created_at: chrono::Utc::now(),
            finished_at: None,
            resolution_time: None,
            cost_savings: None,
            root_cause: None,
            report: None,
        }
    }

    fn status(id: u128, status: IncidentStatus) -> ServerMessage {
        ServerMessage::IncidentStatus {
            incident_id: Uuid::from_u128(id),
            status,
            resolution_time: None,
            cost_savings: None,
            root_cause: None,
            report: None,
            time_to_detect: None,
            time_to_diagnose: None,
        }
    }

    #[test]
    fn an_incident_s_lease_opens_with_it_fences_its_events_and_ends_with_it() {
        let leases = Leases::default();
        let open = leases.fence_for(&ServerMessage::IncidentCreated { incident: incident(1) });
        assert_eq!(
            open,
            Some(Fence::Open {
                subject: Uuid::from_u128(1),
                kind: LeaseKind::Incident
            })
        );
        let holds = Some(Fence::Holds {
            subject: Uuid::from_u128(1),
            epoch: 1,
        });
        assert_eq!(leases.fence_for(&status(1, IncidentStatus::Active)), holds);
        assert_eq!(leases.fence_for(&status(1, IncidentStatus::Resolved)), holds);
        // Released with its final event: what follows is nobody's.
        assert_eq!(leases.fence_for(&status(1, IncidentStatus::Resolved)), None);
        assert!(leases.held().is_empty());
    }

    #[test]
    fn events_about_what_another_instance_owns_carry_no_fence() {
        let leases = Leases::default();
        assert_eq!(leases.fence_for(&status(2, IncidentStatus::Active)), None);
        let metrics = ServerMessage::MemoryCleared {
            removed: 0,
            by: "x".into(),
        };
        assert_eq!(leases.fence_for(&metrics), None);
    }

    #[test]
    fn a_lease_taken_over_fences_at_its_new_epoch_and_is_lost_only_at_that_epoch() {
        let leases = Leases::default();
        leases.hold(Uuid::from_u128(3), 2);
        assert_eq!(
            leases.fence_for(&status(3, IncidentStatus::Active)),
            Some(Fence::Holds {
                subject: Uuid::from_u128(3),
                epoch: 2
            })
        );
        assert!(!leases.lose(Uuid::from_u128(3), 1));
        assert!(leases.lose(Uuid::from_u128(3), 2));
        assert!(leases.held().is_empty() && !leases.holds(Uuid::from_u128(3)));
        // A lost lease still fences what its old owner writes, at the old
        // epoch, so the store refuses it.
        assert_eq!(
            leases.fence_for(&status(3, IncidentStatus::Interrupted)),
            Some(Fence::Holds {
                subject: Uuid::from_u128(3),
                epoch: 2
            })
        );
        assert_eq!(leases.fence_for(&status(3, IncidentStatus::Interrupted)), None);
    }
}
