//! Server functions: the dashboard's calls into the engine. Their bodies run
//! on the server only, where the server provides the [`engine::Engine`]
//! handle as Leptos context; the browser build sees only the call stubs.

use engine::protocol::{
    Approval, ChartMark, Incident, IncidentDetail, IncidentPage, IncidentStatus, ScenarioSummary, Severity, Snapshot,
    TimelineRun, TimelineSummary,
};
use leptos::prelude::*;

#[cfg(feature = "ssr")]
fn engine() -> Result<engine::Engine, ServerFnError> {
    use_context::<engine::Engine>().ok_or_else(|| ServerFnError::new("the engine is not available"))
}

#[cfg(feature = "ssr")]
fn store() -> Result<store::Store, ServerFnError> {
    use_context::<store::Store>().ok_or_else(|| ServerFnError::new("the store is not available"))
}

/// Incidents on one page of the history, newest first.
pub const INCIDENTS_PER_PAGE: u32 = 25;

/// A page of the incident history (`page` counts from 1), from the store.
// A read: GET, so it is never counted against the rate limit on writes.
#[server(input = server_fn::codec::GetUrl)]
pub async fn list_incidents(
    status: Option<IncidentStatus>,
    severity: Option<Severity>,
    scenario: Option<String>,
    page: u32,
) -> Result<IncidentPage, ServerFnError> {
    let filter = store::IncidentFilter {
        status,
        severity,
        scenario: match scenario.filter(|s| !s.is_empty()) {
            Some(raw) => Some(
                engine::request::ScenarioId::parse(&raw)
                    .map_err(|e| ServerFnError::new(format!("scenario: {}", e.reason)))?
                    .as_str()
                    .to_owned(),
            ),
            None => None,
        },
        limit: INCIDENTS_PER_PAGE,
        offset: u64::from(page.max(1) - 1) * u64::from(INCIDENTS_PER_PAGE),
    };
    store()?
        .incidents(&filter)
        .await
        .map_err(|e| ServerFnError::new(e.to_string()))
}

/// An incident's page: its whole story, its report as HTML and its
/// charts, all prepared on the server.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct IncidentView {
    pub detail: IncidentDetail,
    /// The markdown report, rendered (raw HTML in it escaped).
    pub report_html: Option<String>,
    pub charts: ChartSet,
    /// The alerts it grouped, as sent. Picked from the timeline on the
    /// server: the browser's decoder of live events leaves out their labels
    /// and annotations, so only this page's code carries theirs.
    pub alerts: Vec<AlertView>,
    /// The PromQL behind each finding (a watched estate's), picked the same
    /// way.
    pub evidence: Vec<FindingEvidence>,
    /// How each step went out: the actuator, the exact request, the receipt
    /// and the outcome (and each undo's receipt), picked the same way.
    pub actuations: Vec<ActuationView>,
}

/// One step's (or one undo's) trip through its actuator, for its page.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ActuationView {
    /// "Step 1/2: Roll back deploy on order-service", or "Undo: …".
    pub what: String,
    /// `proposed` (in an approval request), `dry run` (shown, never sent),
    /// `sent` (no answer yet), `completed` or `failed`.
    pub status: String,
    /// Which actuator: `embedded twin`, `twin`, `stackstorm`…
    pub actuator: String,
    /// "POST http://twin:9100/api/actions".
    pub request_line: String,
    pub idempotency_key: String,
    /// The order as sent, pretty JSON.
    pub body: String,
    /// "act-3 succeeded", with the receiver's detail.
    pub receipt: Option<String>,
    pub attempts: u32,
    /// Why it failed.
    pub error: Option<String>,
}

/// One alert on an incident's record, for its page.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AlertView {
    pub placement: engine::protocol::AlertPlacement,
    pub name: String,
    pub service: String,
    pub source: String,
    pub severity: engine::protocol::Severity,
    pub severity_label: Option<String>,
    pub summary: String,
    pub starts_at: chrono::DateTime<chrono::Utc>,
    pub generator_url: Option<String>,
    /// Every label, then every annotation, as `(name, value)`.
    pub pairs: Vec<(String, String)>,
}

