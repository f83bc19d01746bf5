use proptest::prelude::*;

use super::*;

fn estate(seed: u64) -> Estate {
    Estate::new(Arc::new(Topology::embedded().unwrap()), seed, 10.0 * 3600.0)
}

/// `kind` at full strength on `target`, showing for 30 s already.
pub(super) fn fault(kind: FaultKind, target: &str) -> FaultSpec {
    FaultSpec::new(kind, target)
}

fn act(kind: ActionKind, target: &str) -> Remediation {
    Remediation {
        kind,
        target: target.into(),
    }
}

/// The remediations that fix each fault on `target`: the physics' answer
/// key, independent of the playbooks and scenario files.
fn cures(estate: &Estate, kind: FaultKind, target: &str) -> Vec<Vec<Remediation>> {
    let one = |k| vec![vec![act(k, target)]];
    match kind {
        FaultKind::ConnectionPoolExhaustion => one(ActionKind::ScaleConnectionPool),
        FaultKind::MemoryLeak | FaultKind::SlowQuery | FaultKind::CrashLoop => one(ActionKind::RollbackDeploy),
        FaultKind::CpuSaturation => one(ActionKind::ScaleOut),
        FaultKind::DependencyTimeout => {
            let t = estate.topology();
            let index = t.index(target).unwrap();
            vec![
                t.callers(index)
                    .filter(|&c| t.spec(c).owned)
                    .map(|c| act(ActionKind::EnableCircuitBreaker, &t.spec(c).name))
                    .collect(),
            ]
        }
        FaultKind::NetworkPartition => one(ActionKind::FailoverDatabase),
        FaultKind::DiskExhaustion => {
            let mut options = one(ActionKind::FreeDisk);
            // Moving traffic to a standby on another disk also works; the
            // full disk is then out of rotation.
            let t = estate.topology();
            if t.spec(t.index(target).unwrap()).replica.is_some() {
                options.push(vec![act(ActionKind::FailoverDatabase, target)]);
            }
            options
        }
        FaultKind::CertificateExpiry => one(ActionKind::RenewCertificate),
        FaultKind::CacheFailure => one(ActionKind::RestartCache),
        FaultKind::ModelLatency => one(ActionKind::EnableSafeMode),
        FaultKind::ModelAccuracyDrop => vec![
            vec![act(ActionKind::RollbackModel, target)],
            vec![act(ActionKind::EnableSafeMode, target)],
        ],
        FaultKind::DataDrift => one(ActionKind::TriggerRetraining),
        FaultKind::AgentHeartbeatLoss => one(ActionKind::RestartAgent),
    }
}

/// Every (fault, target) pair the estate admits.
fn placements() -> Vec<(FaultKind, String)> {
    Topology::embedded().unwrap().fault_placements()
}

#[test]
fn a_healthy_estate_meets_its_objectives_at_every_hour() {
    for hour in (0..24).step_by(2) {
        let mut estate = Estate::new(
            Arc::new(Topology::embedded().unwrap()),
            hour,
            f64::from(hour as u32) * 3600.0,
        );
        estate.advance(60);
        assert!(estate.slos_met(30), "at {hour}:00: {:?}", estate.violations(30));
    }
}

#[test]
fn traffic_follows_the_time_of_day() {
    let rps = |hour: f64| {
        let e = Estate::new(Arc::new(Topology::embedded().unwrap()), 3, hour * 3600.0);
        let gateway = e.service_named("api-gateway").unwrap();
        gateway.telemetry.recent(Metric::Rps, 30).iter().sum::<f64>() / 30.0
    };
    assert!(
        rps(12.0) > 1.4 * rps(0.0),
        "noon {} vs midnight {}",
        rps(12.0),
        rps(0.0)
    );
}

