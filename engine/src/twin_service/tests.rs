use super::*;
use crate::protocol::{ActionKind, Remediation};

fn service() -> TwinService {
    TwinService::new(7, Speed::new(1.0).unwrap()).unwrap()
}

fn order(kind: ActionKind, target: &str) -> ActionOrder {
    ActionOrder::of(Remediation {
        kind,
        target: target.into(),
    })
}

fn key(raw: &str) -> IdempotencyKey {
    IdempotencyKey::parse(Some(raw)).unwrap()
}

fn pool_size(twin: &TwinService) -> u32 {
    twin.estate().config["postgres-primary"].pool_size
}

#[test]
fn the_same_key_is_applied_once_and_answered_with_the_first_receipt() {
    let twin = service();
    let before = pool_size(&twin);
    let first = twin
        .act(key("k-1"), order(ActionKind::ScaleConnectionPool, "postgres-primary"))
        .unwrap();
    assert!(!first.replayed);
    assert_eq!(first.receipt.status, ActionOutcome::Succeeded);
    let scaled = pool_size(&twin);
    assert!(scaled > before, "the pool grew: {before} -> {scaled}");
    let history = twin.estate().config_history.len();

    let again = twin
        .act(key("k-1"), order(ActionKind::ScaleConnectionPool, "postgres-primary"))
        .unwrap();
    assert!(again.replayed);
    assert_eq!(again.receipt, first.receipt);
    assert_eq!(pool_size(&twin), scaled, "not scaled twice");
    assert_eq!(twin.estate().config_history.len(), history);

    let other = twin
        .act(key("k-2"), order(ActionKind::ScaleConnectionPool, "postgres-primary"))
        .unwrap();
    assert_ne!(other.receipt.id, first.receipt.id);
    assert!(pool_size(&twin) > scaled, "a new key is a new action");
}

#[test]
fn a_key_reused_for_another_order_is_refused() {
    let twin = service();
    twin.act(key("k"), order(ActionKind::RestartInstances, "payment-service"))
        .unwrap();
    let error = twin
        .act(key("k"), order(ActionKind::RestartInstances, "order-service"))
        .unwrap_err();
    assert_eq!(error, OrderError::KeyReused("k".into()));
}

#[test]
fn orders_are_checked_before_anything_is_applied() {
    let twin = service();
    let error = twin
        .act(key("a"), order(ActionKind::RestartInstances, "postgres-primari"))
        .unwrap_err();
    assert!(error.to_string().contains("did you mean `postgres-primary`"), "{error}");
    let error = twin
        .act(key("b"), order(ActionKind::TriggerRetraining, "postgres-primary"))
        .unwrap_err();
    assert!(matches!(error, OrderError::Refused(_)), "{error:?}");
    assert!(twin.receipt("act-1").is_none(), "nothing was recorded");
}

#[test]
fn an_action_is_undone_once() {
    let twin = service();
    let before = pool_size(&twin);
    let acted = twin
        .act(key("k"), order(ActionKind::ScaleConnectionPool, "postgres-primary"))
        .unwrap();
    let undone = twin.undo(&acted.receipt.id).unwrap();
    assert_eq!(undone.status, ActionOutcome::Undone);
    assert_eq!(pool_size(&twin), before);
    let history = twin.estate().config_history.len();
    assert_eq!(twin.undo(&acted.receipt.id).unwrap(), undone);
    assert_eq!(twin.estate().config_history.len(), history, "undone once");
    assert_eq!(twin.receipt(&acted.receipt.id).unwrap().status, ActionOutcome::Undone);
    assert_eq!(twin.undo("act-99"), Err(UndoError::Unknown("act-99".into())));
}

#[test]
fn a_scenario_injects_its_faults_and_not_twice() {
    let twin = service();
    let order = FaultOrder {
        scenario: Some("database_cascade".into()),
        faults: Vec::new(),
    };
    let first = twin.inject(order.clone()).unwrap();
    assert!(!first.injected.is_empty());
    let second = twin.inject(order).unwrap();
    assert!(second.injected.is_empty());
    assert_eq!(second.already_active.len(), first.injected.len());
}

#[test]
fn faults_are_checked_all_or_none() {
    let twin = service();
    let error = twin
        .inject(FaultOrder {
            scenario: Some("database_cascad".into()),
            faults: Vec::new(),
        })
        .unwrap_err();
    assert!(error.to_string().contains("did you mean `database_cascade`"), "{error}");
    assert_eq!(twin.inject(FaultOrder::default()).unwrap_err(), FaultError::Ambiguous);
    let good = twin.inject(FaultOrder {
        scenario: Some("database_cascade".into()),
        faults: Vec::new(),
    });
    let faults = good.unwrap().injected;
    let mut bad = faults[0].clone();
    bad.target = "nowhere".into();
    let fresh = service();
    let error = fresh
        .inject(FaultOrder {
            scenario: None,
            faults: vec![faults[0].clone(), bad],
        })
        .unwrap_err();
    assert!(matches!(error, FaultError::Invalid { index: 1, .. }), "{error:?}");
    assert!(
        fresh
            .inject(FaultOrder {
                scenario: None,
                faults: vec![faults[0].clone()]
            })
            .unwrap()
            .already_active
            .is_empty(),
        "the good fault of the refused order was not injected"
    );
}

#[test]
fn keys_are_checked() {
    assert_eq!(IdempotencyKey::parse(None), Err(KeyError::Missing));
    assert_eq!(IdempotencyKey::parse(Some("")), Err(KeyError::Malformed));
    assert_eq!(IdempotencyKey::parse(Some("a b")), Err(KeyError::Malformed));
    assert_eq!(IdempotencyKey::parse(Some(&"k".repeat(256))), Err(KeyError::Malformed));
    assert!(IdempotencyKey::parse(Some("7f0c-step-1")).is_ok());
}
