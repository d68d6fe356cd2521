//! `/api/sessions` and `/api/heaps`: session logs and heap tags, for a
//! stateful server.
//!
//! Thin adapters over the same [`SessionStore`] the session and tag tools
//! use, answering the tools' own response types. A stateless server keeps no
//! sessions or tags: these routes then answer 404 saying so, as its MCP
//! server does not list the tools.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;

use super::ApiState;
use super::error::{ApiError, ErrorBody, ErrorCode};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::types::{SessionQuery, TagsBody};
use crate::sessions::{SessionError, SessionStore, Tags, validate_heap, validate_tags};
use crate::tools::{
    HeapTagsResponse, ListSessionSnapshotsResponse, ListSessionsResponse, Paging,
    QueryHeapsByTagsParams, QueryHeapsResponse, SnapshotPage,
};

/// Every session's name.
#[utoipa::path(
    get,
    path = "/api/sessions",
    tag = "state",
    responses(
        (status = 200, description = "Every session, by name.", body = ListSessionsResponse),
        (status = 404, description = "The server is stateless.", body = ErrorBody),
        (status = 500, description = "The session database failed.", body = ErrorBody),
    ),
)]
pub async fn list_sessions(
    State(state): State<ApiState>,
) -> Result<Json<ListSessionsResponse>, ApiError> {
    let sessions = with_sessions(&state, SessionStore::list_sessions).await?;
    Ok(Json(ListSessionsResponse { sessions }))
}

/// A page of a session's executions and heaps, oldest first, like
/// `list_session_snapshots`.
#[utoipa::path(
    get,
    path = "/api/sessions/{session}",
    tag = "state",
    params(("session" = String, Path, description = "The session's name."), SessionQuery),
    responses(
        (status = 200, description = "The session's entries.", body = ListSessionSnapshotsResponse),
        (status = 400, description = "An invalid session name, an unknown field or a limit out of range.", body = ErrorBody),
        (status = 404, description = "No such session, or the server is stateless.", body = ErrorBody),
        (status = 500, description = "The session database failed.", body = ErrorBody),
    ),
)]
pub async fn session_entries(
    State(state): State<ApiState>,
    ApiPath(session): ApiPath<String>,
    ApiQuery(query): ApiQuery<SessionQuery>,
) -> Result<Json<ListSessionSnapshotsResponse>, ApiError> {
    let page = SnapshotPage::parse(query.fields.as_deref(), query.offset, query.limit)
        .map_err(ApiError::invalid_argument)?;
    let listing = with_sessions(&state, move |store| page.read(store, session)).await?;
    Ok(Json(listing))
}

/// Heaps whose tags include every query parameter as a key/value pair
/// (`GET /api/heaps?project=demo`); without parameters, every tagged heap.
/// `offset` and `limit` page, as in every list, so they cannot be tag keys
/// here; tags with those keys are queried with `POST /api/heaps/query`.
#[utoipa::path(
    get,
    path = "/api/heaps",
    tag = "state",
    params(
        ("offset" = Option<u64>, Query, description = "0-based index of the first heap to return (default 0)."),
        ("limit" = Option<u64>, Query, description = "Heaps per page: 1 to 10000 (default 1000)."),
        ("tags" = Option<BTreeMap<String, String>>, Query, style = Form, explode,
            description = "Tag pairs a heap must all carry, one query parameter each (exact, case-sensitive); every parameter but offset and limit."),
    ),
    responses(
        (status = 200, description = "A page of matching heaps, ordered by heap.", body = QueryHeapsResponse),
        (status = 400, description = "A tag key given twice, an invalid tag, or an offset or limit that is not a number in range.", body = ErrorBody),
        (status = 404, description = "The server is stateless.", body = ErrorBody),
        (status = 500, description = "The session database failed.", body = ErrorBody),
    ),
)]
pub async fn query_heaps(
    State(state): State<ApiState>,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
) -> Result<Json<QueryHeapsResponse>, ApiError> {
    let mut tags = BTreeMap::new();
    let (mut offset, mut limit) = (None, None);
    for (key, value) in pairs {
        let twice = |field: &str| {
            ApiError::new(
                ErrorCode::InvalidArgument,
                format!("invalid argument `{field}`: the key {key:?} is given twice"),
            )
        };
        let paging = match key.as_str() {
            "offset" => &mut offset,
            "limit" => &mut limit,
            _ => {
                if tags.contains_key(&key) {
                    return Err(twice("tags"));
                }
                tags.insert(key, value);
                continue;
            }
        };
        if paging.is_some() {
            return Err(twice(&key));
        }
        *paging = Some(value.parse::<u64>().map_err(|_| {
            ApiError::new(
                ErrorCode::InvalidArgument,
                format!("invalid argument `{key}`: {value:?} is not a whole number"),
            )
        })?);
    }
    query_page(&state, tags, offset, limit).await
}

