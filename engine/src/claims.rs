//! Root-service claims on the shared estate: one incident at a time
//! remediates (or rolls back) a given root service, so a fix is never
//! applied twice. A claim is a guard: it is released when dropped, on every
//! path out of a remediation (success, failure, `?`, interruption), as a
//! bus [`Worker`](crate::bus::Worker) is.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use uuid::Uuid;

/// The claims of one engine: a cheap-to-clone handle.
#[derive(Clone, Default)]
pub struct Claims {
    /// Root service → the incident remediating it. `None` when every
    /// incident has an estate of its own (evaluation, benchmarks): there
    /// is nothing to collide on.
    held: Option<Arc<Mutex<HashMap<String, Uuid>>>>,
}

/// One incident's hold on a root service, released on drop.
#[must_use = "a claim is released as soon as it is dropped"]
pub struct Claim {
    /// The table it is in; `None` on isolated estates.
    held: Option<Arc<Mutex<HashMap<String, Uuid>>>>,
    /// The service.
    root: String,
    /// The holder.
    incident: Uuid,
}

impl Claims {
    /// Claims for a shared estate.
    pub fn shared() -> Self {
        Self {
            held: Some(Arc::default()),
        }
    }

    /// No claims: every incident has its own estate.
    pub fn isolated() -> Self {
        Self { held: None }
    }

    /// Claims `root` for `incident`, or names the incident holding it.
    pub fn claim(&self, root: &str, incident: Uuid) -> Result<Claim, Uuid> {
        if let Some(held) = &self.held {
            let mut table = held.lock().expect("claims lock poisoned");
            match table.get(root) {
                Some(holder) if *holder != incident => return Err(*holder),
                Some(_) => unreachable!("an incident claims a root once at a time: {root}"),
                None => {
                    table.insert(root.to_owned(), incident);
                }
            }
        }
        Ok(Claim {
            held: self.held.clone(),
            root: root.to_owned(),
            incident,
        })
    }

    /// Roots held now, for tests.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.held.as_ref().map_or(0, |held| held.lock().unwrap().len())
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Some(held) = &self.held {
            let mut table = held.lock().expect("claims lock poisoned");
            let holder = table.remove(&self.root);
            debug_assert_eq!(holder, Some(self.incident), "a claim is held by its guard alone");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_root_has_one_holder_until_its_guard_drops() {
        let claims = Claims::shared();
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let held = claims.claim("postgres-primary", a).unwrap();
        assert_eq!(claims.claim("postgres-primary", b).err(), Some(a));
        let other = claims.claim("redis-cache", b).unwrap();
        assert_eq!(claims.len(), 2);
        drop(held);
        assert_eq!(claims.len(), 1);
        let _now_b = claims.claim("postgres-primary", b).unwrap();
        drop(other);
        assert_eq!(claims.len(), 1);
    }

    #[test]
    fn isolated_estates_never_collide() {
        let claims = Claims::isolated();
        let _a = claims.claim("postgres-primary", Uuid::from_u128(1)).unwrap();
        assert!(claims.claim("postgres-primary", Uuid::from_u128(2)).is_ok());
    }
}
