//! The API contract check: schemathesis (PyPI) with `--checks all` against
//! a running debug server. It generates requests from the OpenAPI document
//! and fails on any answer the document does not promise: a 5xx, an
//! undocumented status, a body off its schema, a schema-valid request
//! refused, or an invalid one accepted. Its settings are in the repository's
//! `schemathesis.toml`.

use std::{path::PathBuf, process::Command};

use super::{Result, apt_install, output, root, server::Server, sh, sh_with, step};

/// The version the contract is checked with; a newer one may add checks.
const SCHEMATHESIS: &str = "4.32.5";

/// The `schemathesis` program: the one on PATH at the pinned version, or
/// one installed in a virtualenv under `target/tools` when it is missing.
pub fn ensure_schemathesis() -> Result<PathBuf> {
    let wanted = format!("schemathesis, version {SCHEMATHESIS}");
    if output("schemathesis", &["--version"]).as_deref() == Some(wanted.as_str()) {
        println!("ok  {wanted}");
        return Ok("schemathesis".into());
    }
    let venv = root().join("target/tools/schemathesis");
    let program = venv.join("bin/schemathesis");
    if output(&program.to_string_lossy(), &["--version"]).as_deref() == Some(wanted.as_str()) {
        println!("ok  {wanted} ({})", program.display());
        return Ok(program);
    }
    if output("python3", &["-c", "import venv, ensurepip"]).is_none() {
        apt_install(&["python3", "python3-venv"], "the API contract check (schemathesis)")?;
    }
    sh("python3", &["-m", "venv", &venv.to_string_lossy()])?;
    let pip = venv.join("bin/pip");
    sh(
        &pip.to_string_lossy(),
        &[
            "install",
            "--quiet",
            "--disable-pip-version-check",
            &format!("schemathesis=={SCHEMATHESIS}"),
        ],
    )?;
    Ok(program)
}

/// Runs schemathesis against a fresh server; any failure fails the step.
pub fn check(schemathesis: &PathBuf) -> Result {
    step("Contract: schemathesis --checks all against the OpenAPI document");
    // A database file, as in production: its readers do not queue behind
    // the writer as they would on the one connection of `sqlite::memory:`.
    // No rate limit: schemathesis sends thousands of requests, and a 429
    // would only test the limiter.
    let server = Server::start(
        &root().join("target/debug/antibody"),
        &root().join("target/contract"),
        &["--rate-limit", "1000000", "--rate-burst", "1000000"],
    )?;
    sh_with(
        Command::new(schemathesis)
            .args(["run", &format!("{}/api/openapi.json", server.url)])
            .args(["--checks", "all", "--max-examples", "50", "--workers", "1"])
            .current_dir(root()),
    )
}
