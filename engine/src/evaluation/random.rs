//! Scenarios nobody wrote by hand: drawn at random from the estate's own
//! vocabulary, so the evaluation is not only the catalog the signature
//! library was written alongside.
//!
//! Each scenario is a random fault kind on a random service it can hit, at
//! an intensity from 0.2 to 1, with a random ramp (onset) and a random age
//! when the incident opens (lead). Some have a second fault, of another
//! kind, on another service; the answer key's root cause is then the one
//! with the larger impact, and both playbooks' actions are necessary. Some
//! report misleading services: the incident names services the faults are
//! not on. Every scenario passes the catalog's own checks.
//!
//! A fault's impact is measured, not guessed from its intensity (a crash
//! loop at 0.5 hurts more than CPU saturation at 0.6): each fault runs
//! alone on the same fresh estate until its incident would be reported,
//! and its impact is how far that leaves the estate from its objectives
//! (a service down counts 2, degraded 1, each other objective missed 1).

use std::sync::Arc;

use rand::{Rng, SeedableRng, rngs::SmallRng, seq::IndexedRandom};

use crate::{
    catalog::{AnswerKey, Catalog, Scenario},
    protocol::{FaultKind, RootCause, Severity},
    twin::{Estate, FaultSpec, Topology},
};

/// How often a scenario has a second fault.
const COMPOUND_SHARE: f64 = 0.2;
/// How often a scenario reports services the faults are not on.
const MISLEADING_SHARE: f64 = 0.2;
/// The intensities drawn.
const INTENSITY: std::ops::RangeInclusive<f64> = 0.2..=1.0;
/// A fault's age when its incident opens, in seconds.
const LEAD_SECONDS: std::ops::RangeInclusive<f64> = 20.0..=150.0;

/// One generated scenario, and what it is, for the report.
#[derive(Debug, Clone, PartialEq)]
pub struct RandomScenario {
    /// The scenario, checked.
    pub scenario: Scenario,
    /// The answer key's root cause's fault kind.
    pub kind: FaultKind,
    /// Whether it has a second fault.
    pub compound: bool,
    /// Whether its reported services are misleading.
    pub misleading: bool,
    /// With two faults, each one's measured impact ([`impact`]), in the
    /// scenario's order; empty with one.
    pub impacts: Vec<u32>,
}

/// A value drawn from `range`, to the hundredth.
fn draw(rng: &mut SmallRng, range: std::ops::RangeInclusive<f64>) -> f64 {
    (rng.random_range(range) * 100.0).round() / 100.0
}

/// A fault of `kind` on `target`: random intensity, age at open, and a
/// ramp no longer than that age (an incident is reported once the fault
/// shows, as alerts fire on symptoms).
fn fault(rng: &mut SmallRng, (kind, target): &(FaultKind, String)) -> FaultSpec {
    let lead_seconds = draw(rng, LEAD_SECONDS).round();
    FaultSpec {
        kind: *kind,
        target: target.clone(),
        intensity: draw(rng, INTENSITY),
        onset_seconds: draw(rng, 0.0..=lead_seconds).round(),
        lead_seconds,
        duration_seconds: None,
    }
}

/// How far `fault`, alone on a fresh estate of `topology` (from
/// `estate_seed`), leaves it from its objectives when its incident would be
/// reported: a service down counts 2, degraded 1, and each objective missed
/// by a slow resource (memory or disk climbing, a certificate, accuracy,
/// drift) 1.
pub fn impact(topology: &Arc<Topology>, fault: &FaultSpec, estate_seed: u64) -> u32 {
    let mut estate = Estate::new(Arc::clone(topology), estate_seed, crate::engine::START_OF_DAY);
    estate.inject(fault).expect("generated faults fit their targets");
    estate.advance(crate::engine::REPORTED_AFTER_TICKS);
    let window = crate::orchestrator::VERIFY_WINDOW;
    let health: u32 = estate.healths(window).iter().map(|h| h.harm()).sum();
    // The misses also name every unhealthy service: count only the rest.
    let others = estate.missed(window).iter().filter(|m| !m.is_health()).count() as u32;
    health + others
}

/// How bad it looks from its strongest fault.
fn severity(intensity: f64) -> Severity {
    match intensity {
        i if i >= 0.8 => Severity::Critical,
        i if i >= 0.6 => Severity::High,
        i if i >= 0.4 => Severity::Medium,
        _ => Severity::Low,
    }
}

