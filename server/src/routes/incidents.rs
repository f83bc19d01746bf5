//! `POST /api/incidents`: opens an incident from seed 000's body
//! `{title, severity, affected_services}` plus an optional `scenario_id`.

use axum::{
    body::Bytes,
    extract::{State, rejection::BytesRejection},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use engine::{
    Engine, SubmitError,
    protocol::Incident,
    request::{FieldError, NewIncident},
};

use crate::problem::Problem;

/// Largest accepted body, in bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Every way creating an incident can fail.
#[derive(Debug, thiserror::Error)]
pub enum CreateIncidentError {
    #[error("the body must be JSON (Content-Type: application/json)")]
    NotJson,
    #[error("the body is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("the body could not be read: {0}")]
    Unreadable(String),
    #[error("the body is not valid JSON: {0}")]
    Malformed(String),
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error(transparent)]
    Refused(#[from] SubmitError),
}

/// The engine's refusals: an unknown scenario is the request's fault (422);
/// at capacity is backpressure (429, with Retry-After); shutting down is
/// the server's state (503).
pub fn refusal(error: SubmitError) -> Response {
    let detail = error.to_string();
    let status = StatusCode::from_u16(error.http_status()).expect("refusal statuses are valid");
    let mut response = match error {
        SubmitError::UnknownScenario { .. } => Problem::field(status, "scenario_id", detail),
        _ => Problem::new(status, detail),
    }
    .into_response();
    if let Some(wait) = error.retry_after() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, wait.as_secs().into());
    }
    response
}

impl IntoResponse for CreateIncidentError {
    fn into_response(self) -> Response {
        let detail = self.to_string();
        match self {
            Self::NotJson => Problem::field(StatusCode::UNSUPPORTED_MEDIA_TYPE, "content-type", detail),
            Self::TooLarge => Problem::field(StatusCode::PAYLOAD_TOO_LARGE, "body", detail),
            Self::Unreadable(_) | Self::Malformed(_) => Problem::field(StatusCode::BAD_REQUEST, "body", detail),
            Self::Invalid(e) => Problem::field(StatusCode::UNPROCESSABLE_ENTITY, e.field, e.reason),
            Self::Refused(error) => return refusal(error),
        }
        .into_response()
    }
}

/// Opens an incident (seed 000's body, plus an optional `scenario_id`).
#[utoipa::path(post, path = "/api/incidents", tag = "incidents",
    request_body(content = engine::request::NewIncident, content_type = "application/json"),
    responses(
        (status = 201, description = "Opened; answered once its `incident_created` event is stored", body = Incident,
            headers(("Location" = String, description = "The incident's address, as in `/api/incidents/{id}`"))),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Operator mode, and no token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Operator mode, and a wrong token", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over 16 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not `application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is invalid; `field` and `reason` say which and why", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "At capacity, or rate limited; see Retry-After", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Shutting down, or the event log stopped publishing: nothing is opened", body = Problem, content_type = "application/problem+json"),
    ),
    security((), ("operator" = [])))]
pub async fn create_incident(
    State(engine): State<Engine>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<super::Created<Incident>, CreateIncidentError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
        .unwrap_or(false);
    if !is_json {
        return Err(CreateIncidentError::NotJson);
    }
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => CreateIncidentError::TooLarge,
        _ => CreateIncidentError::Unreadable(rejection.body_text()),
    })?;
    let request = parse_body(&body)?.parse()?;
    let incident = engine.open_incident(request)?;
    // Acknowledged only once its `incident_created` event is stored.
    engine.stored().await?;
    Ok(super::created(format!("/api/incidents/{}", incident.id), incident))
}

/// Deserializes the body, naming the field at fault when the JSON is well
/// formed but does not fit the schema.
fn parse_body(body: &[u8]) -> Result<NewIncident, CreateIncidentError> {
    // serde would read a struct from an array, by position; require an object.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
            Ok(_) => CreateIncidentError::Invalid(FieldError::new("body", "must be a JSON object")),
            Err(e) => CreateIncidentError::Malformed(e.to_string()),
        });
    }
    let deserializer = &mut serde_json::Deserializer::from_slice(body);
    let parsed: NewIncident = serde_path_to_error::deserialize(&mut *deserializer).map_err(|e| {
        let inner = e.inner();
        if inner.is_syntax() || inner.is_eof() || inner.is_io() {
            return CreateIncidentError::Malformed(inner.to_string());
        }
        let reason = inner.to_string();
        let path = e.path().to_string();
        // Missing and unknown fields are reported against the object that
        // should (not) hold them; name the field itself.
        let field = if path == "." {
            backticked(&reason).unwrap_or_else(|| "body".to_owned())
        } else {
            path
        };
        CreateIncidentError::Invalid(FieldError::new(field, strip_position(&reason)))
    })?;
    deserializer
        .end()
        .map_err(|e| CreateIncidentError::Malformed(e.to_string()))?;
    Ok(parsed)
}

/// The first `quoted` word in a serde message, as in "missing field `title`".
fn backticked(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_owned())
}

/// serde_json appends " at line 1 column 42"; the field already says where.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(body: &str) -> (String, String) {
        match parse_body(body.as_bytes()).and_then(|b| b.parse().map_err(Into::into)) {
            Err(CreateIncidentError::Invalid(e)) => (e.field, e.reason),
            other => panic!("{body}: expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn schema_errors_name_the_field() {
        let (field, reason) = field_of(r#"{"title":"t","severity":"urgent","affected_services":["a"]}"#);
        assert_eq!(field, "severity");
        assert!(reason.contains("urgent") && !reason.contains("line"), "{reason}");
        assert_eq!(field_of(r#"{"severity":"low","affected_services":["a"]}"#).0, "title");
        assert_eq!(
            field_of(r#"{"title":"t","severity":"low","affected_services":["a"],"x":1}"#).0,
            "x"
        );
        assert_eq!(
            field_of(r#"{"title":"t","severity":"low","affected_services":[1]}"#).0,
            "affected_services[0]"
        );
        assert_eq!(
            field_of(r#"{"title":5,"severity":"low","affected_services":["a"]}"#).0,
            "title"
        );
        assert_eq!(field_of("[]").0, "body");
    }

    #[test]
    fn broken_json_is_malformed() {
        let trailing = r#"{"title":"t","severity":"low","affected_services":["a"]} x"#;
        for body in ["", "{", "{\"title\":", "not json", trailing] {
            assert!(
                matches!(parse_body(body.as_bytes()), Err(CreateIncidentError::Malformed(_))),
                "{body:?}"
            );
        }
    }
}
