//! The evaluation harness: runs every scenario of a catalog many times on
//! isolated twins and scores the swarm against the answer keys.
//!
//! - Root-cause accuracy: the first diagnosis's best hypothesis is the
//!   answer key's root cause (service and fault).
//! - Healing success: the incident ended `resolved` (or `watching`: left
//!   alone inside every objective) *and* its own estate met every
//!   objective at the end (the twin's truth, not the agents' word).
//! - Unnecessary actions: executed actions not among the answer key's
//!   remediations, over all executed actions.
//! - MTTR: mean simulated seconds from open to close.
//! - Worse: runs whose estate ended with some service (owned, in rotation)
//!   in a worse state than when the incident opened.
//!
//! Besides the catalog, it can run scenarios nobody wrote by hand
//! (`random.rs`), scored per fault kind.

mod healthy;
mod random;

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use serde::Serialize;
use tokio::sync::broadcast;
use uuid::Uuid;

pub use healthy::{HealthyEvaluation, watch_healthy};
pub use random::{RandomScenario, random_scenarios};

use crate::{
    Audit, Engine, EngineConfig, StartError, TwinMode,
    catalog::{AnswerKey, Catalog},
    clock::Speed,
    event_log::Published,
    protocol::{IncidentStatus, ServerMessage, Severity},
    request::{IncidentRequest, IncidentTitle, ServiceName},
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
    /// Runs that left some service worse than they found it.
    pub worse: usize,
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
    /// The catalog's scenarios with two faults at once, together (absent
    /// when it has none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compound: Option<ScenarioScore>,
    /// Scenarios nobody wrote by hand, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub random: Option<RandomEvaluation>,
    /// Healthy estates, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthy: Option<HealthyEvaluation>,
}

/// The random scenarios' scores.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RandomEvaluation {
    /// Scenarios generated (and run once each).
    pub scenarios: usize,
    /// Per root cause's fault kind.
    pub kinds: Vec<ScenarioScore>,
    /// Those with a second fault.
    pub compound: ScenarioScore,
    /// Those whose reported services are misleading.
    pub misleading: ScenarioScore,
    /// All of them.
    pub overall: ScenarioScore,
}

/// What to evaluate besides the catalog.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Extra {
    /// Scenarios generated from the seed, run once each.
    pub random: usize,
    /// Healthy estates watched for ten simulated minutes each, and as
    /// many incidents reported on a healthy estate.
    pub healthy: usize,
}

/// Simulated seconds each healthy estate is watched.
pub const HEALTHY_SECONDS: u64 = 600;

