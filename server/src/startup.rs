//! Building the application (engine, router, listener) and running it until
//! a shutdown signal, then shutting down in order: drain or interrupt the
//! in-flight incidents (their final events still reach every dashboard),
//! close every WebSocket with a close frame, then stop serving.

use std::{
    future::Future,
    net::SocketAddr,
    sync::{Arc, OnceLock},
};

use app::{App, shell};
use axum::http::{HeaderValue, header};
use axum::{
    Router,
    extract::{DefaultBodyLimit, FromRef, State},
    response::IntoResponse,
    routing::{MethodRouter, delete, get, post},
};
use engine::{Engine, EngineConfig, SNAPSHOT_INCIDENTS, timeline::runner::Timelines};
use leptos::prelude::*;
use leptos_axum::{AxumRouteListing, LeptosRoutes, generate_route_list};
use store::Store;

/// How often an instance sharing its store reads the log's tail without a
/// notification: the most a lost notification delays an event.
const TAIL_TICK: std::time::Duration = std::time::Duration::from_millis(250);
use tokio::net::TcpListener;
use tower_http::{
    catch_panic::CatchPanicLayer,
    compression::{CompressionLayer, Predicate, predicate::DefaultPredicate},
    trace::TraceLayer,
};
use tracing::info;

use crate::{
    configuration::Settings,
    problem::Problem,
    routes::{
        actions, alerts, analytics, approvals, docs, edge, health, history, incidents, live, memory, timelines, twin,
        ws,
    },
    site::Site,
};

/// How long open WebSockets get to take their close frame at shutdown.
const SOCKET_CLOSE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

/// Everything a handler may need; each part is cheap to clone.
#[derive(Clone, FromRef)]
pub struct AppState {
    /// Leptos's settings (site root, output name) for rendering.
    pub leptos_options: LeptosOptions,
    /// The swarm.
    pub engine: Engine,
    /// Timeline runs over the engine.
    pub timelines: Timelines,
    /// The durable event log and its projections.
    pub store: Store,
    /// The open WebSockets.
    pub sockets: ws::Sockets,
    /// The last serialized snapshot.
    pub snapshot: live::SnapshotCache,
    /// The operator token, if acting needs one.
    pub operator: app::operator::OperatorGate,
    /// Browser origins allowed to open `/ws` besides the page's own.
    pub origins: edge::AllowedOrigins,
    /// The alert intake's token.
    pub intake: alerts::IntakeGate,
    /// The site's files (bundle, icon, Swagger UI's assets).
    pub site: Site,
    /// Whether forwarding headers name the client.
    pub proxy: edge::TrustProxy,
    /// On a demo server, what viewers without the token may fire.
    pub viewers: Option<app::operator::ViewerAllowance>,
}

/// A bound, ready-to-run server.
pub struct Application {
    /// The bound address (the real port when the settings asked for port 0).
    addr: SocketAddr,
    listener: TcpListener,
    router: Router,
    state: AppState,
    settings: Settings,
    /// Cancelled when shutdown begins: background work that would start
    /// something new (the demo's loop) stops.
    stopping: tokio_util::sync::CancellationToken,
}

