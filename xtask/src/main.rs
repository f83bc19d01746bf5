//! The project's task runner (`cargo xtask <task>`): installs what is
//! missing, builds the site, runs the server and runs every test.
//!
//! Every install step checks first and does nothing when the tool is there
//! at the right version, so the tasks are fast on a prepared machine and
//! correct on a fresh Debian one (as root; otherwise each step says what to
//! run). The site is built the way cargo-leptos builds it (`cargo build` of
//! the `frontend` crate for wasm32, then `wasm-bindgen`), so neither `run`
//! nor `test` needs cargo-leptos and its 25-minute install; `watch` does.

mod cluster;
mod contract;
mod dist;
mod lighthouse;
mod server;

use std::{
    env, fs,
    io::Write,
    path::{Path, PathBuf},
    process::{Command, ExitCode},
    time::Instant,
};

type Result<T = ()> = std::result::Result<T, String>;

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  run     install what is missing, build the one-file release (`dist`)
          and serve the dashboard on http://127.0.0.1:3000 (settings: see
          README)
  test    install what is missing and run every test: formatting, clippy,
          Rust unit and integration tests, the API contract (schemathesis)
          and the browser end-to-end tests
  site    build the site into target/site (add --release for the optimized
          bundle; prints its raw, gzip and brotli sizes)
  watch   cargo leptos watch (installs cargo-leptos 0.3.10 when missing)
  trunk   trunk serve on http://127.0.0.1:8080: the UI rendered client-side
          only, hot-reloaded, against a server already running on port 3000
          (installs trunk 0.21.14 when missing, about 10 min)
  contract  build the debug server and check it against its OpenAPI
          document with schemathesis --checks all (installs schemathesis
          into target/tools when missing)
  cluster three release instances on a throwaway PostgreSQL, a standalone
          twin as their estate, and HAProxy in front on
          http://127.0.0.1:3000 (see docs/cluster.md)
  dist    the one-file release: a static binary with the site inside
          (target/x86_64-unknown-linux-musl/dist/antibody)
  image   `dist`, then an OCI image FROM scratch around it, built with
          buildah and run once (target/antibody-image.tar; docs/deploy.md)
  lighthouse  Lighthouse's mobile audit of the one-file release's dashboard
          with an incident under way, 5 runs (--runs N); installs
          Lighthouse into target/tools when missing; prints, never fails
          on a score
  setup   install what `run` and `test` need, and nothing else
";

