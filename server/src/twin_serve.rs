//! `antibody twin serve`: the simulated estate as a service of its own, a
//! thin HTTP edge over [`engine::twin_service::TwinService`].
//!
//! - `GET /metrics`: the twin's Prometheus exposition.
//! - `GET /api/estate`: services, configuration and config history.
//! - `GET /api/telemetry?samples=N`: each service's recent samples and
//!   baselines (what a server on `ANTIBODY_TWIN_URL` reads).
//! - `POST /api/faults`: inject a catalog scenario's faults, or faults given
//!   in full (tests and game days).
//! - `POST /api/actions`: apply an order once per `Idempotency-Key` (201;
//!   a repeat answers 200 with the first receipt and
//!   `Idempotent-Replayed: true`). `GET /api/actions/{id}`: its receipt.
//!   `POST /api/actions/{id}/undo`: take it back, once.
//! - `GET /healthz`.
//!
//! With a secret (`ANTIBODY_ACTUATOR_SECRET`) every order and undo must
//! carry a valid `Antibody-Signature`, as Antibody's actuator sends.

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use engine::{
    actuator::{SIGNATURE_HEADER, Signer},
    protocol::ActionOrder,
    twin_service::{FaultOrder, IdempotencyKey, OrderError, TwinService, UndoError},
};
use serde::de::DeserializeOwned;

use crate::{configuration::TwinServeArgs, problem::Problem};

/// The text exposition format's content type.
const EXPOSITION: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What every handler reaches.
#[derive(Clone)]
struct Twin {
    service: TwinService,
    /// Checks orders' signatures, when a secret is set.
    signer: Option<Signer>,
}

/// Serves the twin on `args.addr` until SIGINT or SIGTERM.
pub async fn run(args: TwinServeArgs) -> anyhow::Result<()> {
    let service = TwinService::new(args.seed, args.speed)?;
    let signer = args.secret.filter(|s| !s.is_empty()).map(Signer::new);
    if signer.is_none() {
        tracing::warn!("no ANTIBODY_ACTUATOR_SECRET: orders are applied unsigned");
    }
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    tracing::info!(addr = %listener.local_addr()?, speed = args.speed.factor(), "the twin serves");
    axum::serve(listener, router(service, signer))
        .with_graceful_shutdown(crate::startup::shutdown_signal())
        .await?;
    Ok(())
}

/// The twin's routes.
pub fn router(service: TwinService, signer: Option<Signer>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .route("/api/estate", get(estate))
        .route("/api/telemetry", get(telemetry))
        .route("/api/faults", post(faults))
        .route("/api/actions", post(act))
        .route("/api/actions/{id}", get(receipt))
        .route("/api/actions/{id}/undo", post(undo))
        .with_state(Twin { service, signer })
}

async fn metrics(State(twin): State<Twin>) -> Response {
    ([(header::CONTENT_TYPE, EXPOSITION)], twin.service.exposition()).into_response()
}

async fn estate(State(twin): State<Twin>) -> Response {
    Json(twin.service.estate()).into_response()
}

/// `?samples=N`: how many recent samples per service (1 to 600; 60 by default).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Window {
    #[serde(default = "default_samples")]
    samples: usize,
}

fn default_samples() -> usize {
    60
}

async fn telemetry(
    State(twin): State<Twin>,
    query: Result<axum::extract::Query<Window>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    let axum::extract::Query(window) = query.map_err(|r| Problem::query(&r, &["samples"]))?;
    if !(1..=engine::twin_service::MAX_SAMPLES).contains(&window.samples) {
        let reason = format!(
            "{} is not in [1, {}]",
            window.samples,
            engine::twin_service::MAX_SAMPLES
        );
        return Err(Problem::field(StatusCode::BAD_REQUEST, "samples", reason));
    }
    Ok(Json(twin.service.telemetry(window.samples)).into_response())
}

async fn faults(State(twin): State<Twin>, body: Bytes) -> Result<(StatusCode, Response), Problem> {
    let order: FaultOrder = parse(&body)?;
    let injected = twin.service.inject(order).map_err(|error| {
        use engine::twin_service::FaultError;
        let field = match &error {
            FaultError::Ambiguous => "scenario".to_owned(),
            FaultError::UnknownScenario { .. } => "scenario".to_owned(),
            FaultError::Invalid { index, .. } => format!("faults[{index}]"),
        };
        Problem::field(StatusCode::UNPROCESSABLE_ENTITY, field, error.to_string())
    })?;
    Ok((StatusCode::CREATED, Json(injected).into_response()))
}

async fn act(State(twin): State<Twin>, headers: HeaderMap, body: Bytes) -> Result<Response, Problem> {
    twin.check_signature(&headers, &body)?;
    let key = IdempotencyKey::parse(headers.get("idempotency-key").and_then(|v| v.to_str().ok()))
        .map_err(|e| Problem::field(StatusCode::BAD_REQUEST, "Idempotency-Key", e.to_string()))?;
    let order: ActionOrder = parse(&body)?;
    let acted = twin.service.act(key, order).map_err(|error| {
        let (status, field) = match &error {
            OrderError::UnknownService { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "remediation.target"),
            OrderError::Refused(_) => (StatusCode::UNPROCESSABLE_ENTITY, "remediation.kind"),
            OrderError::KeyReused(_) => (StatusCode::UNPROCESSABLE_ENTITY, "Idempotency-Key"),
        };
        Problem::field(status, field, error.to_string())
    })?;
    let status = if acted.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let mut response = (status, Json(acted.receipt)).into_response();
    if acted.replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", header::HeaderValue::from_static("true"));
    }
    Ok(response)
}

async fn receipt(State(twin): State<Twin>, Path(id): Path<String>) -> Result<Response, Problem> {
    match twin.service.receipt(&id) {
        Some(receipt) => Ok(Json(receipt).into_response()),
        None => Err(Problem::field(StatusCode::NOT_FOUND, "id", format!("no action `{id}`"))),
    }
}

async fn undo(
    State(twin): State<Twin>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    twin.check_signature(&headers, &body)?;
    match twin.service.undo(&id) {
        Ok(receipt) => Ok(Json(receipt).into_response()),
        Err(error @ UndoError::Unknown(_)) => Err(Problem::field(StatusCode::NOT_FOUND, "id", error.to_string())),
        Err(error @ UndoError::NotUndoable { .. }) => {
            Err(Problem::field(StatusCode::CONFLICT, "id", error.to_string()))
        }
    }
}

impl Twin {
    /// Refuses an unsigned or wrongly signed request when a secret is set.
    fn check_signature(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), Problem> {
        let Some(signer) = &self.signer else {
            return Ok(());
        };
        let header = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
        signer
            .verify(header, body, chrono::Utc::now().timestamp())
            .map_err(|e| Problem::field(StatusCode::UNAUTHORIZED, "Antibody-Signature", e.to_string()))
    }
}

/// A JSON body, its first bad field named: 400 when it is not JSON, 422
/// when it does not fit.
pub(crate) fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Problem> {
    // serde would also read a struct from an array of its fields in order.
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(Problem::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            "body",
            "must be a JSON object, not an array",
        ));
    }
    let mut json = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut json).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let status = if inner.is_data() {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::BAD_REQUEST
        };
        let field = if path == "." { "body".to_owned() } else { path };
        let reason = inner.to_string();
        let reason = reason.split(" at line ").next().unwrap_or(&reason).to_owned();
        Problem::field(status, field, reason)
    })
}
