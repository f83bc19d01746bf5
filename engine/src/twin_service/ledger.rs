//! The standalone twin's ledger of actions: each order under its
//! idempotency key, the receipt it got, and what it changed (to undo it
//! by). Bounded: the oldest entries go first, long after any retry of
//! theirs could arrive.

use std::collections::{HashMap, VecDeque};

use crate::{
    protocol::{ActionOrder, ActionOutcome, ActionReceipt},
    twin::{ActionError, Applied, ConfigChange},
};

/// Actions the ledger remembers.
const CAPACITY: usize = 10_000;
/// The longest idempotency key taken (Stripe's limit).
const KEY_MAX: usize = 255;

/// A checked `Idempotency-Key`: 1 to 255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

/// Why a key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("Idempotency-Key: required, so that a retried order is applied once")]
    Missing,
    #[error("Idempotency-Key: 1 to {KEY_MAX} visible ASCII characters")]
    Malformed,
}

impl IdempotencyKey {
    /// Checks a header's value.
    pub fn parse(raw: Option<&str>) -> Result<Self, KeyError> {
        let raw = raw.ok_or(KeyError::Missing)?;
        let visible = raw.bytes().all(|b| b.is_ascii_graphic());
        if raw.is_empty() || raw.len() > KEY_MAX || !visible {
            return Err(KeyError::Malformed);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// One action taken.
pub(super) struct Entry {
    /// What was ordered.
    pub order: ActionOrder,
    /// Its receipt as it stands now.
    pub receipt: ActionReceipt,
    /// What it changed, while it can still be undone.
    pub applied: Option<Applied>,
}

impl Entry {
    /// The entry for `order`, applied (or not) with `outcome`.
    pub fn new(id: String, key: IdempotencyKey, order: ActionOrder, outcome: Result<Applied, ActionError>) -> Self {
        let (status, detail, applied) = match outcome {
            Ok(applied) => (ActionOutcome::Succeeded, None, Some(applied)),
            Err(error) => (ActionOutcome::Failed, Some(error.0), None),
        };
        let receipt = ActionReceipt {
            id,
            idempotency_key: key.into_inner(),
            remediation: order.remediation.clone(),
            status,
            detail,
            changes: applied
                .iter()
                .flat_map(|a| a.changes.iter().map(ConfigChange::event))
                .collect(),
            side_effects: applied.as_ref().map(|a| a.side_effects.clone()).unwrap_or_default(),
        };
        Self {
            order,
            receipt,
            applied,
        }
    }

    /// Marks the entry undone, with the changes the undo made.
    pub fn undone(&mut self, changes: Vec<ConfigChange>) {
        debug_assert_eq!(self.receipt.status, ActionOutcome::Succeeded);
        self.applied = None;
        self.receipt.status = ActionOutcome::Undone;
        self.receipt.detail = Some(if changes.is_empty() {
            "cannot be undone; left in place".to_owned()
        } else {
            format!("{} change(s) restored", changes.len())
        });
        self.receipt.changes = changes.iter().map(ConfigChange::event).collect();
    }
}

/// Every action taken, by id and by key.
#[derive(Default)]
pub(super) struct Ledger {
    entries: HashMap<String, Entry>,
    by_key: HashMap<String, String>,
    /// Ids, oldest first, for eviction.
    order: VecDeque<String>,
    /// Actions taken since start, for the next id.
    taken: u64,
}

impl Ledger {
    /// A fresh action id (`act-1`, `act-2`, …).
    pub fn next_id(&mut self) -> String {
        self.taken += 1;
        format!("act-{}", self.taken)
    }

    pub fn by_key(&self, key: &IdempotencyKey) -> Option<&Entry> {
        self.by_key.get(key.as_str()).and_then(|id| self.entries.get(id))
    }

    pub fn get(&self, id: &str) -> Option<&Entry> {
        self.entries.get(id)
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut Entry> {
        self.entries.get_mut(id)
    }

    /// Records `entry`, forgetting the oldest beyond capacity.
    pub fn insert(&mut self, entry: Entry) {
        let id = entry.receipt.id.clone();
        assert!(!self.entries.contains_key(&id), "action ids are never reused");
        self.by_key.insert(entry.receipt.idempotency_key.clone(), id.clone());
        self.entries.insert(id.clone(), entry);
        self.order.push_back(id);
        while self.order.len() > CAPACITY {
            let oldest = self.order.pop_front().expect("over capacity, so not empty");
            if let Some(gone) = self.entries.remove(&oldest) {
                self.by_key.remove(&gone.receipt.idempotency_key);
            }
        }
    }
}
