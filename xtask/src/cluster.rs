//! `cargo xtask cluster`: the deployment `docs/cluster.md` describes, on
//! this machine. A throwaway PostgreSQL, a standalone twin as the estate,
//! three release instances sharing both, and HAProxy (the shipped
//! `deploy/haproxy/antibody.cfg`) in front, on fixed local ports; stopped
//! with Ctrl-C. To look at, and to measure with `antibody loadtest --url`.
//! Every instance inherits this environment, so `ANTIBODY_SPEED=10 cargo
//! xtask cluster` runs the instances and the twin ten times faster.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::{Needs, Result, TempPostgres, dist::wait_for_ok, ensure_haproxy, root, setup, step};

/// How long each part may take to answer once started.
const STARTING: Duration = Duration::from_secs(60);

/// Where the balancer listens; the instances take the next three ports.
const BALANCER_PORT: u16 = 3000;
/// Where the standalone twin listens.
const TWIN_PORT: u16 = 3100;

/// Children killed when the task ends, whichever way.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn cluster() -> Result {
    let started = Instant::now();
    setup(Needs {
        chromium: false,
        npm: true,
        postgres: true,
        prometheus: false,
    })?;
    ensure_haproxy()?;
    crate::build_site(true)?;
    let binary = crate::dist::build_binary()?;
    let postgres = TempPostgres::start()?;
    // Signs every order the instances send the twin.
    let secret = format!("{:x}{:x}", std::process::id(), started.elapsed().as_nanos());
    let mut children = Children(Vec::new());

    // The instances read ANTIBODY_SPEED (and every other setting) from
    // this environment; the twin keeps the same time.
    let speed = std::env::var("ANTIBODY_SPEED").unwrap_or_else(|_| "1".to_owned());
    step(&format!(
        "Estate: antibody twin serve on 127.0.0.1:{TWIN_PORT} at speed {speed}"
    ));
    children.0.push(
        Command::new(&binary)
            .args([
                "twin",
                "serve",
                "--addr",
                &format!("127.0.0.1:{TWIN_PORT}"),
                "--speed",
                &speed,
            ])
            .env("ANTIBODY_ACTUATOR_SECRET", &secret)
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the twin: {e}"))?,
    );
    wait_for_ok(&format!("http://127.0.0.1:{TWIN_PORT}/api/estate"), STARTING)?;

    let mut backends = Vec::new();
    for n in 1..=3u16 {
        let port = BALANCER_PORT + n;
        step(&format!("Instance {n} on 127.0.0.1:{port}"));
        children.0.push(
            Command::new(&binary)
                .args(["--addr", &format!("127.0.0.1:{port}")])
                .env("ANTIBODY_DATABASE_URL", &postgres.url)
                .env("ANTIBODY_TWIN_URL", format!("http://127.0.0.1:{TWIN_PORT}"))
                .env("ANTIBODY_ACTUATOR_SECRET", &secret)
                .env("ANTIBODY_TRUST_PROXY", "true")
                .spawn()
                .map_err(|e| format!("cannot start instance {n}: {e}"))?,
        );
        wait_for_ok(&format!("http://127.0.0.1:{port}/readyz"), STARTING)?;
        backends.push(format!("127.0.0.1:{port}"));
    }

    step(&format!("Balancer: HAProxy on 127.0.0.1:{BALANCER_PORT}"));
    let haproxy = if std::path::Path::new("/usr/sbin/haproxy").exists() {
        "/usr/sbin/haproxy"
    } else {
        "haproxy"
    };
    children.0.push(
        Command::new(haproxy)
            .args(["-db", "-f"])
            .arg(root().join("deploy/haproxy/antibody.cfg"))
            .env("ANTIBODY_LB_BIND", format!("127.0.0.1:{BALANCER_PORT}"))
            .env("ANTIBODY_1", &backends[0])
            .env("ANTIBODY_2", &backends[1])
            .env("ANTIBODY_3", &backends[2])
            .spawn()
            .map_err(|e| format!("cannot start HAProxy: {e}"))?,
    );
    wait_for_ok(&format!("http://127.0.0.1:{BALANCER_PORT}/healthz"), STARTING)?;
    step(&format!(
        "Serving http://127.0.0.1:{BALANCER_PORT} (three instances on {}; built in {}); stop with Ctrl-C",
        postgres.url,
        crate::minutes(started)
    ));
    println!(
        "  measure: target/x86_64-unknown-linux-musl/dist/antibody loadtest --url http://127.0.0.1:{BALANCER_PORT} --dashboards 1500 --rate 100"
    );
    // Runs until Ctrl-C (or a child dies); the guards stop the rest.
    loop {
        std::thread::sleep(Duration::from_secs(1));
        for child in &mut children.0 {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("a process of the cluster exited ({status}); stopping the rest"));
            }
        }
    }
}
