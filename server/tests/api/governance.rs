//! Governance over HTTP: a plan policy will not run without a person waits
//! for one, is decided through the API (or the dashboard's form), and every
//! decision lands in the audit log.

use std::{sync::Arc, time::Duration};

use engine::{
    governance::Policy,
    protocol::{ActionDetails, IncidentStatus},
};
use serde_json::{Value, json};

use crate::helpers::{TestApp, eventually, settings_in, spawn_app_with};

/// The default policy's rules, with time enough for a test to answer.
fn patient_default() -> Arc<Policy> {
    let mut policy = Policy::builtin("default").unwrap();
    policy.approval.timeout_seconds = 3_600.0;
    Arc::new(policy)
}

async fn governed(policy: Arc<Policy>, token: Option<&str>) -> TestApp {
    let token = token.map(str::to_owned);
    spawn_app_with(move |data| {
        let mut settings = settings_in(data, 200.0, Duration::from_secs(5));
        settings.policy = policy;
        settings.operator_token = token;
        settings
    })
    .await
}

/// Polls `GET /api/approvals?state=pending` until one waits for `incident`.
async fn pending_for(app: &TestApp, incident: &str) -> Value {
    eventually(
        &format!("an approval requested for {incident}"),
        Duration::from_millis(25),
        Duration::from_secs(10),
        || async {
            let pending: Vec<Value> = app.json("/api/approvals?state=pending").await;
            pending.into_iter().find(|a| a["incident_id"] == incident)
        },
    )
    .await
}

/// Polls the incident until it closes; returns its detail.
async fn closed(app: &TestApp, incident: &str) -> Value {
    eventually(
        &format!("{incident} closed"),
        Duration::from_millis(25),
        Duration::from_secs(10),
        || async {
            let detail: Value = app.json(&format!("/api/incidents/{incident}")).await;
            (detail["incident"]["status"] != "active").then_some(detail)
        },
    )
    .await
}

