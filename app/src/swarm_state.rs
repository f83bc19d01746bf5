//! What the swarm graph shows, folded from the same events as the rest of
//! the dashboard: each agent's node state, the hand-offs between agents as
//! they happen (the graph animates them along its edges), and the latest
//! consensus round with its ballots.
//!
//! Pure Rust, no Leptos: [`crate::state::DashboardState`] owns a
//! [`SwarmState`] and feeds it every event it applies.

use std::collections::{BTreeMap, HashMap, VecDeque};

use engine::protocol::{
    ActionStatus, AgentStats, AgentType, BreakerState, ConsensusRound, Envelope, ServerMessage, VoteChoice,
};
use uuid::Uuid;

/// Most hand-offs kept for the graph to animate; older ones have long
/// finished moving.
pub const FLOW_CAP: usize = 24;

/// Incidents whose latest agent is remembered; far more than ever run at
/// once, so hand-offs are never lost, and the map stays bounded.
const TRACKED_INCIDENTS: usize = 64;

/// A node of the swarm graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Node {
    /// One of the five agents.
    Agent(AgentType),
    /// The Byzantine vote every agent casts a ballot in.
    Consensus,
}

/// What a message on an edge carries, for its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowKind {
    /// An incident handed from one agent to the next.
    Handoff,
    /// A ballot for the plan.
    Approve,
    /// A ballot against the plan.
    Reject,
    /// The vote's outcome, back to the agent that runs the plan.
    Verdict,
}

impl FlowKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Handoff => "handoff",
            Self::Approve => "approve",
            Self::Reject => "reject",
            Self::Verdict => "verdict",
        }
    }
}

/// One message travelling along an edge of the graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Flow {
    /// The event that sent it; with `from`, its identity.
    pub seq: u64,
    /// Where it leaves.
    pub from: Node,
    /// Where it arrives.
    pub to: Node,
    /// What it carries.
    pub kind: FlowKind,
}

impl Flow {
    /// Unique among the flows kept: one event sends at most one message
    /// from each node.
    pub fn key(&self) -> String {
        format!("{}:{:?}", self.seq, self.from)
    }
}

/// An agent's state on the graph, worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    /// Its lane's circuit breaker is open (or half open, on probation).
    CircuitOpen,
    /// Working on at least one incident.
    Working,
    /// A plan is being voted on and this agent has nothing else to do.
    WaitingForVote,
    /// Its latest action failed.
    Failed,
    /// Nothing to do.
    Idle,
}

impl NodeState {
    /// Wire-style name, for `data-state` and CSS.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CircuitOpen => "circuit-open",
            Self::Working => "working",
            Self::WaitingForVote => "waiting-for-vote",
            Self::Failed => "failed",
            Self::Idle => "idle",
        }
    }

    /// For people.
    pub fn label(self) -> &'static str {
        match self {
            Self::CircuitOpen => "circuit open",
            Self::Working => "working",
            Self::WaitingForVote => "waiting for a vote",
            Self::Failed => "failed",
            Self::Idle => "idle",
        }
    }
}

/// What one agent is doing, derived from its actions.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentView {
    /// Actions started and not yet finished.
    pub in_flight: usize,
    /// Actions finished.
    pub completed: u64,
    /// Confidence of the latest finished action.
    pub last_confidence: Option<f64>,
    /// What its latest failed action said, while that is its latest.
    pub failure: Option<String>,
    /// Its state on the graph.
    pub state: NodeState,
}

/// An action that started and has not finished.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Unfinished {
    /// Who is doing it.
    agent: AgentType,
    /// For which incident.
    incident: Uuid,
    /// It is a consensus vote on a plan.
    vote: bool,
}

/// An agent's finished work.
#[derive(Debug, Clone, Default, PartialEq)]
struct Finished {
    /// Actions finished.
    count: u64,
    /// Confidence of the latest one that had one.
    last_confidence: Option<f64>,
    /// The latest one's description, if it failed.
    failure: Option<String>,
}

/// The latest consensus round, and where it was held.
#[derive(Debug, Clone, PartialEq)]
pub struct LatestRound {
    /// The incident whose plan was voted on.
    pub incident_id: Uuid,
    /// The event that published it.
    pub seq: u64,
    /// Ballots and tally.
    pub round: ConsensusRound,
}

