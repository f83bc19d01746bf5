//! HTTP and WebSocket handlers. Each parses its input at the edge, calls
//! the engine, and maps the outcome to a status; none holds logic of its own.

pub mod health;
pub mod incidents;
pub mod ws;
