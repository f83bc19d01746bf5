//! The twin as a Prometheus target: its exposition passes `promtool check
//! metrics`, and a real Prometheus scrapes it and sees the estate's
//! traffic, latency and call graph.

use std::time::Duration;

use engine::twin::topology::Topology;

use crate::{
    components::{TempPrometheus, installed},
    helpers::{eventually, settings_in, spawn_app, spawn_app_with},
};

#[tokio::test]
async fn the_twins_exposition_passes_promtool() {
    let app = spawn_app().await;
    let response = app.http.get(app.url("/twin/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = response.text().await.unwrap();
    for family in [
        "http_requests_total",
        "http_request_duration_seconds",
        "connection_pool_usage_ratio",
        "memory_usage_ratio",
        "cpu_usage_ratio",
        "disk_usage_ratio",
        "queue_depth",
        "service_instances",
        "model_accuracy_ratio",
        "model_feature_psi",
        "pipeline_heartbeat_timestamp_seconds",
        "traces_service_graph_request_total",
    ] {
        assert!(text.contains(&format!("# TYPE {family} ")), "{family} is exported");
    }
    let Some(promtool) = installed("promtool") else { return };
    let mut check = tokio::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut check.stdin.take().unwrap(), text.as_bytes())
        .await
        .unwrap();
    let out = check.wait_with_output().await.unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Prometheus runs on the wall clock, so this server runs the twin at speed 1.
#[tokio::test]
async fn a_real_prometheus_scrapes_the_twins_traffic_latency_and_call_graph() {
    let app = spawn_app_with(|data| settings_in(data, 1.0, Duration::from_secs(5))).await;
    let Some(prometheus) = TempPrometheus::scraping(&app.addr.to_string(), "/twin/metrics").await else {
        return;
    };
    let topology = Topology::embedded().unwrap();
    let edges = topology.services.iter().map(|s| s.edges.len()).sum::<usize>();
    // Two scrapes at least, so rates exist; `irate` is the last two
    // samples' slope, where `rate` over a window not yet full would
    // understate it.
    let gateway_rps = eventually(
        "Prometheus has two scrapes of the twin",
        Duration::from_millis(250),
        Duration::from_secs(30),
        || async {
            let rate = prometheus
                .query(r#"sum(irate(http_requests_total{service="api-gateway"}[10s]))"#)
                .await;
            rate.first().map(|(_, v)| *v).filter(|v| *v > 0.0)
        },
    )
    .await;
    assert_eq!(prometheus.query(r#"up{job="twin"}"#).await[0].1, 1.0);
    let services = prometheus
        .query(r#"count(count by (service) (http_requests_total))"#)
        .await;
    assert_eq!(
        services[0].1 as usize,
        topology.services.len(),
        "every service's requests"
    );
    let graph = prometheus.query("count(traces_service_graph_request_total)").await;
    assert_eq!(graph[0].1 as usize, edges, "one series per edge of the call graph");
    // The twin's own reading of the gateway's traffic, from the snapshot.
    let snapshot = app.snapshot().await;
    let gateway = snapshot
        .twin
        .iter()
        .find(|s| s.name == "api-gateway")
        .expect("the gateway");
    assert!(
        (gateway_rps / gateway.rps - 1.0).abs() < 0.5,
        "Prometheus's rate {gateway_rps:.0}/s against the twin's {:.0}/s",
        gateway.rps
    );
    let p99 = prometheus
        .query(r#"histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{service="api-gateway"}[10s])))"#)
        .await;
    let p99 = p99[0].1;
    assert!(p99 > 0.0 && p99 < 2.5, "the gateway's p99 from the histogram: {p99} s");
}

/// The shipped rules (`deploy/prometheus/twin-rules.yml`): quiet on a
/// healthy estate, and the error-rate objective's alert on a crash loop.
#[tokio::test]
async fn the_shipped_alert_rules_stay_quiet_on_a_healthy_twin_and_fire_on_a_crash_loop() {
    if crate::helpers::on_postgres() {
        eprintln!("(the store's backend changes nothing a scrape sees: run once, on SQLite)");
        return;
    }
    let rules = crate::components::shipped("deploy/prometheus/twin-rules.yml");
    let app = spawn_app_with(|data| settings_in(data, 1.0, Duration::from_secs(5))).await;
    let target = app.addr.to_string();
    let Some(prometheus) = TempPrometheus::scraping_with_rules(&target, "/twin/metrics", &[rules]).await else {
        return;
    };
    // The windows (10 s) filled, and then some: nothing may be pending or firing.
    eventually(
        "15 s of scrapes",
        Duration::from_millis(500),
        Duration::from_secs(40),
        || async {
            let scrapes = prometheus.query(r#"count_over_time(up{job="twin"}[20s])"#).await;
            scrapes.first().filter(|(_, n)| *n >= 15.0).map(drop)
        },
    )
    .await;
    let alerts = prometheus.query("ALERTS").await;
    assert!(alerts.is_empty(), "a healthy twin raised {alerts:?}");

    app.inject(engine::twin::FaultKind::CrashLoop, "order-service");
    let firing = eventually(
        "the error-rate alert fires",
        Duration::from_millis(500),
        Duration::from_secs(40),
        || async {
            let alerts = prometheus
                .query(r#"ALERTS{alertname="ErrorRateObjectiveBreached",alertstate="firing"}"#)
                .await;
            (!alerts.is_empty()).then_some(alerts)
        },
    )
    .await;
    let services: Vec<&str> = firing
        .iter()
        .filter_map(|(labels, _)| labels["service"].as_str())
        .collect();
    assert!(
        services.contains(&"order-service"),
        "it names the crashing service: {services:?}"
    );
    assert_eq!(firing[0].0["severity"], "critical");
}

#[tokio::test]
async fn the_shipped_rules_pass_promtool() {
    let Some(promtool) = installed("promtool") else { return };
    let rules = crate::components::shipped("deploy/prometheus/twin-rules.yml");
    let (passed, said) = crate::components::check_with(&promtool, &["check", "rules"], &rules).await;
    assert!(passed, "promtool check rules: {said}");
    assert!(said.contains("SUCCESS: 12 rules found"), "{said}");
}
