//! The evaluation harness: runs every scenario of a catalog many times on
//! isolated twins and scores the swarm against the answer keys.
//!
//! - Root-cause accuracy: the first diagnosis's best hypothesis is the
//!   answer key's root cause (service and fault).
//! - Healing success: the incident ended `resolved` *and* its own estate
//!   met every objective at the end (the twin's truth, not the agents'
//!   word).
//! - Unnecessary actions: executed actions not among the answer key's
//!   remediations, over all executed actions.
//! - MTTR: mean simulated seconds from open to close.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use serde::Serialize;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::{
    Audit, Engine, EngineConfig, StartError, TwinMode,
    catalog::{AnswerKey, Catalog},
    clock::Speed,
    event_log::Published,
    protocol::{IncidentStatus, ServerMessage},
    twin::Topology,
};

/// One scenario's scores.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScenarioScore {
    /// The scenario.
    pub scenario: String,
    /// Runs.
    pub runs: usize,
    /// Share of runs whose first hypothesis was the true root cause.
    pub root_cause_accuracy: f64,
    /// Share of runs that ended resolved with the estate healthy.
    pub healing_success: f64,
    /// Executed actions outside the answer key.
    pub unnecessary_actions: usize,
    /// Executed actions.
    pub actions: usize,
    /// Mean simulated seconds to close.
    pub mttr_seconds: f64,
}

/// The whole evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    /// Runs per scenario.
    pub runs: usize,
    /// The seed everything derives from.
    pub seed: u64,
    /// Overall share of correct first hypotheses.
    pub root_cause_accuracy: f64,
    /// Overall share of healed incidents.
    pub healing_success: f64,
    /// Overall unnecessary actions over all actions.
    pub unnecessary_action_rate: f64,
    /// Overall mean simulated seconds to close.
    pub mttr_seconds: f64,
    /// Per scenario, by id.
    pub scenarios: Vec<ScenarioScore>,
}

/// Runs every scenario of `catalog` `runs` times, all at once, on isolated
/// twins at the highest speed. `progress(done, total)` is called as
/// incidents close.
pub async fn evaluate(
    catalog: Catalog,
    runs: usize,
    seed: u64,
    progress: impl Fn(usize, usize),
) -> Result<Evaluation, StartError> {
    let topology = Arc::new(Topology::embedded()?);
    let engine = Engine::with_catalog(evaluation_config(seed), topology, catalog)?;
    let ids: Vec<String> = engine.scenarios().into_iter().map(|s| s.id).collect();
    // Subscribed before the first incident opens, so no close is missed.
    let mut live = engine.feed(None).live;
    let opened = open_every_run(&engine, &ids, runs);
    wait_for_every_close(&engine, &mut live, opened.len(), progress).await;
    engine.shutdown(Duration::from_secs(5)).await;

    let catalog = &engine.swarm().catalog;
    let scores = audits_by_scenario(&engine, opened)
        .into_iter()
        .map(|(id, audits)| {
            let answer = &catalog.scenario(&id).expect("opened from the catalog").answer;
            score_scenario(id, &audits, answer)
        })
        .collect();
    Ok(Evaluation::from_scores(runs, seed, scores))
}

/// The engine's configuration for an evaluation seeded with `seed`.
fn evaluation_config(seed: u64) -> EngineConfig {
    EngineConfig {
        speed: Speed::new(Speed::MAX).expect("the maximum speed is valid"),
        seed: Some(seed),
        twin: TwinMode::Isolated,
        retain_events: 1_000,
        fanout_capacity: 1 << 16,
        commit_window: Duration::ZERO,
        // Every run at once: the evaluation measures judgement, not
        // queueing.
        agent_workers: 4_096,
        max_active_incidents: u64::MAX,
        webhook: None,
        agent_failure_rate: 0.0,
        // It judges the swarm's own diagnosis and healing, cold: runs
        // of one scenario must not teach each other.
        memory_capacity: 0,
        // Nobody is there to approve (the library's default policy).
        ..EngineConfig::default()
    }
}

/// Opens every scenario of `ids` `runs` times, round by round; returns each
/// incident's scenario and id, in the order opened.
fn open_every_run(engine: &Engine, ids: &[String], runs: usize) -> Vec<(String, Uuid)> {
    let mut opened = Vec::new();
    for _ in 0..runs {
        for id in ids {
            let incident = engine
                .trigger_scenario(id, None)
                .expect("the catalog's own scenarios open");
            opened.push((id.clone(), incident.id));
        }
    }
    opened
}

