//! Scenarios nobody wrote by hand: drawn at random from the estate's own
//! vocabulary, so the evaluation is not only the catalog the signature
//! library was written alongside.
//!
//! Each scenario is a random fault kind on a random service it can hit, at
//! an intensity from 0.2 to 1, with a random ramp (onset) and a random age
//! when the incident opens (lead). Some have a second fault, of another
//! kind, on another service; the answer key's root cause is then the
//! stronger of the two, and both playbooks' actions are necessary. Some
//! report misleading services: the incident names services the faults are
//! not on. Every scenario passes the catalog's own checks.

use rand::{Rng, SeedableRng, rngs::SmallRng, seq::IndexedRandom};

use crate::{
    catalog::{AnswerKey, Catalog, Scenario},
    protocol::{FaultKind, RootCause, Severity},
    twin::{FaultSpec, Topology},
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
}

/// Every fault kind paired with every service of `topology` it can hit.
fn placements(topology: &Topology) -> Vec<(FaultKind, String)> {
    FaultKind::ALL
        .iter()
        .flat_map(|&kind| {
            (topology.services.iter())
                .filter(move |spec| kind.can_hit(spec))
                .map(move |spec| (kind, spec.name.clone()))
        })
        .collect()
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
pub fn random_scenarios(catalog: &Catalog, topology: &Topology, count: usize, seed: u64) -> Vec<RandomScenario> {
    let placements = placements(topology);
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
            let generated = build(n, catalog, topology, faults, misleading, &mut rng);
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
    topology: &Topology,
    faults: Vec<FaultSpec>,
    misleading: bool,
    rng: &mut SmallRng,
) -> RandomScenario {
    let strongest = (faults.iter())
        .max_by(|a, b| a.intensity.total_cmp(&b.intensity))
        .expect("at least one fault");
    let root_cause = RootCause {
        service: strongest.target.clone(),
        fault: strongest.kind,
    };
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
                remediations,
            },
            faulty_voters: Vec::new(),
            fault: faults.clone(),
        },
        kind,
        compound: faults.len() > 1,
        misleading,
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
        let topology = Topology::embedded().unwrap();
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
        for generated in generated(1_000, 3) {
            let scenario = &generated.scenario;
            for fault in &scenario.fault {
                assert!(INTENSITY.contains(&fault.intensity), "{fault:?}");
                assert!(LEAD_SECONDS.contains(&fault.lead_seconds), "{fault:?}");
                assert!(fault.onset_seconds <= fault.lead_seconds, "{fault:?}");
            }
            let root = &scenario.answer.root_cause;
            let strongest = scenario.fault.iter().map(|f| f.intensity).fold(0.0, f64::max);
            assert!(
                (scenario.fault.iter())
                    .any(|f| f.target == root.service && f.kind == root.fault && f.intensity == strongest)
            );
            if let [a, b] = &scenario.fault[..] {
                assert!(a.kind != b.kind && a.target != b.target, "{scenario:?}");
            }
            let on_a_fault = |name: &String| scenario.fault.iter().any(|f| &f.target == name);
            if generated.misleading {
                assert!(!scenario.affected_services.iter().any(on_a_fault), "{scenario:?}");
            } else {
                assert_eq!(scenario.affected_services, std::slice::from_ref(&root.service));
            }
        }
    }
}