#[tokio::test]
async fn a_plan_that_needs_a_person_runs_only_once_approved_and_the_audit_log_says_who() {
    let app = governed(patient_default(), None).await;
    let policy: Value = app.json("/api/policy").await;
    assert_eq!(policy["name"], "default");
    assert!(
        policy["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "wide-critical-changes-need-a-person")
    );

    let incident = app.fire("database_cascade").await.id.to_string();
    let approval = pending_for(&app, &incident).await;
    let id = approval["approval_id"].as_str().unwrap();
    assert_eq!(approval["rule"], "wide-critical-changes-need-a-person");
    assert_eq!(approval["approver"], "on-call SRE");
    assert!(!approval["evidence"].as_array().unwrap().is_empty());
    assert!(approval["proposal"]["success_probability"].as_f64().unwrap() > 0.0);
    let one: Value = app.json(&format!("/api/approvals/{id}")).await;
    assert_eq!(one["approval_id"], id);

    // Nothing ran while it waited: no step in the incident's story.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let waiting = app.incident(&incident).await;
    assert_eq!(waiting.incident.status, IncidentStatus::Active);
    assert!(
        waiting
            .actions
            .iter()
            .all(|a| !matches!(a.details, ActionDetails::Step(_))),
        "{waiting:#?}"
    );

    let response = app
        .decide(
            id,
            json!({"decision": "approve", "approver": " alice ", "comment": "go"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let decided: Value = response.json().await.unwrap();
    assert_eq!(
        (decided["state"].as_str(), decided["decided_by"].as_str()),
        (Some("approved"), Some("alice"))
    );

    // A second answer is too late.
    let again = app.decide(id, json!({"decision": "reject", "approver": "bob"})).await;
    assert_eq!(again.status(), 409);
    let problem: Value = again.json().await.unwrap();
    assert!(
        problem["detail"].as_str().unwrap().contains("already approved"),
        "{problem}"
    );

    let detail = closed(&app, &incident).await;
    assert_eq!(detail["incident"]["status"], "resolved");
    assert!(
        detail["actions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["details"]["kind"] == "step" && a["details"]["step"] == 1)
    );
    let trail: Vec<(String, String, String)> = detail["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["actor"].as_str().unwrap().to_owned(),
                e["decision"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("policy_decision", "policy:wide-critical-changes-need-a-person", "human"),
        (
            "approval_requested",
            "policy:wide-critical-changes-need-a-person",
            "pending",
        ),
        ("approval_decided", "alice", "approved"),
        ("policy_decision", "policy:wide-critical-changes-need-a-person", "human"),
    ];
    assert_eq!(
        trail,
        expected.map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned())),
        "{:#}",
        detail["audit"]
    );

    // The same log, filtered and paged over the API.
    let by_approval: Vec<Value> = app.json(&format!("/api/audit?approval_id={id}")).await;
    assert_eq!(by_approval.len(), 3, "request, decision and the re-check");
    assert_eq!(by_approval[1]["reason"], "go");
    let page: Vec<Value> = app.json(&format!("/api/audit?incident_id={incident}&limit=1")).await;
    let older: Vec<Value> = app
        .json(&format!(
            "/api/audit?incident_id={incident}&limit=10&before_seq={}",
            page[0]["seq"]
        ))
        .await;
    assert_eq!(older.len(), 3);
    let recent: Vec<Value> = app.json("/api/approvals").await;
    assert_eq!(recent[0]["state"], "approved");
}

#[tokio::test]
async fn a_rejected_plan_never_runs() {
    let app = governed(patient_default(), None).await;
    let incident = app.fire("network_partition").await.id.to_string();
    // Reject every plan put to a person, until the incident closes.
    let mut rejected = 0;
    let mut answered = std::collections::HashSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        assert!(tokio::time::Instant::now() < deadline, "{incident} never closed");
        let pending: Vec<Value> = app.json("/api/approvals?state=pending").await;
        for approval in pending.iter().filter(|a| a["incident_id"] == incident.as_str()) {
            // Each is answered once; the list may lag the answer a moment.
            if !answered.insert(approval["approval_id"].as_str().unwrap().to_owned()) {
                continue;
            }
            let response = app
                .decide(
                    approval["approval_id"].as_str().unwrap(),
                    json!({"decision": "reject", "approver": "bob", "comment": "not during the sale"}),
                )
                .await;
            assert_eq!(response.status(), 200);
            rejected += 1;
        }
        let detail: Value = app.json(&format!("/api/incidents/{incident}")).await;
        if detail["incident"]["status"] != "active" {
            assert!(rejected >= 1);
            assert!(
                detail["timeline"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|e| e["type"] != "config_change"),
                "a rejected plan changed the estate"
            );
            assert!(
                detail["incident"]["report"]
                    .as_str()
                    .unwrap()
                    .contains("Rejected by bob")
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn an_unanswered_request_escalates_then_takes_the_safe_default() {
    let mut policy = Policy::builtin("default").unwrap();
    policy.approval.timeout_seconds = 10.0;
    let policy = Arc::new(policy);
    // At 50x, ten simulated seconds are 0.2 s of wall time: a loaded
    // machine's timer slop stays far below the ten seconds a third wait
    // would add.
    let app = spawn_app_with(move |data| {
        let mut settings = settings_in(data, 50.0, Duration::from_secs(5));
        settings.policy = policy;
        settings
    })
    .await;
    let incident = app.fire("network_partition").await.id.to_string();
    let detail = closed(&app, &incident).await;
    let kinds: Vec<&str> = detail["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.starts_with(&[
            "policy_decision",
            "approval_requested",
            "approval_escalated",
            "approval_decided"
        ]),
        "{kinds:?}"
    );
    let decided = detail["audit"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "approval_decided")
        .unwrap();
    assert_eq!(
        (decided["actor"].as_str(), decided["decision"].as_str()),
        (Some("policy (timeout)"), Some("expired"))
    );
    // Two approvers, ten simulated seconds each; real timers add a little,
    // never a third approver's ten.
    let waited = decided["evidence"]["waited_seconds"].as_f64().unwrap();
    assert!((20.0..30.0).contains(&waited), "{waited}");
}

#[tokio::test]
async fn bad_decisions_are_refused_with_the_field_named() {
    let app = governed(patient_default(), None).await;
    let unknown = uuid::Uuid::new_v4();
    for (path, body, status, field) in [
        (
            "not-a-uuid".to_owned(),
            json!({"decision": "approve", "approver": "a"}),
            400,
            "id",
        ),
        (
            unknown.to_string(),
            json!({"decision": "approve", "approver": "a"}),
            404,
            "id",
        ),
        (
            unknown.to_string(),
            json!({"decision": "maybe", "approver": "a"}),
            422,
            "decision",
        ),
        (unknown.to_string(), json!({"decision": "approve"}), 422, "approver"),
        (
            unknown.to_string(),
            json!({"decision": "approve", "approver": "   "}),
            422,
            "approver",
        ),
        (
            unknown.to_string(),
            json!({"decision": "approve", "approver": "a", "comment": "x".repeat(501)}),
            422,
            "comment",
        ),
        (
            unknown.to_string(),
            json!({"decision": "approve", "approver": "a", "by": "b"}),
            422,
            "by",
        ),
    ] {
        let response = app.decide(&path, body.clone()).await;
        assert_eq!(response.status(), status, "{path} {body}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["field"], field, "{body}: {problem}");
    }
    for (query, field) in [
        ("incident_id=nope", "incident_id"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("colour=red", "colour"),
    ] {
        let response = app
            .http
            .get(app.url(&format!("/api/audit?{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{query}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["field"], field, "{query}: {problem}");
    }
    let response = app.http.get(app.url("/api/approvals?state=lost")).send().await.unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn in_operator_mode_only_the_operator_decides() {
    let app = governed(patient_default(), Some("s3cret")).await;
    let created = app
        .http
        .post(app.url("/api/incidents"))
        .bearer_auth("s3cret")
        .json(&json!({"title": "t", "severity": "critical", "affected_services": ["postgres-primary"], "scenario_id": "database_cascade"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let incident = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let approval = pending_for(&app, &incident).await;
    let id = approval["approval_id"].as_str().unwrap();
    let body = json!({"decision": "approve", "approver": "mallory"});
    assert_eq!(app.decide(id, body.clone()).await.status(), 401);
    // The dashboard's form refuses the same way.
    let form = app
        .http
        .post(app.url("/api/decide_approval"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("approval_id={id}&decision=approve&approver=mallory"))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 401);
    // The operator's form post decides.
    let form = app
        .http
        .post(app.url("/api/decide_approval"))
        .bearer_auth("s3cret")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "approval_id={id}&decision=approve&approver=Olivia+Operator&comment=ok"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 200, "{}", form.text().await.unwrap());
    assert_eq!(closed(&app, &incident).await["incident"]["status"], "resolved");
    let trail: Vec<Value> = app.json(&format!("/api/audit?approval_id={id}")).await;
    assert!(
        trail
            .iter()
            .any(|e| e["actor"] == "Olivia Operator" && e["decision"] == "approved")
    );
}
