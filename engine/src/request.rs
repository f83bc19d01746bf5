//! Parsing a request to open an incident, at the edge, into values the engine
//! can trust.
//!
//! [`NewIncident`] is the body as a client sends it (seed 000's
//! `{title, severity, affected_services}` plus an optional `scenario_id`).
//! [`NewIncident::parse`] turns it into an [`IncidentRequest`] or a
//! [`FieldError`] that names the field and the reason. No runtime
//! dependencies: the browser shares these rules.

use serde::{Deserialize, Serialize};

use crate::protocol::Severity;

/// Longest accepted incident title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// Most services one incident may name.
pub const MAX_AFFECTED_SERVICES: usize = 32;
/// Longest accepted service name, in bytes (a DNS label).
pub const MAX_SERVICE_NAME_LEN: usize = 63;
/// What a printable, non-blank name or title matches (the pattern the
/// OpenAPI document states for what `parse` accepts once trimmed).
pub const PRINTABLE: &str =
    "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$";

/// Longest accepted scenario id, in bytes.
pub const MAX_SCENARIO_ID_LEN: usize = 64;

/// The body of `POST /api/incidents`, exactly as a client sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewIncident {
    /// Short human title.
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 200,
            pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$",
            example = "Database Cascade"
        )
    )]
    pub title: String,
    /// One of `low`, `medium`, `high`, `critical`.
    pub severity: Severity,
    /// Service names, as DNS labels.
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 32, example = json!(["api-gateway", "order-service"])))]
    pub affected_services: Vec<String>,
    /// A catalog scenario this incident reproduces, if any.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 64, pattern = "^[a-z0-9_]+$")
    )]
    pub scenario_id: Option<String>,
}

/// A field that failed validation, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    /// JSON path of the field, as in `affected_services[2]`.
    pub field: String,
    /// What is wrong with it, for people.
    pub reason: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// A validated incident title: trimmed, non-empty, bounded, printable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentTitle(String);