impl Application {
    /// Opens the store, builds the engine where the store left off, builds
    /// the router, and binds the listener.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        crate::prometheus::handle();
        let mut store = Store::connect_with(&settings.database_url, settings.sqlite_sync).await?;
        match store.backend() {
            // A PostgreSQL may be shared: join whoever else is on it (or be
            // refused, with the reason).
            store::Backend::Postgres => {
                store = store.join(&settings.estate_in_words(), settings.lease_ttl).await?;
            }
            // A SQLite file is one instance's.
            store::Backend::Sqlite => store.claim_file()?,
        }
        let watch = settings.estate.watched()?;
        let config = EngineConfig {
            speed: settings.speed,
            seed: settings.seed,
            max_active_incidents: settings.max_incidents,
            agent_workers: settings.agent_workers as usize,
            agent_failure_rate: settings.agent_failure_rate,
            fanout_capacity: settings.ws_queue as usize,
            commit_window: settings.commit_window,
            policy: std::sync::Arc::clone(&settings.policy),
            memory_capacity: settings.memory_capacity as usize,
            watch: watch.clone(),
            actuator: settings.actuator.actuator(watch.as_ref())?,
            alertmanager_url: settings.actuator.alertmanager_url.as_ref().map(|url| url.to_string()),
            dry_run: settings.actuator.actuator_dry_run,
            autopilot: settings.demo.enabled.then_some(settings.demo.autopilot),
            twin: match settings.twin {
                crate::configuration::Twin::Shared => engine::TwinMode::Shared,
                crate::configuration::Twin::Isolated => engine::TwinMode::Isolated,
            },
            webhook: settings
                .webhook_url
                .clone()
                .map(|url| engine::notify::Webhook::new(url, engine::notify::RetryPolicy::default()))
                .transpose()
                .map_err(|e| anyhow::anyhow!(e))?,
            ..EngineConfig::default()
        };
        let recovered = store
            .recover(config.retain_events, SNAPSHOT_INCIDENTS, config.memory_capacity)
            .await?;
        let recovered_nothing = recovered.last_seq == 0;
        info!(
            last_seq = recovered.last_seq,
            interrupted = recovered.unfinished.len(),
            "continuing the stored event log"
        );
        let engine = match store.coordination() {
            None => Engine::durable(config, store.journal(), recovered)?,
            Some(coordination) => {
                let wake = Arc::new(tokio::sync::Notify::new());
                store.listen(Arc::clone(&wake));
                let sharing = engine::Sharing {
                    coordination,
                    wake,
                    tick: TAIL_TICK,
                };
                Engine::shared(config, store.journal(), recovered, sharing)?
            }
        };
        // Interrupted incidents are marked in the store before anyone asks.
        engine.flush().await;
        engine.start_health_reports();
        let mut leptos_options = get_configuration(None)
            .map_err(|e| anyhow::anyhow!("Leptos configuration: {e}"))?
            .leptos_options;
        let site = Site::new(settings.site_root.clone())?;
        leptos_options.site_addr = settings.bind_addr();
        leptos_options.site_pkg_dir = site.pkg_dir().into();
        if let Some(folder) = site.folder() {
            leptos_options.site_root = folder.to_string_lossy().as_ref().into();
        }

        // Generated scenarios inject into the twin: on a watched estate,
        // whose services are its own, they could not run anyway.
        let twin_topology = match engine.watched() {
            Some(_) => Arc::new(engine::twin::Topology::embedded()?),
            None => Arc::clone(engine.topology()),
        };
        let generator = settings.llm.generator(twin_topology)?;
        let timelines = Timelines::new(engine.clone(), generator)?;
        let sockets = ws::Sockets::new(
            settings.ws_heartbeat,
            ws::Caps {
                per_address: settings.ws_max_per_ip(),
                total: settings.ws_max,
            },
            settings.ws_write_budget,
        );
        let stopping = tokio_util::sync::CancellationToken::new();
        if settings.demo.enabled {
            crate::demo::start(
                &engine,
                timelines.clone(),
                sockets.open(),
                &settings.demo.timeline,
                recovered_nothing,
                stopping.clone(),
            )?;
        }
        let viewers = settings.demo.enabled.then(|| viewer_allowance(&engine, &settings));
        let state = AppState {
            leptos_options,
            timelines,
            engine,
            store,
            sockets,
            snapshot: live::SnapshotCache::default(),
            operator: app::operator::OperatorGate::new(operator_token(&settings)),
            intake: alerts::IntakeGate::new(settings.intake_token.clone()),
            origins: edge::AllowedOrigins::new(settings.allowed_origins.clone()),
            site,
            proxy: edge::TrustProxy(settings.trust_proxy),
            viewers,
        };
        let router = router(state.clone(), &settings);
        let listener = TcpListener::bind(settings.bind_addr())
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.bind_addr()))?;
        let addr = listener.local_addr()?;
        Ok(Self {
            addr,
            listener,
            router,
            state,
            settings,
            stopping,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn engine(&self) -> Engine {
        self.state.engine.clone()
    }

    /// Serves until `signal` completes, then shuts down gracefully.
    pub async fn run_until_stopped(self, signal: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        info!(addr = %self.addr, speed = %self.settings.speed, "antibody is serving on http://{}", self.addr);
        let Self {
            listener,
            router,
            state,
            settings,
            stopping,
            ..
        } = self;
        let shutdown = async move {
            signal.await;
            stopping.cancel();
            info!("shutting down: draining in-flight incidents");
            let report = state.engine.shutdown(settings.shutdown_grace).await;
            info!(
                drained = report.drained,
                interrupted = report.interrupted,
                "incidents settled; closing dashboards"
            );
            state.sockets.close_all(SOCKET_CLOSE_PATIENCE).await;
            state.store.close().await;
        };
        // The peer address is what the rate limiter keys on.
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, service).with_graceful_shutdown(shutdown).await?;
        info!("stopped");
        Ok(())
    }
}

