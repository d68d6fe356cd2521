//! The answer to a request the transport's own layers refuse (Host/Origin,
//! authentication, unknown SSE session).
//!
//! These layers sit in front of every route, `/api` included, so they answer
//! in the API's error shape, `{"error": {"code", "message"}}`: API clients
//! get JSON from every route, and MCP clients only look at the status.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// `status` with `{"error": {"code": code, "message": message}}`.
pub fn rejection(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = json!({ "error": { "code": code, "message": message.into() } });
    (status, Json(body)).into_response()
}

/// What a body over the limit is told; axum says "Failed to buffer the
/// request body: length limit exceeded", naming neither limit nor setting.
pub const BODY_TOO_LARGE: &str = "the request body is larger than the server accepts: \
    transport.max_body_bytes (--max-body-bytes, MCP_V8_MAX_BODY_BYTES)";

/// An axum extractor's refusal (of a `status` and its text) in the same
/// shape: a body over the limit stays 413 `payload_too_large`, anything
/// else is 400 `invalid_argument`.
pub fn extractor_rejection(status: StatusCode, text: String) -> Response {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        rejection(status, "payload_too_large", BODY_TOO_LARGE)
    } else {
        rejection(StatusCode::BAD_REQUEST, "invalid_argument", text)
    }
}

/// 405 in the same shape, for a route that exists with other methods (axum
/// adds the `Allow` header listing them).
pub async fn method_not_allowed(request: axum::extract::Request) -> Response {
    rejection(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{} is not allowed on {}; the Allow header lists the methods that are",
            request.method(),
            request.uri().path()
        ),
    )
}
