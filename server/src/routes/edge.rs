//! The edge's guards, for a server behind a public link: the operator
//! token on mutating endpoints, the login that sets its cookie, the
//! WebSocket origin check, and JSON bodies that must be objects.

use std::net::SocketAddr;

use app::operator::{COOKIE, Denied, OperatorGate, ViewerAllowance};
use axum::{
    Form,
    extract::{ConnectInfo, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use crate::problem::Problem;

/// Whether a reverse proxy in front is trusted to name the client
/// (`ANTIBODY_TRUST_PROXY`).
#[derive(Debug, Clone, Copy, Default)]
pub struct TrustProxy(pub bool);

/// Refuses the request unless it carries the operator token (when the
/// server has one).
pub async fn require_operator(State(gate): State<OperatorGate>, request: Request, next: Next) -> Response {
    match gate.check(request.headers()) {
        Ok(()) => next.run(request).await,
        Err(denied) => denial(denied),
    }
}

/// Firing a scenario: the operator token, or, on a demo server, a viewer's
/// allowance (a primary scenario, within the viewers' rates).
pub async fn require_operator_or_allowance(
    State(gate): State<OperatorGate>,
    State(allowance): State<Option<ViewerAllowance>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let denied = match gate.check(request.headers()) {
        Ok(()) => return next.run(request).await,
        Err(denied) => denied,
    };
    let Some(allowance) = allowance else {
        return denial(denied);
    };
    // `/api/scenarios/{id}/trigger`; the REST route fires one at a time.
    let scenario = request.uri().path().split('/').nth(3).unwrap_or_default().to_owned();
    match allowance.admit(&scenario, 1, request.headers(), peer) {
        Ok(()) => next.run(request).await,
        Err(refusal) => {
            let mut response = Problem::field(refusal.status, refusal.field, refusal.reason).into_response();
            if let Some(wait) = refusal.retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, wait.as_secs().max(1).into());
            }
            response
        }
    }
}

/// A request without the operator token, answered.
fn denial(denied: Denied) -> Response {
    let status = match denied {
        Denied::Missing => StatusCode::UNAUTHORIZED,
        Denied::Wrong => StatusCode::FORBIDDEN,
    };
    let mut response = Problem::field(status, "authorization", denied.reason()).into_response();
    if denied == Denied::Missing {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// `POST /login` form.
#[derive(Debug, Deserialize)]
pub struct Login {
    token: String,
}

/// Checks the token and sets it as an HttpOnly, SameSite=Strict cookie,
/// then sends the browser back to the dashboard.
pub async fn login(State(gate): State<OperatorGate>, headers: HeaderMap, Form(login): Form<Login>) -> Response {
    if !gate.is_enforced() {
        return Redirect::to("/").into_response();
    }
    if !gate.accepts(&login.token) {
        // A browser's form goes back to the form, which says so; a script
        // gets the problem.
        let from_browser = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.contains("text/html"));
        if from_browser {
            return Redirect::to("/login?failed=1").into_response();
        }
        return Problem::field(StatusCode::FORBIDDEN, "token", Denied::Wrong.reason()).into_response();
    }
    // Secure whenever the page was reached over https (directly or via a
    // proxy that says so); plain http on localhost must still work.
    let secure = headers
        .get("x-forwarded-proto")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    let cookie = format!(
        "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age=43200{}",
        login.token,
        if secure { "; Secure" } else { "" }
    );
    let mut response = Redirect::to("/").into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// `POST /logout`: forgets the cookie.
pub async fn logout() -> Response {
    let mut response = Redirect::to("/").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("antibody_operator=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    response
}

/// Which browser origins may open `/ws`: the page's own, plus a list.
#[derive(Debug, Clone, Default)]
pub struct AllowedOrigins(std::sync::Arc<[String]>);

impl AllowedOrigins {
    pub fn new(origins: Vec<String>) -> Self {
        Self(
            origins
                .into_iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        )
    }

    /// Whether a WebSocket handshake with these headers may proceed. A
    /// request without `Origin` is not from a browser, so it cannot be a
    /// cross-site hijack; one with an `Origin` must be the same origin as
    /// the `Host` it addressed, or on the list.
    pub fn admits(&self, headers: &HeaderMap) -> Result<(), String> {
        let Some(origin) = headers.get(header::ORIGIN) else {
            return Ok(());
        };
        let origin = origin
            .to_str()
            .map_err(|_| "the Origin header is not text".to_owned())?;
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        if self.0.contains(&origin) {
            return Ok(());
        }
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_ascii_lowercase);
        let origin_host = origin.split_once("://").map(|(_, rest)| rest);
        match (origin_host, host) {
            (Some(origin_host), Some(host)) if origin_host == host => Ok(()),
            _ => Err(format!(
                "origin {origin} may not open this stream (same origin only; add it to ANTIBODY_ALLOWED_ORIGINS)"
            )),
        }
    }
}

/// The most of a JSON body the object check reads (every route's own limit
/// is this or less, and still applies after it).
const MAX_JSON_BODY: usize = 2 * 1024 * 1024;

/// Refuses a JSON body that is an array. Every JSON body the API takes is
/// an object, as the OpenAPI document says, but serde also reads a struct
/// from an array of its fields in order (`[null]` would pass for a
/// trigger's optional body).
pub async fn objects_only(request: Request, next: Next) -> Response {
    let json = (request.headers().get(header::CONTENT_TYPE))
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_JSON_BODY).await else {
        return Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "the body is larger than 2 MiB").into_response();
    };
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Problem::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            "body",
            "must be a JSON object, not an array",
        )
        .into_response();
    }
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, host.parse().unwrap());
        if let Some(origin) = origin {
            headers.insert(header::ORIGIN, origin.parse().unwrap());
        }
        headers
    }

    #[test]
    fn the_same_origin_and_listed_origins_are_admitted_others_refused() {
        let origins = AllowedOrigins::new(vec!["https://demo.example.com/".into()]);
        assert!(origins.admits(&headers(None, "127.0.0.1:3000")).is_ok());
        assert!(
            origins
                .admits(&headers(Some("http://127.0.0.1:3000"), "127.0.0.1:3000"))
                .is_ok()
        );
        assert!(
            origins
                .admits(&headers(Some("https://DEMO.example.com"), "10.0.0.5:3000"))
                .is_ok()
        );
        let refused = origins.admits(&headers(Some("https://evil.example"), "127.0.0.1:3000"));
        assert!(refused.unwrap_err().contains("evil.example"));
        assert!(origins.admits(&headers(Some("null"), "127.0.0.1:3000")).is_err());
    }
}
