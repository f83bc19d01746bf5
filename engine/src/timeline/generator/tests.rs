use super::*;

fn generator() -> BuiltinGenerator {
    BuiltinGenerator::embedded(Arc::new(Topology::embedded().unwrap())).unwrap()
}

fn request(prompt: &str, seed: u64) -> GenerationRequest {
    GenerationRequest {
        prompt: prompt.into(),
        service: None,
        severity: None,
        seed,
    }
}

#[test]
fn the_same_prompt_and_seed_give_the_same_scenario() {
    let generator = generator();
    let prompt = "Create a Redis connection pool exhaustion scenario with cascading failures";
    assert_eq!(
        generator.generate_now(&request(prompt, 7)).unwrap(),
        generator.generate_now(&request(prompt, 7)).unwrap()
    );
}

#[test]
fn a_new_seed_varies_the_service_magnitude_or_onset() {
    let generator = generator();
    let prompt = "Generate a memory leak in a backend service";
    let shapes: std::collections::HashSet<String> = (0..8)
        .map(|seed| {
            let fault = &generator.generate_now(&request(prompt, seed)).unwrap().scenario.fault[0];
            format!("{} {} {}", fault.target, fault.intensity, fault.onset_seconds)
        })
        .collect();
    assert!(shapes.len() >= 6, "eight seeds gave only {} variations", shapes.len());
}

#[test]
fn prompts_are_placed_by_their_intent() {
    let generator = generator();
    for (prompt, family) in [
        ("Generate a Redis cache failure with cascading effects", "cache"),
        ("Connection pool exhaustion on the database", "connection_pool"),
        ("DNS resolution timeouts affecting external API calls", "dns"),
        ("A TLS certificate expiration", "tls"),
        ("Authentication failures: users get 401 on login", "auth"),
        ("A disk I/O bottleneck with slow writes", "disk"),
        ("Kubernetes pods cannot be scheduled on any node", "kubernetes"),
        ("A network partition between services", "network_partition"),
        ("Deadlock causing transaction failures", "deadlock"),
        ("Replication lag affecting reads", "replication_lag"),
        ("Load balancer misconfiguration", "load_balancer"),
        ("Memory leak in the user service", "memory"),
        ("CPU spike under a traffic surge", "cpu"),
        ("The payment provider is rate limiting us with 429s", "rate_limit"),
    ] {
        let placed = generator.place(prompt).map(|f| f.id.as_str());
        assert_eq!(placed, Some(family), "{prompt}");
    }
}

#[test]
fn a_prompt_it_cannot_place_is_refused_with_the_families_named() {
    let err = generator()
        .generate_now(&request("Write me a poem about spring", 1))
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("cannot place the prompt"), "{text}");
    assert!(text.contains("cache") && text.contains("rate_limit"), "{text}");
}

#[test]
fn the_named_service_is_used_when_it_can_suffer_the_fault() {
    let generator = generator();
    let mut wanted = request("a memory leak", 3);
    wanted.service = Some("payment-service".into());
    let generated = generator.generate_now(&wanted).unwrap();
    assert_eq!(generated.scenario.fault[0].target, "payment-service");
    assert_eq!(generated.scenario.answer.root_cause.service, "payment-service");
    // A cache cannot leak a deploy's memory: another service is drawn.
    wanted.service = Some("redis-cache".into());
    let generated = generator.generate_now(&wanted).unwrap();
    assert_ne!(generated.scenario.fault[0].target, "redis-cache");
}

#[test]
fn the_reported_metrics_come_from_running_the_fault_on_the_twin() {
    let generated = generator()
        .generate_now(&request("Generate a disk space exhaustion incident", 11))
        .unwrap();
    let service = &generated.spec.service;
    assert!(!generated.spec.metrics.is_empty());
    assert!(
        generated
            .spec
            .metrics
            .iter()
            .any(|m| m.metric_name == format!("{service}.disk_usage") && m.value > m.baseline),
        "{:?}",
        generated.spec.metrics
    );
    for metric in &generated.spec.metrics {
        assert!(metric.deviation_sigma.abs() >= LISTED_SIGMA, "{metric:?}");
    }
}

#[test]
fn every_family_generates_a_valid_scenario_for_the_twin() {
    let generator = generator();
    let topology = Topology::embedded().unwrap();
    for family in generator.families() {
        for seed in 0..4 {
            let generated = generator
                .generate_in(family, &request(&family.keywords[0], seed), String::new())
                .unwrap();
            let fault = &generated.scenario.fault[0];
            let target = topology.index(&fault.target).map(|i| topology.spec(i));
            fault.validate(target).unwrap_or_else(|e| panic!("{}: {e}", family.id));
            assert_eq!(generated.scenario.answer.root_cause.fault, family.fault);
        }
    }
}
