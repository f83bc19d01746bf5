#![recursion_limit = "256"]
//! The browser entry point. The server renders the dashboard to HTML; this
//! wasm module then hydrates it, attaching the live state and event
//! handlers to the existing DOM.

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    // Every page but the dashboard is a lazy route, whose code is a separate
    // wasm chunk: hydrating one waits for its chunk, so hydration is async.
    // (`hydrate_from_async` sets up Leptos's executor itself.)
    wasm_bindgen_futures::spawn_local(async {
        let body = leptos::prelude::document().body().expect("the page has a <body>");
        leptos::mount::hydrate_from_async(body, app::App).await.forget();
        // From here the page is the app, not just the server's HTML: tests wait
        // for this before they click what only the app handles.
        if let Some(root) = leptos::prelude::document().document_element() {
            let _ = root.set_attribute("data-hydrated", "true");
        }
    });
}
