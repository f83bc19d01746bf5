use std::sync::Arc;

use super::*;
use crate::{EngineConfig, TwinMode, clock::Speed, timeline::generator::BuiltinGenerator};

fn timelines() -> Timelines {
    let engine = Engine::new(EngineConfig {
        seed: Some(5),
        speed: Speed::new(100.0).unwrap(),
        twin: TwinMode::Isolated,
        ..EngineConfig::default()
    })
    .unwrap();
    let generator = BuiltinGenerator::embedded(Arc::clone(engine.topology())).unwrap();
    Timelines::new(engine, Arc::new(generator)).unwrap()
}

/// Two incidents at 0 s and one at 60 s; at speed 10 the third is due 6 s in.
const THREE: &str = r#"{"name": "Three", "duration_minutes": 2, "incidents": [
    {"delay_seconds": 0, "type": "predefined", "scenario_id": "cache_failure", "comment": "a"},
    {"delay_seconds": 0, "type": "llm_generated", "llm_prompt": "a disk filling up on the database", "comment": "b"},
    {"delay_seconds": 60, "type": "predefined", "scenario_id": "service_down", "comment": "c"}
]}"#;

fn fired(run: &TimelineRun) -> usize {
    run.entries.iter().filter(|e| e.incident_id.is_some()).count()
}

/// Lets spawned tasks run without moving the clock much.
async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn entries_fire_at_their_delays_equal_delays_together_and_the_run_is_scored() {
    let timelines = timelines();
    let timeline = timelines.parse("three.json", THREE).unwrap();
    let run = timelines.start(timeline, Some(10.0), 1).unwrap();
    settle().await;
    let now = timelines.run(run.run_id).unwrap();
    assert_eq!(fired(&now), 2, "both entries at 0 s fired at once");

    tokio::time::sleep(Duration::from_millis(5_900)).await;
    assert_eq!(fired(&timelines.run(run.run_id).unwrap()), 2, "60 s at speed 10 is 6 s");
    tokio::time::sleep(Duration::from_millis(200)).await;
    settle().await;
    assert_eq!(fired(&timelines.run(run.run_id).unwrap()), 3);

    let done = timelines.finished(run.run_id).await.unwrap();
    assert_eq!(done.state, RunState::Completed);
    for entry in &done.entries {
        assert_eq!(entry.status, Some(IncidentStatus::Resolved), "{entry:?}");
        assert!(entry.mttr_seconds.is_some_and(|s| s > 0.0));
        assert_eq!(entry.root_cause_correct, Some(true), "{entry:?}");
    }
    assert!(done.entries[1].note.as_deref().unwrap().contains("family `disk`"));
    assert_eq!(done.score.healing_success, 1.0);
    assert_eq!(done.score.root_cause_accuracy, 1.0);
    assert_eq!(
        done.score.points,
        100.0 - 5.0 * f64::from(done.score.unnecessary_actions)
    );
}

