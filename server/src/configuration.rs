//! Settings, from flags and the environment (clap's `env` support). Every
//! value is parsed at start, so bad configuration stops the server with a
//! message that names the setting.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Parser, ValueEnum};
use engine::clock::Speed;

/// Where incidents happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Twin {
    /// One simulated estate for the whole server, shown on the dashboard;
    /// concurrent incidents meet in it.
    Shared,
    /// A fresh estate per incident: incidents never interact (load tests).
    Isolated,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// The antibody server: a self-healing incident-response swarm with a live dashboard.
#[derive(Debug, Clone, Parser)]
#[command(name = "antibody", version, about)]
pub struct Settings {
    /// Address to listen on [default: 127.0.0.1:3000; 0.0.0.0:$PORT when PORT is set].
    #[arg(long, env = "LEPTOS_SITE_ADDR")]
    pub addr: Option<SocketAddr>,

    /// Port to listen on, overriding the port of --addr. Hosting platforms
    /// set PORT and expect the server on every interface: without --addr,
    /// PORT means 0.0.0.0:PORT.
    #[arg(long, env = "PORT")]
    pub port: Option<u16>,

    /// Time compression for every agent delay (1.0 is real time).
    #[arg(long, env = "ANTIBODY_SPEED", default_value = "1.0", value_parser = parse_speed)]
    pub speed: Speed,

    /// Seed for the agents' randomness, for reproducible runs.
    #[arg(long, env = "ANTIBODY_SEED")]
    pub seed: Option<u64>,

    /// Folder with the built site (pkg/antibody.js, .wasm, .css), served
    /// instead of the site built into the binary [default: the built-in
    /// site in a build with it (`embed-site`), else target/site].
    #[arg(long, env = "LEPTOS_SITE_ROOT")]
    pub site_root: Option<PathBuf>,

    /// Seconds that in-flight incidents get to finish at shutdown before they are interrupted.
    #[arg(long, env = "ANTIBODY_SHUTDOWN_GRACE", default_value = "30", value_parser = parse_seconds)]
    pub shutdown_grace: Duration,

    /// Log format.
    #[arg(long, env = "ANTIBODY_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Incidents open at once before new ones are refused as "at capacity" (503).
    #[arg(long, env = "ANTIBODY_MAX_INCIDENTS", default_value = "1000",
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_incidents: u64,

    /// Workers per agent on the agent bus; incidents beyond them queue, most severe first.
    #[arg(long, env = "ANTIBODY_AGENT_WORKERS", default_value = "64",
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub agent_workers: u32,

    /// Chaos: the share of agent jobs (0 to 1) that fail as if the agent crashed, to watch retries and circuit breakers.
    #[arg(long, env = "ANTIBODY_AGENT_FAILURE_RATE", default_value = "0", value_parser = parse_share)]
    pub agent_failure_rate: f64,

    /// A Slack-compatible incoming webhook announced whenever an incident closes.
    #[arg(long, env = "ANTIBODY_WEBHOOK_URL", value_parser = parse_http_url)]
    pub webhook_url: Option<reqwest::Url>,

    /// Seconds between WebSocket pings; a dashboard that misses one is disconnected.
    #[arg(long, env = "ANTIBODY_WS_HEARTBEAT", default_value = "20", value_parser = parse_heartbeat)]
    pub ws_heartbeat: Duration,

    /// Dashboards (WebSockets) one client IP may hold open; more are refused with a close reason [default: 20 in demo mode, else no limit].
    #[arg(long, env = "ANTIBODY_WS_MAX_PER_IP", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub ws_max_per_ip: Option<u32>,

    /// Dashboards (WebSockets) open at once, from everyone; more are refused with a close reason.
    #[arg(long, env = "ANTIBODY_WS_MAX", default_value = "10000",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub ws_max: u32,

