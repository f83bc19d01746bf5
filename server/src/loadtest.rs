//! `antibody loadtest`: many dashboards on one server, events driven at a
//! rate, and what it costs.
//!
//! It opens N WebSocket dashboards, then drives real incidents through the
//! REST API (catalog scenarios, round robin), steering how often it fires
//! them so the server publishes about R events per second; every dashboard
//! receives every event. After a warm-up it measures, for a fixed window:
//! delivered messages per second, delivery latency (the event's server
//! `ts` to its receipt) at p50, p99 and max, gaps and resyncs, the
//! server's CPU (in cores, and in CPU-seconds per million frames
//! delivered), its socket writes (frames per write, from its `/metrics`),
//! and its resident memory (idle, with every dashboard connected, and at
//! peak). Before the dashboards connect it measures the disk's fsync
//! floor: the least any durable commit can take. Without `--url` it starts
//! this binary as a child on a free port with a throwaway database, so the
//! server's process is its own (and inherits this environment, so
//! `ANTIBODY_*` settings reach it).

use std::{
    io::{BufRead, BufReader, IsTerminal},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use tokio_tungstenite::tungstenite::Message;

use crate::configuration::LoadtestArgs;

/// What one run measured.
#[derive(Debug, Serialize)]
pub struct LoadReport {
    pub dashboards: u32,
    /// Events per second asked for.
    pub target_events_per_s: u32,
    /// Events per second the server published during the window.
    pub events_per_s: f64,
    /// Messages per second received, over all dashboards.
    pub delivered_per_s: f64,
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    pub latency_max_ms: f64,
    /// Missing `seq`s seen by any dashboard.
    pub gaps: u64,
    /// `resync` messages received (a dashboard fell behind).
    pub resyncs: u64,
    /// Dashboards that were disconnected during the window.
    pub dropped: u64,
    /// The server's CPU, in cores (1.0 = one core busy), if measured.
    pub server_cpu_cores: Option<f64>,
    /// The server's CPU-seconds per million frames delivered: its cost
    /// per frame, comparable across loads.
    pub server_cpu_s_per_million_frames: Option<f64>,
    /// Frames the server wrote per socket write (from its `/metrics`).
    pub frames_per_write: Option<f64>,
    /// Store transactions a second, and how long one took on average (the
    /// batches the events shared).
    pub commits_per_s: Option<f64>,
    pub commit_mean_ms: Option<f64>,
    /// The server's resident memory before any dashboard connected, MiB.
    pub server_rss_idle_mib: Option<f64>,
    /// What each connected dashboard adds to it, KiB: the resident memory
    /// with every dashboard connected (before any load) less the idle
    /// memory, divided by the dashboards.
    pub server_kib_per_dashboard: Option<f64>,
    /// Its peak resident memory, MiB.
    pub server_rss_peak_mib: Option<f64>,
    /// The disk's fsync floor, alone: a 4 KiB write and `fdatasync` beside
    /// the database (with `--url`, in the system's temporary folder),
    /// median and p99 of 200, ms.
    pub fsync_p50_ms: f64,
    pub fsync_p99_ms: f64,
    /// This tool's CPU, in cores: it shares the machine.
    pub tool_cpu_cores: f64,
    pub window_s: f64,
}

/// The head of every frame: all the tool reads.
#[derive(Deserialize)]
struct Head {
    seq: u64,
    ts: DateTime<Utc>,
    #[serde(rename = "type")]
    kind: String,
}

impl Head {
    /// Reads the head from the frame's first bytes: the server writes
    /// `{"seq":…,"ts":"…","type":"…"` first, and at 200,000 frames a second
    /// on the same two cores as the server, parsing whole frames would make
    /// the tool, not the server, the bottleneck. Falls back to a full parse.
    fn parse(text: &str) -> Option<Self> {
        let quick = || {
            let rest = text.strip_prefix("{\"seq\":")?;
            let (seq, rest) = rest.split_once(",\"ts\":\"")?;
            let (ts, rest) = rest.split_once("\",\"type\":\"")?;
            let (kind, _) = rest.split_once('"')?;
            Some(Self {
                seq: seq.parse().ok()?,
                ts: ts.parse().ok()?,
                kind: kind.to_owned(),
            })
        };
        quick().or_else(|| serde_json::from_str(text).ok())
    }
}

/// One dashboard's tally.
struct Tally {
    latencies: Histogram<u64>,
    received: u64,
    gaps: u64,
    resyncs: u64,
    dropped: bool,
}

/// Shared between the dashboards, the driver and the clock.
struct Shared {
    /// Set during the measured window.
    measuring: AtomicBool,
    /// Set when the run is over.
    done: AtomicBool,
    /// The newest `seq` any dashboard saw.
    newest_seq: AtomicU64,
    /// Dashboards that received their start.
    started: AtomicU64,
}

/// The intake token of a server the tool starts.
const CHILD_INTAKE_TOKEN: &str = "loadtest-intake";

/// The server under test, when the tool started it.
struct ChildServer {
    child: Child,
    /// The database's folder, removed when the server stops.
    data: tempfile::TempDir,
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_server() -> anyhow::Result<(ChildServer, String)> {
    let data = tempfile::tempdir()?;
    let exe = std::env::current_exe().context("finding this binary")?;
    let mut child = Command::new(exe)
        // Isolated estates: incidents do not wait on each other, so the
        // events each one publishes are steady, and the rate steerable.
        .args([
            "--addr",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--speed",
            "10",
            "--twin",
            "isolated",
            // Nobody approves plans during a load test.
            "--policy",
            "autonomous",
        ])
        .args([
            "--rate-limit",
            "1000000",
            "--rate-burst",
            "1000000",
            "--max-incidents",
            "100000",
        ])
        .env(
            "ANTIBODY_DATABASE_URL",
            format!("sqlite://{}/load.db", data.path().display()),
        )
        // For `--alerts`: the intake's token, the tool's own.
        .env("ANTIBODY_INTAKE_TOKEN", CHILD_INTAKE_TOKEN)
        .env("RUST_LOG", "warn,server=info")
        .env_remove("PORT")
        .stdout(Stdio::piped())
        .spawn()
        .context("starting the server")?;
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let addr = loop {
        let Some(line) = lines.next() else {
            bail!("the server exited before it served")
        };
        let log: serde_json::Value = serde_json::from_str(&line?).unwrap_or_default();
        if let Some(addr) = log["fields"]["addr"].as_str() {
            break addr.to_owned();
        }
    };
    // Keep draining its logs so it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Ok((ChildServer { child, data }, format!("http://{addr}")))
}

/// The disk's fsync floor in `folder`: 200 appends of 4 KiB, each made
/// durable with `fdatasync` (as SQLite commits its WAL); (p50, p99) in ms.
fn fsync_floor(folder: &std::path::Path) -> anyhow::Result<(f64, f64)> {
    use std::io::Write;
    let path = folder.join("antibody-fsync-probe");
    let mut file = std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let block = [0u8; 4096];
    let mut times = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
    for _ in 0..200 {
        let started = Instant::now();
        file.write_all(&block)?;
        file.sync_data()?;
        times.saturating_record(started.elapsed().as_micros() as u64);
    }
    drop(file);
    std::fs::remove_file(&path)?;
    let ms = |micros: u64| micros as f64 / 1000.0;
    Ok((ms(times.value_at_quantile(0.5)), ms(times.value_at_quantile(0.99))))
}

/// What the server counts about its writes, from its `/metrics`.
#[derive(Clone, Copy)]
struct ServerCounters {
    /// Frames sent to dashboards.
    frames: f64,
    /// Socket writes that carried them.
    writes: f64,
    /// Store transactions (batches of events) committed.
    commits: f64,
    /// Seconds spent in them.
    commit_seconds: f64,
}

impl ServerCounters {
    /// Reads them, if the server exposes them all.
    async fn read(http: &reqwest::Client, base: &str) -> Option<Self> {
        let text = http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        Self::parse(&text)
    }

    /// Them, from Prometheus's text format.
    fn parse(text: &str) -> Option<Self> {
        let value = |name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse::<f64>().ok())
        };
        Some(Self {
            frames: value("antibody_ws_messages_sent_total")?,
            writes: value("antibody_ws_writes_total")?,
            commits: value("antibody_event_store_write_seconds_count")?,
            commit_seconds: value("antibody_event_store_write_seconds_sum")?,
        })
    }

    /// (frames per write, commits a second, mean commit ms) between `self`
    /// and `later`, `window_s` apart.
    fn rates(self, later: Self, window_s: f64) -> (f64, f64, f64) {
        let commits = later.commits - self.commits;
        (
            (later.frames - self.frames) / (later.writes - self.writes).max(1.0),
            commits / window_s,
            (later.commit_seconds - self.commit_seconds) * 1000.0 / commits.max(1.0),
        )
    }
}

