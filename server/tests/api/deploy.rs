//! The deploy files, checked as far as this machine allows: the systemd
//! unit by `systemd-analyze verify`, fly.toml and the two image recipes
//! against what the binary expects of them. (The image itself is built and
//! run by `cargo xtask image`, and by `cargo xtask test` where buildah works.)

use std::collections::BTreeMap;

use crate::components::shipped;

fn read(path: &str) -> String {
    std::fs::read_to_string(shipped(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_systemd_unit_verifies_and_keeps_its_state_in_its_state_directory() {
    let unit = read("deploy/systemd/antibody.service");
    for line in [
        "DynamicUser=yes",
        "StateDirectory=antibody",
        "EnvironmentFile=/etc/antibody/antibody.env",
        "Environment=ANTIBODY_DATABASE_URL=sqlite:///var/lib/antibody/antibody.db",
    ] {
        assert!(unit.lines().any(|l| l == line), "the unit lacks {line}");
    }
    let Some(analyze) = which("systemd-analyze") else {
        eprintln!("\n!!! systemd-analyze is not installed: the unit is NOT verified\n");
        assert!(
            std::env::var_os("ANTIBODY_REQUIRE_SYSTEMD").is_none(),
            "systemd-analyze is required"
        );
        return;
    };
    // verify wants the program to exist: this build's binary stands in.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("antibody.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/antibody", env!("CARGO_BIN_EXE_antibody")),
    )
    .unwrap();
    let out = std::process::Command::new(analyze)
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let complaints = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && complaints.trim().is_empty(), "{complaints}");
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| std::path::Path::new(dir).join(program))
        .find(|path| path.is_file())
}

/// The final stage of an image recipe: its `ENV`, `VOLUME`, `EXPOSE`,
/// `USER` and `ENTRYPOINT` lines, continuation lines joined.
fn final_stage(recipe: &str) -> Vec<String> {
    let joined = recipe.replace("\\\n", " ");
    let lines: Vec<&str> = joined.lines().map(str::trim).collect();
    let from = lines.iter().rposition(|l| l.starts_with("FROM ")).unwrap();
    assert_eq!(lines[from], "FROM scratch", "the image is the binary and nothing else");
    lines[from..]
        .iter()
        .filter(|l| {
            ["ENV", "VOLUME", "EXPOSE", "USER", "ENTRYPOINT"]
                .iter()
                .any(|k| l.starts_with(k))
        })
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn the_dockerfile_builds_the_image_buildah_builds() {
    let containerfile = final_stage(&read("deploy/image/Containerfile"));
    let dockerfile = final_stage(&read("Dockerfile"));
    assert_eq!(containerfile, dockerfile);
    assert!(
        read("Dockerfile").contains("cargo xtask dist"),
        "built with the same xtask command"
    );
}

#[test]
fn fly_runs_one_always_on_machine_with_sqlite_on_its_volume_and_checks_healthz() {
    let fly: toml::Table = read("deploy/fly/fly.toml").parse().unwrap();
    let env: BTreeMap<String, String> = fly["env"]
        .as_table()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    let service = fly["http_service"].as_table().unwrap();
    assert_eq!(service["internal_port"].as_integer().unwrap().to_string(), env["PORT"]);
    assert_eq!(service["auto_stop_machines"].as_str(), Some("off"));
    assert!(service["min_machines_running"].as_integer().unwrap() >= 1);
    let check = &service["checks"].as_array().unwrap()[0];
    assert_eq!(check["path"].as_str(), Some("/healthz"));
    let volume = fly["mounts"].as_array().unwrap()[0]["destination"]
        .as_str()
        .unwrap()
        .to_owned();
    let database = env["ANTIBODY_DATABASE_URL"].strip_prefix("sqlite://").unwrap();
    assert!(
        std::path::Path::new(database).starts_with(&volume),
        "{database} is not on the volume {volume}"
    );
    assert_eq!(env["ANTIBODY_TRUST_PROXY"], "true", "Fly's proxy names the client");
    // The image listens where Fly sends traffic.
    let image = final_stage(&read("deploy/image/Containerfile")).join("\n");
    assert!(image.contains(&format!("EXPOSE {}", env["PORT"])), "{image}");
}

/// A WebSocket to `/ws` through `proxy`, from the local address `from`
/// (any 127.x.y.z is this machine): the close frame if it is refused,
/// `None` if it streams (its first frame is the snapshot).
async fn dashboard_from(from: [u8; 4], proxy: &str, claimed: Option<&str>) -> (crate::helpers::Socket, Option<String>) {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind((std::net::Ipv4Addr::from(from), 0).into()).unwrap();
    let stream = socket.connect(proxy.parse().unwrap()).await.unwrap();
    let mut request = format!("ws://{proxy}/ws").into_client_request().unwrap();
    if let Some(claimed) = claimed {
        request
            .headers_mut()
            .insert("x-forwarded-for", claimed.parse().unwrap());
    }
    let (mut ws, _) = tokio_tungstenite::client_async(request, tokio_tungstenite::MaybeTlsStream::Plain(stream))
        .await
        .expect("the upgrade passes through nginx");
    let first = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
        .await
        .expect("a first frame")
        .expect("a frame")
        .expect("a valid frame");
    let refused = match first {
        Message::Close(Some(frame)) => Some(frame.reason.to_string()),
        Message::Text(text) => {
            assert!(text.contains("\"snapshot\""), "{text}");
            None
        }
        other => panic!("unexpected {other:?}"),
    };
    (ws, refused)
}

#[tokio::test]
async fn through_the_nginx_site_pages_load_streams_upgrade_and_each_client_is_counted_apart() {
    let app = crate::helpers::spawn_app_with(|data| server::configuration::Settings {
        trust_proxy: true,
        ws_max_per_ip: Some(1),
        ..crate::helpers::settings_in(data, 10.0, std::time::Duration::from_millis(50))
    })
    .await;
    let Some(nginx) = crate::components::TempNginx::in_front_of(&app.addr.to_string()).await else {
        return;
    };
    let page = reqwest::get(format!("http://{}/", nginx.addr)).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Antibody"));

    // Every dashboard reaches the server from nginx's address; the cap
    // counts the clients nginx names.
    let (_a, refused) = dashboard_from([127, 0, 0, 2], &nginx.addr, None).await;
    assert_eq!(refused, None, "{}", nginx.log());
    let (_b, refused) = dashboard_from([127, 0, 0, 3], &nginx.addr, None).await;
    assert_eq!(refused, None, "another client has a seat of its own");
    // Claiming to be someone else does not help: nginx replaces the header.
    let (_c, refused) = dashboard_from([127, 0, 0, 2], &nginx.addr, Some("198.51.100.7")).await;
    let reason = refused.expect("the client's second dashboard is refused");
    assert!(
        reason.contains("too many dashboards open from your address"),
        "{reason}"
    );
}
