//! The service dependency map: where each service of the estate sits
//! (callers above what they call), and what each one is while incidents
//! run: the root cause, inside an active incident's blast radius, or
//! recovered. Pure Rust: the health panel draws it, the tests check it.

use std::collections::{BTreeMap, HashMap};

use engine::protocol::{Diagnosis, HealthState, Incident, IncidentStatus, ServiceTelemetry};
use uuid::Uuid;

/// The map's width in its own units; rows are [`ROW`] apart.
pub const MAP_WIDTH: f64 = 700.0;
/// Distance between rows.
pub const ROW: f64 = 62.0;

/// What diagnosis said an incident reaches: its root cause's service and
/// the services that depend on it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BlastRadius {
    /// The top hypothesis's service.
    pub root: Option<String>,
    /// Every service trouble at the root can show up at, the root included.
    pub services: Vec<String>,
}

impl BlastRadius {
    /// What a finished diagnosis says the incident reaches; none when it
    /// names no blast radius (nothing explained the anomalies).
    pub fn from_diagnosis(diagnosis: &Diagnosis) -> Option<Self> {
        if diagnosis.blast_radius.is_empty() {
            return None;
        }
        Some(Self {
            root: diagnosis
                .blast_radius
                .iter()
                .find(|a| a.root)
                .map(|a| a.service.clone()),
            services: diagnosis.blast_radius.iter().map(|a| a.service.clone()).collect(),
        })
    }

    /// The least diagnosis that [`Self::from_diagnosis`] reads back as
    /// `self`, for a slimmed snapshot: the blast radius alone.
    pub fn slim(diagnosis: &Diagnosis) -> Diagnosis {
        Diagnosis {
            blast_radius: diagnosis.blast_radius.clone(),
            ..Diagnosis::default()
        }
    }
}

/// The services an incident reaches: its diagnosed blast radius, or until
/// diagnosis, the services it was reported on.
pub fn reached<'a>(incident: &'a Incident, blast: &'a BTreeMap<Uuid, BlastRadius>) -> &'a [String] {
    blast
        .get(&incident.id)
        .map_or(&incident.affected_services, |radius| &radius.services)
}

/// What a service is on the map, worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MapState {
    /// The root cause of an active incident.
    Root,
    /// Failing its objectives badly.
    Down,
    /// Inside an active incident's blast radius.
    Blast,
    /// Missing its objectives.
    Degraded,
    /// Inside the blast radius of the latest incident that touched it, which
    /// was resolved, and healthy now.
    Recovered,
    /// Nothing to say.
    Healthy,
}

impl MapState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Root => "root",
            Self::Down => "down",
            Self::Blast => "blast",
            Self::Degraded => "degraded",
            Self::Recovered => "recovered",
            Self::Healthy => "healthy",
        }
    }
}

/// One service on the map.
#[derive(Debug, Clone, PartialEq)]
pub struct MapNode {
    /// Its name.
    pub name: String,
    /// Centre, in map units.
    pub x: f64,
    pub y: f64,
    /// What it is now.
    pub state: MapState,
}

/// A call from one service to another.
#[derive(Debug, Clone, PartialEq)]
pub struct MapEdge {
    /// Caller and callee centres.
    pub from: (f64, f64),
    pub to: (f64, f64),
    /// Both ends are inside an active blast radius: trouble travels it.
    pub hot: bool,
}

/// The whole map.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EstateMap {
    pub nodes: Vec<MapNode>,
    pub edges: Vec<MapEdge>,
    /// Map units tall.
    pub height: f64,
}

