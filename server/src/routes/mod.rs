//! HTTP and WebSocket handlers. Each parses its input at the edge, calls
//! the engine, and maps the outcome to a status; none holds logic of its own.

pub mod analytics;
pub mod approvals;
pub mod docs;
pub mod edge;
pub mod health;
pub mod history;
pub mod incidents;
pub mod live;
pub mod memory;
pub mod timelines;
pub mod ws;
