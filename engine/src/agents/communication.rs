//! Communication: the status-page entry, the notification, and the incident
//! report in markdown (timeline, root cause with evidence, actions,
//! verification, impact), all written from what the other agents found.

use std::fmt::Write;

use serde::Serialize;

use super::{Agent, Case, Detection, Hypothesis, Judgement, Plan, Prediction, Report};
use crate::observe::Observed;
use crate::protocol::{ActionDetails, AgentType, IncidentStatus, StatusPage};

/// One remediation attempt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attempt {
    /// The hypothesis it treated.
    pub hypothesis: String,
    /// The consensus, in one line.
    pub consensus: String,
    /// Whether the plan was cleared to run: the vote passed and governance
    /// allowed it.
    pub approved: bool,
    /// Policy's decision and any person's, one line each.
    pub governance: Vec<String>,
    /// Steps run, with their simulated seconds.
    pub executed: Vec<(String, f64)>,
    /// Whether telemetry showed recovery.
    pub verified: bool,
    /// What was still wrong when verification gave up.
    pub outstanding: Vec<String>,
    /// Steps undone, newest first.
    pub rolled_back: Vec<String>,
}

/// A line of the incident's timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineEntry {
    /// Simulated seconds since the incident opened.
    pub at: f64,
    /// Who.
    pub agent: AgentType,
    /// What.
    pub text: String,
}

/// How the incident ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Final status.
    pub status: IncidentStatus,
    /// Simulated seconds from open to close.
    pub elapsed: f64,
    /// Dollars saved, when resolved.
    pub savings: Option<f64>,
    /// Every attempt, in order.
    pub attempts: Vec<Attempt>,
    /// Why it ended this way, in one line.
    pub summary: String,
}

/// The communication agent.
pub struct Communication;

impl Communication {
    /// The status-page line.
    pub fn status_line(&self, case: &Case, outcome: &Outcome) -> String {
        format!(
            "[{}] {}: {}",
            outcome.status.as_str().to_uppercase(),
            case.incident.title,
            outcome.summary
        )
    }

    /// The full report, in markdown.
    pub fn report(&self, case: &Case, outcome: &Outcome, timeline: &[TimelineEntry]) -> String {
        let mut md = String::new();
        write_header(&mut md, case, outcome);
        write_root_cause(&mut md, case);
        write_actions(&mut md, &outcome.attempts);
        write_impact(&mut md, case.prediction.as_ref());
        write_timeline(&mut md, timeline);
        md
    }
}

/// Writes the title, the status line (status, severity, time to resolve,
/// savings) and the one-line summary.
fn write_header(md: &mut String, case: &Case, outcome: &Outcome) {
    let incident = &case.incident;
    let _ = writeln!(md, "# {}\n", incident.title);
    let _ = writeln!(
        md,
        "**Status:** {} · **Severity:** {} · **Time to resolve:** {:.1} s{}\n",
        outcome.status.as_str(),
        incident.severity.as_str(),
        outcome.elapsed,
        outcome
            .savings
            .map(|s| format!(" · **Saved:** ${s:.0}"))
            .unwrap_or_default()
    );
    let _ = writeln!(md, "{}\n", outcome.summary);
}

/// Writes the "Root cause" section: the best hypothesis and the runners-up,
/// then what detection saw.
fn write_root_cause(md: &mut String, case: &Case) {
    let _ = writeln!(md, "## Root cause\n");
    match case.diagnosis.as_ref().and_then(|d| d.hypotheses.split_first()) {
        None => {
            let _ = writeln!(md, "No root cause identified.\n");
        }
        Some((top, others)) => {
            write_top_hypothesis(md, top);
            write_runners_up(md, others);
        }
    }
    if let Some(detection) = &case.detection {
        write_detection(md, detection);
    }
}

/// Writes the best hypothesis: its confidence, its dependency path and the
/// table of its evidence.
fn write_top_hypothesis(md: &mut String, top: &Hypothesis) {
    let _ = writeln!(
        md,
        "{} ({:.0}% confidence; signature match {:.2}, explains {:.0}% of the anomaly).\n",
        top.label(),
        top.confidence * 100.0,
        top.signature_match,
        top.coverage * 100.0
    );
    if !top.path.is_empty() {
        let _ = writeln!(md, "Dependency path: {}\n", top.path.join(" → "));
    }
    let _ = writeln!(md, "| metric | deviation |\n|---|---|");
    for e in &top.evidence {
        let _ = writeln!(md, "| {} | {:+.1}σ |", e.metric.as_str(), e.sigma);
    }
    let _ = writeln!(md);
}

/// Writes the other hypotheses, one line each, most likely first.
fn write_runners_up(md: &mut String, others: &[Hypothesis]) {
    for other in others {
        let _ = writeln!(
            md,
            "- Also considered: {} ({:.0}%)",
            other.label(),
            other.confidence * 100.0
        );
    }
    if !others.is_empty() {
        let _ = writeln!(md);
    }
}

/// Writes how many anomalies detection found, and where.
fn write_detection(md: &mut String, detection: &Detection) {
    let _ = writeln!(
        md,
        "Detection: {} anomalies across {} metrics on {}.\n",
        detection.anomalies.len(),
        detection.metrics_analyzed,
        if detection.anomalous_services.is_empty() {
            "no service".to_owned()
        } else {
            detection.anomalous_services.join(", ")
        }
    );
}

