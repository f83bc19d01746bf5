//! `antibody timeline list` and `antibody timeline run`: seed 004's
//! command line. It talks to a running server over its REST API (`--url`),
//! or runs an embedded engine when none is given. On a terminal it shows
//! the schedule, waits for Enter, and draws live progress; otherwise the
//! output is plain lines and tables.
//!
//! Exit codes: 0 when every incident was resolved; 3 when the run ended
//! but an incident was not resolved (or the run was cancelled or
//! interrupted); 2 when the timeline file is invalid or unknown; 1 for
//! anything else (the server unreachable, a refused token).

use std::{
    io::{BufRead, IsTerminal, Write},
    process::ExitCode,
    sync::Arc,
    time::Duration,
};

use anyhow::Context;
use comfy_table::{Table, presets};
use engine::{
    Engine, EngineConfig,
    clock::Speed,
    protocol::{IncidentStatus, RunState, TimelineRun, TimelineSummary, schedule_clock},
    timeline::runner::Timelines,
};
use indicatif::{ProgressBar, ProgressStyle};
use uuid::Uuid;

use crate::configuration::{TimelineArgs, TimelineCommand, TimelineRunArgs};

/// How often progress is read.
const POLL: Duration = Duration::from_millis(250);

/// An invalid or unknown timeline: exit code 2, with the message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct InvalidTimeline(String);

/// Where runs happen.
enum Backend {
    /// A running server, over its REST API.
    Remote {
        http: reqwest::Client,
        base: String,
        token: Option<String>,
    },
    /// An engine in this process.
    Embedded(Timelines),
}

impl Backend {
    fn new(
        url: Option<&reqwest::Url>,
        token: Option<String>,
        speed: Option<f64>,
        llm: &crate::configuration::LlmArgs,
    ) -> anyhow::Result<Self> {
        if let Some(url) = url {
            return Ok(Self::Remote {
                http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?,
                base: url.as_str().trim_end_matches('/').to_owned(),
                token,
            });
        }
        let speed = Speed::new(speed.unwrap_or(1.0)).map_err(|e| anyhow::anyhow!("--speed: {e}"))?;
        // The library's autonomous policy: an embedded run has nobody to
        // approve plans (against a server, its own policy applies).
        let engine = Engine::new(EngineConfig {
            speed,
            ..EngineConfig::default()
        })?;
        let generator = llm.generator(Arc::clone(engine.topology()))?;
        Ok(Self::Embedded(Timelines::new(engine, generator)?))
    }

    async fn list(&self) -> anyhow::Result<Vec<TimelineSummary>> {
        match self {
            Self::Remote { http, base, .. } => Ok(answer(http.get(format!("{base}/api/timelines")).send().await, base)
                .await?
                .json()
                .await?),
            Self::Embedded(timelines) => Ok(timelines.list()),
        }
    }

