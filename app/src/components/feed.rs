//! The Live Activity Feed: every agent action, governance decision and
//! incident change, newest first, bounded by the state's cap. Filters by
//! incident, agent and severity; when the reader scrolls down into older
//! lines, the list stops moving under them and a pill counts what arrived
//! since, until they go back up.
//!
//! The page shows the newest [`FEED_PAGE`] lines, and a button shows the
//! rest (still bounded by the state's cap): the lines are most of the
//! dashboard's DOM, and every line on the first page is a line the browser
//! must hydrate before the page answers.

use engine::protocol::{AgentType, Severity};
use leptos::prelude::*;
use uuid::Uuid;

use super::swarm::agent_glyph;
use crate::state::{DashboardState, FeedEntry, FeedKind};

/// Scrolled further than this from the top, the reader is reading: the
/// feed holds still.
const READING_PX: i32 = 48;

/// Lines shown until the reader asks for all.
pub const FEED_PAGE: usize = 20;

/// The lines on the page: the newest `shown` of `entries`, or all of one
/// incident's (they are few, and a reader who picked it wants them all).
fn on_page(entries: &[FeedEntry], shown: usize, filter: &Filter) -> usize {
    if filter.incident.is_empty() {
        entries.len().min(shown)
    } else {
        entries.len()
    }
}

/// What the reader asked to see.
#[derive(Debug, Clone, Default, PartialEq)]
struct Filter {
    /// An incident id (the one the dashboard is focused on), or empty for
    /// all.
    incident: String,
    /// An agent's wire name, `governance`, `incident`, or empty for all.
    source: String,
    /// A severity's wire name, or empty for all.
    severity: String,
}

impl Filter {
    fn admits(&self, entry: &FeedEntry, severity_of: impl Fn(uuid::Uuid) -> Option<Severity>) -> bool {
        let source = entry.kind.as_str();
        (self.incident.is_empty() || self.incident == entry.incident_id.to_string())
            && (self.source.is_empty() || self.source == source)
            && (self.severity.is_empty() || severity_of(entry.incident_id).is_some_and(|s| s.as_str() == self.severity))
    }
}

