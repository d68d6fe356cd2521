//! [`Executor`]: the handle the tool layer talks to.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::records::Retention;
use super::{
    ExecutionRecord, ExecutionSummary, ExecutorError, OutputPage, OutputQuery, RunRequest,
};

/// Everything the executor needs, resolved from the server configuration.
#[derive(Debug, Clone)]
pub struct ExecutorConfig {
    /// Where the record journal and output logs live.
    pub state_dir: PathBuf,
    /// The `mcp-v8` binary to start as `mcp-v8 worker`.
    pub worker_exe: PathBuf,
    /// Worker processes, which is also how many executions run at once.
    pub max_concurrent: usize,
    /// Executions that may wait for a worker before `submit` answers busy.
    pub max_queued: usize,
    pub default_heap_mb: u32,
    /// Per-call heap limits must lie in `[MIN_HEAP_MB, heap_cap_mb]`.
    pub heap_cap_mb: u32,
    pub default_timeout_secs: u64,
    /// Per-call timeouts must lie in `[1, max_timeout_secs]`.
    pub max_timeout_secs: u64,
    pub max_output_bytes: u64,
    pub max_code_bytes: usize,
    pub retention: Retention,
}

/// Cheap to clone; all clones drive the same queue, workers and records.
#[derive(Clone)]
pub struct Executor {
    inner: Arc<Inner>,
}

struct Inner {}

impl Executor {
    /// Opens the state directory (replaying the record journal) and starts the workers.
    pub async fn start(_config: ExecutorConfig) -> anyhow::Result<Self> {
        todo!()
    }

    /// Validates and queues an execution; returns its id at once.
    pub fn submit(&self, _request: RunRequest) -> Result<String, ExecutorError> {
        todo!()
    }

    /// Waits up to `max_wait` for the execution to reach a final status, then
    /// returns its record as it is (final or still in flight).
    pub async fn wait(
        &self,
        _execution_id: &str,
        _max_wait: Duration,
    ) -> Result<ExecutionRecord, ExecutorError> {
        todo!()
    }

    pub fn get(&self, _execution_id: &str) -> Result<ExecutionRecord, ExecutorError> {
        todo!()
    }

    pub fn output(
        &self,
        _execution_id: &str,
        _query: &OutputQuery,
    ) -> Result<OutputPage, ExecutorError> {
        todo!()
    }

    /// Cancels a queued or running execution and returns its final record.
    /// Cancelling a finished execution returns its record unchanged.
    pub async fn cancel(&self, _execution_id: &str) -> Result<ExecutionRecord, ExecutorError> {
        todo!()
    }

    /// All retained executions, oldest first.
    pub fn list(&self) -> Vec<ExecutionSummary> {
        todo!()
    }

    /// Stops accepting work and stops the workers.
    pub async fn shutdown(&self) {
        let _ = &self.inner;
        todo!()
    }
}
