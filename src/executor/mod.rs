//! The executor owns every execution from acceptance to its final record.
//!
//! It validates per-call limits, queues work (bounded), hands each execution to
//! one of a pool of long-lived worker processes (`mcp-v8 worker`), streams the
//! worker's console output into the persistent output log, and writes each state
//! change to the record journal. The parent process never runs V8.

mod error;
pub mod output;
pub mod records;
mod service;
pub mod state_dir;
mod types;
pub mod worker;

pub use error::ExecutorError;
pub use service::{Executor, ExecutorConfig, MIN_HEAP_MB};
pub use types::*;
