//! Streamable HTTP (`/mcp`): rmcp's server transport as a tower service.
//!
//! rmcp handles the protocol: POST with a JSON or SSE answer, the GET stream
//! for server-initiated messages, DELETE to end a session, `Mcp-Session-Id`
//! and `MCP-Protocol-Version`. Clients that `initialize` (2025-06-18,
//! 2025-11-25 and earlier) get a stateful session; 2026-07-28 requests carry
//! their protocol version themselves and are served without one.
//!
//! A session that sees no request for `session_idle`, and has none in
//! flight, is ended by [`BoundedSessions`] (rmcp's own timeout, 5 minutes,
//! is shorter than an agent's pause for thought, and runs out during a long
//! tool call); the client's next request gets 404 and it initializes again,
//! as the spec asks. So does the session idle longest when `max_sessions`
//! are open and a new one starts.
//!
//! A POST whose body is not one JSON-RPC message never reaches rmcp: it is
//! answered with 400 and a JSON-RPC error by [`malformed`].

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use rmcp::transport::common::http_header::HEADER_SESSION_ID;
use rmcp::transport::streamable_http_server::SessionManager;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use super::bounded_sessions::BoundedSessions;
use super::malformed;

use crate::tools::McpV8;

/// The endpoint's path.
pub const PATH: &str = "/mcp";

/// The `/mcp` route. Cancelling `sessions` ends every session and open
/// stream, which is how shutdown releases long-lived GET streams.
pub fn routes(
    server: McpV8,
    keep_alive: Duration,
    session_idle: Duration,
    max_sessions: usize,
    max_body_bytes: usize,
    sessions: CancellationToken,
) -> Router {
    let config = StreamableHttpServerConfig::default()
        .with_sse_keep_alive(Some(keep_alive))
        .with_cancellation_token(sessions)
        .with_max_request_body_bytes(max_body_bytes)
        // Host and Origin are checked for every route in one place (the
        // guard), with the operator's lists.
        .disable_allowed_hosts()
        .disable_allowed_origins();
    let manager = Arc::new(BoundedSessions::new(
        without_idle_timeout(),
        max_sessions,
        session_idle,
    ));
    let service =
        StreamableHttpService::new(move || Ok(server.clone()), Arc::clone(&manager), config);
    Router::new()
        .route_service(PATH, service)
        .layer(middleware::from_fn_with_state(
            max_body_bytes,
            malformed::refuse_malformed_posts,
        ))
        .layer(middleware::from_fn_with_state(
            manager,
            unknown_deletes_are_404,
        ))
}

/// A DELETE of a session that does not exist (unknown, ended or deleted
/// already) gets 404, as every other request naming it does; rmcp answers
/// 202 whatever the id.
async fn unknown_deletes_are_404(
    State(manager): State<Arc<BoundedSessions>>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() == Method::DELETE
        && let Some(id) = request
            .headers()
            .get(HEADER_SESSION_ID)
            .and_then(|value| value.to_str().ok())
        && !manager.has_session(&id.into()).await.unwrap_or(true)
    {
        return (StatusCode::NOT_FOUND, "Not Found: Session not found").into_response();
    }
    next.run(request).await
}

/// rmcp's session manager, without its idle timeout: it counts from the
/// last message, so a session timed out in the middle of a long tool call.
/// [`BoundedSessions`] ends idle sessions instead.
fn without_idle_timeout() -> LocalSessionManager {
    let mut manager = LocalSessionManager::default();
    manager.session_config.keep_alive = None;
    manager
}
