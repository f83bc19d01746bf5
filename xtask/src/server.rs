//! A server the task runner starts to check it: a binary on a free port,
//! with a fresh SQLite file and its log in a folder of its own, stopped on
//! drop.

use std::{
    net::{TcpListener, TcpStream},
    path::Path,
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use crate::Result;

pub struct Server {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl Server {
    /// Starts `binary` with `extra` arguments on a free port, its database
    /// and `server.log` in `dir` (emptied first), and waits until it
    /// listens (30 s at most).
    pub fn start(binary: &Path, dir: &Path, extra: &[&str]) -> Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let addr = format!("127.0.0.1:{port}");
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let log_path = dir.join("server.log");
        let log = std::fs::File::create(&log_path).map_err(|e| format!("creating the server's log: {e}"))?;
        let database = format!("sqlite://{}", dir.join("antibody.db").display());
        let child = Command::new(binary)
            .args(["--database-url", &database, "--addr", &addr])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let server = Self {
            child,
            url: format!("http://{addr}"),
            addr,
        };
        let started = Instant::now();
        while TcpStream::connect(&server.addr).is_err() {
            if started.elapsed() > Duration::from_secs(30) {
                return Err(format!(
                    "the server did not listen within 30 s (see {})",
                    log_path.display()
                ));
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
