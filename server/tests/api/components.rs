//! Real monitoring components for the tests, started as plain processes on
//! free ports with temporary directories, as `cargo xtask test` starts
//! PostgreSQL. A missing one is reported loudly, and fails the test when
//! `ANTIBODY_REQUIRE_PROMETHEUS` is set (`cargo xtask test` sets it, after
//! installing Debian's `prometheus` when missing).

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use serde_json::Value;

/// A Prometheus of its own: a temporary data directory, a free port, gone
/// on drop.
pub struct TempPrometheus {
    /// Stopped on drop (`kill_on_drop`).
    _child: tokio::process::Child,
    /// Its config, data and log; removed on drop.
    dir: tempfile::TempDir,
    /// As in `http://127.0.0.1:PORT`.
    pub url: String,
}

/// `program` on PATH (or in /usr/sbin, where Debian puts HAProxy), or
/// `None`, said loudly (a panic when the run requires the real components).
pub fn installed(program: &str) -> Option<PathBuf> {
    let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join(program))
        .find(|path| path.is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("ANTIBODY_REQUIRE_PROMETHEUS").is_none(),
            "`{program}` is not installed, and this run requires it (Debian: apt-get install prometheus \
             prometheus-alertmanager haproxy; `cargo xtask test` installs them)"
        );
        eprintln!("\n\x1b[1;33m!!! `{program}` is not installed: this test is SKIPPED\x1b[0m\n");
    }
    found
}

/// Runs a component's own checker on a file (`promtool check rules`,
/// `amtool check-config`): whether it passed, and all it said.
pub async fn check_with(program: &Path, args: &[&str], file: &Path) -> (bool, String) {
    let out = tokio::process::Command::new(program)
        .args(args)
        .arg(file)
        .output()
        .await
        .unwrap_or_else(|e| panic!("{} starts: {e}", program.display()));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

/// A file the repository ships for real components, as in
/// `deploy/prometheus/twin-rules.yml`.
pub fn shipped(path: &str) -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `program` with `args(port)` on `port`, its log in
/// `dir/<name>.log`, and waits until its `/-/ready` answers (Prometheus and
/// Alertmanager both have one). Stopped when the child is dropped.
async fn launch(
    program: PathBuf,
    name: &str,
    dir: &Path,
    port: u16,
    args: impl FnOnce(u16) -> Vec<String>,
) -> (tokio::process::Child, u16) {
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    let child = tokio::process::Command::new(program)
        .args(args(port))
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{name} starts: {e}"));
    let ready = format!("http://127.0.0.1:{port}/-/ready");
    crate::helpers::eventually(
        &format!("{name} is ready"),
        Duration::from_millis(100),
        Duration::from_secs(30),
        || async {
            let answer = reqwest::get(&ready).await.ok()?;
            answer.status().is_success().then_some(())
        },
    )
    .await;
    (child, port)
}

/// `name`'s log so far in `dir`, for failure messages.
fn log_of(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default()
}

impl TempPrometheus {
    /// Prometheus scraping `path` on `target` (`host:port`) every second;
    /// `None` when it is not installed.
    pub async fn scraping(target: &str, path: &str) -> Option<Self> {
        Self::scraping_with_rules(target, path, &[]).await
    }

    /// The same, evaluating the rule files `rules` every second.
    pub async fn scraping_with_rules(target: &str, path: &str, rules: &[PathBuf]) -> Option<Self> {
        Self::alerting(target, path, rules, None).await
    }

    /// The same, sending its alerts to the Alertmanager at `alertmanager`
    /// (`host:port`).
    pub async fn alerting(target: &str, path: &str, rules: &[PathBuf], alertmanager: Option<&str>) -> Option<Self> {
        Self::start(free_port(), &[("twin", target)], path, rules, alertmanager).await
    }

    /// The same, on `port`: for a server that must know Prometheus's
    /// address before Prometheus can start (it needs the Alertmanager that
    /// posts to that server).
    pub async fn alerting_on(
        port: u16,
        target: &str,
        path: &str,
        rules: &[PathBuf],
        alertmanager: Option<&str>,
    ) -> Option<Self> {
        Self::start(port, &[("twin", target)], path, rules, alertmanager).await
    }

    /// Prometheus scraping several targets every second, each as its own
    /// job: `(job, host:port)`.
    pub async fn scraping_jobs(jobs: &[(&str, &str)], path: &str) -> Option<Self> {
        Self::start(free_port(), jobs, path, &[], None).await
    }

    async fn start(
        port: u16,
        jobs: &[(&str, &str)],
        path: &str,
        rules: &[PathBuf],
        alertmanager: Option<&str>,
    ) -> Option<Self> {
        let alerting = alertmanager.map_or(String::new(), |am| {
            format!("alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['{am}']\n")
        });
        let scrapes: String = jobs
            .iter()
            .map(|(job, target)| {
                format!(
                    "  - job_name: {job}\n    metrics_path: {path}\n    \
                     static_configs:\n      - targets: ['{target}']\n"
                )
            })
            .collect();
        let program = installed("prometheus")?;
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 rule_files: {rules:?}\n{alerting}scrape_configs:\n{scrapes}"
            ),
        )
        .expect("the config is written");
        let (child, port) = launch(program, "prometheus", dir.path(), port, |port| {
            vec![
                format!("--config.file={}", config.display()),
                format!("--storage.tsdb.path={}", dir.path().join("data").display()),
                format!("--web.listen-address=127.0.0.1:{port}"),
                // Its alerts' links (generatorURL) point here, not at the host name.
                format!("--web.external-url=http://127.0.0.1:{port}/"),
            ]
        })
        .await;
        let prometheus = Self {
            _child: child,
            dir,
            url: format!("http://127.0.0.1:{port}"),
        };
        Some(prometheus)
    }

    /// An instant query's result vector: each series' labels and value.
    pub async fn query(&self, promql: &str) -> Vec<(Value, f64)> {
        let answer: Value = reqwest::Client::new()
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", promql)])
            .send()
            .await
            .expect("Prometheus answers")
            .json()
            .await
            .expect("a JSON answer");
        assert_eq!(answer["status"], "success", "{promql}: {answer}\nlog: {}", self.log());
        answer["data"]["result"]
            .as_array()
            .expect("a vector")
            .iter()
            .map(|series| {
                let value = series["value"][1].as_str().unwrap().parse().unwrap();
                (series["metric"].clone(), value)
            })
            .collect()
    }

    /// Its log so far, for failure messages.
    pub fn log(&self) -> String {
        log_of(self.dir.path(), "prometheus")
    }
}

