#![recursion_limit = "256"]
//! The browser entry point. The server renders the dashboard to HTML; this
//! wasm module then hydrates it, attaching the live state and event
//! handlers to the existing DOM.

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
    // From here the page is the app, not just the server's HTML: tests wait
    // for this before they click what only the app handles.
    if let Some(root) = leptos::prelude::document().document_element() {
        let _ = root.set_attribute("data-hydrated", "true");
    }
}