/// Runs every scenario of `catalog` `runs` times, and the `extra` runs,
/// all at once, on isolated twins at the highest speed, from `seed`.
/// `progress(done, total)` is called as incidents close.
pub async fn evaluate(
    catalog: Catalog,
    runs: usize,
    extra: Extra,
    seed: u64,
    progress: impl Fn(usize, usize),
) -> Result<Evaluation, StartError> {
    let topology = Arc::new(Topology::embedded()?);
    let generated = random_scenarios(&catalog, &topology, extra.random, seed);
    let engine = Engine::with_catalog(evaluation_config(seed), Arc::clone(&topology), catalog)?;
    let ids: Vec<String> = engine.scenarios().into_iter().map(|s| s.id).collect();
    // Subscribed before the first incident opens, so no close is missed.
    let mut live = engine.feed(None).live;
    // The catalog's first, so its runs draw the same estates with or
    // without random ones.
    let opened = open_every_run(&engine, &ids, runs);
    let opened_random = open_random(&engine, &generated);
    let reported = open_reported_on_healthy(&engine, &topology, extra.healthy, seed);
    let total = opened.len() + opened_random.len() + reported.len();
    wait_for_every_close(&engine, &mut live, total, progress).await;
    engine.shutdown(Duration::from_secs(5)).await;
    let healthy = (extra.healthy > 0).then(|| {
        let mut watched = watch_healthy(
            &engine.swarm().detection,
            &topology,
            extra.healthy,
            HEALTHY_SECONDS,
            seed,
        );
        watched.reported = reported.len();
        watched.actions = (reported.iter())
            .filter_map(|id| engine.audit(*id))
            .map(|audit| audit.executed.len())
            .sum();
        watched
    });

    let catalog = &engine.swarm().catalog;
    let audits = audits_by_scenario(&engine, opened);
    let answer = |id: &str| &catalog.scenario(id).expect("opened from the catalog").answer;
    let scores = (audits.iter())
        .map(|(id, audits)| score(id.clone(), audits.iter().map(|audit| (audit, answer(id)))))
        .collect();
    let compound_runs: Vec<(&Audit, &AnswerKey)> = (audits.iter())
        .filter(|(id, _)| catalog.scenario(id).is_some_and(|s| s.fault.len() > 1))
        .flat_map(|(id, audits)| audits.iter().map(|audit| (audit, answer(id))))
        .collect();
    let compound = (!compound_runs.is_empty()).then(|| score("two faults".into(), compound_runs.into_iter()));
    let random = (extra.random > 0).then(|| score_random(&engine, &generated, &opened_random));
    let mut evaluation = Evaluation::from_scores(runs, seed, scores, compound, random);
    evaluation.healthy = healthy;
    Ok(evaluation)
}

/// Opens `count` incidents on healthy estates, each reporting one service
/// picked from `seed`, as a person might by mistake; their ids.
fn open_reported_on_healthy(engine: &Engine, topology: &Topology, count: usize, seed: u64) -> Vec<Uuid> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed ^ 0x4ea1);
    (0..count)
        .map(|n| {
            let service = &topology.spec(rng.random_range(0..topology.len())).name;
            let request = IncidentRequest {
                title: IncidentTitle::parse(&format!("Reported slowness {n} on {service}")).expect("a valid title"),
                severity: Severity::Medium,
                affected_services: vec![ServiceName::parse(service, "service").expect("the estate's own name")],
                scenario_id: None,
            };
            let incident = engine
                .open_incident(request)
                .expect("an evaluation admits every incident");
            incident.id
        })
        .collect()
}

/// Opens every generated scenario once; the incidents' ids, in order.
fn open_random(engine: &Engine, generated: &[RandomScenario]) -> Vec<Uuid> {
    (generated.iter())
        .map(|g| {
            let incident = engine
                .open_scenario(&g.scenario, None)
                .expect("an evaluation admits every incident");
            incident.id
        })
        .collect()
}

