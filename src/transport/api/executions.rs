//! `/api/exec` and `/api/executions/…`: running code and following executions.
//!
//! Each handler is a thin adapter over [`Executor`], with the semantics of the
//! matching MCP tool; only the shape (HTTP status codes, JSON errors) differs.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use super::ApiState;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiPath, ApiQuery, RunBody};
use super::types::{
    Created, ExecRequest, ExecResponse, ExecutionList, ListQuery, OutputParams, Page, Record,
};
use crate::executor::{CancelReason, Executor, OutputQuery};
use crate::tools::Paging;

/// How much console output `POST /api/exec` returns inline.
pub const EXEC_OUTPUT_BYTES: u64 = 64 * 1024;

/// The first [`EXEC_OUTPUT_BYTES`] of an execution's output (byte mode never
/// splits a UTF-8 character).
const EXEC_OUTPUT: OutputQuery = OutputQuery {
    line_offset: None,
    line_limit: None,
    byte_offset: Some(0),
    byte_limit: Some(EXEC_OUTPUT_BYTES),
};

/// Runs code and answers once it has finished, however long it waits on
/// the queue first: once it runs, its timeout (and the executor's kill of a
/// worker that overruns it) bounds the rest.
///
/// The execution is cancelled if the client goes away first: it never learnt
/// the id, so the execution could only take a worker from other callers.
#[utoipa::path(
    post,
    path = "/api/exec",
    tag = "executions",
    request_body(
        description = "A JSON request, or the script itself (run with the server's default limits).",
        content(
            (ExecRequest = "application/json"),
            (String = "text/plain"),
            (String = "application/javascript"),
        ),
    ),
    responses(
        (status = 200, description = "The execution ended; `status` says how (a failed script is still a 200).", body = ExecResponse),
        (status = 400, description = "Malformed body or an argument out of range; the message names the field.", body = ErrorBody),
        (status = 413, description = "The body is larger than `transport.max_body_bytes`.", body = ErrorBody),
        (status = 415, description = "Unsupported `Content-Type`.", body = ErrorBody),
        (status = 429, description = "The queue is full.", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying."))),
        (status = 503, description = "The server is shutting down.", body = ErrorBody),
        (status = 500, description = "Execution state storage failed.", body = ErrorBody),
    ),
)]
pub async fn exec(
    State(state): State<ApiState>,
    RunBody(request): RunBody,
) -> Result<Json<ExecResponse>, ApiError> {
    let executor = &state.executor;
    let execution_id = executor.submit(request)?;
    let guard = CancelOnDrop::new(executor, &execution_id);
    let record = executor.finished(&execution_id).await;
    guard.disarm();
    let record = record.map_err(|error| ApiError::after_submit(&execution_id, error))?;
    let output = executor
        .output(&execution_id, &EXEC_OUTPUT)
        .await
        .map_err(|error| ApiError::after_submit(&execution_id, error))?;
    Ok(Json(ExecResponse::new(record, output)))
}

/// Starts code and answers at once with its id (like `run_js` without `wait_ms`).
#[utoipa::path(
    post,
    path = "/api/executions",
    tag = "executions",
    request_body(
        description = "A JSON request, or the script itself (run with the server's default limits).",
        content(
            (ExecRequest = "application/json"),
            (String = "text/plain"),
            (String = "application/javascript"),
        ),
    ),
    responses(
        (status = 202, description = "Accepted; follow the execution at `Location`.", body = Created,
            headers(("Location" = String, description = "`/api/executions/{execution_id}`"))),
        (status = 400, description = "Malformed body or an argument out of range; the message names the field.", body = ErrorBody),
        (status = 413, description = "The body is larger than `transport.max_body_bytes`.", body = ErrorBody),
        (status = 415, description = "Unsupported `Content-Type`.", body = ErrorBody),
        (status = 429, description = "The queue is full.", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying."))),
        (status = 503, description = "The server is shutting down.", body = ErrorBody),
        (status = 500, description = "Execution state storage failed.", body = ErrorBody),
    ),
)]
pub async fn create_execution(
    State(state): State<ApiState>,
    RunBody(request): RunBody,
) -> Result<impl IntoResponse, ApiError> {
    let execution_id = state.executor.submit(request)?;
    let location = format!("/api/executions/{execution_id}");
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(Created { execution_id }),
    ))
}

