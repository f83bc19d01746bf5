//! The approvals waiting for a person, and the door through which a
//! person's decision reaches the incident that waits for it.
//!
//! An incident task opens an approval and waits on the receiver it gets
//! back; `decide` (from the API or the dashboard) takes the approval out and
//! sends the decision. Whichever of the decision and the final timeout
//! takes the approval out first wins, under one lock, so an approval is
//! decided exactly once.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
};

use chrono::{DateTime, Utc};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::{
    protocol::{Approval, ApprovalState},
    request::ApprovalDecision,
};

/// Decided approvals remembered, so a late decision is told "already
/// decided" rather than "unknown".
const DECIDED_KEPT: usize = 1_000;

/// A person's decision.
#[derive(Debug, Clone, PartialEq)]
pub struct HumanDecision {
    /// Approve (true) or reject.
    pub approve: bool,
    /// Who decided.
    pub approver: String,
    /// Their words.
    pub comment: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
}

/// Why a decision was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecideError {
    #[error("no approval `{0}`")]
    Unknown(Uuid),
    #[error("approval `{id}` is already {}", state.as_str())]
    AlreadyDecided { id: Uuid, state: ApprovalState },
    #[error("the decision could not be recorded: {0}")]
    Unavailable(String),
}

/// `approval` as `decision` settles it.
pub fn decided(mut approval: Approval, decision: &HumanDecision) -> Approval {
    approval.state = if decision.approve {
        ApprovalState::Approved
    } else {
        ApprovalState::Rejected
    };
    approval.decided_by = Some(decision.approver.clone());
    approval.decided_at = Some(decision.at);
    approval.comment = decision.comment.clone();
    approval
}

/// A cheap-to-clone handle to the approvals waiting for a person.
#[derive(Clone, Default)]
pub struct Approvals {
    inner: Arc<Mutex<Book>>,
    /// With other instances on the store: where every decision is claimed
    /// first, so one taken on another instance and this one's timeout
    /// cannot both win.
    arbiter: Option<Arc<dyn crate::cluster::Coordination>>,
}

#[derive(Default)]
struct Book {
    /// Waiting approvals, with the way to answer each.
    pending: HashMap<Uuid, Waiting>,
    /// Recently decided approvals' final states, oldest first.
    decided: VecDeque<(Uuid, ApprovalState)>,
}

struct Waiting {
    /// The approval as last published.
    approval: Approval,
    /// The waiting incident.
    reply: oneshot::Sender<HumanDecision>,
}

impl Book {
    fn remember(&mut self, id: Uuid, state: ApprovalState) {
        self.decided.push_back((id, state));
        while self.decided.len() > DECIDED_KEPT {
            self.decided.pop_front();
        }
    }
}

impl Approvals {
    /// Approvals whose every decision is first claimed in the shared store.
    pub fn arbitrated(arbiter: Arc<dyn crate::cluster::Coordination>) -> Self {
        Self {
            inner: Arc::default(),
            arbiter: Some(arbiter),
        }
    }

    /// Takes a waiting approval out without a person (timeout, withdrawal),
    /// as [`close`](Self::close), after claiming the decision in the shared
    /// store when there is one. `None` when a decision got there first,
    /// here or on another instance (which is then delivered to the waiter).
    pub async fn conclude(&self, approval: &Approval, state: ApprovalState, by: &str) -> Option<Approval> {
        if let Some(arbiter) = &self.arbiter {
            let mut concluded = approval.clone();
            concluded.state = state;
            concluded.decided_by = Some(by.to_owned());
            concluded.decided_at = Some(Utc::now());
            match arbiter.claim_decision(&concluded).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return None,
                // The store cannot say; the incident still must not wait
                // forever. A person's decision claimed meanwhile loses.
                Err(error) => tracing::warn!(%error, "could not claim an approval's conclusion; concluding here"),
            }
        }
        self.close(approval.approval_id, state)
    }

    /// Opens `approval`; the decision arrives on the receiver.
    pub fn open(&self, approval: Approval) -> oneshot::Receiver<HumanDecision> {
        let (reply, receiver) = oneshot::channel();
        let mut book = self.inner.lock().expect("approvals lock poisoned");
        book.pending.insert(approval.approval_id, Waiting { approval, reply });
        receiver
    }

    /// Replaces a waiting approval's published form (an escalation). False
    /// when it is no longer waiting.
    pub fn update(&self, approval: &Approval) -> bool {
        let mut book = self.inner.lock().expect("approvals lock poisoned");
        match book.pending.get_mut(&approval.approval_id) {
            Some(waiting) => {
                waiting.approval = approval.clone();
                true
            }
            None => false,
        }
    }

    /// Takes a waiting approval out without a person's decision (its time
    /// ran out, or its incident stopped), recording `state`. `None` when a
    /// decision got there first.
    pub fn close(&self, id: Uuid, state: ApprovalState) -> Option<Approval> {
        let mut book = self.inner.lock().expect("approvals lock poisoned");
        let waiting = book.pending.remove(&id)?;
        book.remember(id, state);
        Some(waiting.approval)
    }

    /// Delivers a validated decision from the API or the dashboard.
    pub fn decide_request(&self, id: Uuid, request: ApprovalDecision) -> Result<Approval, DecideError> {
        self.decide(
            id,
            HumanDecision {
                approve: request.approve,
                approver: request.approver,
                comment: request.comment,
                at: Utc::now(),
            },
        )
    }

    /// Delivers a person's decision to the waiting incident; returns the
    /// approval as decided (the incident publishes it, with how long it
    /// waited, at once).
    pub fn decide(&self, id: Uuid, decision: HumanDecision) -> Result<Approval, DecideError> {
        let mut book = self.inner.lock().expect("approvals lock poisoned");
        let Some(waiting) = book.pending.remove(&id) else {
            return Err(match book.decided.iter().rev().find(|(d, _)| *d == id) {
                Some((_, state)) => DecideError::AlreadyDecided { id, state: *state },
                None => DecideError::Unknown(id),
            });
        };
        let approval = decided(waiting.approval, &decision);
        book.remember(id, approval.state);
        // The incident may have stopped in the meantime; then nobody runs
        // anything, which is what a rejection would do anyway.
        let _ = waiting.reply.send(decision);
        Ok(approval)
    }

    /// The approval `id`, while it waits.
    pub fn get(&self, id: Uuid) -> Option<Approval> {
        let book = self.inner.lock().expect("approvals lock poisoned");
        book.pending.get(&id).map(|w| w.approval.clone())
    }

    /// Every waiting approval, oldest request first.
    pub fn pending(&self) -> Vec<Approval> {
        let book = self.inner.lock().expect("approvals lock poisoned");
        let mut list: Vec<Approval> = book.pending.values().map(|w| w.approval.clone()).collect();
        list.sort_by_key(|a| a.requested_at);
        list
    }
}
