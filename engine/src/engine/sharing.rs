//! Sharing the store with other instances (see [`crate::cluster`]): the
//! leases this instance holds renewed, those of dead owners taken over (and
//! what they covered interrupted), other instances' events applied to what
//! this one keeps in memory, and approvals decided once, from anywhere.

use tokio::sync::Notify;

use super::{book::Closing, *};
use crate::{
    cluster::{Coordination, Takeover},
    event_log::Tailing,
    governance::{DecideError, HumanDecision},
    journal::LeaseKind,
    protocol::{Approval, ApprovalState, Envelope},
    request::ApprovalDecision,
};

/// How often the reaper looks for expired leases, and the owner for
/// decisions taken on other instances: a dead owner's incidents are
/// interrupted within the lease's time plus this.
const REAP_EVERY: Duration = Duration::from_millis(500);

/// How an engine shares its store with other instances.
pub struct Sharing {
    /// The store's side of coordination.
    pub coordination: Arc<dyn Coordination>,
    /// Woken by the store's notifications (see `store::Store::listen`).
    pub wake: Arc<Notify>,
    /// How often the tail is read without a notification.
    pub tick: Duration,
}

impl Sharing {
    pub(super) fn tailing(&self, leases: crate::cluster::Leases) -> Tailing {
        Tailing {
            wake: Arc::clone(&self.wake),
            tick: self.tick,
            leases,
        }
    }
}

impl Engine {
    /// Starts the work every sharing instance does: other instances' events
    /// applied here, leases renewed, dead owners' leases taken over, and
    /// decisions taken elsewhere delivered. Within a tokio runtime.
    pub(super) fn start_sharing(&self) {
        let weak = Arc::downgrade(&self.shared);
        self.shared.log.on_remote(move |event| {
            if let Some(shared) = weak.upgrade() {
                Engine { shared }.apply_remote(event);
            }
        });
        if let (Some(actuator), Some(coordination)) = (self.actuator(), self.coordination()) {
            actuator.callbacks().share(Arc::clone(coordination));
        }
        let engine = self.clone();
        tokio::spawn(async move { engine.coordinate().await });
    }

    /// The coordination loop, until the incidents have drained at
    /// shutdown: a draining instance still renews what it runs, but takes
    /// nothing over.
    async fn coordinate(self) {
        let coordination = Arc::clone(self.coordination().expect("only sharing engines coordinate"));
        let renew_every = coordination.lease_ttl() / 3;
        let mut renewed = tokio::time::Instant::now();
        let stop = self.shared.stop_coordinating.clone();
        loop {
            tokio::select! {
                () = tokio::time::sleep(REAP_EVERY) => {}
                () = stop.cancelled() => return,
            }
            if renewed.elapsed() >= renew_every {
                renewed = tokio::time::Instant::now();
                self.renew(coordination.as_ref()).await;
            }
            if !self.shared.draining.load(Ordering::SeqCst) {
                match coordination.take_over_expired().await {
                    Ok(taken) => taken.into_iter().for_each(|takeover| self.take_over(takeover)),
                    Err(error) => warn!(%error, "could not look for expired leases"),
                }
            }
            self.deliver_decisions(coordination.as_ref()).await;
            self.deliver_results(coordination.as_ref()).await;
        }
    }

    /// Whether this instance may still write about `subject`: always, alone;
    /// while it holds its lease, with others.
    pub fn holds_lease(&self, subject: Uuid) -> bool {
        self.shared.log.leases().is_none_or(|leases| leases.holds(subject))
    }

    /// This instance's coordination with the others, when it shares its store.
    pub fn coordination(&self) -> Option<&Arc<dyn Coordination>> {
        self.shared.coordination.as_ref()
    }

    /// Renews the leases held; interrupts what a lost one covered.
    async fn renew(&self, coordination: &dyn Coordination) {
        let Some(leases) = self.shared.log.leases() else { return };
        let held = leases.held();
        match coordination.renew(&held).await {
            Ok(lost) => {
                for (subject, epoch) in lost {
                    if leases.lose(subject, epoch) {
                        metrics::counter!("antibody_leases_lost_total").increment(1);
                        warn!(%subject, epoch, "lost a lease (another instance took it over); interrupting here");
                        self.interrupt_incident(subject);
                    }
                }
            }
            Err(error) => warn!(%error, "could not renew leases"),
        }
    }