/// Heaps whose tags include every pair in `tags`, a page at a time, like
/// `query_heaps_by_tags`.
#[utoipa::path(
    post,
    path = "/api/heaps/query",
    tag = "state",
    request_body = QueryHeapsByTagsParams,
    responses(
        (status = 200, description = "A page of matching heaps, ordered by heap.", body = QueryHeapsResponse),
        (status = 400, description = "An invalid tag or a limit out of range.", body = ErrorBody),
        (status = 404, description = "The server is stateless.", body = ErrorBody),
        (status = 413, description = "The body is larger than `transport.max_body_bytes`.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
        (status = 500, description = "The session database failed.", body = ErrorBody),
    ),
)]
pub async fn query_heaps_paged(
    State(state): State<ApiState>,
    ApiJson(query): ApiJson<QueryHeapsByTagsParams>,
) -> Result<Json<QueryHeapsResponse>, ApiError> {
    query_page(&state, query.tags, query.offset, query.limit).await
}

async fn query_page(
    state: &ApiState,
    tags: Tags,
    offset: Option<u64>,
    limit: Option<u64>,
) -> Result<Json<QueryHeapsResponse>, ApiError> {
    let paging = Paging::parse(offset, limit).map_err(ApiError::invalid_argument)?;
    let found = with_sessions(state, move |store| store.query_by_tags(&tags)).await?;
    Ok(Json(QueryHeapsResponse::page(found, paging)))
}

/// A heap's tags (none is `{}`).
#[utoipa::path(
    get,
    path = "/api/heaps/{heap}/tags",
    tag = "state",
    params(("heap" = String, Path, description = "The heap: 64 lowercase hex characters.")),
    responses(
        (status = 200, description = "The heap's tags.", body = HeapTagsResponse),
        (status = 400, description = "Not a heap name.", body = ErrorBody),
        (status = 404, description = "The server is stateless.", body = ErrorBody),
        (status = 500, description = "The session database failed.", body = ErrorBody),
    ),
)]
pub async fn get_tags(
    State(state): State<ApiState>,
    ApiPath(heap): ApiPath<String>,
) -> Result<Json<HeapTagsResponse>, ApiError> {
    tags_after(&state, heap, |store, heap| store.get_tags(heap)).await
}

/// Replaces a heap's tags, like `set_heap_tags`; `{"tags": {}}` removes them all.
#[utoipa::path(
    put,
    path = "/api/heaps/{heap}/tags",
    tag = "state",
    params(("heap" = String, Path, description = "The heap: 64 lowercase hex characters.")),
    request_body = TagsBody,
    responses(
        (status = 200, description = "The heap's tags, as stored.", body = HeapTagsResponse),
        (status = 400, description = "Not a heap name, or invalid tags.", body = ErrorBody),
        (status = 404, description = "The server is stateless, or its store holds no heap of this name.", body = ErrorBody),
        (status = 413, description = "The body is larger than `transport.max_body_bytes`.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
        (status = 500, description = "The session database failed.", body = ErrorBody),
        (status = 503, description = "The heap store could not be reached.", body = ErrorBody),
    ),
)]
pub async fn set_tags(
    State(state): State<ApiState>,
    ApiPath(heap): ApiPath<String>,
    ApiJson(TagsBody { tags }): ApiJson<TagsBody>,
) -> Result<Json<HeapTagsResponse>, ApiError> {
    let store = session_store(&state)?;
    validate_heap(&heap).and_then(|()| validate_tags(&tags))?;
    state.executor.require_stored_heap(&heap).await?;
    let (target, replacement) = (heap.clone(), tags.clone());
    store
        .blocking(move |store| store.set_tags(&target, replacement))
        .await?;
    Ok(Json(HeapTagsResponse { heap, tags }))
}