/// Waits until `total` incidents have closed (or the feed ends), calling
/// `progress(done, total)` at each close.
async fn wait_for_every_close(
    engine: &Engine,
    live: &mut broadcast::Receiver<Arc<Published>>,
    total: usize,
    progress: impl Fn(usize, usize),
) {
    let mut open = total;
    while open > 0 {
        match live.recv().await {
            Ok(event) => {
                if let ServerMessage::IncidentStatus { .. } = event.message {
                    open -= 1;
                    progress(total - open, total);
                }
            }
            // Closes were missed: the engine's own count of open incidents
            // is the truth.
            Err(broadcast::error::RecvError::Lagged(_)) => {
                open = engine.metrics().incidents_active as usize;
            }
            Err(broadcast::error::RecvError::Closed) => break,
        }
    }
}

/// The audits of the `opened` incidents, grouped by scenario id (incidents
/// without an audit are left out).
fn audits_by_scenario(engine: &Engine, opened: Vec<(String, Uuid)>) -> BTreeMap<String, Vec<Audit>> {
    let mut per: BTreeMap<String, Vec<Audit>> = BTreeMap::new();
    for (scenario, id) in opened {
        if let Some(audit) = engine.audit(id) {
            per.entry(scenario).or_default().push(audit);
        }
    }
    per
}

/// One scenario's scores: its `audits` against its `answer` key.
fn score_scenario(scenario: String, audits: &[Audit], answer: &AnswerKey) -> ScenarioScore {
    let n = audits.len().max(1) as f64;
    let correct = audits
        .iter()
        .filter(|a| a.first_hypothesis.as_ref() == Some(&answer.root_cause))
        .count();
    let healed = audits
        .iter()
        .filter(|a| a.status == IncidentStatus::Resolved && a.healed == Some(true))
        .count();
    let actions: usize = audits.iter().map(|a| a.executed.len()).sum();
    let unnecessary: usize = audits
        .iter()
        .flat_map(|a| &a.executed)
        .filter(|k| !answer.remediations.contains(k))
        .count();
    ScenarioScore {
        scenario,
        runs: audits.len(),
        root_cause_accuracy: correct as f64 / n,
        healing_success: healed as f64 / n,
        unnecessary_actions: unnecessary,
        actions,
        mttr_seconds: audits.iter().map(|a| a.elapsed.as_secs_f64()).sum::<f64>() / n,
    }
}

impl Evaluation {
    /// The whole evaluation from its per-scenario `scores`: the overall
    /// figures weigh each scenario by its runs.
    fn from_scores(runs: usize, seed: u64, scores: Vec<ScenarioScore>) -> Self {
        let total_runs: usize = scores.iter().map(|s| s.runs).sum();
        let weighted = |f: fn(&ScenarioScore) -> f64| {
            scores.iter().map(|s| f(s) * s.runs as f64).sum::<f64>() / total_runs.max(1) as f64
        };
        let actions: usize = scores.iter().map(|s| s.actions).sum();
        let unnecessary: usize = scores.iter().map(|s| s.unnecessary_actions).sum();
        Self {
            runs,
            seed,
            root_cause_accuracy: weighted(|s| s.root_cause_accuracy),
            healing_success: weighted(|s| s.healing_success),
            unnecessary_action_rate: if actions == 0 {
                0.0
            } else {
                unnecessary as f64 / actions as f64
            },
            mttr_seconds: weighted(|s| s.mttr_seconds),
            scenarios: scores,
        }
    }

    /// The table people read.
    pub fn table(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<28} {:>5} {:>11} {:>8} {:>12} {:>8}",
            "scenario", "runs", "root cause", "healed", "unnecessary", "MTTR s"
        );
        for s in &self.scenarios {
            let _ = writeln!(
                out,
                "{:<28} {:>5} {:>10.1}% {:>7.1}% {:>6}/{:<5} {:>8.1}",
                s.scenario,
                s.runs,
                s.root_cause_accuracy * 100.0,
                s.healing_success * 100.0,
                s.unnecessary_actions,
                s.actions,
                s.mttr_seconds
            );
        }
        let _ = writeln!(
            out,
            "{:<28} {:>5} {:>10.1}% {:>7.1}% {:>11.1}% {:>8.1}",
            "overall",
            self.scenarios.iter().map(|s| s.runs).sum::<usize>(),
            self.root_cause_accuracy * 100.0,
            self.healing_success * 100.0,
            self.unnecessary_action_rate * 100.0,
            self.mttr_seconds
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The quality bar, on a small sample so the test stays quick; the
    /// README records a larger run.
    #[tokio::test(start_paused = true)]
    async fn the_swarm_meets_its_quality_bar_on_every_scenario() {
        let topology = Topology::embedded().unwrap();
        let evaluation = evaluate(Catalog::embedded(&topology).unwrap(), 3, 11, |_, _| {})
            .await
            .unwrap();
        println!("{}", evaluation.table());
        assert_eq!(evaluation.scenarios.len(), 17);
        assert!(evaluation.root_cause_accuracy >= 0.95, "{}", evaluation.table());
        assert!(evaluation.healing_success >= 0.95, "{}", evaluation.table());
        assert!(evaluation.unnecessary_action_rate < 0.05, "{}", evaluation.table());
    }
}