    /// Events a WebSocket may fall behind the live stream before it is told to resync (its queue bound).
    #[arg(long, env = "ANTIBODY_WS_QUEUE", default_value = "4096",
          value_parser = clap::value_parser!(u32).range(1..=1_048_576))]
    pub ws_queue: u32,

    /// Milliseconds an event may wait for others to share its store transaction (0 to 1000). At 0, the default, a lone event commits at once and what arrives during a commit shares the next one.
    #[arg(long, env = "ANTIBODY_COMMIT_WINDOW", default_value = "0", value_parser = parse_millis)]
    pub commit_window: Duration,

    /// Socket writes a second the server allows its dashboards together (0: no limit). A dashboard writes at once unless it wrote less than (open dashboards / budget) ago; then what queued meanwhile goes out in one write.
    #[arg(long, env = "ANTIBODY_WS_WRITE_BUDGET", default_value = "40000",
          value_parser = clap::value_parser!(u32).range(0..=10_000_000))]
    pub ws_write_budget: u32,

    /// Several instances on one PostgreSQL: seconds an incident's lease lasts unless its owner renews it; a dead owner's incidents are taken over (and interrupted) within this plus half a second (1 to 300).
    #[arg(long, env = "ANTIBODY_LEASE_TTL", default_value = "10", value_parser = parse_lease_ttl)]
    pub lease_ttl: Duration,

    /// Governance: a built-in policy (`default`, `autonomous`) or a policy file (TOML, as in engine/data/policies/).
    #[arg(long, env = "ANTIBODY_POLICY", default_value = "default", value_parser = parse_policy)]
    pub policy: std::sync::Arc<engine::governance::Policy>,

    /// Finished incidents the incident memory keeps (oldest evicted first; 0 turns memory off).
    #[arg(long, env = "ANTIBODY_MEMORY_CAPACITY", default_value = "2000",
          value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub memory_capacity: u32,

    /// Operator mode: when set, creating incidents needs this token (bearer header, or the cookie POST /login sets).
    #[arg(long, env = "ANTIBODY_OPERATOR_TOKEN", hide_env_values = true)]
    pub operator_token: Option<String>,

    /// The alert intake's token (`POST /api/alerts/*`), as a bearer or as a basic-auth password; without one the intake refuses every delivery.
    #[arg(long, env = "ANTIBODY_INTAKE_TOKEN", hide_env_values = true)]
    pub intake_token: Option<String>,

    /// Browser origins, besides the page's own, allowed to open /ws (comma-separated, e.g. https://demo.example.com).
    #[arg(long, env = "ANTIBODY_ALLOWED_ORIGINS", value_delimiter = ',', value_parser = parse_origin)]
    pub allowed_origins: Vec<String>,

    /// Mutating requests (POST) allowed per client IP per minute, sustained.
    #[arg(long, env = "ANTIBODY_RATE_LIMIT", default_value = "60",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub rate_limit: u32,

    /// Mutating requests a client IP may make in one burst before the per-minute rate applies.
    #[arg(long, env = "ANTIBODY_RATE_BURST", default_value = "20",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub rate_burst: u32,

    /// Behind a reverse proxy: take the client IP for rate limits from X-Forwarded-For, X-Real-IP or Forwarded.
    #[arg(long, env = "ANTIBODY_TRUST_PROXY", default_value = "false", action = clap::ArgAction::Set)]
    pub trust_proxy: bool,

    /// Whether incidents share one simulated estate (the dashboard's) or each get their own.
    #[arg(long, env = "ANTIBODY_TWIN", value_enum, default_value = "shared")]
    pub twin: Twin,

    /// Where events and incidents are stored: sqlite://PATH (created if missing) or postgres://USER:PASS@HOST/DB.
    #[arg(long, env = "ANTIBODY_DATABASE_URL", default_value = "sqlite://data/antibody.db", value_parser = parse_database_url)]
    pub database_url: String,

    /// When a SQLite commit counts as done: `full` (an fsync per transaction; a published event survives a power cut) or `normal` (it survives a killed process; a power cut may lose the newest). See docs/durability.md.
    #[arg(long, env = "ANTIBODY_SQLITE_SYNC", default_value = "full", value_parser = parse_sqlite_sync)]
    pub sqlite_sync: store::SqliteSync,

    /// An LLM for generated timeline scenarios (the built-in generator otherwise).
    #[command(flatten)]
    pub llm: LlmArgs,

    /// The estate incidents work on: the embedded twin, or a real one read from Prometheus.
    #[command(flatten)]
    pub estate: EstateArgs,

    /// What carries out a watched estate's approved steps (without one, its incidents are advisory).
    #[command(flatten)]
    pub actuator: ActuatorArgs,

    /// A hosted demo: alive when a visitor arrives, safe to leave open.
    #[command(flatten)]
    pub demo: DemoArgs,

    /// Something else than serving (serving is the default).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Demo mode (see docs/deploy.md): a built-in timeline loops while anyone
/// watches, an autopilot approves what waits for a person, and viewers may
/// fire the primary scenarios within limits.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Demo mode, for a hosted link: a timeline loops while anyone watches, an autopilot decides approvals, viewers may fire the primary scenarios.
    #[arg(id = "demo", long = "demo", env = "ANTIBODY_DEMO", default_value = "false", action = clap::ArgAction::Set)]
    pub enabled: bool,

    /// The built-in timeline the demo loops while anyone watches.
    #[arg(long = "demo-timeline", env = "ANTIBODY_DEMO_TIMELINE", default_value = "demo_loop")]
    pub timeline: String,

    /// Seconds a plan waits for a person before the demo's autopilot approves it (1 to 600).
    #[arg(long = "demo-autopilot", env = "ANTIBODY_DEMO_AUTOPILOT", default_value = "20", value_parser = parse_autopilot)]
    pub autopilot: Duration,

    /// Primary scenarios one viewer (client IP) may fire per minute without the operator token.
    #[arg(long = "demo-viewer-rate", env = "ANTIBODY_DEMO_VIEWER_RATE", default_value = "3",
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub viewer_rate: u32,

    /// Primary scenarios all viewers together may fire per minute.
    #[arg(long = "demo-viewer-cap", env = "ANTIBODY_DEMO_VIEWER_CAP", default_value = "20",
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub viewer_cap: u32,
}