#[component]
pub fn ActivityFeed(
    state: RwSignal<DashboardState>,
    /// The incident the dashboard is focused on: the feed shows only its
    /// lines.
    focus: RwSignal<Option<Uuid>>,
) -> impl IntoView {
    let chosen = RwSignal::new(Filter::default());
    // The incident comes from the focus; the rest is the reader's choice.
    let filter = Memo::new(move |_| Filter {
        incident: focus.get().map(|id| id.to_string()).unwrap_or_default(),
        ..chosen.get()
    });
    let entries = Memo::new(move |_| {
        let filter = filter.get();
        state.with(|s| {
            let severity_of = |id| s.incidents.iter().find(|i| i.id == id).map(|i| i.severity);
            s.feed
                .iter()
                .rev()
                .filter(|e| filter.admits(e, severity_of))
                .cloned()
                .collect::<Vec<_>>()
        })
    });
    let shown = RwSignal::new(FEED_PAGE);
    let visible = Memo::new(move |_| {
        entries.with(|e| {
            let count = filter.with(|f| on_page(e, shown.get(), f));
            e[..count].to_vec()
        })
    });
    let older = move || entries.with(|e| e.len()) - visible.with(Vec::len);
    // The newest `seq` the reader has seen at the top; `None` while they
    // are at the top, following along.
    let reading_from = RwSignal::new(None::<u64>);
    let unseen = move || {
        reading_from
            .get()
            .map(|seen| entries.with(|e| e.iter().filter(|x| x.seq > seen).count()))
            .unwrap_or(0)
    };
    let list = NodeRef::<leptos::html::Ol>::new();
    let on_scroll = move |_| {
        let Some(list) = list.get() else { return };
        let reading = list.scroll_top() > READING_PX;
        match (reading, reading_from.get_untracked()) {
            (true, None) => reading_from.set(Some(entries.with_untracked(|e| e.first().map_or(0, |x| x.seq)))),
            (false, Some(_)) => reading_from.set(None),
            _ => {}
        }
    };
    let back_to_top = move |_| {
        if let Some(list) = list.get() {
            list.set_scroll_top(0);
        }
        reading_from.set(None);
    };
    let incidents = Memo::new(move |_| {
        state.with(|s| {
            s.incidents
                .iter()
                .map(|i| (i.id.to_string(), format!("{} · {}", i.title, &i.id.to_string()[..8])))
                .collect::<Vec<_>>()
        })
    });
    view! {
        <section class="panel feed" aria-labelledby="feed-title">
            <h2 id="feed-title" class="panel-title">"Live activity"</h2>
            <div class="feed-filters" role="group" aria-label="Filter the feed">
                <label class="field">
                    <span>"Incident"</span>
                    <select data-testid="feed-filter-incident"
                        prop:value=move || filter.with(|f| f.incident.clone())
                        on:change=move |ev| focus.set(event_target_value(&ev).parse().ok())>
                        <option value="">"all"</option>
                        <For each=move || incidents.get() key=|(id, _)| id.clone() let:((id, label))>
                            <option value=id.clone() selected=move || filter.with(|f| f.incident == id)>{label}</option>
                        </For>
                    </select>
                </label>
                <label class="field">
                    <span>"Source"</span>
                    <select data-testid="feed-filter-source"
                        on:change=move |ev| chosen.update(|f| f.source = event_target_value(&ev))>
                        <option value="">"all"</option>
                        {AgentType::ALL.map(|a| view! { <option value=a.as_str()>{a.label()}</option> })}
                        <option value="governance">"Governance"</option>
                        <option value="memory">"Memory"</option>
                        <option value="incident">"Incidents"</option>
                    </select>
                </label>
                <label class="field">
                    <span>"Severity"</span>
                    <select data-testid="feed-filter-severity"
                        on:change=move |ev| chosen.update(|f| f.severity = event_target_value(&ev))>
                        <option value="">"all"</option>
                        {Severity::ALL.map(|s| view! { <option value=s.as_str()>{s.as_str()}</option> })}
                    </select>
                </label>
            </div>
            <Show when=move || { unseen() > 0 }>
                <button type="button" class="feed-new" data-testid="feed-new" on:click=back_to_top>
                    {move || format!("{} new ↑", unseen())}
                </button>
            </Show>
            <Show when=move || entries.with(|e| !e.is_empty())
                fallback=move || view! {
                    <p class="empty">
                        {move || if filter.with(|f| *f == Filter::default()) {
                            "Quiet so far. Fire a scenario to watch the swarm work."
                        } else {
                            "Nothing matches these filters yet."
                        }}
                    </p>
                }>
                <ol class="feed-list" aria-live="polite" aria-relevant="additions" data-testid="feed"
                    node_ref=list on:scroll=on_scroll>
                    <For each=move || visible.get() key=|e| (e.key.clone(), e.seq) let:entry>
                        <li class="feed-item" data-testid="feed-item" data-incident=entry.incident_id.to_string()
                            data-kind=entry.kind.as_str()
                            data-status=entry.status.clone()>
                            <time class="feed-time" datetime=entry.at.to_rfc3339()>{crate::clock::time_of_day(&entry.at)}</time>
                            <span class="feed-agent">
                                {match entry.kind {
                                    FeedKind::Action(agent) => view! { {agent_glyph(agent)} <span>{agent.label()}</span> }.into_any(),
                                    FeedKind::Incident => view! { <span class="feed-incident-mark">"Incident"</span> }.into_any(),
                                    FeedKind::Governance => view! { <span class="feed-governance-mark">"Governance"</span> }.into_any(),
                                    FeedKind::Memory => view! { <span class="feed-memory-mark">"Memory"</span> }.into_any(),
                                }}
                            </span>
                            <span class="feed-desc">
                                {entry.description.clone()}
                                // Focuses the dashboard on its incident; without
                                // the wasm, it opens the incident's page.
                                <a class="feed-incident" href=format!("/incidents/{}", entry.incident_id)
                                    on:click=move |ev| { ev.prevent_default(); focus.set(Some(entry.incident_id)) }>
                                    {state.with_untracked(|s| s.incident_label(entry.incident_id))}
                                </a>
                            </span>
                            <span class=format!("badge badge-{}", entry.status)>{entry.status.replace('_', " ")}</span>
                            <span class="feed-meta">{meta(&entry)}</span>
                        </li>
                    </For>
                </ol>
                <Show when=move || { older() > 0 }>
                    <button type="button" class="feed-more" data-testid="feed-more"
                        on:click=move |_| shown.set(usize::MAX)>
                        {move || format!("Show all ({} older)", older())}
                    </button>
                </Show>
            </Show>
        </section>
    }
}