impl IncidentTitle {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let title = raw.trim();
        if title.is_empty() {
            return Err(FieldError::new("title", "must not be empty"));
        }
        let chars = title.chars().count();
        if chars > MAX_TITLE_CHARS {
            return Err(FieldError::new(
                "title",
                format!("is {chars} characters long; the limit is {MAX_TITLE_CHARS}"),
            ));
        }
        if title.chars().any(char::is_control) {
            return Err(FieldError::new("title", "must not contain control characters"));
        }
        Ok(Self(title.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A validated service name: a lowercase DNS label such as `order-service`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServiceName(String);

impl ServiceName {
    /// `field` names where the value came from, for the error.
    pub fn parse(raw: &str, field: &str) -> Result<Self, FieldError> {
        if raw.is_empty() {
            return Err(FieldError::new(field, "must not be empty"));
        }
        if raw.len() > MAX_SERVICE_NAME_LEN {
            return Err(FieldError::new(
                field,
                format!("is {} bytes long; the limit is {MAX_SERVICE_NAME_LEN}", raw.len()),
            ));
        }
        let valid_chars = raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid_chars || raw.starts_with('-') || raw.ends_with('-') {
            return Err(FieldError::new(
                field,
                format!("`{raw}` is not a service name: use lowercase letters, digits and inner hyphens"),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A syntactically valid scenario id, as in `database_cascade`. Whether the
/// catalog has it is the engine's question.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ScenarioId(String);

impl ScenarioId {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        const FIELD: &str = "scenario_id";
        if raw.is_empty() {
            return Err(FieldError::new(FIELD, "must not be empty"));
        }
        if raw.len() > MAX_SCENARIO_ID_LEN {
            return Err(FieldError::new(
                FIELD,
                format!("is {} bytes long; the limit is {MAX_SCENARIO_ID_LEN}", raw.len()),
            ));
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(FieldError::new(
                FIELD,
                format!("`{raw}` is not a scenario id: use lowercase letters, digits and underscores"),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An incident request whose every field is valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentRequest {
    pub title: IncidentTitle,
    pub severity: Severity,
    pub affected_services: Vec<ServiceName>,
    pub scenario_id: Option<ScenarioId>,
}

impl NewIncident {
    /// Validates every field; the first failure is returned.
    pub fn parse(self) -> Result<IncidentRequest, FieldError> {
        let title = IncidentTitle::parse(&self.title)?;
        if self.affected_services.is_empty() {
            return Err(FieldError::new("affected_services", "must name at least one service"));
        }
        if self.affected_services.len() > MAX_AFFECTED_SERVICES {
            return Err(FieldError::new(
                "affected_services",
                format!(
                    "names {} services; the limit is {MAX_AFFECTED_SERVICES}",
                    self.affected_services.len()
                ),
            ));
        }
        let mut affected_services: Vec<ServiceName> = Vec::with_capacity(self.affected_services.len());
        for (i, raw) in self.affected_services.iter().enumerate() {
            let field = format!("affected_services[{i}]");
            let service = ServiceName::parse(raw, &field)?;
            if affected_services.contains(&service) {
                return Err(FieldError::new(field, format!("`{raw}` is listed twice")));
            }
            affected_services.push(service);
        }
        let scenario_id = self.scenario_id.as_deref().map(ScenarioId::parse).transpose()?;
        Ok(IncidentRequest {
            title,
            severity: self.severity,
            affected_services,
            scenario_id,
        })
    }
}

/// How the names of deciders that are not people begin (`policy:<rule>`,
/// `policy (timeout)`, a demo's autopilot): a person's name may not, so the
/// audit log never passes a person off as a machine, or a machine as a person.
pub const RESERVED_DECIDERS: [&str; 2] = ["policy", "autopilot"];

/// Longest accepted approver name, in characters.
pub const MAX_APPROVER_CHARS: usize = 64;
/// Longest accepted decision comment, in characters.
pub const MAX_COMMENT_CHARS: usize = 500;

/// A person's answer to an approval request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ApprovalAnswer {
    Approve,
    Reject,
}

/// The body of `POST /api/approvals/{id}/decision`, exactly as a client
/// sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ApprovalDecisionBody {
    /// `approve` or `reject`.
    pub decision: ApprovalAnswer,
    /// Who decides, as the audit log will name them. Names beginning with
    /// `policy` or `autopilot` (in any case) are kept for deciders that are
    /// not people, and refused (422).
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 64,
            pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$",
            example = "alice"
        )
    )]
    pub approver: String,
    /// Why, for the audit log.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 500, pattern = "^[^\\u0000-\\u0009\\u000b-\\u001f\\u007f-\\u009f]*$")
    )]
    pub comment: Option<String>,
}

/// A validated decision: a trimmed, printable approver name and comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalDecision {
    pub approve: bool,
    pub approver: String,
    /// `None` when blank.
    pub comment: Option<String>,
}

impl ApprovalDecisionBody {
    pub fn parse(self) -> Result<ApprovalDecision, FieldError> {
        let approver = self.approver.trim();
        if approver.is_empty() {
            return Err(FieldError::new(
                "approver",
                "must not be empty: the audit log names who decided",
            ));
        }
        let chars = approver.chars().count();
        if chars > MAX_APPROVER_CHARS {
            return Err(FieldError::new(
                "approver",
                format!("is {chars} characters long; the limit is {MAX_APPROVER_CHARS}"),
            ));
        }
        if approver.chars().any(char::is_control) {
            return Err(FieldError::new("approver", "must not contain control characters"));
        }
        let lower = approver.to_lowercase();
        if let Some(reserved) = RESERVED_DECIDERS.iter().find(|prefix| lower.starts_with(*prefix)) {
            return Err(FieldError::new(
                "approver",
                format!(
                    "must not begin with `{reserved}`: the audit log keeps such names for deciders that are not people"
                ),
            ));
        }
        let comment = self.comment.as_deref().map(str::trim).filter(|c| !c.is_empty());
        if let Some(comment) = comment {
            let chars = comment.chars().count();
            if chars > MAX_COMMENT_CHARS {
                return Err(FieldError::new(
                    "comment",
                    format!("is {chars} characters long; the limit is {MAX_COMMENT_CHARS}"),
                ));
            }
            if comment.chars().any(|c| c.is_control() && c != '\n') {
                return Err(FieldError::new(
                    "comment",
                    "must not contain control characters other than newlines",
                ));
            }
        }
        Ok(ApprovalDecision {
            approve: self.decision == ApprovalAnswer::Approve,
            approver: approver.to_owned(),
            comment: comment.map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn body() -> NewIncident {
        NewIncident {
            title: "Database Cascade".into(),
            severity: Severity::Critical,
            affected_services: vec!["api-gateway".into(), "order-service".into()],
            scenario_id: None,
        }
    }

    #[test]
    fn a_good_body_parses_and_the_title_is_trimmed() {
        let mut b = body();
        b.title = "  Database Cascade \n".into();
        let parsed = b.parse().unwrap();
        assert_eq!(parsed.title.as_str(), "Database Cascade");
        assert_eq!(parsed.affected_services.len(), 2);
    }

    #[test]
    fn each_bad_field_is_named() {
        type Mutation = Box<dyn Fn(&mut NewIncident)>;
        let cases: Vec<(Mutation, &str)> = vec![
            (Box::new(|b| b.title = "   ".into()), "title"),
            (Box::new(|b| b.title = "x".repeat(MAX_TITLE_CHARS + 1)), "title"),
            (Box::new(|b| b.title = "bell\u{7}".into()), "title"),
            (Box::new(|b| b.affected_services.clear()), "affected_services"),
            (
                Box::new(|b| b.affected_services = vec!["svc".into(); MAX_AFFECTED_SERVICES + 1]),
                "affected_services",
            ),
            (
                Box::new(|b| b.affected_services[1] = "Order Service".into()),
                "affected_services[1]",
            ),
            (
                Box::new(|b| b.affected_services[1] = "api-gateway".into()),
                "affected_services[1]",
            ),
            (
                Box::new(|b| b.affected_services[0] = String::new()),
                "affected_services[0]",
            ),
            (
                Box::new(|b| b.affected_services[0] = "-edge".into()),
                "affected_services[0]",
            ),
            (Box::new(|b| b.scenario_id = Some("Drop Tables".into())), "scenario_id"),
            (Box::new(|b| b.scenario_id = Some(String::new())), "scenario_id"),
        ];
        for (mutate, field) in cases {
            let mut b = body();
            mutate(&mut b);
            let err = b.clone().parse().expect_err(&format!("{b:?} should be rejected"));
            assert_eq!(err.field, field, "{b:?}");
            assert!(!err.reason.is_empty());
        }
    }

    #[test]
    fn unknown_fields_and_severities_are_rejected_by_the_schema() {
        let unknown_field = serde_json::from_str::<NewIncident>(
            r#"{"title":"t","severity":"low","affected_services":["a"],"owner":"me"}"#,
        );
        assert!(unknown_field.unwrap_err().to_string().contains("owner"));
        let bad_severity =
            serde_json::from_str::<NewIncident>(r#"{"title":"t","severity":"urgent","affected_services":["a"]}"#);
        assert!(bad_severity.unwrap_err().to_string().contains("urgent"));
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_accepts_only_valid_names(
            title in ".{0,250}",
            services in proptest::collection::vec("[a-zA-Z0-9 _-]{0,70}", 0..40),
        ) {
            let b = NewIncident { title, severity: Severity::Low, affected_services: services, scenario_id: None };
            if let Ok(parsed) = b.parse() {
                prop_assert!(!parsed.title.as_str().is_empty());
                for s in &parsed.affected_services {
                    prop_assert!(ServiceName::parse(s.as_str(), "x").is_ok());
                }
            }
        }
    }

    #[test]
    fn an_approval_decision_names_the_field_it_refuses() {
        let body = |approver: &str, comment: Option<&str>| ApprovalDecisionBody {
            decision: ApprovalAnswer::Approve,
            approver: approver.into(),
            comment: comment.map(Into::into),
        };
        let ok = body("  alice  ", Some("  pool exhaustion\nscale it ")).parse().unwrap();
        assert_eq!(
            ok,
            ApprovalDecision {
                approve: true,
                approver: "alice".into(),
                comment: Some("pool exhaustion\nscale it".into()),
            }
        );
        assert_eq!(body("bob", Some("   ")).parse().unwrap().comment, None);
        for (approver, comment, field) in [
            ("   ", None, "approver"),
            (&*"x".repeat(65), None, "approver"),
            ("eve\u{7}", None, "approver"),
            // Kept for deciders that are not people.
            ("Autopilot (demo)", None, "approver"),
            ("policy (timeout)", None, "approver"),
            ("carol", Some(&*"y".repeat(501)), "comment"),
            ("carol", Some("bell\u{7}"), "comment"),
        ] {
            assert_eq!(
                body(approver, comment).parse().unwrap_err().field,
                field,
                "{approver:?} {comment:?}"
            );
        }
        let rejected: ApprovalDecisionBody =
            serde_json::from_str(r#"{"decision": "reject", "approver": "dan"}"#).unwrap();
        assert!(!rejected.parse().unwrap().approve);
    }
}