/// Writes the "Actions and verification" section: each attempt's
/// governance, steps, verification and rollbacks, in order.
fn write_actions(md: &mut String, attempts: &[Attempt]) {
    let _ = writeln!(md, "## Actions and verification\n");
    if attempts.is_empty() {
        let _ = writeln!(md, "No remediation was attempted.\n");
    }
    for (i, attempt) in attempts.iter().enumerate() {
        let _ = writeln!(md, "{}. **{}** — {}", i + 1, attempt.hypothesis, attempt.consensus);
        for line in &attempt.governance {
            let _ = writeln!(md, "   - Governance: {line}");
        }
        for (step, seconds) in &attempt.executed {
            let _ = writeln!(md, "   - {step} ({seconds:.1} s)");
        }
        // A plan that was never cleared to run has nothing to verify.
        if attempt.approved {
            let _ = writeln!(
                md,
                "   - Verification: {}",
                if attempt.verified {
                    "recovered, from telemetry".to_owned()
                } else {
                    format!("no recovery ({})", attempt.outstanding.join("; "))
                }
            );
        }
        for step in &attempt.rolled_back {
            let _ = writeln!(md, "   - Rolled back: {step}");
        }
    }
    let _ = writeln!(md);
}

/// Writes the "Impact" section: the cost per minute at detection and the
/// five costliest services.
fn write_impact(md: &mut String, prediction: Option<&Prediction>) {
    let _ = writeln!(md, "## Impact\n");
    match prediction {
        Some(p) => {
            let _ = writeln!(md, "At detection: ${:.0}/min.", p.impact_per_minute);
            for loss in p.losses.iter().take(5) {
                let _ = writeln!(md, "- {}: ${:.0}/min", loss.service, loss.per_minute);
            }
            let _ = writeln!(md);
        }
        None => {
            let _ = writeln!(md, "Not assessed.\n");
        }
    }
}

/// Writes the "Timeline" section, one line per entry.
fn write_timeline(md: &mut String, timeline: &[TimelineEntry]) {
    let _ = writeln!(md, "## Timeline\n");
    for entry in timeline {
        let _ = writeln!(md, "- +{:.1}s {}: {}", entry.at, entry.agent.label(), entry.text);
    }
}

impl Agent for Communication {
    fn kind(&self) -> AgentType {
        AgentType::Communication
    }

    /// Opens the status-page entry while the others work.
    fn work(&self, case: &mut Case, _estate: &dyn Observed) -> Report {
        Report {
            details: ActionDetails::StatusPage(StatusPage {
                status_page: "investigating".into(),
                audience: vec!["status_page".into(), "on_call".into()],
                title: case.incident.title.clone(),
            }),
            confidence: 0.95,
        }
    }

    /// Approves a plan that touches only what it must: services in the
    /// blast radius it is meant to heal, or their direct callers.
    fn judge(&self, case: &Case, plan: &Plan, estate: &dyn Observed) -> Judgement {
        let topology = estate.topology();
        let radius: Vec<&str> = case
            .diagnosis
            .as_ref()
            .map(|d| d.blast_radius.iter().map(|a| a.service.as_str()).collect())
            .unwrap_or_default();
        let stray: Vec<&str> = plan
            .steps
            .iter()
            .map(|s| s.remediation.target.as_str())
            .filter(|t| *t != plan.root.service && !radius.contains(t))
            .filter(|t| {
                let (Some(target), Some(root)) = (topology.index(t), topology.index(&plan.root.service)) else {
                    return true;
                };
                !topology.spec(target).edges.iter().any(|e| e.to == root)
            })
            .collect();
        Judgement {
            approve: stray.is_empty(),
            reason: if stray.is_empty() {
                "the plan stays within the blast radius".into()
            } else {
                format!("the plan touches unrelated services: {}", stray.join(", "))
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::fixtures;

    #[test]
    fn the_report_names_the_cause_actions_and_verification() {
        let case = Case::new(fixtures::incident(&["order-service"]));
        let outcome = Outcome {
            status: IncidentStatus::Resolved,
            elapsed: 17.3,
            savings: Some(1200.0),
            attempts: vec![Attempt {
                hypothesis: "crash loop on order-service".into(),
                consensus: "approved 5/5 (quorum 3)".into(),
                approved: true,
                governance: vec!["Policy rule `default`: auto-approved (reversible)".into()],
                executed: vec![("Roll back deploy on order-service".into(), 2.2)],
                verified: true,
                outstanding: Vec::new(),
                rolled_back: Vec::new(),
            }],
            summary: "Rolled back the bad release.".into(),
        };
        let timeline = [TimelineEntry {
            at: 1.2,
            agent: AgentType::Detection,
            text: "3 anomalies".into(),
        }];
        let md = Communication.report(&case, &outcome, &timeline);
        assert!(md.contains("**Status:** resolved"));
        assert!(md.contains("Roll back deploy on order-service (2.2 s)"));
        assert!(md.contains("recovered, from telemetry"));
        assert!(md.contains("+1.2s Detection: 3 anomalies"));
        assert!(md.contains("$1200"));
    }
}
