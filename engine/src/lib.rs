//! Antibody's engine: the swarm that takes an incident from detection to
//! resolution, and the event log every dashboard follows.
//!
//! The crate has two layers:
//! - always: [`protocol`] (the wire messages) and [`request`] (validation of
//!   incoming requests), with no runtime dependencies, so the browser build
//!   shares them;
//! - with the `runtime` feature (the default): the [`Engine`] handle, the
//!   [`twin`] (the simulated estate), the five [`agents`], the
//!   [`consensus`] vote, the [`orchestrator`], the agent [`bus`], the
//!   [`catalog`] of scenarios and playbooks, the root-service
//!   [`claims`], the [`clock`], the
//!   [`event_log`] and its durable [`journal`] interface, [`governance`]
//!   (policy and approvals), the incident [`memory`], [`notify`]
//!   (webhooks), [`timeline`]s (scheduled incident streams and generated
//!   scenarios) and the [`evaluation`] harness.
//!
//! The engine depends on neither axum nor leptos: the server's HTTP edge
//! and the Leptos server functions are thin adapters over [`Engine`].

#[cfg(feature = "runtime")]
pub mod actuator;
#[cfg(feature = "runtime")]
pub mod agents;
#[cfg(feature = "runtime")]
pub mod consensus;
pub mod protocol;
pub mod request;

#[cfg(feature = "runtime")]
pub mod bus;
#[cfg(feature = "runtime")]
pub mod catalog;
#[cfg(feature = "runtime")]
mod charts;
#[cfg(feature = "runtime")]
pub mod claims;
#[cfg(feature = "runtime")]
pub mod clock;
#[cfg(feature = "runtime")]
pub mod cluster;
#[cfg(feature = "runtime")]
mod engine;
#[cfg(feature = "runtime")]
pub mod evaluation;
#[cfg(feature = "runtime")]
pub mod event_log;
#[cfg(feature = "runtime")]
pub mod governance;
#[cfg(feature = "runtime")]
pub mod impact;
#[cfg(feature = "runtime")]
pub mod intake;
#[cfg(feature = "runtime")]
pub mod journal;
#[cfg(feature = "runtime")]
pub mod memory;
#[cfg(feature = "runtime")]
pub mod notify;
#[cfg(feature = "runtime")]
pub mod observe;
#[cfg(feature = "runtime")]
pub mod orchestrator;
#[cfg(feature = "runtime")]
pub mod prometheus;
#[cfg(feature = "runtime")]
pub mod timeline;
#[cfg(feature = "runtime")]
pub mod twin;
#[cfg(feature = "runtime")]
pub mod twin_service;
#[cfg(feature = "runtime")]
pub mod watched;

#[cfg(feature = "runtime")]
pub use agents::Swarm;
#[cfg(feature = "runtime")]
pub use engine::{
    AlertReceipt, Audit, Engine, EngineConfig, Feed, FeedStart, Resume, SNAPSHOT_EVENTS, SNAPSHOT_INCIDENTS, Sharing,
    ShutdownReport, StartError, SubmitError, TwinMode,
};
