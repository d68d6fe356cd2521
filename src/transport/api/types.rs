//! Request and response bodies of the HTTP API, with their OpenAPI schemas.
//!
//! Records, summaries and output pages mirror the executor's types field for
//! field (same serde names, same omitted fields), so `GET /api/executions/{id}`
//! answers exactly what the `get_execution` tool does. They are mirrored rather
//! than reused because the OpenAPI schemas need `utoipa::ToSchema`; a test
//! checks that each mirror serializes like its original.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::executor::{
    ExecutionRecord, ExecutionStatus, ExecutionSummary, OutputPage, OutputQuery, RunRequest,
};

/// The JSON body of `POST /api/exec` and `POST /api/executions`.
///
/// Unknown fields are rejected, so a misspelt limit (say `timeout_secs`) is
/// reported instead of silently ignored.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecRequest {
    /// JavaScript or TypeScript to run, as a script or an ES module. The code's completion value, as eval gives it (the value of the last expression statement run), awaited if it is a Promise, becomes `result`. Each execution starts from a fresh global scope, unless `heap` or `session` resumes a saved one.
    pub code: String,
    /// Stateful servers only: resume from this heap snapshot (64 lowercase hex, as `heap` in a record) instead of a fresh global scope.
    #[serde(default)]
    pub heap: Option<String>,
    /// Stateful servers only: log this execution in the named session, creating it on first use; without `heap`, resume the session's latest heap.
    #[serde(default)]
    pub session: Option<String>,
    /// V8 heap limit for this execution, in MiB; the server's default when omitted.
    #[serde(default)]
    #[schema(minimum = 4)]
    pub heap_memory_max_mb: Option<u32>,
    /// Wall-clock limit for this execution, in seconds; the server's default when omitted.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub execution_timeout_secs: Option<u64>,
    /// Stateful servers only: tags to set on the heap snapshot this execution leaves behind.
    #[serde(default)]
    pub tags: Option<BTreeMap<String, String>>,
}

impl From<ExecRequest> for RunRequest {
    /// Limits are validated by the executor, which knows the server's ranges.
    fn from(request: ExecRequest) -> Self {
        Self {
            code: request.code,
            heap_memory_max_mb: request.heap_memory_max_mb,
            execution_timeout_secs: request.execution_timeout_secs,
            heap: request.heap,
            session: request.session,
            tags: request.tags,
        }
    }
}

/// What `POST /api/exec` answers once the execution has finished.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ExecResponse {
    pub execution_id: String,
    /// How the code ended: `completed`, `failed`, `timed_out` or `cancelled` (the route waits until it has ended).
    pub status: Status,
    /// The encoded completion value of the code (the value of the last expression statement run) (completed executions), else null.
    #[schema(required = true)]
    pub result: Option<String>,
    /// What went wrong (failed, timed-out and cancelled executions), else null.
    #[schema(required = true)]
    pub error: Option<String>,
    /// The heap snapshot this execution left behind (stateful mode), else null.
    #[schema(required = true)]
    pub heap: Option<String>,
    /// The first 64 KiB of console output (never splitting a UTF-8 character).
    pub output: String,
    /// True when there is more output than `output` holds; read it from `/api/executions/{id}/output`.
    pub output_truncated: bool,
    /// Milliseconds from acceptance to the final status.
    pub duration_ms: u64,
}

impl ExecResponse {
    /// Combines a record with the first page of its output.
    pub fn new(record: ExecutionRecord, output: OutputPage) -> Self {
        Self {
            execution_id: record.execution_id,
            status: record.status.into(),
            result: record.result,
            error: record.error,
            heap: record.heap,
            output: output.data,
            output_truncated: output.has_more,
            duration_ms: record.duration_ms,
        }
    }
}

/// What `POST /api/executions` answers: the id to follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Created {
    /// Poll `GET /api/executions/{execution_id}` (also given in the `Location` header).
    pub execution_id: String,
}

/// What `GET /api/executions` answers.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ExecutionList {
    /// How many executions the server holds in all.
    pub total: u64,
    /// The offset of the next page; null when this page reaches the latest execution.
    pub next_offset: Option<u64>,
    /// The executions from the requested offset on, oldest first.
    pub executions: Vec<Summary>,
}

/// The query of `GET /api/executions`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Position of the first execution to list, 0-based, oldest first; default 0. To continue, pass the previous answer's `next_offset`.
    pub offset: Option<u64>,
    /// Most executions to list; default 1000, at most 10000.
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<u64>,
}

