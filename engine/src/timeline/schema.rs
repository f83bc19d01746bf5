//! The JSON Schema of a timeline file, as [`Timeline::parse`] enforces it.
//!
//! The OpenAPI document serves it as `TimelineFile`. It is built when asked
//! because two of its rules are data known only at run time: a scenario id
//! is one of the catalog's, and a service one of the estate's. The one rule
//! a JSON Schema cannot state, that no delay runs past the timeline's
//! duration, is said in `delay_seconds`'s description; `parse` answers it
//! with a 422 that names the incident.
//!
//! [`Timeline::parse`]: super::Timeline::parse

use serde_json::{Value, json};

use super::{MAX_DURATION_MINUTES, MAX_INCIDENTS, MAX_PROMPT};
use crate::{catalog::Catalog, request::PRINTABLE, twin::topology::Topology};

/// The schema of a whole timeline file (seed 004's format).
pub fn timeline_file(catalog: &Catalog, topology: &Topology) -> Value {
    let scenarios: Vec<&str> = catalog.scenarios().iter().map(|s| s.id.as_str()).collect();
    let services: Vec<Value> = topology.names().map(Value::from).chain([Value::Null]).collect();
    let common = |kind: &str| {
        json!({
            "delay_seconds": {
                "type": "number", "minimum": 0, "maximum": MAX_DURATION_MINUTES * 60.0,
                "description": "Seconds from the start; at most the timeline's duration",
            },
            "type": {"const": kind},
            "service_name": {"enum": services, "description": "The service it hits (default: the scenario's)"},
            "expected_severity": {"enum": ["low", "medium", "high", "critical", null]},
            "comment": {"type": "string"},
        })
    };
    let entry = |kind: &str, field: &str, schema: Value, other: &str| {
        let mut properties = common(kind);
        properties[field] = schema;
        properties[other] = json!({"type": "null"});
        json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["delay_seconds", "type", field],
            "properties": properties,
        })
    };
    json!({
        "title": "TimelineFile",
        "description": "A timeline (seed 004): incidents on a schedule, by catalog scenario or by prompt",
        "type": "object",
        "additionalProperties": false,
        "required": ["name", "duration_minutes", "incidents"],
        "properties": {
            "name": {"type": "string", "pattern": PRINTABLE},
            "description": {"type": "string"},
            "duration_minutes": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_DURATION_MINUTES},
            "incidents": {
                "type": "array", "minItems": 1, "maxItems": MAX_INCIDENTS,
                "items": {"oneOf": [
                    entry("predefined", "scenario_id", json!({"enum": scenarios}), "llm_prompt"),
                    entry("llm_generated", "llm_prompt", json!({
                        "type": "string", "maxLength": MAX_PROMPT, "pattern": PROMPT,
                    }), "scenario_id"),
                ]},
            },
        },
    })
}

/// What a prompt matches: not blank, and no control characters other than
/// newlines and tabs (the rule `parse` applies).
pub const PROMPT: &str = "^[^\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f]*$";
