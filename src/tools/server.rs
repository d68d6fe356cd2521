//! [`McpV8`]: the MCP server handler and its five execution tools (the
//! session and tag tools of a stateful server are in [`super::state`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rmcp::RoleServer;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Json;
use rmcp::model::{
    CallToolRequestParams, CustomRequest, CustomResult, ErrorCode, ErrorData, Implementation,
    InitializeRequestParams, PaginatedRequestParams, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ServerHandler, tool, tool_handler, tool_router};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::arguments::Parameters;
use super::descriptions;
use super::{
    ExecutionIdParams, GetExecutionOutputParams, ListExecutionsParams, ListExecutionsResponse,
    Paging, RunJsParams, RunJsResponse, ToolError,
};
use crate::executor::{CancelReason, ExecutionRecord, Executor, OutputPage};
use crate::sessions::SessionStore;

/// The name the server announces at MCP initialization.
const SERVER_NAME: &str = "mcp-v8";

/// Cancelled when the MCP session a request arrived in ends (deleted by its
/// client, idle too long, or ended to make room). A transport that knows
/// when its sessions end puts one in each request's extensions, so that a
/// `run_js` waiting on its execution stops it at once: rmcp cancels the
/// calls of an ended session only after letting them run on for seconds.
#[derive(Debug, Clone)]
pub struct SessionEnd(pub CancellationToken);

/// The MCP server: the five execution tools over one [`Executor`], plus the
/// session and tag tools over a [`SessionStore`] when stateful.
///
/// Cheap to clone (the executor and the router are shared handles), so a
/// transport may hand a clone to each connection; all clones see the same
/// executions.
#[derive(Clone)]
pub struct McpV8 {
    executor: Executor,
    /// The session store of a stateful server; `None` when stateless.
    sessions: Option<SessionStore>,
    tool_router: ToolRouter<Self>,
    /// Tool calls not yet answered, across all clones.
    calls: Arc<CallsInFlight>,
}

/// A count of the tool calls in progress, for a shutdown to wait on.
#[derive(Debug, Default)]
struct CallsInFlight {
    count: AtomicUsize,
    none_left: tokio::sync::Notify,
}

/// One call in progress; counted out when dropped.
struct CallGuard(Arc<CallsInFlight>);

impl Drop for CallGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.none_left.notify_waiters();
        }
    }
}

impl std::fmt::Debug for McpV8 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpV8")
            .field("tools", &self.tool_router)
            .field("stateful", &self.sessions.is_some())
            .finish_non_exhaustive()
    }
}

#[tool_router]
impl McpV8 {
    /// A stateless server: the five execution tools.
    pub fn new(executor: Executor) -> Self {
        Self {
            executor,
            sessions: None,
            tool_router: Self::tool_router(),
            calls: Arc::default(),
        }
    }

    /// A stateful server: the execution tools plus the session and heap-tag
    /// tools over `sessions` (the same store the executor logs sessions to).
    pub fn with_state(executor: Executor, sessions: SessionStore) -> Self {
        Self {
            executor,
            sessions: Some(sessions),
            tool_router: Self::tool_router() + Self::state_router(),
            calls: Arc::default(),
        }
    }

    /// Resolves once no tool call is in progress (in any clone): a shutdown
    /// waits for the calls its drain has just answered to return.
    pub async fn calls_finished(&self) {
        crate::in_flight::until_zero(&self.calls.count, &self.calls.none_left).await;
    }

    pub(super) fn executor(&self) -> &Executor {
        &self.executor
    }

    /// The session store, when the server is stateful.
    pub(super) fn sessions(&self) -> Option<&SessionStore> {
        self.sessions.as_ref()
    }

