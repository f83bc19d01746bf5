//! `antibody simulate latency-spike|data-drift`: seed 003's two
//! simulations, started on a running server (`--url`) over its REST API
//! and followed to the end: every agent's step as it finishes, policy's
//! decision, any approval it waits for, and the outcome.
//!
//! Under the default policy retraining waits for a person: approve it on
//! the dashboard, or pass `--approve-as NAME` to approve as NAME from here.
//!
//! Exit codes: 0 when the incident was resolved, 3 when it was not, 1 when
//! the server could not be reached or refused.

use std::{collections::HashSet, io::IsTerminal, process::ExitCode, time::Duration};

use anyhow::{Context, bail};
use engine::protocol::{Approval, IncidentDetail, IncidentStatus, ServerMessage};
use indicatif::{ProgressBar, ProgressStyle};
use uuid::Uuid;

use crate::{
    configuration::{SimulateArgs, Simulation},
    timeline_cli::answer,
};

/// How often progress is read.
const POLL: Duration = Duration::from_millis(250);
/// A simulation that has not closed by then is reported as stuck.
const GIVE_UP: Duration = Duration::from_secs(30 * 60);

impl Simulation {
    /// The catalog scenario that plays it.
    pub fn scenario(self) -> &'static str {
        match self {
            Self::LatencySpike => "latency_slo_breach",
            Self::DataDrift => "data_drift",
        }
    }
}

pub async fn run(args: SimulateArgs) -> ExitCode {
    match simulate(args).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
}

/// One line for a finished step, an asked approval or a decision.
fn describe(message: &ServerMessage) -> Option<String> {
    match message {
        ServerMessage::AgentAction { action, .. } if action.duration_ms.is_some() => {
            Some(format!("{:<13} {}", action.agent_type.label(), action.description))
        }
        ServerMessage::PolicyDecision { decision, .. } => Some(format!(
            "{:<13} {} ({}): {}",
            "Policy",
            decision.verdict.as_str(),
            decision.rule,
            decision.reason
        )),
        ServerMessage::ApprovalRequested { approval } => Some(format!(
            "{:<13} waiting for {} to approve: {}",
            "Approval", approval.approver, approval.proposal.plan
        )),
        ServerMessage::ApprovalDecided { approval } => Some(format!("{:<13} {}", "Approval", approval.outcome())),
        ServerMessage::ConfigChange { change, .. } => Some(format!(
            "{:<13} {}.{}: {} → {}",
            "Change", change.service, change.key, change.from, change.to
        )),
        _ => None,
    }
}

async fn simulate(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .context("an HTTP client")?;
    let base = args.url.as_str().trim_end_matches('/').to_owned();
    let with_token = |request: reqwest::RequestBuilder| match &args.token {
        Some(token) => request.bearer_auth(token),
        None => request,
    };
    let scenario = args.simulation.scenario();
    let opened: serde_json::Value = answer(
        with_token(http.post(format!("{base}/api/scenarios/{scenario}/trigger")))
            .send()
            .await,
        &base,
    )
    .await?
    .json()
    .await?;
    let id: Uuid = opened["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .context("the server's answer has no incident id")?;
    println!(
        "{} opened: {base}/incidents/{id}",
        opened["title"].as_str().unwrap_or(scenario)
    );

    let spinner = if std::io::stdout().is_terminal() {
        let bar = ProgressBar::new_spinner();
        bar.set_style(ProgressStyle::with_template("{spinner} {elapsed} {msg}").expect("a valid template"));
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut shown: HashSet<u64> = HashSet::new();
    let mut approved: HashSet<Uuid> = HashSet::new();
    let started = std::time::Instant::now();
    loop {
        let detail: IncidentDetail = answer(http.get(format!("{base}/api/incidents/{id}")).send().await, &base)
            .await?
            .json()
            .await?;
        for event in &detail.timeline {
            if shown.insert(event.seq)
                && let Some(line) = describe(&event.message)
            {
                // A hidden bar (not a terminal) prints nothing itself.
                if spinner.is_hidden() {
                    println!("{line}");
                } else {
                    spinner.println(line);
                }
            }
        }
        if detail.incident.status.is_terminal() {
            spinner.finish_and_clear();
            let incident = &detail.incident;
            println!(
                "{}: {} after {:.1} s (simulated){}",
                incident.title,
                incident.status.as_str(),
                incident.resolution_time.unwrap_or_default(),
                incident
                    .root_cause
                    .as_ref()
                    .map(|r| format!("; root cause: {r}"))
                    .unwrap_or_default()
            );
            return Ok(if incident.status == IncidentStatus::Resolved {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(3)
            });
        }
        let pending: Vec<Approval> = answer(
            http.get(format!("{base}/api/approvals?state=pending")).send().await,
            &base,
        )
        .await?
        .json()
        .await?;
        match pending.iter().find(|a| a.incident_id == id) {
            Some(approval) if args.approve_as.is_some() && approved.insert(approval.approval_id) => {
                let approver = args.approve_as.clone().unwrap_or_default();
                answer(
                    with_token(http.post(format!("{base}/api/approvals/{}/decision", approval.approval_id)))
                        .json(&serde_json::json!({ "decision": "approve", "approver": approver, "comment": "approved from `antibody simulate`" }))
                        .send()
                        .await,
                    &base,
                )
                .await?;
            }
            Some(approval) => spinner.set_message(format!(
                "waiting for {} to approve (the dashboard, or --approve-as NAME)",
                approval.approver
            )),
            None => spinner.set_message("the swarm is working"),
        }
        if started.elapsed() > GIVE_UP {
            bail!("the incident has not closed after {} minutes", GIVE_UP.as_secs() / 60);
        }
        tokio::time::sleep(POLL).await;
    }
}