#[test]
fn a_saturated_database_raises_latency_and_errors_in_its_callers() {
    let mut estate = estate(2);
    let before = |e: &Estate, name: &str, m| e.service_named(name).unwrap().telemetry.latest().get(m);
    let caller_errors = before(&estate, "order-service", Metric::ErrorRate);
    estate
        .inject(&fault(FaultKind::ConnectionPoolExhaustion, "postgres-primary"))
        .unwrap();
    estate.advance(5);
    let db = estate.service_named("postgres-primary").unwrap().telemetry.latest();
    assert!(db.get(Metric::PoolUsage) > 0.9, "{}", db.get(Metric::PoolUsage));
    for caller in ["order-service", "user-service", "payment-service", "api-gateway"] {
        let errors = before(&estate, caller, Metric::ErrorRate);
        assert!(errors > 0.05 && errors > 10.0 * caller_errors, "{caller}: {errors}");
    }
    // A service that reaches the primary only through cache misses is hit
    // far less than its direct callers.
    let inventory = before(&estate, "inventory-service", Metric::ErrorRate);
    let order = before(&estate, "order-service", Metric::ErrorRate);
    assert!(inventory < order / 4.0, "{inventory} vs {order}");
}

#[test]
fn every_fault_kind_breaks_an_objective() {
    for (kind, target) in placements() {
        let mut estate = estate(4);
        estate.inject(&fault(kind, &target)).unwrap();
        estate.advance(20);
        assert!(!estate.slos_met(5), "{kind:?} on {target} left every objective met");
    }
}

#[test]
fn worse_than_names_the_services_a_fault_took_down_and_not_those_out_of_rotation() {
    let mut estate = estate(5);
    estate.advance(5);
    let before = estate.healths(4);
    assert!(before.iter().all(|h| *h == HealthState::Healthy), "{before:?}");
    assert!(estate.worse_than(&before, 4).is_empty(), "nothing happened yet");
    estate.inject(&fault(FaultKind::CrashLoop, "payment-service")).unwrap();
    estate.advance(20);
    let worse = estate.worse_than(&before, 4);
    assert!(worse.contains(&"payment-service".to_owned()), "{worse:?}");

    // A database failed over carries no traffic: it is not counted.
    let mut estate = self::estate(6);
    estate.advance(5);
    let before = estate.healths(4);
    estate
        .inject(&fault(FaultKind::NetworkPartition, "postgres-primary"))
        .unwrap();
    estate.advance(20);
    assert!(estate.worse_than(&before, 4).contains(&"postgres-primary".to_owned()));
    estate
        .apply(&act(ActionKind::FailoverDatabase, "postgres-primary"))
        .unwrap();
    estate.advance(20);
    assert!(!estate.worse_than(&before, 4).contains(&"postgres-primary".to_owned()));
}

#[test]
fn a_restart_drops_requests_and_is_counted() {
    let mut estate = estate(5);
    let applied = estate
        .apply(&act(ActionKind::RestartInstances, "order-service"))
        .unwrap();
    assert!(applied.side_effects.iter().any(|s| s.contains("in-flight")));
    estate.advance(1);
    let sample = estate.service_named("order-service").unwrap().telemetry.latest();
    assert!(sample.get(Metric::ErrorRate) > 0.05);
    assert!(sample.get(Metric::Restarts) >= 1.0);
    estate.advance(30);
    assert!(estate.slos_met(10), "{:?}", estate.violations(10));
}

#[test]
fn actions_are_refused_where_they_make_no_sense() {
    let mut estate = estate(6);
    let err = estate
        .apply(&act(ActionKind::FailoverDatabase, "order-service"))
        .unwrap_err();
    assert!(err.0.contains("order-service"), "{err}");
    let err = estate.apply(&act(ActionKind::ScaleOut, "payment-gateway")).unwrap_err();
    assert!(err.0.contains("third party"), "{err}");
    let err = estate.apply(&act(ActionKind::RestartInstances, "nowhere")).unwrap_err();
    assert!(err.0.contains("not a service"), "{err}");
}

