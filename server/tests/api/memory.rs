//! The incident memory and the analytics over HTTP: what the swarm learned
//! is exported, survives a restart, and is cleared by an operator; the
//! analytics are the store's and survive a restart too.

use std::{sync::Arc, time::Duration};

use engine::protocol::{ActionDetails, Analytics, MemoryExport, ServerMessage};
use serde_json::Value;

use crate::helpers::{eventually, fire_and_finish, settings_in, spawn_app_in};

#[tokio::test]
async fn memory_is_exported_survives_a_restart_and_is_cleared() {
    let data = Arc::new(tempfile::tempdir().unwrap());
    let settings = || settings_in(&data, 200.0, Duration::from_secs(5));
    let mut app = spawn_app_in(data.clone(), settings()).await;
    let empty: MemoryExport = app.json("/api/memory").await;
    assert!(empty.entries.is_empty());
    assert_eq!(empty.capacity, 2_000);

    let first = fire_and_finish(&app, "cache_failure").await;
    let second = fire_and_finish(&app, "cache_failure").await;
    let memory: MemoryExport = app.json("/api/memory").await;
    let ids: Vec<String> = memory.entries.iter().map(|e| e.incident_id.to_string()).collect();
    assert_eq!(ids, [first.clone(), second.clone()], "oldest first");
    let fix = memory.entries[0].healing_fix().expect("the cache failure was healed");
    assert_eq!(
        (fix.service.as_str(), fix.fault.as_str()),
        ("redis-cache", "cache_failure")
    );
    assert!(memory.entries[0].features.iter().any(|f| f.service == "redis-cache"));

    // The second run recalled the first: its diagnosis weighed it, and
    // the fix's one success.
    let detail = app.incident(&second).await;
    let recalled = detail.timeline.iter().any(|e| {
        matches!(&e.message, ServerMessage::AgentAction { action, .. }
            if matches!(&action.details, ActionDetails::Diagnosis(d)
                if d.similar_incidents == 1
                    && d.hypotheses.first().and_then(|h| h.memory.as_ref()).is_some_and(|m| (m.healed, m.tried) == (1, 1))))
    });
    assert!(recalled, "{detail:#?}");
    let analytics: Analytics = app.json("/api/analytics").await;
    assert_eq!(analytics.resolved, 2);
    let cache = analytics
        .mttr_by_type
        .iter()
        .find(|t| t.incident_type == "cache_failure")
        .expect("MTTR by type");
    assert_eq!(cache.resolved, 2);
    assert!(cache.mttr_seconds > 0.0);
    assert_eq!(analytics.healing_success_rate, Some(1.0));
    assert!(analytics.steps_run >= 2);
    // Health reports come once a wall-clock second; the first is stored
    // within a few.
    let stored: Analytics = eventually(
        "a health report stored",
        Duration::from_millis(100),
        Duration::from_secs(5),
        || async {
            let now: Analytics = app.json("/api/analytics").await;
            (now.health_reports > 0).then_some(now)
        },
    )
    .await;
    let slo = stored.latency_slo_compliance.expect("the model service has traffic");
    assert!((0.0..=1.0).contains(&slo), "{slo}");

    app.stop().await.unwrap();
    let app = spawn_app_in(data.clone(), settings()).await;
    let restored: MemoryExport = app.json("/api/memory").await;
    assert_eq!(restored.entries, memory.entries, "memory survives a restart");
    let again: Analytics = app.json("/api/analytics").await;
    assert_eq!(
        again.mttr_by_type, analytics.mttr_by_type,
        "analytics come from the store"
    );
    assert_eq!(again.recent, analytics.recent);

    let cleared = app.clear_memory().await;
    assert_eq!(cleared.status(), 200);
    assert_eq!(cleared.json::<Value>().await.unwrap()["removed"], 2);
    let after: MemoryExport = app.json("/api/memory").await;
    assert!(after.entries.is_empty());
}

#[tokio::test]
async fn clearing_memory_needs_the_operator_token_in_operator_mode() {
    let data = Arc::new(tempfile::tempdir().unwrap());
    let settings = server::configuration::Settings {
        operator_token: Some("s3cret".into()),
        ..settings_in(&data, 200.0, Duration::from_secs(5))
    };
    let app = spawn_app_in(data.clone(), settings).await;
    let refused = app.clear_memory().await;
    assert_eq!(refused.status(), 401);
    let allowed = app
        .http
        .delete(app.url("/api/memory"))
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200);
    // Reading it is open, like every other read.
    let export = app.export_memory().await;
    assert_eq!(export.status(), 200);
}

#[tokio::test]
async fn the_analytics_page_is_server_rendered_with_its_charts_and_the_memory() {
    let app = crate::helpers::spawn_app().await;
    let empty = app.text("/analytics").await;
    assert!(empty.contains("No incident resolved yet"), "an empty store says so");
    fire_and_finish(&app, "service_down").await;
    fire_and_finish(&app, "cache_failure").await;
    let page = app.text("/analytics").await;
    for expected in [
        "data-testid=\"mttr-table\"",
        ">service_down<",
        ">cache_failure<",
        "data-testid=\"analytics-chart\"",
        "<svg",
        "MTTR by incident type",
        "Healing success rate",
        "2 of 2000 incidents remembered",
        "href=\"/api/memory\"",
    ] {
        assert!(page.contains(expected), "`{expected}` is not on the page");
    }
}
