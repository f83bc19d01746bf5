//! Timelines over HTTP: `GET /api/timelines` (the built-in ones, with
//! their schedules), `POST /api/timelines/validate` (check a file, every
//! problem at once), `POST /api/timeline-runs` (start one, built-in or
//! pasted), `GET /api/timeline-runs[/{id}]` (runs, live or from the store)
//! and `POST /api/timeline-runs/{id}/{pause|resume|cancel}`.

use axum::{
    Json,
    body::Bytes,
    extract::{
        Path, Query, State,
        rejection::{JsonRejection, PathRejection, QueryRejection},
    },
    http::StatusCode,
};
use engine::{
    protocol::{TimelineRun, TimelineSummary},
    timeline::{TimelineErrors, runner::RunError, runner::Timelines},
};
use serde::Deserialize;
use store::Store;
use uuid::Uuid;

use crate::problem::{FieldIssue, Problem};

/// Largest timeline file accepted, in bytes.
pub const MAX_TIMELINE_BYTES: usize = 256 * 1024;
/// Most runs listed at once.
const MAX_RUNS_LISTED: u32 = 100;

/// A timeline file's problems: 422, each with its JSON path.
fn invalid(errors: TimelineErrors) -> Problem {
    let issues: Vec<FieldIssue> = errors
        .0
        .iter()
        .map(|i| FieldIssue {
            field: i.path.clone(),
            reason: i.reason.clone(),
        })
        .collect();
    Problem::many(StatusCode::UNPROCESSABLE_ENTITY, errors.to_string(), issues)
}

/// The built-in timelines, with their schedules.
#[utoipa::path(get, path = "/api/timelines", tag = "timelines", responses(
    (status = 200, description = "Every built-in timeline", body = Vec<TimelineSummary>),
))]
pub async fn list(State(timelines): State<Timelines>) -> Json<Vec<TimelineSummary>> {
    Json(timelines.list())
}

/// Checks a timeline file (seed 004's JSON) without running it.
#[utoipa::path(post, path = "/api/timelines/validate", tag = "timelines",
    request_body(content = Object, description = "The timeline file, as JSON", content_type = "application/json"),
    responses(
        (status = 200, description = "Valid: the schedule as it would run", body = TimelineSummary),
        (status = 400, description = "The body is not UTF-8 text", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than the server's limit"),
        (status = 422, description = "Every problem, each with its JSON path in `errors`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn validate(State(timelines): State<Timelines>, body: Bytes) -> Result<Json<TimelineSummary>, Problem> {
    // Any content type: the file is pasted or uploaded as it is.
    let text = std::str::from_utf8(&body)
        .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, format!("the body is not UTF-8 text ({e})")))?;
    timelines
        .parse("custom", text)
        .map(|t| Json(t.summary()))
        .map_err(invalid)
}

/// `POST /api/timeline-runs` body: a built-in timeline by id, or a whole
/// timeline file.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRun {
    /// A built-in timeline, as in `busy_day`.
    timeline_id: Option<String>,
    /// A timeline file (seed 004's schema), instead of `timeline_id`.
    #[schema(value_type = Option<Object>)]
    timeline: Option<serde_json::Value>,
    /// Time compression for the schedule (default: the server's speed).
    speed: Option<f64>,
    /// Varies generated scenarios (default 0).
    seed: Option<u64>,
}

/// Starts a timeline run.
#[utoipa::path(post, path = "/api/timeline-runs", tag = "timelines",
    request_body = StartRun,
    responses(
        (status = 201, description = "Started", body = TimelineRun,
            headers(("Location" = String, description = "The run's address, as in `/api/timeline-runs/{id}`"))),
        (status = 400, description = "The body is not valid JSON; `field` says where", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Operator mode, and no token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such built-in timeline (the closest is suggested)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "As many runs as the server allows are already going", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON (Content-Type: application/json)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The body or the timeline is invalid; `field` or `errors` say where", body = Problem, content_type = "application/problem+json"),
    ),
    security((), ("operator" = [])))]
pub async fn start(
    State(timelines): State<Timelines>,
    body: Result<Json<StartRun>, JsonRejection>,
) -> Result<super::Created<TimelineRun>, Problem> {
    let Json(body) = body.map_err(|r| Problem::json(&r, &["timeline_id", "timeline", "speed", "seed"]))?;
    let timeline = match (body.timeline_id, body.timeline) {
        (Some(id), None) => timelines.find(&id).map_err(run_problem)?.clone(),
        (None, Some(file)) => timelines.parse("timeline", &file.to_string()).map_err(invalid)?,
        _ => {
            return Err(Problem::field(
                StatusCode::UNPROCESSABLE_ENTITY,
                "timeline_id",
                "give either `timeline_id` (a built-in timeline) or `timeline` (a timeline file), not both",
            ));
        }
    };
    let run = timelines
        .start(timeline, body.speed, body.seed.unwrap_or(0))
        .map_err(run_problem)?;
    Ok(super::created(format!("/api/timeline-runs/{}", run.run_id), run))
}