/// A third party that is only slow (no errors, well inside the timeout)
/// still breaks its caller's latency objective: a breaker trips on slow
/// calls, sends them to the fallback, and the caller recovers.
#[test]
fn a_breaker_trips_on_calls_slower_than_the_callers_objective() {
    let mut estate = estate(3);
    estate
        .inject(&FaultSpec {
            intensity: 0.12,
            ..fault(FaultKind::DependencyTimeout, "payment-gateway")
        })
        .unwrap();
    estate.advance(30);
    let payment = estate.topology.index("payment-service").unwrap();
    assert_ne!(estate.health(payment, 4), HealthState::Healthy, "slow enough to matter");
    estate
        .apply(&act(ActionKind::EnableCircuitBreaker, "payment-service"))
        .unwrap();
    estate.advance(10);
    let gateway = (estate.topology.spec(payment).edges.iter())
        .position(|e| estate.topology.spec(e.to).name == "payment-gateway")
        .unwrap();
    assert!(estate.services[payment].breaker_open[gateway], "tripped on slow calls");
    assert_eq!(estate.health(payment, 4), HealthState::Healthy);
}

#[test]
fn configuration_changes_are_recorded_and_undone() {
    let mut estate = estate(7);
    let applied = estate
        .apply(&act(ActionKind::EnableCircuitBreaker, "payment-service"))
        .unwrap();
    assert_eq!(applied.changes.len(), 3);
    assert!(applied.changes.iter().all(|c| c.from == "false" && c.to == "true"));
    let undone = estate.undo(&applied);
    assert_eq!(undone.len(), 3);
    assert!(
        undone
            .iter()
            .all(|c| c.to == "false" && c.cause == "rollback of enable_circuit_breaker")
    );
    assert!(
        estate
            .service_named("payment-service")
            .unwrap()
            .config
            .breakers
            .iter()
            .all(|b| !b)
    );
    assert_eq!(estate.config_history().len(), 6);
}

#[test]
fn a_restart_hides_a_memory_leak_but_does_not_cure_it() {
    let mut estate = estate(8);
    estate.inject(&fault(FaultKind::MemoryLeak, "user-service")).unwrap();
    estate.advance(10);
    estate
        .apply(&act(ActionKind::RestartInstances, "user-service"))
        .unwrap();
    estate.advance(20);
    let violations = estate.violations(10);
    assert!(
        violations.iter().any(|v| v.contains("memory still climbing")),
        "{violations:?}"
    );
    estate.apply(&act(ActionKind::RollbackDeploy, "user-service")).unwrap();
    estate.advance(30);
    assert!(estate.slos_met(10), "{:?}", estate.violations(10));
    assert!(estate.faults().is_empty());
}

#[test]
fn failing_over_does_not_escape_a_connection_leak() {
    let mut estate = estate(9);
    estate
        .inject(&fault(FaultKind::ConnectionPoolExhaustion, "postgres-primary"))
        .unwrap();
    estate
        .apply(&act(ActionKind::FailoverDatabase, "postgres-primary"))
        .unwrap();
    estate.advance(30);
    assert!(!estate.slos_met(10));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// A fault plus a right remediation always recovers.
    #[test]
    fn the_right_remediation_recovers(
        pick in any::<prop::sample::Index>(),
        cure in any::<prop::sample::Index>(),
        seed in any::<u64>(),
        intensity in 0.8..=1.0f64,
        lead in 0.0..120.0f64,
        before in 3u64..20,
    ) {
        let all = placements();
        let (kind, target) = pick.get(&all).clone();
        let mut estate = estate(seed);
        estate.inject(&FaultSpec { intensity, lead_seconds: lead, ..FaultSpec::new(kind, &target) }).unwrap();
        estate.advance(before);
        let options = cures(&estate, kind, &target);
        for remediation in cure.get(&options) {
            estate.apply(remediation).unwrap();
        }
        estate.advance(40);
        prop_assert!(estate.slos_met(10), "{kind:?} on {target}: {:?}", estate.violations(10));
    }

    /// A wrong remediation never counts as recovery.
    #[test]
    fn a_wrong_remediation_never_recovers(
        pick in any::<prop::sample::Index>(),
        wrong in any::<prop::sample::Index>(),
        seed in any::<u64>(),
        intensity in 0.8..=1.0f64,
    ) {
        let all = placements();
        let (kind, target) = pick.get(&all).clone();
        let mut estate = estate(seed);
        estate.inject(&FaultSpec { intensity, ..FaultSpec::new(kind, &target) }).unwrap();
        estate.advance(5);
        let right: Vec<Remediation> = cures(&estate, kind, &target).into_iter().flatten().collect();
        let candidates: Vec<Remediation> = ActionKind::ALL
            .iter()
            .flat_map(|&k| estate.topology().services.iter().map(move |s| act(k, &s.name)))
            .filter(|r| !right.contains(r))
            .filter(|r| r.kind.refusal(estate.topology().spec(estate.topology().index(&r.target).unwrap())).is_none())
            .collect();
        let remediation = wrong.get(&candidates).clone();
        // Some wrong actions are refused by state (nothing to roll back to);
        // that is not a recovery either.
        let _ = estate.apply(&remediation);
        estate.advance(40);
        prop_assert!(!estate.slos_met(10), "{kind:?} on {target} recovered after {remediation:?}");
    }
}

