//! `/login`: the operator's sign-in, a plain form that posts the token to
//! the server's `POST /login`, which sets an HttpOnly cookie (so no script
//! ever holds the token) and sends the browser back to the dashboard.

use leptos::prelude::*;

#[component]
pub fn LoginPage() -> impl IntoView {
    let query = leptos_router::hooks::use_query_map();
    let failed = move || query.read().get("failed").is_some();
    view! {
        <div class="page">
            <header class="topbar">
                <super::Brand/>
            </header>
            <main class="login">
                <section class="panel login-panel" aria-labelledby="login-title">
                    <h1 id="login-title">"Operator sign-in"</h1>
                    <p class="muted">
                        "Anyone can watch. Firing scenarios, approving and running timelines need the operator token this server was started with ("
                        <code>"ANTIBODY_OPERATOR_TOKEN"</code> ")."
                    </p>
                    <Show when=failed>
                        <p class="login-error" role="alert">"That token is not this server's. Try again."</p>
                    </Show>
                    <form method="post" action="/login" class="login-form">
                        <label for="token">"Operator token"</label>
                        <input id="token" name="token" type="password" autocomplete="current-password" required/>
                        <button type="submit" class="btn btn-primary">"Sign in"</button>
                    </form>
                    <form method="post" action="/logout" class="login-form">
                        <button type="submit" class="btn">"Sign out"</button>
                    </form>
                </section>
            </main>
        </div>
    }
}