/// The query of `GET /api/sessions/{session}`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SessionQuery {
    /// Comma-separated fields to include in each entry, among index, input_heap, output_heap, code and timestamp (for example `index,output_heap`); execution_id and status are always included. Omit for every field.
    pub fields: Option<String>,
    /// Index of the first entry to list, 0-based; default 0. To continue, pass the previous answer's `next_offset`.
    pub offset: Option<u64>,
    /// Most entries to list; default 1000, at most 10000.
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<u64>,
}

/// The body of `PUT /api/heaps/{heap}/tags`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TagsBody {
    /// The heap's new tags, replacing all current ones; `{}` removes every tag. Keys 1 to 128 characters, values at most 1024, at most 64 tags.
    pub tags: BTreeMap<String, String>,
}

/// The query of `GET /api/executions/{id}/output`: the same pagination as the
/// `get_execution_output` tool.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OutputParams {
    /// Line mode: index of the first line, 0-based; default 0. Continue from the previous page's `next_line_offset`.
    pub line_offset: Option<u64>,
    /// Line mode: maximum lines to return; default 1000, at most 10000.
    pub line_limit: Option<u64>,
    /// Byte mode: offset of the first byte, 0-based; default 0. Selects byte mode; do not combine with the line parameters.
    pub byte_offset: Option<u64>,
    /// Byte mode: maximum bytes to return; default 65536, at most 1048576. Selects byte mode.
    pub byte_limit: Option<u64>,
}

impl From<OutputParams> for OutputQuery {
    /// Defaults, maxima and the mixed-mode check are the executor's, so every
    /// front end pages output the same way.
    fn from(params: OutputParams) -> Self {
        Self {
            line_offset: params.line_offset,
            line_limit: params.line_limit,
            byte_offset: params.byte_offset,
            byte_limit: params.byte_limit,
        }
    }
}

/// Lifecycle of one execution. `queued` and `running` are in flight; the rest are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Queued,
    Running,
    Completed,
    Failed,
    Cancelled,
    TimedOut,
}

impl From<ExecutionStatus> for Status {
    fn from(status: ExecutionStatus) -> Self {
        match status {
            ExecutionStatus::Queued => Self::Queued,
            ExecutionStatus::Running => Self::Running,
            ExecutionStatus::Completed => Self::Completed,
            ExecutionStatus::Failed => Self::Failed,
            ExecutionStatus::Cancelled => Self::Cancelled,
            ExecutionStatus::TimedOut => Self::TimedOut,
        }
    }
}

/// The durable record of one execution (as the `get_execution` tool reports it).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Record {
    pub execution_id: String,
    pub status: Status,
    /// The encoded completion value of the code (the value of the last expression statement run): set when the code
    /// completed (also when its heap then could not be stored, which fails
    /// the execution).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// What went wrong (failed, cancelled and timed-out executions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// SHA-256 (64 lowercase hex) naming the heap snapshot this execution left behind (stateful mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heap: Option<String>,
    /// Size of that snapshot as stored (compressed), in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heap_size_bytes: Option<u64>,
    /// The session this execution was logged to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// When the server accepted the execution (RFC 3339, UTC).
    pub started_at: DateTime<Utc>,
    /// When the execution reached its final status (RFC 3339, UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
    /// Milliseconds from `started_at` to `completed_at`, or to now while in flight.
    pub duration_ms: u64,
}

impl From<ExecutionRecord> for Record {
    fn from(record: ExecutionRecord) -> Self {
        Self {
            execution_id: record.execution_id,
            status: record.status.into(),
            result: record.result,
            error: record.error,
            heap: record.heap,
            heap_size_bytes: record.heap_size_bytes,
            session: record.session,
            started_at: record.started_at,
            completed_at: record.completed_at,
            duration_ms: record.duration_ms,
        }
    }
}

/// One row of `GET /api/executions`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Summary {
    pub execution_id: String,
    pub status: Status,
    /// When the server accepted the execution (RFC 3339, UTC).
    pub started_at: DateTime<Utc>,
    /// When the execution reached its final status (RFC 3339, UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
}

impl From<ExecutionSummary> for Summary {
    fn from(summary: ExecutionSummary) -> Self {
        Self {
            execution_id: summary.execution_id,
            status: summary.status.into(),
            started_at: summary.started_at,
            completed_at: summary.completed_at,
        }
    }
}