/// The app's page routes, generated once per process. Generating them runs
/// the app with resource loading suppressed process-wide (leptos_server's
/// `SuppressResourceLoad`), and a page render in another server of the same
/// process whose resource first polls in that window waits forever
/// (leptos-rs/leptos#4773). The API tests run many servers in one process;
/// generating once, before any server can serve, closes the window.
fn route_list() -> Vec<AxumRouteListing> {
    static ROUTES: OnceLock<Vec<AxumRouteListing>> = OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

/// The whole HTTP surface.
pub fn router(state: AppState, settings: &Settings) -> Router {
    let routes = route_list();
    // Mutating endpoints: bounded bodies, and the operator token when set.
    let guarded_up_to = |limit: usize, route: MethodRouter<AppState>| {
        route
            .layer(DefaultBodyLimit::max(limit))
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                edge::require_operator,
            ))
    };
    let guarded = |route: MethodRouter<AppState>| guarded_up_to(incidents::MAX_BODY_BYTES, route);
    let router = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(crate::prometheus::render))
        .route("/twin/metrics", get(twin::metrics))
        .route("/login", post(edge::login))
        .route("/logout", post(edge::logout))
        .route(
            "/api/incidents",
            guarded(post(incidents::create_incident)).get(history::list_incidents),
        )
        .route("/api/incidents/{id}", get(history::get_incident))
        .route("/api/incidents/{id}/telemetry", get(history::get_telemetry))
        .route("/api/events", get(history::events))
        .route("/api/snapshot", get(live::snapshot))
        .route("/api/metrics", get(live::metrics))
        .route("/api/scenarios", get(live::scenarios))
        .route(
            "/api/scenarios/{id}/trigger",
            post(live::trigger)
                .layer(DefaultBodyLimit::max(incidents::MAX_BODY_BYTES))
                .layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    edge::require_operator_or_allowance,
                )),
        )
        .route("/api/timelines", get(timelines::list))
        .route(
            "/api/timelines/validate",
            post(timelines::validate).layer(DefaultBodyLimit::max(timelines::MAX_TIMELINE_BYTES)),
        )
        .route(
            "/api/timeline-runs",
            guarded_up_to(timelines::MAX_TIMELINE_BYTES, post(timelines::start)).get(timelines::runs),
        )
        .route("/api/timeline-runs/{id}", get(timelines::run))
        .route("/api/timeline-runs/{id}/{action}", guarded(post(timelines::steer)))
        .route("/api/approvals", get(approvals::list))
        .route("/api/approvals/{id}", get(approvals::get))
        .route("/api/approvals/{id}/decision", guarded(post(approvals::decide)))
        .route("/api/audit", get(approvals::audit))
        .route("/api/policy", get(approvals::policy))
        .route("/api/memory", get(memory::export).merge(guarded(delete(memory::clear))))
        .route("/api/analytics", get(analytics::analytics))
        .route("/api/models", get(analytics::models))
        .route("/api/openapi.json", get(docs::openapi_json))
        .route("/docs", get(docs::page))
        .route("/api/{*rest}", axum::routing::any(api_not_found))
        .route("/ws", get(ws::stream))
        .route("/pkg/{*file}", get(bundle_file))
        .leptos_routes_with_context(&state, routes, page_context(&state), {
            let options = state.leptos_options.clone();
            move || shell(options.clone())
        })
        .fallback(site_file_or_page);
    // The alert intake is outside the per-IP limit: one Alertmanager sends
    // every alert from one address, and its token, the body limit and the
    // cap on open incidents bound what it can cost. So are actuators'
    // results: one runbook system reports every step, each signed.
    let intake = Router::new()
        .route(
            "/api/alerts/alertmanager",
            post(alerts::alertmanager).layer(DefaultBodyLimit::max(alerts::MAX_BODY_BYTES)),
        )
        .route(
            "/api/actions/{id}/result",
            post(actions::result).layer(DefaultBodyLimit::max(alerts::MAX_BODY_BYTES)),
        )
        .route(
            "/api/alerts/pagerduty",
            post(alerts::pagerduty).layer(DefaultBodyLimit::max(alerts::MAX_BODY_BYTES)),
        );
    rate_limited(router, settings)
        .merge(intake)
        .layer(axum::middleware::from_fn(edge::objects_only))
        // Pages and API answers. The site's files (the ones with an ETag)
        // come precompressed or not at all: compressing one here would send
        // a second representation under the first one's ETag. A WebSocket
        // upgrade has no body to compress.
        .layer(CompressionLayer::new().compress_when(DefaultPredicate::new().and(
            |_: axum::http::StatusCode,
             _: axum::http::Version,
             headers: &axum::http::HeaderMap,
             _: &axum::http::Extensions| { !headers.contains_key(header::ETAG) },
        )))
        // Pages are rendered from live state: never reused unasked.
        .layer(axum::middleware::map_response(revalidate_pages))
        .layer(CatchPanicLayer::custom(|_| {
            Problem::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "the server hit a bug; it has been logged",
            )
            .into_response()
        }))
        .layer(TraceLayer::new_for_http())
        .route_layer(axum::middleware::from_fn(crate::prometheus::track_http))
        .with_state(state)
}

