//! Transports that carry MCP to the tools.
//!
//! Each transport takes a ready [`McpV8`](crate::tools::McpV8) and serves it
//! until its peer goes away; building the executor and shutting it down is the
//! caller's (`main.rs`) job, so that every transport ends the same way.

pub mod api;
pub mod http;
mod json_lines;
mod message;
mod pre_init;
mod stdio;

pub(crate) use pre_init::PreInitFilter;

pub use stdio::serve_stdio;
