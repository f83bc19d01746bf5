//! Operator mode (server only): when `ANTIBODY_OPERATOR_TOKEN` is set,
//! creating incidents (and, later, approving and running timelines) needs
//! the token, as `Authorization: Bearer …` or the HttpOnly cookie that
//! `POST /login` sets for the dashboard. Watching needs nothing.
//!
//! On a demo server, viewers (visitors without the token) may also fire the
//! primary scenarios, one at a time, within a rate per address and a rate
//! for everyone together ([`ViewerAllowance`]).
//!
//! It lives here, not in the server, because both gates share it: the REST
//! middleware and the dashboard's server functions.

use std::{
    net::{IpAddr, SocketAddr},
    num::NonZeroU32,
    sync::Arc,
    time::Duration,
};

use axum::http::{HeaderMap, StatusCode, header};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, clock::Clock};

/// The cookie `POST /login` sets.
pub const COOKIE: &str = "antibody_operator";

/// Why a request may not act.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No token was presented (401).
    Missing,
    /// A token was presented and is wrong (403).
    Wrong,
}

impl Denied {
    /// For people: what to do about it.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Missing => "this server is in operator mode: send `Authorization: Bearer <token>` or log in",
            Self::Wrong => "the operator token is wrong",
        }
    }
}

/// The operator token, if the server has one; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct OperatorGate {
    /// `None`: everyone may act.
    token: Option<std::sync::Arc<str>>,
}

impl OperatorGate {
    pub fn new(token: Option<String>) -> Self {
        Self {
            token: token.filter(|t| !t.is_empty()).map(Into::into),
        }
    }

    /// Whether acting needs a token at all.
    pub fn is_enforced(&self) -> bool {
        self.token.is_some()
    }

    /// Whether `candidate` is the token (in time independent of where
    /// they differ).
    pub fn accepts(&self, candidate: &str) -> bool {
        let Some(token) = &self.token else { return true };
        let (a, b) = (token.as_bytes(), candidate.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
    }

    /// Whether the request carries the token, as a bearer header or as the
    /// login cookie.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), Denied> {
        if self.token.is_none() {
            return Ok(());
        }
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let cookie = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == COOKIE)
            .map(|(_, value)| value);
        match bearer.or(cookie) {
            None => Err(Denied::Missing),
            Some(candidate) if self.accepts(candidate) => Ok(()),
            Some(_) => Err(Denied::Wrong),
        }
    }
}

/// The client's address: the peer's, or, behind a proxy trusted to set
/// them, the forwarding headers' (`X-Forwarded-For`, `X-Real-IP`,
/// `Forwarded`), read as the per-IP rate limiter reads them.
pub fn client_ip(headers: &HeaderMap, peer: SocketAddr, trust_proxy: bool) -> IpAddr {
    use tower_governor::key_extractor::{KeyExtractor, SmartIpKeyExtractor};
    if !trust_proxy {
        return peer.ip();
    }
    let mut request = axum::http::Request::new(());
    *request.headers_mut() = headers.clone();
    request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
    SmartIpKeyExtractor.extract(&request).unwrap_or(peer.ip())
}

/// Why a firing was refused, for either edge to answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    /// The field at fault, for the problem document.
    pub field: &'static str,
    pub reason: String,
    /// When to try again (a spent rate).
    pub retry_after: Option<Duration>,
}

/// Demo mode's rules for viewers: the primary scenarios, one at a time,
/// within a rate per client address and one for everyone together.
/// Cheap to clone.
#[derive(Clone)]
pub struct ViewerAllowance {
    /// The scenarios viewers may fire.
    primary: Arc<[String]>,
    /// Firings per address per minute, and the limiter that counts them.
    per_address: (u32, Arc<DefaultKeyedRateLimiter<IpAddr>>),
    /// Firings by all viewers together per minute, and its limiter.
    everyone: (u32, Arc<DefaultDirectRateLimiter>),
    /// Whether the client address comes from forwarding headers.
    trust_proxy: bool,
}

impl std::fmt::Debug for ViewerAllowance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViewerAllowance")
            .field("primary", &self.primary)
            .field("per_address", &self.per_address.0)
            .field("everyone", &self.everyone.0)
            .finish()
    }
}

impl ViewerAllowance {
    pub fn new(primary: Vec<String>, per_address: NonZeroU32, everyone: NonZeroU32, trust_proxy: bool) -> Self {
        Self {
            primary: primary.into(),
            per_address: (
                per_address.get(),
                Arc::new(governor::RateLimiter::keyed(Quota::per_minute(per_address))),
            ),
            everyone: (
                everyone.get(),
                Arc::new(governor::RateLimiter::direct(Quota::per_minute(everyone))),
            ),
            trust_proxy,
        }
    }

    /// Firings one address may make per minute.
    pub fn per_address_per_minute(&self) -> u32 {
        self.per_address.0
    }

    /// The scenarios viewers may fire.
    pub fn primary(&self) -> &[String] {
        &self.primary
    }

