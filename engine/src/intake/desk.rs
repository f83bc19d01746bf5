//! Which incident each alert belongs to: redeliveries are recognised by
//! fingerprint, and alerts close in time on services close in the call
//! graph share one incident (the rule is data: `data/correlation.toml`).

use std::collections::{BTreeSet, HashMap, VecDeque};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use super::Alert;
use crate::protocol::{AlertPlacement, AlertRecord};
use crate::twin::topology::Topology;

/// Most fingerprints remembered; the oldest are forgotten first.
const REMEMBERED: usize = 100_000;

/// When alerts share an incident.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Correlation {
    /// How old an incident's last alert may be for another to join it.
    pub window_seconds: f64,
    /// How many calls apart two services may be.
    pub max_hops: usize,
}

impl Correlation {
    /// The shipped rule.
    pub fn embedded() -> Result<Self, String> {
        let rule: Self = toml::from_str(include_str!("../../data/correlation.toml"))
            .map_err(|e| format!("data/correlation.toml: {e}"))?;
        if !(rule.window_seconds.is_finite() && rule.window_seconds >= 0.0) {
            return Err("data/correlation.toml: window_seconds must be 0 or more".into());
        }
        Ok(rule)
    }
}

/// An open incident that came from alerts.
#[derive(Debug, Clone)]
struct Group {
    incident: Uuid,
    services: BTreeSet<usize>,
    last_alert: DateTime<Utc>,
}

/// Where one alert went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Already placed (a redelivery): its incident.
    Duplicate(Uuid),
    /// Joins this open incident.
    Joined(Uuid),
    /// Opens a new incident with the other alerts of cluster `n`.
    New(usize),
    /// A resolved alert, recorded against its incident (if it had one).
    Resolved(Option<Uuid>),
}

/// An alert the desk placed.
#[derive(Debug, Clone, PartialEq)]
pub struct Placed {
    pub incident: Uuid,
    /// The alert as it fired: its name, service and every label (what a
    /// silence matches on).
    pub record: AlertRecord,
}

/// The alerts seen, and the open incidents they made.
#[derive(Debug, Default)]
pub struct Desk {
    /// Each alert placed: its incident, and what it was (a resolution may
    /// carry only its key).
    by_fingerprint: HashMap<String, Placed>,
    /// Fingerprints in arrival order, to forget the oldest.
    arrival: VecDeque<String>,
    groups: Vec<Group>,
}

impl Desk {
    /// Decides where each alert of a delivery goes. `is_open` says whether
    /// an incident is still being worked on. New alerts that belong
    /// together are numbered as one cluster; [`Desk::opened`] then records
    /// each cluster's incident.
    pub fn place(
        &mut self,
        alerts: &[Alert],
        now: DateTime<Utc>,
        topology: &Topology,
        rule: &Correlation,
        is_open: impl Fn(Uuid) -> bool,
    ) -> Vec<Placement> {
        self.groups.retain(|g| is_open(g.incident));
        let mut clusters: Vec<BTreeSet<usize>> = Vec::new();
        let mut placements = Vec::with_capacity(alerts.len());
        for alert in alerts {
            let known = self.by_fingerprint.get(&alert.fingerprint).map(|p| p.incident);
            if !alert.firing {
                if let Some(placed) = self.by_fingerprint.get_mut(&alert.fingerprint) {
                    placed.record.placement = AlertPlacement::Resolved;
                }
                placements.push(Placement::Resolved(known));
                continue;
            }
            let service = topology
                .index(&alert.service)
                .expect("firing alerts are checked against the topology");
            let placement = if let Some(incident) = known.filter(|id| is_open(*id)) {
                Placement::Duplicate(incident)
            } else if let Some(group) = self.groups.iter_mut().find(|g| {
                (now - g.last_alert).as_seconds_f64() <= rule.window_seconds
                    && g.services.iter().any(|&s| within(topology, s, service, rule.max_hops))
            }) {
                group.services.insert(service);
                group.last_alert = now;
                Placement::Joined(group.incident)
            } else if let Some(n) = clusters
                .iter()
                .position(|c| c.iter().any(|&s| within(topology, s, service, rule.max_hops)))
            {
                clusters[n].insert(service);
                Placement::New(n)
            } else {
                clusters.push(BTreeSet::from([service]));
                Placement::New(clusters.len() - 1)
            };
            if let Placement::Joined(incident) | Placement::Duplicate(incident) = placement {
                self.remember(alert, incident);
            }
            placements.push(placement);
        }
        placements
    }

    /// Records that cluster `alerts` (a delivery's, with their placements)
    /// opened `incident`.
    pub fn opened(&mut self, incident: Uuid, alerts: &[&Alert], topology: &Topology, now: DateTime<Utc>) {
        let services = alerts.iter().filter_map(|a| topology.index(&a.service)).collect();
        for alert in alerts {
            self.remember(alert, incident);
        }
        self.groups.push(Group {
            incident,
            services,
            last_alert: now,
        });
    }

    /// Remembers that `alert` was placed on `incident` before a restart
    /// (from the log), so its redeliveries and its resolution find it.
    pub fn recall(&mut self, alert: &AlertRecord, incident: Uuid) {
        self.keep(alert.clone(), incident);
    }

