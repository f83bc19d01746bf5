//! The Live Activity Feed: every agent action and incident change, newest
//! first, bounded by the state's cap.

use leptos::prelude::*;

use super::swarm::agent_glyph;
use crate::state::{DashboardState, FeedKind};

#[component]
pub fn ActivityFeed(state: RwSignal<DashboardState>) -> impl IntoView {
    let entries = Memo::new(move |_| state.with(|s| s.feed.iter().rev().cloned().collect::<Vec<_>>()));
    view! {
        <section class="panel feed" aria-labelledby="feed-title">
            <h2 id="feed-title" class="panel-title">"Live activity"</h2>
            <Show when=move || entries.with(|e| !e.is_empty())
                fallback=|| view! { <p class="empty">"Quiet so far. Fire a scenario to watch the swarm work."</p> }>
                <ol class="feed-list" aria-live="polite" aria-relevant="additions" data-testid="feed">
                    <For each=move || entries.get() key=|e| (e.key.clone(), e.seq) let:entry>
                        <li class="feed-item" data-testid="feed-item" data-incident=entry.incident_id.to_string()
                            data-kind=match entry.kind {
                                FeedKind::Action(agent) => agent.as_str(),
                                FeedKind::Incident => "incident",
                                FeedKind::Governance => "governance",
                            }
                            data-status=entry.status.clone()>
                            <time class="feed-time" datetime=entry.at.to_rfc3339()>{entry.at.format("%H:%M:%S").to_string()}</time>
                            <span class="feed-agent">
                                {match entry.kind {
                                    FeedKind::Action(agent) => view! { {agent_glyph(agent)} <span>{agent.label()}</span> }.into_any(),
                                    FeedKind::Incident => view! { <span class="feed-incident-mark">"Incident"</span> }.into_any(),
                                    FeedKind::Governance => view! { <span class="feed-governance-mark">"Governance"</span> }.into_any(),
                                }}
                            </span>
                            <span class="feed-desc">
                                {entry.description.clone()}
                                <span class="feed-incident">{state.with_untracked(|s| s.incident_label(entry.incident_id))}</span>
                            </span>
                            <span class=format!("badge badge-{}", entry.status)>{entry.status.replace('_', " ")}</span>
                            <span class="feed-meta">
                                {entry.confidence.map(|c| format!("{:.0}%", c * 100.0))}
                                {entry.duration_ms.map(|ms| format!(" · {:.1} s", ms as f64 / 1000.0))}
                            </span>
                        </li>
                    </For>
                </ol>
            </Show>
        </section>
    }
}
