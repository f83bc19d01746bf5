//! The client-side-only entry point, for `trunk serve` (see `Trunk.toml`):
//! the browser renders the whole app and talks to a running server through
//! trunk's proxy. The product itself is server-rendered and hydrated
//! (`lib.rs`); this exists for fast UI iteration.

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::App);
}