    /// Takes over a dead owner's lease and interrupts what it covered:
    /// one `lease_taken_over`, then the subject's end under the new epoch.
    fn take_over(&self, takeover: Takeover) {
        let Some(leases) = self.shared.log.leases() else { return };
        let me = self.coordination().map(|c| c.instance().to_owned()).unwrap_or_default();
        leases.hold(takeover.subject, takeover.epoch);
        metrics::counter!("antibody_lease_takeovers_total", "kind" => takeover.kind.as_str()).increment(1);
        warn!(
            subject = %takeover.subject,
            kind = takeover.kind.as_str(),
            from = %takeover.previous_owner,
            epoch = takeover.epoch,
            "took over a lease its owner stopped renewing; interrupting what it covered"
        );
        let mut book = self.shared.book.lock().expect("incident book lock poisoned");
        self.shared.log.append(ServerMessage::LeaseTakenOver {
            subject: takeover.subject,
            kind: takeover.kind.as_str().to_owned(),
            previous_owner: takeover.previous_owner.clone(),
            owner: me,
            lease_epoch: takeover.epoch,
        });
        match takeover.kind {
            LeaseKind::Incident => {
                self.withdraw_approvals_of(takeover.subject, "lease takeover");
                self.reconcile_steps_of(takeover.subject);
                book.close(takeover.subject, interrupted_closing());
                self.shared.log.append(ServerMessage::IncidentStatus {
                    incident_id: takeover.subject,
                    status: IncidentStatus::Interrupted,
                    resolution_time: None,
                    cost_savings: None,
                    root_cause: None,
                    report: Some(format!(
                        "Instance {} stopped renewing this incident's lease before the swarm finished it.",
                        takeover.previous_owner
                    )),
                    time_to_detect: None,
                    time_to_diagnose: None,
                });
                self.shared.log.append(ServerMessage::PerformanceMetrics {
                    metrics: book.metrics(),
                });
            }
            LeaseKind::Timeline => {
                let Some(run) = takeover.run else {
                    warn!(run = %takeover.subject, "a timeline run's lease without its run; releasing nothing");
                    return;
                };
                self.shared.log.append(ServerMessage::TimelineProgress {
                    run: crate::protocol::TimelineRun {
                        state: crate::protocol::RunState::Interrupted,
                        ..run
                    },
                });
            }
        }
    }

    /// Publishes a pending approval of `incident` as withdrawn by `why`.
    fn withdraw_approvals_of(&self, incident: Uuid, why: &str) {
        let pending: Vec<Approval> = self.shared.log.project(|p| {
            (p.approvals.iter())
                .filter(|a| a.incident_id == incident && a.state == ApprovalState::Pending)
                .cloned()
                .collect()
        });
        for mut approval in pending {
            approval.state = ApprovalState::Withdrawn;
            approval.decided_by = Some(why.to_owned());
            approval.decided_at = Some(chrono::Utc::now());
            self.shared.log.append(ServerMessage::ApprovalDecided { approval });
        }
    }

    /// A step the dead owner sent and never saw finish is read from the
    /// receiver's record, never sent again (as after a restart).
    fn reconcile_steps_of(&self, incident: Uuid) {
        let retained = self.shared.log.retained();
        let dangling = reconcile::dangling_steps(&retained, &[incident]);
        if let (false, Some(actuator)) = (dangling.is_empty(), self.actuator()) {
            tokio::spawn(reconcile::reconcile(
                self.shared.log.clone(),
                actuator.clone(),
                dangling,
            ));
        }
    }

    /// Interrupts this instance's run of `incident`, if it has one.
    fn interrupt_incident(&self, incident: Uuid) {
        let running = self.shared.running.lock().expect("running lock poisoned");
        if let Some(token) = running.get(&incident) {
            token.cancel();
        }
    }

