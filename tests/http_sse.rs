//! MCP over the legacy HTTP+SSE transport (`--sse-port`), spoken by hand:
//! `GET /sse` for the event stream, `POST /message?sessionId=…` for requests.

mod common;

use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};

use common::DEADLINE;
use common::http::{HttpServer, initialize_request};

/// One server-sent event: its `event` name and `data`, or a comment line.
#[derive(Debug, Clone, PartialEq)]
enum Frame {
    Event { event: String, data: String },
    Comment,
}

/// A minimal SSE reader over reqwest's byte stream.
struct SseStream {
    bytes: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
}

impl SseStream {
    async fn open(url: &str) -> Self {
        let response = reqwest::Client::new()
            .get(url)
            .header("accept", "text/event-stream")
            .send()
            .await
            .expect("GET /sse");
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"].to_str().expect("ascii");
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        Self {
            bytes: response.bytes_stream().boxed(),
            buffer: String::new(),
        }
    }

    /// The next frame: an event (lines up to a blank line) or a comment.
    async fn next_frame(&mut self) -> Frame {
        loop {
            if let Some(frame) = self.parse_buffered() {
                return frame;
            }
            let chunk = tokio::time::timeout(DEADLINE, self.bytes.next())
                .await
                .expect("the stream stalled")
                .expect("the stream ended")
                .expect("read the stream");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    fn parse_buffered(&mut self) -> Option<Frame> {
        let text = self.buffer.replace("\r\n", "\n");
        if let Some(rest) = text.strip_prefix(':') {
            let end = rest.find('\n')?;
            self.buffer = rest[end + 1..].to_owned();
            return Some(Frame::Comment);
        }
        let end = text.find("\n\n")?;
        let (block, rest) = (&text[..end], &text[end + 2..]);
        let mut event = "message".to_owned();
        let mut data = Vec::new();
        for line in block.lines() {
            if let Some(value) = line.strip_prefix("event:") {
                event = value.trim().to_owned();
            } else if let Some(value) = line.strip_prefix("data:") {
                data.push(value.strip_prefix(' ').unwrap_or(value).to_owned());
            }
        }
        self.buffer = rest.to_owned();
        Some(Frame::Event {
            event,
            data: data.join("\n"),
        })
    }

    /// The next event, skipping keep-alive comments.
    async fn next_event(&mut self) -> (String, String) {
        loop {
            if let Frame::Event { event, data } = self.next_frame().await {
                return (event, data);
            }
        }
    }

    /// The next `message` event, as JSON.
    async fn next_message(&mut self) -> Value {
        let (event, data) = self.next_event().await;
        assert_eq!(event, "message", "{data}");
        serde_json::from_str(&data).expect("a JSON-RPC message")
    }
}

async fn post(server: &HttpServer, endpoint: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(server.url(endpoint))
        .json(body)
        .send()
        .await
        .expect("POST /message")
}

async fn start_sse(args: &[&str]) -> HttpServer {
    HttpServer::start_with(&["--sse-port", "0"], args, &[], None).await
}

/// Opens a stream and completes the MCP handshake; returns the stream and
/// the endpoint to post to.
async fn handshake(server: &HttpServer) -> (SseStream, String) {
    let mut stream = SseStream::open(&server.url("/sse")).await;
    let (event, endpoint) = stream.next_event().await;
    assert_eq!(event, "endpoint");
    assert!(endpoint.starts_with("/message?sessionId="), "{endpoint}");

    let response = post(server, &endpoint, &initialize_request("2024-11-05")).await;
    assert_eq!(response.status(), 202);
    let answer = stream.next_message().await;
    assert_eq!(answer["id"], 1, "{answer}");
    assert_eq!(
        answer["result"]["protocolVersion"], "2024-11-05",
        "{answer}"
    );
    let initialized = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
    assert_eq!(post(server, &endpoint, &initialized).await.status(), 202);
    (stream, endpoint)
}

#[tokio::test]
async fn sse_session_lists_tools_and_runs_code() {
    let server = start_sse(&[]).await;
    let (mut stream, endpoint) = handshake(&server).await;

    let list = json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/list" });
    assert_eq!(post(&server, &endpoint, &list).await.status(), 202);
    let answer = stream.next_message().await;
    assert_eq!(answer["id"], 2);
    let tools = answer["result"]["tools"].as_array().expect("tools");
    assert!(
        tools.iter().any(|tool| tool["name"] == "run_js"),
        "{answer}"
    );

    let call = json!({
        "jsonrpc": "2.0",
        "id": 3,
        "method": "tools/call",
        "params": { "name": "run_js", "arguments": { "code": "6 * 7", "wait_ms": common::RUN_WAIT_MS } }
    });
    assert_eq!(post(&server, &endpoint, &call).await.status(), 202);
    let answer = stream.next_message().await;
    assert_eq!(answer["id"], 3);
    assert_eq!(
        answer["result"]["structuredContent"]["result"], "42",
        "{answer}"
    );
}

/// A notification posted before `initialize` is dropped and the session
/// goes on: rmcp ended it, closing the stream without a word, and the
/// client's `initialize` then got 404.
#[tokio::test]
async fn a_notification_before_initialize_does_not_end_the_session() {
    let server = start_sse(&[]).await;
    let mut stream = SseStream::open(&server.url("/sse")).await;
    let (event, endpoint) = stream.next_event().await;
    assert_eq!(event, "endpoint");
    let early = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
    assert_eq!(post(&server, &endpoint, &early).await.status(), 202);

    let response = post(&server, &endpoint, &initialize_request("2024-11-05")).await;
    assert_eq!(response.status(), 202);
    let answer = stream.next_message().await;
    assert_eq!(answer["id"], 1, "{answer}");
    assert!(answer["result"]["serverInfo"].is_object(), "{answer}");
}

/// A `run_js` waiting on its execution when its stream closes stops the
/// execution at once, as README says: nobody can read the answer naming it.
#[tokio::test]
async fn closing_the_stream_cancels_a_waiting_run_js() {
    let server = start_sse(&["--stateless"]).await;
    let (stream, endpoint) = handshake(&server).await;
    let call = json!({
        "jsonrpc": "2.0",
        "id": 3,
        "method": "tools/call",
        "params": { "name": "run_js", "arguments": {
            "code": "await new Promise(r => setTimeout(r, 4000)); 'ran on'", "wait_ms": 20000 } }
    });
    assert_eq!(post(&server, &endpoint, &call).await.status(), 202);
    server
        .poll_first_execution(DEADLINE, "running", |execution| {
            execution["status"] == "running"
        })
        .await;
    drop(stream);
    let execution = server
        .poll_first_execution(
            std::time::Duration::from_millis(1500),
            "ended soon after its stream",
            |execution| execution["status"] != "running",
        )
        .await;
    assert_eq!(execution["status"], "cancelled", "{execution}");
}

#[tokio::test]
async fn unknown_or_closed_sessions_are_404() {
    let server = start_sse(&[]).await;
    let ping = json!({ "jsonrpc": "2.0", "id": 9, "method": "ping" });
    let response = post(&server, "/message?sessionId=no-such-session", &ping).await;
    assert_eq!(response.status(), 404);

    let (stream, endpoint) = handshake(&server).await;
    let response = reqwest::Client::new()
        .post(server.url(&endpoint))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 400, "malformed JSON");

    // The session lives as long as its stream.
    drop(stream);
    let started = std::time::Instant::now();
    while post(&server, &endpoint, &ping).await.status() != 404 {
        assert!(
            started.elapsed() < DEADLINE,
            "the session outlived its stream"
        );
        tokio::time::sleep(common::POLL_INTERVAL).await;
    }
}

#[tokio::test]
async fn idle_streams_get_keep_alive_comments() {
    let server = start_sse(&["--sse-keep-alive-secs", "1"]).await;
    let mut stream = SseStream::open(&server.url("/sse")).await;
    let (event, _) = stream.next_event().await;
    assert_eq!(event, "endpoint");
    let comment = tokio::time::timeout(Duration::from_secs(10), stream.next_frame())
        .await
        .expect("a keep-alive within 10 s");
    assert_eq!(comment, Frame::Comment);
}

#[tokio::test]
async fn sigterm_ends_open_streams_and_exits_zero() {
    let server = start_sse(&[]).await;
    let (_stream, _endpoint) = handshake(&server).await;
    let status = server.terminate().await;
    assert!(status.success(), "exit status {status}");
}

/// `/message` refuses a missing session id and an oversized body in the
/// API's JSON error shape, as every other route does (they were plain text).
#[tokio::test]
async fn message_refusals_are_json() {
    let server = start_sse(&["--max-body-bytes", "2048"]).await;
    let ping = json!({ "jsonrpc": "2.0", "id": 9, "method": "ping" });
    let (_stream, endpoint) = handshake(&server).await;
    let client = reqwest::Client::new();
    let send =
        |request: reqwest::RequestBuilder| async move { request.send().await.expect("a response") };
    let cases = [
        (
            post(&server, "/message", &ping).await,
            400,
            "invalid_argument",
            "sessionid",
        ),
        (
            post(&server, &endpoint, &json!({ "pad": "x".repeat(4096) })).await,
            413,
            "payload_too_large",
            "transport.max_body_bytes",
        ),
        (
            send(client.get(server.url("/message"))).await,
            405,
            "method_not_allowed",
            "get is not allowed on /message",
        ),
        (
            send(client.post(server.url("/sse"))).await,
            405,
            "method_not_allowed",
            "post is not allowed on /sse",
        ),
    ];
    for (response, status, code, says) in cases {
        assert_eq!(response.status(), status);
        let body: Value = response.json().await.expect("a JSON body");
        assert_eq!(body["error"]["code"], code, "{body}");
        let message = body["error"]["message"].as_str().expect("a message");
        assert!(message.to_lowercase().contains(says), "{body}");
    }
}

/// A session here is its open stream: past `max_sessions` a new stream is
/// refused with 503 (and Retry-After) until one closes.
#[tokio::test]
async fn streams_past_max_sessions_get_503_until_one_closes() {
    let server = start_sse(&["--max-sessions", "2"]).await;
    let (first, _) = handshake(&server).await;
    let (mut second, second_endpoint) = handshake(&server).await;

    let open = || async {
        reqwest::Client::new()
            .get(server.url("/sse"))
            .header("accept", "text/event-stream")
            .send()
            .await
            .expect("GET /sse")
    };
    let refused = open().await;
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "5");
    let body: Value = refused.json().await.expect("a JSON body");
    assert_eq!(body["error"]["code"], "too_many_sessions", "{body}");

    // The open sessions serve on.
    let ping = json!({ "jsonrpc": "2.0", "id": 7, "method": "ping" });
    assert_eq!(post(&server, &second_endpoint, &ping).await.status(), 202);
    assert_eq!(second.next_message().await["id"], 7);

    drop(first);
    let started = std::time::Instant::now();
    loop {
        let response = open().await;
        if response.status() == 200 {
            break;
        }
        assert_eq!(response.status(), 503);
        assert!(
            started.elapsed() < DEADLINE,
            "the closed stream kept its place"
        );
        tokio::time::sleep(common::POLL_INTERVAL).await;
    }
}