impl Default for DemoArgs {
    fn default() -> Self {
        Self {
            enabled: false,
            timeline: "demo_loop".into(),
            autopilot: Duration::from_secs(20),
            viewer_rate: 3,
            viewer_cap: 20,
        }
    }
}

/// Dashboards one address may hold open on a demo server unless told.
pub const DEMO_WS_MAX_PER_IP: u32 = 20;

/// An OpenAI-compatible chat-completions endpoint for generated scenarios.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LlmArgs {
    /// The API's base URL, as in http://localhost:11434/v1 (Ollama) or
    /// https://api.openai.com/v1; generated scenarios use it, falling back to
    /// the built-in generator when it fails.
    #[arg(id = "llm_url", long = "llm-url", env = "ANTIBODY_LLM_URL", value_parser = parse_http_url)]
    pub url: Option<reqwest::Url>,
    /// The model to ask (needed with --llm-url).
    #[arg(
        id = "llm_model",
        long = "llm-model",
        env = "ANTIBODY_LLM_MODEL",
        requires = "llm_url"
    )]
    pub model: Option<String>,
    /// Sent as a bearer token.
    #[arg(
        id = "llm_api_key",
        long = "llm-api-key",
        env = "ANTIBODY_LLM_API_KEY",
        hide_env_values = true
    )]
    pub api_key: Option<String>,
    /// Seconds one attempt may take (there is one retry).
    #[arg(id = "llm_timeout", long = "llm-timeout", env = "ANTIBODY_LLM_TIMEOUT", default_value = "10", value_parser = parse_heartbeat)]
    pub timeout: Duration,
}

impl LlmArgs {
    /// The generator these settings describe, over `topology`.
    pub fn generator(
        &self,
        topology: std::sync::Arc<engine::twin::Topology>,
    ) -> anyhow::Result<std::sync::Arc<dyn engine::timeline::generator::ScenarioGenerator>> {
        use engine::timeline::generator::{
            BuiltinGenerator,
            llm::{LlmConfig, LlmGenerator},
        };
        let builtin = BuiltinGenerator::embedded(topology).map_err(|e| anyhow::anyhow!(e))?;
        let Some(url) = self.url.clone() else {
            return Ok(std::sync::Arc::new(builtin));
        };
        let model = self
            .model
            .clone()
            .ok_or_else(|| anyhow::anyhow!("--llm-url (ANTIBODY_LLM_URL) needs --llm-model (ANTIBODY_LLM_MODEL)"))?;
        let config = LlmConfig {
            url,
            model,
            api_key: self.api_key.clone(),
            timeout: self.timeout,
        };
        Ok(std::sync::Arc::new(
            LlmGenerator::new(config, builtin).map_err(|e| anyhow::anyhow!(e))?,
        ))
    }
}

/// Which estate the agents read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum EstateKind {
    /// The embedded twin (simulated), which incidents act on.
    #[default]
    Twin,
    /// A real estate, read by PromQL from Prometheus; incidents are advisory.
    Prometheus,
}

/// A real estate read from Prometheus.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct EstateArgs {
    /// `twin` (simulated, the default) or `prometheus` (read by PromQL; advisory unless an actuator is set).
    #[arg(long = "estate", env = "ANTIBODY_ESTATE", value_enum, default_value = "twin")]
    pub kind: EstateKind,
    /// A standalone twin (`antibody twin serve`) as the estate instead of the embedded one: read over HTTP, acted on through its actions API.
    #[arg(long, env = "ANTIBODY_TWIN_URL", value_parser = parse_http_url)]
    pub twin_url: Option<reqwest::Url>,
    /// The Prometheus to read, as in http://prometheus:9090 (needed with --estate prometheus).
    #[arg(long, env = "ANTIBODY_PROMETHEUS_URL", value_parser = parse_http_url)]
    pub prometheus_url: Option<reqwest::Url>,
    /// Sent to Prometheus as a bearer token.
    #[arg(
        long,
        env = "ANTIBODY_PROMETHEUS_TOKEN",
        hide_env_values = true,
        conflicts_with = "prometheus_user"
    )]
    pub prometheus_token: Option<String>,
    /// Basic auth's user for Prometheus (with --prometheus-password).
    #[arg(long, env = "ANTIBODY_PROMETHEUS_USER", requires = "prometheus_password")]
    pub prometheus_user: Option<String>,
    /// Basic auth's password for Prometheus.
    #[arg(
        long,
        env = "ANTIBODY_PROMETHEUS_PASSWORD",
        hide_env_values = true,
        requires = "prometheus_user"
    )]
    pub prometheus_password: Option<String>,
    /// Label matchers added to every query, as in job="twin" (scopes a Prometheus that holds several estates).
    #[arg(long, env = "ANTIBODY_PROMETHEUS_SELECTOR", default_value = "", value_parser = parse_selector)]
    pub prometheus_selector: String,
    /// Seconds one read of a watched estate may take (a Prometheus query, with one retry; a standalone twin's telemetry).
    #[arg(long, env = "ANTIBODY_PROMETHEUS_TIMEOUT", default_value = "5", value_parser = parse_heartbeat)]
    pub prometheus_timeout: Duration,
    /// A PromQL mapping file (TOML, as engine/data/promql/twin.toml); the twin exporter's by default.
    #[arg(long, env = "ANTIBODY_PROMQL_MAPPING", value_parser = parse_mapping)]
    pub promql_mapping: Option<engine::prometheus::Mapping>,
    /// The watched estate's services and call graph (TOML, the format of engine/data/twin/estate.toml); the twin's by default.
    #[arg(long, env = "ANTIBODY_TOPOLOGY", value_parser = parse_topology)]
    pub topology: Option<std::sync::Arc<engine::twin::Topology>>,
}