/// One agent's finding and the queries it rests on.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FindingEvidence {
    pub agent: engine::protocol::AgentType,
    pub description: String,
    pub queries: Vec<engine::protocol::QueryEvidence>,
}

/// The alerts and the evidence on an incident's timeline, for its page.
#[cfg(feature = "ssr")]
fn alerts_and_evidence(detail: &IncidentDetail) -> (Vec<AlertView>, Vec<FindingEvidence>) {
    use engine::protocol::ServerMessage;
    let (mut alerts, mut evidence) = (Vec::new(), Vec::new());
    for event in &detail.timeline {
        match &event.message {
            ServerMessage::AlertReceived { alert, .. } => alerts.push(AlertView {
                placement: alert.placement,
                name: alert.name.clone(),
                service: alert.service.clone(),
                source: alert.source.clone(),
                severity: alert.severity,
                severity_label: alert.severity_label.clone(),
                summary: alert.summary.clone(),
                starts_at: alert.starts_at,
                generator_url: alert.generator_url.clone(),
                pairs: alert
                    .labels
                    .iter()
                    .chain(&alert.annotations)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            }),
            ServerMessage::AgentAction { action, .. } if !action.queries.is_empty() => evidence.push(FindingEvidence {
                agent: action.agent_type,
                description: action.description.clone(),
                queries: action.queries.clone(),
            }),
            _ => {}
        }
    }
    (alerts, evidence)
}

/// How each step of an incident went out, and each undo, for its page:
/// the last word on each step (a step announced and never finished shows
/// as sent).
#[cfg(feature = "ssr")]
fn actuations(detail: &IncidentDetail) -> Vec<ActuationView> {
    use engine::protocol::{ActionDetails, ServerMessage};
    let mut views: Vec<(uuid::Uuid, ActuationView)> = Vec::new();
    for event in &detail.timeline {
        if let ServerMessage::ApprovalRequested { approval } = &event.message
            && approval.level == 0
        {
            let proposal = &approval.proposal;
            views.extend(proposal.requests.iter().zip(&proposal.steps).map(|(request, step)| {
                let actuation = engine::protocol::Actuation {
                    request: request.clone(),
                    receipt: None,
                    attempts: 0,
                };
                let what = format!("Proposed for approval: {step}");
                (approval.approval_id, actuation_view(what, "proposed", &actuation, None))
            }));
            continue;
        }
        let ServerMessage::AgentAction { action, .. } = &event.message else {
            continue;
        };
        match &action.details {
            ActionDetails::Step(step) if step.actuation.is_some() => {
                let actuation = step.actuation.as_deref().expect("matched");
                let view = actuation_view(
                    format!("Step {}/{}: {}", step.step, step.of, step.label()),
                    status_word(action.status),
                    actuation,
                    step.error.clone(),
                );
                match views.iter_mut().find(|(id, _)| *id == action.action_id) {
                    Some((_, seen)) => *seen = view,
                    None => views.push((action.action_id, view)),
                }
            }
            ActionDetails::Advice(advice) if action.status != engine::protocol::ActionStatus::InProgress => {
                let steps = advice.proposed.steps.iter();
                views.extend(advice.requests.iter().zip(steps).map(|(request, step)| {
                    let actuation = engine::protocol::Actuation {
                        request: request.clone(),
                        receipt: None,
                        attempts: 0,
                    };
                    let what = format!("Dry run: {}", step.label());
                    (action.action_id, actuation_view(what, "dry run", &actuation, None))
                }));
            }
            ActionDetails::Rollback(rollback) => {
                views.extend(rollback.receipts.iter().map(|receipt| {
                    let view = ActuationView {
                        what: format!("Undo: {}", receipt.remediation.label()),
                        status: status_word(action.status).to_owned(),
                        actuator: String::new(),
                        request_line: String::new(),
                        idempotency_key: receipt.idempotency_key.clone(),
                        body: String::new(),
                        receipt: Some(receipt_line(receipt)),
                        attempts: 1,
                        error: None,
                    };
                    (action.action_id, view)
                }));
            }
            _ => {}
        }
    }
    views.into_iter().map(|(_, view)| view).collect()
}

