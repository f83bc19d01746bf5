//! Integration tests: the real server, in process, on 127.0.0.1:0, driven
//! over real HTTP and WebSocket; and the binary itself, for its subcommands
//! and signals.

mod actuation;
mod alerts;
mod cluster;
mod components;
mod demo;
mod deploy;
mod edge;
mod eval;
mod fuzz;
mod governance;
mod helpers;
mod history;
mod incidents;
mod memory;
mod ml;
mod pages;
mod prometheus;
mod restart;
mod shutdown;
mod timelines;
mod twin_serve;
mod watched;
mod websocket;