/// `GET /api/timeline-runs` parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RunQuery {
    /// Only runs of this timeline (to compare them).
    #[param(min_length = 1, max_length = 64, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$")]
    timeline_id: Option<String>,
    /// How many, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
}

/// Timeline runs, newest first, from the store.
#[utoipa::path(get, path = "/api/timeline-runs", tag = "timelines", params(RunQuery), responses(
    (status = 200, description = "Runs, newest first", body = Vec<TimelineRun>),
    (status = 400, description = "A parameter is invalid; `field` names it", body = Problem, content_type = "application/problem+json"),
))]
pub async fn runs(
    State(store): State<Store>,
    State(engine): State<engine::Engine>,
    query: Result<Query<RunQuery>, QueryRejection>,
) -> Result<Json<Vec<TimelineRun>>, Problem> {
    let Query(query) = query.map_err(|r| Problem::query(&r, &["timeline_id", "limit"]))?;
    let limit = match query.limit.unwrap_or(20) {
        n if (1..=MAX_RUNS_LISTED).contains(&n) => n,
        n => {
            return Err(Problem::field(
                StatusCode::BAD_REQUEST,
                "limit",
                format!("{n} is out of range: use 1 to {MAX_RUNS_LISTED}"),
            ));
        }
    };
    if let Some(id) = &query.timeline_id
        && (id.is_empty() || id.chars().count() > 64 || id.chars().any(char::is_control))
    {
        return Err(Problem::field(
            StatusCode::BAD_REQUEST,
            "timeline_id",
            "is not a timeline id: 1 to 64 printable characters",
        ));
    }
    // What was published is in the store once the writer catches up.
    engine.flush().await;
    store
        .timeline_runs(query.timeline_id.as_deref(), limit)
        .await
        .map(Json)
        .map_err(|e| Problem::store(&e))
}

/// One run: live when this server runs it, else as the store last saw it.
#[utoipa::path(get, path = "/api/timeline-runs/{id}", tag = "timelines",
    params(("id" = Uuid, Path, description = "The run's id")),
    responses(
        (status = 200, description = "The run", body = TimelineRun),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn run(
    State(timelines): State<Timelines>,
    State(store): State<Store>,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<Json<TimelineRun>, Problem> {
    let Path(id) = id.map_err(|r| Problem::field(StatusCode::BAD_REQUEST, "id", r.body_text()))?;
    if let Some(run) = timelines.run(id) {
        return Ok(Json(run));
    }
    match store.timeline_run(id).await {
        Ok(Some(run)) => Ok(Json(run)),
        Ok(None) => Err(Problem::field(
            StatusCode::NOT_FOUND,
            "id",
            format!("no timeline run {id}"),
        )),
        Err(e) => Err(Problem::store(&e)),
    }
}

/// What can be done to a running timeline (the path's `action`).
#[derive(Debug, Clone, Copy, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SteerAction {
    /// Stop the schedule's clock; open incidents carry on.
    Pause,
    /// Start the clock again.
    Resume,
    /// Stop firing; what fired runs to its end.
    Cancel,
}

/// Pauses, resumes or cancels a run.
#[utoipa::path(post, path = "/api/timeline-runs/{id}/{action}", tag = "timelines",
    params(
        ("id" = Uuid, Path, description = "The run's id"),
        ("action" = SteerAction, Path, description = "What to do to the run"),
    ),
    responses(
        (status = 200, description = "Done; the run as it is now (its state follows at once on the stream)", body = TimelineRun),
        (status = 400, description = "The id or the action is invalid", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Operator mode, and no token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run running here", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The run is already over", body = Problem, content_type = "application/problem+json"),
    ),
    security((), ("operator" = [])))]
pub async fn steer(
    State(timelines): State<Timelines>,
    path: Result<Path<(Uuid, String)>, PathRejection>,
) -> Result<Json<TimelineRun>, Problem> {
    let Path((id, action)) = path.map_err(|r| Problem::field(StatusCode::BAD_REQUEST, "id", r.body_text()))?;
    let action = match action.as_str() {
        "pause" => SteerAction::Pause,
        "resume" => SteerAction::Resume,
        "cancel" => SteerAction::Cancel,
        other => {
            return Err(Problem::field(
                StatusCode::BAD_REQUEST,
                "action",
                format!("`{other}` is not an action: use pause, resume or cancel"),
            ));
        }
    };
    let result = match action {
        SteerAction::Pause => timelines.pause(id),
        SteerAction::Resume => timelines.resume(id),
        SteerAction::Cancel => timelines.cancel(id),
    };
    result.map(Json).map_err(run_problem)
}

fn run_problem(error: RunError) -> Problem {
    let status = StatusCode::from_u16(error.http_status()).expect("a run error's status is valid");
    match error.field() {
        Some(field) => Problem::field(status, field, error.to_string()),
        None => Problem::new(status, error.to_string()),
    }
}
