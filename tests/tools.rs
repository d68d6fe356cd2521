//! The MCP surface: tool listing, server info, and tool-use errors.

mod common;

use std::collections::BTreeSet;

use common::Server;
use rmcp::ServiceError;
use rmcp::model::{ClientRequest, CustomRequest, ErrorCode, PaginatedRequestParams};
use serde_json::{Value, json};

const TOOLS: [&str; 5] = [
    "run_js",
    "get_execution",
    "get_execution_output",
    "cancel_execution",
    "list_executions",
];

/// A stateful server adds the session and tag tools (see `tests/sessions.rs`).
#[tokio::test]
async fn lists_exactly_the_five_tools_with_output_schemas() {
    let server = Server::start_with(&["--stateless"]).await;
    let tools = server.client().list_all_tools().await.expect("tools/list");

    let names: BTreeSet<&str> = tools.iter().map(|tool| tool.name.as_ref()).collect();
    assert_eq!(names, BTreeSet::from(TOOLS));

    for tool in &tools {
        let description = tool.description.as_deref().unwrap_or_default();
        assert!(
            description.len() > 80,
            "{} needs a real description",
            tool.name
        );
        let schema = tool
            .output_schema
            .as_ref()
            .unwrap_or_else(|| panic!("{} has no outputSchema", tool.name));
        assert_eq!(schema.get("type"), Some(&json!("object")), "{}", tool.name);
        assert!(
            schema.get("properties").is_some(),
            "{}: {schema:?}",
            tool.name
        );
    }
}

#[tokio::test]
async fn annotations_mark_the_getters_read_only() {
    let server = Server::start().await;
    let tools = server.client().list_all_tools().await.expect("tools/list");
    let annotations = |name: &str| {
        tools
            .iter()
            .find(|tool| tool.name == name)
            .and_then(|tool| tool.annotations.clone())
            .unwrap_or_else(|| panic!("{name} has no annotations"))
    };

    for getter in ["get_execution", "get_execution_output", "list_executions"] {
        let hints = annotations(getter);
        assert_eq!(hints.read_only_hint, Some(true), "{getter}");
        assert_eq!(hints.idempotent_hint, Some(true), "{getter}");
    }

    assert_eq!(annotations("run_js").read_only_hint, Some(false));

    let cancel = annotations("cancel_execution");
    assert_eq!(cancel.read_only_hint, Some(false));
    assert_eq!(cancel.destructive_hint, Some(false));
    assert_eq!(cancel.idempotent_hint, Some(true));
}

#[tokio::test]
async fn run_js_input_schema_requires_only_code() {
    let server = Server::start().await;
    let tools = server.client().list_all_tools().await.expect("tools/list");
    let run_js = tools
        .iter()
        .find(|tool| tool.name == "run_js")
        .expect("run_js is listed");

    let properties = run_js.input_schema["properties"]
        .as_object()
        .expect("run_js input schema has properties");
    let names: BTreeSet<&str> = properties.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "code",
            "heap_memory_max_mb",
            "execution_timeout_secs",
            "wait_ms",
            "heap",
            "session",
            "tags",
        ])
    );
    assert_eq!(run_js.input_schema.get("required"), Some(&json!(["code"])));
}

#[tokio::test]
async fn server_announces_its_name_version_and_instructions() {
    let server = Server::start().await;
    let info = server.client().peer_info().expect("initialize result");

    let implementation = info.server_info.as_ref().expect("server_info");
    assert_eq!(implementation.name, "mcp-v8");
    assert_eq!(implementation.version, env!("CARGO_PKG_VERSION"));
    assert!(info.capabilities.tools.is_some());

    let instructions = info.instructions.as_deref().expect("instructions");
    for tool in ["run_js", "get_execution", "get_execution_output"] {
        assert!(instructions.contains(tool), "instructions omit {tool}");
    }
}

#[tokio::test]
async fn unknown_execution_id_is_a_tool_error() {
    let server = Server::start().await;
    let id = json!({ "execution_id": "no-such-execution" });

    for tool in ["get_execution", "get_execution_output", "cancel_execution"] {
        let message = server.call_err(tool, id.clone()).await;
        assert!(
            message.contains("unknown execution id"),
            "{tool}: {message}"
        );
        assert!(message.contains("no-such-execution"), "{tool}: {message}");
    }
}

#[tokio::test]
async fn invalid_limits_are_tool_errors_naming_the_argument() {
    let server = Server::start().await;

    let message = server
        .call_err("run_js", json!({ "code": "1", "heap_memory_max_mb": 1 }))
        .await;
    assert!(message.contains("heap_memory_max_mb"), "{message}");

    let message = server
        .call_err(
            "run_js",
            json!({ "code": "1", "execution_timeout_secs": 0 }),
        )
        .await;
    assert!(message.contains("execution_timeout_secs"), "{message}");

    let message = server
        .call_err("run_js", json!({ "code": "1", "wait_ms": 40_000 }))
        .await;
    assert!(message.contains("wait_ms"), "{message}");
    assert!(message.contains("30000"), "{message}");

    // A refused call leaves nothing behind.
    assert_eq!(server.list().await, Vec::<serde_json::Value>::new());
}

#[tokio::test]
async fn misspelt_argument_is_a_tool_error() {
    let server = Server::start().await;
    let message = server
        .call_err("run_js", json!({ "code": "1", "timeout_secs": 5 }))
        .await;
    assert!(message.contains("timeout_secs"), "{message}");
}

