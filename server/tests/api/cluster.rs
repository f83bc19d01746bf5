//! Several instances on one PostgreSQL, behind HAProxy: one throwaway
//! database, one standalone twin as the estate, three real `antibody`
//! processes and the balancer, all started here. The instances run with
//! 3-second leases, so a dead owner's incidents are taken over quickly.
//!
//! These run in the suite's first pass only (with `ANTIBODY_TEST_POSTGRES_URL`,
//! which `cargo xtask test` sets); without a PostgreSQL they are skipped,
//! loudly, unless the run requires one.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::StreamExt;
use serde_json::{Value, json};
use sqlx::Row;

use crate::{
    components::TempHaproxy,
    helpers::eventually,
    twin_serve::{SECRET, TestTwin, spawn_twin},
};

/// Simulated seconds per real second, for the twin and the instances.
const SPEED: f64 = 20.0;
/// Every instance's lease time.
const LEASE_TTL: Duration = Duration::from_secs(3);

/// One `antibody` process of the cluster.
struct Instance {
    child: tokio::process::Child,
    /// `host:port`.
    addr: String,
    /// Its id, as leases and `events.origin` name it.
    id: String,
}

impl Instance {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn pid(&self) -> i32 {
        self.child.id().expect("running") as i32
    }

    /// Sends `signal` (as `kill -SIG`) to the process.
    fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([format!("-{signal}"), self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal}");
    }

    /// A counter from its `/metrics`, 0 when absent.
    async fn counter(&self, name: &str) -> f64 {
        let text = reqwest::get(self.url("/metrics")).await.unwrap().text().await.unwrap();
        text.lines()
            .filter(|line| line.starts_with(name))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

/// What an instance shows: its snapshot's incidents (id, status) and the
/// incidents its memory holds, each sorted.
type View = (Vec<(String, String)>, Vec<String>);

/// Which governance the instances run under.
enum Policy {
    /// The default policy, with an hour for each approver.
    PeopleDecide,
    /// Every plan runs without a person.
    Autonomous,
}

/// The database, the estate, the instances and the balancer.
struct Cluster {
    db: sqlx::AnyPool,
    twin: TestTwin,
    instances: Vec<Instance>,
    balancer: TempHaproxy,
    http: reqwest::Client,
    /// The policy file the instances read.
    _dir: tempfile::TempDir,
}

/// A fresh database on the test PostgreSQL, or `None` (said loudly) when
/// there is none.
async fn fresh_database() -> Option<String> {
    let Ok(admin) = std::env::var("ANTIBODY_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var_os("ANTIBODY_REQUIRE_POSTGRES").is_none(),
            "this run requires PostgreSQL"
        );
        eprintln!("\n\x1b[1;33m!!! no ANTIBODY_TEST_POSTGRES_URL: the multi-instance tests are SKIPPED\x1b[0m\n");
        return None;
    };
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&admin).await.unwrap();
    let name = format!("antibody_cluster_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    Some(format!("{}/{name}", admin.rsplit_once('/').unwrap().0))
}

/// Starts an instance with `env`; its address and id once it listens.
async fn start_instance(env: &[(&str, String)]) -> Instance {
    let started = crate::helpers::spawn_binary_with(env, &[]).await;
    Instance {
        child: started.child,
        addr: started.addr,
        id: started
            .instance
            .expect("a shared instance says which it is when it joins"),
    }
}

impl Cluster {
    /// Three instances on a fresh database and a standalone twin, behind
    /// HAProxy; `None` when PostgreSQL or HAProxy is missing (said loudly).
    /// Under the default policy, plans that need a person wait an hour of
    /// simulated time for one; `autonomous` runs every plan.
    async fn start(policy: Policy) -> Option<Self> {
        Self::start_with(policy, spawn_twin(SPEED).await, Vec::new()).await
    }

