//! `GET /api/snapshot` when warm: the server in process on 127.0.0.1:0,
//! with incidents in its history, asked over real HTTP. The target is
//! under 5 ms of server time; this measures the whole round trip, which
//! bounds it from above.
//!
//! `cargo bench -p server --bench snapshot`

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use server::{configuration::Settings, startup::Application};

fn snapshot(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let (base, http) = runtime.block_on(async {
        let mut settings = <Settings as clap::Parser>::parse_from([
            "antibody",
            "--addr",
            "127.0.0.1:0",
            "--speed",
            "1000",
            "--rate-limit",
            "1000000",
            "--rate-burst",
            "1000000",
        ]);
        settings.database_url = format!("sqlite://{}/bench.db", data.path().display());
        let app = Application::build(settings).await.unwrap();
        let base = format!("http://{}", app.addr());
        tokio::spawn(app.run_until_stopped(std::future::pending()));
        let http = reqwest::Client::new();
        // A history to show: the snapshot lists 50 incidents and 200 events.
        for scenario in ["database_cascade", "api_slowdown", "service_down"]
            .iter()
            .cycle()
            .take(60)
        {
            let url = format!("{base}/api/scenarios/{scenario}/trigger");
            http.post(url).send().await.unwrap().error_for_status().unwrap();
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        (base, http)
    });
    let url = format!("{base}/api/snapshot");
    c.bench_function("GET /api/snapshot (warm)", |b| {
        b.to_async(&runtime).iter(|| async {
            let body = http.get(&url).send().await.unwrap().bytes().await.unwrap();
            assert!(body.len() > 1_000);
        });
    });
}

criterion_group!(benches, snapshot);
criterion_main!(benches);