/// The swarm graph's state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SwarmState {
    /// Unfinished actions by action id.
    in_flight: HashMap<Uuid, Unfinished>,
    /// Finished work by agent.
    finished: BTreeMap<AgentType, Finished>,
    /// The agent that acted last on each recent incident, oldest incident
    /// first, to see a hand-off when another agent takes over.
    last_agent: VecDeque<(Uuid, AgentType)>,
    /// Recent messages on the graph's edges, oldest first.
    pub flows: VecDeque<Flow>,
    /// The newest vote.
    pub latest_round: Option<LatestRound>,
}

impl SwarmState {
    /// Folds one event in.
    pub fn fold(&mut self, envelope: &Envelope) {
        match &envelope.message {
            ServerMessage::AgentAction { incident_id, action } => match action.status {
                ActionStatus::InProgress => {
                    self.in_flight.insert(
                        action.action_id,
                        Unfinished {
                            agent: action.agent_type,
                            incident: *incident_id,
                            vote: action.is_vote(),
                        },
                    );
                    self.hand_to(envelope.seq, *incident_id, action.agent_type);
                }
                ActionStatus::Completed | ActionStatus::Failed => {
                    self.in_flight.remove(&action.action_id);
                    let finished = self.finished.entry(action.agent_type).or_default();
                    finished.count += 1;
                    finished.last_confidence = action.confidence.or(finished.last_confidence);
                    finished.failure = (action.status == ActionStatus::Failed).then(|| action.description.clone());
                }
            },
            ServerMessage::Consensus { incident_id, round } => {
                for vote in &round.votes {
                    let kind = match vote.choice {
                        VoteChoice::Approve => FlowKind::Approve,
                        VoteChoice::Reject => FlowKind::Reject,
                        VoteChoice::Silent => continue,
                    };
                    self.send(envelope.seq, Node::Agent(vote.agent), Node::Consensus, kind);
                }
                if round.passed {
                    self.send(
                        envelope.seq,
                        Node::Consensus,
                        Node::Agent(AgentType::Resolution),
                        FlowKind::Verdict,
                    );
                }
                self.latest_round = Some(LatestRound {
                    incident_id: *incident_id,
                    seq: envelope.seq,
                    round: round.clone(),
                });
            }
            ServerMessage::IncidentStatus {
                incident_id, status, ..
            } if status.is_terminal() => {
                self.in_flight.retain(|_, u| u.incident != *incident_id);
                self.last_agent.retain(|(id, _)| id != incident_id);
            }
            _ => {}
        }
    }

    /// Forgets the hand-offs, keeping everything else: a snapshot's replay
    /// of past events must not animate on first paint.
    pub fn settle(&mut self) {
        self.flows.clear();
    }

    /// Records that `agent` took up `incident`: a hand-off from the agent
    /// that acted on it last, if another.
    fn hand_to(&mut self, seq: u64, incident: Uuid, agent: AgentType) {
        let previous = match self.last_agent.iter_mut().find(|(id, _)| *id == incident) {
            Some((_, last)) => Some(std::mem::replace(last, agent)),
            None => {
                if self.last_agent.len() == TRACKED_INCIDENTS {
                    self.last_agent.pop_front();
                }
                self.last_agent.push_back((incident, agent));
                None
            }
        };
        if let Some(from) = previous.filter(|from| *from != agent) {
            self.send(seq, Node::Agent(from), Node::Agent(agent), FlowKind::Handoff);
        }
    }

    fn send(&mut self, seq: u64, from: Node, to: Node, kind: FlowKind) {
        if self.flows.len() == FLOW_CAP {
            self.flows.pop_front();
        }
        self.flows.push_back(Flow { seq, from, to, kind });
    }

    /// Whether a plan is being voted on.
    pub fn vote_open(&self) -> bool {
        self.in_flight.values().any(|u| u.vote)
    }

    /// What `agent` is doing; `lanes` are the bus's latest figures.
    pub fn agent(&self, agent: AgentType, lanes: &[AgentStats]) -> AgentView {
        let finished = self.finished.get(&agent).cloned().unwrap_or_default();
        let mine = || self.in_flight.values().filter(|u| u.agent == agent);
        let in_flight = mine().count();
        let breaker = lanes
            .iter()
            .find(|l| l.agent == agent)
            .map_or(BreakerState::Closed, |l| l.breaker);
        let state = if breaker != BreakerState::Closed {
            NodeState::CircuitOpen
        } else if mine().any(|u| !u.vote) {
            NodeState::Working
        } else if self.vote_open() {
            NodeState::WaitingForVote
        } else if finished.failure.is_some() {
            NodeState::Failed
        } else {
            NodeState::Idle
        };
        AgentView {
            in_flight,
            completed: finished.count,
            last_confidence: finished.last_confidence,
            failure: finished.failure,
            state,
        }
    }
}

