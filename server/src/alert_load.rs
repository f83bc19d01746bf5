//! `antibody loadtest --alerts`: how fast the alert intake takes alerts.
//!
//! Two phases, each after the server is up:
//! - **At a rate**: one Alertmanager delivery of one new alert every
//!   1/`rate` s, sent open-loop (a slow answer never delays the next send,
//!   so a stall shows in the latencies instead of hiding in the schedule);
//!   the time from send to the 202, at p50, p99 and max, and the share
//!   answered otherwise.
//! - **Flat out**: `SENDERS` senders, each sending its next delivery as
//!   soon as the last is answered: alerts accepted per second.
//!
//! Each alert has a fingerprint of its own, on a service chosen round robin,
//! so the desk opens, joins and records as it would under a storm.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::json;
use tokio::sync::Mutex;

/// Concurrent senders of the flat-out phase.
const SENDERS: usize = 16;
/// Services the alerts name, round robin: spread over the call graph.
const SERVICES: [&str; 6] = [
    "order-service",
    "payment-service",
    "user-service",
    "inventory-service",
    "redis-cache",
    "ingestion-agent",
];

/// What one run measured.
#[derive(Debug, Serialize)]
pub struct AlertLoadReport {
    /// Alerts per second asked for in the first phase.
    pub target_alerts_per_s: u32,
    /// Alerts answered 202 per second in that phase.
    pub accepted_per_s: f64,
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    pub latency_max_ms: f64,
    /// Deliveries answered with anything but 202, or not at all.
    pub refused: u64,
    /// Alerts answered 202 per second with `SENDERS` senders flat out.
    pub flat_out_accepted_per_s: f64,
    pub flat_out_latency_p99_ms: f64,
    /// Deliveries refused (or unanswered) flat out.
    pub flat_out_refused: u64,
    pub window_s: f64,
}

/// One delivery of one new alert.
fn delivery(n: u64) -> serde_json::Value {
    let service = SERVICES[n as usize % SERVICES.len()];
    json!({
        "version": "4",
        "status": "firing",
        "receiver": "antibody",
        "alerts": [{
            "status": "firing",
            "fingerprint": format!("load-{n}"),
            "startsAt": chrono::Utc::now(),
            "labels": {"alertname": "LoadTest", "service": service, "severity": "warning"},
            "annotations": {"summary": format!("{service}: load test alert {n}")},
        }],
    })
}

/// Tallies shared by the senders.
struct Tally {
    latencies: Mutex<Histogram<u64>>,
    accepted: AtomicU64,
    refused: AtomicU64,
    /// Only answers to requests sent while this is set count.
    measuring: AtomicBool,
}

impl Tally {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            latencies: Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds")),
            accepted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            measuring: AtomicBool::new(false),
        })
    }
}

