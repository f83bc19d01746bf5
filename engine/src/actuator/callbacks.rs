//! Results that runbook systems POST back (`POST /api/actions/{id}/result`),
//! routed to the step waiting on them. A step registers before its order
//! leaves, so a result that beats the order's answer still finds it; the
//! registration ends when the step stops waiting (its guard drops), and a
//! result after that is refused as unknown. With several instances, a
//! result may reach another one than the step's: each wait is also
//! registered in the shared store, where that instance records the result
//! for the step's owner to take (`Engine`'s coordination loop).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use tokio::sync::oneshot;

use crate::protocol::ActionResult;

/// A cheap-to-clone handle to the steps waiting for results.
#[derive(Clone, Default)]
pub struct Callbacks {
    waiting: Arc<Mutex<HashMap<String, oneshot::Sender<ActionResult>>>>,
    /// The store other instances share, once set: where waits are
    /// registered and results from elsewhere arrive.
    shared: Arc<std::sync::OnceLock<Arc<dyn crate::cluster::Coordination>>>,
}

/// A result for an action no step waits on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no step waits for a result of action `{0}` (unknown, or it already timed out)")]
pub struct UnknownAction(pub String);

/// One step's wait for its result; deregisters on drop.
pub struct Awaited {
    id: String,
    callbacks: Callbacks,
    /// Taken by the wait.
    receiver: Option<oneshot::Receiver<ActionResult>>,
}

impl Callbacks {
    /// Registers a wait for action `id`'s result.
    pub fn expect(&self, id: &str) -> Awaited {
        let (sender, receiver) = oneshot::channel();
        let replaced = self.lock().insert(id.to_owned(), sender);
        assert!(replaced.is_none(), "one step at a time waits on action {id}");
        Awaited {
            id: id.to_owned(),
            callbacks: self.clone(),
            receiver: Some(receiver),
        }
    }

    /// Hands `result` to the step waiting on action `id`: once, since the
    /// wait ends with the first result.
    pub fn deliver(&self, id: &str, result: ActionResult) -> Result<(), UnknownAction> {
        let sender = self.lock().remove(id).ok_or_else(|| UnknownAction(id.to_owned()))?;
        sender.send(result).map_err(|_| UnknownAction(id.to_owned()))
    }

    /// Registers every later wait in the store other instances share.
    pub fn share(&self, coordination: Arc<dyn crate::cluster::Coordination>) {
        let _ = self.shared.set(coordination);
    }

    /// Registers the wait for action `id` where other instances see it,
    /// before its order leaves (with several instances; nothing alone).
    pub async fn announce(&self, id: &str) {
        if let Some(shared) = self.shared.get()
            && let Err(error) = shared.expect_result(id).await
        {
            tracing::warn!(%error, id, "could not register a step's wait in the shared store; only this instance can take its result");
        }
    }

    /// The actions whose results steps here wait for.
    pub fn awaited(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<ActionResult>>> {
        self.waiting.lock().expect("callbacks lock poisoned")
    }
}

impl Awaited {
    /// The result, once delivered (`None` if the registration went away).
    pub async fn result(&mut self) -> Option<ActionResult> {
        self.receiver.take()?.await.ok()
    }
}

impl Drop for Awaited {
    fn drop(&mut self) {
        self.callbacks.lock().remove(&self.id);
        if let (Some(shared), Ok(runtime)) = (self.callbacks.shared.get(), tokio::runtime::Handle::try_current()) {
            let (shared, id) = (Arc::clone(shared), self.id.clone());
            runtime.spawn(async move {
                let _ = shared.forget_result(&id).await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::FinalOutcome;

    fn ok() -> ActionResult {
        ActionResult {
            status: FinalOutcome::Succeeded,
            detail: None,
        }
    }

    #[tokio::test]
    async fn a_result_reaches_its_step_once() {
        let callbacks = Callbacks::default();
        let mut awaited = callbacks.expect("a");
        assert_eq!(callbacks.deliver("a", ok()), Ok(()));
        assert_eq!(callbacks.deliver("a", ok()), Err(UnknownAction("a".into())));
        assert_eq!(awaited.result().await, Some(ok()));
    }

    #[test]
    fn a_result_after_the_wait_ended_is_unknown() {
        let callbacks = Callbacks::default();
        drop(callbacks.expect("a"));
        assert_eq!(callbacks.deliver("a", ok()), Err(UnknownAction("a".into())));
        assert_eq!(callbacks.deliver("b", ok()), Err(UnknownAction("b".into())));
    }
}
