//! The Agent Swarm graph (seed 001): the five agents around the vote they
//! all cast a ballot in, in pipeline order. Each node shows its state (idle,
//! working, waiting for a vote, failed, circuit open); hand-offs and ballots
//! travel along the edges as the events arrive; the latest consensus round
//! is laid out beneath, faulty voters marked. Hovering or focusing a node
//! shows its lane on the agent bus, from `swarm_stats`.

use engine::protocol::{AgentType, BreakerState, VoteChoice};
use leptos::prelude::*;

use crate::{
    state::DashboardState,
    swarm_state::{Flow, LatestRound, Node},
};

/// A small glyph per agent, drawn inline (no icon font to download).
pub fn agent_glyph(agent: AgentType) -> impl IntoView {
    let path = match agent {
        // A magnifying glass.
        AgentType::Detection => {
            "M10 4a6 6 0 1 0 3.9 10.6l4.8 4.8 1.4-1.4-4.8-4.8A6 6 0 0 0 10 4zm0 2a4 4 0 1 1 0 8 4 4 0 0 1 0-8z"
        }
        // A pulse trace.
        AgentType::Diagnosis => "M2 13h4l2-6 4 12 3-9 2 3h5v2h-6l-1-1.5-3 9-4-12-1 3.5H2z",
        // A rising trend.
        AgentType::Prediction => "M3 18l6-6 4 4 6-7V13h2V6h-7v2h3.6l-4.6 5.3-4-4L1.6 16.6z",
        // A wrench.
        AgentType::Resolution => {
            "M21 6.5l-3.2 3.2-2.5-.5-.5-2.5L18 3.5A5 5 0 0 0 11.7 10L3 18.7 5.3 21 14 12.3A5 5 0 0 0 21 6.5z"
        }
        // A broadcast.
        AgentType::Communication => {
            "M3 10v4h3l5 4V6L6 10zm13.5 2A4.5 4.5 0 0 0 14 8v8a4.5 4.5 0 0 0 2.5-4zM14 3.2v2.1a7 7 0 0 1 0 13.4v2.1a9 9 0 0 0 0-17.6z"
        }
    };
    view! {
        <svg class="glyph" viewBox="0 0 24 24" width="20" height="20" aria-hidden="true">
            <path d=path fill="currentColor"/>
        </svg>
    }
}

/// The graph's coordinate space.
const WIDTH: f64 = 560.0;
const HEIGHT: f64 = 330.0;
/// An agent node's radius; the vote's is larger.
const AGENT_R: f64 = 27.0;
const VOTE_R: f64 = 34.0;

/// Where a node sits: the agents on an ellipse, clockwise in pipeline
/// order from the top, around the vote.
fn position(node: Node) -> (f64, f64) {
    let centre = (WIDTH / 2.0, 165.0);
    match node {
        Node::Consensus => centre,
        Node::Agent(agent) => {
            let index = AgentType::ALL.iter().position(|a| *a == agent).unwrap_or(0) as f64;
            let angle = (-90.0 + 72.0 * index).to_radians();
            (centre.0 + 190.0 * angle.cos(), centre.1 + 120.0 * angle.sin())
        }
    }
}

fn radius(node: Node) -> f64 {
    match node {
        Node::Consensus => VOTE_R,
        Node::Agent(_) => AGENT_R,
    }
}

/// The segment between two nodes' rims.
fn segment(from: Node, to: Node) -> ((f64, f64), (f64, f64)) {
    let (a, b) = (position(from), position(to));
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let length = dx.hypot(dy).max(1.0);
    let (ux, uy) = (dx / length, dy / length);
    (
        (a.0 + ux * radius(from), a.1 + uy * radius(from)),
        (b.0 - ux * radius(to), b.1 - uy * radius(to)),
    )
}

