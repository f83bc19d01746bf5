//! Antibody's dashboard: the Leptos app that the server renders and the
//! browser hydrates.
//!
//! - [`shell`] is the HTML document; [`App`] the router.
//! - [`api`] holds the server functions (bodies run on the server only).
//! - [`state`] is the pure event reducer the panels derive from;
//!   [`swarm_state`] its part for the swarm graph, [`estate_map`] the
//!   dependency map's layout and blast radius.
//! - [`live`] follows the server's WebSocket in the browser.
//! - `operator` (server only) is the operator-token gate; `markdown` and
//!   `trends` (server only) render reports and the analytics charts.
//! - [`components`] are the panels.

#![recursion_limit = "256"]

pub mod api;
pub mod charts;
pub mod clock;
pub mod codec;
pub mod components;
pub mod estate_map;
#[cfg(test)]
mod fixtures;
pub mod live;
#[cfg(feature = "ssr")]
pub mod markdown;
#[cfg(feature = "ssr")]
pub mod operator;
pub mod state;
pub mod swarm_state;
#[cfg(feature = "ssr")]
pub mod trends;
pub mod tween;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Title, provide_meta_context};
#[cfg(not(feature = "csr"))]
use leptos_router::lazy_route;
use leptos_router::{
    Lazy, LazyRoute, ParamSegment, SsrMode, StaticSegment,
    components::{Route, Router, Routes},
};

use crate::components::dashboard::DashboardPage;

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="dark"/>
                <meta name="description" content="Antibody: a self-healing incident-response swarm, live."/>
                <link rel="icon" type="image/svg+xml" href="/favicon.svg"/>
                // In the shell, not the app: its address names the bundle's
                // version, which only the server knows.
                <link
                    id="leptos"
                    rel="stylesheet"
                    href=format!("/{}/{}.css", options.site_pkg_dir, options.output_name)
                />
                <AutoReload options=options.clone()/>
                {hydration_script(&options)}
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// Loads the bundle and hydrates once the server's page has loaded and the
/// browser is idle (2 s at most). Unlike Leptos's `HydrationScripts` it
/// preloads nothing: on a slow link the half-megabyte bundle never competes
/// with the page's own HTML and CSS, which are the whole first paint (and
/// the forms work before the bundle arrives). Instantiating and hydrating
/// are separate tasks, so that neither holds the main thread for both.
fn hydration_script(options: &LeptosOptions) -> impl IntoView + use<> {
    let bundle = format!("/{}/{}", options.site_pkg_dir, options.output_name);
    let script = format!(
        "(() => {{ \
           const hydrate = () => import('{bundle}.js').then((m) => \
             m.default({{ module_or_path: '{bundle}.wasm' }}) \
               .then(() => new Promise((next) => setTimeout(next, 0))) \
               .then(() => m.hydrate())); \
           const whenIdle = () => 'requestIdleCallback' in window \
             ? requestIdleCallback(hydrate, {{ timeout: 2000 }}) : setTimeout(hydrate, 0); \
           if (document.readyState === 'complete') whenIdle(); \
           else addEventListener('load', whenIdle, {{ once: true }}); \
         }})();"
    );
    view! { <script type="module">{script}</script> }
}

/// The app: title and routes.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // The stylesheet is the shell's (or, under `trunk serve`, trunk's).
    view! {
        <Title text="Antibody · live incident response"/>
        <Router>
            <Routes fallback=|| view! { <p class="not-found">"Page not found."</p> }>
                // Async: the server waits for the dashboard's data and sends the
                // page whole, so it is complete without JavaScript too.
                <Route path=StaticSegment("") view=DashboardPage ssr=SsrMode::Async/>
                // Every page but the dashboard is lazy: its code is split
                // out of the initial bundle and fetched on first visit.
                <Route path=StaticSegment("login") view={Lazy::<LoginRoute>::new()}/>
                <Route path=StaticSegment("incidents") view={Lazy::<IncidentsRoute>::new()} ssr=SsrMode::Async/>
                <Route path=StaticSegment("timelines") view={Lazy::<TimelinesRoute>::new()} ssr=SsrMode::Async/>
                <Route path=StaticSegment("analytics") view={Lazy::<AnalyticsRoute>::new()} ssr=SsrMode::Async/>
                <Route
                    path=(StaticSegment("incidents"), ParamSegment("id"))
                    view={Lazy::<IncidentDetailRoute>::new()}
                    ssr=SsrMode::Async
                />
            </Routes>
        </Router>
    }
}

/// Declares a lazily loaded route whose view is one page component. In the
/// hydrating build its code is a wasm chunk of its own, fetched when the
/// route is first visited (`cargo xtask site` splits the bundle).
macro_rules! lazy_page {
    ($route:ident, $page:path) => {
        struct $route;

        #[cfg(not(feature = "csr"))]
        #[lazy_route]
        impl LazyRoute for $route {
            fn data() -> Self {
                $route
            }

            fn view(_this: Self) -> AnyView {
                $page().into_any()
            }
        }

        // trunk's client-side-only build cannot split the bundle, so there
        // every page's code loads with the rest.
        #[cfg(feature = "csr")]
        impl LazyRoute for $route {
            fn data() -> Self {
                $route
            }

            async fn view(_this: Self) -> AnyView {
                $page().into_any()
            }
        }
    };
}

lazy_page!(LoginRoute, crate::components::login::LoginPage);
lazy_page!(IncidentsRoute, crate::components::incidents::IncidentsPage);
lazy_page!(TimelinesRoute, crate::components::timeline_runs::TimelineRunsPage);
lazy_page!(AnalyticsRoute, crate::components::analytics::AnalyticsPage);
lazy_page!(IncidentDetailRoute, crate::components::incidents::IncidentDetailPage);
