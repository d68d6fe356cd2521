//! Tool parameters, as a model sends them.
//!
//! The field doc comments become the `description`s of the tools' input JSON
//! Schemas, which is what a model reads to decide how to call: they state units,
//! defaults, ranges and that offsets are 0-based. Each is one paragraph on
//! purpose (schemars would turn a separate first paragraph into a `title`).
//!
//! Unknown fields are rejected so that a misspelt limit (say `timeout_secs`) is
//! reported to the model instead of being silently ignored.

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use super::ToolError;
use crate::executor::output::{MAX_BYTE_LIMIT, MAX_LINE_LIMIT};
use crate::executor::{MIN_HEAP_MB, OutputQuery, RunRequest};

/// The longest `run_js` blocks waiting for a result, in milliseconds. Longer
/// waits would hold the MCP request open past what clients tolerate; polling
/// `get_execution` is the way to wait longer.
pub const MAX_WAIT_MS: u64 = 30_000;

/// Parameters of `run_js`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunJsParams {
    /// JavaScript or TypeScript source to run: a plain script or an ES module (top-level `await` and `export` are allowed, `import` of other modules is not supported yet; TypeScript types, interfaces and enums are accepted). The code's completion value, as eval gives it (the value of the last expression statement run), awaited if it is a Promise, becomes the execution's `result`. Each execution starts from a fresh global scope, unless `heap` or `session` resumes a saved one.
    pub code: String,
    /// V8 heap limit for this execution, in megabytes (MiB). If the code allocates beyond it, the execution ends `failed` with a heap-limit error while the server keeps running. Omit to use the server's default; values outside the range the server allows are rejected with a message stating that range.
    #[schemars(range(min = MIN_HEAP_MB))]
    pub heap_memory_max_mb: Option<u32>,
    /// Wall-clock time limit for this execution, in seconds (at least 1). When it is exceeded the execution is stopped and ends with status `timed_out`. Omit to use the server's default; values above the server's maximum are rejected with a message stating it.
    #[schemars(range(min = 1))]
    pub execution_timeout_secs: Option<u64>,
    /// How long to wait for the execution to finish before answering, in milliseconds, from 0 to 30000; default 0 (answer at once with status `queued` or `running`). The wait ends as soon as the execution finishes, and the answer then includes its `result` or `error`; otherwise poll `get_execution`.
    #[schemars(range(max = MAX_WAIT_MS))]
    pub wait_ms: Option<u64>,
    /// Stateful servers only: resume from this heap snapshot, the global scope an earlier execution left, named by 64 lowercase hexadecimal characters (get_execution reports it as `heap`). Omit to start fresh, or from the session's latest heap when `session` is given.
    pub heap: Option<String>,
    /// Stateful servers only: log this execution in the named session (1 to 128 characters, not only white space, no control characters), creating it on first use. With `session` but no `heap`, the run resumes the session's latest heap.
    pub session: Option<String>,
    /// Stateful servers only: tags to set on the heap snapshot this execution produces, an object of string values, e.g. {"step": "data loaded"} (same limits as set_heap_tags).
    pub tags: Option<BTreeMap<String, String>>,
}

impl RunJsParams {
    /// The validated `wait_ms`. Checked before anything is submitted, so an
    /// invalid call leaves no execution behind.
    pub fn wait(&self) -> Result<Duration, ToolError> {
        let wait_ms = self.wait_ms.unwrap_or(0);
        if wait_ms > MAX_WAIT_MS {
            return Err(ToolError::invalid_argument(
                "wait_ms",
                format!(
                    "must be between 0 and {MAX_WAIT_MS} milliseconds, got {wait_ms}; \
                     to wait longer, poll get_execution"
                ),
            ));
        }
        Ok(Duration::from_millis(wait_ms))
    }

    /// The executor request; limits are validated by the executor, which knows
    /// the server's configured ranges.
    pub fn into_request(self) -> RunRequest {
        RunRequest {
            code: self.code,
            heap_memory_max_mb: self.heap_memory_max_mb,
            execution_timeout_secs: self.execution_timeout_secs,
            heap: self.heap,
            session: self.session,
            tags: self.tags,
        }
    }
}

/// Parameters of `list_executions`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListExecutionsParams {
    /// Position of the first execution to list, 0-based, oldest first; default 0. To continue, pass the previous answer's next_offset.
    pub offset: Option<u64>,
    /// Most executions to list; default 1000, at most 10000.
    #[schemars(range(min = 1, max = 10000))]
    pub limit: Option<u64>,
}

/// Parameters of the tools that address one execution.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecutionIdParams {
    /// The execution's id, as returned by `run_js` (and listed by `list_executions`).
    pub execution_id: String,
}

/// Parameters of `get_execution_output`.
///
/// Line mode is the default; giving `byte_offset` or `byte_limit` selects byte
/// mode. Mixing the two is refused by the executor.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetExecutionOutputParams {
    /// The execution's id, as returned by `run_js` (and listed by `list_executions`).
    pub execution_id: String,
    /// Line mode: index of the first line to return, 0-based; default 0. To continue reading, pass the previous page's `next_line_offset`. Do not combine with `byte_offset`/`byte_limit`.
    pub line_offset: Option<u64>,
    /// Line mode: maximum number of lines to return; default 1000, at most 10000. Do not combine with `byte_offset`/`byte_limit`.
    #[schemars(range(min = 1, max = MAX_LINE_LIMIT))]
    pub line_limit: Option<u64>,
    /// Byte mode: offset of the first byte to return in the UTF-8 output, 0-based; default 0. To continue reading, pass the previous page's `next_byte_offset`. Giving this selects byte mode; do not combine with `line_offset`/`line_limit`.
    pub byte_offset: Option<u64>,
    /// Byte mode: maximum number of bytes to return; default 65536 (64 KiB), at most 1048576 (1 MiB). Giving this selects byte mode; do not combine with `line_offset`/`line_limit`.
    #[schemars(range(min = 1, max = MAX_BYTE_LIMIT))]
    pub byte_limit: Option<u64>,
}

