//! The incident memory end to end: the same scenario run again and again
//! gets faster, the feed says why, and a fix that failed is not repeated.

use std::{path::Path, sync::Arc, time::Duration};

use engine::{
    Engine, EngineConfig, TwinMode,
    catalog::Catalog,
    clock::Speed,
    protocol::{ActionDetails, AgentType, Diagnosis, FixOutcome, IncidentStatus, ServerMessage},
    twin::Topology,
};
use uuid::Uuid;

fn engine(catalog: Option<&str>, seed: u64) -> Engine {
    let topology = Arc::new(Topology::embedded().unwrap());
    let catalog = match catalog {
        Some(dir) => Catalog::with_scenarios_from(Path::new(dir), &topology).unwrap(),
        None => Catalog::embedded(&topology).unwrap(),
    };
    Engine::with_catalog(
        EngineConfig {
            speed: Speed::new(Speed::MAX).unwrap(),
            seed: Some(seed),
            twin: TwinMode::Isolated,
            ..EngineConfig::default()
        },
        topology,
        catalog,
    )
    .unwrap()
}

/// One run of `scenario` to its close: its simulated seconds, the
/// diagnosis agent's last line, and its final status.
struct Run {
    id: Uuid,
    seconds: f64,
    /// What the last diagnosis found.
    diagnosis: Diagnosis,
    status: IncidentStatus,
}

async fn run(engine: &Engine, scenario: &str) -> Run {
    let mut live = engine.feed(None).live;
    let id = engine.trigger_scenario(scenario, None).unwrap().id;
    let mut diagnosis = Diagnosis::default();
    loop {
        let event = live.recv().await.unwrap();
        match &event.message {
            ServerMessage::AgentAction { incident_id, action }
                if *incident_id == id && action.agent_type == AgentType::Diagnosis && action.duration_ms.is_some() =>
            {
                if let ActionDetails::Diagnosis(found) = &action.details {
                    diagnosis = found.clone();
                }
            }
            ServerMessage::IncidentStatus {
                incident_id,
                status,
                resolution_time: Some(seconds),
                ..
            } if *incident_id == id => {
                return Run {
                    id,
                    seconds: *seconds,
                    diagnosis,
                    status: *status,
                };
            }
            _ => {}
        }
    }
}

/// Five runs of one scenario, on engines seeded differently: MTTR by run
/// number, averaged, falls as memory fills, and the feed says why.
#[tokio::test(start_paused = true)]
async fn running_a_scenario_five_times_makes_it_faster_and_the_feed_says_why() {
    const SEQUENCES: u64 = 8;
    let mut seconds = [0.0; 5];
    for seed in 0..SEQUENCES {
        let engine = engine(None, 100 + seed);
        let mut runs = Vec::new();
        for _ in 0..5 {
            runs.push(run(&engine, "cache_failure").await);
        }
        for (n, run) in runs.iter().enumerate() {
            assert_eq!(run.status, IncidentStatus::Resolved, "seed {seed}, run {}", n + 1);
            seconds[n] += run.seconds / SEQUENCES as f64;
        }
        assert_eq!(runs[0].diagnosis.similar_incidents, 0, "{:?}", runs[0].diagnosis);
        let record = runs[4].diagnosis.hypotheses[0].memory.as_ref().expect("a track record");
        assert_eq!(
            (runs[4].diagnosis.similar_incidents, record.healed, record.tried),
            (4, 4, 4),
            "{:?}",
            runs[4].diagnosis
        );
        assert_eq!(engine.memory().len(), 5);
        assert_eq!(engine.audit(runs[4].id).unwrap().rollbacks, 0);
        engine.shutdown(Duration::from_secs(1)).await;
    }
    println!("mean MTTR by run: {seconds:.1?}");
    let later = seconds[1..].iter().sum::<f64>() / 4.0;
    assert!(
        later <= seconds[0] - 1.0,
        "runs 2–5 average {later:.1} s against {:.1} s cold",
        seconds[0]
    );
    assert!(seconds[4] <= seconds[0] - 1.5, "{seconds:.1?}");
}

/// A fix that failed on a similar incident is not tried again. The swarm
/// no longer misjudges any scenario of the catalog or the faint set, so
/// the memory is given the failure: the first run's own record, its fix
/// marked failed, as a run whose fix did not heal would have left it.
#[tokio::test(start_paused = true)]
async fn a_fix_that_failed_on_a_similar_incident_is_not_repeated() {
    let engine = engine(Some("../docs/eval/faint"), 5);
    let first = run(&engine, "network_partition").await;
    let mut record = (engine.memory().export().entries.into_iter())
        .find(|e| e.incident_id == first.id)
        .expect("the first run is remembered");
    assert!(!record.fixes.is_empty(), "{record:?}");
    for fix in &mut record.fixes {
        fix.outcome = FixOutcome::Failed;
    }
    engine.memory().clear();
    engine.memory().record(record);

    let second = run(&engine, "network_partition").await;
    println!("cold: {:?}\nwarm: {:?}", first.diagnosis, second.diagnosis);
    let memory = engine.memory().export();
    let roots = |id: Uuid| -> Vec<(String, String)> {
        memory
            .entries
            .iter()
            .filter(|e| e.incident_id == id)
            .flat_map(|e| &e.fixes)
            .filter(|f| f.outcome == FixOutcome::Failed)
            .map(|f| (f.service.clone(), f.fault.clone()))
            .collect()
    };
    let tried = |id: Uuid| -> Vec<(String, String)> {
        (memory.entries.iter())
            .filter(|e| e.incident_id == id)
            .flat_map(|e| &e.fixes)
            .map(|f| (f.service.clone(), f.fault.clone()))
            .collect()
    };
    let (failed_before, tried_now) = (roots(first.id), tried(second.id));
    assert!(!failed_before.is_empty());
    for root in &tried_now {
        assert!(!failed_before.contains(root), "repeated the failed fix for {root:?}");
    }
    // Each fix that failed before is skipped now, with the record why.
    for (service, fault) in &failed_before {
        let skipped = second
            .diagnosis
            .skipped
            .iter()
            .find(|h| h.root.service == *service && h.root.fault.as_str() == fault)
            .unwrap_or_else(|| panic!("{fault} on {service} not skipped: {:?}", second.diagnosis));
        let record = skipped.memory.as_ref().expect("skipped for its record");
        assert!(record.tried > 0 && record.healed == 0, "{record:?}");
    }
    engine.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn cleared_memory_recalls_nothing_and_the_clearing_is_an_event() {
    let engine = engine(None, 3);
    run(&engine, "cache_failure").await;
    assert_eq!(engine.memory().len(), 1);
    let mut live = engine.feed(None).live;
    assert_eq!(engine.clear_memory("test"), 1);
    let cleared = live.recv().await.unwrap();
    assert!(
        matches!(&cleared.message, ServerMessage::MemoryCleared { removed: 1, by } if by == "test"),
        "{:?}",
        cleared.message
    );
    let again = run(&engine, "cache_failure").await;
    assert_eq!(again.diagnosis.similar_incidents, 0, "{:?}", again.diagnosis);
    engine.shutdown(Duration::from_secs(1)).await;
}
