//! The shipped artifacts: one static binary with the site inside
//! (`cargo xtask dist`), and an OCI image FROM scratch around it, built
//! with Debian's buildah and run once to prove it serves (`cargo xtask
//! image`). `cargo xtask run`, `cluster` and `test` use the same binary.

use std::{
    fs,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::{Needs, Result, apt_install, output, root, setup, sh, sh_with, step};

/// The target of the static binary: musl libc, linked in, so the binary
/// runs in an image with nothing else in it.
pub const STATIC_TARGET: &str = "x86_64-unknown-linux-musl";
/// The image's name in buildah's store.
const IMAGE: &str = "localhost/antibody:latest";
/// The shipped image's size budget, unpacked (decimal megabytes, as
/// `docker images` counts).
const IMAGE_BUDGET_BYTES: u64 = 40_000_000;

/// The one-file binary's path.
pub fn binary() -> PathBuf {
    root().join("target").join(STATIC_TARGET).join("dist/antibody")
}

/// `cargo xtask dist`: the release site, then the static binary that
/// carries it. Returns the binary's path.
pub fn dist() -> Result<PathBuf> {
    setup(Needs {
        chromium: false,
        npm: true,
        postgres: false,
        prometheus: false,
    })?;
    crate::build_site(true)?;
    build_binary()
}

/// The static binary with the site inside (the site must be built).
pub fn build_binary() -> Result<PathBuf> {
    ensure_static_toolchain()?;
    step("Server: building the one-file release (static, the site inside)");
    sh(
        "cargo",
        &[
            "build",
            "--package",
            "server",
            "--profile",
            "dist",
            "--features",
            "embed-site",
            "--target",
            STATIC_TARGET,
        ],
    )?;
    let binary = binary();
    let size = fs::metadata(&binary)
        .map_err(|e| format!("{}: {e}", binary.display()))?
        .len();
    println!("  {}: {}", binary.display(), mib(size));
    Ok(binary)
}

/// musl's Rust target, and musl-gcc for the C inside (SQLite, mimalloc).
fn ensure_static_toolchain() -> Result {
    let installed = output("rustup", &["target", "list", "--installed"]).unwrap_or_default();
    if installed.lines().any(|t| t == STATIC_TARGET) {
        println!("ok  rust target {STATIC_TARGET}");
    } else {
        sh("rustup", &["target", "add", STATIC_TARGET])?;
    }
    if output("sh", &["-c", "command -v musl-gcc"]).is_some() {
        println!("ok  musl-gcc");
        Ok(())
    } else {
        apt_install(&["musl-tools"], "the static binary")
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB ({bytes} bytes)", bytes as f64 / (1024.0 * 1024.0))
}

/// buildah with its own store under `target/buildah` (vfs: no overlay
/// mounts needed), so builds never touch the machine's containers.
fn buildah() -> Command {
    let store = root().join("target/buildah");
    let mut command = Command::new("buildah");
    command
        .arg("--storage-driver")
        .arg("vfs")
        .arg("--root")
        .arg(store.join("root"))
        .arg("--runroot")
        .arg(store.join("run"));
    command
}

/// Why buildah cannot build images on this machine, if it cannot.
fn buildah_unusable() -> Option<String> {
    if output("buildah", &["--version"]).is_none()
        && let Err(e) = apt_install(&["buildah"], "the image")
    {
        return Some(e);
    }
    let probe = buildah().args(["from", "scratch"]).output();
    match probe {
        Ok(out) if out.status.success() => {
            let container = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            let _ = buildah().args(["rm", &container]).output();
            None
        }
        Ok(out) => Some(String::from_utf8_lossy(&out.stderr).trim().to_owned()),
        Err(e) => Some(e.to_string()),
    }
}

/// `cargo xtask image`: the binary, the image around it, and one run of it.
pub fn image() -> Result {
    let binary = dist()?;
    if let Some(reason) = buildah_unusable() {
        return Err(format!("buildah cannot build images on this machine: {reason}"));
    }
    build_and_check(&binary)
}

/// Builds the image around `binary` and runs it once: `/healthz` and the
/// page must answer. Prints the sizes and the cold start.
pub fn build_and_check(binary: &Path) -> Result {
    step("Image: FROM scratch around the static binary (buildah, vfs, chroot)");
    let context = root().join("target/image");
    let _ = fs::remove_dir_all(&context);
    for dir in ["data", "tmp"] {
        fs::create_dir_all(context.join(dir)).map_err(|e| format!("creating the build context: {e}"))?;
    }
    fs::copy(binary, context.join("antibody")).map_err(|e| format!("copying the binary: {e}"))?;
    sh_with(
        buildah()
            .args(["bud", "--isolation", "chroot", "--tag", IMAGE, "--file"])
            .arg(root().join("deploy/image/Containerfile"))
            .arg(&context),
    )?;
    let archive = root().join("target/antibody-image.tar");
    let _ = fs::remove_file(&archive);
    sh_with(
        buildah()
            .args(["push", IMAGE])
            .arg(format!("oci-archive:{}", archive.display())),
    )?;
    let packed = fs::metadata(&archive)
        .map_err(|e| format!("{}: {e}", archive.display()))?
        .len();
    // Unpacked, the image is the binary and two empty folders.
    let unpacked = fs::metadata(binary)
        .map_err(|e| format!("{}: {e}", binary.display()))?
        .len();
    println!(
        "  image {IMAGE}: {} unpacked, {} as an OCI archive ({})",
        mib(unpacked),
        mib(packed),
        archive.display()
    );
    if unpacked > IMAGE_BUDGET_BYTES {
        return Err(format!(
            "the image is {} unpacked, over its budget of {}",
            mib(unpacked),
            mib(IMAGE_BUDGET_BYTES)
        ));
    }
    check_image_serves()
}

/// Runs the image (chroot isolation shares the host's network) and waits
/// for `/healthz`; then the page must load. Stops it after.
fn check_image_serves() -> Result {
    step("Image: running it once");
    let container = output_of(buildah().args(["from", IMAGE]))?;
    let port = free_port()?;
    let started = Instant::now();
    let child = buildah()
        .args(["run", "--isolation", "chroot", "--env"])
        .arg(format!("PORT={port}"))
        // Nothing to drain: stop at once when told.
        .args(["--env", "ANTIBODY_SHUTDOWN_GRACE=0"])
        .args([&container, "--", "/antibody"])
        .stdout(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start the image: {e}"))?;
    let running = Running(child);
    let result = (|| {
        let base = format!("http://127.0.0.1:{port}");
        wait_for_ok(&format!("{base}/healthz"), Duration::from_secs(60))?;
        println!("  cold start to /healthz: {} ms", started.elapsed().as_millis());
        let page = output_of(Command::new("curl").args(["-sf", &format!("{base}/")]))?;
        if !page.contains("Antibody") || !page.contains("/pkg/") {
            return Err("the image's page does not look like the dashboard".to_owned());
        }
        println!("  the page renders, and names its bundle");
        Ok(())
    })();
    drop(running);
    let _ = buildah().args(["rm", &container]).output();
    result
}

/// The image's process group, stopped when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let group = self.0.id() as i32;
        // SIGTERM to the whole group: buildah and the server it runs.
        let _ = Command::new("kill")
            .args(["-s", "TERM", "--", &format!("-{group}")])
            .status();
        let _ = self.0.wait();
    }
}

fn output_of(command: &mut Command) -> Result<String> {
    let out = command.output().map_err(|e| format!("{command:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{command:?}: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

/// Polls `url` until it answers 200, for at most `within` (every 20 ms,
/// so a cold start is timed to the tens of milliseconds).
pub fn wait_for_ok(url: &str, within: Duration) -> Result {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if output("curl", &["-sf", "-o", "/dev/null", url]).is_some() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(format!("{url} did not answer within {within:?}"))
}

/// The image step of `cargo xtask test`: when buildah cannot work here,
/// says so loudly and goes on; when it can, a broken image fails the run.
pub fn test_image(binary: &Path) -> Result {
    match buildah_unusable() {
        Some(reason) => {
            eprintln!("\n\x1b[1;33m!!! buildah cannot build images here ({reason}): the image is NOT tested\x1b[0m\n");
            Ok(())
        }
        None => build_and_check(binary),
    }
}
