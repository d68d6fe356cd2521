//! What the session and tag tools answer. The doc comments become the
//! `description`s in the tools' output schemas.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::Serialize;
use utoipa::ToSchema;

use crate::executor::ExecutionStatus;
use crate::tools::Paging;

/// What `list_sessions` answers.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema, ToSchema)]
pub struct ListSessionsResponse {
    /// Every session's name, in byte order.
    pub sessions: Vec<String>,
}

/// What `list_session_snapshots` answers.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema, ToSchema)]
pub struct ListSessionSnapshotsResponse {
    /// The session listed.
    pub session: String,
    /// How many executions the session has in all.
    pub total: u64,
    /// The offset of the next page; null when this page reaches the session's latest execution.
    pub next_offset: Option<u64>,
    /// Its executions from the requested offset on, oldest first.
    pub entries: Vec<SessionSnapshot>,
}

/// One execution in a session. Fields left out by `fields` are absent; a selected input_heap or output_heap is null when there is no such heap.
// The heaps are doubly optional so that "not selected" (absent) and
// "selected, but none" (null) stay distinguishable for the model.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema, ToSchema)]
pub struct SessionSnapshot {
    /// The execution's id, for get_execution and get_execution_output.
    pub execution_id: String,
    /// The execution's final status: completed, failed, cancelled or timed_out.
    #[schema(value_type = String)]
    pub status: ExecutionStatus,
    /// Position in the session, 0-based and without gaps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    /// The heap snapshot the execution started from; null when it started from a fresh global scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_heap: Option<Option<String>>,
    /// The heap snapshot the execution left; pass it as run_js `heap` to continue from here. Null when none was saved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_heap: Option<Option<String>>,
    /// The source code that ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// When the execution finished (RFC 3339, UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<DateTime<Utc>>,
}

/// A heap snapshot and its tags: what `get_heap_tags`, `set_heap_tags` and
/// `delete_heap_tags` answer, and one match of `query_heaps_by_tags`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema, ToSchema)]
pub struct HeapTagsResponse {
    /// The heap snapshot's name (64 lowercase hexadecimal characters).
    pub heap: String,
    /// Its tags, key to value; empty when it has none.
    pub tags: BTreeMap<String, String>,
}

/// What `query_heaps_by_tags` answers: a page of the matches.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema, ToSchema)]
pub struct QueryHeapsResponse {
    /// How many heaps match in all.
    pub total: u64,
    /// The offset of the next page; null when this page holds the last match.
    pub next_offset: Option<u64>,
    /// The matching heaps from the requested offset on, ordered by heap.
    pub heaps: Vec<HeapTagsResponse>,
}

impl QueryHeapsResponse {
    /// `paging`'s page of the matches
    /// [`SessionStore::query_by_tags`](crate::sessions::SessionStore::query_by_tags) found.
    pub fn page(found: Vec<(String, BTreeMap<String, String>)>, paging: Paging) -> Self {
        let (page, total, next_offset) = paging.slice(found);
        Self {
            total,
            next_offset,
            heaps: page
                .into_iter()
                .map(|(heap, tags)| HeapTagsResponse { heap, tags })
                .collect(),
        }
    }
}
