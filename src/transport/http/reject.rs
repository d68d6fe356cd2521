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

/// An axum extractor's refusal (of a `status` and its text) in the same
/// shape: a body over the limit stays 413 `payload_too_large`, anything
/// else is 400 `invalid_argument`.
pub fn extractor_rejection(status: StatusCode, text: String) -> Response {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        rejection(status, "payload_too_large", text)
    } else {
        rejection(StatusCode::BAD_REQUEST, "invalid_argument", text)
    }
}