/// Seed 003's drift: credit scores move from a mean of 700 to 550, the
/// measured PSI climbs far past 0.2, and retraining brings it back.
#[test]
fn data_drift_shows_as_measured_psi_and_retraining_resets_it() {
    let mut estate = estate(8);
    let model = estate.topology().index("ml-model-service").unwrap();
    let psi = |estate: &Estate| estate.service(model).telemetry.recent_mean(Metric::FeaturePsi, 10);
    estate.advance(20);
    let healthy = psi(&estate);
    assert!(healthy < 0.1, "sampling noise only: {healthy}");

    estate.inject(&fault(FaultKind::DataDrift, "ml-model-service")).unwrap();
    estate.advance(60);
    let drifted = psi(&estate);
    // A three-sigma shift: about 6 (see `psi`'s hand-computed values).
    assert!((4.0..8.0).contains(&drifted), "{drifted}");

    estate
        .apply(&act(ActionKind::TriggerRetraining, "ml-model-service"))
        .unwrap();
    estate.advance(20);
    assert!(psi(&estate) < 0.2, "{}", psi(&estate));
}

/// Seed 003's performance drop: a release ships a worse model version; its
/// accuracy, measured on labelled feedback, falls under 0.8; rolling back
/// serves the previous good version again and accuracy recovers.
#[test]
fn a_bad_model_release_is_measured_and_rolled_back_to_the_last_good_version() {
    let mut estate = estate(9);
    let model = estate.topology().index("ml-model-service").unwrap();
    let accuracy = |estate: &Estate| estate.service(model).telemetry.recent_mean(Metric::ModelAccuracy, 10);
    let versions = |estate: &Estate| {
        estate
            .model_registry(model)
            .iter()
            .map(|v| (v.version, v.origin))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        versions(&estate),
        [(1, ModelOrigin::Registry), (2, ModelOrigin::Registry)]
    );
    assert_eq!(estate.service(model).config.model_version, 2, "the newest is deployed");
    estate.advance(30);
    assert!(
        (accuracy(&estate) - 0.91).abs() < 0.02,
        "v2's profile: {}",
        accuracy(&estate)
    );

    estate
        .inject(&fault(FaultKind::ModelAccuracyDrop, "ml-model-service"))
        .unwrap();
    assert_eq!(versions(&estate).last(), Some(&(3, ModelOrigin::Release)));
    estate.advance(30);
    assert!(accuracy(&estate) < 0.8, "{}", accuracy(&estate));
    let v3 = estate.model_registry(model)[2].measured_accuracy.unwrap();
    assert!(v3 < 0.8, "the registry remembers v3 measured badly: {v3}");

    estate
        .apply(&act(ActionKind::RollbackModel, "ml-model-service"))
        .unwrap();
    assert_eq!(estate.service(model).config.model_version, 2);
    estate.advance(20);
    assert!(accuracy(&estate) > 0.88, "{}", accuracy(&estate));
}

