//! The dashboard's panels. Each takes the state signal and derives what it
//! shows; none keeps a copy.

pub mod connection;
pub mod dashboard;
pub mod feed;
pub mod health;
pub mod impact;
pub mod incidents;
pub mod login;
pub mod scenarios;
pub mod swarm;
pub mod timeline_runs;
pub mod timelines;
