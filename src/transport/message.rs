//! Reading one client JSON-RPC message, and saying in words why some bytes
//! are not one: `-32700` (parse error) for bytes that are not JSON, `-32600`
//! (invalid request) for JSON that is not a message, `-32602` (invalid
//! params) for params MCP cannot take, each with the message's `id` when one
//! can be read, so that the answer reaches the request that caused it.
//!
//! Every transport that reads raw messages uses it: a `POST /mcp` body
//! (answered with HTTP 400) and a line of stdio (answered on stdout). rmcp
//! answers such input with a bare "Invalid request" and no id, or not at all,
//! which leaves a client waiting for an answer that never comes.

use rmcp::model::{
    ClientJsonRpcMessage, ClientRequest, CustomRequest, ErrorCode, JsonRpcMessage, JsonRpcRequest,
};
use serde_json::{Value, json};

use crate::tools::unreadable_request;

/// Why some bytes are not a JSON-RPC message, with the id to answer under.
#[derive(Debug)]
pub struct Problem {
    /// The message's id, or null when none can be read.
    pub id: Value,
    pub code: ErrorCode,
    pub message: String,
    /// Whether the bytes are a notification (an object with a `method` and
    /// no `id`) or a response (no `method`, a `result` or an `error`), which
    /// JSON-RPC never answers, not even with an error.
    pub unanswered: bool,
}

impl Problem {
    /// The JSON-RPC error response to send back.
    pub fn response(&self) -> Value {
        json!({
            "jsonrpc": "2.0",
            "id": self.id,
            "error": { "code": self.code.0, "message": self.message },
        })
    }
}

/// The message in `bytes`, when rmcp can read it and act on it.
pub fn read_message(bytes: &[u8]) -> Result<ClientJsonRpcMessage, Problem> {
    let unreadable = match serde_json::from_slice::<ClientJsonRpcMessage>(bytes) {
        Ok(message) => return check_initialize(message),
        Err(unreadable) => unreadable,
    };
    let value = match serde_json::from_slice::<Value>(bytes) {
        Ok(value) => value,
        Err(error) => {
            return Err(Problem {
                id: Value::Null,
                code: ErrorCode::PARSE_ERROR,
                message: format!("parse error: the message is not JSON: {error}"),
                unanswered: false,
            });
        }
    };
    let unanswered = value.as_object().is_some_and(|object| {
        let is_notification = object.contains_key("method") && !object.contains_key("id");
        is_notification || is_response(object)
    });
    let (code, message) = match params_not_by_name(&value) {
        Some(message) => (ErrorCode::INVALID_PARAMS, message),
        None => (
            ErrorCode::INVALID_REQUEST,
            format!("invalid request: {}", what_is_wrong(&value, &unreadable)),
        ),
    };
    Err(Problem {
        id: readable_id(&value),
        code,
        message,
        unanswered,
    })
}

/// MCP passes parameters by name: `params` given as anything but an object
/// (JSON-RPC also allows an array) makes a message no MCP method can take.
fn params_not_by_name(value: &Value) -> Option<String> {
    let method = value.get("method")?.as_str()?;
    let params = value.get("params")?;
    (!params.is_object() && !params.is_null()).then(|| {
        format!(
            "invalid params of {method}: params must be an object, not {}",
            kind(params)
        )
    })
}

/// An `initialize` whose params rmcp cannot read is a request of no method
/// it knows, which it refuses before any handler sees it, in plain text, for
/// lacking a session; answered here with what is wrong instead (-32602).
fn check_initialize(message: ClientJsonRpcMessage) -> Result<ClientJsonRpcMessage, Problem> {
    let JsonRpcMessage::Request(JsonRpcRequest { id, request, .. }) = &message else {
        return Ok(message);
    };
    let ClientRequest::CustomRequest(CustomRequest { method, params, .. }) = request else {
        return Ok(message);
    };
    if method != "initialize" {
        return Ok(message);
    }
    let error = unreadable_request(method, params.clone());
    if error.code != ErrorCode::INVALID_PARAMS {
        // Readable after all: rmcp's to answer.
        return Ok(message);
    }
    Err(Problem {
        id: serde_json::to_value(id).unwrap_or(Value::Null),
        code: error.code,
        message: error.message.into_owned(),
        unanswered: false,
    })
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
    // A response's id names one of the server's requests, not the client's:
    // an answer under it would be taken as the answer to the client's own
    // request of that id.
    if value.as_object().is_some_and(is_response) {
        return Value::Null;
    }
    match value.get("id") {
        Some(id @ Value::String(_)) => id.clone(),
        Some(id) if id.is_i64() || id.is_u64() => id.clone(),
        _ => Value::Null,
    }
}

/// A response: no `method`, and a `result` or an `error`.
fn is_response(object: &serde_json::Map<String, Value>) -> bool {
    !object.contains_key("method")
        && (object.contains_key("result") || object.contains_key("error"))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(body: &str) -> Problem {
        read_message(body.as_bytes()).expect_err(body)
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
            read_message(body.as_bytes()).unwrap_or_else(|problem| panic!("{body}: {problem:?}"));
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
    fn params_are_passed_by_name() {
        let problem = problem(r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":[1,2]}"#);
        assert_eq!(problem.code, ErrorCode::INVALID_PARAMS);
        assert_eq!(problem.id, json!(5));
        assert_eq!(
            problem.message,
            "invalid params of tools/call: params must be an object, not an array"
        );
        assert!(!problem.unanswered);
    }

    #[test]
    fn notifications_and_responses_are_not_answered() {
        assert!(problem(r#"{"jsonrpc":"2.0","method":"x/y","params":7}"#).unanswered);
        assert!(!problem(r#"{"jsonrpc":"2.0","id":1,"method":7}"#).unanswered);
        assert!(!problem("[]").unanswered);
        assert!(!problem("not json").unanswered);
        // A malformed response is answered by no one, and never under its
        // id, which is one of the server's.
        let response = problem(r#"{"jsonrpc":"2.0","id":1,"error":{"code":-1}}"#);
        assert!(response.unanswered);
        assert_eq!(response.id, Value::Null);
    }
}
