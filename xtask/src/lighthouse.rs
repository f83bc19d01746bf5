//! `cargo xtask lighthouse [--runs N]`: Lighthouse's mobile audit (slow 4G,
//! 4× CPU slowdown, the default) of the dashboard as it ships, the one-file
//! release, with an incident waiting for a person: one line per run, and
//! where each score lost points. A measurement, not a test: nothing here fails on a
//! score (docs/performance.md keeps the figures).

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{Result, apt_install, dist, output, root, server::Server, sh, sh_with, step};

/// The Lighthouse release the figures in docs/performance.md come from.
const LIGHTHOUSE: &str = "12.8.2";
/// What the dashboard shows while it is measured (as in earlier sessions).
const SCENARIO: &str = "byzantine_cascade";

pub fn lighthouse(runs: usize) -> Result {
    crate::ensure_chromium()?;
    let lighthouse = ensure_lighthouse()?;
    let binary = dist::dist()?;
    let dir = root().join("target/lighthouse");
    let server = Server::start(&binary, &dir, &[])?;
    step(&format!(
        "Lighthouse {LIGHTHOUSE}: {runs} mobile runs of {}/",
        server.url
    ));
    request(&server.addr, "POST", &format!("/api/scenarios/{SCENARIO}/trigger"))?;
    // Measure a settled page, as every run finds it: the cascade's plan
    // waiting for a person (a plan that arrives mid-run would be that run's
    // largest paint, late).
    let started = Instant::now();
    while !request(&server.addr, "GET", "/api/approvals?state=pending")?.contains("approval_id") {
        if started.elapsed() > Duration::from_secs(60) {
            return Err(format!("{SCENARIO}'s plan did not wait for a person within 60 s"));
        }
        thread::sleep(Duration::from_millis(250));
    }
    let mut reports = Vec::new();
    for run in 1..=runs {
        let report = dir.join(format!("run-{run}.json"));
        sh_with(
            Command::new(&lighthouse)
                .arg(format!("{}/", server.url))
                .args(["--only-categories=performance,accessibility,best-practices", "--quiet"])
                .arg("--chrome-flags=--headless=new --no-sandbox --disable-gpu")
                .arg("--output=json")
                .arg(format!("--output-path={}", report.display()))
                .env("CHROME_PATH", "/usr/bin/chromium")
                .stdout(Stdio::null()),
        )?;
        reports.push(report);
    }
    step("Lighthouse: the runs");
    println!("run  performance  accessibility  best-practices   FCP     LCP     TBT      CLS");
    for (run, report) in reports.iter().enumerate() {
        print_run(run + 1, report)?;
    }
    println!("reports: {}", dir.display());
    Ok(())
}

/// Lighthouse from npm into target/tools/lighthouse, when it is not there.
fn ensure_lighthouse() -> Result<PathBuf> {
    let prefix = root().join("target/tools/lighthouse");
    let program = prefix.join("node_modules/.bin/lighthouse");
    if output(&program.to_string_lossy(), &["--version"]).as_deref() == Some(LIGHTHOUSE) {
        println!("ok  lighthouse {LIGHTHOUSE}");
        return Ok(program);
    }
    if output("npm", &["--version"]).is_none() {
        apt_install(&["nodejs", "npm"], "Lighthouse")?;
    }
    sh(
        "npm",
        &[
            "install",
            "--prefix",
            &prefix.to_string_lossy(),
            "--no-audit",
            "--no-fund",
            &format!("lighthouse@{LIGHTHOUSE}"),
        ],
    )?;
    Ok(program)
}

/// One run's scores and timings, then each weighted audit that lost points.
fn print_run(run: usize, report: &Path) -> Result {
    let text = std::fs::read_to_string(report).map_err(|e| format!("reading {}: {e}", report.display()))?;
    let report: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", report.display()))?;
    let score = |category: &str| {
        report["categories"][category]["score"]
            .as_f64()
            .map_or("—".to_owned(), |s| format!("{:.0}", s * 100.0))
    };
    let shown = |audit: &str| {
        report["audits"][audit]["displayValue"]
            .as_str()
            .unwrap_or("—")
            .to_owned()
    };
    println!(
        "{run:>3}  {:>11}  {:>13}  {:>14}   {:<7} {:<7} {:<8} {}",
        score("performance"),
        score("accessibility"),
        score("best-practices"),
        shown("first-contentful-paint"),
        shown("largest-contentful-paint"),
        shown("total-blocking-time"),
        shown("cumulative-layout-shift"),
    );
    for category in ["performance", "accessibility", "best-practices"] {
        for audit in report["categories"][category]["auditRefs"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let id = audit["id"].as_str().unwrap_or_default();
            let weighted = audit["weight"].as_f64().unwrap_or(0.0) > 0.0;
            let score = report["audits"][id]["score"].as_f64();
            if weighted && score.is_some_and(|s| s < 1.0) {
                println!("       {category}: {id} {}", shown(id));
            }
        }
    }
    Ok(())
}

/// One HTTP/1.1 request with an empty body, by hand (the task runner has no
/// HTTP client, and needs two requests): its status and body, 2xx or an
/// error.
fn request(addr: &str, method: &str, path: &str) -> Result<String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("{addr}: {e}"))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("{addr}: {e}"))?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).map_err(|e| format!("{addr}: {e}"))?;
    let status = answer.split_whitespace().nth(1).unwrap_or_default();
    if !status.starts_with('2') {
        return Err(format!("{method} {path} answered {status}"));
    }
    Ok(answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default())
}
