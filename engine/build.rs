//! Embeds every data file under `data/` into the binary, so the server runs
//! with no files beside it, and a new scenario, playbook or timeline is a new
//! file with no code to change.

use std::{env, fmt::Write, fs, path::Path};

fn main() {
    let out = Path::new(&env::var("OUT_DIR").unwrap()).join("embedded.rs");
    let mut code = String::new();
    for (konst, dir, extension) in [
        ("SCENARIOS", "data/scenarios", "toml"),
        ("PLAYBOOKS", "data/playbooks", "toml"),
        ("TIMELINES", "data/timelines", "json"),
        ("POLICIES", "data/policies", "toml"),
    ] {
        println!("cargo:rerun-if-changed={dir}");
        let mut files: Vec<_> = fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("reading {dir}: {e}"))
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == extension))
            .collect();
        files.sort();
        writeln!(code, "pub const {konst}: &[(&str, &str)] = &[").unwrap();
        for path in files {
            let id = path.file_stem().unwrap().to_str().unwrap();
            let abs = fs::canonicalize(&path).unwrap();
            writeln!(code, "    ({id:?}, include_str!({:?})),", abs.display().to_string()).unwrap();
        }
        writeln!(code, "];").unwrap();
    }
    println!("cargo:rerun-if-changed=data/impact.toml");
    fs::write(out, code).unwrap();
}
