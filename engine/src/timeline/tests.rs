use super::*;
use crate::twin::topology::Topology;

fn fixtures() -> (Catalog, Topology) {
    let topology = Topology::embedded().unwrap();
    (Catalog::embedded(&topology).unwrap(), topology)
}

fn parse(json: &str) -> Result<Timeline, TimelineErrors> {
    let (catalog, topology) = fixtures();
    Timeline::parse("custom", "custom.json", json, &catalog, &topology)
}

/// The issues' `path: reason` lines.
fn issues(json: &str) -> Vec<String> {
    parse(json)
        .unwrap_err()
        .0
        .into_iter()
        .map(|i| {
            assert_eq!(i.file, "custom.json");
            format!("{}: {}", i.path, i.reason)
        })
        .collect()
}

#[test]
fn the_built_in_timelines_have_seed_004s_schedules() {
    let (catalog, topology) = fixtures();
    let timelines = Timeline::built_in(&catalog, &topology).unwrap();
    let table: Vec<(&str, f64, usize)> = timelines
        .iter()
        .map(|t| (t.id.as_str(), t.duration.as_secs_f64() / 60.0, t.entries.len()))
        .collect();
    assert_eq!(
        table,
        [
            ("busy_day", 30.0, 4),
            ("demo_loop", 5.0, 5),
            ("gradual_escalation", 25.0, 5),
            ("incident_storm", 20.0, 5)
        ]
    );
    let storm = &timelines[3];
    let delays: Vec<u64> = storm.entries.iter().map(|e| e.delay.as_secs()).collect();
    assert_eq!(delays, [0, 60, 180, 240, 360]);
    let generated = storm
        .entries
        .iter()
        .filter(|e| matches!(e.source, Source::Generated { .. }))
        .count();
    assert_eq!(generated, 3, "a mix of predefined and generated");
}

#[test]
fn a_good_file_is_read_in_start_order_keeping_file_order_for_equal_delays() {
    let timeline = parse(
        r#"{"name": "Two at once", "duration_minutes": 2, "incidents": [
            {"delay_seconds": 60, "type": "predefined", "scenario_id": "cache_failure"},
            {"delay_seconds": 0, "type": "llm_generated", "llm_prompt": "redis down", "service_name": "redis-cache",
             "expected_severity": "low", "comment": "first"},
            {"delay_seconds": 60, "type": "predefined", "scenario_id": "service_down"}
        ]}"#,
    )
    .unwrap();
    let order: Vec<(u64, String)> = timeline
        .entries
        .iter()
        .map(|e| {
            let what = match &e.source {
                Source::Catalog { scenario_id } => scenario_id.clone(),
                Source::Generated { prompt, .. } => prompt.clone(),
            };
            (e.delay.as_secs(), what)
        })
        .collect();
    assert_eq!(
        order,
        [
            (0, "redis down".to_owned()),
            (60, "cache_failure".to_owned()),
            (60, "service_down".to_owned())
        ]
    );
    assert_eq!(timeline.entries[0].expected_severity, Some(Severity::Low));
    assert_eq!(timeline.description, "", "a description is optional");
}

#[test]
fn an_unknown_scenario_is_named_with_the_closest_one() {
    let found = issues(
        r#"{"name": "x", "duration_minutes": 5, "incidents": [
            {"delay_seconds": 0, "type": "predefined", "scenario_id": "memory_leak_gradul"}]}"#,
    );
    assert_eq!(
        found,
        ["incidents[0].scenario_id: no scenario `memory_leak_gradul`; did you mean `memory_leak_gradual`?"]
    );
}

#[test]
fn every_problem_is_reported_at_once_with_its_path() {
    let found = issues(
        r#"{"name": " ", "duration_minutes": 1, "incidents": [
            {"delay_seconds": -5, "type": "predefined", "scenario_id": "cache_failure"},
            {"delay_seconds": 90, "type": "predefined", "scenario_id": "cache_failure"},
            {"delay_seconds": 0, "type": "llm_generated"},
            {"delay_seconds": 0, "type": "llm_generated", "llm_prompt": "dns", "service_name": "mainframe"},
            {"delay_seconds": 0, "type": "predefined"}
        ]}"#,
    );
    assert_eq!(
        found,
        [
            "name: must not be empty",
            "incidents[0].delay_seconds: -5 is negative: delays count from the start, 0 or more",
            "incidents[1].delay_seconds: 90 s is beyond the timeline's duration (1 min = 60 s)",
            "incidents[2].llm_prompt: missing: an `llm_generated` incident needs a prompt",
            "incidents[3].service_name: `mainframe` is not a service of the estate",
            "incidents[4].scenario_id: missing: a `predefined` incident names a catalog scenario",
        ]
    );
}

