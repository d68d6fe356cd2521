//! CORS for the origins `transport.allowed_origins` allows, so that a web
//! page of such an origin (the MCP Inspector connecting directly, a web UI
//! calling `/api`) can read the answers and the `Mcp-Session-Id` header.
//!
//! The guard has already refused any other origin with 403; this layer only
//! adds the headers a browser needs, and answers preflight (`OPTIONS`)
//! requests itself, before authentication: browsers send them without the
//! `Authorization` header the real request will carry.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderName, Method, header};
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer, ExposeHeaders};

use super::guard::Guard;

/// How long a browser may reuse a preflight answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// The layer, allowing exactly the origins `guard` allows.
pub fn layer(guard: Arc<Guard>) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin, _| {
            guard.origin_allowed(origin)
        }))
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        // Whatever the page asks for: the origin is already vetted, and MCP
        // adds headers of its own from version to version.
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers(ExposeHeaders::list([
            HeaderName::from_static("mcp-session-id"),
            HeaderName::from_static("mcp-protocol-version"),
            header::WWW_AUTHENTICATE,
            header::RETRY_AFTER,
            header::LOCATION,
        ]))
        .max_age(PREFLIGHT_MAX_AGE)
}
