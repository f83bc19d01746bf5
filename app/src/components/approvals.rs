//! Approvals: seed 001's human decision points. A plan policy will not run
//! without a person waits here, with its alternatives (each with a success
//! probability and a time estimate) and the evidence; an operator approves
//! or rejects it with a plain server-function form (keyboard and no-JS
//! friendly), and every dashboard sees the decision live. On the dashboard
//! the panel is docked above the feed (on a phone, a drawer over the bottom
//! of the screen): a slim line while nothing waits, and a lit panel when a
//! plan does, announced, and taking the keyboard's focus if it came while
//! the page was open.

use engine::protocol::{Approval, ApprovalOption, ApprovalState};
use leptos::prelude::*;

use crate::{api::DecideApproval, state::DashboardState};

/// Decided approvals listed under the waiting ones.
const RECENT_DECISIONS: usize = 5;

#[component]
pub fn ApprovalsPanel(
    state: RwSignal<DashboardState>,
    /// Why this visitor cannot decide, if they cannot (no operator token).
    blocked: Option<String>,
) -> impl IntoView {
    let pending = Memo::new(move |_| state.with(DashboardState::pending_approvals));
    let recent = Memo::new(move |_| {
        state.with(|s| {
            s.approvals
                .iter()
                .filter(|a| a.state != ApprovalState::Pending)
                .take(RECENT_DECISIONS)
                .cloned()
                .collect::<Vec<_>>()
        })
    });
    // What already waited when the page was made: it does not take the
    // keyboard's focus (nor scroll a phone away from the buttons).
    let on_the_page = StoredValue::new(pending.with_untracked(|p| p.iter().map(|a| a.approval_id).collect::<Vec<_>>()));
    let decide = ServerAction::<DecideApproval>::new();
    // The approver's name, kept across cards once typed.
    let approver = RwSignal::new(String::new());
    let now = RwSignal::new(now_ms());
    Effect::new(move |_| {
        #[cfg(feature = "browser")]
        {
            let handle = set_interval_with_handle(move || now.set(now_ms()), std::time::Duration::from_secs(1));
            on_cleanup(move || {
                if let Ok(handle) = handle {
                    handle.clear();
                }
            });
        }
    });
    let signed_out = blocked.is_some();
    let outcome = move || {
        decide.value().get().map(|result| match result {
            Ok(approval) => view! { <p class="trigger-ok" role="status">{approval.outcome()}</p> }.into_any(),
            Err(e) => view! { <p class="trigger-error" role="alert">{e.to_string()}</p> }.into_any(),
        })
    };
    view! {
        <section class="panel approvals" class:approvals-waiting=move || pending.with(|p| !p.is_empty())
            aria-labelledby="approvals-title" data-testid="approvals">
            <h2 id="approvals-title" class="panel-title">
                "Approvals"
                <span class="approvals-count" data-testid="approvals-count">
                    {move || match pending.with(Vec::len) {
                        0 => "nothing waiting".to_owned(),
                        1 => "1 plan waiting for a person".to_owned(),
                        n => format!("{n} plans waiting for a person"),
                    }}
                </span>
            </h2>
            <For each=move || pending.get() key=|a| (a.approval_id, a.level) let:approval>
                {
                    let arrived = !on_the_page.with_value(|ids| ids.contains(&approval.approval_id));
                    view! { <ApprovalCard approval decide approver now signed_out arrived/> }
                }
            </For>
            <Show when=move || signed_out && pending.with(|p| !p.is_empty())>
                <p class="trigger-blocked">"Watching only: " <a href="/login">"sign in"</a> " with the operator token to decide."</p>
            </Show>
            <div class="trigger-outcome" aria-live="polite">
                {move || decide.pending().get().then(|| view! { <p class="trigger-pending">"Sending the decision…"</p> })}
                {outcome}
            </div>
            // Said once per plan, not per tick of its clock.
            <p class="visually-hidden" aria-live="assertive" data-testid="approvals-announce">
                {move || pending.with(|p| p.first().map(|a| format!(
                    "A plan waits for a person: {}. Decide before its clock runs out.", a.incident_title
                )))}
            </p>
            <Show when=move || recent.with(|r| !r.is_empty())>
                <details class="approvals-recent-box">
                <summary class="approvals-recent-title">{move || format!("Recent decisions ({})", recent.with(Vec::len))}</summary>
                <ul class="approvals-recent" data-testid="approvals-recent">
                    <For each=move || recent.get() key=|a| (a.approval_id, a.state) let:approval>
                        <li data-state=approval.state.as_str()>
                            <span class=format!("badge badge-{}", approval.state.as_str())>{approval.state.as_str()}</span>
                            " "
                            <a href=format!("/incidents/{}", approval.incident_id)>{approval.incident_title.clone()}</a>
                            ": " {approval.outcome()}
                        </li>
                    </For>
                </ul>
                </details>
            </Show>
        </section>
    }
}

/// Milliseconds since the epoch, from the browser's clock or the server's.
fn now_ms() -> i64 {
    #[cfg(feature = "browser")]
    return js_sys::Date::now() as i64;
    #[cfg(all(feature = "ssr", not(feature = "browser")))]
    return chrono::Utc::now().timestamp_millis();
    #[allow(unreachable_code)]
    0
}