    /// As [`start`](Self::start), on `twin`, with `extra` settings for
    /// every instance.
    async fn start_with(policy: Policy, twin: TestTwin, extra: Vec<(&'static str, String)>) -> Option<Self> {
        if crate::helpers::on_postgres() {
            // The first pass ran these already.
            return None;
        }
        let url = fresh_database().await?;
        let dir = tempfile::tempdir().unwrap();
        let policy = std::fs::read_to_string(crate::components::shipped(match policy {
            Policy::PeopleDecide => "engine/data/policies/default.toml",
            Policy::Autonomous => "engine/data/policies/autonomous.toml",
        }))
        .unwrap()
        .replace("timeout_seconds = 60", "timeout_seconds = 3600");
        let policy_path = dir.path().join("policy.toml");
        std::fs::write(&policy_path, policy).unwrap();
        let mut env = vec![
            ("ANTIBODY_DATABASE_URL", url.clone()),
            ("ANTIBODY_TWIN_URL", twin.url.clone()),
            ("ANTIBODY_ACTUATOR_SECRET", SECRET.to_owned()),
            ("ANTIBODY_LEASE_TTL", LEASE_TTL.as_secs().to_string()),
            ("ANTIBODY_SPEED", SPEED.to_string()),
            ("ANTIBODY_POLICY", policy_path.display().to_string()),
        ];
        env.extend(extra);
        let mut instances = Vec::new();
        for _ in 0..3 {
            instances.push(start_instance(&env).await);
        }
        let backends = [0, 1, 2].map(|i| instances[i].addr.clone());
        let balancer = TempHaproxy::balancing(&backends).await?;
        sqlx::any::install_default_drivers();
        let db = sqlx::AnyPool::connect(&url).await.unwrap();
        Some(Self {
            db,
            twin,
            instances,
            balancer,
            http: reqwest::Client::new(),
            _dir: dir,
        })
    }

    /// Every stored `seq`, in order.
    async fn stored_seqs(&self) -> Vec<u64> {
        sqlx::query("SELECT seq FROM events ORDER BY seq")
            .fetch_all(&self.db)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get::<i64, _>(0) as u64)
            .collect()
    }

    /// Incident `id`'s lease: owner and epoch.
    async fn lease(&self, id: &str) -> Option<(String, i64)> {
        sqlx::query("SELECT owner, epoch FROM leases WHERE subject = $1")
            .bind(id)
            .fetch_optional(&self.db)
            .await
            .unwrap()
            .map(|row| (row.get::<String, _>(0), row.get::<i64, _>(1)))
    }

    /// Kills the first instance (`kill -9`), which owns `subject`, and
    /// waits until another holds its lease: the holder, the lease's epoch,
    /// and how long after the kill.
    async fn kill_first_and_await_takeover(&mut self, subject: &str) -> (String, i64, Duration) {
        let owner = self.instances[0].id.clone();
        self.instances[0].child.start_kill().unwrap();
        let killed = Instant::now();
        let (taker, epoch) = eventually(
            "another instance takes the lease over",
            Duration::from_millis(50),
            Duration::from_secs(30),
            || async { self.lease(subject).await.filter(|(holder, _)| *holder != owner) },
        )
        .await;
        (taker, epoch, killed.elapsed())
    }

    /// Incident `id`'s stored status.
    async fn status(&self, id: &str) -> String {
        sqlx::query("SELECT status FROM incidents WHERE id = $1")
            .bind(id)
            .fetch_one(&self.db)
            .await
            .unwrap()
            .get(0)
    }

    /// Events of `kind` about incident `id`, as (seq, origin, body).
    async fn events_of(&self, id: &str, kind: &str) -> Vec<(i64, Option<String>, Value)> {
        sqlx::query("SELECT seq, origin, body FROM events WHERE incident_id = $1 AND kind = $2 ORDER BY seq")
            .bind(id)
            .bind(kind)
            .fetch_all(&self.db)
            .await
            .unwrap()
            .iter()
            .map(|row| {
                let body: String = row.get(2);
                (row.get(0), row.get(1), serde_json::from_str(&body).unwrap())
            })
            .collect()
    }