    /// The schedule the run will follow (checking a file first).
    async fn preview(&self, args: &TimelineRunArgs) -> anyhow::Result<TimelineSummary> {
        match (&args.name, &args.file) {
            (Some(name), None) => self.list().await?.into_iter().find(|t| &t.id == name).ok_or_else(|| {
                let known: Vec<String> = match self {
                    Self::Embedded(t) => t.list().into_iter().map(|t| t.id).collect(),
                    Self::Remote { .. } => Vec::new(),
                };
                let hint = if known.is_empty() {
                    String::new()
                } else {
                    format!(" (known: {})", known.join(", "))
                };
                InvalidTimeline(format!(
                    "no timeline `{name}`{hint}; `antibody timeline list` shows them"
                ))
                .into()
            }),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                match self {
                    Self::Remote { http, base, .. } => {
                        let response = http
                            .post(format!("{base}/api/timelines/validate"))
                            .header("content-type", "application/json")
                            .body(text)
                            .send()
                            .await
                            .with_context(|| format!("cannot reach {base}"))?;
                        if response.status() == reqwest::StatusCode::UNPROCESSABLE_ENTITY {
                            let problem: serde_json::Value = response.json().await?;
                            let lines: Vec<String> = problem["errors"]
                                .as_array()
                                .map(|errors| {
                                    errors
                                        .iter()
                                        .map(|e| {
                                            format!(
                                                "{}: {}: {}",
                                                path.display(),
                                                e["field"].as_str().unwrap_or(""),
                                                e["reason"].as_str().unwrap_or("")
                                            )
                                        })
                                        .collect()
                                })
                                .unwrap_or_default();
                            return Err(InvalidTimeline(lines.join("\n")).into());
                        }
                        Ok(answer(Ok(response), base).await?.json().await?)
                    }
                    Self::Embedded(timelines) => timelines
                        .parse(&path.display().to_string(), &text)
                        .map(|t| t.summary())
                        .map_err(|e| InvalidTimeline(e.to_string()).into()),
                }
            }
            _ => unreachable!("clap requires exactly one of NAME and --file"),
        }
    }

    async fn start(&self, args: &TimelineRunArgs) -> anyhow::Result<TimelineRun> {
        match self {
            Self::Remote { http, base, token } => {
                let mut body = serde_json::json!({"speed": args.speed, "seed": args.seed});
                match (&args.name, &args.file) {
                    (Some(name), _) => body["timeline_id"] = name.clone().into(),
                    (None, Some(path)) => {
                        let text = std::fs::read_to_string(path)?;
                        body["timeline"] = serde_json::from_str(&text).context("the file is not JSON")?;
                    }
                    _ => unreachable!("clap requires exactly one of NAME and --file"),
                }
                let mut request = http.post(format!("{base}/api/timeline-runs")).json(&body);
                if let Some(token) = token {
                    request = request.bearer_auth(token);
                }
                Ok(answer(request.send().await, base).await?.json().await?)
            }
            Self::Embedded(timelines) => {
                let timeline = match (&args.name, &args.file) {
                    (Some(name), _) => timelines.find(name)?.clone(),
                    (None, Some(path)) => timelines
                        .parse(&path.display().to_string(), &std::fs::read_to_string(path)?)
                        .map_err(|e| InvalidTimeline(e.to_string()))?,
                    _ => unreachable!("clap requires exactly one of NAME and --file"),
                };
                Ok(timelines.start(timeline, args.speed, args.seed.unwrap_or(0))?)
            }
        }
    }

    async fn get(&self, run_id: Uuid) -> anyhow::Result<TimelineRun> {
        match self {
            Self::Remote { http, base, .. } => Ok(answer(
                http.get(format!("{base}/api/timeline-runs/{run_id}")).send().await,
                base,
            )
            .await?
            .json()
            .await?),
            Self::Embedded(timelines) => timelines.run(run_id).context("the run vanished"),
        }
    }
}

/// A server's refusal: its status and its problem's detail.
#[derive(Debug, thiserror::Error)]
#[error("the server answered {status}: {detail}")]
pub(crate) struct Refused {
    pub status: reqwest::StatusCode,
    pub detail: String,
}

/// A response that succeeded, or the server's problem as a [`Refused`].
pub(crate) async fn answer(
    response: reqwest::Result<reqwest::Response>,
    base: &str,
) -> anyhow::Result<reqwest::Response> {
    let response = response.with_context(|| format!("cannot reach the server at {base}"))?;
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status();
    let problem: serde_json::Value = response.json().await.unwrap_or_default();
    let detail = problem["detail"].as_str().unwrap_or("no detail").to_owned();
    Err(Refused { status, detail }.into())
}

pub async fn run(args: TimelineArgs) -> ExitCode {
    match execute(args).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            let unknown_or_invalid = error.downcast_ref::<Refused>().is_some_and(|r| {
                r.status == reqwest::StatusCode::NOT_FOUND || r.status == reqwest::StatusCode::UNPROCESSABLE_ENTITY
            });
            if unknown_or_invalid || error.downcast_ref::<InvalidTimeline>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

async fn execute(args: TimelineArgs) -> anyhow::Result<ExitCode> {
    let terminal = std::io::stdout().is_terminal();
    match args.command {
        TimelineCommand::List { url, json } => {
            let backend = Backend::new(url.as_ref(), None, None, &crate::configuration::LlmArgs::default())?;
            let timelines = backend.list().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&timelines)?);
            } else {
                let mut table = table(terminal);
                table.set_header(["ID", "Name", "Duration", "Incidents"]);
                for t in &timelines {
                    table.add_row([
                        t.id.clone(),
                        t.name.clone(),
                        format!("{} min", t.duration_minutes),
                        t.schedule.len().to_string(),
                    ]);
                }
                println!("{table}");
            }
            Ok(ExitCode::SUCCESS)
        }
        TimelineCommand::Run(run) => run_timeline(*run, terminal).await,
    }
}

