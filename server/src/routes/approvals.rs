//! Governance over HTTP: `GET /api/approvals` (waiting and recently
//! decided), `GET /api/approvals/{id}`, `POST /api/approvals/{id}/decision`
//! (a person approves or rejects), `GET /api/audit` (the audit log, from the
//! store) and `GET /api/policy` (the rules in force).

use axum::{
    Json,
    extract::{
        Path, Query, State,
        rejection::{JsonRejection, PathRejection, QueryRejection},
    },
    http::StatusCode,
};
use engine::{
    Engine,
    governance::DecideError,
    protocol::{Approval, ApprovalState, AuditEntry},
    request::ApprovalDecisionBody,
};
use serde::Deserialize;
use store::{AuditFilter, Store};
use uuid::Uuid;

use super::history::page_size;
use crate::problem::Problem;

/// Largest page of audit entries.
const MAX_AUDIT_PAGE: u32 = 500;

/// `GET /api/approvals` parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ApprovalQuery {
    /// Only approvals in this state (`pending` for those waiting).
    state: Option<ApprovalState>,
}

/// Approvals waiting for a person, and the latest decided ones, newest
/// first.
#[utoipa::path(get, path = "/api/approvals", tag = "governance", params(ApprovalQuery), responses(
    (status = 200, description = "Approvals, newest first", body = Vec<Approval>),
    (status = 400, description = "A parameter is invalid; `field` names it", body = Problem, content_type = "application/problem+json"),
))]
pub async fn list(
    State(engine): State<Engine>,
    query: Result<Query<ApprovalQuery>, QueryRejection>,
) -> Result<Json<Vec<Approval>>, Problem> {
    let Query(query) = query.map_err(|r| Problem::query(&r, &["state"]))?;
    // Waiting ones from the registry, which knows at once when one is
    // decided; decided ones from the published events.
    let mut approvals = engine.approvals().pending();
    approvals.reverse();
    approvals.extend(
        engine
            .recent_approvals()
            .into_iter()
            .filter(|a| a.state != ApprovalState::Pending),
    );
    if let Some(state) = query.state {
        approvals.retain(|a| a.state == state);
    }
    Ok(Json(approvals))
}

fn approval_id(path: Result<Path<Uuid>, PathRejection>) -> Result<Uuid, Problem> {
    path.map(|Path(id)| id)
        .map_err(|r| Problem::field(StatusCode::BAD_REQUEST, "id", r.body_text()))
}

/// One approval, waiting or recently decided.
#[utoipa::path(get, path = "/api/approvals/{id}", tag = "governance",
    params(("id" = Uuid, Path, description = "The approval's id")),
    responses(
        (status = 200, description = "The approval", body = Approval),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such approval among the waiting and recent ones (the audit log has them all)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    State(engine): State<Engine>,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<Json<Approval>, Problem> {
    let id = approval_id(id)?;
    engine
        .approvals()
        .get(id)
        .or_else(|| engine.recent_approvals().into_iter().find(|a| a.approval_id == id))
        .map(Json)
        .ok_or_else(|| {
            Problem::field(
                StatusCode::NOT_FOUND,
                "id",
                format!("no recent approval {id}; see /api/audit?approval_id={id}"),
            )
        })
}

/// A person approves or rejects a plan waiting for them. The waiting
/// incident acts on it at once, and every dashboard sees the decision.
#[utoipa::path(post, path = "/api/approvals/{id}/decision", tag = "governance",
    params(("id" = Uuid, Path, description = "The approval's id")),
    request_body = ApprovalDecisionBody,
    responses(
        (status = 200, description = "Decided; the approval as it now stands (`approval_decided` follows on the stream)", body = Approval),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Operator mode, and no token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such approval", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already decided (by a person, the timeout or a shutdown)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON (Content-Type: application/json)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The body is invalid; `field` names what", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Several instances: the shared store could not record the decision; nothing was decided", body = Problem, content_type = "application/problem+json"),
    ),
    security((), ("operator" = [])))]
pub async fn decide(
    State(engine): State<Engine>,
    id: Result<Path<Uuid>, PathRejection>,
    body: Result<Json<ApprovalDecisionBody>, JsonRejection>,
) -> Result<Json<Approval>, Problem> {
    let id = approval_id(id)?;
    let Json(body) = body.map_err(|r| Problem::json(&r, &["decision", "approver", "comment"]))?;
    let decision = body
        .parse()
        .map_err(|e| Problem::field(StatusCode::UNPROCESSABLE_ENTITY, e.field, e.reason))?;
    engine
        .decide_approval(id, decision)
        .await
        .map(Json)
        .map_err(decide_problem)
}

/// A refused decision's problem, with the dashboard's statuses.
fn decide_problem(error: DecideError) -> Problem {
    let status = app::api::decide_refusal_status(&error);
    match error {
        DecideError::Unknown(_) => Problem::field(status, "id", error.to_string()),
        DecideError::AlreadyDecided { .. } | DecideError::Unavailable(_) => Problem::new(status, error.to_string()),
    }
}

/// `GET /api/audit` parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only this incident's decisions.
    incident_id: Option<Uuid>,
    /// Only this approval's request, escalations, decision and re-check.
    approval_id: Option<Uuid>,
    /// Only entries older than this `seq` (the last page's oldest), to page
    /// back.
    #[param(maximum = 9_223_372_036_854_775_807_i64)]
    before_seq: Option<u64>,
    /// Page size, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

/// The audit log: every policy decision and approval, who or what decided,
/// when, why, and on what evidence; newest first.
#[utoipa::path(get, path = "/api/audit", tag = "governance", params(AuditQuery), responses(
    (status = 200, description = "Audit entries, newest first", body = Vec<AuditEntry>),
    (status = 400, description = "A parameter is invalid; `field` names it", body = Problem, content_type = "application/problem+json"),
))]
pub async fn audit(
    State(engine): State<Engine>,
    State(store): State<Store>,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<Vec<AuditEntry>>, Problem> {
    let Query(query) = query.map_err(|r| Problem::query(&r, &["incident_id", "approval_id", "before_seq", "limit"]))?;
    let limit = page_size(query.limit, 100, MAX_AUDIT_PAGE)?;
    // What was published is in the store once the writer catches up.
    engine.flush().await;
    store
        .audit_log(&AuditFilter {
            incident_id: query.incident_id,
            approval_id: query.approval_id,
            before_seq: super::history::storable(query.before_seq, "before_seq")?,
            limit,
        })
        .await
        .map(Json)
        .map_err(|e| Problem::store(&e))
}

/// The governance policy in force: its rules in order, the default, and
/// how people are asked.
#[utoipa::path(get, path = "/api/policy", tag = "governance", responses(
    (status = 200, description = "The policy", body = Object),
))]
pub async fn policy(State(engine): State<Engine>) -> Json<serde_json::Value> {
    Json(engine.policy().describe())
}