/// An Alertmanager of its own, routing everything to one webhook; gone on
/// drop.
pub struct TempAlertmanager {
    /// Stopped on drop (`kill_on_drop`).
    _child: tokio::process::Child,
    /// Its config, data and log; removed on drop.
    dir: tempfile::TempDir,
    /// As in `127.0.0.1:PORT`.
    pub addr: String,
}

impl TempAlertmanager {
    /// Sends every alert, grouped by name and service, to `url` with
    /// `token` as a bearer; `None` when it is not installed.
    pub async fn posting_to(url: &str, token: &str) -> Option<Self> {
        let program = installed("prometheus-alertmanager")?;
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(
            &config,
            format!(
                "route:\n  receiver: antibody\n  group_by: [alertname, service]\n  group_wait: 1s\n  \
                 group_interval: 2s\n  repeat_interval: 1h\n\
                 receivers:\n  - name: antibody\n    webhook_configs:\n      - url: {url}\n        \
                 send_resolved: true\n        http_config:\n          authorization:\n            \
                 type: Bearer\n            credentials: {token}\n"
            ),
        )
        .expect("the config is written");
        let (child, port) = launch(program, "alertmanager", dir.path(), free_port(), |port| {
            vec![
                format!("--config.file={}", config.display()),
                format!("--storage.path={}", dir.path().join("data").display()),
                format!("--web.listen-address=127.0.0.1:{port}"),
                // No cluster: it would listen on 9094 for its peers.
                "--cluster.listen-address=".into(),
                "--log.level=debug".into(),
            ]
        })
        .await;
        let alertmanager = Self {
            _child: child,
            dir,
            addr: format!("127.0.0.1:{port}"),
        };
        Some(alertmanager)
    }

    /// Its log so far, for failure messages.
    pub fn log(&self) -> String {
        log_of(self.dir.path(), "alertmanager")
    }
}