impl Settings {
    /// The estate in words, as instances sharing a database compare it:
    /// all of them must watch one. Isolated twins (one per incident, as
    /// `antibody loadtest` runs) share nothing, so instances may share them.
    pub fn estate_in_words(&self) -> String {
        match (
            &self.twin,
            self.estate.twin_url.is_none() && self.estate.kind == EstateKind::Twin,
        ) {
            (Twin::Isolated, true) => "isolated twins, one per incident".to_owned(),
            _ => self.estate.describe(),
        }
    }
}

impl EstateArgs {
    /// The estate in words (see [`Settings::estate_in_words`]).
    pub fn describe(&self) -> String {
        if let Some(url) = &self.twin_url {
            return format!("the twin at {url}");
        }
        match (&self.kind, &self.prometheus_url) {
            (EstateKind::Prometheus, Some(url)) => format!("Prometheus at {url} {{{}}}", self.prometheus_selector),
            _ => store::EMBEDDED_ESTATE.to_owned(),
        }
    }

    /// The Prometheus estate these settings describe (over its topology
    /// file, else the twin's); `None` for the twin.
    pub fn watched(&self) -> anyhow::Result<Option<engine::watched::WatchedEstate>> {
        use engine::{
            prometheus::{Auth, Endpoint, Mapping, PrometheusEstate},
            twin_service::RemoteTwin,
            watched::WatchedEstate,
        };
        if let Some(url) = &self.twin_url {
            anyhow::ensure!(
                self.kind == EstateKind::Twin && self.topology.is_none(),
                "--twin-url (ANTIBODY_TWIN_URL) is an estate of its own: not with --estate prometheus or --topology"
            );
            let topology = std::sync::Arc::new(engine::twin::Topology::embedded()?);
            let twin = RemoteTwin::new(url.as_str(), topology, self.prometheus_timeout);
            return Ok(Some(WatchedEstate::Twin(twin)));
        }
        if self.kind == EstateKind::Twin {
            anyhow::ensure!(
                self.topology.is_none(),
                "--topology (ANTIBODY_TOPOLOGY) is for --estate prometheus: the twin's services are its own"
            );
            return Ok(None);
        }
        let topology = match &self.topology {
            Some(topology) => std::sync::Arc::clone(topology),
            None => std::sync::Arc::new(engine::twin::Topology::embedded()?),
        };
        let url = self.prometheus_url.as_ref().ok_or_else(|| {
            anyhow::anyhow!("--estate prometheus (ANTIBODY_ESTATE) needs --prometheus-url (ANTIBODY_PROMETHEUS_URL)")
        })?;
        let auth = match (&self.prometheus_token, &self.prometheus_user, &self.prometheus_password) {
            (Some(token), _, _) => Auth::Bearer(token.clone()),
            (None, Some(user), Some(password)) => Auth::Basic {
                user: user.clone(),
                password: password.clone(),
            },
            _ => Auth::None,
        };
        let endpoint = Endpoint {
            url: url.as_str().trim_end_matches('/').to_owned(),
            auth,
            timeout: self.prometheus_timeout,
        };
        let mapping = match &self.promql_mapping {
            Some(mapping) => mapping.clone(),
            None => Mapping::embedded().map_err(|e| anyhow::anyhow!(e))?,
        };
        Ok(Some(WatchedEstate::Prometheus(PrometheusEstate::new(
            endpoint,
            mapping,
            self.prometheus_selector.clone(),
            topology,
        ))))
    }
}

