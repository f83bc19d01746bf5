//! The HTTP actuator against stub receivers on `127.0.0.1:0`: each
//! delivery is recorded with its key and checked signature, so a test can
//! say how often an order arrived and how often it was applied.

use std::{
    collections::HashSet,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    routing::{get, post},
};
use serde_json::json;

use super::*;
use crate::protocol::{ActionKind, ActionOutcome, ActionResult, FinalOutcome, Remediation};

const SECRET: &str = "test-secret";

/// What a stub receiver does with each delivery.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Applies and answers `succeeded`.
    Apply,
    /// Answers 503 to the first `n` deliveries, then applies.
    FailFirst(u32),
    /// Always 503.
    Down,
    /// Answers 422.
    Refuse,
    /// Never answers in time.
    Hang,
    /// Accepts (202, no status): the outcome comes by callback.
    Accept,
    /// Answers a Rundeck-style execution, `running`, to be polled.
    Running,
}

#[derive(Clone)]
struct Stub {
    behaviour: Behaviour,
    deliveries: Arc<AtomicU32>,
    /// Keys applied: an order is applied once per key.
    applied: Arc<Mutex<Vec<String>>>,
    polls: Arc<AtomicU32>,
}

async fn order(State(stub): State<Stub>, headers: HeaderMap, body: Bytes) -> (StatusCode, Json<serde_json::Value>) {
    let n = stub.deliveries.fetch_add(1, Ordering::SeqCst) + 1;
    let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    let now = chrono::Utc::now().timestamp();
    if Signer::new(SECRET).verify(signature, &body, now).is_err() {
        return (StatusCode::UNAUTHORIZED, Json(json!({"detail": "bad signature"})));
    }
    let key = headers["idempotency-key"].to_str().unwrap().to_owned();
    let apply = |stub: &Stub| {
        let mut applied = stub.applied.lock().unwrap();
        if !applied.contains(&key) {
            applied.push(key.clone());
        }
    };
    match stub.behaviour {
        Behaviour::Apply => apply(&stub),
        Behaviour::FailFirst(k) if n > k => apply(&stub),
        Behaviour::FailFirst(_) | Behaviour::Down => {
            return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"detail": "busy"})));
        }
        Behaviour::Refuse => return (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({"detail": "no such job"}))),
        Behaviour::Hang => tokio::time::sleep(Duration::from_secs(30)).await,
        Behaviour::Accept => return (StatusCode::ACCEPTED, Json(json!({"accepted": true}))),
        Behaviour::Running => return (StatusCode::OK, Json(json!({"id": 77, "status": "running"}))),
    }
    let status = "succeeded";
    (
        StatusCode::CREATED,
        Json(json!({"id": format!("r-{key}"), "status": status})),
    )
}

async fn execution(State(stub): State<Stub>, Path(id): Path<String>) -> Json<serde_json::Value> {
    let polls = stub.polls.fetch_add(1, Ordering::SeqCst) + 1;
    let status = if polls < 3 { "running" } else { "succeeded" };
    Json(json!({"id": id, "status": status}))
}

async fn undo(Path(id): Path<String>) -> Json<serde_json::Value> {
    Json(json!({"id": id, "status": "undone"}))
}

async fn stub(behaviour: Behaviour) -> (Stub, reqwest::Url) {
    let stub = Stub {
        behaviour,
        deliveries: Arc::default(),
        applied: Arc::default(),
        polls: Arc::default(),
    };
    let app = Router::new()
        .route("/orders", post(order))
        .route("/executions/{id}", get(execution))
        .route("/orders/{id}/undo", post(undo))
        .with_state(stub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap()).parse().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (stub, url)
}

fn actuator(base: reqwest::Url, outcome: &str, timeout: u64) -> HttpActuator {
    let map = ActuatorMap::parse(&format!(
        "name = \"stub\"\nurl = \"$base/orders\"\noutcome = \"{outcome}\"\n\
         status_url = \"$base/executions/$receipt\"\nundo_url = \"$base/orders/$receipt/undo\"\n\
         timeout_seconds = {timeout}\nattempts = 4\npoll_seconds = 0.1\n\
         [parameters.restart_instances]\nservice = \"$target\"\n"
    ))
    .unwrap();
    HttpActuator::new(HttpSettings {
        map,
        base,
        signer: Some(Signer::new(SECRET)),
        public_url: Some("http://antibody.example:3000".parse().unwrap()),
    })
}

fn request(actuator: &HttpActuator, key: &str) -> crate::protocol::ActuatorRequest {
    let order = crate::protocol::ActionOrder::of(Remediation {
        kind: ActionKind::RestartInstances,
        target: "payment-service".into(),
    });
    actuator.plan(order, key)
}

#[tokio::test]
async fn the_plan_is_the_exact_request() {
    let (_, base) = stub(Behaviour::Apply).await;
    let actuator = actuator(base.clone(), "callback", 5);
    let plan = request(&actuator, "k-1");
    assert_eq!(plan.method, "POST");
    assert_eq!(plan.url, format!("{}orders", base));
    assert_eq!(plan.body.parameters, json!({"service": "payment-service"}));
    assert_eq!(
        plan.body.callback_url.as_deref(),
        Some("http://antibody.example:3000/api/actions/k-1/result")
    );
}