/// Clock ticks per second, for /proc's CPU times.
fn ticks_per_second() -> f64 {
    // SAFETY: sysconf reads a constant; it has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// User plus system CPU seconds of a process (`self` for this one).
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which may hold spaces: ") S ppid …".
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let (user, system): (f64, f64) = (fields.get(11)?.parse().ok()?, fields.get(12)?.parse().ok()?);
    Some((user + system) / ticks_per_second())
}

/// A `/proc/PID/status` memory field, in MiB.
fn memory_mib(pid: &str, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

async fn dashboard(url: String, shared: Arc<Shared>) -> anyhow::Result<Tally> {
    // A modest read buffer: tungstenite zero-fills all of it before each
    // read, and the default 128 KiB would make the tool the bottleneck.
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(4 * 1024);
    let (mut socket, _) = tokio_tungstenite::connect_async_with_config(&url, Some(config), false)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    let mut tally = Tally {
        latencies: Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds"),
        received: 0,
        gaps: 0,
        resyncs: 0,
        dropped: false,
    };
    let mut last_seq: Option<u64> = None;
    while !shared.done.load(Ordering::Relaxed) {
        let frame = match tokio::time::timeout(Duration::from_millis(500), socket.next()).await {
            Err(_) => continue,
            Ok(Some(Ok(frame))) => frame,
            Ok(_) => {
                tally.dropped = shared.measuring.load(Ordering::Relaxed);
                break;
            }
        };
        let Message::Text(text) = frame else { continue };
        let Some(head) = Head::parse(&text) else { continue };
        match head.kind.as_str() {
            "snapshot" => {
                last_seq = Some(head.seq);
                shared.started.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            "resync" => {
                tally.resyncs += 1;
                continue;
            }
            _ => {}
        }
        if let Some(last) = last_seq
            && head.seq > last + 1
        {
            tally.gaps += head.seq - last - 1;
        }
        last_seq = Some(head.seq);
        shared.newest_seq.fetch_max(head.seq, Ordering::Relaxed);
        if shared.measuring.load(Ordering::Relaxed) {
            tally.received += 1;
            let micros = (Utc::now() - head.ts).num_microseconds().unwrap_or(0).max(1) as u64;
            tally.latencies.saturating_record(micros);
        }
    }
    Ok(tally)
}

/// Fires catalog scenarios, steering the firing interval toward `rate`
/// published events per second.
async fn drive(base: String, rate: u32, shared: Arc<Shared>) -> anyhow::Result<u64> {
    let http = reqwest::Client::new();
    let scenarios: Vec<serde_json::Value> = http
        .get(format!("{base}/api/scenarios"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let ids: Vec<String> = scenarios
        .iter()
        .filter_map(|s| s["id"].as_str().map(str::to_owned))
        .collect();
    if ids.is_empty() {
        bail!("the server has no scenarios to fire");
    }
    let mut fired = 0u64;
    // A first guess (an incident publishes a few dozen events), then
    // feedback: once a second, scale the interval toward the target rate.
    let mut interval = Duration::from_secs_f64(30.0 / f64::from(rate));
    let mut next = tokio::time::Instant::now();
    let mut checked = (Instant::now(), shared.newest_seq.load(Ordering::Relaxed));
    while !shared.done.load(Ordering::Relaxed) {
        tokio::time::sleep_until(next).await;
        let id = &ids[fired as usize % ids.len()];
        let response = http.post(format!("{base}/api/scenarios/{id}/trigger")).send().await?;
        if response.status().is_success() {
            fired += 1;
        } else if response.status().as_u16() != 429 {
            bail!("firing {id}: {}", response.status());
        }
        let elapsed = checked.0.elapsed();
        if elapsed >= Duration::from_secs(1) {
            let newest = shared.newest_seq.load(Ordering::Relaxed);
            let observed = newest.saturating_sub(checked.1) as f64 / elapsed.as_secs_f64();
            if observed > 0.0 {
                // Damped: events lag the incidents that cause them by a
                // couple of seconds, and a full correction would oscillate.
                let correction = (observed / f64::from(rate)).sqrt().clamp(0.8, 1.25);
                interval = interval
                    .mul_f64(correction)
                    .clamp(Duration::from_micros(100), Duration::from_secs(10));
            }
            checked = (Instant::now(), newest);
        }
        next += interval;
        // Never try to catch up with a burst after a stall.
        next = next.max(tokio::time::Instant::now() - interval);
    }
    Ok(fired)
}

/// `--alerts`: the intake at a rate, then flat out; prints the result.
async fn alerts(base: &str, token: &str, args: &LoadtestArgs) -> anyhow::Result<()> {
    if !args.json {
        eprintln!(
            "alert intake: {} alerts/s for {} s (after {} s warm-up), then flat out for as long",
            args.rate, args.duration, args.warmup
        );
    }
    let report = crate::alert_load::run(base, token, args.rate, args.warmup, args.duration).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "| alerts/s (target) | accepted/s | time to 202 p50 / p99 / max | refused | flat out: accepted/s, p99, refused |"
        );
        println!("|---|---|---|---|---|");
        println!(
            "| {} | {:.0} | {:.1} / {:.1} / {:.1} ms | {} | {:.0}, {:.1} ms, {} |",
            report.target_alerts_per_s,
            report.accepted_per_s,
            report.latency_p50_ms,
            report.latency_p99_ms,
            report.latency_max_ms,
            report.refused,
            report.flat_out_accepted_per_s,
            report.flat_out_latency_p99_ms,
            report.flat_out_refused
        );
    }
    Ok(())
}

pub async fn run(args: LoadtestArgs) -> anyhow::Result<()> {
    let (server, base) = match &args.url {
        Some(url) => (None, url.as_str().trim_end_matches('/').to_owned()),
        None => {
            let (child, base) = spawn_server()?;
            (Some(child), base)
        }
    };
    let pid = server
        .as_ref()
        .map(|s| s.child.id())
        .or(args.server_pid)
        .map(|p| p.to_string());
    if args.alerts {
        let token = match (&server, &args.intake_token) {
            (Some(_), _) => CHILD_INTAKE_TOKEN.to_owned(),
            (None, Some(token)) => token.clone(),
            (None, None) => bail!("--alerts with --url needs the server's --intake-token (ANTIBODY_INTAKE_TOKEN)"),
        };
        return alerts(&base, &token, &args).await;
    }
    let ws = format!("{}/ws", base.replacen("http", "ws", 1));
    let progress = if std::io::stderr().is_terminal() && !args.json {
        ProgressBar::new(u64::from(args.dashboards))
    } else {
        ProgressBar::hidden()
    };
    progress.set_style(ProgressStyle::with_template("{msg} {wide_bar} {pos}/{len}").expect("a valid template"));

    // The disk alone, beside the database, before anything else runs.
    let probe_folder = server
        .as_ref()
        .map_or_else(std::env::temp_dir, |s| s.data.path().to_owned());
    let (fsync_p50_ms, fsync_p99_ms) = fsync_floor(&probe_folder)?;

    // Idle: the server up, nobody watching.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_idle = pid.as_deref().and_then(|p| memory_mib(p, "VmRSS:"));

    let shared = Arc::new(Shared {
        measuring: AtomicBool::new(false),
        done: AtomicBool::new(false),
        newest_seq: AtomicU64::new(0),
        started: AtomicU64::new(0),
    });
    progress.set_message("connecting dashboards");
    let mut dashboards = Vec::with_capacity(args.dashboards as usize);
    for _ in 0..args.dashboards {
        dashboards.push(tokio::spawn(dashboard(ws.clone(), shared.clone())));
        progress.inc(1);
        // Connect at a steady pace rather than all in one instant.
        tokio::task::yield_now().await;
    }
    // Every dashboard connected and started, before any load: what the
    // connections alone cost.
    let connecting = Instant::now();
    while shared.started.load(Ordering::Relaxed) < u64::from(args.dashboards) {
        if connecting.elapsed() > Duration::from_secs(120) {
            bail!(
                "only {} of {} dashboards started within 2 minutes",
                shared.started.load(Ordering::Relaxed),
                args.dashboards
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_connected = pid.as_deref().and_then(|p| memory_mib(p, "VmRSS:"));

    // A watcher only measures what others publish: another tool driving
    // another instance of the same database (cross-instance delivery).
    let driver = match args.watch_only {
        false => tokio::spawn(drive(base.clone(), args.rate, shared.clone())),
        true => tokio::spawn(async { Ok(0) }),
    };

    progress.set_message("warming up");
    progress.set_length(u64::from(args.warmup + args.duration));
    progress.set_position(0);
    for _ in 0..args.warmup {
        tokio::time::sleep(Duration::from_secs(1)).await;
        progress.inc(1);
    }
    progress.set_message("measuring");
    let metrics_http = reqwest::Client::new();
    let counters_0 = ServerCounters::read(&metrics_http, &base).await;
    let (server_cpu_0, tool_cpu_0) = (pid.as_deref().and_then(cpu_seconds), cpu_seconds("self"));
    let seq_0 = shared.newest_seq.load(Ordering::Relaxed);
    let window = Instant::now();
    shared.measuring.store(true, Ordering::Relaxed);
    for _ in 0..args.duration {
        tokio::time::sleep(Duration::from_secs(1)).await;
        progress.inc(1);
    }
    shared.measuring.store(false, Ordering::Relaxed);
    let window_s = window.elapsed().as_secs_f64();
    let seq_1 = shared.newest_seq.load(Ordering::Relaxed);
    let (server_cpu_1, tool_cpu_1) = (pid.as_deref().and_then(cpu_seconds), cpu_seconds("self"));
    let counters_1 = ServerCounters::read(&metrics_http, &base).await;
    let rss_peak = pid.as_deref().and_then(|p| memory_mib(p, "VmHWM:"));
    shared.done.store(true, Ordering::Relaxed);
    progress.finish_and_clear();

    let fired = driver.await?.context("driving incidents")?;
    let mut latencies = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).expect("valid bounds");
    let (mut received, mut gaps, mut resyncs, mut dropped) = (0, 0, 0, 0);
    for handle in dashboards {
        let tally = handle.await?.context("a dashboard failed")?;
        latencies.add(&tally.latencies).expect("same bounds");
        received += tally.received;
        gaps += tally.gaps;
        resyncs += tally.resyncs;
        dropped += u64::from(tally.dropped);
    }
    drop(server);
    let ms = |micros: u64| micros as f64 / 1000.0;
    let server_cpu_s = server_cpu_0.zip(server_cpu_1).map(|(a, b)| b - a);
    let rates = counters_0
        .zip(counters_1)
        .map(|(before, after)| before.rates(after, window_s));
    let report = LoadReport {
        dashboards: args.dashboards,
        target_events_per_s: args.rate,
        events_per_s: (seq_1 - seq_0) as f64 / window_s,
        delivered_per_s: received as f64 / window_s,
        latency_p50_ms: ms(latencies.value_at_quantile(0.5)),
        latency_p99_ms: ms(latencies.value_at_quantile(0.99)),
        latency_max_ms: ms(latencies.max()),
        gaps,
        resyncs,
        dropped,
        server_cpu_cores: server_cpu_s.map(|cpu| cpu / window_s),
        server_cpu_s_per_million_frames: server_cpu_s
            .filter(|_| received > 0)
            .map(|cpu| cpu / (received as f64 / 1e6)),
        frames_per_write: rates.map(|(frames_per_write, ..)| frames_per_write),
        commits_per_s: rates.map(|(_, commits_per_s, _)| commits_per_s),
        commit_mean_ms: rates.map(|(.., commit_mean_ms)| commit_mean_ms),
        server_rss_idle_mib: rss_idle,
        server_kib_per_dashboard: rss_idle
            .zip(rss_connected)
            .map(|(idle, connected)| (connected - idle) * 1024.0 / f64::from(args.dashboards)),
        server_rss_peak_mib: rss_peak,
        fsync_p50_ms,
        fsync_p99_ms,
        tool_cpu_cores: tool_cpu_0.zip(tool_cpu_1).map_or(0.0, |(a, b)| (b - a) / window_s),
        window_s,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let opt = |v: Option<f64>, unit: &str| v.map_or("n/a".to_owned(), |v| format!("{v:.2}{unit}"));
        println!(
            "| dashboards | events/s (target) | delivered msgs/s | latency p50 / p99 / max | gaps | resyncs | dropped | server CPU | CPU-s per 1M frames | frames per write | server RSS idle / peak | per dashboard | tool CPU |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        println!(
            "| {} | {:.0} ({}) | {:.0} | {:.2} / {:.1} / {:.1} ms | {} | {} | {} | {} | {} | {} | {} / {} | {} | {:.2} cores |",
            report.dashboards,
            report.events_per_s,
            report.target_events_per_s,
            report.delivered_per_s,
            report.latency_p50_ms,
            report.latency_p99_ms,
            report.latency_max_ms,
            report.gaps,
            report.resyncs,
            report.dropped,
            opt(report.server_cpu_cores, " cores"),
            opt(report.server_cpu_s_per_million_frames, ""),
            opt(report.frames_per_write, ""),
            opt(report.server_rss_idle_mib, " MiB"),
            opt(report.server_rss_peak_mib, " MiB"),
            opt(report.server_kib_per_dashboard, " KiB"),
            report.tool_cpu_cores,
        );
        println!(
            "store: {} commits/s, {} ms each on average; fsync floor (4 KiB + fdatasync beside the database, alone): p50 {:.2} ms, p99 {:.2} ms",
            opt(report.commits_per_s, ""),
            opt(report.commit_mean_ms, ""),
            report.fsync_p50_ms,
            report.fsync_p99_ms
        );
        println!(
            "{fired} incidents fired over {:.0} s of warm-up and measurement",
            f64::from(args.warmup) + window_s
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_is_read_from_the_prefix_or_the_whole_frame() {
        let envelope = engine::protocol::Envelope {
            seq: 42,
            ts: Utc::now(),
            message: engine::protocol::ServerMessage::Resync { reason: "test".into() },
        };
        let text = serde_json::to_string(&envelope).unwrap();
        assert!(
            text.starts_with("{\"seq\":42,\"ts\":\""),
            "the server's field order: {text}"
        );
        let head = Head::parse(&text).unwrap();
        assert_eq!((head.seq, head.ts, head.kind.as_str()), (42, envelope.ts, "resync"));
        let reordered = format!(r#"{{"type":"snapshot","ts":"{}","seq":7}}"#, envelope.ts.to_rfc3339());
        let head = Head::parse(&reordered).unwrap();
        assert_eq!((head.seq, head.kind.as_str()), (7, "snapshot"));
        assert!(Head::parse("not json").is_none());
    }

    #[test]
    fn the_server_s_counters_are_read_by_exact_name_and_give_rates_over_the_window() {
        let text = |frames: u32, writes: u32, commits: u32, seconds: f64| {
            format!(
                "# TYPE antibody_ws_messages_sent_total counter\n\
                 antibody_ws_messages_sent_total_other 5\n\
                 antibody_ws_messages_sent_total {frames}\n\
                 antibody_ws_writes_total {writes}\n\
                 antibody_event_store_write_seconds_bucket{{le=\"0.001\"}} 3\n\
                 antibody_event_store_write_seconds_sum {seconds}\n\
                 antibody_event_store_write_seconds_count {commits}\n"
            )
        };
        let before = ServerCounters::parse(&text(1_000, 200, 10, 0.5)).unwrap();
        let after = ServerCounters::parse(&text(7_000, 1_200, 50, 0.58)).unwrap();
        let (frames_per_write, commits_per_s, commit_ms) = before.rates(after, 20.0);
        assert_eq!(frames_per_write, 6.0);
        assert_eq!(commits_per_s, 2.0);
        assert!((commit_ms - 2.0).abs() < 1e-9, "{commit_ms}");
        let without_writes = "antibody_ws_messages_sent_total 3\n";
        assert!(ServerCounters::parse(without_writes).is_none(), "an older server");
    }
}