/// Actions out: an actuator for a watched estate.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ActuatorArgs {
    /// Where approved steps are sent (`$base` of the map): the standalone twin (`antibody twin serve`) or a runbook system.
    #[arg(long, env = "ANTIBODY_ACTUATOR_URL", value_parser = parse_http_url)]
    pub actuator_url: Option<reqwest::Url>,
    /// Which request each remediation becomes, and how the outcome comes back (TOML; the standalone twin's by default; deploy/actuators/ has StackStorm's and Rundeck's).
    #[arg(long, env = "ANTIBODY_ACTUATOR_MAP", value_parser = parse_actuator_map, requires = "actuator_url")]
    pub actuator_map: Option<engine::actuator::ActuatorMap>,
    /// The HMAC-SHA256 secret orders are signed with, and callbacks checked against.
    #[arg(long, env = "ANTIBODY_ACTUATOR_SECRET", hide_env_values = true)]
    pub actuator_secret: Option<String>,
    /// Show each step's exact request, send nothing (incidents end advised).
    #[arg(long, env = "ANTIBODY_ACTUATOR_DRY_RUN", default_value = "false", action = clap::ArgAction::Set)]
    pub actuator_dry_run: bool,
    /// This server's URL as the actuator reaches it, for the callback (`POST /api/actions/{id}/result`).
    #[arg(long, env = "ANTIBODY_PUBLIC_URL", value_parser = parse_http_url)]
    pub public_url: Option<reqwest::Url>,
    /// Alertmanager (API v2): an incident's alerts are silenced there while its plan runs, and the silences expired after verification or rollback.
    #[arg(long, env = "ANTIBODY_ALERTMANAGER_URL", value_parser = parse_http_url)]
    pub alertmanager_url: Option<reqwest::Url>,
}

impl ActuatorArgs {
    /// The actuator these settings describe, if any. It needs a watched
    /// estate (the embedded twin is acted on in-process); a standalone twin
    /// is acted on through its own actions API unless another URL is set.
    /// A map whose outcome comes by callback needs a secret to check it and
    /// a public URL.
    pub fn actuator(
        &self,
        watched: Option<&engine::watched::WatchedEstate>,
    ) -> anyhow::Result<Option<engine::actuator::HttpActuator>> {
        use engine::{
            actuator::{ActuatorMap, HttpActuator, HttpSettings, Learn, Signer},
            watched::WatchedEstate,
        };
        let base = match (&self.actuator_url, watched) {
            (Some(url), Some(_)) => url.clone(),
            (None, Some(WatchedEstate::Twin(twin))) => twin.url().parse()?,
            (None, _) => return Ok(None),
            (Some(_), None) => anyhow::bail!(
                "--actuator-url (ANTIBODY_ACTUATOR_URL) needs a watched estate (--estate prometheus or --twin-url): \
                 the embedded twin is acted on in-process"
            ),
        };
        let map = self.actuator_map.clone().unwrap_or_else(ActuatorMap::twin);
        let signer = self
            .actuator_secret
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(Signer::new);
        if map.outcome == Learn::Callback {
            anyhow::ensure!(
                signer.is_some(),
                "the actuator map `{}` learns outcomes by callback: set ANTIBODY_ACTUATOR_SECRET to check them",
                map.name
            );
            anyhow::ensure!(
                self.public_url.is_some(),
                "the actuator map `{}` learns outcomes by callback: set ANTIBODY_PUBLIC_URL so the receiver can reach /api/actions/{{id}}/result",
                map.name
            );
        }
        Ok(Some(HttpActuator::new(HttpSettings {
            map,
            base,
            signer,
            public_url: self.public_url.clone(),
        })))
    }
}

fn parse_actuator_map(raw: &str) -> Result<engine::actuator::ActuatorMap, String> {
    parse_file(raw, engine::actuator::ActuatorMap::parse)
}

/// The file at `path`, read by `parse`; either failure names the file.
fn parse_file<T, E: std::fmt::Display>(path: &str, parse: impl FnOnce(&str) -> Result<T, E>) -> Result<T, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    parse(&text).map_err(|e| format!("{path}: {e}"))
}

fn parse_topology(raw: &str) -> Result<std::sync::Arc<engine::twin::Topology>, String> {
    parse_file(raw, engine::twin::Topology::parse).map(std::sync::Arc::new)
}

fn parse_mapping(raw: &str) -> Result<engine::prometheus::Mapping, String> {
    parse_file(raw, engine::prometheus::Mapping::parse)
}

/// Label matchers go inside the braces of every query: no braces of their own.
fn parse_selector(raw: &str) -> Result<String, String> {
    if raw.contains(['{', '}']) {
        return Err(format!(
            "`{raw}` must be label matchers without braces, as in job=\"twin\""
        ));
    }
    Ok(raw.trim().to_owned())
}

/// The binary's other jobs.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Score the swarm: run every scenario many times on isolated twins and
    /// compare with the answer keys.
    Eval(EvalArgs),
    /// Load-test the live stream: open many dashboards, drive events at a
    /// rate, and measure delivery (messages/s, latency) and the server's
    /// CPU and memory.
    Loadtest(LoadtestArgs),
    /// Scheduled incident streams (seed 004): list them, or run one against
    /// a server (`--url`) or an embedded engine, with live progress and a
    /// scored summary.
    Timeline(Box<TimelineArgs>),
    /// Seed 003's simulations (a model latency spike; data drift, credit
    /// score mean 700 → 550) on a running server, followed to the end.
    Simulate(SimulateArgs),
    /// The simulated estate as a service of its own, with no engine inside.
    Twin(TwinArgs),
}