/// HAProxy balancing three servers, from the shipped
/// `deploy/haproxy/antibody.cfg` as is (its addresses come from the
/// environment), on a free port.
pub struct TempHaproxy {
    /// Stopped on drop (`kill_on_drop`).
    _child: tokio::process::Child,
    /// Its log; removed on drop.
    dir: tempfile::TempDir,
    /// As in `http://127.0.0.1:PORT`.
    pub url: String,
}

impl TempHaproxy {
    /// HAProxy in front of `backends` (three `host:port`), once it answers
    /// through to one of them. `None` when HAProxy is not installed (said
    /// loudly; a panic when the run requires it).
    pub async fn balancing(backends: &[String; 3]) -> Option<Self> {
        let program = installed("haproxy")?;
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("haproxy.log")).unwrap();
        let child = tokio::process::Command::new(program)
            .args(["-db", "-f"])
            .arg(shipped("deploy/haproxy/antibody.cfg"))
            .env("ANTIBODY_LB_BIND", format!("127.0.0.1:{port}"))
            .env("ANTIBODY_1", &backends[0])
            .env("ANTIBODY_2", &backends[1])
            .env("ANTIBODY_3", &backends[2])
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("haproxy starts: {e}"));
        let url = format!("http://127.0.0.1:{port}");
        answers_through(&url, "HAProxy answers through to an instance").await;
        Some(Self {
            _child: child,
            dir,
            url,
        })
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        log_of(self.dir.path(), "haproxy")
    }
}

/// nginx with the shipped site (`deploy/nginx/antibody.conf`) in front of
/// one server, on a free port, in a temporary directory.
pub struct TempNginx {
    /// Stopped on drop (`kill_on_drop`).
    _child: tokio::process::Child,
    /// Its configuration, temporary files and error log; removed on drop.
    dir: tempfile::TempDir,
    /// As in `127.0.0.1:PORT`.
    pub addr: String,
}

impl TempNginx {
    /// nginx in front of `backend` (`host:port`), once it answers through
    /// to it. `None` when nginx is not installed (said loudly; a panic when
    /// the run requires it).
    pub async fn in_front_of(backend: &str) -> Option<Self> {
        let program = installed("nginx")?;
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let site = std::fs::read_to_string(shipped("deploy/nginx/antibody.conf")).unwrap();
        // The shipped site listens on 80 and proxies to systemd's 3000.
        for shipped_value in ["server 127.0.0.1:3000;", "listen 80;"] {
            assert!(
                site.contains(shipped_value),
                "the nginx site no longer has `{shipped_value}`"
            );
        }
        let site = site
            .replace("server 127.0.0.1:3000;", &format!("server {backend};"))
            .replace("listen 80;", &format!("listen 127.0.0.1:{port};"));
        let path = |name: &str| dir.path().join(name).display().to_string();
        std::fs::write(path("antibody.conf"), site).unwrap();
        let main = format!(
            "daemon off;\nuser root;\nworker_processes 1;\npid {pid};\nerror_log {log} info;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {tmp}/body;\n  proxy_temp_path {tmp}/proxy;\n  \
             fastcgi_temp_path {tmp}/fastcgi;\n  uwsgi_temp_path {tmp}/uwsgi;\n  scgi_temp_path {tmp}/scgi;\n  \
             include {site};\n}}\n",
            pid = path("nginx.pid"),
            log = path("nginx.log"),
            tmp = dir.path().display(),
            site = path("antibody.conf"),
        );
        std::fs::write(path("nginx.conf"), main).unwrap();
        let child = tokio::process::Command::new(program)
            .args(["-e", &path("nginx.log"), "-c", &path("nginx.conf")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("nginx starts: {e}"));
        let addr = format!("127.0.0.1:{port}");
        answers_through(&format!("http://{addr}"), "nginx answers through to the server").await;
        Some(Self {
            _child: child,
            dir,
            addr,
        })
    }

    /// Its error log so far.
    pub fn log(&self) -> String {
        log_of(self.dir.path(), "nginx")
    }
}

/// Waits (30 s at most) until a proxy at `url` answers `/healthz` with a
/// success, which only the server behind it can give.
async fn answers_through(url: &str, what: &str) {
    let healthz = format!("{url}/healthz");
    crate::helpers::eventually(what, Duration::from_millis(100), Duration::from_secs(30), || async {
        let answer = reqwest::get(&healthz).await.ok()?;
        answer.status().is_success().then_some(())
    })
    .await;
}