/// Lays the estate out and colours it. `incidents` are newest first;
/// `blast` is each diagnosed incident's radius (the services an incident
/// reported stand in until it is diagnosed).
pub fn estate_map(twin: &[ServiceTelemetry], incidents: &[Incident], blast: &BTreeMap<Uuid, BlastRadius>) -> EstateMap {
    let index: HashMap<&str, usize> = twin.iter().enumerate().map(|(i, s)| (s.name.as_str(), i)).collect();
    let calls = |i: usize| twin[i].depends_on.iter().filter_map(|d| index.get(d.as_str()).copied());
    let called: Vec<bool> = (0..twin.len())
        .map(|i| twin.iter().any(|s| s.depends_on.contains(&twin[i].name)))
        .collect();

    // Rows by longest path from the callers nobody calls; the estate is a
    // DAG, and the pass count bounds the work if it ever is not.
    let mut row = vec![0usize; twin.len()];
    for _ in 0..twin.len() {
        let mut moved = false;
        for caller in 0..twin.len() {
            for callee in calls(caller) {
                if row[callee] < row[caller] + 1 {
                    row[callee] = row[caller] + 1;
                    moved = true;
                }
            }
        }
        if !moved {
            break;
        }
    }
    // Services that neither call nor are called share a row of their own,
    // below the graph.
    let deepest = (0..twin.len())
        .filter(|&i| called[i] || calls(i).next().is_some())
        .map(|i| row[i])
        .max()
        .unwrap_or(0);
    for i in 0..twin.len() {
        if !called[i] && calls(i).next().is_none() {
            row[i] = deepest + 1;
        }
    }

    let states = states(twin, incidents, blast);
    let rows = row.iter().max().map_or(0, |r| r + 1);
    let mut centres = vec![(0.0, 0.0); twin.len()];
    for r in 0..rows {
        let members: Vec<usize> = (0..twin.len()).filter(|&i| row[i] == r).collect();
        for (slot, &i) in members.iter().enumerate() {
            centres[i] = (
                MAP_WIDTH * (slot as f64 + 0.5) / members.len() as f64,
                ROW * (r as f64 + 0.5),
            );
        }
    }
    let active = |state: MapState| matches!(state, MapState::Root | MapState::Blast);
    let edges = (0..twin.len())
        .flat_map(|caller| calls(caller).map(move |callee| (caller, callee)))
        .map(|(caller, callee)| MapEdge {
            from: centres[caller],
            to: centres[callee],
            hot: active(states[caller]) && active(states[callee]),
        })
        .collect();
    let nodes = twin
        .iter()
        .enumerate()
        .map(|(i, s)| MapNode {
            name: s.name.clone(),
            x: centres[i].0,
            y: centres[i].1,
            state: states[i],
        })
        .collect();
    EstateMap {
        nodes,
        edges,
        height: ROW * rows as f64,
    }
}

