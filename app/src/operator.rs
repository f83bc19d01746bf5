//! Operator mode (server only): when `ANTIBODY_OPERATOR_TOKEN` is set,
//! creating incidents (and, later, approving and running timelines) needs
//! the token, as `Authorization: Bearer …` or the HttpOnly cookie that
//! `POST /login` sets for the dashboard. Watching needs nothing.
//!
//! It lives here, not in the server, because both gates share it: the REST
//! middleware and the dashboard's server functions.

use axum::http::{HeaderMap, header};

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
}