/// What every page render is given besides the app's state.
fn page_context(state: &AppState) -> impl Fn() + Clone + Send + Sync + 'static {
    let (engine, timelines) = (state.engine.clone(), state.timelines.clone());
    let (operator, store) = (state.operator.clone(), state.store.clone());
    let viewers = state.viewers.clone();
    move || {
        provide_context(engine.clone());
        provide_context(timelines.clone());
        provide_context(operator.clone());
        provide_context(store.clone());
        if let Some(viewers) = &viewers {
            provide_context(viewers.clone());
        }
    }
}

/// The operator token: the one set, or on a demo server without one, a
/// fresh one for this run, logged for its operator.
fn operator_token(settings: &Settings) -> Option<String> {
    match (&settings.operator_token, settings.demo.enabled) {
        (Some(token), _) if !token.is_empty() => Some(token.clone()),
        (_, true) => {
            let token = uuid::Uuid::new_v4().simple().to_string();
            tracing::warn!(
                "demo mode without ANTIBODY_OPERATOR_TOKEN: this run's operator token is {token} \
                 (set ANTIBODY_OPERATOR_TOKEN to choose one)"
            );
            Some(token)
        }
        (token, false) => token.clone(),
    }
}

/// What a demo's viewers may fire: the primary scenarios, within the
/// demo's rates.
fn viewer_allowance(engine: &Engine, settings: &Settings) -> app::operator::ViewerAllowance {
    let primary = (engine.scenarios().into_iter())
        .filter(|s| s.primary)
        .map(|s| s.id)
        .collect();
    let rate = |n: u32| std::num::NonZeroU32::new(n).expect("the settings' ranges start at 1");
    app::operator::ViewerAllowance::new(
        primary,
        rate(settings.demo.viewer_rate),
        rate(settings.demo.viewer_cap),
        settings.trust_proxy,
    )
}