#[component]
pub fn AgentSwarm(state: RwSignal<DashboardState>) -> impl IntoView {
    // The node under the pointer or the keyboard focus, for its figures.
    let pointed = RwSignal::new(None::<AgentType>);
    let flows = Memo::new(move |_| state.with(|s| s.swarm.flows.iter().cloned().collect::<Vec<_>>()));
    let latest = Memo::new(move |_| state.with(|s| s.swarm.latest_round.clone()));
    let vote_open = Memo::new(move |_| state.with(|s| s.swarm.vote_open()));
    let pipeline = AgentType::ALL.windows(2).map(|pair| {
        let ((x1, y1), (x2, y2)) = segment(Node::Agent(pair[0]), Node::Agent(pair[1]));
        view! { <line class="edge" x1=x1 y1=y1 x2=x2 y2=y2 marker-end="url(#swarm-arrow)"/> }
    });
    let spokes = AgentType::ALL.map(|agent| {
        let ((x1, y1), (x2, y2)) = segment(Node::Agent(agent), Node::Consensus);
        let ballot = move || {
            latest.with(|l| {
                l.as_ref()
                    .and_then(|l| l.round.votes.iter().find(|v| v.agent == agent))
                    .map_or("spoke", |v| match v.choice {
                        VoteChoice::Approve => "spoke spoke-approve",
                        VoteChoice::Reject => "spoke spoke-reject",
                        VoteChoice::Silent => "spoke spoke-silent",
                    })
            })
        };
        view! { <line class=ballot x1=x1 y1=y1 x2=x2 y2=y2/> }
    });
    let (vx, vy) = position(Node::Consensus);
    view! {
        <section class="panel swarm" aria-labelledby="swarm-title">
            <h2 id="swarm-title" class="panel-title">"Agent swarm"</h2>
            <div class="swarm-graph" on:mouseleave=move |_| pointed.set(None)>
                <svg viewBox=format!("0 0 {WIDTH} {HEIGHT}") data-testid="swarm-graph" role="group"
                    aria-label="The agents, in pipeline order around the consensus vote">
                    <defs>
                        <marker id="swarm-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7"
                            markerHeight="7" orient="auto-start-reverse">
                            <path class="arrow" d="M0 0L10 5L0 10z"/>
                        </marker>
                    </defs>
                    <g class="edges" aria-hidden="true">{spokes}{pipeline.collect_view()}</g>
                    <g class="vote-node" data-testid="vote-node" class:vote-open=move || vote_open.get()
                        aria-hidden="true">
                        <circle cx=vx cy=vy r=VOTE_R/>
                        <text x=vx y=vy - 4.0 class="vote-figure">{move || {
                            if vote_open.get() {
                                "…".to_owned()
                            } else {
                                latest.with(|l| l.as_ref().map_or("–".to_owned(), |l| {
                                    format!("{}/{}", l.round.approvals, l.round.voters)
                                }))
                            }
                        }}</text>
                        <text x=vx y=vy + 13.0 class="vote-caption">{move || {
                            if vote_open.get() {
                                "voting"
                            } else {
                                latest.with(|l| match l {
                                    Some(l) if l.round.passed => "passed",
                                    Some(_) => "rejected",
                                    None => "vote",
                                })
                            }
                        }}</text>
                    </g>
                    {AgentType::ALL.map(|agent| view! { <AgentNode state agent pointed latest/> })}
                    <g class="packets" aria-hidden="true">
                        <For each=move || flows.get() key=Flow::key let:flow>
                            {packet(&flow)}
                        </For>
                    </g>
                </svg>
                {move || pointed.get().map(|agent| view! { <AgentTip state agent/> })}
            </div>
            <ConsensusView state latest/>
        </section>
    }
}

/// One message on its way: a dot that travels from rim to rim once (CSS
/// animation; none under reduced motion) and fades out.
fn packet(flow: &Flow) -> impl IntoView + use<> {
    let ((x1, y1), (x2, y2)) = segment(flow.from, flow.to);
    view! {
        <circle class=format!("packet packet-{}", flow.kind.as_str()) data-testid="packet"
            data-kind=flow.kind.as_str() cx=x1 cy=y1 r="6"
            style=format!("--dx: {:.1}px; --dy: {:.1}px", x2 - x1, y2 - y1)/>
    }
}

#[component]
fn AgentNode(
    state: RwSignal<DashboardState>,
    agent: AgentType,
    pointed: RwSignal<Option<AgentType>>,
    latest: Memo<Option<LatestRound>>,
) -> impl IntoView {
    let view_of = Memo::new(move |_| state.with(|s| s.agent(agent)));
    let node_state = move || view_of.with(|v| v.state);
    // A voter the scenario made faulty in the latest round.
    let faulty = move || {
        latest.with(|l| {
            l.as_ref()
                .and_then(|l| l.round.votes.iter().find(|v| v.agent == agent))
                .is_some_and(|v| v.injected_fault.is_some())
        })
    };
    let (x, y) = position(Node::Agent(agent));
    let label = move || format!("{}: {}", agent.label(), view_of.with(|v| v.state.label()));
    view! {
        <g class="agent-node" tabindex="0" role="img" aria-label=label
            data-testid=format!("agent-{}", agent.as_str()) data-state=move || node_state().as_str()
            class:agent-faulty=faulty
            on:mouseenter=move |_| pointed.set(Some(agent))
            on:focus=move |_| pointed.set(Some(agent))
            on:blur=move |_| pointed.set(None)>
            <circle class="node-halo" cx=x cy=y r=AGENT_R + 6.0/>
            <circle class="node-body" cx=x cy=y r=AGENT_R/>
            <g transform=format!("translate({:.1} {:.1})", x - 10.0, y - 10.0)>
                {agent_glyph(agent)}
            </g>
            <text class="node-name" x=x y=y + AGENT_R + 17.0>{agent.label()}</text>
            <text class="node-state" x=x y=y + AGENT_R + 31.0>{move || {
                let v = view_of.get();
                match (v.state.label(), v.in_flight) {
                    ("working", n) if n > 1 => format!("working ×{n}"),
                    (label, _) => label.to_owned(),
                }
            }}</text>
        </g>
    }
}

