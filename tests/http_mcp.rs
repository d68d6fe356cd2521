//! MCP over Streamable HTTP (`--http-port`): rmcp's client end to end, the
//! session lifecycle on the wire, IPv6, and shutdown on SIGTERM.

mod common;

use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, JsonObject};
use rmcp::transport::StreamableHttpClientTransport;
use serde_json::{Value, json};

use common::DEADLINE;
use common::http::{HttpServer, initialize_request, mcp_messages, post_mcp};

/// The result of a `tools/call` of `run_js`, as JSON.
async fn run_js_over(
    client: &rmcp::service::RunningService<rmcp::RoleClient, ()>,
    code: &str,
) -> Value {
    let arguments: JsonObject = json!({ "code": code, "wait_ms": common::RUN_WAIT_MS })
        .as_object()
        .cloned()
        .expect("object");
    let params = CallToolRequestParams::new("run_js").with_arguments(arguments);
    let result = tokio::time::timeout(DEADLINE, client.call_tool(params))
        .await
        .expect("run_js answered in time")
        .expect("run_js succeeded at the protocol level");
    result
        .structured_content
        .expect("run_js returns structuredContent")
}

#[tokio::test]
async fn rmcp_client_lists_tools_and_runs_code() {
    let server = HttpServer::start(&[]).await;
    let transport = StreamableHttpClientTransport::from_uri(server.url("/mcp"));
    let client = tokio::time::timeout(DEADLINE, ().serve(transport))
        .await
        .expect("handshake in time")
        .expect("MCP handshake over HTTP");

    let tools = client.list_all_tools().await.expect("tools/list");
    let names: Vec<&str> = tools.iter().map(|tool| tool.name.as_ref()).collect();
    assert!(names.contains(&"run_js"), "{names:?}");

    let response = run_js_over(&client, "const a = 20; a + 22").await;
    assert_eq!(response["status"], "completed", "{response}");
    assert_eq!(response["result"], "42", "{response}");

    client.cancel().await.expect("close the client");
    let status = server.terminate().await;
    assert!(status.success(), "exit status {status}");
}

#[tokio::test]
async fn sessions_negotiate_versions_and_end_with_delete() {
    let server = HttpServer::start(&[]).await;
    let url = server.url("/mcp");
    let http = reqwest::Client::new();

    for version in ["2025-06-18", "2025-11-25"] {
        let response = post_mcp(&http, &url, None, None, &initialize_request(version)).await;
        assert_eq!(response.status(), 200, "initialize {version}");
        assert!(response.headers().contains_key("mcp-session-id"));
        let messages = mcp_messages(response).await;
        let answer = messages
            .iter()
            .find(|message| message["id"] == 1)
            .unwrap_or_else(|| panic!("no initialize answer in {messages:?}"));
        assert_eq!(answer["result"]["protocolVersion"], version, "{answer}");
        assert_eq!(answer["result"]["serverInfo"]["name"], "mcp-v8", "{answer}");
    }

    let session = open_session(&http, &url).await;

    let list = json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/list" });
    let response = http
        .post(&url)
        .header("accept", common::http::MCP_ACCEPT)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-06-18")
        .json(&list)
        .send()
        .await
        .expect("tools/list");
    assert_eq!(response.status(), 200);
    let messages = mcp_messages(response).await;
    assert!(
        messages
            .iter()
            .any(|message| message["id"] == 2 && message["result"]["tools"].is_array()),
        "{messages:?}"
    );

    let response = http
        .post(&url)
        .header("accept", common::http::MCP_ACCEPT)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "1999-01-01")
        .json(&list)
        .send()
        .await
        .expect("tools/list with a bad version");
    assert_eq!(response.status(), 400, "unsupported MCP-Protocol-Version");

    let response = http
        .delete(&url)
        .header("mcp-session-id", &session)
        .send()
        .await
        .expect("DELETE");
    assert!(
        response.status().is_success(),
        "DELETE: {}",
        response.status()
    );

    let response = post_mcp(&http, &url, Some(&session), None, &list).await;
    assert_eq!(response.status(), 404, "a deleted session is gone");
    let response = http
        .get(&url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 404, "no stream for a deleted session");
    for gone in [session.as_str(), "00000000-0000-0000-0000-000000000000"] {
        let response = http
            .delete(&url)
            .header("mcp-session-id", gone)
            .send()
            .await
            .expect("DELETE");
        assert_eq!(
            response.status(),
            404,
            "DELETE of a session that is not there"
        );
    }
}

