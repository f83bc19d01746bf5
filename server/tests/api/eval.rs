//! `antibody eval`, run as a user would.

use std::process::Command;

fn antibody(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_antibody"))
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("the binary runs")
}

#[test]
fn eval_scores_a_folder_of_scenarios_as_json() {
    let dir = tempfile_dir();
    let catalog = concat!(env!("CARGO_MANIFEST_DIR"), "/../engine/data/scenarios");
    for id in ["database_cascade", "memory_leak_gradual"] {
        std::fs::copy(format!("{catalog}/{id}.toml"), dir.join(format!("{id}.toml"))).unwrap();
    }
    let out = antibody(&[
        "eval",
        "--runs",
        "2",
        "--seed",
        "3",
        "--json",
        "--scenarios",
        dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "root_cause_accuracy",
        "healing_success",
        "unnecessary_action_rate",
        "mttr_seconds",
    ] {
        assert!(json[key].is_number(), "{key} in {json}");
    }
    let scenarios = json["scenarios"].as_array().unwrap();
    assert_eq!(scenarios.len(), 2);
    assert!(scenarios.iter().all(|s| s["runs"] == 2));
    assert_eq!(json["root_cause_accuracy"], 1.0);
}

#[test]
fn eval_runs_random_scenarios_and_reports_them_per_fault_kind() {
    let out = antibody(&["eval", "--runs", "1", "--random", "40", "--seed", "9", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let random = &json["random"];
    assert_eq!(random["scenarios"], 40);
    assert_eq!(random["overall"]["runs"], 40);
    let kinds = random["kinds"].as_array().unwrap();
    let runs: u64 = kinds.iter().map(|k| k["runs"].as_u64().unwrap()).sum();
    assert_eq!(runs, 40, "every run under its fault kind: {random}");
    assert!(random["compound"]["worse"].is_u64() && random["misleading"]["runs"].is_u64());
    assert_eq!(
        json["scenarios"].as_array().unwrap().len(),
        23,
        "the catalog beside them"
    );
    assert_eq!(
        json["compound"]["runs"], 6,
        "the catalog's six with two faults, together"
    );

    let table = antibody(&["eval", "--runs", "1", "--random", "40", "--seed", "9"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("random, by fault kind") && text.contains("and 40 random scenarios once each, seed 9"),
        "{text}"
    );
    let refused = antibody(&["eval", "--random", "5001"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--random"));
}

#[test]
fn eval_watches_healthy_estates_for_false_incidents() {
    let out = antibody(&["eval", "--runs", "1", "--healthy", "3", "--seed", "4", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let healthy = &json["healthy"];
    assert_eq!(
        (healthy["runs"].as_u64(), healthy["seconds"].as_u64()),
        (Some(3), Some(600))
    );
    assert_eq!(healthy["false_incidents"], 0, "{healthy}");
    assert_eq!(
        (healthy["reported"].as_u64(), healthy["actions"].as_u64()),
        (Some(3), Some(0))
    );
    let refused = antibody(&["eval", "--healthy", "1001"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--healthy"));
}

#[test]
fn eval_names_the_broken_file_and_the_reason() {
    let dir = tempfile_dir();
    std::fs::write(dir.join("oops.toml"), "label = \"x\"\n").unwrap();
    let out = antibody(&["eval", "--scenarios", dir.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("oops.toml") && stderr.contains("missing field"),
        "{stderr}"
    );
}

/// A fresh, uniquely named folder in the system's temporary directory.
fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("antibody-eval-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
