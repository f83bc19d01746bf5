//! Errors as RFC 9457 problem details (`application/problem+json`), with
//! `field` and `reason` members when one input is to blame.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

/// A problem-details body.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// `about:blank`: the status says what kind of problem it is.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The status's reason phrase.
    pub title: &'static str,
    /// The HTTP status, repeated in the body.
    pub status: u16,
    /// What went wrong, for people.
    pub detail: Box<str>,
    /// The offending input, as a JSON path (`affected_services[2]`) or a
    /// parameter name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Why that input was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Every problem, when there are several (a timeline file's).
    // Boxed: a problem travels in every handler's `Err`, so it stays small.
    #[serde(skip_serializing_if = "<[FieldIssue]>::is_empty")]
    pub errors: Box<[FieldIssue]>,
}

/// One of several problems: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FieldIssue {
    /// The field or JSON path, as in `incidents[2].scenario_id`.
    pub field: String,
    /// What is wrong, and what would be right.
    pub reason: String,
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: detail.into().into_boxed_str(),
            field: None,
            reason: None,
            errors: Box::default(),
        }
    }

    /// Several problems at once; `field` and `reason` name the first.
    pub fn many(status: StatusCode, detail: impl Into<String>, errors: Vec<FieldIssue>) -> Self {
        Self {
            field: errors.first().map(|e| e.field.clone()),
            reason: errors.first().map(|e| e.reason.clone()),
            errors: errors.into_boxed_slice(),
            ..Self::new(status, detail)
        }
    }

    /// A problem with one input: `detail` reads `field: reason`.
    pub fn field(status: StatusCode, field: impl Into<String>, reason: impl Into<String>) -> Self {
        let (field, reason) = (field.into(), reason.into());
        Self {
            field: Some(field.clone()),
            reason: Some(reason.clone()),
            ..Self::new(status, format!("{field}: {reason}"))
        }
    }
}

impl Problem {
    /// A query string that did not parse, blamed on the first of `fields`
    /// the parser's message names (or on `query`).
    pub fn query(rejection: &axum::extract::rejection::QueryRejection, fields: &[&str]) -> Self {
        let text = rejection.body_text();
        let text = text
            .strip_prefix("Failed to deserialize query string: ")
            .unwrap_or(&text);
        let (field, reason) = blame(text, fields, "query");
        Self::field(StatusCode::BAD_REQUEST, field, reason)
    }

    /// A JSON body that did not parse or fit, blamed on the field the
    /// parser names (or on `body`).
    pub fn json(rejection: &axum::extract::rejection::JsonRejection, fields: &[&str]) -> Self {
        let text = rejection.body_text();
        let text = text
            .strip_prefix("Failed to deserialize the JSON body into the target type: ")
            .or_else(|| text.strip_prefix("Failed to parse the request body as JSON: "))
            .unwrap_or(&text);
        let (field, reason) = blame(text, fields, "body");
        let reason = match reason.rfind(" at line ") {
            Some(i) => &reason[..i],
            None => reason,
        };
        Self::field(rejection.status(), field, reason)
    }

    /// The store failed: a 503, since the cause is outside the request.
    pub fn store(error: &store::StoreError) -> Self {
        tracing::error!(%error, "the store failed a read");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the event store is unavailable; retry shortly",
        )
    }
}

/// serde's messages read `path: reason` when they know the path. The path
/// is the field to blame (an unknown key names itself); otherwise the first
/// known field the message mentions, or `fallback`.
fn blame<'a>(text: &'a str, fields: &[&'a str], fallback: &'a str) -> (&'a str, &'a str) {
    if let Some((path, reason)) = text.split_once(": ")
        && !path.is_empty()
        && path.chars().all(|c| c.is_ascii_alphanumeric() || "_.[]".contains(c))
    {
        return (path, reason);
    }
    let field = fields.iter().find(|f| text.contains(**f)).copied().unwrap_or(fallback);
    (field, text)
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(self)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}
