//! The swarm under load: 1,000 and 10,000 concurrent incidents, every
//! catalog scenario in turn, each on its own twin, at the highest speed.
//!
//! Each run checks that every incident closed and that a subscriber
//! received every event the log published, then reports incidents/s,
//! agent events/s and the process's peak memory, and the resident memory
//! after the run (it should come back down: nothing leaks per incident).
//!
//! `cargo bench -p engine --bench swarm`

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use engine::{Engine, EngineConfig, TwinMode, catalog::Catalog, clock::Speed, protocol::ServerMessage, twin::Topology};

/// One run: `incidents` at once; returns (wall time, events seen).
async fn run(incidents: usize, seed: u64) -> (Duration, u64) {
    let topology = Arc::new(Topology::embedded().unwrap());
    let catalog = Catalog::embedded(&topology).unwrap();
    let engine = Engine::with_catalog(
        EngineConfig {
            speed: Speed::new(Speed::MAX).unwrap(),
            seed: Some(seed),
            twin: TwinMode::Isolated,
            retain_events: 10_000,
            // A subscriber that keeps up never lags; this one must see all.
            fanout_capacity: 1 << 19,
            commit_window: std::time::Duration::ZERO,
            agent_workers: 1_024,
            max_active_incidents: u64::MAX,
            webhook: None,
            agent_failure_rate: 0.0,
            // The autonomous policy: nobody is there to approve.
            ..EngineConfig::default()
        },
        topology,
        catalog,
    )
    .unwrap();
    let ids: Vec<String> = engine.scenarios().into_iter().map(|s| s.id).collect();
    let mut live = engine.feed(None).live;
    let started = Instant::now();
    for i in 0..incidents {
        engine.trigger_scenario(&ids[i % ids.len()], None).unwrap();
    }
    let (mut seen, mut closed, mut last_seq) = (0u64, 0, 0);
    while closed < incidents {
        let event = live.recv().await.expect("the subscriber keeps up");
        seen += 1;
        assert_eq!(event.seq, last_seq + 1, "no gap");
        last_seq = event.seq;
        if matches!(event.message, ServerMessage::IncidentStatus { .. }) {
            closed += 1;
        }
    }
    let wall = started.elapsed();
    engine.shutdown(Duration::from_secs(1)).await;
    assert_eq!(engine.metrics().incidents_active, 0);
    (wall, seen)
}

/// `VmHWM` and `VmRSS` from /proc, in MiB (Linux).
fn memory_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn swarm(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // The figures criterion does not measure, from one run of each size.
    for incidents in [1_000usize, 10_000] {
        let (wall, events) = runtime.block_on(run(incidents, 1));
        let (peak, after) = memory_mib();
        eprintln!(
            "{incidents} incidents: {:.2} s, {:.0} incidents/s, {events} events, {:.0} events/s, \
             peak RSS {peak:.0} MiB, RSS after {after:.0} MiB",
            wall.as_secs_f64(),
            incidents as f64 / wall.as_secs_f64(),
            events as f64 / wall.as_secs_f64(),
        );
    }
    // Timed by criterion: 1,000 at once (10,000 would take minutes a sample).
    let mut group = c.benchmark_group("concurrent_incidents");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(15));
    group.throughput(Throughput::Elements(1_000));
    group.bench_with_input(BenchmarkId::from_parameter(1_000), &1_000usize, |b, &n| {
        b.iter_custom(|iterations| (0..iterations).map(|i| runtime.block_on(run(n, i + 2)).0).sum());
    });
    group.finish();
    let (_, after) = memory_mib();
    eprintln!("RSS after every run: {after:.0} MiB");
}

criterion_group!(benches, swarm);
criterion_main!(benches);