/// `antibody twin` commands.
#[derive(Debug, Clone, clap::Args)]
pub struct TwinArgs {
    #[command(subcommand)]
    pub command: TwinCommand,
}

/// What to do with the twin.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum TwinCommand {
    /// Serves the twin on its own port: /metrics for Prometheus, /api/estate,
    /// /api/faults (inject), /api/actions (apply once per Idempotency-Key, undo).
    Serve(TwinServeArgs),
}

/// `antibody twin serve` options.
#[derive(Debug, Clone, clap::Args)]
pub struct TwinServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9100")]
    pub addr: SocketAddr,
    /// Simulated seconds per real second (Prometheus scrapes on wall-clock time: keep it near 1).
    #[arg(long, default_value = "1.0", value_parser = parse_speed)]
    pub speed: Speed,
    /// Seeds the estate's noise, for a reproducible run.
    #[arg(long, default_value = "1")]
    pub seed: u64,
    /// The HMAC-SHA256 secret orders must be signed with (Antibody-Signature); without it, orders are not checked.
    #[arg(long, env = "ANTIBODY_ACTUATOR_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
}

/// `antibody simulate` options.
#[derive(Debug, Clone, clap::Args)]
pub struct SimulateArgs {
    /// Which simulation.
    #[arg(value_enum)]
    pub simulation: Simulation,
    /// The running server.
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    pub url: reqwest::Url,
    /// The operator token, when the server asks for one.
    #[arg(long, env = "ANTIBODY_OPERATOR_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Approve, as this person, a plan the policy sends for approval
    /// (otherwise someone approves it on the dashboard).
    #[arg(long, value_name = "NAME")]
    pub approve_as: Option<String>,
}

/// Seed 003's two simulations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Simulation {
    /// Model inference slows past its 300 ms median objective, for a while.
    LatencySpike,
    /// The credit-score input drifts from a mean of 700 to 550.
    DataDrift,
}

/// `antibody timeline` options.
#[derive(Debug, Clone, clap::Args)]
pub struct TimelineArgs {
    #[command(subcommand)]
    pub command: TimelineCommand,
}

/// `antibody timeline` subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum TimelineCommand {
    /// The built-in timelines: id, name, duration and incident count.
    List {
        /// A running server (e.g. http://127.0.0.1:3000); without it, the
        /// built-in list.
        #[arg(long)]
        url: Option<reqwest::Url>,
        /// Print JSON, with every schedule.
        #[arg(long)]
        json: bool,
    },
    /// Runs a timeline: shows the schedule, waits for Enter (unless --yes or
    /// not on a terminal), then shows each incident as it opens and closes,
    /// and a scored summary.
    Run(Box<TimelineRunArgs>),
}

/// `antibody timeline run` options.
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["name", "file"])))]
pub struct TimelineRunArgs {
    /// A built-in timeline, as in `busy_day`.
    pub name: Option<String>,
    /// A timeline file (seed 004's JSON) instead.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// A running server to run it on; without it, an embedded engine.
    #[arg(long)]
    pub url: Option<reqwest::Url>,
    /// The operator token, when the server asks for one.
    #[arg(long, env = "ANTIBODY_OPERATOR_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Time compression of the schedule (and of the embedded engine).
    #[arg(long, value_parser = parse_speed_factor)]
    pub speed: Option<f64>,
    /// Varies generated scenarios.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Start without waiting for Enter.
    #[arg(long, short)]
    pub yes: bool,
    /// Print the finished run as JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    /// An LLM for generated scenarios (embedded engine only; a server uses its own).
    #[command(flatten)]
    pub llm: LlmArgs,
}

/// `antibody loadtest` options.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadtestArgs {
    /// A running server to test (e.g. http://127.0.0.1:3000). Without it, the
    /// tool starts this binary as a child, on a free port with a throwaway
    /// database, so it can measure the server's CPU and memory.
    #[arg(long)]
    pub url: Option<reqwest::Url>,
    /// The server's process id, to measure its CPU and memory with --url.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Dashboards (WebSocket clients) to open.
    #[arg(long, default_value = "100", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub dashboards: u32,
    /// Events per second to drive through the server (each dashboard
    /// receives every one).
    #[arg(long, default_value = "100", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub rate: u32,
    /// Seconds to measure, after a warm-up.
    #[arg(long, default_value = "30", value_parser = clap::value_parser!(u32).range(1..=3_600))]
    pub duration: u32,
    /// Seconds of warm-up before measuring (the event rate settles in it).
    #[arg(long, default_value = "10", value_parser = clap::value_parser!(u32).range(0..=600))]
    pub warmup: u32,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    /// Fire nothing: open the dashboards and measure what the server
    /// publishes anyway (with several instances: another tool drives
    /// another instance, and this one measures cross-instance delivery).
    #[arg(long, conflicts_with = "alerts")]
    pub watch_only: bool,
    /// Load the alert intake instead: `--rate` alerts per second, one
    /// Alertmanager delivery each, then flat out; no dashboards.
    #[arg(long)]
    pub alerts: bool,
    /// The intake token of the server under test (--url); a server the
    /// tool starts gets one of its own.
    #[arg(long, env = "ANTIBODY_INTAKE_TOKEN", hide_env_values = true)]
    pub intake_token: Option<String>,
}

