//! Alerts in: `POST /api/alerts/alertmanager` takes Alertmanager's webhook
//! (and Grafana's), and `POST /api/alerts/pagerduty` PagerDuty's Events API
//! v2 shape, behind the intake's own token. The reply is 202 once the
//! incidents it opens are stored; the swarm works on them afterwards, so
//! the sender never waits on it.

use axum::{
    Json,
    extract::{State, rejection::JsonRejection},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use base64::Engine as _;
use engine::{
    AlertReceipt, Engine,
    intake::{
        alertmanager::Webhook,
        pagerduty::{Action, Event},
    },
};

use crate::{problem::Problem, routes::incidents::refusal};

/// Largest delivery accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The intake's token; without one, every delivery is refused. Cheap to
/// clone.
#[derive(Clone, Default)]
pub struct IntakeGate {
    /// `None`: the intake is off.
    token: Option<app::operator::OperatorGate>,
}

impl IntakeGate {
    pub fn new(token: Option<String>) -> Self {
        let token = token.filter(|t| !t.is_empty());
        Self {
            token: token.map(|t| app::operator::OperatorGate::new(Some(t))),
        }
    }

    /// Whether `key` (a PagerDuty-style `routing_key`) is the token: for
    /// senders that can set no header.
    fn accepts_key(&self, key: &str) -> bool {
        self.token.as_ref().is_some_and(|gate| gate.accepts(key.trim()))
    }

    /// Whether the request carries the token, as a bearer or as the
    /// password of basic auth (any user name).
    fn check(&self, headers: &HeaderMap) -> Result<(), (StatusCode, &'static str)> {
        let Some(gate) = &self.token else {
            return Err((
                StatusCode::UNAUTHORIZED,
                "the alert intake is off: start the server with ANTIBODY_INTAKE_TOKEN, and send it as a bearer token",
            ));
        };
        let presented = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let candidate = match presented.and_then(|v| v.split_once(' ')) {
            Some(("Bearer", token)) => Some(token.trim().to_owned()),
            Some(("Basic", encoded)) => base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()
                .and_then(|raw| String::from_utf8(raw).ok())
                .and_then(|pair| pair.split_once(':').map(|(_, password)| password.to_owned())),
            _ => None,
        };
        match candidate {
            None => Err((
                StatusCode::UNAUTHORIZED,
                "send the intake token: `Authorization: Bearer <token>`, or basic auth with it as the password",
            )),
            Some(token) if gate.accepts(&token) => Ok(()),
            Some(_) => Err((StatusCode::FORBIDDEN, "the intake token is wrong")),
        }
    }
}

fn denied((status, reason): (StatusCode, &str)) -> Response {
    let mut response = Problem::field(status, "authorization", reason).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer, Basic realm=\"antibody alert intake\""),
        );
    }
    response
}

/// Takes one delivery: each alert is placed on an open incident it belongs
/// to, or opens one with the related alerts of its delivery.
#[utoipa::path(post, path = "/api/alerts/alertmanager", tag = "alerts",
    request_body(content = Webhook, description = "Alertmanager's webhook payload, version 4 (Grafana's extra fields are ignored)", content_type = "application/json"),
    responses(
        (status = 202, description = "Taken: the incidents it opened are stored", body = AlertReceipt),
        (status = 400, description = "The body is not JSON, or a field has the wrong type; `field` says where", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No intake token (or the intake is off)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A wrong intake token", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Larger than 1 MiB"),
        (status = 415, description = "The body is not JSON (Content-Type: application/json)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An alert is invalid: `field` names it, as in `alerts[2].labels.service`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many incidents open at once", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Shutting down, or the event log stopped publishing", body = Problem, content_type = "application/problem+json"),
    ),
    security(("intake" = [])))]
