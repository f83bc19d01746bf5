//! The ML estate over HTTP and the command line: the model registry, and
//! seed 003's two simulations started with `antibody simulate`.

use crate::helpers::{fire_and_finish, spawn_app, spawn_app_with};

/// The model registry: the estate file's versions, then a retraining's.
#[tokio::test]
async fn the_model_registry_grows_when_a_drift_is_healed_by_retraining() {
    let app = spawn_app().await;
    let models: Vec<engine::protocol::ModelRegistry> = app.json("/api/models").await;
    assert_eq!(models.len(), 1);
    assert_eq!(models[0].service, "ml-model-service");
    assert_eq!(models[0].serving, 2);
    let versions: Vec<(u32, &str)> = models[0]
        .versions
        .iter()
        .map(|v| (v.version, v.origin.as_str()))
        .collect();
    assert_eq!(versions, [(1, "registry"), (2, "registry")]);
    let features: Vec<&str> = models[0].features.iter().map(|f| f.feature.as_str()).collect();
    assert_eq!(features, ["credit_score", "income"]);
    assert!(
        models[0].features.iter().all(|f| f.psi < 0.2),
        "no drift yet: {:?}",
        models[0].features
    );

    fire_and_finish(&app, "data_drift").await;
    let models: Vec<engine::protocol::ModelRegistry> = app.json("/api/models").await;
    let newest = models[0].versions.last().unwrap();
    assert_eq!((newest.version, newest.origin.as_str()), (3, "retraining"));
    assert_eq!(models[0].serving, 3);
    let v2 = &models[0].versions[1];
    assert!(v2.measured_accuracy.is_some(), "v2 served and was measured");
}

/// `antibody simulate …` against the app, as a user would run it.
async fn simulate(app: &crate::helpers::TestApp, args: &[&str]) -> (Option<i32>, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_antibody"))
        .arg("simulate")
        .args(args)
        .args(["--url", &app.url("")])
        .env("RUST_BACKTRACE", "0")
        .output()
        .await
        .expect("the binary runs");
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test]
async fn seed_003s_simulations_run_from_the_command_line_approval_included() {
    // The default policy: retraining waits for a person.
    let app = spawn_app_with(|data| server::configuration::Settings {
        policy: std::sync::Arc::new(engine::governance::Policy::builtin("default").unwrap()),
        ..crate::helpers::settings_in(data, 200.0, std::time::Duration::from_secs(5))
    })
    .await;
    let (code, out) = simulate(&app, &["latency-spike"]).await;
    assert_eq!(code, Some(0), "{out}");
    for expected in [
        "Credit Model Latency SLO Breach opened",
        "Latency SLO breach on ml-model-service",
        "safe_mode: false → true",
        "resolved after",
    ] {
        assert!(out.contains(expected), "`{expected}` not in:\n{out}");
    }

    let (code, out) = simulate(&app, &["data-drift", "--approve-as", "Dana (ML on-call)"]).await;
    assert_eq!(code, Some(0), "{out}");
    for expected in [
        "Data drift on ml-model-service",
        "human",
        "waiting for",
        "approved by Dana (ML on-call)",
        "model_version: 2 → 3",
        "resolved after",
    ] {
        assert!(out.contains(expected), "`{expected}` not in:\n{out}");
    }

    let (code, out) = simulate(&app, &["meteor-strike"]).await;
    assert_eq!(code, Some(2), "clap refuses an unknown simulation: {out}");
    assert!(out.contains("latency-spike") && out.contains("data-drift"), "{out}");
}