    /// Opens an incident on `instance` (`POST /api/incidents`); its id.
    async fn open_incident(&self, instance: &Instance, body: &Value) -> String {
        let response = self
            .http
            .post(instance.url("/api/incidents"))
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        response.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Opens a critical database cascade on `instance` (its plan needs a
    /// person under the default policy), and waits until it waits for one;
    /// the incident's id and its approval.
    ///
    /// The incident reads a standalone twin that shares this test's
    /// process with the whole suite. Should it end before it asks anyone
    /// (its reads of the twin failed under load, say), it says how, and a
    /// second incident is opened: what the callers test starts at the
    /// approval, not at detection.
    async fn waiting_for_a_person(&self, instance: &Instance) -> (String, Value) {
        for attempt in 1..=2 {
            // The fault stays on the twin: a second incident finds it.
            match self.try_waiting_for_a_person(instance, attempt == 1).await {
                Ok(found) => return found,
                Err(ended) if attempt == 1 => {
                    eprintln!("\n!!! the incident ended before it waited for a person ({ended}); opening another\n");
                }
                Err(ended) => panic!("twice, the incident ended before it waited for a person: {ended}"),
            }
        }
        unreachable!("the second attempt returns or panics")
    }

    /// One attempt of [`Cluster::waiting_for_a_person`]: the incident and
    /// its approval, or how the incident ended without one.
    async fn try_waiting_for_a_person(&self, instance: &Instance, inject: bool) -> Result<(String, Value), String> {
        if inject {
            self.twin.inject("database_cascade").await;
        }
        let body = json!({
            "title": "Checkout errors",
            "severity": "critical",
            "affected_services": ["api-gateway", "user-service", "order-service", "inventory-service", "payment-service"],
        });
        let id = self.open_incident(instance, &body).await;
        let found = eventually(
            "the plan waits for a person, or the incident ends",
            Duration::from_millis(200),
            Duration::from_secs(90),
            || async {
                let pending: Vec<Value> = reqwest::get(instance.url("/api/approvals?state=pending"))
                    .await
                    .ok()?
                    .json()
                    .await
                    .ok()?;
                if let Some(approval) = pending.into_iter().find(|a| a["incident_id"] == id.as_str()) {
                    return Some(Ok(approval));
                }
                let (_, _, status) = self.events_of(&id, "incident_status").await.pop()?;
                let last = self.events_of(&id, "agent_action").await.pop();
                let said = last.map_or(Value::Null, |(_, _, body)| body["action"]["description"].clone());
                Some(Err(format!("{}, after: {said}", status["status"])))
            },
        )
        .await;
        let approval = found?;
        // The owner knows it first; everyone once it is stored.
        eventually(
            "the request is stored",
            Duration::from_millis(50),
            Duration::from_secs(10),
            || async { (!self.events_of(&id, "approval_requested").await.is_empty()).then_some(()) },
        )
        .await;
        Ok((id, approval))
    }
}

/// A dashboard reading one instance's stream from the start of the log:
/// every frame after its opening, as (seq, JSON).
struct Dashboard {
    frames: Arc<Mutex<Vec<(u64, String)>>>,
    /// The log's identity, as this instance gave it.
    epoch: String,
}

impl Dashboard {
    async fn open(instance: &Instance) -> Self {
        let snapshot: Value = reqwest::get(instance.url("/api/snapshot"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let epoch = snapshot["epoch"].as_str().unwrap().to_owned();
        let (mut socket, _) =
            tokio_tungstenite::connect_async(format!("ws://{}/ws?epoch={epoch}&since=0", instance.addr))
                .await
                .unwrap();
        let frames = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&frames);
        tokio::spawn(async move {
            while let Some(Ok(message)) = socket.next().await {
                if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
                    let envelope: Value = serde_json::from_str(&text).unwrap();
                    assert_ne!(envelope["type"], "resync", "no dashboard falls behind here");
                    let seq = envelope["seq"].as_u64().unwrap();
                    sink.lock().unwrap().push((seq, text.to_string()));
                }
            }
        });
        Self { frames, epoch }
    }

    fn seqs(&self) -> Vec<u64> {
        self.frames.lock().unwrap().iter().map(|(seq, _)| *seq).collect()
    }
}

#[tokio::test]
async fn scenarios_through_the_balancer_reach_every_dashboard_on_every_instance_in_one_order() {
    let Some(cluster) = Cluster::start(Policy::Autonomous).await else {
        return;
    };
    let dashboards: Vec<Dashboard> = futures::future::join_all(cluster.instances.iter().map(Dashboard::open)).await;

    // Round-robin through HAProxy: each instance opens some of them.
    let scenarios = [
        "cache_failure",
        "memory_leak_gradual",
        "pod_crash_loop",
        "api_slowdown",
        "disk_exhaustion",
        "service_down",
    ];
    let mut fired = Vec::new();
    for (n, scenario) in scenarios.iter().enumerate() {
        if n == 3 {
            // Cut the second instance's LISTEN connection mid-way: what it
            // misses meanwhile costs latency, never an event.
            let cut = sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1")
                .bind(format!("antibody-listen {}", cluster.instances[1].id))
                .fetch_all(&cluster.db)
                .await
                .unwrap();
            assert_eq!(cut.len(), 1, "the instance listens on one connection, named for it");
        }
        let response = cluster
            .http
            .post(format!("{}/api/scenarios/{scenario}/trigger", cluster.balancer.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{}", cluster.balancer.log());
        fired.push(
            response.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let owners: std::collections::HashSet<String> = sqlx::query("SELECT owner FROM leases WHERE kind = 'incident'")
        .fetch_all(&cluster.db)
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(
        owners.len(),
        3,
        "the balancer spread the incidents over the three instances"
    );

    eventually(
        "every incident closes",
        Duration::from_millis(500),
        Duration::from_secs(120),
        || async {
            let open: i64 = sqlx::query("SELECT COUNT(*) FROM incidents WHERE status = 'active'")
                .fetch_one(&cluster.db)
                .await
                .unwrap()
                .get(0);
            (open == 0).then_some(())
        },
    )
    .await;
    let stored = cluster.stored_seqs().await;
    let last = *stored.last().unwrap();
    assert_eq!(stored, (1..=last).collect::<Vec<_>>(), "the shared log has no gap");
    for (n, dashboard) in dashboards.iter().enumerate() {
        eventually(
            &format!("dashboard {n} reaches seq {last}"),
            Duration::from_millis(100),
            Duration::from_secs(10),
            || async { (dashboard.seqs().last() >= Some(&last)).then_some(()) },
        )
        .await;
        let seen: Vec<u64> = dashboard.seqs().into_iter().take_while(|&seq| seq <= last).collect();
        assert_eq!(seen, stored, "dashboard {n} saw exactly the stored log, in order");
    }
    // One order, one content: the same frame for each seq everywhere.
    let first = dashboards[0].frames.lock().unwrap().clone();
    for dashboard in &dashboards[1..] {
        let frames = dashboard.frames.lock().unwrap();
        for ((seq, a), (_, b)) in first.iter().zip(frames.iter()).take_while(|((seq, _), _)| *seq <= last) {
            assert_eq!(a, b, "event {seq} reads the same on every instance");
        }
    }
    assert!(
        dashboards.windows(2).all(|w| w[0].epoch == w[1].epoch),
        "one log, one epoch, on every instance"
    );
    // A dashboard of one instance resumes on another by (epoch, seq).
    let (mut resumed, _) = tokio_tungstenite::connect_async(format!(
        "ws://{}/ws?epoch={}&since={}",
        cluster.instances[2].addr,
        dashboards[0].epoch,
        last - 3
    ))
    .await
    .unwrap();
    let Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text))) = resumed.next().await else {
        panic!("a frame")
    };
    let frame: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(frame["seq"], last - 2, "the resume starts right after the seq it gave");
    assert!(
        cluster.instances[1]
            .counter("antibody_event_listen_reconnects_total")
            .await
            >= 1.0,
        "the cut LISTEN connection was replaced"
    );
    // The views agree too: each is a projection of the shared log.
    let metrics: Vec<Value> = futures::future::join_all(cluster.instances.iter().map(|i| async move {
        reqwest::get(i.url("/api/metrics"))
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    }))
    .await;
    for m in &metrics {
        assert_eq!(m["incidents_active"], 0, "{metrics:?}");
        assert_eq!(
            m["incidents_resolved"].as_u64().unwrap() + m["incidents_failed"].as_u64().unwrap(),
            fired.len() as u64,
            "every instance counts every incident, once: {metrics:?}"
        );
    }
    // The snapshot's incidents and the incident memory agree too.
    let views: Vec<View> = futures::future::join_all(cluster.instances.iter().map(|i| async move {
        let snapshot: Value = reqwest::get(i.url("/api/snapshot"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut incidents: Vec<(String, String)> = (snapshot["incidents"].as_array().unwrap().iter())
            .map(|x| {
                (
                    x["id"].as_str().unwrap().to_owned(),
                    x["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        incidents.sort();
        let memory: Value = reqwest::get(i.url("/api/memory")).await.unwrap().json().await.unwrap();
        let mut remembered: Vec<String> = (memory["entries"].as_array().unwrap().iter())
            .map(|e| e["incident_id"].as_str().unwrap().to_owned())
            .collect();
        remembered.sort();
        (incidents, remembered)
    }))
    .await;
    assert_eq!(views[0].0.len(), fired.len());
    assert!(!views[0].1.is_empty(), "healed incidents are remembered");
    assert!(views.windows(2).all(|w| w[0] == w[1]), "one view everywhere: {views:?}");
    // Sums folded in another order may differ in the last bit, no more.
    for key in [
        "total_cost_savings",
        "avg_mttr",
        "success_rate",
        "avg_time_to_detect",
        "avg_time_to_diagnose",
    ] {
        let values: Vec<f64> = metrics.iter().map(|m| m[key].as_f64().unwrap()).collect();
        assert!(
            values.windows(2).all(|w| (w[0] - w[1]).abs() < 1e-6),
            "the meters agree on {key}: {values:?}"
        );
    }
}

#[tokio::test]
async fn a_killed_owner_s_incident_is_taken_over_once_within_the_lease_time() {
    let Some(mut cluster) = Cluster::start(Policy::PeopleDecide).await else {
        return;
    };
    let (id, _) = cluster.waiting_for_a_person(&cluster.instances[0]).await;
    let owner = cluster.instances[0].id.clone();
    assert_eq!(cluster.lease(&id).await, Some((owner.clone(), 1)));

    let (taker, epoch, took) = cluster.kill_first_and_await_takeover(&id).await;
    assert!(
        took <= LEASE_TTL + Duration::from_secs(2),
        "taken over {took:?} after the kill, beyond the lease time plus 2 s"
    );
    assert_eq!(epoch, 2, "the lease epoch went up by one");
    assert!(cluster.instances[1..].iter().any(|i| i.id == taker));
    eventually(
        "the incident ends",
        Duration::from_millis(100),
        Duration::from_secs(10),
        || async { (cluster.status(&id).await == "interrupted").then_some(()) },
    )
    .await;
    let takeovers = cluster.events_of(&id, "lease_taken_over").await;
    assert_eq!(takeovers.len(), 1, "exactly one takeover: {takeovers:?}");
    let (_, origin, body) = &takeovers[0];
    assert_eq!(origin.as_deref(), Some(taker.as_str()));
    assert_eq!(body["previous_owner"], owner.as_str());
    assert_eq!(body["lease_epoch"], 2);
    let decided = cluster.events_of(&id, "approval_decided").await;
    assert_eq!(decided.len(), 1, "its approval is withdrawn, once");
    assert_eq!(decided[0].2["approval"]["state"], "withdrawn");
}

#[tokio::test]
async fn a_paused_owner_that_lost_its_lease_cannot_write_about_the_incident() {
    let Some(cluster) = Cluster::start(Policy::PeopleDecide).await else {
        return;
    };
    let paused = &cluster.instances[0];
    let (id, _) = cluster.waiting_for_a_person(paused).await;

    paused.signal("STOP");
    let (_, epoch) = eventually(
        "another instance takes over",
        Duration::from_millis(100),
        Duration::from_secs(30),
        || async { cluster.lease(&id).await.filter(|(holder, _)| *holder != paused.id) },
    )
    .await;
    assert_eq!(epoch, 2);
    let taken_at = eventually(
        "the takeover is published",
        Duration::from_millis(100),
        Duration::from_secs(10),
        || async {
            cluster
                .events_of(&id, "lease_taken_over")
                .await
                .first()
                .map(|(seq, ..)| *seq)
        },
    )
    .await;
    paused.signal("CONT");

    // Back, it still believes it owns the incident until it renews; what it
    // writes about it meanwhile is refused by the store.
    eventually(
        "the paused owner's late writes are refused",
        Duration::from_millis(200),
        Duration::from_secs(20),
        || async { (paused.counter("antibody_event_store_fenced_total").await >= 1.0).then_some(()) },
    )
    .await;
    let late: i64 = sqlx::query("SELECT COUNT(*) FROM events WHERE incident_id = $1 AND origin = $2 AND seq > $3")
        .bind(&id)
        .bind(&paused.id)
        .bind(taken_at)
        .fetch_one(&cluster.db)
        .await
        .unwrap()
        .get(0);
    assert_eq!(late, 0, "nothing the old owner wrote after the takeover was stored");
    assert_eq!(cluster.status(&id).await, "interrupted");
    assert_eq!(cluster.events_of(&id, "incident_status").await.len(), 1, "one end");
}

#[tokio::test]
async fn an_approval_decided_on_another_instance_reaches_the_waiting_incident() {
    let Some(cluster) = Cluster::start(Policy::PeopleDecide).await else {
        return;
    };
    let [a, b] = [&cluster.instances[0], &cluster.instances[1]];

    // Approved on B while the incident waits on A.
    let (id, approval) = cluster.waiting_for_a_person(a).await;
    let approval_id = approval["approval_id"].as_str().unwrap();
    let decision =
        |approve: bool, who: &str| json!({"decision": if approve {"approve"} else {"reject"}, "approver": who});
    let response = cluster
        .http
        .post(b.url(&format!("/api/approvals/{approval_id}/decision")))
        .json(&decision(true, "bea"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let decided = eventually(
        "A hears of it and publishes the decision",
        Duration::from_millis(100),
        Duration::from_secs(30),
        || async { cluster.events_of(&id, "approval_decided").await.pop() },
    )
    .await;
    assert_eq!(
        decided.1.as_deref(),
        Some(a.id.as_str()),
        "the waiting incident's owner publishes it"
    );
    assert_eq!(decided.2["approval"]["state"], "approved");
    assert_eq!(decided.2["approval"]["decided_by"], "bea");
    let actions_ran = eventually(
        "the approved plan runs on A",
        Duration::from_millis(200),
        Duration::from_secs(60),
        || async {
            let status = cluster.status(&id).await;
            (status != "active").then_some(status)
        },
    )
    .await;
    assert_eq!(actions_ran, "resolved");
}

#[tokio::test]
async fn approved_on_one_instance_and_rejected_on_another_at_once_is_decided_once() {
    let Some(cluster) = Cluster::start(Policy::PeopleDecide).await else {
        return;
    };
    let [a, b, c] = [&cluster.instances[0], &cluster.instances[1], &cluster.instances[2]];
    let decision =
        |approve: bool, who: &str| json!({"decision": if approve {"approve"} else {"reject"}, "approver": who});
    let (id, approval) = cluster.waiting_for_a_person(a).await;
    let approval_id = approval["approval_id"].as_str().unwrap().to_owned();
    let post = |instance: &Instance, body: Value| {
        cluster
            .http
            .post(instance.url(&format!("/api/approvals/{approval_id}/decision")))
            .json(&body)
            .send()
    };
    let (on_b, on_c) = tokio::join!(post(b, decision(true, "bea")), post(c, decision(false, "cal")));
    let mut statuses = [on_b.unwrap().status().as_u16(), on_c.unwrap().status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409]);
    let decided = eventually(
        "the winner's decision is published",
        Duration::from_millis(100),
        Duration::from_secs(30),
        || async {
            let all = cluster.events_of(&id, "approval_decided").await;
            (!all.is_empty()).then_some(all)
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        cluster.events_of(&id, "approval_decided").await.len(),
        1,
        "decided once: {decided:?}"
    );
}

#[tokio::test]
async fn a_second_instance_on_the_embedded_twin_or_on_one_sqlite_file_is_refused() {
    if crate::helpers::on_postgres() {
        return;
    }
    // One SQLite file: the second process is refused at once, naming why.
    let data = tempfile::tempdir().unwrap();
    let (_first, _) = crate::helpers::spawn_binary(data.path(), &[]).await;
    let refused = tokio::process::Command::new(env!("CARGO_BIN_EXE_antibody"))
        .args(["--addr", "127.0.0.1:0"])
        .env(
            "ANTIBODY_DATABASE_URL",
            format!("sqlite://{}/antibody.db", data.path().display()),
        )
        .env_remove("PORT")
        .output()
        .await
        .unwrap();
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr).to_string() + &String::from_utf8_lossy(&refused.stdout);
    assert!(
        said.contains("in use by another Antibody instance") && said.contains("PostgreSQL"),
        "{said}"
    );

    // One PostgreSQL and the embedded twin: refused once the live one's
    // heartbeat proves it alive for a lease's time.
    let Some(url) = fresh_database().await else { return };
    let env = [
        ("ANTIBODY_DATABASE_URL", url.clone()),
        ("ANTIBODY_LEASE_TTL", "1".to_owned()),
    ];
    let _live = start_instance(&env).await;
    let refused = tokio::process::Command::new(env!("CARGO_BIN_EXE_antibody"))
        .args(["--addr", "127.0.0.1:0"])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env_remove("PORT")
        .output()
        .await
        .unwrap();
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr).to_string() + &String::from_utf8_lossy(&refused.stdout);
    assert!(
        said.contains("embedded twin") && said.contains("ANTIBODY_TWIN_URL"),
        "{said}"
    );
}

#[tokio::test]
async fn a_killed_owner_s_timeline_run_is_taken_over_and_interrupted() {
    let Some(mut cluster) = Cluster::start(Policy::Autonomous).await else {
        return;
    };
    let timeline: Value = serde_json::from_str(
        &std::fs::read_to_string(crate::components::shipped("engine/data/timelines/busy_day.json")).unwrap(),
    )
    .unwrap();
    // Real time: half an hour of schedule, so the run is going when its
    // owner dies.
    let response = cluster
        .http
        .post(cluster.instances[0].url("/api/timeline-runs"))
        .json(&json!({"timeline": timeline, "speed": 1.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let run = response.json::<Value>().await.unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let owner = cluster.instances[0].id.clone();
    eventually(
        "the run's lease is stored",
        Duration::from_millis(50),
        Duration::from_secs(10),
        || async {
            cluster
                .lease(&run)
                .await
                .filter(|(holder, epoch)| *holder == owner && *epoch == 1)
        },
    )
    .await;

    let (_, epoch, took) = cluster.kill_first_and_await_takeover(&run).await;
    assert!(took <= LEASE_TTL + Duration::from_secs(2), "{took:?}");
    assert_eq!(epoch, 2);
    let state: String = eventually(
        "the run ends interrupted",
        Duration::from_millis(100),
        Duration::from_secs(10),
        || async {
            let state: String = sqlx::query("SELECT state FROM timeline_runs WHERE run_id = $1")
                .bind(&run)
                .fetch_one(&cluster.db)
                .await
                .unwrap()
                .get(0);
            (state != "running").then_some(state)
        },
    )
    .await;
    assert_eq!(state, "interrupted");
    let takeovers: i64 = sqlx::query("SELECT COUNT(*) FROM events WHERE kind = 'lease_taken_over' AND body LIKE $1")
        .bind(format!("%{run}%"))
        .fetch_one(&cluster.db)
        .await
        .unwrap()
        .get(0);
    assert_eq!(takeovers, 1, "exactly one takeover of the run");
}

/// A runbook system between the instances and the twin: it passes each
/// order on to the twin, answers "pending", then posts the step's result,
/// signed, to the instance `to` names (not the one that sent the order, as
/// a balancer may route it); the statuses those posts got.
async fn runbook_relay(twin: String, to: Arc<Mutex<Option<String>>>) -> (String, Arc<Mutex<Vec<u16>>>) {
    use axum::{body::Bytes, http::HeaderMap, routing::post};
    let answers = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&answers);
    let handler = move |headers: HeaderMap, body: Bytes| {
        let (twin, to, seen) = (twin.clone(), Arc::clone(&to), Arc::clone(&seen));
        async move {
            let http = reqwest::Client::new();
            let mut order = http.post(format!("{twin}/api/actions")).body(body);
            for name in ["content-type", "idempotency-key", engine::actuator::SIGNATURE_HEADER] {
                order = order.header(name, headers[name].clone());
            }
            let applied = order.send().await.unwrap();
            assert!(applied.status().is_success(), "the twin takes the order");
            let key = headers["idempotency-key"].to_str().unwrap().to_owned();
            let instance = to.lock().unwrap().clone().expect("the instances are up");
            tokio::spawn(async move {
                let result =
                    serde_json::to_vec(&json!({"status": "succeeded", "detail": "applied by the relay"})).unwrap();
                let signature = engine::actuator::Signer::new(SECRET).sign(chrono::Utc::now().timestamp(), &result);
                let answered = reqwest::Client::new()
                    .post(format!("http://{instance}/api/actions/{key}/result"))
                    .header("content-type", "application/json")
                    .header(engine::actuator::SIGNATURE_HEADER, signature)
                    .body(result)
                    .send()
                    .await
                    .unwrap();
                seen.lock().unwrap().push(answered.status().as_u16());
            });
            (reqwest::StatusCode::ACCEPTED, "{}".to_owned())
        }
    };
    let app = axum::Router::new().route("/api/actions", post(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, answers)
}

#[tokio::test]
async fn a_runbook_result_posted_to_another_instance_reaches_the_waiting_step() {
    let twin = spawn_twin(SPEED).await;
    let to = Arc::new(Mutex::new(None));
    let (relay, answers) = runbook_relay(twin.url.clone(), Arc::clone(&to)).await;
    let dir = tempfile::tempdir().unwrap();
    let map = dir.path().join("relay.toml");
    std::fs::write(
        &map,
        "name = \"relay\"\nurl = \"$base/api/actions\"\noutcome = \"callback\"\ntimeout_seconds = 30\nattempts = 3\n",
    )
    .unwrap();
    let extra = vec![
        ("ANTIBODY_ACTUATOR_URL", relay),
        ("ANTIBODY_ACTUATOR_MAP", map.display().to_string()),
        // Where orders say to post results; the relay posts elsewhere.
        ("ANTIBODY_PUBLIC_URL", "http://127.0.0.1:9".to_owned()),
    ];
    let Some(cluster) = Cluster::start_with(Policy::Autonomous, twin, extra).await else {
        return;
    };
    // Orders from A, results to B.
    *to.lock().unwrap() = Some(cluster.instances[1].addr.clone());
    cluster.twin.inject("pod_crash_loop").await;
    let body = json!({"title": "Orders failing", "severity": "high", "affected_services": ["order-service"]});
    let id = cluster.open_incident(&cluster.instances[0], &body).await;
    let status = eventually(
        "the incident closes",
        Duration::from_millis(200),
        Duration::from_secs(90),
        || async {
            let status = cluster.status(&id).await;
            (status != "active").then_some(status)
        },
    )
    .await;
    let answered = answers.lock().unwrap().clone();
    assert!(!answered.is_empty(), "the relay posted results");
    assert!(
        answered.iter().all(|&s| s == 202),
        "B took every result for A's steps: {answered:?}"
    );
    assert_eq!(
        status, "resolved",
        "the step learned its outcome on A, and verification saw the fix"
    );
    let steps = cluster.events_of(&id, "agent_action").await;
    let outcome = (steps.iter())
        .filter_map(|(_, _, body)| body["action"]["details"]["actuation"]["receipt"]["status"].as_str())
        .find(|&status| status != "pending");
    assert_eq!(outcome, Some("succeeded"), "the receipt carries the result posted to B");
}

#[tokio::test]
async fn a_draining_instance_keeps_its_leases_until_its_incidents_end() {
    let extra = vec![("ANTIBODY_SHUTDOWN_GRACE", "6".to_owned())];
    let Some(cluster) = Cluster::start_with(Policy::PeopleDecide, spawn_twin(SPEED).await, extra).await else {
        return;
    };
    let draining = &cluster.instances[0];
    let (id, _) = cluster.waiting_for_a_person(draining).await;
    draining.signal("TERM");
    // Longer than the lease time and the reaper's tick: still its own.
    tokio::time::sleep(LEASE_TTL + Duration::from_secs(2)).await;
    assert_eq!(
        cluster.lease(&id).await,
        Some((draining.id.clone(), 1)),
        "a draining owner renews what it still runs"
    );
    // The grace runs out: the owner itself interrupts the incident.
    let ended = eventually(
        "the owner ends its incident",
        Duration::from_millis(200),
        Duration::from_secs(20),
        || async { cluster.events_of(&id, "incident_status").await.pop() },
    )
    .await;
    assert_eq!(ended.1.as_deref(), Some(draining.id.as_str()));
    assert_eq!(ended.2["status"], "interrupted");
    assert!(
        cluster.events_of(&id, "lease_taken_over").await.is_empty(),
        "nobody had to take it over"
    );
}
