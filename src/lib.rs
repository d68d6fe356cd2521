//! mcp-v8: a V8 JavaScript/TypeScript runtime for AI agents, served over MCP.
//!
//! The crate is laid out in layers; data flows one way, top to bottom:
//!
//! - [`transport`]: MCP over stdio, Streamable HTTP and SSE, and the plain
//!   HTTP API, hands requests to
//! - [`tools`]: one function per MCP tool, typed parameters, which call
//! - [`executor`]: queue, limits, persistent execution records, and a pool of
//!   worker processes (`mcp-v8 worker`), each of which drives
//! - [`engine`]: one fresh V8 isolate per execution (deno_core), with limits,
//!   console capture and TypeScript stripping.
//!
//! [`storage`] (heap snapshot stores) and [`sessions`] (session logs and heap
//! tags) are handed to the executor and tools at start-up; they never call up.
//!
//! [`config`] holds the one typed configuration every layer is built from;
//! [`private_fs`] creates the owner-only files and directories they all use;
//! [`dir_lock`] keeps a directory to one process; [`in_flight`] waits for
//! work in progress to end, for the shutdowns of the executor and the tools.
//! See `ARCHITECTURE.md` for the map and the invariants.

pub mod cli;
pub mod config;
pub mod dir_lock;
pub mod engine;
pub mod executor;
pub mod in_flight;
pub mod private_fs;
pub mod sessions;
pub mod storage;
pub mod tools;
pub mod transport;
