//! MCP over stdio spoken line by line, for what rmcp's client would not
//! send and for how a stdio session ends: messages before `initialize`,
//! closed pipes, and SIGTERM.

mod common;

use serde_json::{Value, json};

/// A server on stdio, spoken to line by line, for what rmcp's client would
/// not send.
struct RawStdio {
    child: tokio::process::Child,
    stdin: Option<tokio::process::ChildStdin>,
    stdout: Option<tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>>,
    _state: tempfile::TempDir,
}

impl RawStdio {
    fn start() -> Self {
        use tokio::io::AsyncBufReadExt;

        let state = tempfile::tempdir().expect("state dir");
        let mut child = tokio::process::Command::new(common::BIN)
            .args(["--stateless", "--state-dir"])
            .arg(state.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn mcp-v8");
        let stdin = child.stdin.take();
        let stdout = Some(tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines());
        Self {
            child,
            stdin,
            stdout,
            _state: state,
        }
    }

    async fn send(&mut self, message: Value) {
        self.send_raw(format!("{message}\n").as_bytes()).await;
    }

    async fn send_raw(&mut self, bytes: &[u8]) {
        use tokio::io::AsyncWriteExt;

        let stdin = self.stdin.as_mut().expect("stdin still open");
        stdin.write_all(bytes).await.expect("write to the server");
    }

    async fn initialize(&mut self) {
        self.send(
            json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": { "name": "t", "version": "1" } } }),
        )
        .await;
        let answer = self.next().await;
        assert_eq!(answer["id"], 1, "{answer}");
        assert!(answer["result"]["serverInfo"].is_object(), "{answer}");
        self.send(json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }))
            .await;
    }

    /// The next line the server writes, as JSON.
    async fn next(&mut self) -> Value {
        let stdout = self.stdout.as_mut().expect("stdout still open");
        let line = tokio::time::timeout(common::DEADLINE, stdout.next_line())
            .await
            .expect("an answer in time")
            .expect("read stdout")
            .expect("the server answers instead of exiting");
        serde_json::from_str(&line).expect("JSON-RPC")
    }

    fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id().expect("running")).expect("pid");
        // SAFETY: kill(2) takes plain integers.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    }

    /// Closes stdin and waits for the server to exit.
    async fn finish(mut self) -> std::process::ExitStatus {
        drop(self.stdin.take());
        self.exited().await
    }

    /// Waits for the server to exit.
    async fn exited(mut self) -> std::process::ExitStatus {
        tokio::time::timeout(common::DEADLINE, self.child.wait())
            .await
            .expect("the server exits")
            .expect("wait")
    }
}

/// Over stdio a notification or a response before `initialize` is dropped,
/// and the session goes on: rmcp ended it, and the server exited 1, when a
/// client sent `notifications/initialized` a line too early.
#[tokio::test]
async fn stdio_drops_notifications_that_come_before_initialize() {
    let mut stdio = RawStdio::start();
    stdio
        .send(json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }))
        .await;
    stdio
        .send(json!({ "jsonrpc": "2.0", "method": "notifications/cancelled", "params": { "requestId": 9 } }))
        .await;
    stdio
        .send(json!({ "jsonrpc": "2.0", "id": 5, "result": {} }))
        .await;
    stdio.initialize().await;
    stdio
        .send(json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/list" }))
        .await;
    let answer = stdio.next().await;
    assert_eq!(answer["id"], 2, "{answer}");
    assert!(answer["result"]["tools"].is_array(), "{answer}");
    let status = stdio.finish().await;
    assert!(status.success(), "{status}");
}

/// An `initialize` whose params cannot be read gets `-32602` saying what is
/// wrong, as over HTTP (rmcp spoke of missing `_meta` fields), and the
/// client may try again.
#[tokio::test]
async fn stdio_says_what_is_wrong_with_an_initialize() {
    let mut stdio = RawStdio::start();
    stdio
        .send(
            json!({ "jsonrpc": "2.0", "id": 7, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {} } }),
        )
        .await;
    let answer = stdio.next().await;
    assert_eq!(answer["id"], 7, "{answer}");
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("missing field `clientInfo`"), "{answer}");
    stdio.initialize().await;
    let status = stdio.finish().await;
    assert!(status.success(), "{status}");
}