/// `antibody eval` options.
#[derive(Debug, Clone, clap::Args)]
pub struct EvalArgs {
    /// Runs per scenario.
    #[arg(long, default_value = "20", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub runs: u32,
    /// Also run this many scenarios nobody wrote by hand, once each: random fault kinds on random services they can hit, intensity 0.2 to 1, random onset and lead, some with two faults, some with misleading reported services; scored per fault kind.
    #[arg(long, default_value = "0", value_parser = clap::value_parser!(u32).range(0..=5_000))]
    pub random: u32,
    /// Also watch this many healthy estates (no fault) for ten simulated minutes each, with detection every 10 s as a sentinel would, counting false incidents; and report an incident on as many healthy estates, counting the actions the swarm runs.
    #[arg(long, default_value = "0", value_parser = clap::value_parser!(u32).range(0..=1_000))]
    pub healthy: u32,
    /// Seed everything derives from.
    #[arg(long, default_value = "1")]
    pub seed: u64,
    /// Print machine-readable JSON instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Evaluate the scenario files of this folder (the format of
    /// engine/data/scenarios) instead of the built-in catalog.
    #[arg(long, value_name = "DIR")]
    pub scenarios: Option<PathBuf>,
}

impl Settings {
    /// The address to bind: `addr`, with `port` when set; without `addr`,
    /// every interface on `port`, or localhost:3000.
    pub fn bind_addr(&self) -> SocketAddr {
        match (self.addr, self.port) {
            (Some(mut addr), Some(port)) => {
                addr.set_port(port);
                addr
            }
            (Some(addr), None) => addr,
            (None, Some(port)) => SocketAddr::from(([0, 0, 0, 0], port)),
            (None, None) => SocketAddr::from(([127, 0, 0, 1], 3000)),
        }
    }

    /// Dashboards one address may hold open: as set, else the demo's cap
    /// on a demo server, else no limit.
    pub fn ws_max_per_ip(&self) -> Option<u32> {
        self.ws_max_per_ip.or(self.demo.enabled.then_some(DEMO_WS_MAX_PER_IP))
    }
}

fn parse_share(raw: &str) -> Result<f64, String> {
    let share: f64 = raw.trim().parse().map_err(|_| format!("`{raw}` is not a number"))?;
    if !(0.0..=1.0).contains(&share) {
        return Err(format!("{share} is out of range: use 0 to 1"));
    }
    Ok(share)
}

