//! Admission: a request or a catalog scenario becomes an incident, its
//! faults are injected into its estate, and its task starts, unless the
//! engine is draining or at capacity.

use super::*;

impl Engine {
    /// Opens an incident for a scenario that is not in the catalog (a
    /// generated one), at its severity unless `severity` overrides it.
    pub fn open_scenario(&self, scenario: &Scenario, severity: Option<Severity>) -> Result<Incident, SubmitError> {
        let request = IncidentRequest {
            title: IncidentTitle::parse(&scenario.title).map_err(|e| SubmitError::Invalid(e.to_string()))?,
            severity: severity.unwrap_or(scenario.severity),
            affected_services: scenario
                .affected_services
                .iter()
                .map(|s| ServiceName::parse(s, "affected_services"))
                .collect::<Result<_, _>>()
                .map_err(|e| SubmitError::Invalid(e.to_string()))?,
            scenario_id: None,
        };
        self.open(
            request,
            Some(scenario.id.clone()),
            scenario.fault.clone(),
            scenario.faulty_voters.clone(),
        )
    }

    /// Opens an incident and starts the swarm on it. Must be called within
    /// a tokio runtime.
    pub fn open_incident(&self, request: IncidentRequest) -> Result<Incident, SubmitError> {
        let catalog = &self.shared.swarm.catalog;
        let (faults, faulty_voters): (Vec<FaultSpec>, Vec<FaultyVoter>) = match &request.scenario_id {
            None => (Vec::new(), Vec::new()),
            Some(id) => match catalog.scenario(id.as_str()) {
                Some(scenario) => (scenario.fault.clone(), scenario.faulty_voters.clone()),
                None => {
                    return Err(SubmitError::UnknownScenario {
                        id: id.as_str().to_owned(),
                        suggestion: catalog.closest_scenario(id.as_str()).map(str::to_owned),
                    });
                }
            },
        };
        let scenario_id = request.scenario_id.as_ref().map(|id| id.as_str().to_owned());
        self.open(request, scenario_id, faults, faulty_voters)
    }

    fn open(
        &self,
        request: IncidentRequest,
        scenario_id: Option<String>,
        faults: Vec<FaultSpec>,
        faulty_voters: Vec<FaultyVoter>,
    ) -> Result<Incident, SubmitError> {
        self.admit()?;
        if !faults.is_empty() && self.watches_prometheus() {
            return Err(SubmitError::Watching);
        }
        let incident = Incident {
            id: Uuid::new_v4(),
            title: request.title.as_str().to_owned(),
            severity: request.severity,
            affected_services: request
                .affected_services
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect(),
            scenario_id,
            status: IncidentStatus::Active,
            created_at: chrono::Utc::now(),
            finished_at: None,
            resolution_time: None,
            cost_savings: None,
            root_cause: None,
            report: None,
        };
        let mut rng = StdRng::seed_from_u64(self.shared.seeds.lock().expect("seed lock poisoned").random());
        let twin = self.inject(&incident, &faults, &mut rng);
        {
            let mut book = self.shared.book.lock().expect("incident book lock poisoned");
            book.open(incident.clone());
            self.shared.log.append(ServerMessage::IncidentCreated {
                incident: incident.clone(),
            });
            // The active count changed.
            self.shared.log.append(ServerMessage::PerformanceMetrics {
                metrics: book.metrics(),
            });
        }
        let span = info_span!(
            "incident",
            id = %incident.id,
            scenario = incident.scenario_id.as_deref().unwrap_or("-"),
            severity = incident.severity.as_str(),
        );
        span.in_scope(|| info!(title = %incident.title, faults = faults.len(), "incident opened"));
        let assignment = Assignment {
            incident: incident.clone(),
            twin,
            faulty_voters,
            rng,
        };
        let (engine, cx) = (self.clone(), self.context(incident.id));
        let course = async move {
            let closing = orchestrator::run(cx, assignment).await;
            engine.finish(closing.id, closing.verdict, &closing.case, closing.end);
            (engine.shared.running.lock().expect("running lock poisoned")).remove(&closing.id);
        };
        self.shared.tasks.spawn(course.instrument(span));
        Ok(incident)
    }