/// A line of JSON that is no message MCP can take is answered as over HTTP:
/// under its id when one can be read, with what is wrong (rmcp answered a
/// bare "Invalid request" without the id, so the client never saw an answer
/// to its request). A notification is never answered, nor a line that is
/// not JSON (as README says). A last message without a newline is read all
/// the same.
#[tokio::test]
async fn stdio_answers_unreadable_lines_under_their_id() {
    let mut stdio = RawStdio::start();
    stdio.initialize().await;
    stdio
        .send(json!({ "jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": [1, 2] }))
        .await;
    let answer = stdio.next().await;
    assert_eq!(answer["id"], 5, "{answer}");
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
    assert_eq!(
        answer["error"]["message"],
        "invalid params of tools/call: params must be an object, not an array"
    );

    stdio
        .send(json!({ "jsonrpc": "2.0", "method": "notifications/x", "params": 3 }))
        .await;
    stdio.send_raw(b"not json\r\n").await;
    stdio
        .send(json!({ "jsonrpc": "1.0", "id": "q", "method": "ping" }))
        .await;
    let answer = stdio.next().await;
    assert_eq!(answer["id"], "q", "{answer}");
    assert_eq!(answer["error"]["code"], -32600, "{answer}");

    stdio
        .send_raw(br#"{"jsonrpc":"2.0","id":9,"method":"ping"}"#)
        .await;
    drop(stdio.stdin.take());
    let answer = stdio.next().await;
    assert_eq!(answer, json!({ "jsonrpc": "2.0", "id": 9, "result": {} }));
    let status = stdio.exited().await;
    assert!(status.success(), "{status}");
}

/// A client that closes stdin before it initialises ends the server as
/// cleanly as one that closes it later (it exited 1).
#[tokio::test]
async fn stdio_eof_before_initialize_exits_zero() {
    let stdio = RawStdio::start();
    let status = stdio.finish().await;
    assert!(status.success(), "{status}");
}

/// A client that closes its end of stdout can read no answer: the session
/// ends at the first one that cannot be written (the server went on reading
/// requests, logging a broken pipe for each).
#[tokio::test]
async fn stdio_ends_when_stdout_is_closed() {
    let mut stdio = RawStdio::start();
    stdio.initialize().await;
    drop(stdio.stdout.take());
    stdio
        .send(json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/list" }))
        .await;
    let status = stdio.exited().await;
    assert!(status.success(), "{status}");
}

/// SIGTERM on stdio drains as over HTTP: a run_js waiting on an execution
/// gets its result, and the server exits 0. It used to drop the session at
/// once, cancelling the execution as if its caller had gone.
#[tokio::test]
async fn stdio_drains_on_sigterm() {
    let mut stdio = RawStdio::start();
    stdio.initialize().await;
    stdio
        .send(
            json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "run_js", "arguments": {
                "code": "await new Promise(r => setTimeout(r, 1500)); 'done'",
                "wait_ms": 10000 } } }),
        )
        .await;
    // Until its execution runs (answers to these come first: the call
    // waits for 1.5 s).
    for id in 100.. {
        stdio
            .send(
                json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
                "name": "list_executions", "arguments": {} } }),
            )
            .await;
        let answer = stdio.next().await;
        assert_eq!(answer["id"], id, "{answer}");
        let listed = answer["result"]["structuredContent"]["executions"]
            .as_array()
            .cloned();
        if listed.is_some_and(|all| all.iter().any(|e| e["status"] == "running")) {
            break;
        }
        tokio::time::sleep(common::POLL_INTERVAL).await;
    }
    stdio.signal(libc::SIGTERM);
    let answer = stdio.next().await;
    assert_eq!(answer["id"], 2, "{answer}");
    let record = &answer["result"]["structuredContent"];
    assert_eq!(record["status"], "completed", "{answer}");
    assert_eq!(record["result"], "done", "{answer}");
    let status = stdio.finish().await;
    assert!(status.success(), "{status}");
}