    /// The alerts placed on `incident` that still fire, as they fired (for
    /// silences).
    pub fn alerts_of(&self, incident: Uuid) -> Vec<AlertRecord> {
        let mut alerts: Vec<_> = (self.by_fingerprint.values())
            .filter(|p| p.incident == incident && p.record.placement != AlertPlacement::Resolved)
            .map(|p| p.record.clone())
            .collect();
        alerts.sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint));
        alerts
    }

    /// The alert placed with this fingerprint, if the desk still knows it.
    pub fn placed(&self, fingerprint: &str) -> Option<&Placed> {
        self.by_fingerprint.get(fingerprint)
    }

    fn remember(&mut self, alert: &Alert, incident: Uuid) {
        self.keep(alert.record(AlertPlacement::Joined), incident);
    }

    fn keep(&mut self, record: AlertRecord, incident: Uuid) {
        let fingerprint = record.fingerprint.clone();
        let placed = Placed { incident, record };
        if self.by_fingerprint.insert(fingerprint.clone(), placed).is_none() {
            self.arrival.push_back(fingerprint);
            if self.arrival.len() > REMEMBERED
                && let Some(oldest) = self.arrival.pop_front()
            {
                self.by_fingerprint.remove(&oldest);
            }
        }
    }
}

/// Whether `a` and `b` are at most `hops` calls apart, either way.
fn within(topology: &Topology, a: usize, b: usize, hops: usize) -> bool {
    let mut frontier = vec![a];
    let mut seen = BTreeSet::from([a]);
    for _ in 0..=hops {
        if frontier.contains(&b) {
            return true;
        }
        let next: Vec<usize> = frontier
            .iter()
            .flat_map(|&s| neighbours(topology, s))
            .filter(|n| seen.insert(*n))
            .collect();
        frontier = next;
    }
    false
}

/// The services `s` calls and the ones that call it.
fn neighbours(topology: &Topology, s: usize) -> Vec<usize> {
    let calls = topology.spec(s).edges.iter().map(|e| e.to);
    let callers = (0..topology.len()).filter(|&c| topology.spec(c).edges.iter().any(|e| e.to == s));
    calls.chain(callers).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::Duration;

    use super::*;
    use crate::protocol::Severity;

    fn alert(fingerprint: &str, service: &str, firing: bool) -> Alert {
        Alert {
            source: "alertmanager",
            fingerprint: fingerprint.into(),
            firing,
            name: "ErrorRateObjectiveBreached".into(),
            service: service.into(),
            severity: Severity::Critical,
            summary: format!("{service} fails"),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            starts_at: Utc::now(),
            generator_url: None,
        }
    }

    fn rule() -> Correlation {
        Correlation::embedded().unwrap()
    }

    #[test]
    fn related_alerts_of_a_delivery_share_a_cluster_and_unrelated_ones_do_not() {
        let topology = Topology::embedded().unwrap();
        let mut desk = Desk::default();
        // order-service calls postgres-primary; ingestion-agent is far from both.
        let alerts = [
            alert("a", "order-service", true),
            alert("b", "postgres-primary", true),
            alert("c", "ingestion-agent", true),
        ];
        let placed = desk.place(&alerts, Utc::now(), &topology, &rule(), |_| true);
        assert_eq!(placed, [Placement::New(0), Placement::New(0), Placement::New(1)]);
    }

    #[test]
    fn a_redelivery_is_a_duplicate_and_a_neighbour_joins_while_the_incident_is_open() {
        let topology = Topology::embedded().unwrap();
        let mut desk = Desk::default();
        let now = Utc::now();
        let first = alert("a", "order-service", true);
        assert_eq!(
            desk.place(std::slice::from_ref(&first), now, &topology, &rule(), |_| true),
            [Placement::New(0)]
        );
        let incident = Uuid::new_v4();
        desk.opened(incident, &[&first], &topology, now);

        let again = desk.place(std::slice::from_ref(&first), now, &topology, &rule(), |_| true);
        assert_eq!(again, [Placement::Duplicate(incident)]);
        let neighbour = alert("b", "postgres-primary", true);
        let joined = desk.place(
            std::slice::from_ref(&neighbour),
            now + Duration::seconds(10),
            &topology,
            &rule(),
            |_| true,
        );
        assert_eq!(joined, [Placement::Joined(incident)]);
        let resolved = desk.place(
            &[alert("b", "postgres-primary", false)],
            now,
            &topology,
            &rule(),
            |_| true,
        );
        assert_eq!(resolved, [Placement::Resolved(Some(incident))]);

        // Once the incident is closed, the same alert firing again is new.
        let closed = desk.place(&[first], now, &topology, &rule(), |_| false);
        assert_eq!(closed, [Placement::New(0)]);
    }

    #[test]
    fn an_alert_after_the_window_opens_its_own_incident() {
        let topology = Topology::embedded().unwrap();
        let mut desk = Desk::default();
        let now = Utc::now();
        let first = alert("a", "order-service", true);
        desk.place(std::slice::from_ref(&first), now, &topology, &rule(), |_| true);
        desk.opened(Uuid::new_v4(), &[&first], &topology, now);
        let late = now + Duration::seconds(rule().window_seconds as i64 + 1);
        let placed = desk.place(
            &[alert("b", "postgres-primary", true)],
            late,
            &topology,
            &rule(),
            |_| true,
        );
        assert_eq!(placed, [Placement::New(0)]);
    }

    #[test]
    fn hops_are_counted_either_way_along_the_call_graph() {
        let topology = Topology::embedded().unwrap();
        let id = |name| topology.index(name).unwrap();
        assert!(
            within(&topology, id("postgres-primary"), id("order-service"), 1),
            "callee to caller"
        );
        assert!(within(&topology, id("order-service"), id("order-service"), 0));
        assert!(!within(&topology, id("order-service"), id("ingestion-agent"), 1));
    }
}