/// `count` random scenarios for `topology`, from `seed` (the same seed
/// gives the same scenarios). Remediations come from `catalog`'s
/// playbooks.
pub fn random_scenarios(catalog: &Catalog, topology: &Arc<Topology>, count: usize, seed: u64) -> Vec<RandomScenario> {
    let placements = topology.fault_placements();
    assert!(!placements.is_empty(), "an estate where no fault can happen");
    let mut rng = SmallRng::seed_from_u64(seed);
    (0..count)
        .map(|n| {
            let placement = placements.choose(&mut rng).expect("not empty");
            let first = fault(&mut rng, placement);
            let mut faults = vec![first];
            if rng.random_bool(COMPOUND_SHARE) {
                let others: Vec<_> = (placements.iter())
                    .filter(|(kind, target)| *kind != faults[0].kind && *target != faults[0].target)
                    .collect();
                if let Some(other) = others.choose(&mut rng) {
                    faults.push(fault(&mut rng, other));
                }
            }
            let misleading = rng.random_bool(MISLEADING_SHARE);
            let estate_seed = rng.random();
            let generated = build(n, catalog, topology, faults, misleading, estate_seed, &mut rng);
            if let Err(reason) = generated.scenario.check(topology) {
                panic!("a generated scenario must pass the catalog's checks: {reason}: {generated:?}");
            }
            generated
        })
        .collect()
}

/// The scenario of `faults`: its answer key, reported services and names.
fn build(
    n: usize,
    catalog: &Catalog,
    topology: &Arc<Topology>,
    faults: Vec<FaultSpec>,
    misleading: bool,
    estate_seed: u64,
    rng: &mut SmallRng,
) -> RandomScenario {
    let impacts: Vec<u32> = match &faults[..] {
        [_] => Vec::new(),
        _ => faults.iter().map(|f| impact(topology, f, estate_seed)).collect(),
    };
    // The larger impact; on a tie, the more intense fault.
    let strongest = (faults.iter().enumerate())
        .max_by(|(a, fa), (b, fb)| {
            let impact = |i: &usize| impacts.get(*i).copied().unwrap_or(0);
            impact(a).cmp(&impact(b)).then(fa.intensity.total_cmp(&fb.intensity))
        })
        .map(|(_, fault)| fault)
        .expect("at least one fault");
    let root_cause = RootCause {
        service: strongest.target.clone(),
        fault: strongest.kind,
    };
    // Intensity is no measure across kinds: equal impact, either is right.
    let equally_strong = (faults.iter().zip(&impacts))
        .filter(|(f, impact)| Some(**impact) == impacts.iter().max().copied() && f.target != strongest.target)
        .map(|(f, _)| RootCause {
            service: f.target.clone(),
            fault: f.kind,
        })
        .collect();
    let mut remediations = Vec::new();
    for fault in &faults {
        let playbook = catalog
            .playbook_for(fault.kind)
            .expect("a playbook for every fault kind");
        for step in &playbook.step {
            if !remediations.contains(&step.action) {
                remediations.push(step.action);
            }
        }
    }
    let affected_services = if misleading {
        let elsewhere: Vec<&str> = (topology.services.iter())
            .map(|spec| spec.name.as_str())
            .filter(|name| faults.iter().all(|f| f.target != *name))
            .collect();
        let count = rng.random_range(1..=2);
        (elsewhere.choose_multiple(rng, count))
            .map(|s| (*s).to_owned())
            .collect()
    } else {
        vec![root_cause.service.clone()]
    };
    let kind = root_cause.fault;
    let title = match &faults[..] {
        [only] => format!("{} on {}", capitalized(only.kind.label()), only.target),
        _ => faults
            .iter()
            .map(|f| format!("{} on {}", f.kind.label(), f.target))
            .collect::<Vec<_>>()
            .join(" during "),
    };
    RandomScenario {
        scenario: Scenario {
            id: format!("random_{n}"),
            label: format!("Random {n}"),
            title: capitalized(&title),
            severity: severity(strongest.intensity),
            affected_services,
            primary: false,
            answer: AnswerKey {
                root_cause,
                equally_strong,
                remediations,
            },
            faulty_voters: Vec::new(),
            fault: faults.clone(),
        },
        kind,
        compound: faults.len() > 1,
        misleading,
        impacts,
    }
}