/// A page of console output with its position in both lines and bytes.
/// `end_*` are exclusive and equal `next_*_offset`, where the next page starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Page {
    pub execution_id: String,
    /// The selected output: whole lines, each ending in a newline, in line mode.
    pub data: String,
    /// 0-based index of the first line in `data`.
    pub start_line: u64,
    /// Index just past the last line in `data` (exclusive).
    pub end_line: u64,
    /// Where the next page starts in line mode.
    pub next_line_offset: u64,
    /// Lines in the whole output so far.
    pub total_lines: u64,
    /// 0-based byte offset of `data` in the whole output.
    pub start_byte: u64,
    /// Byte offset just past `data` (exclusive).
    pub end_byte: u64,
    /// Where the next page starts in byte mode.
    pub next_byte_offset: u64,
    /// Bytes in the whole output so far.
    pub total_bytes: u64,
    /// True when output exists beyond this page.
    pub has_more: bool,
    /// The execution's status when the page was read; output may still grow while it is running.
    pub status: Status,
}

impl From<OutputPage> for Page {
    fn from(page: OutputPage) -> Self {
        Self {
            execution_id: page.execution_id,
            data: page.data,
            start_line: page.start_line,
            end_line: page.end_line,
            next_line_offset: page.next_line_offset,
            total_lines: page.total_lines,
            start_byte: page.start_byte,
            end_byte: page.end_byte,
            next_byte_offset: page.next_byte_offset,
            total_bytes: page.total_bytes,
            has_more: page.has_more,
            status: page.status.into(),
        }
    }
}

/// What `/healthz` and a successful `/readyz` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: &'static str,
}

/// What `GET /api/version` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Version {
    /// `mcp-v8`.
    pub name: &'static str,
    /// The server's version.
    pub version: &'static str,
    /// The version of the V8 engine that runs the code.
    pub v8_version: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(complete: bool) -> ExecutionRecord {
        let started_at = DateTime::parse_from_rfc3339("2025-01-02T03:04:05.678Z")
            .expect("a valid timestamp")
            .with_timezone(&Utc);
        ExecutionRecord {
            execution_id: "id".to_owned(),
            status: if complete {
                ExecutionStatus::Completed
            } else {
                ExecutionStatus::Running
            },
            result: complete.then(|| "42".to_owned()),
            error: None,
            heap: complete.then(|| "ab".repeat(32)),
            heap_size_bytes: complete.then_some(1234),
            session: complete.then(|| "s".to_owned()),
            started_at,
            completed_at: complete.then_some(started_at),
            duration_ms: 7,
        }
    }

    /// The mirrors must put exactly the executor's JSON on the wire.
    #[test]
    fn mirrors_serialize_like_the_executor_types() {
        for complete in [false, true] {
            let original = record(complete);
            assert_eq!(
                serde_json::to_value(Record::from(original.clone())).ok(),
                serde_json::to_value(&original).ok()
            );
            let summary = ExecutionSummary {
                execution_id: original.execution_id.clone(),
                status: original.status,
                started_at: original.started_at,
                completed_at: original.completed_at,
            };
            assert_eq!(
                serde_json::to_value(Summary::from(summary.clone())).ok(),
                serde_json::to_value(&summary).ok()
            );
        }
        let page = OutputPage {
            execution_id: "id".to_owned(),
            data: "a\n".to_owned(),
            start_line: 0,
            end_line: 1,
            next_line_offset: 1,
            total_lines: 1,
            start_byte: 0,
            end_byte: 2,
            next_byte_offset: 2,
            total_bytes: 2,
            has_more: false,
            status: ExecutionStatus::TimedOut,
        };
        assert_eq!(
            serde_json::to_value(Page::from(page.clone())).ok(),
            serde_json::to_value(&page).ok()
        );
    }

    #[test]
    fn every_status_keeps_its_name() {
        use ExecutionStatus::*;
        for status in [Queued, Running, Completed, Failed, Cancelled, TimedOut] {
            assert_eq!(
                serde_json::to_value(Status::from(status)).ok(),
                serde_json::to_value(status).ok()
            );
        }
    }

    #[test]
    fn exec_request_rejects_unknown_fields_and_maps_every_field() {
        let unknown = serde_json::from_value::<ExecRequest>(
            serde_json::json!({"code": "1", "timeout_secs": 5}),
        );
        assert!(unknown.is_err());

        let request: ExecRequest = serde_json::from_value(serde_json::json!({
            "code": "1",
            "heap": "h",
            "session": "s",
            "heap_memory_max_mb": 16,
            "execution_timeout_secs": 5,
            "tags": {"k": "v"},
        }))
        .expect("a complete request parses");
        let run = RunRequest::from(request);
        assert_eq!(run.code, "1");
        assert_eq!(run.heap.as_deref(), Some("h"));
        assert_eq!(run.session.as_deref(), Some("s"));
        assert_eq!(run.heap_memory_max_mb, Some(16));
        assert_eq!(run.execution_timeout_secs, Some(5));
        assert_eq!(
            run.tags.and_then(|tags| tags.get("k").cloned()).as_deref(),
            Some("v")
        );
    }
}