    /// Lets a viewer fire `count` of `scenario_id`, or says why not. The
    /// viewer's own rate is spent first, so one viewer cannot spend
    /// everyone's.
    pub fn admit(&self, scenario_id: &str, count: u32, headers: &HeaderMap, peer: SocketAddr) -> Result<(), Refusal> {
        let needs_token = |field, reason: String| Refusal {
            status: StatusCode::UNAUTHORIZED,
            field,
            reason,
            retry_after: None,
        };
        if !self.primary.iter().any(|id| id == scenario_id) {
            return Err(needs_token(
                "authorization",
                format!(
                    "this is a demo: viewers may fire {}; `{scenario_id}` needs the operator token",
                    self.primary.join(", ")
                ),
            ));
        }
        if count != 1 {
            return Err(needs_token(
                "count",
                "this is a demo: viewers fire one incident at a time; several need the operator token".into(),
            ));
        }
        let spent = |wait: Duration, whose: String| Refusal {
            status: StatusCode::TOO_MANY_REQUESTS,
            field: "authorization",
            reason: format!("{whose}; try again in {} s", wait.as_secs().max(1)),
            retry_after: Some(wait.max(Duration::from_secs(1))),
        };
        let clock = governor::clock::DefaultClock::default();
        let ip = client_ip(headers, peer, self.trust_proxy);
        if let Err(not_until) = self.per_address.1.check_key(&ip) {
            return Err(spent(
                not_until.wait_time_from(clock.now()),
                format!(
                    "this is a demo: each viewer may fire {} scenarios a minute",
                    self.per_address.0
                ),
            ));
        }
        if let Err(not_until) = self.everyone.1.check() {
            return Err(spent(
                not_until.wait_time_from(clock.now()),
                format!(
                    "this is a demo, and its viewers together have fired {} scenarios this minute",
                    self.everyone.0
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (k.clone(), v.parse().unwrap())).collect()
    }

    #[test]
    fn without_a_token_everyone_may_act() {
        assert_eq!(OperatorGate::new(None).check(&HeaderMap::new()), Ok(()));
        assert!(!OperatorGate::new(Some(String::new())).is_enforced());
    }

    #[test]
    fn the_token_is_taken_from_the_bearer_header_or_the_cookie() {
        let gate = OperatorGate::new(Some("s3cret".into()));
        assert_eq!(gate.check(&HeaderMap::new()), Err(Denied::Missing));
        assert_eq!(
            gate.check(&headers(&[(header::AUTHORIZATION, "Bearer s3cret")])),
            Ok(())
        );
        assert_eq!(
            gate.check(&headers(&[(header::AUTHORIZATION, "Bearer s3cre")])),
            Err(Denied::Wrong)
        );
        assert_eq!(
            gate.check(&headers(&[(header::COOKIE, "theme=dark; antibody_operator=s3cret")])),
            Ok(())
        );
        assert_eq!(
            gate.check(&headers(&[(header::COOKIE, "antibody_operator=nope")])),
            Err(Denied::Wrong)
        );
        assert_eq!(
            gate.check(&headers(&[(header::AUTHORIZATION, "Basic czNjcmV0")])),
            Err(Denied::Missing)
        );
    }

    fn peer(last: u8) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, last], 40_000))
    }

    fn allowance(per_address: u32, everyone: u32) -> ViewerAllowance {
        ViewerAllowance::new(
            vec!["database_cascade".into(), "service_down".into()],
            NonZeroU32::new(per_address).unwrap(),
            NonZeroU32::new(everyone).unwrap(),
            false,
        )
    }

    #[test]
    fn a_viewer_fires_primary_scenarios_one_at_a_time_and_nothing_else() {
        let allowance = allowance(10, 10);
        let none = HeaderMap::new();
        assert_eq!(allowance.admit("database_cascade", 1, &none, peer(1)), Ok(()));
        let other = allowance.admit("memory_leak_gradual", 1, &none, peer(1)).unwrap_err();
        assert_eq!((other.status, other.field), (StatusCode::UNAUTHORIZED, "authorization"));
        assert!(
            other.reason.contains("database_cascade, service_down"),
            "{}",
            other.reason
        );
        let several = allowance.admit("service_down", 2, &none, peer(1)).unwrap_err();
        assert_eq!((several.status, several.field), (StatusCode::UNAUTHORIZED, "count"));
    }

    #[test]
    fn the_fourth_firing_in_a_minute_waits_and_others_are_not_held_up() {
        let allowance = allowance(3, 100);
        let none = HeaderMap::new();
        for _ in 0..3 {
            assert_eq!(allowance.admit("service_down", 1, &none, peer(1)), Ok(()));
        }
        let fourth = allowance.admit("service_down", 1, &none, peer(1)).unwrap_err();
        assert_eq!(fourth.status, StatusCode::TOO_MANY_REQUESTS);
        let wait = fourth.retry_after.unwrap();
        // One firing comes back every 20 s.
        assert!(
            wait > Duration::from_secs(15) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert_eq!(allowance.admit("service_down", 1, &none, peer(2)), Ok(()));
    }

    #[test]
    fn everyone_together_is_capped_too() {
        let allowance = allowance(5, 4);
        let none = HeaderMap::new();
        for viewer in 1..=4 {
            assert_eq!(allowance.admit("service_down", 1, &none, peer(viewer)), Ok(()));
        }
        let refused = allowance.admit("service_down", 1, &none, peer(9)).unwrap_err();
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(refused.reason.contains("together"), "{}", refused.reason);
    }

    #[test]
    fn the_client_address_comes_from_forwarding_headers_only_when_trusted() {
        let forwarded = headers(&[(
            header::HeaderName::from_static("x-forwarded-for"),
            "203.0.113.7, 10.0.0.1",
        )]);
        assert_eq!(client_ip(&forwarded, peer(1), false), peer(1).ip());
        assert_eq!(
            client_ip(&forwarded, peer(1), true),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_ip(&HeaderMap::new(), peer(1), true), peer(1).ip());
    }
}