/// Sends delivery `n` and tallies its answer, if sent while measuring.
async fn send(client: &reqwest::Client, url: &str, token: &str, n: u64, tally: &Tally) {
    let counted = tally.measuring.load(Ordering::Relaxed);
    let started = Instant::now();
    let answer = client.post(url).bearer_auth(token).json(&delivery(n)).send().await;
    if !counted {
        return;
    }
    match answer {
        Ok(response) if response.status() == reqwest::StatusCode::ACCEPTED => {
            let micros = started.elapsed().as_micros() as u64;
            tally.latencies.lock().await.saturating_record(micros.max(1));
            tally.accepted.fetch_add(1, Ordering::Relaxed);
        }
        _ => {
            tally.refused.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Runs both phases against the intake at `base`.
pub async fn run(base: &str, token: &str, rate: u32, warmup: u32, duration: u32) -> anyhow::Result<AlertLoadReport> {
    let url = format!("{base}/api/alerts/alertmanager");
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let probe = client.post(&url).bearer_auth(token).json(&delivery(0)).send().await?;
    anyhow::ensure!(
        probe.status() == reqwest::StatusCode::ACCEPTED,
        "the intake answered {}: {} (is ANTIBODY_INTAKE_TOKEN the server's?)",
        probe.status(),
        probe.text().await.unwrap_or_default()
    );
    let next = Arc::new(AtomicU64::new(1));
    let paced = at_a_rate(&client, &url, token, rate, warmup, duration, &next).await;
    let flat = flat_out(&client, &url, token, warmup, duration, &next).await;
    let window_s = f64::from(duration);
    let (paced, flat) = (paced?, flat?);
    let ms = |micros: u64| micros as f64 / 1000.0;
    let latencies = paced.latencies.lock().await;
    let flat_latencies = flat.latencies.lock().await;
    Ok(AlertLoadReport {
        target_alerts_per_s: rate,
        accepted_per_s: paced.accepted.load(Ordering::Relaxed) as f64 / window_s,
        latency_p50_ms: ms(latencies.value_at_quantile(0.5)),
        latency_p99_ms: ms(latencies.value_at_quantile(0.99)),
        latency_max_ms: ms(latencies.max()),
        refused: paced.refused.load(Ordering::Relaxed),
        flat_out_accepted_per_s: flat.accepted.load(Ordering::Relaxed) as f64 / window_s,
        flat_out_latency_p99_ms: ms(flat_latencies.value_at_quantile(0.99)),
        flat_out_refused: flat.refused.load(Ordering::Relaxed),
        window_s,
    })
}

/// One delivery every 1/`rate` s, open loop, for `warmup` then `duration`
/// seconds; only the second counts.
async fn at_a_rate(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    rate: u32,
    warmup: u32,
    duration: u32,
    next: &Arc<AtomicU64>,
) -> anyhow::Result<Arc<Tally>> {
    let tally = Tally::new();
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let start = Instant::now();
    let (warm, end) = (
        Duration::from_secs(warmup.into()),
        Duration::from_secs((warmup + duration).into()),
    );
    let mut inflight = tokio::task::JoinSet::new();
    while start.elapsed() < end {
        ticker.tick().await;
        tally.measuring.store(start.elapsed() >= warm, Ordering::Relaxed);
        let (client, url, token, tally) = (client.clone(), url.to_owned(), token.to_owned(), Arc::clone(&tally));
        let n = next.fetch_add(1, Ordering::Relaxed);
        inflight.spawn(async move { send(&client, &url, &token, n, &tally).await });
    }
    tally.measuring.store(false, Ordering::Relaxed);
    while inflight.join_next().await.transpose()?.is_some() {}
    Ok(tally)
}

/// `SENDERS` senders, each sending as soon as its last is answered.
async fn flat_out(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    warmup: u32,
    duration: u32,
    next: &Arc<AtomicU64>,
) -> anyhow::Result<Arc<Tally>> {
    let tally = Tally::new();
    let start = Instant::now();
    let (warm, end) = (
        Duration::from_secs(warmup.into()),
        Duration::from_secs((warmup + duration).into()),
    );
    let mut senders = tokio::task::JoinSet::new();
    for _ in 0..SENDERS {
        let (client, url, token, tally, next) = (
            client.clone(),
            url.to_owned(),
            token.to_owned(),
            Arc::clone(&tally),
            Arc::clone(next),
        );
        senders.spawn(async move {
            while start.elapsed() < end {
                let n = next.fetch_add(1, Ordering::Relaxed);
                send(&client, &url, &token, n, &tally).await;
            }
        });
    }
    let measuring = Arc::clone(&tally);
    tokio::time::sleep(warm).await;
    measuring.measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(end - warm).await;
    measuring.measuring.store(false, Ordering::Relaxed);
    while senders.join_next().await.transpose()?.is_some() {}
    Ok(tally)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_delivery_is_one_new_valid_alert_on_a_service_of_the_estate() {
        let topology = engine::twin::Topology::embedded().unwrap();
        let mut fingerprints = std::collections::HashSet::new();
        for n in 0..12 {
            let webhook: engine::intake::alertmanager::Webhook = serde_json::from_value(delivery(n)).unwrap();
            let alerts = webhook.parse(&topology).expect("the intake takes it");
            assert_eq!(alerts.len(), 1);
            assert!(
                fingerprints.insert(alerts[0].fingerprint.clone()),
                "a new alert each time"
            );
        }
    }
}