/// An argument of the wrong type is a tool error naming it, so the model can
/// correct its call (rmcp said only what type was expected).
#[tokio::test]
async fn an_argument_of_the_wrong_type_is_named() {
    let server = Server::start_with(&["--stateless"]).await;
    let message = server
        .call_err(
            "run_js",
            json!({ "code": "1", "heap_memory_max_mb": "big" }),
        )
        .await;
    assert!(
        message.contains("invalid argument `heap_memory_max_mb`: invalid type: string \"big\""),
        "{message}"
    );
}

/// Over stdio too: `tools/call` without its params is -32602 with what is
/// missing, not -32601 (method not found).
#[tokio::test]
async fn tools_call_without_params_is_invalid_params() {
    let server = Server::start_with(&["--stateless"]).await;
    let request = ClientRequest::CustomRequest(CustomRequest::new("tools/call", None));
    let error = invalid_params(
        server.client().send_request(request).await,
        "tools/call without params must fail",
    );
    // rmcp's client sends absent params as `{}`: the name is what is missing.
    assert!(
        error.message.contains("invalid params of tools/call") && error.message.contains("name"),
        "{error:?}"
    );
    assert_eq!(server.eval("1 + 1").await, "2", "the session goes on");
}

/// The JSON-RPC error `-32602` a request must have failed with; `what`
/// names the request for the failure message.
fn invalid_params<T: std::fmt::Debug>(
    answer: Result<T, ServiceError>,
    what: &str,
) -> rmcp::ErrorData {
    let error = answer.expect_err(what);
    let ServiceError::McpError(error) = error else {
        panic!("{what}: expected a JSON-RPC error, got {error:?}");
    };
    assert_eq!(error.code, ErrorCode::INVALID_PARAMS, "{what}: {error:?}");
    error
}

/// tools/list answers every tool on one page and hands out no cursor, so a
/// cursor sent anyway is invalid params, not the same page again.
#[tokio::test]
async fn tools_list_refuses_a_cursor_it_never_gave() {
    let server = Server::start_with(&["--stateless"]).await;
    let page = server.client().list_tools(None).await.expect("tools/list");
    assert_eq!(page.next_cursor, None);
    assert!(!page.tools.is_empty());
    let params = PaginatedRequestParams::default().with_cursor(Some("page-2".to_owned()));
    let error = invalid_params(
        server.client().list_tools(Some(params)).await,
        "a cursor never given out",
    );
    assert!(
        error.message.contains("invalid cursor \"page-2\""),
        "{error:?}"
    );
    assert_eq!(server.eval("1 + 1").await, "2", "the session goes on");
}

/// An unknown tool is named, with the tools there are (rmcp said only
/// "tool not found").
#[tokio::test]
async fn an_unknown_tool_is_named_with_the_tools_there_are() {
    let server = Server::start_with(&["--stateless"]).await;
    let error = invalid_params(
        server
            .client()
            .call_tool(rmcp::model::CallToolRequestParams::new("run_python"))
            .await,
        "no such tool",
    );
    assert!(
        error.message.contains("unknown tool \"run_python\"")
            && error.message.contains("list_executions, run_js"),
        "{error:?}"
    );
}

#[tokio::test]
async fn run_js_without_wait_answers_in_flight_without_result() {
    let server = Server::start().await;
    let response = server
        .call(
            "run_js",
            json!({ "code": "while (true) {}", "execution_timeout_secs": 30 }),
        )
        .await;

    let status = response["status"].as_str().expect("status");
    assert!(matches!(status, "queued" | "running"), "{response}");
    assert!(response.get("result").is_none(), "{response}");
    assert!(response.get("error").is_none(), "{response}");

    let id = common::execution_id(&response);
    assert_eq!(server.cancel(&id).await["status"], "cancelled");
}

#[tokio::test]
async fn run_js_with_wait_includes_the_result_and_lists_the_execution() {
    let server = Server::start().await;
    let response = server
        .call(
            "run_js",
            json!({ "code": "6 * 7", "wait_ms": common::RUN_WAIT_MS }),
        )
        .await;
    assert_eq!(response["status"], "completed", "{response}");
    assert_eq!(response["result"], "42", "{response}");

    let id = common::execution_id(&response);
    let record = server.get(&id).await;
    assert_eq!(record["execution_id"], id.as_str());
    assert_eq!(record["result"], "42");
    assert!(record["started_at"].is_string(), "{record}");
    assert!(record["completed_at"].is_string(), "{record}");
    assert!(record["duration_ms"].is_u64(), "{record}");

    let listed = server.list().await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["execution_id"], id.as_str());
    assert_eq!(listed[0]["status"], "completed");
}

/// `list_executions` answers a page, oldest first, saying how many there are
/// and where the next page starts.
#[tokio::test]
async fn list_executions_answers_a_page_at_a_time() {
    let server = Server::start_with(&["--stateless"]).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let record = server.run_and_wait(&format!("{n}")).await;
        ids.push(common::execution_id(&record));
    }
    let page = server
        .call("list_executions", json!({ "offset": 1, "limit": 1 }))
        .await;
    assert_eq!(page["total"], 3, "{page}");
    assert_eq!(page["next_offset"], 2, "{page}");
    assert_eq!(page["executions"][0]["execution_id"], ids[1].as_str());
    let last = server.call("list_executions", json!({ "offset": 2 })).await;
    assert_eq!(last["next_offset"], Value::Null, "{last}");
    assert_eq!(last["executions"][0]["execution_id"], ids[2].as_str());
    assert_eq!(server.list().await.len(), 3);
    let error = server
        .call_err("list_executions", json!({ "limit": 0 }))
        .await;
    assert!(error.contains("`limit`"), "{error}");
}