/// A file of the browser bundle (`/pkg/…`), or a plain 404.
async fn bundle_file(State(site): State<Site>, request: axum::extract::Request) -> axum::response::Response {
    match site.respond(request.uri().path(), request.headers()).await {
        Some(response) => response,
        None => Problem::field(axum::http::StatusCode::NOT_FOUND, "path", "no such file in the bundle").into_response(),
    }
}

/// A file of the site (the icon, Swagger UI's assets), else the app's page
/// for the path: its "Page not found" when no route matches.
async fn site_file_or_page(State(state): State<AppState>, request: axum::extract::Request) -> axum::response::Response {
    use axum::http::Method;
    if matches!(*request.method(), Method::GET | Method::HEAD)
        && let Some(response) = state.site.respond(request.uri().path(), request.headers()).await
    {
        return response;
    }
    let context = {
        let (state, pages) = (state.clone(), page_context(&state));
        move || {
            provide_context(state.clone());
            pages();
        }
    };
    let options = state.leptos_options.clone();
    let render = leptos_axum::render_app_to_stream_in_order_with_context(context, move || shell(options.clone()));
    let mut response = render(request).await;
    // No route matched; a page that chose its own status (a redirect) keeps it.
    if response.status() == axum::http::StatusCode::OK {
        *response.status_mut() = axum::http::StatusCode::NOT_FOUND;
    }
    response
}

/// Marks an HTML page `no-cache` (kept, but revalidated on every use).
async fn revalidate_pages(mut response: axum::response::Response) -> axum::response::Response {
    let html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"text/html"));
    if html && !response.headers().contains_key(header::CACHE_CONTROL) {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    response
}

/// Limits mutating requests (POST, PUT, PATCH, DELETE) per client IP: the
/// peer address, or, behind a proxy that is trusted to set them, the
/// forwarding headers. Reads are never limited.
fn rate_limited(router: Router<AppState>, settings: &Settings) -> Router<AppState> {
    use axum::http::Method;
    use tower_governor::{
        GovernorError, GovernorLayer,
        governor::GovernorConfigBuilder,
        key_extractor::{KeyExtractor, PeerIpKeyExtractor, SmartIpKeyExtractor},
    };

    fn refusal(error: GovernorError) -> axum::response::Response {
        match error {
            GovernorError::TooManyRequests { wait_time, .. } => {
                let mut response = Problem::new(
                    axum::http::StatusCode::TOO_MANY_REQUESTS,
                    format!("too many requests from your address; retry in {wait_time} s"),
                )
                .into_response();
                response
                    .headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, wait_time.max(1).into());
                response
            }
            GovernorError::UnableToExtractKey => Problem::new(
                axum::http::StatusCode::BAD_REQUEST,
                "cannot tell which client this is, for rate limiting",
            )
            .into_response(),
            GovernorError::Other { code, msg, .. } => {
                Problem::new(code, msg.unwrap_or_else(|| "refused by the rate limiter".into())).into_response()
            }
        }
    }

    fn layer<K: KeyExtractor + Send + Sync + 'static>(
        router: Router<AppState>,
        extractor: K,
        settings: &Settings,
    ) -> Router<AppState>
    where
        K::Key: Send + Sync,
    {
        let config = GovernorConfigBuilder::default()
            .period(std::time::Duration::from_secs(60) / settings.rate_limit)
            .burst_size(settings.rate_burst)
            .methods(vec![Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
            .key_extractor(extractor)
            .finish()
            .expect("the period and burst are positive");
        router.layer(GovernorLayer::new(config).error_handler(refusal))
    }

    if settings.trust_proxy {
        layer(router, SmartIpKeyExtractor, settings)
    } else {
        layer(router, PeerIpKeyExtractor, settings)
    }
}

/// Unknown API paths get a problem, not the dashboard's HTML 404 page.
async fn api_not_found(uri: axum::http::Uri) -> Problem {
    Problem::field(
        axum::http::StatusCode::NOT_FOUND,
        "path",
        format!("no API endpoint at {}", uri.path()),
    )
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        tokio::signal::ctrl_c().await.expect("installing the Ctrl-C handler");
    };
    #[cfg(unix)]
    let terminate = async {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler")
            .recv()
            .await;
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