#[tokio::test(start_paused = true)]
async fn a_paused_run_fires_nothing_until_it_resumes() {
    let timelines = timelines();
    let run = timelines
        .start(timelines.parse("three.json", THREE).unwrap(), Some(10.0), 1)
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(timelines.pause(run.run_id).unwrap().run_id, run.run_id);
    settle().await;
    assert_eq!(timelines.run(run.run_id).unwrap().state, RunState::Paused);
    tokio::time::sleep(Duration::from_secs(100)).await;
    assert_eq!(
        fired(&timelines.run(run.run_id).unwrap()),
        2,
        "the schedule's clock stopped"
    );

    timelines.resume(run.run_id).unwrap();
    tokio::time::sleep(Duration::from_millis(2_900)).await;
    assert_eq!(
        fired(&timelines.run(run.run_id).unwrap()),
        2,
        "3 s of schedule were left"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    settle().await;
    assert_eq!(fired(&timelines.run(run.run_id).unwrap()), 3);
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_run_fires_nothing_more_and_cannot_be_steered() {
    let timelines = timelines();
    let run = timelines
        .start(timelines.parse("three.json", THREE).unwrap(), Some(10.0), 1)
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    timelines.cancel(run.run_id).unwrap();
    settle().await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    let cancelled = timelines.run(run.run_id).unwrap();
    assert_eq!(cancelled.state, RunState::Cancelled);
    assert_eq!(fired(&cancelled), 2);
    assert_eq!(timelines.resume(run.run_id), Err(RunError::Finished("cancelled")));
    assert_eq!(timelines.pause(Uuid::nil()), Err(RunError::UnknownRun(Uuid::nil())));
}

#[tokio::test(start_paused = true)]
async fn two_runs_at_once_keep_their_own_schedules() {
    let timelines = timelines();
    let slow = timelines
        .start(timelines.parse("three.json", THREE).unwrap(), Some(1.0), 1)
        .unwrap();
    let fast = timelines
        .start(timelines.parse("three.json", THREE).unwrap(), Some(60.0), 2)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    settle().await;
    assert_eq!(fired(&timelines.run(fast.run_id).unwrap()), 3);
    assert_eq!(fired(&timelines.run(slow.run_id).unwrap()), 2);
}

#[tokio::test(start_paused = true)]
async fn every_built_in_timeline_runs_to_a_scored_end() {
    let timelines = timelines();
    for summary in timelines.list() {
        let timeline = timelines.find(&summary.id).unwrap().clone();
        let run = timelines.start(timeline, Some(1_000.0), 3).unwrap();
        let done = timelines.finished(run.run_id).await.unwrap();
        assert_eq!(done.state, RunState::Completed, "{}", summary.id);
        for entry in &done.entries {
            assert!(entry.refused.is_none(), "{}: {entry:?}", summary.id);
            assert!(
                entry.status.is_some_and(IncidentStatus::is_terminal),
                "{}: {entry:?}",
                summary.id
            );
        }
        assert!(done.score.points > 0.0, "{}: {:?}", summary.id, done.score);
    }
}

#[tokio::test(start_paused = true)]
async fn an_unknown_timeline_is_named_with_the_closest_one() {
    let timelines = timelines();
    assert_eq!(
        timelines.find("busyday").unwrap_err().to_string(),
        "no timeline `busyday`; did you mean `busy_day`?"
    );
}

#[test]
fn the_score_weighs_root_cause_healing_and_mistakes() {
    let entry = |correct: bool, status: IncidentStatus, unnecessary: u32, rollbacks: u32| RunEntry {
        scheduled: crate::protocol::ScheduledEntry {
            delay_seconds: 0.0,
            kind: crate::protocol::EntryKind::Predefined,
            source: "x".into(),
            service_name: None,
            expected_severity: None,
            comment: String::new(),
        },
        incident_id: Some(Uuid::new_v4()),
        title: None,
        status: Some(status),
        refused: None,
        note: None,
        mttr_seconds: Some(10.0),
        root_cause_correct: Some(correct),
        unnecessary_actions: Some(unnecessary),
        rollbacks: Some(rollbacks),
        approval_wait_seconds: Some(4.5),
    };
    let score = score(&[
        entry(true, IncidentStatus::Resolved, 0, 0),
        entry(false, IncidentStatus::Resolved, 1, 1),
        entry(true, IncidentStatus::Failed, 0, 0),
        entry(true, IncidentStatus::Resolved, 0, 0),
    ]);
    assert_eq!(score.root_cause_accuracy, 0.75);
    assert_eq!(score.healing_success, 0.75);
    assert_eq!(score.mean_mttr_seconds, Some(10.0));
    assert_eq!(score.rollbacks, 1);
    assert_eq!(score.approval_wait_seconds, 18.0);
    assert_eq!(
        score.points, 65.0,
        "75 less 5 for the unnecessary action and 5 for the rollback"
    );
}

/// Every failure family, generated and run on its own twin: the agents
/// resolve it, and name the root cause the generator put there.
#[tokio::test(start_paused = true)]
async fn every_generator_family_runs_on_the_twin_and_the_agents_resolve_it() {
    let timelines = timelines();
    let generator = BuiltinGenerator::embedded(Arc::clone(timelines.inner.engine.topology())).unwrap();
    let incidents: Vec<String> = generator
        .families()
        .iter()
        .map(|family| {
            format!(
                r#"{{"delay_seconds": 0, "type": "llm_generated", "llm_prompt": "{}", "comment": "{}"}}"#,
                family.keywords[0], family.id
            )
        })
        .collect();
    let json = format!(
        r#"{{"name": "Every family", "duration_minutes": 1, "incidents": [{}]}}"#,
        incidents.join(",")
    );
    let run = timelines
        .start(timelines.parse("families.json", &json).unwrap(), Some(100.0), 9)
        .unwrap();
    let done = timelines.finished(run.run_id).await.unwrap();
    let mut misses = Vec::new();
    for entry in &done.entries {
        assert!(entry.refused.is_none(), "{entry:?}");
        if entry.status != Some(IncidentStatus::Resolved) || entry.root_cause_correct != Some(true) {
            misses.push(format!(
                "{}: {:?}, root cause right: {:?}",
                entry.scheduled.comment, entry.status, entry.root_cause_correct
            ));
        }
    }
    assert!(misses.is_empty(), "{misses:#?}");
}

#[tokio::test(start_paused = true)]
async fn a_running_run_reports_its_clock_between_incidents() {
    let timelines = timelines();
    let mut live = timelines.inner.engine.feed(None).live;
    let run = timelines
        .start(timelines.find("busy_day").unwrap().clone(), Some(2.0), 1)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(10_100)).await;
    let mut clocks = Vec::new();
    while let Ok(event) = live.try_recv() {
        if let ServerMessage::TimelineProgress { run: progress } = &event.message
            && progress.run_id == run.run_id
        {
            clocks.push(progress.elapsed_seconds.round() as u64);
        }
    }
    // Every 5 s at speed 2: 10 and 20 schedule seconds, with nothing due.
    assert!(clocks.ends_with(&[10, 20]), "{clocks:?}");
}

/// A game day under the default policy: the facilitator approves the plan
/// that needs a person, and the run records how long that took.
#[tokio::test(start_paused = true)]
async fn a_run_counts_the_time_plans_waited_for_approval() {
    let engine = Engine::new(EngineConfig {
        seed: Some(5),
        policy: Arc::new(crate::governance::Policy::builtin("default").unwrap()),
        ..EngineConfig::default()
    })
    .unwrap();
    let generator = BuiltinGenerator::embedded(Arc::clone(engine.topology())).unwrap();
    let timelines = Timelines::new(engine.clone(), Arc::new(generator)).unwrap();
    let mut live = engine.feed(None).live;
    let one = r#"{"name": "One", "duration_minutes": 1, "incidents": [
        {"delay_seconds": 0, "type": "predefined", "scenario_id": "database_cascade", "comment": "needs a person"}
    ]}"#;
    let run = timelines
        .start(timelines.parse("one.json", one).unwrap(), None, 1)
        .unwrap();
    let approval = loop {
        let event = live.recv().await.unwrap();
        if let ServerMessage::ApprovalRequested { approval } = &event.message {
            break approval.clone();
        }
    };
    tokio::time::sleep(Duration::from_secs(15)).await;
    engine
        .approvals()
        .decide(
            approval.approval_id,
            crate::governance::HumanDecision {
                approve: true,
                approver: "facilitator".into(),
                comment: None,
                at: chrono::Utc::now(),
            },
        )
        .unwrap();
    let done = timelines.finished(run.run_id).await.unwrap();
    assert_eq!(done.entries[0].status, Some(IncidentStatus::Resolved));
    assert_eq!(done.entries[0].approval_wait_seconds, Some(15.0));
    assert_eq!(done.entries[0].rollbacks, Some(0));
    assert_eq!(done.score.approval_wait_seconds, 15.0);
}
