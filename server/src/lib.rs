//! The antibody server: the engine behind a thin axum edge.
//!
//! - [`configuration`]: settings from flags and the environment.
//! - [`telemetry`]: structured logs.
//! - [`startup`]: builds the router and runs it, with graceful shutdown.
//! - [`routes`]: the HTTP and WebSocket handlers, each an adapter over
//!   [`engine::Engine`].
//! - [`problem`]: RFC 9457 problem-details errors.
//! - [`prometheus`]: the `/metrics` exposition and the HTTP middleware.
//! - [`eval`]: the `antibody eval` subcommand (the swarm's score card).
//! - [`loadtest`]: the `antibody loadtest` subcommand (the live stream under
//!   many dashboards).
//! - [`timeline_cli`]: the `antibody timeline` subcommand (run a timeline
//!   against a server or an embedded engine).
//! - [`twin_serve`]: `antibody twin serve`, the simulated estate as a
//!   service of its own.

pub mod alert_load;
pub mod configuration;
pub mod demo;
pub mod eval;
pub mod loadtest;
pub mod problem;
pub mod prometheus;
pub mod routes;
pub mod simulate_cli;
pub mod site;
pub mod startup;
pub mod telemetry;
pub mod timeline_cli;
pub mod twin_serve;