/// The random scenarios' scores: per fault kind, compound, misleading and
/// overall.
fn score_random(engine: &Engine, generated: &[RandomScenario], opened: &[Uuid]) -> RandomEvaluation {
    let runs: Vec<(&RandomScenario, Audit)> = (generated.iter().zip(opened))
        .filter_map(|(g, id)| Some((g, engine.audit(*id)?)))
        .collect();
    let of = |label: &str, keep: &dyn Fn(&RandomScenario) -> bool| {
        let kept = runs.iter().filter(|(g, _)| keep(g));
        score(label.to_owned(), kept.map(|(g, audit)| (audit, &g.scenario.answer)))
    };
    let mut kinds: Vec<ScenarioScore> = crate::protocol::FaultKind::ALL
        .iter()
        .map(|&kind| of(kind.as_str(), &|g| g.kind == kind))
        .filter(|score| score.runs > 0)
        .collect();
    kinds.sort_by(|a, b| a.scenario.cmp(&b.scenario));
    RandomEvaluation {
        scenarios: generated.len(),
        kinds,
        compound: of("two faults", &|g| g.compound),
        misleading: of("misleading reports", &|g| g.misleading),
        overall: of("overall", &|_| true),
    }
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

/// The scores of `runs`, each an audit against its answer key, under
/// `label`.
fn score<'a>(label: String, runs: impl Iterator<Item = (&'a Audit, &'a AnswerKey)>) -> ScenarioScore {
    let mut score = ScenarioScore {
        scenario: label,
        runs: 0,
        root_cause_accuracy: 0.0,
        healing_success: 0.0,
        unnecessary_actions: 0,
        actions: 0,
        worse: 0,
        mttr_seconds: 0.0,
    };
    let (mut correct, mut healed, mut seconds) = (0usize, 0usize, 0.0);
    for (audit, answer) in runs {
        score.runs += 1;
        correct += usize::from(answer.names_the_strongest(audit.first_hypothesis.as_ref()));
        // Watching left alone an estate that met every objective: nothing
        // was there to heal, and nothing was broken.
        let closed_well = matches!(audit.status, IncidentStatus::Resolved | IncidentStatus::Watching);
        healed += usize::from(closed_well && audit.healed == Some(true));
        score.actions += audit.executed.len();
        score.unnecessary_actions += (audit.executed.iter())
            .filter(|k| !answer.remediations.contains(k))
            .count();
        score.worse += usize::from(!audit.worsened.is_empty());
        seconds += audit.elapsed.as_secs_f64();
    }
    let n = score.runs.max(1) as f64;
    score.root_cause_accuracy = correct as f64 / n;
    score.healing_success = healed as f64 / n;
    score.mttr_seconds = seconds / n;
    score
}

impl Evaluation {
    /// The whole evaluation from its per-scenario `scores`: the overall
    /// figures weigh each scenario by its runs.
    fn from_scores(
        runs: usize,
        seed: u64,
        scores: Vec<ScenarioScore>,
        compound: Option<ScenarioScore>,
        random: Option<RandomEvaluation>,
    ) -> Self {
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
            compound,
            random,
            healthy: None,
        }
    }

    /// The table people read: the catalog's, then the random scenarios'
    /// per fault kind when there are any.
    pub fn table(&self) -> String {
        let mut out = String::new();
        header(&mut out, "scenario");
        for s in &self.scenarios {
            row(&mut out, s);
        }
        let total = ScenarioScore {
            scenario: "overall".into(),
            runs: self.scenarios.iter().map(|s| s.runs).sum(),
            root_cause_accuracy: self.root_cause_accuracy,
            healing_success: self.healing_success,
            unnecessary_actions: self.scenarios.iter().map(|s| s.unnecessary_actions).sum(),
            actions: self.scenarios.iter().map(|s| s.actions).sum(),
            worse: self.scenarios.iter().map(|s| s.worse).sum(),
            mttr_seconds: self.mttr_seconds,
        };
        row(&mut out, &total);
        if let Some(compound) = &self.compound {
            row(&mut out, compound);
        }
        if let Some(random) = &self.random {
            out.push('\n');
            header(&mut out, "random, by fault kind");
            for s in random
                .kinds
                .iter()
                .chain([&random.compound, &random.misleading, &random.overall])
            {
                row(&mut out, s);
            }
        }
        if let Some(healthy) = &self.healthy {
            use std::fmt::Write;
            let _ = writeln!(
                out,
                "\nhealthy estate: {} runs of {} simulated minutes, checked every {} s ({} checks): \
                 {} false incidents ({} checks alarmed); {} incidents reported on a healthy estate ran {} actions",
                healthy.runs,
                healthy.seconds / 60,
                healthy::CHECK_EVERY,
                healthy.checks,
                healthy.false_incidents,
                healthy.false_alarms,
                healthy.reported,
                healthy.actions
            );
            for example in &healthy.examples {
                let _ = writeln!(out, "  {example}");
            }
        }
        out
    }
}