/// `text` with its first letter in upper case.
fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generated(count: usize, seed: u64) -> Vec<RandomScenario> {
        let topology = Arc::new(Topology::embedded().unwrap());
        random_scenarios(&Catalog::embedded(&topology).unwrap(), &topology, count, seed)
    }

    #[test]
    fn the_same_seed_gives_the_same_scenarios_and_another_seed_others() {
        assert_eq!(generated(50, 7), generated(50, 7));
        assert_ne!(generated(50, 7), generated(50, 8));
    }

    #[test]
    fn scenarios_cover_every_fault_kind_with_compound_and_misleading_ones() {
        let scenarios = generated(1_000, 1);
        for kind in FaultKind::ALL {
            assert!(scenarios.iter().any(|s| s.kind == kind), "{kind:?} never drawn");
        }
        let compound = scenarios.iter().filter(|s| s.compound).count();
        let misleading = scenarios.iter().filter(|s| s.misleading).count();
        assert!((150..=250).contains(&compound), "{compound} compound of 1,000");
        assert!((150..=250).contains(&misleading), "{misleading} misleading of 1,000");
    }

    #[test]
    fn every_scenario_is_within_the_stated_ranges_and_its_answer_is_its_strongest_fault() {
        let mut overruled = 0;
        for generated in generated(1_000, 3) {
            let scenario = &generated.scenario;
            for fault in &scenario.fault {
                assert!(INTENSITY.contains(&fault.intensity), "{fault:?}");
                assert!(LEAD_SECONDS.contains(&fault.lead_seconds), "{fault:?}");
                assert!(fault.onset_seconds <= fault.lead_seconds, "{fault:?}");
            }
            let root = &scenario.answer.root_cause;
            let answer = (scenario.fault.iter())
                .position(|f| f.target == root.service && f.kind == root.fault)
                .expect("the answer is one of the faults");
            if let [a, b] = &scenario.fault[..] {
                assert!(a.kind != b.kind && a.target != b.target, "{scenario:?}");
                let (mine, other) = (generated.impacts[answer], generated.impacts[1 - answer]);
                assert!(mine >= other, "the answer has the larger impact: {generated:?}");
                let weaker = scenario.fault[answer].intensity < scenario.fault[1 - answer].intensity;
                overruled += usize::from(weaker && mine > other);
            } else {
                assert!(generated.impacts.is_empty());
            }
            let on_a_fault = |name: &String| scenario.fault.iter().any(|f| &f.target == name);
            if generated.misleading {
                assert!(!scenario.affected_services.iter().any(on_a_fault), "{scenario:?}");
            } else {
                assert_eq!(scenario.affected_services, std::slice::from_ref(&root.service));
            }
        }
        assert!(overruled > 0, "measured impact sometimes overrules intensity");
    }

    /// The catalog's compound scenarios were written by hand: their answer
    /// keys must name the fault with the larger measured impact, as the
    /// generated ones do, on every estate.
    #[test]
    fn every_compound_catalog_scenario_pairs_two_kinds_on_two_services_and_names_the_stronger() {
        let topology = Arc::new(Topology::embedded().unwrap());
        let catalog = Catalog::embedded(&topology).unwrap();
        let compound: Vec<&Scenario> = (catalog.scenarios())
            .into_iter()
            .filter(|s| s.fault.len() > 1)
            .collect();
        assert!(compound.len() >= 6, "{} compound scenarios", compound.len());
        let mut pairs = Vec::new();
        for scenario in compound {
            let [a, b] = &scenario.fault[..] else {
                panic!("{}: two faults", scenario.id)
            };
            assert!(a.kind != b.kind && a.target != b.target, "{}", scenario.id);
            let mut pair = [a.kind, b.kind];
            pair.sort_by_key(|k| k.as_str());
            assert!(
                !pairs.contains(&pair),
                "{}: a pair of kinds already in the catalog",
                scenario.id
            );
            pairs.push(pair);
            let root = &scenario.answer.root_cause;
            let (answer, other) = if (a.target.as_str(), a.kind) == (root.service.as_str(), root.fault) {
                (a, b)
            } else {
                (b, a)
            };
            for seed in 1..=5 {
                let (mine, theirs) = (impact(&topology, answer, seed), impact(&topology, other, seed));
                assert!(
                    mine > theirs,
                    "{} on estate {seed}: impact {mine} against {theirs}",
                    scenario.id
                );
            }
            let remedies = |kind| &catalog.playbook_for(kind).unwrap().step;
            for step in remedies(a.kind).iter().chain(remedies(b.kind)) {
                assert!(
                    scenario.answer.remediations.contains(&step.action),
                    "{}: {:?}",
                    scenario.id,
                    step.action
                );
            }
        }
    }

    #[test]
    fn a_crash_loop_outweighs_a_more_intense_cpu_surge_and_impact_is_reproducible() {
        let topology = Arc::new(Topology::embedded().unwrap());
        let fault = |kind, target: &str, intensity| FaultSpec {
            kind,
            target: target.into(),
            intensity,
            onset_seconds: 0.0,
            lead_seconds: 60.0,
            duration_seconds: None,
        };
        let crash = impact(&topology, &fault(FaultKind::CrashLoop, "payment-service", 0.5), 1);
        let cpu = impact(&topology, &fault(FaultKind::CpuSaturation, "user-service", 0.6), 1);
        assert!(crash > cpu, "crash loop {crash} against CPU {cpu}");
        assert_eq!(
            impact(&topology, &fault(FaultKind::CrashLoop, "payment-service", 0.5), 1),
            crash
        );
    }
}
