//! MCP tools: one function per tool, typed parameters, over the executor.
//!
//! [`McpV8`] is the MCP server handler. It owns no state of its own: every tool
//! is a thin, typed adapter over [`Executor`](crate::executor::Executor) (and,
//! on a stateful server, [`SessionStore`](crate::sessions::SessionStore)), so
//! the same executor can later be shared with other front ends (HTTP API).
//!
//! Conventions every tool follows:
//! - success returns `structuredContent` matching the tool's declared
//!   `outputSchema`, and the same JSON as text content for older clients;
//! - a failed *use* of a tool (unknown id, invalid argument, busy server) is a
//!   tool result with `isError: true` whose text is written for the model to act
//!   on, never a JSON-RPC protocol error (those would hide the message from it).

mod arguments;
mod descriptions;
mod error;
mod paging;
mod params;
mod responses;
mod server;
mod state;

pub use error::ToolError;
pub use paging::Paging;
pub use params::{
    ExecutionIdParams, GetExecutionOutputParams, ListExecutionsParams, MAX_WAIT_MS, RunJsParams,
};
pub use responses::{ListExecutionsResponse, RunJsResponse};
pub use server::{McpV8, SessionEnd, unreadable_request};
pub use state::{
    DeleteHeapTagsParams, HeapParams, HeapTagsResponse, ListSessionSnapshotsParams,
    ListSessionSnapshotsResponse, ListSessionsResponse, QueryHeapsByTagsParams, QueryHeapsResponse,
    SessionSnapshot, SetHeapTagsParams, SnapshotPage,
};