#[cfg(feature = "ssr")]
fn status_word(status: engine::protocol::ActionStatus) -> &'static str {
    match status {
        engine::protocol::ActionStatus::InProgress => "sent",
        engine::protocol::ActionStatus::Completed => "completed",
        engine::protocol::ActionStatus::Failed => "failed",
    }
}

#[cfg(feature = "ssr")]
fn actuation_view(
    what: String,
    status: &str,
    actuation: &engine::protocol::Actuation,
    error: Option<String>,
) -> ActuationView {
    let request = &actuation.request;
    ActuationView {
        what,
        status: status.to_owned(),
        actuator: request.actuator.clone(),
        request_line: format!("{} {}", request.method, request.url),
        idempotency_key: request.idempotency_key.clone(),
        body: serde_json::to_string_pretty(&request.body).unwrap_or_default(),
        receipt: actuation.receipt.as_ref().map(receipt_line),
        attempts: actuation.attempts,
        error,
    }
}

#[cfg(feature = "ssr")]
fn receipt_line(receipt: &engine::protocol::ActionReceipt) -> String {
    let mut line = format!("{} {}", receipt.id, receipt.status.as_str());
    if let Some(detail) = &receipt.detail {
        line.push_str(&format!(": {detail}"));
    }
    line
}

/// An incident's charts, drawn on the server.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChartSet {
    /// One per watched series.
    pub charts: Vec<crate::charts::Chart>,
    /// The moments marked on every chart, in order.
    pub marks: Vec<ChartMark>,
    /// The incident is open: the charts grow, so poll again.
    pub live: bool,
}

/// One incident's page, or `None` when there is no such id.
// A read: GET, so it is never counted against the rate limit on writes.
#[server(input = server_fn::codec::GetUrl)]
pub async fn get_incident(id: uuid::Uuid) -> Result<Option<IncidentView>, ServerFnError> {
    let Some(detail) = store()?
        .incident(id)
        .await
        .map_err(|e| ServerFnError::new(e.to_string()))?
    else {
        return Ok(None);
    };
    let report_html = detail.incident.report.as_deref().map(crate::markdown::to_html);
    let (alerts, evidence) = alerts_and_evidence(&detail);
    let actuations = actuations(&detail);
    Ok(Some(IncidentView {
        detail,
        report_html,
        charts: incident_charts(id).await?,
        alerts,
        evidence,
        actuations,
    }))
}

/// An incident's charts: live from the estate while it is open, else as
/// kept when it closed. Empty when there is nothing to draw (an incident
/// from before charts were kept).
// A read: GET, so it is never counted against the rate limit on writes.
#[server(input = server_fn::codec::GetUrl)]
pub async fn incident_charts(id: uuid::Uuid) -> Result<ChartSet, ServerFnError> {
    let telemetry = match engine()?.incident_telemetry(id) {
        Some(telemetry) => Some(telemetry),
        None => store()?
            .incident_telemetry(id)
            .await
            .map_err(|e| ServerFnError::new(e.to_string()))?,
    };
    Ok(telemetry
        .map(|t| ChartSet {
            charts: crate::charts::render(&t),
            marks: t.marks,
            live: t.live,
        })
        .unwrap_or_default())
}

