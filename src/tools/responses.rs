//! Tool results that are not executor types as they are.
//!
//! Their doc comments become the `description`s in the tools' output schemas.

use schemars::JsonSchema;
use serde::Serialize;

use crate::executor::{ExecutionRecord, ExecutionStatus, ExecutionSummary};

/// What `run_js` answers: the new execution's id and where it stands.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct RunJsResponse {
    /// Id of the new execution; pass it to `get_execution`, `get_execution_output` and `cancel_execution`.
    pub execution_id: String,
    /// `queued` or `running` while in flight; `completed`, `failed`, `cancelled` or `timed_out` once finished (only possible with `wait_ms` > 0).
    pub status: ExecutionStatus,
    /// The encoded completion value of the code (the value of the last expression statement run); present when the execution completed within `wait_ms`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// What went wrong; present when the execution failed, timed out or was cancelled within `wait_ms`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl From<ExecutionRecord> for RunJsResponse {
    /// Keeps `result`/`error` only for a final record: an in-flight execution
    /// has neither, and the response must not suggest otherwise.
    fn from(record: ExecutionRecord) -> Self {
        let is_final = record.status.is_final();
        Self {
            execution_id: record.execution_id,
            status: record.status,
            result: record.result.filter(|_| is_final),
            error: record.error.filter(|_| is_final),
        }
    }
}

/// What `list_executions` answers.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ListExecutionsResponse {
    /// How many executions the server holds in all.
    pub total: u64,
    /// The offset of the next page; null when this page reaches the latest execution.
    pub next_offset: Option<u64>,
    /// The executions from the requested offset on, oldest first.
    pub executions: Vec<ExecutionSummary>,
}