#[cfg(test)]
mod tests {
    use engine::protocol::{ConsensusVote, IncidentStatus};

    use super::*;
    use crate::fixtures::{action, at, vote as plan_vote};

    /// The shared fixture's action; a vote carries the plan voted on.
    fn act(incident: u128, id: u128, agent: AgentType, status: ActionStatus, vote: bool) -> ServerMessage {
        let mut message = action(incident, id, agent, status);
        if let ServerMessage::AgentAction { action, .. } = &mut message
            && vote
        {
            action.details = plan_vote("redis-cache");
        }
        message
    }

    fn round(choices: &[(AgentType, VoteChoice, Option<&str>)], passed: bool) -> ServerMessage {
        ServerMessage::Consensus {
            incident_id: Uuid::from_u128(1),
            round: ConsensusRound {
                plan: "restart redis-cache".into(),
                voters: choices.len(),
                tolerated: 1,
                quorum: 3,
                approvals: choices.iter().filter(|c| c.1 == VoteChoice::Approve).count(),
                rejections: choices.iter().filter(|c| c.1 == VoteChoice::Reject).count(),
                silent: choices.iter().filter(|c| c.1 == VoteChoice::Silent).count(),
                passed,
                dissent: Vec::new(),
                votes: choices
                    .iter()
                    .map(|(agent, choice, fault)| ConsensusVote {
                        agent: *agent,
                        choice: *choice,
                        reason: String::new(),
                        injected_fault: fault.map(str::to_owned),
                    })
                    .collect(),
            },
        }
    }

    fn fold_all(messages: Vec<ServerMessage>) -> SwarmState {
        let mut swarm = SwarmState::default();
        for (i, message) in messages.into_iter().enumerate() {
            swarm.fold(&at(i as u64 + 1, message));
        }
        swarm
    }

    #[test]
    fn a_handoff_is_a_flow_from_the_previous_agent_of_the_same_incident() {
        use AgentType::*;
        let swarm = fold_all(vec![
            act(1, 10, Detection, ActionStatus::InProgress, false),
            act(1, 10, Detection, ActionStatus::Completed, false),
            // Another incident's agent is not a hand-off for incident 1.
            act(2, 20, Prediction, ActionStatus::InProgress, false),
            act(1, 11, Diagnosis, ActionStatus::InProgress, false),
            // The same agent again: no message on any edge.
            act(1, 12, Diagnosis, ActionStatus::InProgress, false),
        ]);
        let flows: Vec<_> = swarm.flows.iter().map(|f| (f.seq, f.from, f.to, f.kind)).collect();
        assert_eq!(
            flows,
            vec![(4, Node::Agent(Detection), Node::Agent(Diagnosis), FlowKind::Handoff)]
        );
    }

    #[test]
    fn ballots_flow_to_the_vote_and_a_passed_verdict_flows_to_resolution() {
        use AgentType::*;
        let swarm = fold_all(vec![round(
            &[
                (Detection, VoteChoice::Approve, None),
                (Diagnosis, VoteChoice::Approve, None),
                (Prediction, VoteChoice::Reject, Some("adversarial")),
                (Resolution, VoteChoice::Approve, None),
                (Communication, VoteChoice::Silent, Some("silent")),
            ],
            true,
        )]);
        let kinds: Vec<_> = swarm.flows.iter().map(|f| (f.from, f.to, f.kind)).collect();
        assert_eq!(
            kinds,
            vec![
                (Node::Agent(Detection), Node::Consensus, FlowKind::Approve),
                (Node::Agent(Diagnosis), Node::Consensus, FlowKind::Approve),
                (Node::Agent(Prediction), Node::Consensus, FlowKind::Reject),
                (Node::Agent(Resolution), Node::Consensus, FlowKind::Approve),
                (Node::Consensus, Node::Agent(Resolution), FlowKind::Verdict),
            ],
            "the silent voter sends nothing"
        );
        let keys: std::collections::HashSet<_> = swarm.flows.iter().map(Flow::key).collect();
        assert_eq!(keys.len(), swarm.flows.len(), "flow keys are unique");
        let latest = swarm.latest_round.expect("the round is kept");
        assert_eq!(latest.round.votes[2].injected_fault.as_deref(), Some("adversarial"));
    }