fn header(out: &mut String, first: &str) {
    use std::fmt::Write;
    let _ = writeln!(
        out,
        "{first:<38} {:>5} {:>11} {:>8} {:>12} {:>6} {:>8}",
        "runs", "root cause", "healed", "unnecessary", "worse", "MTTR s"
    );
}

fn row(out: &mut String, s: &ScenarioScore) {
    use std::fmt::Write;
    let _ = writeln!(
        out,
        "{:<38} {:>5} {:>10.1}% {:>7.1}% {:>6}/{:<5} {:>6} {:>8.1}",
        s.scenario,
        s.runs,
        s.root_cause_accuracy * 100.0,
        s.healing_success * 100.0,
        s.unnecessary_actions,
        s.actions,
        s.worse,
        s.mttr_seconds
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The quality bar, on a small sample so the test stays quick; the
    /// README records a larger run.
    #[tokio::test(start_paused = true)]
    async fn the_swarm_meets_its_quality_bar_on_every_scenario() {
        let topology = Topology::embedded().unwrap();
        let evaluation = evaluate(
            Catalog::embedded(&topology).unwrap(),
            3,
            Extra::default(),
            11,
            |_, _| {},
        )
        .await
        .unwrap();
        println!("{}", evaluation.table());
        assert_eq!(evaluation.scenarios.len(), 23);
        let compound = evaluation
            .compound
            .as_ref()
            .expect("the catalog has compound scenarios");
        assert_eq!(compound.runs, 6 * 3);
        assert!(evaluation.root_cause_accuracy >= 0.95, "{}", evaluation.table());
        assert!(evaluation.healing_success >= 0.95, "{}", evaluation.table());
        assert!(evaluation.unnecessary_action_rate < 0.05, "{}", evaluation.table());
        assert_eq!(evaluation.random, None, "none asked for");
    }

    #[tokio::test(start_paused = true)]
    async fn healthy_estates_raise_no_false_incident_and_reported_ones_run_no_action() {
        let topology = Topology::embedded().unwrap();
        let extra = Extra { random: 0, healthy: 4 };
        let evaluation = evaluate(Catalog::embedded(&topology).unwrap(), 1, extra, 13, |_, _| {})
            .await
            .unwrap();
        let healthy = evaluation.healthy.as_ref().expect("asked for");
        assert_eq!((healthy.runs, healthy.reported), (4, 4));
        assert!(healthy.checks >= 4 * 50, "{healthy:?}");
        assert_eq!((healthy.false_incidents, healthy.actions), (0, 0), "{healthy:?}");
        assert!(
            evaluation
                .table()
                .contains("healthy estate: 4 runs of 10 simulated minutes")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn random_scenarios_are_scored_per_fault_kind_beside_the_catalog() {
        let topology = Arc::new(Topology::embedded().unwrap());
        let catalog = Catalog::embedded(&topology).unwrap();
        let generated = random_scenarios(&catalog, &topology, 60, 5);
        let extra = Extra { random: 60, healthy: 0 };
        let evaluation = evaluate(catalog, 1, extra, 5, |_, _| {}).await.unwrap();
        let random = evaluation.random.as_ref().expect("asked for");
        println!("{}", evaluation.table());
        assert_eq!(evaluation.scenarios.len(), 23, "the catalog too");
        assert_eq!((random.scenarios, random.overall.runs), (60, 60));
        assert_eq!(random.kinds.iter().map(|k| k.runs).sum::<usize>(), 60);
        for kind in &random.kinds {
            let drawn = generated.iter().filter(|g| g.kind.as_str() == kind.scenario).count();
            assert_eq!(kind.runs, drawn, "{}", kind.scenario);
        }
        assert_eq!(random.compound.runs, generated.iter().filter(|g| g.compound).count());
        assert_eq!(
            random.misleading.runs,
            generated.iter().filter(|g| g.misleading).count()
        );
        let table = evaluation.table();
        assert!(
            table.contains("random, by fault kind") && table.contains("two faults"),
            "{table}"
        );
    }
}