/// A JSON-RPC `tools/call` of `run_js` with `code`, waiting `wait_ms`.
fn run_js_call(id: u64, code: &str, wait_ms: u64) -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": id,
        "method": "tools/call",
        "params": { "name": "run_js", "arguments": { "code": code, "wait_ms": wait_ms } },
    })
}

/// POSTs `message` on `session` in a task of its own (for a call that takes
/// a while); the task yields the answer's JSON-RPC messages.
fn spawn_post(
    http: &reqwest::Client,
    url: &str,
    session: &str,
    message: Value,
) -> tokio::task::JoinHandle<Vec<Value>> {
    let (http, url, session) = (http.clone(), url.to_owned(), session.to_owned());
    tokio::spawn(async move {
        let response = post_mcp(&http, &url, Some(&session), None, &message).await;
        assert_eq!(response.status(), 200);
        mcp_messages(response).await
    })
}

/// Opens a 2025-06-18 session on the raw wire; returns its id.
async fn open_session(http: &reqwest::Client, url: &str) -> String {
    let response = post_mcp(http, url, None, None, &initialize_request("2025-06-18")).await;
    assert_eq!(response.status(), 200, "initialize");
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .expect("ascii session id")
        .to_owned();
    drop(mcp_messages(response).await);
    let initialized = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
    let response = post_mcp(http, url, Some(&session), None, &initialized).await;
    assert_eq!(response.status(), 202, "notifications/initialized");
    session
}

/// A body that is not one JSON-RPC message gets 400 and a JSON-RPC error
/// (-32700 for bytes that are not JSON, -32600 for JSON that is not a
/// message, -32602 for params by position, under the message's id when it
/// has one), not rmcp's 415, the
/// status for a wrong Content-Type; the session goes on serving.
#[tokio::test]
async fn malformed_messages_get_json_rpc_errors() {
    let server = HttpServer::start(&[]).await;
    let http = reqwest::Client::new();
    let url = server.url("/mcp");
    let session = open_session(&http, &url).await;
    let cases = [
        ("{not json", -32700, Value::Null, "not JSON"),
        ("", -32700, Value::Null, "not JSON"),
        (
            r#"[{"jsonrpc":"2.0","id":2,"method":"ping"}]"#,
            -32600,
            Value::Null,
            "batches",
        ),
        (
            r#"{"jsonrpc":"1.0","id":3,"method":"ping"}"#,
            -32600,
            json!(3),
            "\"2.0\"",
        ),
        (
            r#"{"jsonrpc":"2.0","id":4,"method":["ping"]}"#,
            -32600,
            json!(4),
            "\"method\" must be a string",
        ),
        (
            r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":[1]}"#,
            -32602,
            json!(5),
            "params must be an object, not an array",
        ),
    ];
    for (body, code, id, words) in cases {
        let response = http
            .post(&url)
            .header("accept", common::http::MCP_ACCEPT)
            .header("content-type", "application/json")
            .header("mcp-session-id", &session)
            .body(body)
            .send()
            .await
            .expect("POST");
        assert_eq!(response.status(), 400, "{body}");
        let answer: Value = response.json().await.expect("a JSON-RPC error body");
        assert_eq!(answer["jsonrpc"], "2.0", "{body}: {answer}");
        assert_eq!(answer["id"], id, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{body}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(words), "{body}: {answer}");
    }
    // An initialize rmcp cannot read would be refused for lacking a session.
    let mut initialize = initialize_request("2025-06-18");
    initialize["params"]
        .as_object_mut()
        .expect("params")
        .remove("clientInfo");
    let response = http
        .post(&url)
        .header("accept", common::http::MCP_ACCEPT)
        .json(&initialize)
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 400);
    let answer: Value = response.json().await.expect("a JSON-RPC error body");
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("missing field `clientInfo`")),
        "{answer}"
    );

    // A wrong Content-Type is still rmcp's 415.
    let response = http
        .post(&url)
        .header("accept", common::http::MCP_ACCEPT)
        .header("content-type", "text/plain")
        .header("mcp-session-id", &session)
        .body(r#"{"jsonrpc":"2.0","id":5,"method":"ping"}"#)
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 415);

    let ping = json!({ "jsonrpc": "2.0", "id": 6, "method": "ping" });
    let response = post_mcp(&http, &url, Some(&session), None, &ping).await;
    assert_eq!(response.status(), 200);
    let answers = mcp_messages(response).await;
    assert_eq!(answers[0]["id"], 6, "{answers:?}");
    assert!(answers[0].get("result").is_some(), "{answers:?}");
}

