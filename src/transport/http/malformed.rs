//! A `POST /mcp` whose body is not one JSON-RPC message is answered here, the
//! way JSON-RPC and the MCP spec ask: HTTP 400 with a JSON-RPC error object
//! that says what is wrong, under the message's `id` when one can be read
//! (see [`crate::transport::message`]). A body over
//! `transport.max_body_bytes` gets 413 in the same shape.
//!
//! rmcp's service answers all of these with 415 Unsupported Media Type and a
//! line of plain text: the status for a wrong `Content-Type`, which tells a
//! client to fix the wrong thing. Requests without a JSON `Content-Type`
//! still go to rmcp, whose 415 is right for them.
//!
//! The body is read once here and handed on as bytes; a valid message is
//! parsed twice, once here and once by rmcp, which costs little next to
//! running the code it carries.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::model::ErrorCode;
use serde_json::Value;

use crate::transport::message::{Problem, read_message};

/// Passes a POST on to rmcp only when its body is one JSON-RPC message.
pub async fn refuse_malformed_posts(
    State(max_body_bytes): State<usize>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() != Method::POST || !declares_json(request.headers()) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = match Bytes::from_request(Request::from_parts(parts.clone(), body), &()).await {
        Ok(bytes) => bytes,
        Err(refused) if refused.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return refusal(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::INVALID_REQUEST,
                format!(
                    "the request body is larger than {max_body_bytes} bytes \
                     (transport.max_body_bytes)"
                ),
            );
        }
        Err(refused) => {
            return refusal(
                StatusCode::BAD_REQUEST,
                ErrorCode::INVALID_REQUEST,
                format!(
                    "the request body could not be read: {}",
                    refused.body_text()
                ),
            );
        }
    };
    if let Err(problem) = read_message(&bytes) {
        return (StatusCode::BAD_REQUEST, Json(problem.response())).into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn declares_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// `status` with a JSON-RPC error response, under no id, as the body.
fn refusal(status: StatusCode, code: ErrorCode, message: String) -> Response {
    let problem = Problem {
        id: Value::Null,
        code,
        message,
        unanswered: false,
    };
    (status, Json(problem.response())).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types_are_recognised() {
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, value.parse().expect("header"));
            declares_json(&headers)
        };
        assert!(with("application/json"));
        assert!(with("Application/JSON; charset=utf-8"));
        assert!(!with("text/plain"));
        assert!(!declares_json(&HeaderMap::new()));
    }
}
