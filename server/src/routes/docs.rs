//! The API's description: `GET /api/openapi.json` (OpenAPI 3.1, generated
//! from the handlers' annotations and the wire types) and `GET /docs`, an
//! interactive page (Swagger UI) that needs no network: its script and
//! stylesheet come from npm's `swagger-ui-dist` and are served from the
//! site's `docs/` folder (`cargo xtask` copies them there).

use axum::{
    Json,
    extract::State,
    response::{Html, IntoResponse},
};
use engine::{Engine, timeline::runner::Timelines};
use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

use crate::{problem::Problem, routes};

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Antibody",
        description = "A self-healing incident-response swarm. Every change is an event with a global `seq`; \
                       `GET /ws` streams them live (see the README for the WebSocket protocol).",
        license(name = "MIT")
    ),
    paths(
        routes::health::healthz,
        routes::health::readyz,
        routes::incidents::create_incident,
        routes::history::list_incidents,
        routes::history::get_incident,
        routes::history::get_telemetry,
        routes::history::events,
        routes::live::snapshot,
        routes::live::metrics,
        routes::live::scenarios,
        routes::live::trigger,
        routes::timelines::list,
        routes::timelines::validate,
        routes::timelines::start,
        routes::timelines::runs,
        routes::timelines::run,
        routes::timelines::steer,
        routes::approvals::list,
        routes::approvals::get,
        routes::approvals::decide,
        routes::approvals::audit,
        routes::approvals::policy,
        routes::memory::export,
        routes::memory::clear,
        routes::analytics::analytics,
        routes::analytics::models,
        routes::twin::metrics,
        routes::actions::result,
        routes::alerts::alertmanager,
        routes::alerts::pagerduty,
    ),
    components(schemas(
        Problem,
        engine::protocol::ServerMessage,
        engine::protocol::Envelope,
        routes::timelines::SteerAction
    )),
    modifiers(&OperatorToken),
    tags(
        (name = "incidents", description = "Open, list and inspect incidents"),
        (name = "scenarios", description = "The scenario catalog"),
        (name = "timelines", description = "Scheduled incident streams, run and scored like a game day"),
        (name = "governance", description = "Policy decisions, human approvals with escalation, and the audit log"),
        (name = "memory", description = "The incident memory: export and clear"),
        (name = "events", description = "The event log and the dashboard's snapshot"),
        (name = "health", description = "Liveness and readiness"),
        (name = "actions", description = "Actions out: runbook systems report a step's outcome"),
        (name = "alerts", description = "Alerts in: Alertmanager's and Grafana's webhooks"),
        (name = "twin", description = "The simulated estate as a Prometheus target"),
    )
)]
pub struct ApiDoc;

/// Declares the operator token (a bearer token) that mutating endpoints
/// need when the server runs in operator mode.
struct OperatorToken;

impl Modify for OperatorToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "operator",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("ANTIBODY_OPERATOR_TOKEN, when the server sets one"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "intake",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "ANTIBODY_INTAKE_TOKEN (also accepted as the password of basic auth)",
                    ))
                    .build(),
            ),
        );
    }
}

pub async fn openapi_json(State(engine): State<Engine>, State(timelines): State<Timelines>) -> impl IntoResponse {
    let mut document = serde_json::to_value(ApiDoc::openapi()).expect("the document serializes");
    name_the_catalog(&mut document, &engine);
    describe_timeline_files(&mut document, &timelines);
    Json(document)
}

/// Adds `TimelineFile` (the engine's schema of seed 004's format, with this
/// estate's scenarios and services) and points the two bodies that carry a
/// timeline file at it.
fn describe_timeline_files(document: &mut serde_json::Value, timelines: &Timelines) {
    document["components"]["schemas"]["TimelineFile"] = timelines.file_schema();
    let file = serde_json::json!({"$ref": "#/components/schemas/TimelineFile"});
    let validate = "/paths/~1api~1timelines~1validate/post/requestBody/content/application~1json/schema";
    *document
        .pointer_mut(validate)
        .expect("the document has the validate body") = file.clone();
    let run = "/components/schemas/StartRun/properties/timeline";
    *document.pointer_mut(run).expect("the document has StartRun") = serde_json::json!({
        "oneOf": [file, {"type": "null"}],
        "description": "A timeline file, instead of `timeline_id`",
    });
}

/// States what the server enforces that the derive cannot say: a
/// scenario id is one of the catalog's (data, known only when the server
/// runs), and each affected service a distinct DNS-label name.
fn name_the_catalog(document: &mut serde_json::Value, engine: &Engine) {
    let ids: Vec<serde_json::Value> = engine.scenarios().into_iter().map(|s| s.id.into()).collect();
    let properties = &mut document["components"]["schemas"]["NewIncident"]["properties"];
    if let Some(schema) = properties["scenario_id"].as_object_mut() {
        schema.insert(
            "enum".into(),
            serde_json::Value::Array([&ids[..], &[serde_json::Value::Null]].concat()),
        );
    }
    if let Some(schema) = properties["affected_services"].as_object_mut() {
        schema.insert("uniqueItems".into(), true.into());
        schema.insert(
            "items".into(),
            serde_json::json!({
                "type": "string",
                "minLength": 1,
                "maxLength": engine::request::MAX_SERVICE_NAME_LEN,
                "pattern": "^[a-z0-9]([a-z0-9-]*[a-z0-9])?$",
            }),
        );
    }
}

/// The docs page: Swagger UI over our own document, from local assets.
pub async fn page() -> Html<&'static str> {
    Html(
        r##"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Antibody API</title>
  <link rel="icon" type="image/svg+xml" href="/favicon.svg">
  <link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({ url: "/api/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
  </script>
</body>
</html>"##,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_with_every_endpoint() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        for path in [
            "/api/incidents",
            "/api/incidents/{id}",
            "/api/events",
            "/api/snapshot",
            "/api/metrics",
            "/api/scenarios",
            "/api/scenarios/{id}/trigger",
            "/healthz",
            "/readyz",
        ] {
            assert!(doc["paths"].get(path).is_some(), "{path} is documented");
        }
        let schemas = &doc["components"]["schemas"];
        for schema in [
            "Incident",
            "NewIncident",
            "Problem",
            "Snapshot",
            "IncidentDetail",
            "ServerMessage",
        ] {
            assert!(schemas.get(schema).is_some(), "{schema} is a schema");
        }
        assert_eq!(doc["components"]["securitySchemes"]["operator"]["scheme"], "bearer");
    }
}