    /// Whether the estate is a real one read through Prometheus, into which
    /// a scenario cannot inject (a standalone twin takes its faults).
    fn watches_prometheus(&self) -> bool {
        matches!(
            &self.shared.estates,
            Estates::Watched {
                estate: crate::watched::WatchedEstate::Prometheus(_),
                ..
            }
        )
    }

    /// Refuses a new incident while draining, halted or at capacity.
    fn admit(&self) -> Result<(), SubmitError> {
        if self.shared.draining.load(Ordering::SeqCst) {
            return Err(SubmitError::ShuttingDown);
        }
        if let Some(reason) = self.shared.log.halted() {
            return Err(SubmitError::Halted(reason));
        }
        // Refused before anything is injected; a burst may overshoot the
        // limit by the few requests racing this check, never by more.
        if self.shared.book.lock().expect("incident book lock poisoned").active >= self.shared.max_active {
            return Err(SubmitError::AtCapacity {
                limit: self.shared.max_active,
            });
        }
        Ok(())
    }

    /// Injects the incident's faults into the estate it works on: the shared
    /// one (where its chart opens), or a fork of the template of its own.
    fn inject(&self, incident: &Incident, faults: &[FaultSpec], rng: &mut StdRng) -> TwinRef {
        match &self.shared.estates {
            Estates::Shared(shared) => {
                shared.with(|estate| {
                    // The chart's zero: now, on the engine's clock, before
                    // the estate runs ahead with the fault.
                    let opened_tick = estate.now();
                    let mut injected = false;
                    for fault in faults {
                        // The same fault again is the same trouble, not twice as much.
                        if !estate.has_active_fault(fault.kind, &fault.target) {
                            match estate.inject(fault) {
                                Ok(_) => injected = true,
                                Err(reason) => warn!(%reason, "a catalog fault did not inject"),
                            }
                        }
                    }
                    if injected {
                        // The fault was already showing when it was reported;
                        // the estate runs ahead and then waits for the clock.
                        estate.advance(REPORTED_AFTER_TICKS);
                    }
                    self.shared
                        .charts
                        .open(incident.id, estate, opened_tick, &incident.affected_services);
                });
                TwinRef::Shared(Arc::clone(shared))
            }
            Estates::Isolated { template } => {
                let mut estate = template.fork(rng.random());
                for fault in faults {
                    if let Err(reason) = estate.inject(fault) {
                        warn!(%reason, "a catalog fault did not inject");
                    }
                }
                if !faults.is_empty() {
                    estate.advance(REPORTED_AFTER_TICKS);
                }
                let start = estate.now();
                let opened = estate.healths(crate::orchestrator::VERIFY_WINDOW);
                TwinRef::Own {
                    estate: Box::new(estate),
                    start,
                    opened,
                }
            }
            Estates::Watched { estate, actuator } => TwinRef::Watched {
                estate: estate.clone(),
                view: None,
                actuator: actuator.clone(),
                faults: faults.to_vec(),
            },
        }
    }

    /// Opens an incident from a catalog scenario, optionally at another
    /// severity.
    pub fn trigger_scenario(&self, id: &str, severity: Option<Severity>) -> Result<Incident, SubmitError> {
        if self.watches_prometheus() {
            return Err(SubmitError::Watching);
        }
        let catalog = &self.shared.swarm.catalog;
        let scenario = catalog.scenario(id).ok_or_else(|| SubmitError::UnknownScenario {
            id: id.to_owned(),
            suggestion: catalog.closest_scenario(id).map(str::to_owned),
        })?;
        let request = IncidentRequest {
            title: IncidentTitle::parse(&scenario.title).expect("catalog titles are valid"),
            severity: severity.unwrap_or(scenario.severity),
            affected_services: scenario
                .affected_services
                .iter()
                .map(|s| ServiceName::parse(s, "affected_services").expect("catalog checks service names"))
                .collect(),
            scenario_id: Some(crate::request::ScenarioId::parse(id).expect("catalog checks ids")),
        };
        self.open_incident(request)
    }
}
