//! The Agent Swarm: the five agents in pipeline order, each idle or working,
//! with how much it has done, how sure it was last, and its lane on the
//! agent bus (queue, utilization, rate, latency) from `swarm_stats`.

use engine::protocol::{AgentType, BreakerState};
use leptos::prelude::*;

use crate::state::DashboardState;

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

#[component]
pub fn AgentSwarm(state: RwSignal<DashboardState>) -> impl IntoView {
    view! {
        <section class="panel swarm" aria-labelledby="swarm-title">
            <h2 id="swarm-title" class="panel-title">"Agent swarm"</h2>
            <ol class="swarm-pipeline">
                {AgentType::ALL.into_iter().map(|agent| view! { <AgentNode state agent/> }).collect_view()}
            </ol>
        </section>
    }
}

#[component]
fn AgentNode(state: RwSignal<DashboardState>, agent: AgentType) -> impl IntoView {
    let view_of = Memo::new(move |_| state.with(|s| s.agent(agent)));
    let working = move || view_of.with(|v| v.in_flight > 0);
    let lane = Memo::new(move |_| state.with(|s| s.swarm_stats.iter().find(|l| l.agent == agent).cloned()));
    view! {
        <li class="agent" class:agent-working=working data-testid=format!("agent-{}", agent.as_str())
            data-state=move || if working() { "working" } else { "idle" }>
            <span class="agent-icon">{agent_glyph(agent)}</span>
            <span class="agent-name">{agent.label()}</span>
            <span class="agent-state">
                {move || match view_of.with(|v| v.in_flight) {
                    0 => "idle".to_owned(),
                    1 => "working".to_owned(),
                    n => format!("working ×{n}"),
                }}
            </span>
            <span class="agent-stats">
                {move || {
                    let v = view_of.get();
                    match v.last_confidence {
                        Some(c) => format!("{} done · {:.0}% conf.", v.completed, c * 100.0),
                        None => format!("{} done", v.completed),
                    }
                }}
            </span>
            // Seed 001's per-agent figures, as the bus reported them.
            {move || lane.get().map(|l| view! {
                <span class="agent-lane" data-testid=format!("lane-{}", agent.as_str())
                    title="queue depth · utilization · messages per simulated minute · p50/p99 job time">
                    {format!(
                        "q {} · {:.0}% · {}/min · {}/{} ms{}",
                        l.queue_depth,
                        l.utilization * 100.0,
                        l.messages_per_minute,
                        l.p50_ms.map(|v| v.to_string()).unwrap_or_else(|| "–".into()),
                        l.p99_ms.map(|v| v.to_string()).unwrap_or_else(|| "–".into()),
                        match l.breaker {
                            BreakerState::Closed => String::new(),
                            BreakerState::Open => " · circuit open".to_owned(),
                            BreakerState::HalfOpen => " · circuit half-open".to_owned(),
                        },
                    )}
                </span>
            })}
        </li>
    }
}
