//! The API contract check: schemathesis (PyPI) with `--checks all` against
//! a running debug server. It generates requests from the OpenAPI document
//! and fails on any answer the document does not promise: a 5xx, an
//! undocumented status, a body off its schema, a schema-valid request
//! refused, or an invalid one accepted. Its settings are in the repository's
//! `schemathesis.toml`.

use std::{
    net::{TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use super::{Result, apt_install, output, root, sh, sh_with, step};

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

/// A debug server on a free port with a fresh database in
/// `target/contract`, stopped on drop.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start() -> Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let addr = format!("127.0.0.1:{port}");
        let dir = root().join("target/contract");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let log =
            std::fs::File::create(dir.join("server.log")).map_err(|e| format!("creating the server's log: {e}"))?;
        // A database file, as in production: its readers do not queue
        // behind the writer as they would on the one connection of
        // `sqlite::memory:`. No rate limit: schemathesis sends thousands of
        // requests, and a 429 would only test the limiter.
        let database = format!("sqlite://{}", dir.join("antibody.db").display());
        let child = Command::new(root().join("target/debug/antibody"))
            .args(["--database-url", &database, "--addr", &addr])
            .args(["--rate-limit", "1000000", "--rate-burst", "1000000"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start target/debug/antibody: {e}"))?;
        let server = Self {
            child,
            url: format!("http://{addr}"),
        };
        let started = Instant::now();
        while TcpStream::connect(&addr).is_err() {
            if started.elapsed() > Duration::from_secs(30) {
                return Err("the server did not listen within 30 s (see target/contract/server.log)".into());
            }
            thread::sleep(Duration::from_millis(100));
        }
        Ok(server)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs schemathesis against a fresh server; any failure fails the step.
pub fn check(schemathesis: &PathBuf) -> Result {
    step("Contract: schemathesis --checks all against the OpenAPI document");
    let server = Server::start()?;
    sh_with(
        Command::new(schemathesis)
            .args(["run", &format!("{}/api/openapi.json", server.url)])
            .args(["--checks", "all", "--max-examples", "50", "--workers", "1"])
            .current_dir(root()),
    )
}