/// A page of the retained executions, oldest first, like `list_executions`.
#[utoipa::path(
    get,
    path = "/api/executions",
    tag = "executions",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of the executions the server holds.", body = ExecutionList),
        (status = 400, description = "A limit out of range.", body = ErrorBody),
    ),
)]
pub async fn list_executions(
    State(state): State<ApiState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<ExecutionList>, ApiError> {
    let paging = Paging::parse(query.offset, query.limit).map_err(ApiError::invalid_argument)?;
    let (executions, total, next_offset) = paging.slice(state.executor.list());
    Ok(Json(ExecutionList {
        total,
        next_offset,
        executions: executions.into_iter().map(Into::into).collect(),
    }))
}

/// One execution's record: status, result or error, timings.
#[utoipa::path(
    get,
    path = "/api/executions/{id}",
    tag = "executions",
    params(("id" = String, Path, description = "The execution id.")),
    responses(
        (status = 200, description = "The execution's record.", body = Record),
        (status = 404, description = "Unknown execution id.", body = ErrorBody),
        (status = 500, description = "Execution state storage failed.", body = ErrorBody),
    ),
)]
pub async fn get_execution(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Record>, ApiError> {
    Ok(Json(state.executor.get(&id)?.into()))
}

/// A page of an execution's console output, by lines (default) or by bytes.
#[utoipa::path(
    get,
    path = "/api/executions/{id}/output",
    tag = "executions",
    params(("id" = String, Path, description = "The execution id."), OutputParams),
    responses(
        (status = 200, description = "The page, with its position in lines and bytes.", body = Page),
        (status = 400, description = "A bad or mixed pagination parameter; the message names it.", body = ErrorBody),
        (status = 404, description = "Unknown execution id.", body = ErrorBody),
        (status = 500, description = "Reading the output failed.", body = ErrorBody),
    ),
)]
pub async fn execution_output(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<OutputParams>,
) -> Result<Json<Page>, ApiError> {
    Ok(Json(
        state.executor.output(&id, &params.into()).await?.into(),
    ))
}

/// Cancels a queued or running execution and answers its final record; a
/// finished execution is answered unchanged.
#[utoipa::path(
    post,
    path = "/api/executions/{id}/cancel",
    tag = "executions",
    params(("id" = String, Path, description = "The execution id.")),
    responses(
        (status = 200, description = "The record, now final.", body = Record),
        (status = 404, description = "Unknown execution id.", body = ErrorBody),
        (status = 500, description = "Execution state storage failed.", body = ErrorBody),
    ),
)]
pub async fn cancel_execution(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Record>, ApiError> {
    Ok(Json(state.executor.cancel(&id).await?.into()))
}

/// Cancels an execution when dropped while armed: axum drops a handler's
/// future when its client disconnects, and this is how `exec` notices.
struct CancelOnDrop<'a> {
    executor: &'a Executor,
    execution_id: Option<&'a str>,
}

impl<'a> CancelOnDrop<'a> {
    fn new(executor: &'a Executor, execution_id: &'a str) -> Self {
        Self {
            executor,
            execution_id: Some(execution_id),
        }
    }

    /// The request is being answered; leave the execution alone.
    fn disarm(mut self) {
        self.execution_id = None;
    }
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        let Some(execution_id) = self.execution_id else {
            return;
        };
        // Without a runtime (the process is exiting) the executor's own
        // shutdown cancels what is in flight.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let executor = self.executor.clone();
        let execution_id = execution_id.to_owned();
        runtime.spawn(async move {
            if let Err(error) = executor
                .cancel_because(&execution_id, CancelReason::ClientGone)
                .await
            {
                tracing::debug!(execution_id, "cancelling an abandoned execution: {error}");
            }
        });
    }
}