/// Removes every tag of a heap.
#[utoipa::path(
    delete,
    path = "/api/heaps/{heap}/tags",
    tag = "state",
    params(("heap" = String, Path, description = "The heap: 64 lowercase hex characters.")),
    responses(
        (status = 200, description = "The heap, now without tags.", body = HeapTagsResponse),
        (status = 400, description = "Not a heap name.", body = ErrorBody),
        (status = 404, description = "The server is stateless.", body = ErrorBody),
        (status = 500, description = "The session database failed.", body = ErrorBody),
    ),
)]
pub async fn delete_tags(
    State(state): State<ApiState>,
    ApiPath(heap): ApiPath<String>,
) -> Result<Json<HeapTagsResponse>, ApiError> {
    tags_after(&state, heap, |store, heap| store.delete_tags(heap, None)).await
}

/// Removes one tag of a heap (a key it does not carry is fine).
#[utoipa::path(
    delete,
    path = "/api/heaps/{heap}/tags/{key}",
    tag = "state",
    params(
        ("heap" = String, Path, description = "The heap: 64 lowercase hex characters."),
        ("key" = String, Path, description = "The tag's key."),
    ),
    responses(
        (status = 200, description = "The tags that remain.", body = HeapTagsResponse),
        (status = 400, description = "Not a heap name.", body = ErrorBody),
        (status = 404, description = "The server is stateless.", body = ErrorBody),
        (status = 500, description = "The session database failed.", body = ErrorBody),
    ),
)]
pub async fn delete_tag(
    State(state): State<ApiState>,
    ApiPath((heap, key)): ApiPath<(String, String)>,
) -> Result<Json<HeapTagsResponse>, ApiError> {
    tags_after(&state, heap, move |store, heap| {
        store.delete_tags(heap, Some(std::slice::from_ref(&key)))
    })
    .await
}

/// Runs `op` on `heap` and answers the heap's tags as `op` leaves them.
async fn tags_after<F>(
    state: &ApiState,
    heap: String,
    op: F,
) -> Result<Json<HeapTagsResponse>, ApiError>
where
    F: FnOnce(&SessionStore, &str) -> Result<Tags, SessionError> + Send + 'static,
{
    let target = heap.clone();
    let tags = with_sessions(state, move |store| op(store, &target)).await?;
    Ok(Json(HeapTagsResponse { heap, tags }))
}

/// Runs `op` on the session store (on the blocking pool: writes fsync).
async fn with_sessions<T, F>(state: &ApiState, op: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&SessionStore) -> Result<T, SessionError> + Send + 'static,
{
    session_store(state)?
        .blocking(op)
        .await
        .map_err(ApiError::from)
}

/// The session store, or 404 on a stateless server.
fn session_store(state: &ApiState) -> Result<SessionStore, ApiError> {
    state.sessions.clone().ok_or_else(|| {
        ApiError::new(
            ErrorCode::NotFound,
            "this server is stateless: it keeps no sessions or heap tags",
        )
    })
}

impl From<SessionError> for ApiError {
    fn from(error: SessionError) -> Self {
        match &error {
            SessionError::NotFound(session) => Self::new(
                ErrorCode::NotFound,
                format!("unknown session: {session:?}; GET /api/sessions lists the sessions"),
            ),
            error if error.is_invalid_argument() => {
                Self::new(ErrorCode::InvalidArgument, error.to_string())
            }
            error => {
                tracing::error!(%error, "session database failed");
                Self::new(ErrorCode::Internal, error.to_string())
            }
        }
    }
}