const WASM_TARGET: &str = "wasm32-unknown-unknown";
const CARGO_LEPTOS_VERSION: &str = "0.3.10";
/// The newest trunk whose locked dependencies build on rustc 1.95.
const TRUNK_VERSION: &str = "0.21.14";
/// Output name of the site bundle (`[[workspace.metadata.leptos]] name`).
const OUTPUT_NAME: &str = "antibody";
/// The chunk loader's file name: the one Leptos's `HydrationScripts` expects.
const SPLIT_LOADER: &str = "__wasm_split.______________________.js";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let started = Instant::now();
    let result = match args.first().map(String::as_str) {
        Some("run") => run(),
        Some("test") => test(),
        Some("site") => build_site(args.iter().any(|a| a == "--release")).map(drop),
        Some("watch") => watch(),
        Some("trunk") => trunk(),
        Some("setup") => setup(Needs::ALL),
        Some("cluster") => cluster::cluster(),
        Some("dist") => dist::dist().map(drop),
        Some("image") => dist::image(),
        Some("lighthouse") => runs_arg(&args).and_then(lighthouse::lighthouse),
        Some("contract") => contract::ensure_schemathesis().and_then(|schemathesis| {
            sh("cargo", &["build", "--package", "server"])?;
            contract::check(&schemathesis)
        }),
        Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            Ok(())
        }
        _ => Err(format!("unknown or missing task\n\n{USAGE}")),
    };
    match result {
        Ok(()) => {
            step(&format!("done in {}", minutes(started)));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("\nxtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `--runs N` (1 to 20), 5 without it.
fn runs_arg(args: &[String]) -> Result<usize> {
    let Some(at) = args.iter().position(|a| a == "--runs") else {
        return Ok(5);
    };
    args.get(at + 1)
        .and_then(|n| n.parse().ok())
        .filter(|n| (1..=20).contains(n))
        .ok_or_else(|| "--runs takes a number from 1 to 20".to_owned())
}

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn minutes(since: Instant) -> String {
    let s = since.elapsed().as_secs();
    format!("{}m{:02}s", s / 60, s % 60)
}

fn step(title: &str) {
    println!("\n\x1b[1;36m==> {title}\x1b[0m");
    let _ = std::io::stdout().flush();
}

/// Runs a command from the workspace root, echoing it, and fails if it fails.
fn sh(program: &str, args: &[&str]) -> Result {
    sh_with(Command::new(program).args(args))
}

fn sh_with(command: &mut Command) -> Result {
    let shown = format!(
        "{} {}",
        command.get_program().to_string_lossy(),
        command
            .get_args()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!("\x1b[2m$ {shown}\x1b[0m");
    if command.get_current_dir().is_none() {
        command.current_dir(root());
    }
    let status = command.status().map_err(|e| format!("cannot start `{shown}`: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{shown}` failed ({status})"))
    }
}

/// A command's trimmed stdout, or None when it cannot run or fails.
fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn is_root() -> bool {
    output("id", &["-u"]).as_deref() == Some("0")
}

/// What a task needs installed.
#[derive(Clone, Copy)]
struct Needs {
    /// Debian chromium, for the browser tests.
    chromium: bool,
    /// The end2end npm packages (Playwright, and binaryen's wasm-opt).
    npm: bool,
    /// Debian PostgreSQL, for the store's tests on its second backend.
    postgres: bool,
    /// Debian Prometheus (with promtool) and Alertmanager (with amtool),
    /// for the tests of the twin as a Prometheus target and of alerts in.
    prometheus: bool,
}

impl Needs {
    const ALL: Needs = Needs {
        chromium: true,
        npm: true,
        postgres: true,
        prometheus: true,
    };
}

fn setup(needs: Needs) -> Result {
    step("Tools: checking what is installed");
    ensure_wasm_target()?;
    ensure_wasm_bindgen()?;
    if needs.npm {
        ensure_node()?;
        ensure_npm_packages()?;
    }
    if needs.chromium {
        ensure_chromium()?;
    }
    if needs.postgres {
        ensure_postgres()?;
    }
    if needs.prometheus {
        ensure_prometheus()?;
        ensure_haproxy()?;
        ensure_nginx()?;
    }
    Ok(())
}

/// The folder with PostgreSQL's server programs (`initdb`, `postgres`).
fn postgres_bin() -> Option<PathBuf> {
    if let Some(initdb) = output("sh", &["-c", "command -v initdb"]) {
        return Path::new(&initdb).parent().map(Path::to_path_buf);
    }
    // Debian keeps them out of PATH, by major version.
    let mut versions: Vec<PathBuf> = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop()
}

fn ensure_postgres() -> Result {
    if let Some(bin) = postgres_bin() {
        println!("ok  postgresql ({})", bin.display());
        return Ok(());
    }
    apt_install(&["postgresql"], "the store's PostgreSQL tests")
}

/// A throwaway PostgreSQL server: `initdb` into a temporary folder, on a
/// free port, stopped and deleted on drop.
struct TempPostgres {
    /// The running server.
    server: std::process::Child,
    /// Its folder (data and socket).
    dir: PathBuf,
    /// PostgreSQL's programs.
    bin: PathBuf,
    /// A URL for its `postgres` database.
    url: String,
}

impl TempPostgres {
    /// One of PostgreSQL's programs, run as Debian's `postgres` user when we
    /// are root (PostgreSQL refuses to run as root).
    fn command(bin: &Path, program: &str) -> Command {
        if is_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(bin.join(program));
            command
        } else {
            Command::new(bin.join(program))
        }
    }

    fn as_owner(&self, program: &str) -> Command {
        Self::command(&self.bin, program)
    }

    fn start() -> Result<Self> {
        let bin = postgres_bin().ok_or("PostgreSQL is not installed")?;
        let dir = env::temp_dir().join(format!("antibody-pg-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let as_owner = |program: &str| Self::command(&bin, program);
        if is_root() {
            sh("chown", &["postgres:postgres", &dir.to_string_lossy()])?;
        }
        let data = dir.join("data");
        let initdb = as_owner("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", "antibody", "-A", "trust", "-E", "UTF8", "--no-sync"])
            .stdout(std::process::Stdio::null())
            .status()
            .map_err(|e| format!("cannot run initdb: {e}"))?;
        if !initdb.success() {
            return Err(format!("initdb failed ({initdb})"));
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let server = as_owner("postgres")
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-k"])
            .arg(&dir)
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "max_connections=300",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start postgres: {e}"))?;
        let guard = Self {
            server,
            dir,
            bin,
            url: format!("postgres://antibody@127.0.0.1:{port}/postgres"),
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > std::time::Duration::from_secs(30) {
                return Err("postgres did not accept connections within 30 s".into());
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Ok(guard)
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        // A fast shutdown through pg_ctl: runuser does not pass signals on.
        let _ = self
            .as_owner("pg_ctl")
            .arg("stop")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "fast"])
            .stdout(std::process::Stdio::null())
            .status();
        let _ = self.server.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn ensure_wasm_target() -> Result {
    let installed = output("rustup", &["target", "list", "--installed"]).unwrap_or_default();
    if installed.lines().any(|t| t == WASM_TARGET) {
        println!("ok  rust target {WASM_TARGET}");
        return Ok(());
    }
    sh("rustup", &["target", "add", WASM_TARGET])
}

/// The version of a package as locked in Cargo.lock.
fn locked_version(package: &str) -> Result<String> {
    let lock = fs::read_to_string(root().join("Cargo.lock")).map_err(|e| format!("reading Cargo.lock: {e}"))?;
    let needle = format!("name = \"{package}\"\nversion = \"");
    let start = lock
        .find(&needle)
        .ok_or_else(|| format!("{package} is not in Cargo.lock"))?
        + needle.len();
    let len = lock[start..].find('"').ok_or("Cargo.lock is malformed")?;
    Ok(lock[start..start + len].to_owned())
}

/// Installs a tool with cargo, with link-time optimization off: on two
/// cores that saves minutes, and the tools' speed does not matter here.
fn cargo_install(args: &[&str]) -> Result {
    sh_with(
        Command::new("cargo")
            .arg("install")
            .args(args)
            .env("CARGO_PROFILE_RELEASE_LTO", "false")
            .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "64"),
    )
}

fn ensure_wasm_bindgen() -> Result {
    let wanted = locked_version("wasm-bindgen")?;
    let have = output("wasm-bindgen", &["--version"]).unwrap_or_default();
    if have == format!("wasm-bindgen {wanted}") {
        println!("ok  wasm-bindgen {wanted}");
        return Ok(());
    }
    println!(
        "installing wasm-bindgen-cli {wanted} (have: {}; takes about 4 min)",
        if have.is_empty() { "none" } else { &have }
    );
    // Not --locked: the CLI's own lockfile names a webpki-roots release
    // that the registry no longer serves.
    cargo_install(&["wasm-bindgen-cli", "--version", &wanted])
}

fn apt_install(packages: &[&str], why: &str) -> Result {
    if !is_root() {
        return Err(format!(
            "{why} needs the Debian package(s) {0}, and installing them needs root: run\n    sudo apt-get install -y {0}\nthen try again",
            packages.join(" ")
        ));
    }
    sh_with(
        Command::new("apt-get")
            .arg("update")
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    sh_with(
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

fn ensure_node() -> Result {
    if output("npm", &["--version"]).is_some() && output("node", &["--version"]).is_some() {
        println!("ok  node {}", output("node", &["--version"]).unwrap_or_default());
        return Ok(());
    }
    apt_install(&["nodejs", "npm"], "the browser tests")
}

fn ensure_npm_packages() -> Result {
    let dir = root().join("end2end");
    let lock = dir.join("package-lock.json");
    // npm writes this copy of the lockfile at the end of every install, so
    // when it is newer than the committed lockfile, node_modules is current.
    let installed = dir.join("node_modules/.package-lock.json");
    let modified = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    if let (Some(locked), Some(installed)) = (modified(&lock), modified(&installed))
        && installed >= locked
    {
        println!("ok  end2end npm packages");
        return Ok(());
    }
    sh_with(
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir),
    )
}

fn ensure_prometheus() -> Result {
    let prometheus = output("prometheus", &["--version"]);
    let alertmanager = output("prometheus-alertmanager", &["--version"]);
    if let (Some(prometheus), Some(alertmanager)) = (&prometheus, &alertmanager) {
        for version in [prometheus, alertmanager] {
            println!("ok  {}", version.lines().next().unwrap_or_default());
        }
        return Ok(());
    }
    apt_install(
        &["prometheus", "prometheus-alertmanager"],
        "the tests of the twin as a Prometheus target and of the alert intake",
    )
}

/// HAProxy balances the multi-instance tests' three servers.
fn ensure_haproxy() -> Result {
    if let Some(version) = output("haproxy", &["-v"]).or_else(|| output("/usr/sbin/haproxy", &["-v"])) {
        println!("ok  {}", version.lines().next().unwrap_or_default());
        return Ok(());
    }
    apt_install(&["haproxy"], "the tests of several instances behind a load balancer")
}

/// nginx runs the shipped site (`deploy/nginx/antibody.conf`) in its test.
fn ensure_nginx() -> Result {
    if Path::new("/usr/sbin/nginx").exists() {
        println!("ok  nginx");
        return Ok(());
    }
    apt_install(&["nginx-light"], "the test of the shipped nginx site")
}

fn ensure_chromium() -> Result {
    if Path::new("/usr/bin/chromium").exists() {
        println!(
            "ok  {}",
            output("/usr/bin/chromium", &["--version"]).unwrap_or_else(|| "chromium".into())
        );
        return Ok(());
    }
    apt_install(&["chromium"], "the browser tests")
}

fn ensure_cargo_leptos() -> Result {
    let have = output("cargo", &["leptos", "--version"]).unwrap_or_default();
    if have.ends_with(CARGO_LEPTOS_VERSION) {
        println!("ok  {have}");
        return Ok(());
    }
    println!("installing cargo-leptos {CARGO_LEPTOS_VERSION} (takes about 25 min on 2 cores)");
    // no_downloads: cargo-leptos takes wasm-bindgen and wasm-opt from PATH
    // instead of fetching them from GitHub.
    cargo_install(&[
        "cargo-leptos",
        "--version",
        CARGO_LEPTOS_VERSION,
        "--locked",
        "--features",
        "no_downloads",
    ])
}

/// Builds the site into target/site the way cargo-leptos does; returns the
/// pkg folder.
fn build_site(release: bool) -> Result<PathBuf> {
    let root = root();
    let (profile, profile_dir) = if release {
        ("wasm-release", "wasm-release")
    } else {
        ("dev", "debug")
    };
    step(&format!("Site: building the browser bundle ({profile})"));
    // The splitter needs the linker's relocations: .cargo/config.toml asks
    // for them in every wasm32 build.
    sh(
        "cargo",
        &[
            "build",
            "--package",
            "frontend",
            "--lib",
            "--target",
            WASM_TARGET,
            "--profile",
            profile,
        ],
    )?;
    let wasm = root
        .join("target")
        .join(WASM_TARGET)
        .join(profile_dir)
        .join("frontend.wasm");
    let site = root.join("target/site");
    let pkg = site.join("pkg");
    fs::create_dir_all(&pkg).map_err(|e| format!("creating {}: {e}", pkg.display()))?;
    // The server prefers a `.br` or `.gz` beside an asset: one left by an
    // earlier release build would be served instead of this build's files.
    // Chunks of an earlier build go too (their names change with the code).
    for entry in fs::read_dir(&pkg).map_err(|e| format!("reading {}: {e}", pkg.display()))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
        let stale = name.ends_with(".br")
            || name.ends_with(".gz")
            || name.starts_with("__wasm_split")
            || name.starts_with("split_")
            || name.starts_with("chunk_");
        if stale {
            fs::remove_file(&path).map_err(|e| format!("removing {}: {e}", path.display()))?;
        }
    }
    // Split at the lazy routes: chunks, the loader script and the manifest
    // go to pkg, the main module to be finished by wasm-bindgen beside the
    // input. The manifest (which chunks each lazy part needs) is what
    // Leptos's `HydrationScripts` reads to preload them; our hydration
    // script preloads nothing, but it is the record of what each part costs.
    let split_main = wasm.with_file_name("frontend_split.wasm");
    let chunks = {
        step("Site: splitting the bundle at the lazy routes");
        let input = fs::read(&wasm).map_err(|e| format!("reading {}: {e}", wasm.display()))?;
        let main_module = format!("./{OUTPUT_NAME}.js");
        let link_name = format!("./{SPLIT_LOADER}");
        let split = wasm_split_cli_support::transform({
            let mut opts = wasm_split_cli_support::Options::new(&input);
            opts.output_dir = &pkg;
            opts.main_out_path = &split_main;
            opts.main_module = &main_module;
            opts.link_name = &link_name;
            opts
        })
        .map_err(|e| format!("splitting the wasm: {e:?}"))?;
        let manifest: std::collections::BTreeMap<_, _> = split.prefetch_map.into_iter().collect();
        fs::write(
            pkg.join("__wasm_split_manifest.json"),
            serde_json::to_string_pretty(&manifest).map_err(|e| e.to_string())?,
        )
        .map_err(|e| format!("writing the split manifest: {e}"))?;
        split.split_modules
    };
    // The chunks reach the main module's table and memory through its
    // exports: wasm-bindgen must keep lld's `__indirect_function_table`.
    sh_with(
        Command::new("wasm-bindgen")
            .args([
                "--target",
                "web",
                "--no-typescript",
                "--keep-lld-exports",
                "--out-name",
                OUTPUT_NAME,
            ])
            .arg("--out-dir")
            .arg(&pkg)
            .arg(&split_main),
    )?;
    let bundle = pkg.join(format!("{OUTPUT_NAME}.wasm"));
    fs::rename(pkg.join(format!("{OUTPUT_NAME}_bg.wasm")), &bundle).map_err(|e| format!("renaming the wasm: {e}"))?;
    if release {
        let wasm_opt = root.join("end2end/node_modules/.bin/wasm-opt");
        for file in std::iter::once(&bundle).chain(&chunks) {
            sh_with(
                Command::new(&wasm_opt)
                    .args([
                        "-Oz",
                        "--enable-bulk-memory",
                        "--enable-nontrapping-float-to-int",
                        "--enable-sign-ext",
                    ])
                    .args([
                        "--enable-mutable-globals",
                        "--enable-reference-types",
                        "--enable-multivalue",
                    ])
                    .arg(file)
                    .arg("-o")
                    .arg(file),
            )?;
        }
    }
    fs::copy(root.join("style/main.css"), pkg.join(format!("{OUTPUT_NAME}.css")))
        .map_err(|e| format!("copying the stylesheet: {e}"))?;
    copy_dir(&root.join("public"), &site)?;
    // Swagger UI for /docs, from npm: served locally, never from a CDN.
    let docs = site.join("docs");
    fs::create_dir_all(&docs).map_err(|e| format!("creating {}: {e}", docs.display()))?;
    let swagger = root.join("end2end/node_modules/swagger-ui-dist");
    for asset in ["swagger-ui-bundle.js", "swagger-ui.css"] {
        fs::copy(swagger.join(asset), docs.join(asset)).map_err(|e| {
            format!(
                "copying {asset} from {} (run `cargo xtask setup`): {e}",
                swagger.display()
            )
        })?;
        // Served precompressed like the bundle (the server compresses no
        // file on the fly: that would change a file under its ETag).
        if release {
            precompress(&docs.join(asset))?;
        } else {
            for stale in [".br", ".gz"] {
                let _ = fs::remove_file(docs.join(format!("{asset}{stale}")));
            }
        }
    }
    if release {
        report_sizes(&pkg, &chunks)?;
    }
    Ok(pkg)
}

fn copy_dir(from: &Path, to: &Path) -> Result {
    for entry in fs::read_dir(from).map_err(|e| format!("reading {}: {e}", from.display()))? {
        let entry = entry.map_err(|e| e.to_string())?;
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            fs::create_dir_all(&target).map_err(|e| e.to_string())?;
            copy_dir(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), &target).map_err(|e| format!("copying {}: {e}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// Writes `.gz` and `.br` beside each bundle file (the split loader and the
/// `chunks` included) and prints the sizes.
fn report_sizes(pkg: &Path, chunks: &[PathBuf]) -> Result {
    println!("\n  {:<58} {:>10} {:>10} {:>10}", "file", "raw", "gzip", "brotli");
    let mut chunks: Vec<String> = chunks
        .iter()
        .filter_map(|chunk| Some(chunk.file_name()?.to_string_lossy().into_owned()))
        .collect();
    chunks.sort();
    let files = ["wasm", "js", "css"]
        .iter()
        .map(|ext| format!("{OUTPUT_NAME}.{ext}"))
        .chain([SPLIT_LOADER.to_owned()])
        .chain(chunks);
    for file in files {
        let (raw, gz, br) = precompress(&pkg.join(&file))?;
        let kib = |n: usize| format!("{:.1} KiB", n as f64 / 1024.0);
        println!("  {:<58} {:>10} {:>10} {:>10}", file, kib(raw), kib(gz), kib(br));
    }
    Ok(())
}

/// Writes `.gz` and `.br` beside `path` (at their best levels); returns
/// the three sizes.
fn precompress(path: &Path) -> Result<(usize, usize, usize)> {
    let raw = fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&raw).map_err(|e| e.to_string())?;
    let gz = gz.finish().map_err(|e| e.to_string())?;
    let mut br = Vec::new();
    {
        let mut writer = brotli::CompressorWriter::new(&mut br, 4096, 11, 22);
        writer.write_all(&raw).map_err(|e| e.to_string())?;
    }
    let beside = |suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    fs::write(beside(".gz"), &gz).map_err(|e| e.to_string())?;
    fs::write(beside(".br"), &br).map_err(|e| e.to_string())?;
    Ok((raw.len(), gz.len(), br.len()))
}

fn run() -> Result {
    let started = Instant::now();
    let binary = dist::dist()?;
    step(&format!("Serving (built in {}); stop with Ctrl-C", minutes(started)));
    sh_with(&mut Command::new(binary))
}

fn test() -> Result {
    let mut timings = Vec::new();
    let mut timed = |name: &'static str, f: &mut dyn FnMut() -> Result| -> Result {
        let started = Instant::now();
        f()?;
        timings.push((name, minutes(started)));
        Ok(())
    };
    timed("tools", &mut || setup(Needs::ALL))?;
    let schemathesis = contract::ensure_schemathesis()?;
    timed("format", &mut || {
        step("Format: cargo fmt --check");
        sh("cargo", &["fmt", "--all", "--check"])
    })?;
    timed("rust tests", &mut || {
        // One invocation, so the crates share one feature set and the
        // dependencies build once. It also builds target/debug/antibody.
        step("Rust: unit and integration tests (engine, store, app with ssr, server)");
        let mut command = Command::new("cargo");
        // Setup installed Prometheus: a test that cannot find it fails
        // instead of skipping.
        command.env("ANTIBODY_REQUIRE_PROMETHEUS", "1");
        command.args([
            "test",
            "--package",
            "engine",
            "--package",
            "store",
            "--package",
            "app",
            "--package",
            "server",
        ]);
        // The store's suite runs on SQLite, and on a throwaway PostgreSQL
        // when one can start; when it cannot, say so loudly.
        let postgres = match TempPostgres::start() {
            Ok(postgres) => {
                println!("PostgreSQL for the store's tests: {}", postgres.url);
                command
                    .env("ANTIBODY_TEST_POSTGRES_URL", &postgres.url)
                    .env("ANTIBODY_REQUIRE_POSTGRES", "1");
                Some(postgres)
            }
            Err(reason) => {
                eprintln!("\n\x1b[1;33m!!! PostgreSQL could not start ({reason}): its tests are SKIPPED\x1b[0m\n");
                None
            }
        };
        let mut result = sh_with(&mut command);
        // The server's API suite again, every server on PostgreSQL.
        if let (Ok(()), Some(postgres)) = (&result, &postgres) {
            step("Rust: the server's API tests again, on PostgreSQL");
            result = sh_with(
                Command::new("cargo")
                    .args(["test", "--package", "server", "--test", "api"])
                    .env("ANTIBODY_TEST_POSTGRES_URL", &postgres.url)
                    .env("ANTIBODY_TEST_BACKEND", "postgres")
                    .env("ANTIBODY_REQUIRE_PROMETHEUS", "1"),
            );
        }
        drop(postgres);
        result
    })?;
    timed("contract", &mut || contract::check(&schemathesis))?;
    timed("clippy", &mut || {
        step("Clippy: server side, then browser side");
        sh(
            "cargo",
            &[
                "clippy",
                "--package",
                "engine",
                "--package",
                "store",
                "--package",
                "app",
                "--package",
                "server",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
        )?;
        // The bundle, then the client-side-only build `cargo xtask trunk`
        // serves: kept compiling even though no test runs it.
        for build in [&[][..], &["--no-default-features", "--features", "csr", "--bins"][..]] {
            let mut args = vec!["clippy", "--package", "frontend", "--target", WASM_TARGET];
            args.extend_from_slice(build);
            args.extend(["--", "-D", "warnings"]);
            sh("cargo", &args)?;
        }
        Ok(())
    })?;
    // The release site: what ships, and what the release binary embeds.
    timed("site", &mut || build_site(true).map(drop))?;
    let mut binary = PathBuf::new();
    timed("release binary", &mut || {
        binary = dist::build_binary()?;
        Ok(())
    })?;
    timed("browser tests", &mut || {
        step("Browser: Playwright end-to-end tests in Chromium");
        sh_with(
            Command::new("npx")
                .args(["playwright", "test"])
                .env("ANTIBODY_RELEASE_BIN", &binary)
                .current_dir(root().join("end2end")),
        )
    })?;
    timed("image", &mut || dist::test_image(&binary))?;
    step("Timings");
    for (name, took) in timings {
        println!("  {name:<14} {took}");
    }
    Ok(())
}

/// `trunk serve` of the client-side-only build, offline: trunk must find
/// the wasm-bindgen CLI that setup installed, at the version Trunk.toml
/// names, or it would try to download one.
fn trunk() -> Result {
    setup(Needs {
        chromium: false,
        npm: false,
        postgres: false,
        prometheus: false,
    })?;
    let have = output("trunk", &["--version"]).unwrap_or_default();
    if have == format!("trunk {TRUNK_VERSION}") {
        println!("ok  {have}");
    } else {
        println!("installing trunk {TRUNK_VERSION} (takes about 10 min on 2 cores)");
        // Without the default update check, which calls crates.io.
        cargo_install(&[
            "trunk",
            "--version",
            TRUNK_VERSION,
            "--locked",
            "--no-default-features",
            "--features",
            "rustls",
        ])?;
    }
    let wanted = locked_version("wasm-bindgen")?;
    let config = root().join("frontend/Trunk.toml");
    let text = fs::read_to_string(&config).map_err(|e| format!("reading {}: {e}", config.display()))?;
    if !text.contains(&format!("wasm_bindgen = \"{wanted}\"")) {
        return Err(format!(
            "{} must pin `wasm_bindgen = \"{wanted}\"` (the version in Cargo.lock)",
            config.display()
        ));
    }
    step(
        "trunk serve on http://127.0.0.1:8080, against a server on port 3000 started with \
         ANTIBODY_ALLOWED_ORIGINS=http://127.0.0.1:8080 (for its WebSocket)",
    );
    sh_with(
        Command::new("trunk")
            .arg("serve")
            .current_dir(root().join("frontend"))
            .env("TRUNK_OFFLINE", "true")
            .env("TRUNK_SKIP_VERSION_CHECK", "true"),
    )
}

fn watch() -> Result {
    setup(Needs {
        chromium: false,
        npm: true,
        postgres: false,
        prometheus: false,
    })?;
    ensure_cargo_leptos()?;
    step("cargo leptos watch (http://127.0.0.1:3000)");
    // cargo-leptos finds wasm-opt on PATH.
    let path = format!(
        "{}:{}",
        root().join("end2end/node_modules/.bin").display(),
        env::var("PATH").unwrap_or_default()
    );
    // --split: every page but the dashboard is a lazy route (app/src/lib.rs).
    sh_with(
        Command::new("cargo")
            .args(["leptos", "watch", "--split"])
            .env("PATH", path),
    )
}