#[tokio::test]
async fn an_answered_order_is_delivered_once_and_signed() {
    let (stub, base) = stub(Behaviour::Apply).await;
    let actuator = actuator(base, "response", 5);
    let delivery = actuator.execute(&request(&actuator, "k-1")).await;
    assert_eq!(delivery.failure, None);
    assert_eq!(delivery.attempts, 1);
    let receipt = delivery.receipt.unwrap();
    assert_eq!(receipt.status, ActionOutcome::Succeeded);
    assert_eq!(receipt.id, "r-k-1");
    assert_eq!(*stub.applied.lock().unwrap(), ["k-1"]);
}

#[tokio::test]
async fn a_busy_receiver_is_retried_with_the_same_key_and_applies_once() {
    let (stub, base) = stub(Behaviour::FailFirst(2)).await;
    let actuator = actuator(base, "response", 30);
    let delivery = actuator.execute(&request(&actuator, "k-2")).await;
    assert_eq!(delivery.failure, None, "{delivery:?}");
    assert_eq!(delivery.attempts, 3);
    assert_eq!(stub.deliveries.load(Ordering::SeqCst), 3);
    assert_eq!(*stub.applied.lock().unwrap(), ["k-2"]);
}

#[tokio::test]
async fn a_receiver_that_stays_down_fails_the_step_after_its_attempts() {
    let (stub, base) = stub(Behaviour::Down).await;
    let actuator = actuator(base, "response", 60);
    let delivery = actuator.execute(&request(&actuator, "k-3")).await;
    let failure = delivery.failure.unwrap();
    assert!(
        failure.contains("503") && failure.contains("after 4 attempt(s)"),
        "{failure}"
    );
    assert_eq!(stub.deliveries.load(Ordering::SeqCst), 4);
    assert!(stub.applied.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_refusal_is_not_retried() {
    let (stub, base) = stub(Behaviour::Refuse).await;
    let actuator = actuator(base, "response", 30);
    let delivery = actuator.execute(&request(&actuator, "k-4")).await;
    let failure = delivery.failure.unwrap();
    assert!(failure.contains("422") && failure.contains("no such job"), "{failure}");
    assert_eq!(stub.deliveries.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_receiver_that_never_answers_fails_the_step_at_its_timeout() {
    let (_, base) = stub(Behaviour::Hang).await;
    let actuator = actuator(base, "response", 1);
    let delivery = actuator.execute(&request(&actuator, "k-5")).await;
    let failure = delivery.failure.unwrap();
    assert!(failure.contains("did not answer in time"), "{failure}");
}

#[tokio::test]
async fn a_callback_carries_the_outcome() {
    let (_, base) = stub(Behaviour::Accept).await;
    let actuator = actuator(base, "callback", 5);
    let callbacks = actuator.callbacks().clone();
    let deliver = async {
        // The result arrives while the step waits.
        loop {
            let result = ActionResult {
                status: FinalOutcome::Failed,
                detail: Some("disk full".into()),
            };
            if callbacks.deliver("k-6", result).is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let plan = request(&actuator, "k-6");
    let (delivery, ()) = tokio::join!(actuator.execute(&plan), deliver);
    let receipt = delivery.receipt.unwrap();
    assert_eq!(receipt.status, ActionOutcome::Failed);
    assert!(delivery.failure.unwrap().contains("disk full"));
    assert_eq!(
        callbacks.deliver(
            "k-6",
            ActionResult {
                status: FinalOutcome::Succeeded,
                detail: None
            }
        ),
        Err(UnknownAction("k-6".into())),
        "the wait is over: a second result is unknown"
    );
}

#[tokio::test]
async fn no_callback_before_the_timeout_fails_the_step() {
    let (_, base) = stub(Behaviour::Accept).await;
    let actuator = actuator(base, "callback", 1);
    let delivery = actuator.execute(&request(&actuator, "k-7")).await;
    assert!(
        delivery
            .failure
            .unwrap()
            .contains("no outcome from the stub within the step's 1 s")
    );
    assert_eq!(delivery.receipt.unwrap().status, ActionOutcome::Pending);
}

#[tokio::test]
async fn a_polled_execution_is_read_until_final() {
    let (stub, base) = stub(Behaviour::Running).await;
    let actuator = actuator(base, "poll", 10);
    let delivery = actuator.execute(&request(&actuator, "k-8")).await;
    assert_eq!(delivery.failure, None);
    let receipt = delivery.receipt.unwrap();
    assert_eq!((receipt.id.as_str(), receipt.status), ("77", ActionOutcome::Succeeded));
    assert_eq!(stub.polls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn an_undo_goes_to_the_undo_url_with_its_own_key() {
    let (_, base) = stub(Behaviour::Apply).await;
    let actuator = actuator(base, "response", 5);
    let plan = request(&actuator, "k-9");
    let receipt = actuator.execute(&plan).await.receipt.unwrap();
    let undone = actuator.undo(&receipt, &plan).await.unwrap();
    assert_eq!(undone.status, ActionOutcome::Undone);
    assert_eq!(undone.idempotency_key, "k-9-undo");
    let keys: HashSet<_> = [receipt.idempotency_key, undone.idempotency_key].into();
    assert_eq!(keys.len(), 2);
}