/// Everything the dashboard page reads, fetched in one request: one
/// resource, one round trip, and one decoder in the browser instead of one
/// per panel.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DashboardData {
    /// Where the live state starts, slimmed to what the page reads (see
    /// [`DashboardState::slim`](crate::state::DashboardState::slim)).
    pub snapshot: Snapshot,
    /// What this visitor may do.
    pub access: Access,
    /// How "cost savings" is computed, with its inputs.
    pub formula: engine::protocol::SavingsFormula,
    /// The scenario catalog, primary scenarios first.
    pub scenarios: Vec<ScenarioSummary>,
    /// The built-in timelines, with their schedules.
    pub timelines: Vec<TimelineSummary>,
}

/// The dashboard page's data.
// A read: GET, so it is never counted against the rate limit on writes.
#[server(input = server_fn::codec::GetUrl)]
pub async fn get_dashboard() -> Result<DashboardData, ServerFnError> {
    let engine = engine()?;
    Ok(DashboardData {
        snapshot: crate::state::DashboardState::slim(engine.snapshot()),
        access: access().await?,
        formula: engine.impact().formula(),
        scenarios: engine.scenarios(),
        timelines: timelines()?.list(),
    })
}

/// Sets the status (and headers) of a server function's refusal, so that
/// it answers like the REST API: never a 500 for the caller's mistake or
/// for backpressure.
#[cfg(feature = "ssr")]
fn refuse(status: axum::http::StatusCode, reason: impl std::fmt::Display) -> ServerFnError {
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(status);
    }
    ServerFnError::new(reason)
}

/// Most incidents one press of a scenario button may open.
pub const MAX_FIRED_AT_ONCE: u32 = 10;

/// Opens `count` incidents (default 1, at most [`MAX_FIRED_AT_ONCE`]) from a
/// catalog scenario, at `severity` when given (empty: the scenario's own).
/// Works as a plain HTML form post too, so the buttons work before (or
/// without) the wasm. Refusals carry the REST API's statuses: 401 without
/// the operator token, 422 for an unknown scenario or a bad field, 429 with
/// Retry-After at capacity (with whatever opened before it).
#[server(endpoint = "trigger_scenario")]
pub async fn trigger_scenario(
    scenario_id: String,
    severity: Option<String>,
    count: Option<String>,
) -> Result<Vec<Incident>, ServerFnError> {
    use axum::http::StatusCode;
    let engine = engine()?;
    let severity = match severity.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(raw) => Some(
            serde_json::from_value::<Severity>(serde_json::Value::String(raw.to_owned())).map_err(|_| {
                refuse(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("severity: `{raw}` is not one of low, medium, high, critical"),
                )
            })?,
        ),
    };
    let count = match count.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        None => 1,
        Some(raw) => match raw.parse::<u32>() {
            Ok(n) if (1..=MAX_FIRED_AT_ONCE).contains(&n) => n,
            _ => {
                return Err(refuse(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("count: `{raw}` is not a whole number from 1 to {MAX_FIRED_AT_ONCE}"),
                ));
            }
        },
    };
    authorize_firing(&scenario_id, count).await?;
    let mut opened = Vec::with_capacity(count as usize);
    for _ in 0..count {
        match engine.trigger_scenario(&scenario_id, severity) {
            Ok(incident) => opened.push(incident),
            Err(refused) => {
                let status = StatusCode::from_u16(refused.http_status()).expect("refusal statuses are valid");
                if let (Some(wait), Some(response)) =
                    (refused.retry_after(), use_context::<leptos_axum::ResponseOptions>())
                {
                    response.insert_header(axum::http::header::RETRY_AFTER, wait.as_secs().into());
                }
                let reason = if opened.is_empty() {
                    refused.to_string()
                } else {
                    format!("opened {} of {count}, then: {refused}", opened.len())
                };
                engine.flush().await;
                return Err(refuse(status, reason));
            }
        }
    }
    // Acknowledged only once their `incident_created` events are stored.
    if let Err(halted) = engine.stored().await {
        return Err(refuse(StatusCode::SERVICE_UNAVAILABLE, halted.to_string()));
    }
    Ok(opened)
}