async fn run_timeline(args: TimelineRunArgs, terminal: bool) -> anyhow::Result<ExitCode> {
    let backend = Backend::new(args.url.as_ref(), args.token.clone(), args.speed, &args.llm)?;
    let preview = backend.preview(&args).await?;
    let quiet = args.json;
    if !quiet {
        println!("{} — {}", preview.name, preview.description);
        println!(
            "{} min, {} incidents{}\n",
            preview.duration_minutes,
            preview.schedule.len(),
            args.speed.map(|s| format!(", at speed {s}")).unwrap_or_default()
        );
        let mut schedule = table(terminal);
        schedule.set_header(["Time", "Type", "What", "Comment"]);
        for entry in &preview.schedule {
            schedule.add_row([
                schedule_clock(entry.delay_seconds),
                entry.kind.label().to_owned(),
                entry.source.clone(),
                entry.comment.clone(),
            ]);
        }
        println!("{schedule}\n");
    }
    if !args.yes && terminal && std::io::stdin().is_terminal() {
        print!("Press Enter to start the timeline (Ctrl-C to stop)… ");
        std::io::stdout().flush()?;
        std::io::stdin().lock().read_line(&mut String::new())?;
    }

    let started = backend.start(&args).await?;
    let bar = if terminal && !quiet {
        ProgressBar::new(started.duration_seconds.ceil() as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{wide_bar}] schedule {pos}/{len} s")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    let say = |line: String| {
        if quiet {
            return;
        }
        if bar.is_hidden() {
            println!("{line}");
        } else {
            bar.println(line);
        }
    };
    // What has been said about each entry: fired, closed.
    let mut told = vec![(false, false); started.entries.len()];
    let run = loop {
        let run = backend.get(started.run_id).await?;
        for (i, entry) in run.entries.iter().enumerate() {
            if !told[i].0 {
                if let Some(id) = entry.incident_id {
                    told[i].0 = true;
                    say(format!(
                        "▶ {} opened {} ({id}){}",
                        schedule_clock(entry.scheduled.delay_seconds),
                        entry.title.as_deref().unwrap_or("an incident"),
                        entry.note.as_deref().map(|n| format!(" — {n}")).unwrap_or_default()
                    ));
                } else if let Some(reason) = &entry.refused {
                    told[i] = (true, true);
                    say(format!(
                        "✗ {} did not open: {reason}",
                        schedule_clock(entry.scheduled.delay_seconds)
                    ));
                }
            }
            if told[i].0
                && !told[i].1
                && let Some(status) = entry.status.filter(|s| s.is_terminal())
            {
                told[i].1 = true;
                say(format!(
                    "  {} {} {}{}",
                    if status == IncidentStatus::Resolved {
                        "✓"
                    } else {
                        "✗"
                    },
                    entry.title.as_deref().unwrap_or("incident"),
                    status.as_str(),
                    entry.mttr_seconds.map(|s| format!(" in {s:.1} s")).unwrap_or_default()
                ));
            }
        }
        let fired = run.entries.iter().filter(|e| e.incident_id.is_some()).count();
        bar.set_position(run.elapsed_seconds.min(run.duration_seconds) as u64);
        bar.set_message(format!("{} {fired}/{} fired", run.state.as_str(), run.entries.len()));
        if run.state.is_final() {
            break run;
        }
        tokio::time::sleep(POLL).await;
    };
    bar.finish_and_clear();

    if quiet {
        println!("{}", serde_json::to_string_pretty(&run)?);
    } else {
        let mut summary = table(terminal);
        summary.set_header([
            "#",
            "Time",
            "Type",
            "Comment",
            "Incident",
            "Outcome",
            "MTTR",
            "Root cause",
        ]);
        for (i, entry) in run.entries.iter().enumerate() {
            summary.add_row([
                (i + 1).to_string(),
                schedule_clock(entry.scheduled.delay_seconds),
                entry.scheduled.kind.label().to_owned(),
                entry.scheduled.comment.clone(),
                entry
                    .incident_id
                    .map(|id| id.to_string()[..8].to_owned())
                    .unwrap_or_else(|| "-".into()),
                match (&entry.refused, entry.status) {
                    (Some(reason), _) => format!("refused: {reason}"),
                    (None, Some(status)) => status.as_str().to_owned(),
                    (None, None) => "not fired".into(),
                },
                entry
                    .mttr_seconds
                    .map(|s| format!("{s:.1} s"))
                    .unwrap_or_else(|| "-".into()),
                match entry.root_cause_correct {
                    Some(true) => "right".into(),
                    Some(false) => "wrong".into(),
                    None => "-".into(),
                },
            ]);
        }
        println!("{summary}");
        println!(
            "\nRun {} {}: score {}",
            run.run_id,
            run.state.as_str(),
            run.score.summary()
        );
    }
    let all_resolved =
        run.state == RunState::Completed && run.entries.iter().all(|e| e.status == Some(IncidentStatus::Resolved));
    Ok(if all_resolved {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

/// A table: box drawing on a terminal, plain ASCII otherwise.
fn table(terminal: bool) -> Table {
    let mut table = Table::new();
    table.load_preset(if terminal {
        presets::UTF8_FULL
    } else {
        presets::ASCII_MARKDOWN
    });
    table
}