/// The pointed agent's figures, beside its node.
#[component]
fn AgentTip(state: RwSignal<DashboardState>, agent: AgentType) -> impl IntoView {
    let (x, y) = position(Node::Agent(agent));
    let view_of = Memo::new(move |_| state.with(|s| s.agent(agent)));
    let lane = Memo::new(move |_| state.with(|s| s.swarm_stats.iter().find(|l| l.agent == agent).cloned()));
    let ms = |v: Option<u64>| v.map_or("–".to_owned(), |v| format!("{v} ms"));
    // Left half: the tip opens rightwards; right half: leftwards.
    let side = if x < WIDTH / 2.0 { "tip-right" } else { "tip-left" };
    view! {
        <div class=format!("swarm-tip {side}") role="tooltip" data-testid="agent-tip"
            style=format!("left: {:.1}%; top: {:.1}%", x / WIDTH * 100.0, y / HEIGHT * 100.0)>
            <strong>{agent.label()}</strong>
            <span class="tip-state">{move || view_of.with(|v| v.state.label())}</span>
            <dl>
                <dt>"Done"</dt><dd>{move || view_of.with(|v| match v.last_confidence {
                    Some(c) => format!("{} · last {:.0}% sure", v.completed, c * 100.0),
                    None => v.completed.to_string(),
                })}</dd>
                {move || lane.get().map(|l| view! {
                    <dt>"Queue depth"</dt><dd data-testid="tip-queue">{l.queue_depth}</dd>
                    <dt>"Utilization"</dt><dd>{format!("{:.0}% ({}/{} workers)", l.utilization * 100.0, l.busy, l.workers)}</dd>
                    <dt>"Messages"</dt><dd>{format!("{}/min", l.messages_per_minute)}</dd>
                    <dt>"p50 / p99"</dt><dd>{format!("{} / {}", ms(l.p50_ms), ms(l.p99_ms))}</dd>
                    <dt>"Circuit"</dt><dd>{match l.breaker {
                        BreakerState::Closed => "closed".to_owned(),
                        BreakerState::Open => format!("open ({} failures)", l.failures),
                        BreakerState::HalfOpen => "half open (probing)".to_owned(),
                    }}</dd>
                })}
            </dl>
            {move || view_of.with(|v| v.failure.clone()).map(|f| view! { <p class="tip-failure">{f}</p> })}
        </div>
    }
}

/// The latest consensus round: the plan, the tally against the quorum, and
/// every ballot, faulty voters and dissenters marked.
#[component]
fn ConsensusView(state: RwSignal<DashboardState>, latest: Memo<Option<LatestRound>>) -> impl IntoView {
    view! {
        <div class="consensus" data-testid="consensus" aria-live="polite">
            {move || match latest.get() {
                None => view! { <p class="empty">"No vote yet: every plan is put to one before it runs."</p> }.into_any(),
                Some(LatestRound { incident_id, round, .. }) => {
                    let title = state.with_untracked(|s| s.incident_label(incident_id));
                    let verdict = if round.passed { "Approved" } else { "Rejected" };
                    view! {
                        <p class="consensus-head">
                            <span class=if round.passed { "verdict verdict-passed" } else { "verdict verdict-failed" }>
                                {format!("{verdict} {}/{}", round.approvals, round.voters)}
                            </span>
                            {format!(" quorum {} · tolerates {} faulty · ", round.quorum, round.tolerated)}
                            <a href=format!("/incidents/{incident_id}")>{title}</a>
                        </p>
                        <p class="consensus-plan">{round.plan.clone()}</p>
                        <ul class="ballots">
                            {round.votes.iter().map(|vote| {
                                let against = round.dissent.contains(&vote.agent);
                                let choice = match vote.choice {
                                    VoteChoice::Approve => "approve",
                                    VoteChoice::Reject => "reject",
                                    VoteChoice::Silent => "silent",
                                };
                                view! {
                                    <li class=format!("ballot ballot-{choice}") class:ballot-faulty=vote.injected_fault.is_some()
                                        data-testid="ballot" data-agent=vote.agent.as_str() data-choice=choice
                                        title=vote.reason.clone()>
                                        <span class="ballot-agent">{vote.agent.label()}</span>
                                        <span class="ballot-choice">{choice}</span>
                                        {vote.injected_fault.clone().map(|f| view! {
                                            <span class="ballot-fault">{format!("faulty: {f}")}</span>
                                        })}
                                        {against.then(|| view! { <span class="ballot-dissent">"dissent"</span> })}
                                    </li>
                                }
                            }).collect_view()}
                        </ul>
                    }.into_any()
                }
            }}
        </div>
    }
}