/// Each service's state, in `twin`'s order.
fn states(twin: &[ServiceTelemetry], incidents: &[Incident], blast: &BTreeMap<Uuid, BlastRadius>) -> Vec<MapState> {
    twin.iter()
        .map(|service| {
            let name = service.name.as_str();
            let reach = |incident: &Incident| -> (bool, bool) {
                let root = blast.get(&incident.id).and_then(|r| r.root.as_deref()) == Some(name);
                (root, reached(incident, blast).iter().any(|s| s == name))
            };
            let mut state = match service.state {
                HealthState::Down => MapState::Down,
                HealthState::Degraded => MapState::Degraded,
                HealthState::Healthy => MapState::Healthy,
            };
            for incident in incidents.iter().filter(|i| i.status == IncidentStatus::Active) {
                let (root, inside) = reach(incident);
                if root {
                    state = state.min(MapState::Root);
                } else if inside {
                    state = state.min(MapState::Blast);
                }
            }
            if state == MapState::Healthy {
                // The newest finished incident that reached it decides.
                let latest = incidents.iter().filter(|i| i.status.is_terminal()).find(|i| reach(i).1);
                if latest.is_some_and(|i| i.status == IncidentStatus::Resolved) {
                    state = MapState::Recovered;
                }
            }
            state
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{self, diagnosis};

    /// A healthy service calling `depends_on`.
    fn calling(name: &str, depends_on: &[&str]) -> ServiceTelemetry {
        ServiceTelemetry {
            depends_on: depends_on.iter().map(|d| (*d).to_owned()).collect(),
            ..fixtures::service(name, HealthState::Healthy)
        }
    }

    fn incident(id: u128, status: IncidentStatus, affected: &[&str]) -> Incident {
        Incident {
            status,
            affected_services: affected.iter().map(|s| (*s).to_owned()).collect(),
            ..fixtures::incident(id)
        }
    }

    /// gateway → api → {db, cache}; api → cache too; a lone batch job.
    fn estate() -> Vec<ServiceTelemetry> {
        vec![
            calling("gateway", &["api", "cache"]),
            calling("api", &["db", "cache"]),
            calling("db", &[]),
            calling("cache", &[]),
            calling("batch", &[]),
        ]
    }

    fn node<'a>(map: &'a EstateMap, name: &str) -> &'a MapNode {
        map.nodes.iter().find(|n| n.name == name).unwrap()
    }

    #[test]
    fn callers_sit_above_what_they_call_and_loners_get_the_last_row() {
        let map = estate_map(&estate(), &[], &BTreeMap::new());
        let y = |name| node(&map, name).y;
        assert!(y("gateway") < y("api"));
        // The cache is called by the gateway directly, but also by the api:
        // the longest path puts it below the api.
        assert!(y("api") < y("cache"));
        assert_eq!(y("db"), y("cache"));
        assert!(y("batch") > y("db"));
        assert_eq!(map.height, ROW * 4.0);
        assert_eq!(map.edges.len(), 4);
        let (db, cache) = (node(&map, "db"), node(&map, "cache"));
        assert!(db.x < cache.x, "the estate's order within a row");
        assert!(map.nodes.iter().all(|n| n.state == MapState::Healthy));
    }

    #[test]
    fn a_diagnosed_blast_radius_marks_root_blast_and_hot_edges() {
        let radius = BlastRadius::from_diagnosis(&diagnosis("db", &["gateway", "api", "db"])).expect("a radius");
        assert_eq!(radius.root.as_deref(), Some("db"));
        let blast = BTreeMap::from([(Uuid::from_u128(1), radius)]);
        let incidents = [incident(1, IncidentStatus::Active, &["gateway"])];
        let map = estate_map(&estate(), &incidents, &blast);
        assert_eq!(node(&map, "db").state, MapState::Root);
        assert_eq!(node(&map, "api").state, MapState::Blast);
        assert_eq!(node(&map, "gateway").state, MapState::Blast);
        assert_eq!(node(&map, "cache").state, MapState::Healthy);
        let hot = map.edges.iter().filter(|e| e.hot).count();
        assert_eq!(hot, 2, "gateway→api and api→db; not the calls to the cache");
    }

    #[test]
    fn before_diagnosis_the_reported_services_stand_in() {
        let incidents = [incident(1, IncidentStatus::Active, &["cache"])];
        let map = estate_map(&estate(), &incidents, &BTreeMap::new());
        assert_eq!(node(&map, "cache").state, MapState::Blast);
        assert_eq!(node(&map, "db").state, MapState::Healthy);
    }

    #[test]
    fn recovery_shows_once_resolved_and_only_if_healthy_again() {
        let blast = BTreeMap::from([(
            Uuid::from_u128(1),
            BlastRadius {
                root: Some("db".into()),
                services: vec!["db".into(), "api".into()],
            },
        )]);
        let mut twin = estate();
        twin[1].state = HealthState::Degraded;
        let incidents = [incident(1, IncidentStatus::Resolved, &["api"])];
        let map = estate_map(&twin, &incidents, &blast);
        assert_eq!(node(&map, "db").state, MapState::Recovered);
        assert_eq!(node(&map, "api").state, MapState::Degraded, "still missing objectives");
        // A newer failed incident on the same service takes precedence.
        let incidents = [
            incident(2, IncidentStatus::Failed, &["db"]),
            incident(1, IncidentStatus::Resolved, &["api"]),
        ];
        let map = estate_map(&estate(), &incidents, &blast);
        assert_eq!(node(&map, "db").state, MapState::Healthy);
    }

    #[test]
    fn a_diagnosis_without_a_radius_gives_none() {
        assert_eq!(BlastRadius::from_diagnosis(&Diagnosis::default()), None);
    }

    #[test]
    fn a_slimmed_diagnosis_gives_the_same_radius() {
        let full = diagnosis("db", &["gateway", "api", "db"]);
        assert_eq!(
            BlastRadius::from_diagnosis(&BlastRadius::slim(&full)),
            BlastRadius::from_diagnosis(&full)
        );
    }
}