#[test]
fn an_unknown_field_or_a_wrong_type_is_refused_at_its_path() {
    let unknown = issues(
        r#"{"name": "x", "duration_minutes": 5, "incidents": [
            {"delay_seconds": 0, "type": "predefined", "scenario_id": "cache_failure", "delay": 3}]}"#,
    );
    assert_eq!(unknown.len(), 1);
    assert!(
        unknown[0].starts_with("incidents[0].delay: unknown field `delay`, expected one of `delay_seconds`"),
        "{unknown:?}"
    );

    let wrong_type = issues(r#"{"name": "x", "duration_minutes": "soon", "incidents": []}"#);
    assert!(
        wrong_type[0].starts_with("duration_minutes: invalid type: string \"soon\""),
        "{wrong_type:?}"
    );

    let bad_kind =
        issues(r#"{"name": "x", "duration_minutes": 5, "incidents": [{"delay_seconds": 0, "type": "scripted"}]}"#);
    assert!(
        bad_kind[0].starts_with("incidents[0].type: unknown variant `scripted`"),
        "{bad_kind:?}"
    );

    let not_json = issues("{\"name\": ");
    assert!(not_json[0].contains("not valid JSON"), "{not_json:?}");
}

#[test]
fn a_timeline_needs_incidents_and_a_sane_duration() {
    let found = issues(r#"{"name": "x", "duration_minutes": 0, "incidents": []}"#);
    assert_eq!(
        found,
        [
            "duration_minutes: 0 is out of range: use more than 0 and at most 1440 minutes",
            "incidents: lists no incidents"
        ]
    );
}

#[test]
fn names_and_prompts_refuse_control_characters_and_a_prompt_is_measured_as_sent() {
    let file = |name: &str, prompt: &str| {
        serde_json::json!({"name": name, "duration_minutes": 1, "incidents": [
            {"delay_seconds": 0, "type": "llm_generated", "llm_prompt": prompt}
        ]})
        .to_string()
    };
    assert_eq!(
        issues(&file("Day\u{7}", "redis down")),
        ["name: must not contain control characters"]
    );
    assert_eq!(
        issues(&file("Day", "redis\u{1b}[31m down")),
        ["incidents[0].llm_prompt: must not contain control characters other than newlines and tabs"]
    );
    assert!(parse(&file("Day", "redis down\n\tafter the deploy")).is_ok());
    // 2,000 characters and one trailing space: over the limit as sent, as
    // the schema's `maxLength` counts it, though the trimmed prompt fits.
    let long = format!("{} ", "x".repeat(MAX_PROMPT));
    assert_eq!(
        issues(&file("Day", &long)),
        [format!(
            "incidents[0].llm_prompt: is {} characters; at most {MAX_PROMPT}",
            MAX_PROMPT + 1
        )]
    );
}

#[test]
fn the_schema_names_the_estates_scenarios_and_services_and_every_field_a_file_uses() {
    let (catalog, topology) = fixtures();
    let schema = schema::timeline_file(&catalog, &topology);
    let entries = schema["properties"]["incidents"]["items"]["oneOf"].as_array().unwrap();
    let predefined = &entries[0]["properties"];
    let scenarios: Vec<&str> = predefined["scenario_id"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let known: Vec<&str> = catalog.scenarios().iter().map(|s| s.id.as_str()).collect();
    assert_eq!(scenarios, known);
    let services = predefined["service_name"]["enum"].as_array().unwrap();
    assert_eq!(services.len(), topology.names().count() + 1, "every service, and null");
    for (id, json) in crate::catalog::embedded::TIMELINES {
        let file: serde_json::Value = serde_json::from_str(json).unwrap();
        for key in file.as_object().unwrap().keys() {
            assert!(
                schema["properties"].get(key).is_some(),
                "{id}: `{key}` is in the schema"
            );
        }
        for entry in file["incidents"].as_array().unwrap() {
            let branch = entries
                .iter()
                .find(|b| b["properties"]["type"]["const"] == entry["type"])
                .unwrap();
            for key in entry.as_object().unwrap().keys() {
                assert!(
                    branch["properties"].get(key).is_some(),
                    "{id}: `{key}` is in the schema"
                );
            }
        }
    }
}