/// What this visitor may do on the dashboard.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Access {
    /// Why this visitor cannot act (fire scenarios, decide approvals), if
    /// they cannot: the operator token is missing, with what to do about it.
    pub blocked: Option<String>,
    /// The most incidents the server keeps open at once; the page judges
    /// "at capacity" live from the metrics.
    pub max_active: u64,
    /// On a demo server: what viewers may do anyway.
    pub demo: Option<DemoTerms>,
}

/// A demo server's terms for viewers without the operator token.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DemoTerms {
    /// The scenarios they may fire, one at a time.
    pub primary: Vec<String>,
    /// How many a minute, each.
    pub per_minute: u32,
}

/// What the visitor of this request may do on the dashboard.
#[cfg(feature = "ssr")]
async fn access() -> Result<Access, ServerFnError> {
    let gate = use_context::<crate::operator::OperatorGate>().unwrap_or_default();
    let headers: axum::http::HeaderMap = leptos_axum::extract().await?;
    let demo = use_context::<crate::operator::ViewerAllowance>().map(|allowance| DemoTerms {
        primary: allowance.primary().to_vec(),
        per_minute: allowance.per_address_per_minute(),
    });
    Ok(Access {
        blocked: gate.check(&headers).err().map(|_| {
            "Watching only: this server is in operator mode. Sign in with the operator token to act.".to_owned()
        }),
        max_active: engine()?.max_active_incidents(),
        demo,
    })
}

/// Firing `count` of `scenario_id`: the operator token, or, on a demo
/// server, a viewer's allowance; refusals carry the REST API's statuses
/// (401, 429 with Retry-After).
#[cfg(feature = "ssr")]
async fn authorize_firing(scenario_id: &str, count: u32) -> Result<(), ServerFnError> {
    let gate = use_context::<crate::operator::OperatorGate>().unwrap_or_default();
    let headers: axum::http::HeaderMap = leptos_axum::extract().await?;
    let Err(denied) = gate.check(&headers) else {
        return Ok(());
    };
    let Some(allowance) = use_context::<crate::operator::ViewerAllowance>() else {
        return Err(refuse(axum::http::StatusCode::UNAUTHORIZED, denied.reason()));
    };
    let axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr> =
        leptos_axum::extract().await?;
    allowance.admit(scenario_id, count, &headers, peer).map_err(|refusal| {
        if let (Some(wait), Some(response)) = (refusal.retry_after, use_context::<leptos_axum::ResponseOptions>()) {
            response.insert_header(axum::http::header::RETRY_AFTER, wait.as_secs().max(1).into());
        }
        refuse(refusal.status, refusal.reason)
    })
}

// Timelines.

/// One problem with a pasted timeline: where, and why.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FieldProblem {
    /// The JSON path, as in `incidents[2].scenario_id` (empty: the whole
    /// document).
    pub path: String,
    /// What is wrong, and what would be right.
    pub reason: String,
}

/// What became of a pasted timeline.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum TimelineCheck {
    /// Valid: the schedule it would follow (checked, not started).
    Valid(TimelineSummary),
    /// Valid, and started.
    Started(TimelineRun),
    /// Every problem, field by field.
    Invalid(Vec<FieldProblem>),
}

#[cfg(feature = "ssr")]
fn timelines() -> Result<engine::timeline::runner::Timelines, ServerFnError> {
    use_context::<engine::timeline::runner::Timelines>()
        .ok_or_else(|| ServerFnError::new("timelines are not available"))
}

/// Refuses a request without the operator token (401), when one is set.
#[cfg(feature = "ssr")]
async fn require_operator() -> Result<(), ServerFnError> {
    let gate = use_context::<crate::operator::OperatorGate>().unwrap_or_default();
    let headers: axum::http::HeaderMap = leptos_axum::extract().await?;
    gate.check(&headers)
        .map_err(|denied| refuse(axum::http::StatusCode::UNAUTHORIZED, denied.reason()))
}