impl GetExecutionOutputParams {
    /// The executor query. Defaults, maxima and the mixed-mode check are the
    /// executor's, so every front end pages output the same way.
    pub fn query(&self) -> OutputQuery {
        OutputQuery {
            line_offset: self.line_offset,
            line_limit: self.line_limit,
            byte_offset: self.byte_offset,
            byte_limit: self.byte_limit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_js(wait_ms: Option<u64>) -> RunJsParams {
        RunJsParams {
            code: "1".to_owned(),
            heap_memory_max_mb: None,
            execution_timeout_secs: None,
            wait_ms,
            heap: None,
            session: None,
            tags: None,
        }
    }

    #[test]
    fn wait_defaults_to_zero_and_accepts_the_maximum() {
        assert_eq!(run_js(None).wait().ok(), Some(Duration::ZERO));
        assert_eq!(
            run_js(Some(MAX_WAIT_MS)).wait().ok(),
            Some(Duration::from_millis(MAX_WAIT_MS))
        );
    }

    #[test]
    fn wait_above_the_maximum_names_the_field_and_the_range() {
        let error = run_js(Some(40_000))
            .wait()
            .expect_err("40000 ms is too long");
        assert!(error.message().contains("`wait_ms`"), "{error}");
        assert!(error.message().contains("30000"), "{error}");
        assert!(error.message().contains("40000"), "{error}");
    }

    fn field_description(schema: schemars::Schema, field: &str) -> String {
        schema.as_value()["properties"][field]["description"]
            .as_str()
            .unwrap_or_else(|| panic!("{field} has no description"))
            .to_owned()
    }

    /// The numbers are written out for the model; this keeps them equal to
    /// the limits the code enforces.
    #[test]
    fn descriptions_state_the_enforced_limits() {
        use crate::executor::output::{
            DEFAULT_BYTE_LIMIT, DEFAULT_LINE_LIMIT, MAX_BYTE_LIMIT, MAX_LINE_LIMIT,
        };

        let output = || schemars::schema_for!(GetExecutionOutputParams);
        let line_limit = field_description(output(), "line_limit");
        for limit in [DEFAULT_LINE_LIMIT, MAX_LINE_LIMIT] {
            assert!(line_limit.contains(&limit.to_string()), "{line_limit}");
        }
        let byte_limit = field_description(output(), "byte_limit");
        for limit in [DEFAULT_BYTE_LIMIT, MAX_BYTE_LIMIT] {
            assert!(byte_limit.contains(&limit.to_string()), "{byte_limit}");
        }
        let wait_ms = field_description(schemars::schema_for!(RunJsParams), "wait_ms");
        assert!(wait_ms.contains(&MAX_WAIT_MS.to_string()), "{wait_ms}");
    }

    /// The schemas state the bounds the server enforces, so a client that
    /// validates against them is not refused later (they said minimum 0).
    #[test]
    fn schemas_state_the_enforced_bounds() {
        let bound = |schema: schemars::Schema, field: &str, which: &str| {
            schema.as_value()["properties"][field][which].as_u64()
        };
        let run_js = || schemars::schema_for!(RunJsParams);
        let output = || schemars::schema_for!(GetExecutionOutputParams);
        assert_eq!(
            bound(run_js(), "heap_memory_max_mb", "minimum"),
            Some(u64::from(MIN_HEAP_MB))
        );
        assert_eq!(
            bound(run_js(), "execution_timeout_secs", "minimum"),
            Some(1)
        );
        assert_eq!(bound(run_js(), "wait_ms", "maximum"), Some(MAX_WAIT_MS));
        assert_eq!(bound(output(), "line_limit", "minimum"), Some(1));
        assert_eq!(
            bound(output(), "line_limit", "maximum"),
            Some(MAX_LINE_LIMIT)
        );
        assert_eq!(bound(output(), "byte_limit", "minimum"), Some(1));
        assert_eq!(
            bound(output(), "byte_limit", "maximum"),
            Some(MAX_BYTE_LIMIT)
        );
    }

    #[test]
    fn state_parameters_reach_the_request() {
        let params: RunJsParams = serde_json::from_value(serde_json::json!({
            "code": "x",
            "heap": "ab".repeat(32),
            "session": "s",
            "tags": { "k": "v" },
        }))
        .expect("valid parameters");
        let request = params.into_request();
        assert_eq!(request.heap, Some("ab".repeat(32)));
        assert_eq!(request.session.as_deref(), Some("s"));
        assert_eq!(
            request.tags,
            Some(BTreeMap::from([("k".to_owned(), "v".to_owned())]))
        );
    }

    #[test]
    fn unknown_parameters_are_rejected() {
        let parsed = serde_json::from_value::<RunJsParams>(serde_json::json!({
            "code": "1",
            "timeout_secs": 5,
        }));
        assert!(parsed.is_err());
    }
}