    /// Applies another instance's event to what this one keeps in memory:
    /// the book and its totals, the incident memory, the alert desk.
    fn apply_remote(&self, event: &Envelope) {
        match &event.message {
            ServerMessage::IncidentCreated { incident } => {
                let mut book = self.shared.book.lock().expect("incident book lock poisoned");
                book.open(incident.clone());
            }
            ServerMessage::IncidentStatus {
                incident_id,
                status,
                resolution_time,
                cost_savings,
                root_cause,
                report,
                time_to_detect,
                time_to_diagnose,
            } if status.is_terminal() => {
                let closing = Closing {
                    status: *status,
                    seconds: resolution_time.unwrap_or_default(),
                    savings: *cost_savings,
                    root_cause: root_cause.clone(),
                    report: report.clone(),
                    phases: time_to_detect
                        .zip(*time_to_diagnose)
                        .map(|(d, g)| (Duration::from_secs_f64(d.max(0.0)), Duration::from_secs_f64(g.max(0.0)))),
                };
                let mut book = self.shared.book.lock().expect("incident book lock poisoned");
                book.close(*incident_id, closing);
            }
            ServerMessage::MemoryRecorded { entry, .. } => {
                self.memory().record(entry.clone());
            }
            ServerMessage::MemoryCleared { .. } => {
                self.memory().clear();
            }
            ServerMessage::AlertReceived { incident_id, alert } => {
                let mut desk = self.shared.desk.lock().expect("alert desk lock poisoned");
                desk.recall(alert, *incident_id);
            }
            _ => {}
        }
    }

    /// Hands the incidents waiting here the decisions people took on other
    /// instances.
    async fn deliver_decisions(&self, coordination: &dyn Coordination) {
        for waiting in self.approvals().pending() {
            match coordination.decision(waiting.approval_id).await {
                Ok(Some(decided)) => {
                    if let Some(decision) = human_decision(&decided) {
                        // A decision taken here was delivered already.
                        let _ = self.approvals().decide(waiting.approval_id, decision);
                    }
                }
                Ok(None) => {}
                Err(error) => warn!(%error, "could not read decisions taken elsewhere"),
            }
        }
    }

    /// Hands the steps waiting here the results runbook systems posted to
    /// other instances.
    async fn deliver_results(&self, coordination: &dyn Coordination) {
        let Some(actuator) = self.actuator() else { return };
        for id in actuator.callbacks().awaited() {
            match coordination.take_result(&id).await {
                Ok(Some(result)) => {
                    // The step may have stopped waiting meanwhile.
                    let _ = actuator.callbacks().deliver(&id, result);
                }
                Ok(None) => {}
                Err(error) => warn!(%error, "could not read results posted elsewhere"),
            }
        }
    }

    /// A person's decision on an approval, from the API or the dashboard of
    /// any instance: taken once across every instance (the store keeps the
    /// first), delivered at once when the incident waits here, else by its
    /// owner's next look.
    pub async fn decide_approval(&self, id: Uuid, request: ApprovalDecision) -> Result<Approval, DecideError> {
        let Some(coordination) = self.coordination() else {
            return self.approvals().decide_request(id, request);
        };
        let approval = (self.approvals().get(id))
            .or_else(|| self.recent_approvals().into_iter().find(|a| a.approval_id == id))
            .ok_or(DecideError::Unknown(id))?;
        if approval.state != ApprovalState::Pending {
            return Err(DecideError::AlreadyDecided {
                id,
                state: approval.state,
            });
        }
        let decision = HumanDecision {
            approve: request.approve,
            approver: request.approver,
            comment: request.comment,
            at: chrono::Utc::now(),
        };
        let decided = crate::governance::decided(approval, &decision);
        match coordination.claim_decision(&decided).await {
            Ok(Ok(())) => Ok(self.approvals().decide(id, decision).unwrap_or(decided)),
            Ok(Err(first)) => Err(DecideError::AlreadyDecided { id, state: first.state }),
            Err(error) => Err(DecideError::Unavailable(error.to_string())),
        }
    }
}

/// A person's decision as recorded; `None` for a timeout or a withdrawal.
fn human_decision(decided: &Approval) -> Option<HumanDecision> {
    let approve = match decided.state {
        ApprovalState::Approved => true,
        ApprovalState::Rejected => false,
        _ => return None,
    };
    Some(HumanDecision {
        approve,
        approver: decided.decided_by.clone().unwrap_or_default(),
        comment: decided.comment.clone(),
        at: decided.decided_at.unwrap_or_else(chrono::Utc::now),
    })
}

/// How a taken-over incident ends in the book.
fn interrupted_closing() -> Closing {
    Closing {
        status: IncidentStatus::Interrupted,
        seconds: 0.0,
        savings: None,
        root_cause: None,
        report: None,
        phases: None,
    }
}
