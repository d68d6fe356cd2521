//! A `POST /mcp` whose body is not one JSON-RPC message is answered here, the
//! way JSON-RPC and the MCP spec ask: HTTP 400 with a JSON-RPC error object,
//! `-32700` (parse error) for bytes that are not JSON, `-32600` (invalid
//! request) for JSON that is not a message, and the message's `id` when one
//! can be read. A body over `transport.max_body_bytes` gets 413 in the same
//! shape.
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
use rmcp::model::{
    ClientJsonRpcMessage, ClientRequest, CustomRequest, ErrorCode, JsonRpcMessage, JsonRpcRequest,
};
use serde_json::{Value, json};

use crate::tools::unreadable_request;

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
                Value::Null,
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
                Value::Null,
                ErrorCode::INVALID_REQUEST,
                format!(
                    "the request body could not be read: {}",
                    refused.body_text()
                ),
            );
        }
    };
    if let Err(problem) = check(&bytes) {
        return refusal(
            StatusCode::BAD_REQUEST,
            problem.id,
            problem.code,
            problem.message,
        );
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Why a body is not a JSON-RPC message, with the id to answer under.
#[derive(Debug)]
struct Problem {
    id: Value,
    code: ErrorCode,
    message: String,
}

/// `Ok` when `body` is one message rmcp can read, and act on.
fn check(body: &[u8]) -> Result<(), Problem> {
    let unreadable = match serde_json::from_slice::<ClientJsonRpcMessage>(body) {
        Ok(message) => return check_initialize(message),
        Err(unreadable) => unreadable,
    };
    let value = match serde_json::from_slice::<Value>(body) {
        Ok(value) => value,
        Err(error) => {
            return Err(Problem {
                id: Value::Null,
                code: ErrorCode::PARSE_ERROR,
                message: format!("parse error: the body is not JSON: {error}"),
            });
        }
    };
    Err(Problem {
        id: readable_id(&value),
        code: ErrorCode::INVALID_REQUEST,
        message: format!("invalid request: {}", what_is_wrong(&value, &unreadable)),
    })
}

/// An `initialize` whose params rmcp cannot read is a request of no method
/// it knows, which it refuses before any handler sees it, in plain text, for
/// lacking a session; answered here with what is wrong instead (-32602).
fn check_initialize(message: ClientJsonRpcMessage) -> Result<(), Problem> {
    let JsonRpcMessage::Request(JsonRpcRequest { id, request, .. }) = message else {
        return Ok(());
    };
    match request {
        ClientRequest::CustomRequest(CustomRequest { method, params, .. })
            if method == "initialize" =>
        {
            let error = unreadable_request(&method, params);
            if error.code != ErrorCode::INVALID_PARAMS {
                // Readable after all: rmcp's to answer.
                return Ok(());
            }
            Err(Problem {
                id: serde_json::to_value(&id).unwrap_or(Value::Null),
                code: error.code,
                message: error.message.into_owned(),
            })
        }
        _ => Ok(()),
    }
}

/// The first rule of a JSON-RPC 2.0 message that `value` breaks, in words;
/// serde's own verdict when it breaks none of those checked here.
fn what_is_wrong(value: &Value, unreadable: &serde_json::Error) -> String {
    let Some(object) = value.as_object() else {
        return if value.is_array() {
            "JSON-RPC batches are not supported (MCP removed them in 2025-06-18); \
             send one message per request"
                .to_owned()
        } else {
            format!("a JSON-RPC message is a JSON object, not {}", kind(value))
        };
    };
    if object.get("jsonrpc") != Some(&json!("2.0")) {
        return r#"a JSON-RPC 2.0 message has "jsonrpc": "2.0""#.to_owned();
    }
    if let Some(id) = object.get("id")
        && !(id.is_string() || id.is_i64() || id.is_u64())
    {
        return format!(r#""id" must be a string or an integer, not {}"#, kind(id));
    }
    match object.get("method") {
        Some(Value::String(_)) => format!("{unreadable}"),
        Some(other) => format!(r#""method" must be a string, not {}"#, kind(other)),
        None if object.contains_key("result") || object.contains_key("error") => {
            format!("a response must answer a request of the server by its id: {unreadable}")
        }
        None => r#"a request or notification has a "method""#.to_owned(),
    }
}

/// The message's id, when it has one a client can match: the answer then
/// goes to the request that caused it.
fn readable_id(value: &Value) -> Value {
    match value.get("id") {
        Some(id @ Value::String(_)) => id.clone(),
        Some(id) if id.is_i64() || id.is_u64() => id.clone(),
        _ => Value::Null,
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn declares_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// `status` with a JSON-RPC error response as the body.
fn refusal(status: StatusCode, id: Value, code: ErrorCode, message: String) -> Response {
    let body = json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": { "code": code.0, "message": message },
    });
    (status, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(body: &str) -> Problem {
        check(body.as_bytes()).expect_err(body)
    }

    #[test]
    fn messages_pass() {
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":"a","method":"tools/list","params":{}}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            // Well-formed, so rmcp answers it: -32601 from the handler.
            r#"{"jsonrpc":"2.0","id":1,"method":"no/such"}"#,
        ] {
            check(body.as_bytes()).unwrap_or_else(|problem| panic!("{body}: {problem:?}"));
        }
    }

    #[test]
    fn bytes_that_are_not_json_are_a_parse_error() {
        for body in ["{not json", "", "{\"jsonrpc\":\"2.0\""] {
            let problem = problem(body);
            assert_eq!(problem.code, ErrorCode::PARSE_ERROR, "{body}");
            assert_eq!(problem.id, Value::Null);
            assert!(problem.message.contains("not JSON"), "{}", problem.message);
        }
    }

    #[test]
    fn json_that_is_not_a_message_says_why() {
        let cases = [
            (r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#, "batches"),
            (r#""ping""#, "not a string"),
            (r#"{"id":1,"method":"ping"}"#, r#""jsonrpc": "2.0""#),
            (
                r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#,
                r#""jsonrpc": "2.0""#,
            ),
            (
                r#"{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}"#,
                "not an object",
            ),
            (
                r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#,
                "not a number",
            ),
            (r#"{"jsonrpc":"2.0","id":1,"method":7}"#, "not a number"),
            (r#"{"jsonrpc":"2.0","id":1}"#, r#"has a "method""#),
        ];
        for (body, expected) in cases {
            let problem = problem(body);
            assert_eq!(problem.code, ErrorCode::INVALID_REQUEST, "{body}");
            assert!(
                problem.message.contains(expected),
                "{body}: {}",
                problem.message
            );
        }
    }

    #[test]
    fn an_initialize_with_unreadable_params_says_what_is_wrong() {
        let problem = problem(
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{}}}"#,
        );
        assert_eq!(problem.code, ErrorCode::INVALID_PARAMS);
        assert_eq!(problem.id, json!(1));
        assert!(
            problem.message.contains("missing field `clientInfo`"),
            "{}",
            problem.message
        );
    }

    #[test]
    fn a_readable_id_is_answered_under() {
        assert_eq!(
            problem(r#"{"jsonrpc":"1.0","id":7,"method":"x"}"#).id,
            json!(7)
        );
        assert_eq!(
            problem(r#"{"jsonrpc":"1.0","id":"q","method":"x"}"#).id,
            json!("q")
        );
        assert_eq!(
            problem(r#"{"jsonrpc":"2.0","id":[1],"method":"x"}"#).id,
            Value::Null
        );
    }

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