fn parse_http_url(raw: &str) -> Result<reqwest::Url, String> {
    let url: reqwest::Url = raw.parse().map_err(|e| format!("`{raw}` is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("`{raw}` must be an http:// or https:// URL"));
    }
    Ok(url)
}

fn parse_sqlite_sync(raw: &str) -> Result<store::SqliteSync, String> {
    match raw.to_ascii_lowercase().as_str() {
        "full" => Ok(store::SqliteSync::Full),
        "normal" => Ok(store::SqliteSync::Normal),
        _ => Err(format!("`{raw}` is neither `full` nor `normal`")),
    }
}

fn parse_database_url(raw: &str) -> Result<String, String> {
    store::Backend::of(raw)
        .map(|_| raw.to_owned())
        .map_err(|e| e.to_string())
}

fn parse_origin(raw: &str) -> Result<String, String> {
    let url: reqwest::Url = raw
        .trim()
        .parse()
        .map_err(|e| format!("`{raw}` is not an origin: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() || url.path() != "/" {
        return Err(format!(
            "`{raw}` is not an origin: use scheme://host[:port], as in https://demo.example.com"
        ));
    }
    Ok(url.origin().ascii_serialization())
}

fn parse_heartbeat(raw: &str) -> Result<Duration, String> {
    let heartbeat = parse_seconds(raw)?;
    if heartbeat < Duration::from_millis(100) {
        return Err(format!("{raw} is too short: use 0.1 to 3600 seconds"));
    }
    Ok(heartbeat)
}

fn parse_speed(raw: &str) -> Result<Speed, String> {
    raw.parse()
}

fn parse_speed_factor(raw: &str) -> Result<f64, String> {
    parse_speed(raw).map(Speed::factor)
}

fn parse_lease_ttl(raw: &str) -> Result<Duration, String> {
    let ttl = parse_seconds(raw)?;
    if !(Duration::from_secs(1)..=Duration::from_secs(300)).contains(&ttl) {
        return Err(format!("{raw} is out of range: use 1 to 300 seconds"));
    }
    Ok(ttl)
}

fn parse_autopilot(raw: &str) -> Result<Duration, String> {
    let after = parse_seconds(raw)?;
    if !(Duration::from_secs(1)..=Duration::from_secs(600)).contains(&after) {
        return Err(format!("{raw} is out of range: use 1 to 600 seconds"));
    }
    Ok(after)
}

fn parse_millis(raw: &str) -> Result<Duration, String> {
    let millis: u64 = raw
        .trim()
        .parse()
        .map_err(|_| format!("`{raw}` is not a whole number of milliseconds"))?;
    if millis > 1000 {
        return Err(format!("{millis} is out of range: use 0 to 1000 milliseconds"));
    }
    Ok(Duration::from_millis(millis))
}

fn parse_seconds(raw: &str) -> Result<Duration, String> {
    let seconds: f64 = raw
        .trim()
        .parse()
        .map_err(|_| format!("`{raw}` is not a number of seconds"))?;
    if !(0.0..=3600.0).contains(&seconds) {
        return Err(format!("{seconds} is out of range: use 0 to 3600 seconds"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// A built-in policy's name or a policy file's path, loaded and checked.
fn parse_policy(raw: &str) -> Result<std::sync::Arc<engine::governance::Policy>, String> {
    engine::governance::Policy::load(raw)
        .map(std::sync::Arc::new)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Settings, clap::Error> {
        Settings::try_parse_from(std::iter::once("antibody").chain(args.iter().copied()))
    }

    #[test]
    fn every_subcommand_is_well_formed() {
        // Catches clashing argument names in flattened groups, which clap
        // otherwise reports only when that subcommand runs.
        <Settings as clap::CommandFactory>::command().debug_assert();
    }

    #[test]
    fn defaults_serve_on_localhost_3000_in_real_time() {
        let settings = parse(&[]).unwrap();
        assert_eq!(settings.bind_addr().to_string(), "127.0.0.1:3000");
        assert_eq!(settings.speed, Speed::REAL_TIME);
        assert_eq!(settings.commit_window, Duration::ZERO);
        assert_eq!(settings.ws_write_budget, 40_000);
        assert_eq!(settings.policy.name, "default");
    }

    #[test]
    fn sqlite_durability_is_full_unless_asked_and_a_bad_value_is_named() {
        assert_eq!(parse(&[]).unwrap().sqlite_sync, store::SqliteSync::Full);
        let normal = parse(&["--sqlite-sync", "NORMAL"]).unwrap();
        assert_eq!(normal.sqlite_sync, store::SqliteSync::Normal);
        let error = parse(&["--sqlite-sync", "off"]).unwrap_err().to_string();
        assert!(error.contains("`off` is neither `full` nor `normal`"), "{error}");
    }

    #[test]
    fn allowed_origins_are_a_comma_separated_list_of_origins() {
        let settings = parse(&["--allowed-origins", "https://a.example,http://b.example:8080"]).unwrap();
        assert_eq!(settings.allowed_origins, ["https://a.example", "http://b.example:8080"]);
    }

    #[test]
    fn port_alone_listens_on_every_interface() {
        let settings = parse(&["--port", "8080"]).unwrap();
        assert_eq!(settings.bind_addr().to_string(), "0.0.0.0:8080");
    }

    #[test]
    fn port_overrides_the_port_of_addr() {
        let settings = parse(&["--addr", "127.0.0.1:3000", "--port", "8080"]).unwrap();
        assert_eq!(settings.bind_addr().to_string(), "127.0.0.1:8080");
    }

    #[test]
    fn bad_values_are_rejected_with_the_setting_named() {
        for (args, needle) in [
            (&["--speed", "0"][..], "--speed"),
            (&["--speed", "fast"][..], "not a number"),
            (&["--addr", "localhost"][..], "--addr"),
            (&["--port", "70000"][..], "--port"),
            (&["--shutdown-grace=-1"][..], "--shutdown-grace"),
            (&["--demo-autopilot", "0"][..], "out of range"),
            (&["--demo", "maybe"][..], "--demo"),
            (&["--ws-max-per-ip", "0"][..], "--ws-max-per-ip"),
            (&["--webhook-url", "ftp://example.com/hook"][..], "must be an http"),
            (&["--webhook-url", "not a url"][..], "--webhook-url"),
            (&["--max-incidents", "0"][..], "--max-incidents"),
            (&["--agent-failure-rate", "1.5"][..], "out of range"),
            (&["--database-url", "mysql://db/antibody"][..], "neither"),
            (&["--allowed-origins", "https://a.example/path"][..], "not an origin"),
            (&["--rate-limit", "0"][..], "--rate-limit"),
            (&["--commit-window", "2000"][..], "0 to 1000 milliseconds"),
            (&["--commit-window", "0.5"][..], "whole number of milliseconds"),
            (&["--llm-url", "ftp://models.example"][..], "must be an http"),
            (&["--llm-model", "llama3"][..], "--llm-url"),
            (
                &["--policy", "lenient"][..],
                "not a built-in policy (autonomous, default)",
            ),
        ] {
            let err = parse(args).unwrap_err().to_string();
            assert!(err.contains(needle), "{args:?}: {err}");
        }
    }
}
