//! The public vocabulary of the executor: requests, records, statuses and output pages.
//!
//! These types cross the tool layer and are persisted in the record journal, so
//! their serde names are part of the wire format and of the on-disk format.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Lifecycle of one execution. `queued` and `running` are in flight; the rest are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionStatus {
    Queued,
    Running,
    Completed,
    Failed,
    Cancelled,
    TimedOut,
}

impl ExecutionStatus {
    /// True once the execution can no longer change.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Queued | Self::Running)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::TimedOut => "timed_out",
        }
    }
}

impl std::fmt::Display for ExecutionStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an execution was cancelled; its record's `error` says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelReason {
    /// `cancel_execution`, or `POST /api/executions/{id}/cancel`.
    Requested,
    /// The `/api/exec` caller went away before the execution finished.
    ClientGone,
    /// The `run_js` call waiting for it was cancelled by its client
    /// (`notifications/cancelled`) or lost its MCP session.
    CallCancelled,
    /// The server shut down with the execution still in flight.
    ShuttingDown,
}

impl CancelReason {
    pub fn message(self) -> &'static str {
        match self {
            Self::Requested => "cancelled on request (cancel_execution)",
            Self::ClientGone => "cancelled: the client that ran it disconnected before it finished",
            Self::CallCancelled => {
                "cancelled: the run_js call that started it was cancelled before it finished"
            }
            Self::ShuttingDown => "cancelled: the server shut down before it finished",
        }
    }
}

/// What a caller asks to run. Limits left `None` take the server's values.
#[derive(Debug, Clone, Default)]
pub struct RunRequest {
    pub code: String,
    pub heap_memory_max_mb: Option<u32>,
    pub execution_timeout_secs: Option<u64>,
    /// Resume from this heap snapshot (64 lowercase hex, SHA-256); `None` starts
    /// fresh, or from the session's latest heap when `session` is given.
    pub heap: Option<String>,
    /// Append this execution to the named session's log.
    pub session: Option<String>,
    /// Tags to set on the heap snapshot this execution produces.
    pub tags: Option<BTreeMap<String, String>>,
}

/// The durable record of one execution, as `get_execution` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ExecutionRecord {
    /// The id `run_js` returned.
    pub execution_id: String,
    /// queued, running, completed, failed, cancelled or timed_out.
    pub status: ExecutionStatus,
    /// The encoded completion value of the code (the value of the last expression statement run): set when the code
    /// completed (also when its heap then could not be stored, which fails
    /// the execution).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// What went wrong (failed, cancelled and timed-out executions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// SHA-256 (64 lowercase hex) naming the heap snapshot this execution left
    /// behind; pass it as `heap` to continue from this state. Stateful mode only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heap: Option<String>,
    /// Size of that snapshot as stored (compressed), in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heap_size_bytes: Option<u64>,
    /// The session this execution was logged to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// When the server accepted the execution (RFC 3339, UTC).
    pub started_at: DateTime<Utc>,
    /// When the execution reached its final status (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
    /// Milliseconds from `started_at` to `completed_at`, or to now while in flight.
    pub duration_ms: u64,
}

/// One row of `list_executions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ExecutionSummary {
    /// The id `run_js` returned.
    pub execution_id: String,
    /// queued, running, completed, failed, cancelled or timed_out.
    pub status: ExecutionStatus,
    /// When the server accepted the execution (RFC 3339, UTC).
    pub started_at: DateTime<Utc>,
    /// When the execution reached its final status (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
}

/// Which slice of an execution's console output to read.
///
/// Offsets are **0-based** in both coordinate systems. Line mode is the default;
/// giving `byte_offset` or `byte_limit` selects byte mode; mixing both is an error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutputQuery {
    pub line_offset: Option<u64>,
    pub line_limit: Option<u64>,
    pub byte_offset: Option<u64>,
    pub byte_limit: Option<u64>,
}

/// A page of console output with its position in both lines and bytes.
///
/// `end_line`/`end_byte` are exclusive; `next_*_offset` equal them, so a reader
/// continues from there. Lines are counted by `\n`: `start_line` is the number of
/// complete lines before `start_byte`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OutputPage {
    /// The execution this output belongs to.
    pub execution_id: String,
    /// The selected output: whole lines, each ending in a newline, in line mode.
    pub data: String,
    /// 0-based index of the first line in `data`.
    pub start_line: u64,
    /// Index just past the last line in `data` (exclusive).
    pub end_line: u64,
    /// Where the next page starts in line mode (equals `end_line`).
    pub next_line_offset: u64,
    /// Lines in the whole output so far.
    pub total_lines: u64,
    /// 0-based byte offset of `data` in the whole output.
    pub start_byte: u64,
    /// Byte offset just past `data` (exclusive).
    pub end_byte: u64,
    /// Where the next page starts in byte mode (equals `end_byte`).
    pub next_byte_offset: u64,
    /// Bytes in the whole output so far.
    pub total_bytes: u64,
    /// True when output exists beyond this page.
    pub has_more: bool,
    /// The execution's status when the page was read; output may still grow while it is running.
    pub status: ExecutionStatus,
}
