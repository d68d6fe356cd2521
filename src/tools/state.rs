//! The session and heap-tag tools, served only by a stateful server.
//!
//! They form a second rmcp router ([`McpV8::state_router`]) which
//! [`McpV8::with_state`] adds to the execution tools; a stateless server never
//! lists them. Each tool is a thin adapter over [`SessionStore`], whose calls
//! run on tokio's blocking pool: every write ends with an fsync.

mod fields;
mod page;
mod params;
mod responses;

use rmcp::handler::server::wrapper::Json;
use rmcp::{tool, tool_router};

pub use self::page::SnapshotPage;
pub use self::params::{
    DeleteHeapTagsParams, HeapParams, ListSessionSnapshotsParams, QueryHeapsByTagsParams,
    SetHeapTagsParams,
};
pub use self::responses::{
    HeapTagsResponse, ListSessionSnapshotsResponse, ListSessionsResponse, QueryHeapsResponse,
    SessionSnapshot,
};
use super::arguments::Parameters;
use super::{McpV8, ToolError, descriptions};
use crate::sessions::{SessionError, SessionStore, validate_heap, validate_tags};
use crate::tools::Paging;

#[tool_router(router = state_router, vis = "pub(super)")]
impl McpV8 {
    #[tool(
        name = "list_sessions",
        title = "List sessions",
        description = descriptions::LIST_SESSIONS,
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn list_sessions(&self) -> Result<Json<ListSessionsResponse>, ToolError> {
        let sessions = self.with_sessions(SessionStore::list_sessions).await?;
        Ok(Json(ListSessionsResponse { sessions }))
    }

    #[tool(
        name = "list_session_snapshots",
        title = "List a session's executions and heaps",
        description = descriptions::LIST_SESSION_SNAPSHOTS,
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn list_session_snapshots(
        &self,
        Parameters(params): Parameters<ListSessionSnapshotsParams>,
    ) -> Result<Json<ListSessionSnapshotsResponse>, ToolError> {
        // Checked first, so bad arguments fail without touching the database.
        let page = SnapshotPage::parse(params.fields.as_deref(), params.offset, params.limit)?;
        let listing = self
            .with_sessions(move |store| page.read(store, params.session))
            .await?;
        Ok(Json(listing))
    }

    #[tool(
        name = "get_heap_tags",
        title = "Get a heap's tags",
        description = descriptions::GET_HEAP_TAGS,
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn get_heap_tags(
        &self,
        Parameters(HeapParams { heap }): Parameters<HeapParams>,
    ) -> Result<Json<HeapTagsResponse>, ToolError> {
        let target = heap.clone();
        let tags = self
            .with_sessions(move |store| store.get_tags(&target))
            .await?;
        Ok(Json(HeapTagsResponse { heap, tags }))
    }

    #[tool(
        name = "set_heap_tags",
        title = "Replace a heap's tags",
        description = descriptions::SET_HEAP_TAGS,
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn set_heap_tags(
        &self,
        Parameters(SetHeapTagsParams { heap, tags }): Parameters<SetHeapTagsParams>,
    ) -> Result<Json<HeapTagsResponse>, ToolError> {
        validate_heap(&heap).and_then(|()| validate_tags(&tags))?;
        self.executor().require_stored_heap(&heap).await?;
        let (target, replacement) = (heap.clone(), tags.clone());
        self.with_sessions(move |store| store.set_tags(&target, replacement))
            .await?;
        Ok(Json(HeapTagsResponse { heap, tags }))
    }

    #[tool(
        name = "delete_heap_tags",
        title = "Delete a heap's tags",
        description = descriptions::DELETE_HEAP_TAGS,
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn delete_heap_tags(
        &self,
        Parameters(DeleteHeapTagsParams { heap, keys }): Parameters<DeleteHeapTagsParams>,
    ) -> Result<Json<HeapTagsResponse>, ToolError> {
        let target = heap.clone();
        let remaining = self
            .with_sessions(move |store| store.delete_tags(&target, keys.as_deref()))
            .await?;
        Ok(Json(HeapTagsResponse {
            heap,
            tags: remaining,
        }))
    }

    #[tool(
        name = "query_heaps_by_tags",
        title = "Find heaps by tags",
        description = descriptions::QUERY_HEAPS_BY_TAGS,
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn query_heaps_by_tags(
        &self,
        Parameters(params): Parameters<QueryHeapsByTagsParams>,
    ) -> Result<Json<QueryHeapsResponse>, ToolError> {
        // Checked first, so a bad limit fails without touching the database.
        let paging = Paging::parse(params.offset, params.limit)?;
        let tags = params.tags;
        let found = self
            .with_sessions(move |store| store.query_by_tags(&tags))
            .await?;
        Ok(Json(QueryHeapsResponse::page(found, paging)))
    }
}

impl McpV8 {
    /// Runs `op` on the session store, off the runtime's worker threads
    /// ([`SessionStore::blocking`]).
    async fn with_sessions<T, F>(&self, op: F) -> Result<T, ToolError>
    where
        T: Send + 'static,
        F: FnOnce(&SessionStore) -> Result<T, SessionError> + Send + 'static,
    {
        // The state router is only installed together with a store, so this
        // is a wiring mistake if it ever fails.
        let store = self.sessions().cloned().ok_or_else(|| {
            ToolError::internal(
                "session and tag tools need a stateful server, and this one is stateless",
            )
        })?;
        store.blocking(op).await.map_err(ToolError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATE_TOOLS: [&str; 6] = [
        "list_sessions",
        "list_session_snapshots",
        "get_heap_tags",
        "set_heap_tags",
        "delete_heap_tags",
        "query_heaps_by_tags",
    ];

    #[test]
    fn the_state_router_holds_the_six_tools_and_nothing_else() {
        let router = McpV8::state_router();
        let mut names: Vec<String> = router
            .list_all()
            .into_iter()
            .map(|tool| tool.name.into_owned())
            .collect();
        names.sort_unstable();
        let mut expected = STATE_TOOLS.map(str::to_owned);
        expected.sort_unstable();
        assert_eq!(names, expected);
    }

    #[test]
    fn every_state_tool_declares_an_object_output_schema_and_annotations() {
        for tool in McpV8::state_router().list_all() {
            let schema = tool
                .output_schema
                .as_ref()
                .unwrap_or_else(|| panic!("{} has no outputSchema", tool.name));
            assert_eq!(
                schema.get("type"),
                Some(&serde_json::json!("object")),
                "{}",
                tool.name
            );
            let hints = tool
                .annotations
                .as_ref()
                .unwrap_or_else(|| panic!("{} has no annotations", tool.name));
            let writes = matches!(tool.name.as_ref(), "set_heap_tags" | "delete_heap_tags");
            assert_eq!(hints.read_only_hint, Some(!writes), "{}", tool.name);
            assert_eq!(hints.idempotent_hint, Some(true), "{}", tool.name);
        }
    }
}