    #[tool(
        name = "run_js",
        title = "Run JavaScript/TypeScript",
        description = descriptions::RUN_JS,
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false)
    )]
    async fn run_js(
        &self,
        Parameters(params): Parameters<RunJsParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<Json<RunJsResponse>, ToolError> {
        let wait = params.wait()?;
        let session_end = context.extensions.get::<SessionEnd>().cloned();
        let execution_id = self.executor.submit(params.into_request())?;
        let record = if wait.is_zero() {
            self.executor.get(&execution_id)
        } else {
            tokio::select! {
                record = self.executor.wait(&execution_id, wait) => record,
                // The client cancelled this call, or its session ended: the
                // answer carrying the execution id will never be read, so
                // nobody could follow or cancel the execution. Stop it, as
                // /api/exec does when its client disconnects.
                () = context.ct.cancelled() => self
                    .executor
                    .cancel_because(&execution_id, CancelReason::CallCancelled)
                    .await,
                () = ended(session_end.as_ref()) => self
                    .executor
                    .cancel_because(&execution_id, CancelReason::CallCancelled)
                    .await,
            }
        }
        .map_err(|error| ToolError::after_submit(&execution_id, error))?;
        Ok(Json(record.into()))
    }

    #[tool(
        name = "get_execution",
        title = "Get execution status and result",
        description = descriptions::GET_EXECUTION,
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn get_execution(
        &self,
        Parameters(params): Parameters<ExecutionIdParams>,
    ) -> Result<Json<ExecutionRecord>, ToolError> {
        Ok(Json(self.executor.get(&params.execution_id)?))
    }

    #[tool(
        name = "get_execution_output",
        title = "Read execution console output",
        description = descriptions::GET_EXECUTION_OUTPUT,
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn get_execution_output(
        &self,
        Parameters(params): Parameters<GetExecutionOutputParams>,
    ) -> Result<Json<OutputPage>, ToolError> {
        let page = self
            .executor
            .output(&params.execution_id, &params.query())
            .await?;
        Ok(Json(page))
    }

    #[tool(
        name = "cancel_execution",
        title = "Cancel an execution",
        description = descriptions::CANCEL_EXECUTION,
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn cancel_execution(
        &self,
        Parameters(params): Parameters<ExecutionIdParams>,
    ) -> Result<Json<ExecutionRecord>, ToolError> {
        Ok(Json(self.executor.cancel(&params.execution_id).await?))
    }

    #[tool(
        name = "list_executions",
        title = "List executions",
        description = descriptions::LIST_EXECUTIONS,
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn list_executions(
        &self,
        Parameters(params): Parameters<ListExecutionsParams>,
    ) -> Result<Json<ListExecutionsResponse>, ToolError> {
        let paging = Paging::parse(params.offset, params.limit)?;
        let (executions, total, next_offset) = paging.slice(self.executor.list());
        Ok(Json(ListExecutionsResponse {
            total,
            next_offset,
            executions,
        }))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for McpV8 {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(SERVER_NAME, env!("CARGO_PKG_VERSION")))
            .with_instructions(descriptions::instructions(self.sessions.is_some()))
    }

    /// Every tool is on the one page this answers, so no cursor is ever
    /// handed out; one sent anyway is refused (MCP asks -32602 for an invalid
    /// cursor) instead of being answered with the same page again, which a
    /// client paging on would read as more tools. Otherwise what rmcp's
    /// `tool_handler` would answer, cache hints included.
    async fn list_tools(
        &self,
        request: Option<rmcp::model::PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ListToolsResult, ErrorData> {
        if let Some(cursor) = request.and_then(|request| request.cursor) {
            return Err(ErrorData::invalid_params(
                format!(
                    "invalid cursor {cursor:?}: this server lists all its tools on one page \
                     and hands out no cursors"
                ),
                None,
            ));
        }
        let cache_hints = context
            .protocol_version()
            .is_some_and(|version| version >= rmcp::model::ProtocolVersion::V_2026_07_28);
        Ok(rmcp::model::ListToolsResult {
            result_type: Some(rmcp::model::ResultType::COMPLETE),
            tools: self.tool_router.list_all(),
            meta: None,
            next_cursor: None,
            ttl_ms: cache_hints.then_some(0),
            cache_scope: cache_hints.then_some(rmcp::model::CacheScope::Public),
        })
    }

    /// rmcp's router answers an unknown tool with a bare "tool not found";
    /// this one names the tool and the tools there are.
    async fn call_tool(
        &self,
        request: rmcp::model::CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::CallToolResponse, ErrorData> {
        self.calls.count.fetch_add(1, Ordering::SeqCst);
        let _call = CallGuard(self.calls.clone());
        if !self.tool_router.has_route(&request.name) {
            let mut known: Vec<_> = self
                .tool_router
                .list_all()
                .into_iter()
                .map(|tool| tool.name.into_owned())
                .collect();
            known.sort();
            return Err(ErrorData::invalid_params(
                format!(
                    "unknown tool {:?}; this server's tools are {}",
                    request.name,
                    known.join(", ")
                ),
                None,
            ));
        }
        let call = rmcp::handler::server::tool::ToolCallContext::new(self, request, context);
        self.tool_router.call(call).await
    }

    /// rmcp hands over as a custom request whatever it could not read as one
    /// of MCP's requests: for a method this server serves, that means the
    /// params were missing or malformed, and the client is told so (-32602)
    /// rather than that the method does not exist.
    fn on_custom_request(
        &self,
        request: CustomRequest,
        _context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<CustomResult, ErrorData>> + Send + '_ {
        std::future::ready(Err(unreadable_request(&request.method, request.params)))
    }
}

/// The error for a request rmcp could not read: invalid params of a method we
/// serve, with serde's words for what is wrong; otherwise an unknown method.
/// (Also used by the HTTP transport for an `initialize` it must answer
/// itself, before any session exists.)
pub fn unreadable_request(method: &str, params: Option<Value>) -> ErrorData {
    let problem = match method {
        "tools/call" => params_problem::<CallToolRequestParams>(params),
        "tools/list" => params_problem::<PaginatedRequestParams>(params),
        "initialize" => params_problem::<InitializeRequestParams>(params),
        _ => None,
    };
    match problem {
        Some(problem) => {
            ErrorData::invalid_params(format!("invalid params of {method}: {problem}"), None)
        }
        None => ErrorData::new(
            ErrorCode::METHOD_NOT_FOUND,
            format!("method not found: {method}"),
            None,
        ),
    }
}

/// What keeps `params` from being a `P`, if anything.
fn params_problem<P: DeserializeOwned>(params: Option<Value>) -> Option<String> {
    match params {
        None | Some(Value::Null) => Some("params are missing".to_owned()),
        Some(params) => serde_json::from_value::<P>(params)
            .err()
            .map(|error| error.to_string()),
    }
}

/// Resolves when the session ends; never, without a way to tell.
async fn ended(session_end: Option<&SessionEnd>) {
    match session_end {
        Some(SessionEnd(token)) => token.cancelled().await,
        None => std::future::pending().await,
    }
}
