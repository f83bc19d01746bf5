//! The dashboard's panels. Each takes the state signal and derives what it
//! shows; none keeps a copy.

pub mod analytics;
pub mod approvals;
pub mod connection;
pub mod dashboard;
pub mod feed;
pub mod focus;
pub mod health;
pub mod impact;
pub mod incidents;
pub mod login;
pub mod scenarios;
pub mod swarm;
pub mod timeline_runs;
pub mod timelines;

use leptos::prelude::*;

/// The product's mark and name, linking home: every page's top bar starts
/// with it.
#[component]
pub fn Brand() -> impl IntoView {
    view! {
        <a class="brand" href="/">
            <span class="brand-mark" aria-hidden="true"></span>
            <span class="brand-name">"Antibody"</span>
            <span class="brand-tag">"self-healing incident response"</span>
        </a>
    }
}