/// One plan waiting for a person.
#[component]
fn ApprovalCard(
    approval: Approval,
    decide: ServerAction<DecideApproval>,
    approver: RwSignal<String>,
    now: RwSignal<i64>,
    signed_out: bool,
    /// It came while the page was open (not with the page).
    arrived: bool,
) -> impl IntoView {
    let expires_at = approval.expires_at.timestamp_millis();
    let left = move || ((expires_at - now.get()) / 1000).max(0);
    // A demo's autopilot: its countdown, in plain sight.
    let autopilot = approval.autopilot_at.map(|at| {
        let at = at.timestamp_millis();
        let left = move || ((at - now.get()) / 1000).max(0);
        view! {
            <p class="approval-autopilot" data-testid="autopilot" role="timer">
                "Demo autopilot: approves the proposed plan in "
                <strong>{move || format!("{} s", left())}</strong>
                " unless someone decides first."
            </p>
        }
    });
    let next = match approval.escalation.get(approval.level as usize + 1) {
        Some(next) => format!("then {next}"),
        None => format!(
            "then the safe default: {}",
            if approval.on_timeout == engine::protocol::PolicyVerdict::Auto {
                "run it"
            } else {
                "do nothing and hand over to people"
            }
        ),
    };
    let id = approval.approval_id.to_string();
    let field_id = id.clone();
    let title_id = format!("approval-{id}");
    let labelled_by = title_id.clone();
    // A plan that starts waiting while the page is open draws the keyboard
    // to itself, unless the reader is busy in a field.
    let card = NodeRef::<leptos::html::Article>::new();
    Effect::new(move |_| {
        // Effects run only in the browser: the server build reads nothing.
        let _ = arrived;
        #[cfg(feature = "browser")]
        if let Some(card) = card.get().filter(|_| arrived) {
            let idle = document()
                .active_element()
                .is_none_or(|active| active.tag_name() == "BODY");
            if idle {
                let _ = card.focus();
            }
        }
    });
    view! {
        <article class="approval" data-testid="approval" data-approval=id node_ref=card tabindex="-1"
            data-incident=approval.incident_id.to_string() aria-labelledby=labelled_by>
            <header class="approval-head">
                <h3 id=title_id class="approval-title">
                    <span class=format!("sev sev-{}", approval.severity.as_str())>{approval.severity.as_str()}</span>
                    " "
                    <a href=format!("/incidents/{}", approval.incident_id)>{approval.incident_title.clone()}</a>
                </h3>
                <p class="approval-asks">
                    "Asking " <strong>{approval.approver.clone()}</strong>
                    {format!(" ({} of {}) · ", approval.level + 1, approval.escalation.len())}
                    <span class="approval-clock" data-testid="approval-clock">{move || format!("{} s left", left())}</span>
                    {format!(", {next}")}
                </p>
            </header>
            {autopilot}
            <p class="approval-proposal">"Proposed: " <strong>{approval.proposal.plan.clone()}</strong></p>
            // The decision first, so it is in sight in the dock; why a
            // person is asked and what they decide between follow.
            <ActionForm action=decide attr:class="approval-form">
                <input type="hidden" name="approval_id" value=field_id/>
                // Labels for assistive technology, placeholders for the eye:
                // the form stays one compact block in the dock.
                <label class="field approval-name">
                    <span class="visually-hidden">"Your name (for the audit log)"</span>
                    <input type="text" name="approver" required maxlength="64" autocomplete="name"
                        data-testid="approver" placeholder="Your name (for the audit log)"
                        prop:value=move || approver.get()
                        on:input=move |ev| approver.set(event_target_value(&ev))/>
                </label>
                <label class="field approval-comment">
                    <span class="visually-hidden">"Comment (optional)"</span>
                    <input type="text" name="comment" maxlength="500" data-testid="approval-comment"
                        placeholder="Comment (optional)"/>
                </label>
                <div class="approval-buttons">
                    <button type="submit" name="decision" value="approve" class="btn btn-approve"
                        disabled=signed_out>"Approve"</button>
                    <button type="submit" name="decision" value="reject" class="btn btn-reject"
                        disabled=signed_out>"Reject"</button>
                </div>
            </ActionForm>
            <p class="approval-reason">
                <span class="approval-rule">{approval.rule.clone()}</span> " " {approval.reason.clone()}
            </p>
            <div class="approval-options">
                <OptionCard option=approval.proposal.clone() proposed=true/>
                {approval.alternatives.iter().cloned().map(|option| view! { <OptionCard option proposed=false/> }).collect_view()}
            </div>
            <details class="approval-evidence">
                <summary>{format!("Evidence ({})", approval.evidence.len())}</summary>
                <ul>{approval.evidence.iter().map(|line| view! { <li>{line.clone()}</li> }).collect_view()}</ul>
            </details>
        </article>
    }
}

/// A course of action: the proposal or an alternative.
#[component]
fn OptionCard(option: ApprovalOption, proposed: bool) -> impl IntoView {
    view! {
        <div class="approval-option" class:approval-proposed=proposed>
            <p class="option-kind">{if proposed { "Proposed by the swarm" } else { "Alternative" }}</p>
            <p class="option-hypothesis">{option.hypothesis.clone()}</p>
            <ol class="option-steps">{option.steps.iter().map(|s| view! { <li>{s.clone()}</li> }).collect_view()}</ol>
            <p class="option-figures">
                <span title="The diagnosis's confidence in this root cause">
                    {format!("{:.0}% likely to heal", option.success_probability * 100.0)}
                </span>
                " · "
                <span title="Simulated seconds for the steps and their verification">
                    {format!("~{:.0} s", option.estimate_seconds)}
                </span>
            </p>
        </div>
    }
}