/// Retraining trains and deploys a new version, so its registry grows.
#[test]
fn retraining_adds_a_model_version() {
    let mut estate = estate(10);
    let model = estate.topology().index("ml-model-service").unwrap();
    estate.inject(&fault(FaultKind::DataDrift, "ml-model-service")).unwrap();
    estate.advance(10);
    let applied = estate
        .apply(&act(ActionKind::TriggerRetraining, "ml-model-service"))
        .unwrap();
    assert_eq!(estate.service(model).config.model_version, 3);
    let last = estate.model_registry(model).last().unwrap();
    assert_eq!((last.version, last.origin), (3, ModelOrigin::Retraining));
    assert!(applied.changes.iter().any(|c| c.key == "model_version" && c.to == "3"));
    assert!(applied.side_effects.iter().any(|s| s.contains("model v3")));
}

/// Seed 003's latency spike: safe mode masks it, and once the spike is
/// over (the primary path meets 300 ms for 10 s) the model leaves safe mode
/// by itself, recorded as a change of its own.
#[test]
fn safe_mode_is_left_when_the_latency_spike_is_over_and_the_exit_is_recorded() {
    let mut estate = estate(11);
    let model = estate.topology().index("ml-model-service").unwrap();
    estate
        .inject(&FaultSpec {
            duration_seconds: Some(40.0),
            lead_seconds: 0.0,
            ..fault(FaultKind::ModelLatency, "ml-model-service")
        })
        .unwrap();
    estate.advance(5);
    let p50 = |estate: &Estate| estate.service(model).telemetry.recent_mean(Metric::LatencyP50, 3);
    assert!(p50(&estate) > 300.0, "{}", p50(&estate));
    estate
        .apply(&act(ActionKind::EnableSafeMode, "ml-model-service"))
        .unwrap();
    estate.advance(30);
    assert!(estate.service(model).config.safe_mode, "the spike is not over");
    assert!(estate.take_spontaneous_changes().is_empty());
    // The spike ends at 40 s; ten good seconds later safe mode is left.
    estate.advance(20);
    assert!(!estate.service(model).config.safe_mode);
    let exits = estate.take_spontaneous_changes();
    assert_eq!(exits.len(), 1, "{exits:?}");
    assert_eq!(
        (exits[0].key.as_str(), exits[0].from.as_str(), exits[0].to.as_str()),
        ("safe_mode", "true", "false")
    );
    assert!(exits[0].cause.contains("root cause gone"), "{}", exits[0].cause);
    estate.advance(5);
    assert!(p50(&estate) < 300.0, "the model itself answers, fast");
    assert!(estate.take_spontaneous_changes().is_empty(), "taken once");
}

#[test]
fn without_an_end_the_spike_keeps_the_model_in_safe_mode() {
    let mut estate = estate(12);
    let model = estate.topology().index("ml-model-service").unwrap();
    estate
        .inject(&fault(FaultKind::ModelLatency, "ml-model-service"))
        .unwrap();
    estate
        .apply(&act(ActionKind::EnableSafeMode, "ml-model-service"))
        .unwrap();
    estate.advance(120);
    assert!(estate.service(model).config.safe_mode);
}

/// Drift is measured per input feature: the credit score moves, income
/// does not.
#[test]
fn drift_is_measured_feature_by_feature() {
    let mut estate = estate(13);
    let model = estate.topology().index("ml-model-service").unwrap();
    estate.inject(&fault(FaultKind::DataDrift, "ml-model-service")).unwrap();
    estate.advance(30);
    let psi = estate.feature_psi(model);
    assert_eq!(
        psi.iter().map(|(f, _)| *f).collect::<Vec<_>>(),
        ["credit_score", "income"]
    );
    assert!(psi[0].1 > 2.0, "{psi:?}");
    assert!(psi[1].1 < 0.2, "{psi:?}");
}