/// A run's speed from a form field: empty means the server's own.
#[cfg(feature = "ssr")]
fn speed_field(speed: Option<String>) -> Result<Option<f64>, ServerFnError> {
    match speed.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(raw) => raw.parse::<f64>().map(Some).map_err(|_| {
            refuse(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                format!("speed: `{raw}` is not a number"),
            )
        }),
    }
}

/// Starts a built-in timeline (a plain form post works too).
#[server(endpoint = "start_timeline")]
pub async fn start_timeline(timeline_id: String, speed: Option<String>) -> Result<TimelineRun, ServerFnError> {
    require_operator().await?;
    let timelines = timelines()?;
    let timeline = timelines
        .find(&timeline_id)
        .map_err(|e| refuse(axum::http::StatusCode::NOT_FOUND, e))?
        .clone();
    timelines
        .start(timeline, speed_field(speed)?, 0)
        .map_err(|e| refuse(axum::http::StatusCode::UNPROCESSABLE_ENTITY, e))
}

/// Checks a pasted timeline and, when `start` is set and it is valid,
/// starts it. Problems come back field by field, not as an error.
#[server(endpoint = "custom_timeline")]
pub async fn custom_timeline(json: String, speed: Option<String>, start: bool) -> Result<TimelineCheck, ServerFnError> {
    if start {
        require_operator().await?;
    }
    let timelines = timelines()?;
    let timeline = match timelines.parse("pasted timeline", &json) {
        Ok(timeline) => timeline,
        Err(errors) => {
            return Ok(TimelineCheck::Invalid(
                errors
                    .0
                    .into_iter()
                    .map(|i| FieldProblem {
                        path: i.path,
                        reason: i.reason,
                    })
                    .collect(),
            ));
        }
    };
    if !start {
        return Ok(TimelineCheck::Valid(timeline.summary()));
    }
    timelines
        .start(timeline, speed_field(speed)?, 0)
        .map(TimelineCheck::Started)
        .map_err(|e| refuse(axum::http::StatusCode::UNPROCESSABLE_ENTITY, e))
}

/// Pauses, resumes or cancels a run.
#[server(endpoint = "steer_timeline")]
pub async fn steer_timeline(run_id: uuid::Uuid, action: String) -> Result<TimelineRun, ServerFnError> {
    require_operator().await?;
    let timelines = timelines()?;
    let result = match action.as_str() {
        "pause" => timelines.pause(run_id),
        "resume" => timelines.resume(run_id),
        "cancel" => timelines.cancel(run_id),
        other => {
            return Err(refuse(
                axum::http::StatusCode::BAD_REQUEST,
                format!("`{other}` is not an action: use pause, resume or cancel"),
            ));
        }
    };
    result.map_err(|e| {
        let status = axum::http::StatusCode::from_u16(e.http_status()).expect("a run error's status is valid");
        refuse(status, e)
    })
}

/// Stored timeline runs, newest first; only those of `timeline_id` when
/// given.
// A read: GET, so it is never counted against the rate limit on writes.
#[server(input = server_fn::codec::GetUrl)]
pub async fn list_timeline_runs(timeline_id: Option<String>) -> Result<Vec<TimelineRun>, ServerFnError> {
    let timeline_id = timeline_id.filter(|t| !t.is_empty());
    if timeline_id
        .as_deref()
        .is_some_and(|t| t.len() > 64 || t.chars().any(char::is_control))
    {
        return Err(refuse(
            axum::http::StatusCode::BAD_REQUEST,
            "timeline: 1 to 64 printable characters",
        ));
    }
    // Whatever was published is stored once the writer catches up.
    engine()?.flush().await;
    store()?
        .timeline_runs(timeline_id.as_deref(), 50)
        .await
        .map_err(|e| ServerFnError::new(e.to_string()))
}