    #[test]
    fn a_rejected_plan_sends_no_verdict() {
        let swarm = fold_all(vec![round(&[(AgentType::Detection, VoteChoice::Reject, None)], false)]);
        assert!(swarm.flows.iter().all(|f| f.kind != FlowKind::Verdict));
    }

    #[test]
    fn flows_are_capped_and_settle_forgets_them() {
        let mut swarm = SwarmState::default();
        let agents = [AgentType::Detection, AgentType::Diagnosis];
        for seq in 1..=(FLOW_CAP as u64 * 3) {
            let agent = agents[seq as usize % 2];
            swarm.fold(&at(seq, act(1, seq as u128, agent, ActionStatus::InProgress, false)));
        }
        assert_eq!(swarm.flows.len(), FLOW_CAP);
        assert_eq!(swarm.flows.back().map(|f| f.seq), Some(FLOW_CAP as u64 * 3));
        swarm.settle();
        assert!(swarm.flows.is_empty());
        assert_eq!(swarm.agent(AgentType::Diagnosis, &[]).in_flight, FLOW_CAP * 3 / 2);
    }

    #[test]
    fn node_states_follow_work_votes_failures_and_breakers() {
        use AgentType::*;
        let mut swarm = fold_all(vec![
            act(1, 1, Detection, ActionStatus::InProgress, false),
            act(1, 2, Diagnosis, ActionStatus::InProgress, false),
            act(1, 2, Diagnosis, ActionStatus::Failed, false),
        ]);
        assert_eq!(swarm.agent(Detection, &[]).state, NodeState::Working);
        let diagnosis = swarm.agent(Diagnosis, &[]);
        assert_eq!(diagnosis.state, NodeState::Failed);
        assert_eq!(diagnosis.failure.as_deref(), Some("Diagnosis Failed"));
        assert_eq!(swarm.agent(Prediction, &[]).state, NodeState::Idle);

        // A vote opens: idle agents wait for it, the working one works on.
        swarm.fold(&at(4, act(1, 3, Resolution, ActionStatus::InProgress, true)));
        assert_eq!(swarm.agent(Resolution, &[]).state, NodeState::WaitingForVote);
        assert_eq!(swarm.agent(Prediction, &[]).state, NodeState::WaitingForVote);
        assert_eq!(swarm.agent(Detection, &[]).state, NodeState::Working);
        swarm.fold(&at(5, act(1, 3, Resolution, ActionStatus::Completed, true)));
        assert_eq!(swarm.agent(Prediction, &[]).state, NodeState::Idle);

        // A later success clears the failure.
        swarm.fold(&at(6, act(1, 4, Diagnosis, ActionStatus::InProgress, false)));
        swarm.fold(&at(7, act(1, 4, Diagnosis, ActionStatus::Completed, false)));
        assert_eq!(swarm.agent(Diagnosis, &[]).state, NodeState::Idle);

        // An open breaker outranks everything.
        let lane = AgentStats {
            agent: Detection,
            queue_depth: 0,
            busy: 1,
            workers: 1,
            utilization: 1.0,
            messages_per_minute: 0,
            p50_ms: None,
            p99_ms: None,
            completed: 0,
            breaker: BreakerState::Open,
            failures: 3,
        };
        assert_eq!(swarm.agent(Detection, &[lane]).state, NodeState::CircuitOpen);
    }

    #[test]
    fn a_terminal_incident_clears_its_unfinished_work_and_its_last_agent() {
        use AgentType::*;
        let mut swarm = fold_all(vec![act(1, 1, Detection, ActionStatus::InProgress, false)]);
        swarm.fold(&at(
            2,
            ServerMessage::IncidentStatus {
                incident_id: Uuid::from_u128(1),
                status: IncidentStatus::Failed,
                resolution_time: None,
                cost_savings: None,
                root_cause: None,
                report: None,
                time_to_detect: None,
                time_to_diagnose: None,
            },
        ));
        assert_eq!(swarm.agent(Detection, &[]).state, NodeState::Idle);
        // The next action on that id is no hand-off from a finished story.
        swarm.fold(&at(3, act(1, 2, Diagnosis, ActionStatus::InProgress, false)));
        assert!(swarm.flows.is_empty());
    }
}
