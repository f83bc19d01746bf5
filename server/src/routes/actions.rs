//! Actions out, the way back: `POST /api/actions/{id}/result`, where a
//! runbook system reports a step's outcome, signed like the order it got
//! (HMAC-SHA256 with `ANTIBODY_ACTUATOR_SECRET`, `Antibody-Signature`). The
//! result goes to the step waiting on action `{id}`, once: here, or (several
//! instances) through the shared store to the instance whose step waits.

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
};
use engine::{Engine, actuator::SIGNATURE_HEADER, protocol::ActionResult};

use crate::problem::Problem;

/// Hands a runbook system's result to the step waiting on it.
#[utoipa::path(post, path = "/api/actions/{id}/result", tag = "actions",
    params(("id" = String, Path, description = "The action's id: the order's `Idempotency-Key`")),
    request_body(content = ActionResult, description = "The outcome, signed in `Antibody-Signature` (`t={unix seconds},v1={hex HMAC-SHA256 of \"t.body\"}`)", content_type = "application/json"),
    responses(
        (status = 202, description = "Taken: the waiting step has its outcome"),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No signature, or one that does not match the body under the shared secret, or older than 5 minutes", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No step waits on this action (unknown, timed out, already answered), or this server sends no actions", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The result does not fit: `field` names it (`status` must be `succeeded` or `failed`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Several instances: the step waits on another instance, and the shared store could not record the result for it", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn result(
    State(engine): State<Engine>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, Problem> {
    let Some(actuator) = engine.actuator() else {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "this server sends no actions (no actuator is set)",
        ));
    };
    let Some(signer) = actuator.signer() else {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "this actuator learns no outcomes by callback (no ANTIBODY_ACTUATOR_SECRET)",
        ));
    };
    let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    signer
        .verify(signature, &body, chrono::Utc::now().timestamp())
        .map_err(|e| Problem::field(StatusCode::UNAUTHORIZED, "Antibody-Signature", e.to_string()))?;
    let result: ActionResult = crate::twin_serve::parse(&body)?;
    let Err(unknown) = actuator.callbacks().deliver(&id, result.clone()) else {
        return Ok(StatusCode::ACCEPTED);
    };
    // With several instances, the step may wait on another: its owner
    // takes the result from the shared store.
    if let Some(coordination) = engine.coordination() {
        match coordination.post_result(&id, &result).await {
            Ok(true) => return Ok(StatusCode::ACCEPTED),
            Ok(false) => {}
            Err(error) => {
                return Err(Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("the result could not be recorded for the instance whose step waits: {error}"),
                ));
            }
        }
    }
    Err(Problem::field(StatusCode::NOT_FOUND, "id", unknown.to_string()))
}