/// One stored run, or `None`.
// A read: GET, so it is never counted against the rate limit on writes.
#[server(input = server_fn::codec::GetUrl)]
pub async fn get_timeline_run(run_id: uuid::Uuid) -> Result<Option<TimelineRun>, ServerFnError> {
    engine()?.flush().await;
    store()?
        .timeline_run(run_id)
        .await
        .map_err(|e| ServerFnError::new(e.to_string()))
}

// Governance.

/// The status a refused decision answers with, here and in the REST API:
/// 404 for an unknown approval, 409 for one already decided, 503 when the
/// shared store could not record it.
#[cfg(feature = "ssr")]
pub fn decide_refusal_status(error: &engine::governance::DecideError) -> axum::http::StatusCode {
    match error {
        engine::governance::DecideError::Unknown(_) => axum::http::StatusCode::NOT_FOUND,
        engine::governance::DecideError::AlreadyDecided { .. } => axum::http::StatusCode::CONFLICT,
        engine::governance::DecideError::Unavailable(_) => axum::http::StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// A person approves (`decision` = `approve`) or rejects (`reject`) a plan
/// waiting for them. A plain form post works too. Refusals carry the REST
/// API's statuses: 401, 404, 409 and 422 naming the field.
#[server(endpoint = "decide_approval")]
pub async fn decide_approval(
    approval_id: uuid::Uuid,
    decision: String,
    approver: String,
    comment: Option<String>,
) -> Result<Approval, ServerFnError> {
    use axum::http::StatusCode;
    use engine::request::{ApprovalAnswer, ApprovalDecisionBody};
    require_operator().await?;
    let decision = match decision.as_str() {
        "approve" => ApprovalAnswer::Approve,
        "reject" => ApprovalAnswer::Reject,
        other => {
            return Err(refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("decision: `{other}` is neither approve nor reject"),
            ));
        }
    };
    let request = ApprovalDecisionBody {
        decision,
        approver,
        comment,
    }
    .parse()
    .map_err(|e| refuse(StatusCode::UNPROCESSABLE_ENTITY, e))?;
    engine()?
        .decide_approval(approval_id, request)
        .await
        .map_err(|e| refuse(decide_refusal_status(&e), e))
}

/// The analytics page: the store's figures, their charts drawn on the
/// server, and the incident memory's size.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AnalyticsView {
    pub analytics: engine::protocol::Analytics,
    /// MTTR by type over time, and the healing success rate.
    pub charts: Vec<crate::charts::Chart>,
    /// Incidents the memory holds.
    pub memory_entries: usize,
    /// The most it keeps.
    pub memory_capacity: usize,
    /// Cosine similarity from which a past incident counts as similar.
    pub similarity_threshold: f64,
}

/// Everything the analytics page shows.
// A read: GET, so it is never counted against the rate limit on writes.
#[server(input = server_fn::codec::GetUrl)]
pub async fn get_analytics() -> Result<AnalyticsView, ServerFnError> {
    let engine = engine()?;
    engine.flush().await;
    let analytics = store()?
        .analytics()
        .await
        .map_err(|e| refuse(axum::http::StatusCode::SERVICE_UNAVAILABLE, e))?;
    let memory = engine.memory();
    Ok(AnalyticsView {
        charts: crate::trends::render(&analytics),
        analytics,
        memory_entries: memory.len(),
        memory_capacity: memory.capacity(),
        similarity_threshold: engine::memory::SIMILARITY_THRESHOLD,
    })
}

/// Forgets every remembered incident (an operator action, like
/// `DELETE /api/memory`); returns how many there were. A plain form post
/// works too.
#[server(endpoint = "clear_memory")]
pub async fn clear_memory() -> Result<u64, ServerFnError> {
    require_operator().await?;
    Ok(engine()?.clear_memory("dashboard"))
}