/// A well-formed request of a method the server serves, with params missing
/// or of the wrong shape, is answered -32602 with what is wrong (rmcp alone
/// says -32601, method not found); an unknown method is -32601 by name.
#[tokio::test]
async fn requests_with_unreadable_params_are_invalid_params() {
    let server = HttpServer::start(&[]).await;
    let http = reqwest::Client::new();
    let url = server.url("/mcp");
    let session = open_session(&http, &url).await;
    let cases = [
        (
            json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call" }),
            -32602,
            "params are missing",
        ),
        (
            json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": { "arguments": {} } }),
            -32602,
            "missing field `name`",
        ),
        (
            json!({ "jsonrpc": "2.0", "id": 3, "method": "no/such" }),
            -32601,
            "method not found: no/such",
        ),
    ];
    for (request, code, words) in cases {
        let response = post_mcp(&http, &url, Some(&session), None, &request).await;
        let answers = mcp_messages(response).await;
        let answer = answers
            .iter()
            .find(|answer| answer["id"] == request["id"])
            .unwrap_or_else(|| panic!("no answer to {request}: {answers:?}"));
        assert_eq!(answer["error"]["code"], code, "{request}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(words), "{request}: {answer}");
    }
}

#[tokio::test]
async fn sessions_end_after_session_idle_secs_without_requests() {
    let server = HttpServer::start(&["--session-idle-secs", "2"]).await;
    let url = server.url("/mcp");
    let http = reqwest::Client::new();
    let busy = open_session(&http, &url).await;
    let idle = open_session(&http, &url).await;
    let ping = json!({ "jsonrpc": "2.0", "id": 2, "method": "ping" });

    // A session in use lives past the idle time, counted from its last request.
    for _ in 0..6 {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let response = post_mcp(&http, &url, Some(&busy), None, &ping).await;
        assert_eq!(response.status(), 200, "a session in use");
        drop(mcp_messages(response).await);
    }
    // The other one has been idle for 3 s: gone, as if deleted.
    let response = post_mcp(&http, &url, Some(&idle), None, &ping).await;
    assert_eq!(response.status(), 404, "an idle session ends");
    // And the client recovers the way the spec says: a new session.
    let again = open_session(&http, &url).await;
    let response = post_mcp(&http, &url, Some(&again), None, &ping).await;
    assert_eq!(response.status(), 200);

    // A tool call longer than the idle time is no idleness: it is answered,
    // and its session lives on.
    let call = run_js_call(
        3,
        "await new Promise(r => setTimeout(r, 3500)); 'answered'",
        10000,
    );
    let response = post_mcp(&http, &url, Some(&again), None, &call).await;
    assert_eq!(response.status(), 200);
    let answers = mcp_messages(response).await;
    let answer = answers
        .iter()
        .find(|answer| answer["id"] == 3)
        .unwrap_or_else(|| panic!("no answer to the long call: {answers:?}"));
    assert_eq!(
        answer["result"]["structuredContent"]["result"], "answered",
        "{answer}"
    );
    let response = post_mcp(&http, &url, Some(&again), None, &ping).await;
    assert_eq!(response.status(), 200, "the session outlived its long call");
}

/// At `max_sessions`, a new session ends the one idle longest (whose client
/// then gets 404 and can initialize again); the others live on.
#[tokio::test]
async fn a_new_session_past_max_sessions_ends_the_one_idle_longest() {
    let server = HttpServer::start(&["--max-sessions", "3"]).await;
    let url = server.url("/mcp");
    let http = reqwest::Client::new();
    let ping = json!({ "jsonrpc": "2.0", "id": 2, "method": "ping" });
    let status = |session: String| {
        let (http, url, ping) = (&http, &url, &ping);
        async move {
            let response = post_mcp(http, url, Some(&session), None, ping).await;
            let status = response.status().as_u16();
            if status == 200 {
                drop(mcp_messages(response).await);
            }
            status
        }
    };

    let oldest = open_session(&http, &url).await;
    let used = open_session(&http, &url).await;
    let newer = open_session(&http, &url).await;
    // `oldest` is now in use again; `used` is the one idle longest.
    assert_eq!(status(oldest.clone()).await, 200);
    let fourth = open_session(&http, &url).await;
    assert_eq!(
        status(used.clone()).await,
        404,
        "the session idle longest ends"
    );
    for session in [&oldest, &newer, &fourth] {
        assert_eq!(status(session.clone()).await, 200, "{session} lives on");
    }
    // Many more: the bound holds and the latest three are the open ones.
    let mut latest = Vec::new();
    for _ in 0..10 {
        latest.push(open_session(&http, &url).await);
    }
    for session in &latest[..7] {
        assert_eq!(status(session.clone()).await, 404, "{session} was ended");
    }
    for session in [&oldest, &newer, &fourth] {
        assert_eq!(status(session.clone()).await, 404, "{session} was ended");
    }
    for session in &latest[7..] {
        assert_eq!(status(session.clone()).await, 200, "{session} is open");
    }
}

/// A session waiting on a long tool call is busy, not idle: making room for a
/// new session ends an idle one instead, and the call is answered.
#[tokio::test]
async fn a_session_with_a_request_in_flight_is_not_ended_for_room() {
    let server = HttpServer::start(&["--max-sessions", "2"]).await;
    let url = server.url("/mcp");
    let http = reqwest::Client::new();
    let busy = open_session(&http, &url).await;
    let idle = open_session(&http, &url).await;

    let call = run_js_call(5, "await new Promise(r => setTimeout(r, 1500)); 7", 20000);
    let long_call = spawn_post(&http, &url, &busy, call);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // `idle` was used after `busy`'s call began, but has nothing in flight.
    let ping = json!({ "jsonrpc": "2.0", "id": 2, "method": "ping" });
    let response = post_mcp(&http, &url, Some(&idle), None, &ping).await;
    assert_eq!(response.status(), 200);
    drop(mcp_messages(response).await);
    let newest = open_session(&http, &url).await;

    let answers = tokio::time::timeout(DEADLINE, long_call)
        .await
        .expect("the long call was answered in time")
        .expect("the long call's task");
    let answer = answers
        .iter()
        .find(|message| message["id"] == 5)
        .unwrap_or_else(|| panic!("no answer to the call in {answers:?}"));
    assert_eq!(
        answer["result"]["structuredContent"]["result"], "7",
        "{answer}"
    );
    let status = |session: String| {
        let (http, url, ping) = (&http, &url, &ping);
        async move {
            post_mcp(http, url, Some(&session), None, ping)
                .await
                .status()
                .as_u16()
        }
    };
    assert_eq!(status(idle).await, 404, "the idle session made room");
    assert_eq!(status(busy).await, 200);
    assert_eq!(status(newest).await, 200);
}

/// A `run_js` waiting on its execution when its session is deleted stops
/// the execution at once, as README says: nobody can read the answer naming
/// it. rmcp cancels an ended session's calls only after 5 s, so the
/// execution used to run on to completion.
#[tokio::test]
async fn deleting_a_session_cancels_its_waiting_run_js() {
    let server = HttpServer::start(&["--stateless"]).await;
    let url = server.url("/mcp");
    let http = reqwest::Client::new();
    let session = open_session(&http, &url).await;
    let call = run_js_call(
        5,
        "await new Promise(r => setTimeout(r, 4000)); 'ran on'",
        20000,
    );
    let waiting = spawn_post(&http, &url, &session, call);
    server
        .poll_first_execution(DEADLINE, "running", |execution| {
            execution["status"] == "running"
        })
        .await;
    let response = http
        .delete(&url)
        .header("mcp-session-id", &session)
        .send()
        .await
        .expect("DELETE");
    assert!(
        response.status().is_success(),
        "DELETE: {}",
        response.status()
    );
    let execution = server
        .poll_first_execution(
            std::time::Duration::from_secs(3),
            "ended soon after its session",
            |execution| execution["status"] != "running",
        )
        .await;
    assert_eq!(execution["status"], "cancelled", "{execution}");
    waiting.abort();
}

/// 2026-07-28 requests carry their protocol version and capabilities in
/// `_meta` and are served without a session.
#[tokio::test]
async fn protocol_2026_07_28_is_served_statelessly() {
    let server = HttpServer::start(&[]).await;
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let http = reqwest::Client::new();
    let request = |id: u32, method: &str| {
        http.post(server.url("/mcp"))
            .header("accept", common::http::MCP_ACCEPT)
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", method)
            .json(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": { "_meta": meta } }))
            .send()
    };

    let response = request(1, "server/discover")
        .await
        .expect("server/discover");
    assert_eq!(response.status(), 200);
    assert!(!response.headers().contains_key("mcp-session-id"));
    let messages = mcp_messages(response).await;
    let versions = &messages[0]["result"]["supportedVersions"];
    for version in ["2025-06-18", "2025-11-25", "2026-07-28"] {
        assert!(
            versions
                .as_array()
                .is_some_and(|all| all.contains(&json!(version))),
            "{version} missing from {versions}"
        );
    }

    let response = request(2, "tools/list").await.expect("tools/list");
    assert_eq!(response.status(), 200);
    let messages = mcp_messages(response).await;
    let tools = messages[0]["result"]["tools"].as_array().expect("tools");
    assert!(
        tools.iter().any(|tool| tool["name"] == "run_js"),
        "{messages:?}"
    );
}

#[tokio::test]
async fn binds_ipv6_loopback() {
    let server = HttpServer::start(&["--bind", "::1"]).await;
    assert!(server.addr.is_ipv6(), "{}", server.addr);
    assert!(server.base.starts_with("http://[::1]:"), "{}", server.base);
    let transport = StreamableHttpClientTransport::from_uri(server.url("/mcp"));
    let client = tokio::time::timeout(DEADLINE, ().serve(transport))
        .await
        .expect("handshake in time")
        .expect("MCP handshake over IPv6");
    let response = run_js_over(&client, "'v' + 6").await;
    assert_eq!(response["result"], "v6", "{response}");
    client.cancel().await.expect("close the client");
}

#[tokio::test]
async fn sigterm_with_an_open_session_exits_zero() {
    let server = HttpServer::start(&[]).await;
    let transport = StreamableHttpClientTransport::from_uri(server.url("/mcp"));
    let client = tokio::time::timeout(DEADLINE, ().serve(transport))
        .await
        .expect("handshake in time")
        .expect("MCP handshake");
    client.list_all_tools().await.expect("tools/list");
    // The client keeps its session (and maybe a GET stream) open.
    let status = server.terminate().await;
    assert!(status.success(), "exit status {status}");
    drop(client);
}

/// A `run_js` still waiting when the server is told to stop gets an answer
/// before its stream ends: the execution, cancelled after the drain period,
/// and why.
#[tokio::test]
async fn a_waiting_tool_call_is_answered_at_shutdown() {
    let server = HttpServer::start(&["--stateless"]).await;
    let http = reqwest::Client::new();
    let url = server.url("/mcp");
    let session = open_session(&http, &url).await;
    let call = run_js_call(7, "await new Promise(r => setTimeout(r, 25000)); 1", 30000);
    let waiting = spawn_post(&http, &url, &session, call);
    server
        .poll_first_execution(DEADLINE, "running", |execution| {
            execution["status"] == "running"
        })
        .await;
    let status = server.terminate().await;
    assert!(status.success(), "exit status {status}");
    let answers = waiting.await.expect("the waiting call");
    let answer = answers
        .iter()
        .find(|answer| answer["id"] == 7)
        .unwrap_or_else(|| panic!("no answer to the call: {answers:?}"));
    let record = &answer["result"]["structuredContent"];
    assert_eq!(record["status"], "cancelled", "{answer}");
    assert!(
        record["error"]
            .as_str()
            .is_some_and(|error| error.contains("server shut down")),
        "{answer}"
    );
}

#[tokio::test]
async fn port_in_use_fails_with_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let port = taken.local_addr().expect("address").port().to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let output = tokio::process::Command::new(common::BIN)
        .args(["--state-dir"])
        .arg(dir.path())
        .args(["--http-port", &port])
        .output()
        .await
        .expect("run the server");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{stderr}"
    );
    // The log lines before it are plain text: stderr is a pipe, not a
    // terminal, and journald or a log file would keep colour codes.
    assert!(stderr.contains(" INFO "), "no log lines: {stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "escape codes in the log: {stderr}"
    );
}
