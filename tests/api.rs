//! The plain HTTP API, black-box: the real binary with `--http-port 0`, spoken
//! to with reqwest on the same port as `/mcp`, through every layer the server
//! puts in front of it (Host/Origin guard, body limit).
//!
//! `tests/api_router.rs` covers each route's details in-process; these check
//! that the routes are really served, and the behaviour that needs the whole
//! server: the configured body limit and queue, and shutdown.

mod common;

use std::time::Instant;

use reqwest::header::{self, HeaderMap};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

use common::http::{HttpServer, MCP_ACCEPT, initialize_request};
use common::{DEADLINE, POLL_INTERVAL};

/// One answer: status, headers and the body as JSON (`Null` when empty).
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Reply {
    /// Asserts an error answer of the documented shape; returns its message.
    fn error(&self, status: StatusCode, code: &str) -> String {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.body["error"]["code"], code, "{self:?}");
        self.body["error"]["message"]
            .as_str()
            .unwrap_or_else(|| panic!("no error message: {self:?}"))
            .to_owned()
    }

    fn ok(&self) -> &Value {
        assert_eq!(self.status, StatusCode::OK, "{self:?}");
        &self.body
    }
}

/// A client for one server.
struct Api {
    server: HttpServer,
    client: Client,
}

impl Api {
    async fn start(args: &[&str]) -> Self {
        Self {
            server: HttpServer::start(args).await,
            client: Client::new(),
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = tokio::time::timeout(DEADLINE, request.send())
            .await
            .expect("the server answered in time")
            .expect("send the request");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("read the response body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|error| {
                panic!(
                    "{status}: the body is not JSON ({error}): {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(self.client.get(self.server.url(path))).await
    }

    async fn post(&self, path: &str) -> Reply {
        self.send(self.client.post(self.server.url(path))).await
    }

    async fn post_json(&self, path: &str, body: Value) -> Reply {
        self.send(self.client.post(self.server.url(path)).json(&body))
            .await
    }

    async fn post_text(&self, path: &str, content_type: &str, body: &str) -> Reply {
        let request = self
            .client
            .post(self.server.url(path))
            .header(header::CONTENT_TYPE, content_type)
            .body(body.to_owned());
        self.send(request).await
    }

    /// `POST /api/executions`; asserts 202 and its Location; returns the id.
    async fn start_execution(&self, body: Value) -> String {
        let reply = self.post_json("/api/executions", body).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{reply:?}");
        let id = reply.body["execution_id"]
            .as_str()
            .unwrap_or_else(|| panic!("no execution_id: {reply:?}"))
            .to_owned();
        assert_eq!(
            reply.headers[header::LOCATION],
            format!("/api/executions/{id}").as_str()
        );
        id
    }

    /// Polls the record until `done` holds for it.
    async fn poll(&self, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let reply = self.get(&format!("/api/executions/{id}")).await;
            if done(reply.ok()) {
                return reply.body;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "execution {id} not {what} after {DEADLINE:?}: {reply:?}"
            );
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}

#[tokio::test]
async fn exec_runs_json_and_plain_text_on_the_mcp_port() {
    let api = Api::start(&[]).await;
    let response = api
        .post_json("/api/exec", json!({ "code": "console.log('hi'); 40 + 2" }))
        .await;
    let response = response.ok();
    assert_eq!(response["status"], "completed", "{response}");
    assert_eq!(response["result"], "42");
    assert_eq!(response["output"], "hi\n");
    assert_eq!(response["output_truncated"], false);

    let response = api
        .post_text(
            "/api/exec",
            "application/javascript",
            "throw new Error('nope')",
        )
        .await;
    let response = response.ok();
    assert_eq!(response["status"], "failed", "{response}");
    assert!(
        response["error"]
            .as_str()
            .is_some_and(|e| e.contains("nope")),
        "{response}"
    );

    api.post_text("/api/exec", "text/html", "1")
        .await
        .error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    let message = api
        .post_json("/api/exec", json!({ "code": "1", "heap_memory_max_mb": 1 }))
        .await
        .error(StatusCode::BAD_REQUEST, "invalid_argument");
    assert!(message.contains("heap_memory_max_mb"), "{message}");

    // MCP is still served on the same port.
    let mcp = api
        .client
        .post(api.server.url("/mcp"))
        .header(header::ACCEPT, MCP_ACCEPT)
        .json(&initialize_request("2025-06-18"))
        .send()
        .await
        .expect("POST /mcp");
    assert_eq!(mcp.status(), StatusCode::OK);
}

#[tokio::test]
async fn async_executions_start_poll_page_and_cancel() {
    let api = Api::start(&[]).await;
    let id = api
        .start_execution(json!({ "code": "for (let i = 0; i < 3; i++) console.log(i); 'ok'" }))
        .await;
    let record = api.poll(&id, "final", common::is_final).await;
    assert_eq!(record["result"], "ok", "{record}");

    let page = api
        .get(&format!(
            "/api/executions/{id}/output?line_offset=1&line_limit=1"
        ))
        .await;
    assert_eq!(page.ok()["data"], "1\n");
    assert_eq!(page.ok()["next_line_offset"], 2);
    let listed = api.get("/api/executions").await;
    assert!(
        listed.ok()["executions"]
            .as_array()
            .is_some_and(|executions| executions.iter().any(|e| e["execution_id"] == id.as_str())),
        "{listed:?}"
    );

    let runner = api
        .start_execution(json!({ "code": "while (true) {}" }))
        .await;
    api.poll(&runner, "running", |record| record["status"] == "running")
        .await;
    let cancelled = api.post(&format!("/api/executions/{runner}/cancel")).await;
    assert_eq!(cancelled.ok()["status"], "cancelled");

    api.get("/api/executions/no-such-id")
        .await
        .error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn a_full_queue_answers_429_with_retry_after() {
    let api = Api::start(&[
        "--max-concurrent-executions",
        "1",
        "--max-queued-executions",
        "0",
    ])
    .await;
    let runner = api
        .start_execution(json!({ "code": "while (true) {}", "execution_timeout_secs": 30 }))
        .await;
    api.poll(&runner, "running", |record| record["status"] == "running")
        .await;
    let reply = api.post_json("/api/exec", json!({ "code": "1" })).await;
    let message = reply.error(StatusCode::TOO_MANY_REQUESTS, "busy");
    assert_eq!(
        message,
        "server busy: 1 executions in flight (1 running, the rest waiting) fill its 1 workers \
         and 0 queue places; retry later"
    );
    assert_eq!(reply.headers[header::RETRY_AFTER], "1");

    let cancelled = api.post(&format!("/api/executions/{runner}/cancel")).await;
    assert_eq!(cancelled.ok()["status"], "cancelled");
    let response = api.post_json("/api/exec", json!({ "code": "2" })).await;
    assert_eq!(response.ok()["result"], "2");
}

/// `/api/exec` answers once the execution has finished, however long it
/// waited on the queue: it used to give up after the execution's own
/// timeout plus 10 s and answer 200 with `status: queued`.
#[tokio::test]
async fn exec_waits_out_the_queue() {
    let api = Api::start(&["--stateless", "--max-concurrent-executions", "1"]).await;
    let runner = api
        .start_execution(json!({
            "code": "await new Promise((resolve) => setTimeout(resolve, 12000)); 'slept'",
            "execution_timeout_secs": 20,
        }))
        .await;
    api.poll(&runner, "running", |record| record["status"] == "running")
        .await;
    let reply = api
        .post_json(
            "/api/exec",
            json!({ "code": "6 * 7", "execution_timeout_secs": 1 }),
        )
        .await;
    let body = reply.ok();
    assert_eq!(body["status"], "completed", "{body}");
    assert_eq!(body["result"], "42", "{body}");
}

#[tokio::test]
async fn a_body_over_max_body_bytes_is_a_json_413() {
    let api = Api::start(&["--max-body-bytes", "4096"]).await;
    let code = format!("'{}'", "x".repeat(8192));
    for reply in [
        api.post_json("/api/exec", json!({ "code": code })).await,
        api.post_text("/api/executions", "text/plain", &code).await,
    ] {
        // It names the setting (axum's own words name none).
        let message = reply.error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
        assert!(message.contains("transport.max_body_bytes"), "{message}");
    }
    // A body under the limit still runs.
    let response = api.post_text("/api/exec", "text/plain", "'small'").await;
    assert_eq!(response.ok()["result"], "small");
}

#[tokio::test]
async fn health_version_and_the_openapi_document_are_served() {
    let api = Api::start(&[]).await;
    assert_eq!(api.get("/healthz").await.ok(), &json!({ "status": "ok" }));
    assert_eq!(api.get("/readyz").await.ok(), &json!({ "status": "ok" }));
    let version = api.get("/api/version").await;
    assert_eq!(version.ok()["version"], env!("CARGO_PKG_VERSION"));

    // Every operation the document declares is routed through the whole
    // server (not a 404 from the fallback, not a 405).
    let document = api.get("/openapi.json").await.ok().clone();
    let paths = document["paths"].as_object().expect("paths").clone();
    assert!(paths.contains_key("/api/exec"), "{document}");
    for (path, item) in paths {
        let uri = path.replace("{id}", "no-such-id");
        for method in item.as_object().expect("a path item").keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("a method");
            let reply = api
                .send(api.client.request(method.clone(), api.server.url(&uri)))
                .await;
            assert_ne!(
                reply.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            let routed = reply.body["error"]["message"]
                .as_str()
                .is_none_or(|message| !message.starts_with("no route"));
            assert!(routed, "{method} {path}: {reply:?}");
        }
    }

    let message = api
        .get("/api/nope")
        .await
        .error(StatusCode::NOT_FOUND, "not_found");
    assert!(message.contains("/api/nope"), "{message}");
    let reply = api.get("/api/exec").await;
    reply.error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    assert_eq!(reply.headers[header::ALLOW], "POST");
}

/// On SIGTERM the server drains before it stops: new executions get 503
/// `shutting_down` and `/readyz` says so (so a load balancer takes the node
/// out), while the executions in flight finish and their callers get their
/// answers. (The listener used to close at once: no 503 was ever seen.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_refusing_new_work_and_finishing_what_runs() {
    let mut api = Api::start(&["--stateless"]).await;
    let slow = api
        .client
        .post(api.server.url("/api/exec"))
        .json(&json!({ "code": "await new Promise(r => setTimeout(r, 2000)); 'done'" }))
        .send();
    let slow = tokio::spawn(slow);
    let listed = Instant::now();
    while api.get("/api/executions").await.ok()["executions"]
        .as_array()
        .is_none_or(|all| all.iter().all(|e| e["status"] != "running"))
    {
        assert!(listed.elapsed() < DEADLINE, "the slow execution never ran");
        tokio::time::sleep(POLL_INTERVAL).await;
    }

    let pid = libc::pid_t::try_from(api.server.child.id().expect("running")).expect("pid");
    // SAFETY: kill(2) takes plain integers.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let signalled = Instant::now();
    loop {
        let ready = api.get("/readyz").await;
        if ready.status == StatusCode::SERVICE_UNAVAILABLE {
            ready.error(StatusCode::SERVICE_UNAVAILABLE, "shutting_down");
            break;
        }
        assert!(
            signalled.elapsed() < DEADLINE,
            "/readyz never said draining"
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    api.post_json("/api/exec", json!({ "code": "1" }))
        .await
        .error(StatusCode::SERVICE_UNAVAILABLE, "shutting_down");

    let answer = slow
        .await
        .expect("the request task")
        .expect("the slow request is answered");
    assert_eq!(answer.status(), StatusCode::OK);
    let body: Value = answer.json().await.expect("JSON");
    assert_eq!(body["status"], "completed", "{body}");
    assert_eq!(body["result"], "done", "{body}");
    let status = tokio::time::timeout(DEADLINE, api.server.child.wait())
        .await
        .expect("the server exits after draining")
        .expect("wait for the server");
    assert!(status.success(), "{status}");
}

/// A second SIGTERM while the server drains ends it at once, with the
/// signal's exit status and its workers gone, instead of waiting out the
/// drain for an execution that would run on for half a minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigterm_exits_at_once() {
    let mut api = Api::start(&["--stateless"]).await;
    let started = api
        .post_json(
            "/api/executions",
            json!({ "code": "while (true) {}", "execution_timeout_secs": 30 }),
        )
        .await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{started:?}");
    let id = started.body["execution_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let listed = Instant::now();
    while api.get(&format!("/api/executions/{id}")).await.ok()["status"] != "running" {
        assert!(listed.elapsed() < DEADLINE, "the execution never ran");
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    let server_pid = api.server.child.id().expect("running");
    let workers = common::live_children(server_pid);
    assert!(!workers.is_empty(), "no worker processes");

    let pid = libc::pid_t::try_from(server_pid).expect("pid");
    // SAFETY: kill(2) takes plain integers.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let signalled = Instant::now();
    while api.get("/readyz").await.status != StatusCode::SERVICE_UNAVAILABLE {
        assert!(
            signalled.elapsed() < DEADLINE,
            "/readyz never said draining"
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = tokio::time::timeout(std::time::Duration::from_secs(3), api.server.child.wait())
        .await
        .expect("the server exits at once on the second SIGTERM, not after the 5 s drain")
        .expect("wait for the server");
    assert_eq!(status.code(), Some(128 + libc::SIGTERM), "{status}");
    let exited = Instant::now();
    while !workers.iter().all(|&worker| common::process_gone(worker)) {
        assert!(exited.elapsed() < DEADLINE, "workers outlived the server");
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    // Until the pipe closes: the server and its workers have all exited.
    let mut logged = Vec::new();
    while let Ok(Some(line)) = tokio::time::timeout(DEADLINE, api.server.stderr.recv()).await {
        logged.push(line);
    }
    assert!(
        logged
            .iter()
            .any(|line| line.contains("SIGTERM received during shutdown")),
        "{logged:#?}"
    );
}

/// An `/api/exec` caller that goes away cancels its execution, and the
/// record says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_disconnects_cancels_its_execution() {
    let api = Api::start(&["--stateless"]).await;
    let gone = api
        .client
        .post(api.server.url("/api/exec"))
        .json(&json!({ "code": "while (true) {}", "execution_timeout_secs": 30 }))
        .timeout(std::time::Duration::from_millis(500))
        .send()
        .await;
    assert!(gone.is_err_and(|error| error.is_timeout()));
    let started = Instant::now();
    let record = loop {
        let listed = api.get("/api/executions").await;
        let all = listed.ok()["executions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if let Some(record) = all.into_iter().find(|e| e["status"] == "cancelled") {
            break record;
        }
        assert!(started.elapsed() < DEADLINE, "never cancelled: {listed:?}");
        tokio::time::sleep(POLL_INTERVAL).await;
    };
    let id = record["execution_id"].as_str().expect("id");
    let full = api.get(&format!("/api/executions/{id}")).await;
    let error = full.ok()["error"].as_str().expect("error").to_owned();
    assert!(error.contains("disconnected"), "{error}");
}

/// With more executions in flight than `retain_count`, retention evicts a
/// record as it is written; the caller waiting on that execution still gets
/// its outcome (it used to get 404 for an execution that had completed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_caller_gets_the_outcome_retention_evicts_at_once() {
    let api = Api::start(&[
        "--stateless",
        "--retain-executions",
        "1",
        "--max-concurrent-executions",
        "2",
    ])
    .await;
    let busy = api
        .start_execution(json!({ "code": "while (true) {}", "execution_timeout_secs": 30 }))
        .await;
    api.poll(&busy, "running", |record| record["status"] == "running")
        .await;
    let quick = api.post_json("/api/exec", json!({ "code": "6 * 7" })).await;
    assert_eq!(quick.ok()["status"], "completed", "{quick:?}");
    assert_eq!(quick.body["result"], "42", "{quick:?}");
    api.post(&format!("/api/executions/{busy}/cancel"))
        .await
        .ok();
}

/// Sessions and heap tags under `/api`, as the session and tag tools have them.
#[tokio::test]
async fn sessions_and_heap_tags_are_served_under_api() {
    let api = Api::start(&[]).await;
    let first = api
        .post_json(
            "/api/exec",
            json!({ "code": "globalThis.n = 1; n", "session": "s" }),
        )
        .await;
    assert_eq!(first.ok()["result"], "1");
    let second = api
        .post_json(
            "/api/exec",
            json!({ "code": "n += 1; n", "session": "s", "tags": { "step": "two" } }),
        )
        .await;
    assert_eq!(second.ok()["result"], "2", "{second:?}");
    let heap = second.body["heap"].as_str().expect("a heap").to_owned();

    let sessions = api.get("/api/sessions").await;
    assert_eq!(sessions.ok()["sessions"], json!(["s"]));
    let entries = api.get("/api/sessions/s?fields=index,output_heap").await;
    let entries = entries.ok()["entries"].as_array().expect("entries").clone();
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[1]["index"], 1);
    assert_eq!(entries[1]["output_heap"], heap.as_str());
    assert_eq!(entries[1]["status"], "completed");
    assert!(entries[1].get("code").is_none(), "{entries:?}");
    let all = api.get("/api/sessions/s").await;
    assert_eq!(all.ok()["entries"][1]["code"], "n += 1; n");
    let page = api.get("/api/sessions/s?offset=1&limit=1").await;
    assert_eq!(page.ok()["total"], 2, "{page:?}");
    assert_eq!(page.body["next_offset"], Value::Null, "{page:?}");
    assert_eq!(page.body["entries"][0]["index"], 1, "{page:?}");
    let page = api.get("/api/sessions/s?limit=1").await;
    assert_eq!(page.ok()["next_offset"], 1, "{page:?}");
    let message = api
        .get("/api/sessions/nope")
        .await
        .error(StatusCode::NOT_FOUND, "not_found");
    assert!(message.contains("GET /api/sessions"), "{message}");
    let message = api
        .get("/api/sessions/s?fields=bogus")
        .await
        .error(StatusCode::BAD_REQUEST, "invalid_argument");
    assert!(message.contains("unknown field \"bogus\""), "{message}");

    let tags_path = format!("/api/heaps/{heap}/tags");
    let tags = api.get(&tags_path).await;
    assert_eq!(tags.ok()["tags"], json!({ "step": "two" }));
    let put = |body: Value| api.send(api.client.put(api.server.url(&tags_path)).json(&body));
    let replaced = put(json!({ "tags": { "a": "1", "b": "2" } })).await;
    assert_eq!(
        replaced.ok(),
        &json!({ "heap": heap, "tags": { "a": "1", "b": "2" } })
    );
    let message = put(json!({ "tags": { "k": 1 } }))
        .await
        .error(StatusCode::BAD_REQUEST, "invalid_argument");
    assert!(message.contains("tags"), "{message}");
    let message = put(json!([{ "a": "1" }]))
        .await
        .error(StatusCode::BAD_REQUEST, "invalid_argument");
    assert!(message.contains("expected a JSON object"), "{message}");

    let found = api.get("/api/heaps?a=1").await;
    assert_eq!(
        found.ok()["heaps"],
        json!([{ "heap": heap, "tags": { "a": "1", "b": "2" } }])
    );
    assert_eq!(
        (
            found.body["total"].clone(),
            found.body["next_offset"].clone()
        ),
        (json!(1), Value::Null)
    );
    let paged = api
        .post_json(
            "/api/heaps/query",
            json!({ "tags": { "a": "1" }, "limit": 1 }),
        )
        .await;
    assert_eq!(paged.ok()["heaps"], found.body["heaps"]);
    assert_eq!(paged.body["total"], 1);
    let beyond = api
        .post_json("/api/heaps/query", json!({ "tags": {}, "offset": 5 }))
        .await;
    assert_eq!(beyond.ok()["heaps"], json!([]));
    api.post_json("/api/heaps/query", json!({ "tags": {}, "limit": 0 }))
        .await
        .error(StatusCode::BAD_REQUEST, "invalid_argument");
    // offset and limit page the GET too (they were read as tags, and
    // `?limit=1` found nothing).
    let limited = api.get("/api/heaps?a=1&limit=1").await;
    assert_eq!(limited.ok()["heaps"], found.body["heaps"]);
    let past = api.get("/api/heaps?offset=5").await;
    assert_eq!(
        (past.ok()["heaps"].clone(), past.body["total"].clone()),
        (json!([]), json!(1))
    );
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("offset=-1", "offset"),
        ("limit=1&limit=2", "limit"),
    ] {
        let message = api
            .get(&format!("/api/heaps?{query}"))
            .await
            .error(StatusCode::BAD_REQUEST, "invalid_argument");
        assert!(
            message.contains(&format!("`{field}`")),
            "{query}: {message}"
        );
    }
    let none = api.get("/api/heaps?a=2").await;
    assert_eq!(none.ok()["heaps"], json!([]));
    api.get("/api/heaps?a=1&a=2")
        .await
        .error(StatusCode::BAD_REQUEST, "invalid_argument");

    let delete = |path: String| api.send(api.client.delete(api.server.url(&path)));
    let remaining = delete(format!("{tags_path}/a")).await;
    assert_eq!(remaining.ok()["tags"], json!({ "b": "2" }));
    let remaining = delete(tags_path.clone()).await;
    assert_eq!(remaining.ok()["tags"], json!({}));
    assert_eq!(api.get(&tags_path).await.ok()["tags"], json!({}));

    api.get("/api/heaps/..%2F..%2Fetc%2Fpasswd/tags")
        .await
        .error(StatusCode::BAD_REQUEST, "invalid_argument");
    let unknown = "0".repeat(64);
    let message = api
        .send(
            api.client
                .put(api.server.url(&format!("/api/heaps/{unknown}/tags")))
                .json(&json!({ "tags": { "k": "v" } })),
        )
        .await
        .error(StatusCode::NOT_FOUND, "not_found");
    assert_eq!(message, format!("heap not found: {unknown}"));
}

/// Workers that cannot start (here V8 aborts at boot under a fatal flag)
/// make every execution fail, so `/readyz` says not ready, with the reason,
/// and executions fail in words; `/healthz` still answers.
#[tokio::test]
async fn readyz_is_503_while_no_worker_can_start() {
    let api = Api {
        server: HttpServer::start_with(
            &["--http-port", "0"],
            &["--stateless"],
            &[("MCP_V8_V8_FLAGS", "--stack-size=1")],
            None,
        )
        .await,
        client: Client::new(),
    };
    let started = Instant::now();
    let message = loop {
        let ready = api.get("/readyz").await;
        if ready.status == StatusCode::SERVICE_UNAVAILABLE {
            break ready.error(StatusCode::SERVICE_UNAVAILABLE, "not_ready");
        }
        assert!(started.elapsed() < DEADLINE, "/readyz stayed ready");
        tokio::time::sleep(POLL_INTERVAL).await;
    };
    assert!(
        message.contains("no worker process can be started"),
        "{message}"
    );
    let reply = api.post_json("/api/exec", json!({ "code": "1 + 1" })).await;
    assert_eq!(reply.ok()["status"], "failed", "{reply:?}");
    let error = reply.body["error"].as_str().unwrap_or_default();
    assert!(error.contains("no worker process"), "{reply:?}");
    assert_eq!(api.get("/healthz").await.status, StatusCode::OK);
}

/// `GET /api/executions` answers a page, like `list_executions`.
#[tokio::test]
async fn execution_listings_are_paged() {
    let api = Api::start(&["--stateless"]).await;
    for n in 0..3 {
        api.post_json("/api/exec", json!({ "code": format!("{n}") }))
            .await
            .ok();
    }
    let page = api.get("/api/executions?offset=1&limit=1").await;
    assert_eq!(page.ok()["total"], 3, "{page:?}");
    assert_eq!(page.body["next_offset"], 2, "{page:?}");
    assert_eq!(page.body["executions"].as_array().map(Vec::len), Some(1));
    let all = api.get("/api/executions").await;
    assert_eq!(all.ok()["executions"].as_array().map(Vec::len), Some(3));
    assert_eq!(all.body["next_offset"], Value::Null);
    api.get("/api/executions?limit=0")
        .await
        .error(StatusCode::BAD_REQUEST, "invalid_argument");
}

/// A stateless server keeps no sessions or tags, and says so.
#[tokio::test]
async fn a_stateless_server_answers_state_routes_with_404() {
    let api = Api::start(&["--stateless"]).await;
    for path in ["/api/sessions", "/api/heaps"] {
        let message = api
            .get(path)
            .await
            .error(StatusCode::NOT_FOUND, "not_found");
        assert!(message.contains("stateless"), "{path}: {message}");
    }
}