pub async fn alertmanager(
    State(engine): State<Engine>,
    State(gate): State<IntakeGate>,
    headers: HeaderMap,
    body: Result<Json<Webhook>, JsonRejection>,
) -> Result<(StatusCode, Json<AlertReceipt>), Response> {
    gate.check(&headers).map_err(denied)?;
    let Json(webhook) = body.map_err(|r| Problem::json(&r, &["version", "alerts"]).into_response())?;
    let alerts = webhook.parse(engine.topology()).map_err(invalid)?;
    Ok((StatusCode::ACCEPTED, Json(take(&engine, &alerts).await?)))
}

/// A checked sender's alerts placed, once what they opened is stored.
async fn take(engine: &Engine, alerts: &[engine::intake::Alert]) -> Result<AlertReceipt, Response> {
    let receipt = engine.receive_alerts(alerts).map_err(refusal)?;
    engine.stored().await.map_err(refusal)?;
    Ok(receipt)
}

/// A delivery with a bad field: 422 naming it.
fn invalid(error: engine::request::FieldError) -> Response {
    Problem::field(StatusCode::UNPROCESSABLE_ENTITY, error.field, error.reason).into_response()
}

/// What a PagerDuty-style sender is answered: PagerDuty's own fields, and
/// the receipt.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct EventAnswer {
    /// `success`.
    pub status: &'static str,
    /// What was done with it.
    pub message: String,
    /// The event's key: the one sent, or the one made up for a trigger
    /// without one (send it to resolve).
    pub dedup_key: String,
    /// Where its alert went.
    pub receipt: AlertReceipt,
}

/// Takes one PagerDuty-style event: a trigger fires the alert its
/// `dedup_key` names, a resolve ends it, an acknowledge is noted.
#[utoipa::path(post, path = "/api/alerts/pagerduty", tag = "alerts",
    request_body(content = Event, description = "PagerDuty's Events API v2 shape: `payload.component` (or `payload.source`) names a service of the estate", content_type = "application/json"),
    responses(
        (status = 202, description = "Taken: the incident it opened is stored", body = EventAnswer),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No intake token, as a header or as the `routing_key` (or the intake is off)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A wrong intake token", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Larger than 1 MiB"),
        (status = 415, description = "The body is not JSON (Content-Type: application/json)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The event is invalid, or a field has the wrong type: `field` names it, as in `payload.severity`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many incidents open at once", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Shutting down, or the event log stopped publishing", body = Problem, content_type = "application/problem+json"),
    ),
    security(("intake" = [])))]
pub async fn pagerduty(
    State(engine): State<Engine>,
    State(gate): State<IntakeGate>,
    headers: HeaderMap,
    body: Result<Json<Event>, JsonRejection>,
) -> Result<(StatusCode, Json<EventAnswer>), Response> {
    // The token may come as the routing key, so the body is read first;
    // nothing of it is acted on before the check.
    let checked = gate.check(&headers);
    let Json(event) = match body {
        Ok(body) => body,
        Err(rejection) => {
            checked.map_err(denied)?;
            return Err(Problem::json(&rejection, &["routing_key", "event_action"]).into_response());
        }
    };
    if checked.is_err() && !gate.accepts_key(&event.routing_key) {
        checked.map_err(denied)?;
    }
    let made_up = uuid::Uuid::new_v4().simple().to_string();
    let action = event.parse(engine.topology(), made_up).map_err(invalid)?;
    let (dedup_key, receipt, message) = match action {
        Action::Alert(alert) => {
            let receipt = take(&engine, std::slice::from_ref(&alert)).await?;
            (alert.fingerprint, receipt, "Event processed".to_owned())
        }
        Action::Acknowledge(key) => (
            key,
            AlertReceipt::default(),
            "Acknowledged: the swarm works the incident either way".to_owned(),
        ),
    };
    Ok((
        StatusCode::ACCEPTED,
        Json(EventAnswer {
            status: "success",
            message,
            dedup_key,
            receipt,
        }),
    ))
}