/// Confidence and duration, as one text: "87% · 2.4 s".
fn meta(entry: &FeedEntry) -> String {
    let confidence = entry.confidence.map(|c| format!("{:.0}%", c * 100.0));
    let duration = entry.duration_ms.map(|ms| format!("{:.1} s", ms as f64 / 1000.0));
    [confidence, duration]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" · ")
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use uuid::Uuid;

    use super::*;

    fn entry(kind: FeedKind, incident: u128) -> FeedEntry {
        FeedEntry {
            key: "k".into(),
            seq: 1,
            at: Utc::now(),
            kind,
            incident_id: Uuid::from_u128(incident),
            description: String::new(),
            status: "completed".into(),
            confidence: None,
            duration_ms: None,
            vote: false,
        }
    }

    #[test]
    fn the_page_shows_the_newest_lines_or_all_of_one_incident() {
        let entries = vec![entry(FeedKind::Incident, 1); 120];
        assert_eq!(on_page(&entries, FEED_PAGE, &Filter::default()), FEED_PAGE);
        assert_eq!(on_page(&entries, usize::MAX, &Filter::default()), 120);
        assert_eq!(on_page(&entries[..7], FEED_PAGE, &Filter::default()), 7);
        let one = Filter {
            incident: Uuid::from_u128(1).to_string(),
            ..Filter::default()
        };
        assert_eq!(on_page(&entries, FEED_PAGE, &one), 120);
    }

    #[test]
    fn meta_joins_what_is_known() {
        let mut line = entry(FeedKind::Incident, 1);
        assert_eq!(meta(&line), "");
        line.confidence = Some(0.874);
        assert_eq!(meta(&line), "87%");
        line.duration_ms = Some(2_460);
        assert_eq!(meta(&line), "87% · 2.5 s");
        line.confidence = None;
        assert_eq!(meta(&line), "2.5 s");
    }

    #[test]
    fn a_filter_admits_by_incident_source_and_severity() {
        let critical = |id: Uuid| (id == Uuid::from_u128(1)).then_some(Severity::Critical);
        let detection = entry(FeedKind::Action(AgentType::Detection), 1);
        let governance = entry(FeedKind::Governance, 2);
        assert!(Filter::default().admits(&detection, critical));
        let only = |incident: &str, source: &str, severity: &str| Filter {
            incident: incident.into(),
            source: source.into(),
            severity: severity.into(),
        };
        assert!(only(&Uuid::from_u128(1).to_string(), "", "").admits(&detection, critical));
        assert!(!only(&Uuid::from_u128(1).to_string(), "", "").admits(&governance, critical));
        assert!(only("", "governance", "").admits(&governance, critical));
        assert!(!only("", "detection", "").admits(&governance, critical));
        assert!(only("", "", "critical").admits(&detection, critical));
        assert!(
            !only("", "", "critical").admits(&governance, critical),
            "unknown severity is not a match"
        );
    }
}
