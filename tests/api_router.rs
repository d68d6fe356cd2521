//! The HTTP API's router, driven in-process with `tower::ServiceExt::oneshot`
//! against a real executor and real worker processes: every route, its happy
//! path and its errors, without a listening server.

mod common;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use futures::future::BoxFuture;
use serde_json::{Value, json};
use tempfile::TempDir;
use tower::ServiceExt;

use common::{BIN, DEADLINE, POLL_INTERVAL};
use mcp_v8::executor::records::Retention;
use mcp_v8::executor::{Executor, ExecutorConfig};
use mcp_v8::transport::api::{self, AlwaysReady, ApiState, Readiness};

/// A router over its own executor and state directory.
struct Api {
    router: Router,
    executor: Executor,
    _state: TempDir,
}

struct Options {
    max_concurrent: usize,
    max_queued: usize,
    readiness: Arc<dyn Readiness>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            max_concurrent: 2,
            max_queued: 16,
            readiness: Arc::new(AlwaysReady),
        }
    }
}

/// A readiness check that always fails, as a broken storage backend would.
struct NeverReady;

impl Readiness for NeverReady {
    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async { Err("storage unreachable: connection refused".to_owned()) })
    }
}

/// A readiness check that never answers, as a hung storage backend would.
struct HungReadiness;

impl Readiness for HungReadiness {
    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(std::future::pending())
    }
}

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
        assert_eq!(
            self.headers[header::CONTENT_TYPE],
            "application/json",
            "{self:?}"
        );
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

impl Api {
    async fn start() -> Self {
        Self::with(Options::default()).await
    }

    async fn with(options: Options) -> Self {
        let state = tempfile::tempdir().expect("a temporary state directory");
        let executor = Executor::start(ExecutorConfig {
            state_dir: state.path().to_path_buf(),
            worker_exe: BIN.into(),
            max_concurrent: options.max_concurrent,
            max_queued: options.max_queued,
            default_heap_mb: 8,
            heap_cap_mb: 64,
            default_timeout_secs: 30,
            max_timeout_secs: 30,
            max_output_bytes: 16 * 1024 * 1024,
            max_code_bytes: 1024 * 1024,
            retention: Retention {
                max_count: 10_000,
                max_age: None,
            },
            heap_store: None,
            sessions: None,
        })
        .await
        .expect("start the executor");
        let router = api::router(ApiState::new(executor.clone(), options.readiness));
        Self {
            router,
            executor,
            _state: state,
        }
    }

    async fn send(&self, request: Request<Body>) -> Reply {
        send(self.router.clone(), request).await
    }

    async fn request(
        &self,
        method: Method,
        uri: &str,
        content_type: Option<&str>,
        body: impl Into<Body>,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        self.send(request.body(body.into()).expect("a valid request"))
            .await
    }

    async fn get(&self, uri: &str) -> Reply {
        self.request(Method::GET, uri, None, Body::empty()).await
    }

    async fn post(&self, uri: &str) -> Reply {
        self.request(Method::POST, uri, None, Body::empty()).await
    }

    async fn post_json(&self, uri: &str, body: Value) -> Reply {
        self.request(
            Method::POST,
            uri,
            Some("application/json"),
            body.to_string(),
        )
        .await
    }

    /// `POST /api/exec` with a JSON body; asserts 200 and returns the response.
    async fn exec(&self, body: Value) -> Value {
        self.post_json("/api/exec", body).await.ok().clone()
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

    /// Polls `GET /api/executions/{id}` until `done` holds for the record.
    async fn poll(&self, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let record = self.get(&format!("/api/executions/{id}")).await;
            let record = record.ok();
            if done(record) {
                return record.clone();
            }
            assert!(
                started.elapsed() < DEADLINE,
                "execution {id} not {what} after {DEADLINE:?}: {record}"
            );
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    async fn stop(self) {
        self.executor.shutdown().await;
    }
}

async fn send(router: Router, request: Request<Body>) -> Reply {
    let response = tokio::time::timeout(DEADLINE, router.oneshot(request))
        .await
        .expect("the router answered in time")
        .expect("the router is infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("read the response body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|error| {
            panic!(
                "the body is not JSON ({error}): {}",
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

fn is_final(record: &Value) -> bool {
    common::is_final(record)
}

// ---- POST /api/exec ------------------------------------------------------

#[tokio::test]
async fn exec_json_returns_the_finished_execution_with_its_output() {
    let api = Api::start().await;
    let response = api
        .exec(json!({ "code": "console.log('hello'); console.error('e'); 6 * 7" }))
        .await;
    assert_eq!(response["status"], "completed", "{response}");
    assert_eq!(response["result"], "42");
    assert_eq!(response["error"], Value::Null);
    assert_eq!(response["heap"], Value::Null);
    assert_eq!(response["output"], "hello\ne\n");
    assert_eq!(response["output_truncated"], false);
    assert!(response["duration_ms"].is_u64(), "{response}");
    let id = response["execution_id"].as_str().expect("an id");

    // The execution is recorded like any other.
    let record = api.get(&format!("/api/executions/{id}")).await;
    assert_eq!(record.ok()["result"], "42");
    api.stop().await;
}

#[tokio::test]
async fn exec_accepts_the_script_as_plain_text_or_javascript() {
    let api = Api::start().await;
    for content_type in [
        "text/plain",
        "application/javascript",
        "text/javascript; charset=utf-8",
    ] {
        let reply = api
            .request(
                Method::POST,
                "/api/exec",
                Some(content_type),
                "const x: number = 20; x + 1",
            )
            .await;
        let response = reply.ok();
        assert_eq!(
            response["status"], "completed",
            "{content_type}: {response}"
        );
        assert_eq!(response["result"], "21", "{content_type}");
    }
    api.stop().await;
}

#[tokio::test]
async fn exec_of_failing_code_is_200_with_the_failure() {
    let api = Api::start().await;
    let response = api
        .exec(json!({ "code": "console.log('before'); throw new Error('boom')" }))
        .await;
    assert_eq!(response["status"], "failed", "{response}");
    assert_eq!(response["result"], Value::Null);
    assert!(
        response["error"]
            .as_str()
            .is_some_and(|e| e.contains("boom")),
        "{response}"
    );
    assert_eq!(response["output"], "before\n");

    let response = api
        .exec(json!({ "code": "while (true) {}", "execution_timeout_secs": 1 }))
        .await;
    assert_eq!(response["status"], "timed_out", "{response}");
    api.stop().await;
}

#[tokio::test]
async fn exec_returns_the_first_64_kib_of_output_and_says_it_is_truncated() {
    let api = Api::start().await;
    // 2000 lines of 100 bytes: about 200 KB.
    let response = api
        .exec(json!({ "code": "for (let i = 0; i < 2000; i++) console.log('x'.repeat(99))" }))
        .await;
    assert_eq!(response["status"], "completed", "{response}");
    let output = response["output"].as_str().expect("output is a string");
    assert_eq!(output.len() as u64, api::EXEC_OUTPUT_BYTES);
    assert!(output.starts_with(&format!("{}\n", "x".repeat(99))));
    assert_eq!(response["output_truncated"], true);
    api.stop().await;
}

#[tokio::test]
async fn exec_refuses_other_media_types_with_415() {
    let api = Api::start().await;
    for content_type in [
        None,
        Some("application/x-www-form-urlencoded"),
        Some("text/html"),
        Some("text/plain; charset=iso-8859-1"),
    ] {
        let reply = api
            .request(Method::POST, "/api/exec", content_type, "1 + 1")
            .await;
        let message = reply.error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
        assert!(message.contains("application/json"), "{message}");
    }
    let reply = api
        .request(Method::POST, "/api/executions", Some("image/png"), "1")
        .await;
    reply.error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    api.stop().await;
}

#[tokio::test]
async fn bad_input_is_400_and_names_the_field() {
    let api = Api::start().await;
    let cases = [
        (json!({}), "code"),
        (json!({ "code": 1 }), "code"),
        (
            json!({ "code": "1", "heap_memory_max_mb": "big" }),
            "heap_memory_max_mb",
        ),
        (
            json!({ "code": "1", "execution_timeout_secs": -1 }),
            "execution_timeout_secs",
        ),
        (json!({ "code": "1", "tags": ["a"] }), "tags"),
        (json!({ "code": "1", "timeout_secs": 5 }), "timeout_secs"),
        // serde's sequence form of a struct is not a request.
        (json!(["1 + 1"]), "expected a JSON object"),
        (json!("1 + 1"), "expected a JSON object"),
        // Validated by the executor against the server's limits.
        (
            json!({ "code": "1", "heap_memory_max_mb": 100_000 }),
            "heap_memory_max_mb",
        ),
        (
            json!({ "code": "1", "execution_timeout_secs": 31 }),
            "execution_timeout_secs",
        ),
    ];
    for uri in ["/api/exec", "/api/executions"] {
        for (body, field) in &cases {
            let reply = api.post_json(uri, body.clone()).await;
            let message = reply.error(StatusCode::BAD_REQUEST, "invalid_argument");
            assert!(message.contains(field), "{uri} {body}: {message}");
        }
    }

    let reply = api
        .request(
            Method::POST,
            "/api/exec",
            Some("application/json"),
            "{\"code\": ",
        )
        .await;
    reply.error(StatusCode::BAD_REQUEST, "invalid_argument");

    let reply = api
        .request(
            Method::POST,
            "/api/exec",
            Some("text/plain"),
            vec![0xff, 0xfe],
        )
        .await;
    let message = reply.error(StatusCode::BAD_REQUEST, "invalid_argument");
    assert!(message.contains("code"), "{message}");

    // Nothing was submitted by any of these.
    assert_eq!(
        api.get("/api/executions").await.ok()["executions"],
        json!([])
    );
    api.stop().await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_json_413() {
    let api = Api::start().await;
    let limited = api.router.clone().layer(DefaultBodyLimit::max(1024));
    let big = format!("\"{}\"", "x".repeat(4096));
    for (content_type, body) in [
        ("application/json", format!("{{\"code\": {big}}}")),
        ("text/plain", big.clone()),
    ] {
        let request = Request::post("/api/exec")
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body))
            .expect("a valid request");
        send(limited.clone(), request)
            .await
            .error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    }

    // tower-http's limit, on a body of unknown length, fails the same way.
    let limited = api
        .router
        .clone()
        .layer(tower_http::limit::RequestBodyLimitLayer::new(1024));
    let stream = futures::stream::iter([Ok::<_, std::io::Error>(big.into_bytes())]);
    let request = Request::post("/api/executions")
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from_stream(stream))
        .expect("a valid request");
    send(limited, request)
        .await
        .error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    api.stop().await;
}

#[tokio::test]
async fn a_full_queue_is_429_with_retry_after_until_the_runner_is_cancelled() {
    let api = Api::with(Options {
        max_concurrent: 1,
        max_queued: 0,
        ..Options::default()
    })
    .await;
    let runner = api
        .start_execution(json!({ "code": "while (true) {}", "execution_timeout_secs": 30 }))
        .await;
    api.poll(&runner, "running", |record| record["status"] == "running")
        .await;

    for uri in ["/api/exec", "/api/executions"] {
        let reply = api.post_json(uri, json!({ "code": "1" })).await;
        let message = reply.error(StatusCode::TOO_MANY_REQUESTS, "busy");
        assert_eq!(reply.headers[header::RETRY_AFTER], "1", "{uri}");
        assert!(message.contains("busy"), "{message}");
    }

    let cancelled = api.post(&format!("/api/executions/{runner}/cancel")).await;
    assert_eq!(cancelled.ok()["status"], "cancelled");
    let response = api.exec(json!({ "code": "'free again'" })).await;
    assert_eq!(response["result"], "free again");
    api.stop().await;
}

#[tokio::test]
async fn exec_cancels_the_execution_when_the_client_goes_away() {
    let api = Api::start().await;
    let request = Request::post("/api/exec")
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from("while (true) {}"))
        .expect("a valid request");
    let client = tokio::spawn(api.router.clone().oneshot(request));
    let id = common::poll_until("the execution to run", || {
        api.executor
            .list()
            .into_iter()
            .find(|summary| summary.status.as_str() == "running")
            .map(|summary| summary.execution_id)
    })
    .await;
    client.abort();
    let record = api.poll(&id, "final", is_final).await;
    assert_eq!(record["status"], "cancelled", "{record}");
    api.stop().await;
}

// ---- /api/executions ---------------------------------------------------

#[tokio::test]
async fn async_flow_start_poll_page_list_and_cancel() {
    let api = Api::start().await;
    let code = "for (let i = 0; i < 5; i++) console.log('line ' + i); 'done'";
    let id = api.start_execution(json!({ "code": code })).await;
    let record = api.poll(&id, "final", is_final).await;
    assert_eq!(record["status"], "completed", "{record}");
    assert_eq!(record["result"], "done");
    assert!(record["completed_at"].is_string(), "{record}");

    // Line pages, continuing from next_line_offset.
    let uri = format!("/api/executions/{id}/output");
    let first = api.get(&format!("{uri}?line_limit=2")).await;
    let first = first.ok();
    assert_eq!(first["data"], "line 0\nline 1\n");
    assert_eq!(first["has_more"], true);
    assert_eq!(first["total_lines"], 5);
    assert_eq!(first["status"], "completed");
    let next = first["next_line_offset"].as_u64().expect("a number");
    let rest = api.get(&format!("{uri}?line_offset={next}")).await;
    assert_eq!(rest.ok()["data"], "line 2\nline 3\nline 4\n");
    assert_eq!(rest.ok()["has_more"], false);

    // Byte pages.
    let bytes = api.get(&format!("{uri}?byte_offset=5&byte_limit=3")).await;
    assert_eq!(bytes.ok()["data"], "0\nl");
    assert_eq!(bytes.ok()["next_byte_offset"], 8);

    // The whole output with the defaults.
    let all = api.get(&uri).await;
    assert_eq!(all.ok()["total_bytes"], 35);

    let listed = api.get("/api/executions").await;
    let executions = listed.ok()["executions"]
        .as_array()
        .expect("an array")
        .clone();
    assert_eq!(executions.len(), 1, "{executions:?}");
    assert_eq!(executions[0]["execution_id"], id.as_str());
    assert_eq!(executions[0]["status"], "completed");

    // Cancelling a finished execution returns it unchanged.
    let cancelled = api.post(&format!("/api/executions/{id}/cancel")).await;
    assert_eq!(cancelled.ok()["status"], "completed");

    // A running one ends cancelled, and its output so far stays readable.
    let runner = api
        .start_execution(json!({ "code": "console.log('started'); while (true) {}" }))
        .await;
    api.poll(&runner, "running", |record| record["status"] == "running")
        .await;
    let cancelled = api.post(&format!("/api/executions/{runner}/cancel")).await;
    let cancelled = cancelled.ok();
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    assert!(cancelled["error"].is_string(), "{cancelled}");
    let output = api.get(&format!("/api/executions/{runner}/output")).await;
    assert_eq!(output.ok()["data"], "started\n");
    assert_eq!(output.ok()["status"], "cancelled");
    api.stop().await;
}

#[tokio::test]
async fn output_query_errors_are_400_and_name_the_parameter() {
    let api = Api::start().await;
    let id = api.exec(json!({ "code": "1" })).await["execution_id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let uri = format!("/api/executions/{id}/output");
    for (query, field) in [
        ("line_offset=abc", "line_offset"),
        ("byte_limit=-1", "byte_limit"),
        ("line_limit=10&byte_limit=10", "byte"),
        ("line_limit=20000", "line_limit"),
        ("offset=3", "offset"),
    ] {
        let reply = api.get(&format!("{uri}?{query}")).await;
        let message = reply.error(StatusCode::BAD_REQUEST, "invalid_argument");
        assert!(message.contains(field), "{query}: {message}");
    }
    api.stop().await;
}

#[tokio::test]
async fn unknown_ids_and_routes_are_json_404_and_wrong_methods_405() {
    let api = Api::start().await;
    let missing = "00000000-0000-0000-0000-000000000000";
    let replies = [
        api.get(&format!("/api/executions/{missing}")).await,
        api.get(&format!("/api/executions/{missing}/output")).await,
        api.post(&format!("/api/executions/{missing}/cancel")).await,
    ];
    for reply in replies {
        let message = reply.error(StatusCode::NOT_FOUND, "not_found");
        assert!(message.contains(missing), "{message}");
    }

    let message = api
        .get("/api/nothing-here")
        .await
        .error(StatusCode::NOT_FOUND, "not_found");
    assert!(message.contains("/api/nothing-here"), "{message}");

    let reply = api.get("/api/exec").await;
    reply.error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    assert_eq!(reply.headers[header::ALLOW], "POST");
    let reply = api
        .request(Method::DELETE, "/api/executions", None, Body::empty())
        .await;
    reply.error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    let allow = reply.headers[header::ALLOW].to_str().expect("ASCII");
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    api.stop().await;
}

// ---- health, version, shutdown -------------------------------------------

#[tokio::test]
async fn health_ready_and_version() {
    let api = Api::start().await;
    assert_eq!(api.get("/healthz").await.ok(), &json!({ "status": "ok" }));
    assert_eq!(api.get("/readyz").await.ok(), &json!({ "status": "ok" }));
    let version = api.get("/api/version").await;
    let version = version.ok();
    assert_eq!(version["name"], "mcp-v8");
    assert_eq!(version["version"], env!("CARGO_PKG_VERSION"));
    let v8 = version["v8_version"].as_str().expect("a V8 version");
    assert!(
        v8.split('.')
            .next()
            .is_some_and(|major| major.parse::<u32>().is_ok()),
        "{v8}"
    );
    api.stop().await;
}

#[tokio::test]
async fn readyz_is_503_with_the_reason_when_a_dependency_is_down() {
    let api = Api::with(Options {
        readiness: Arc::new(NeverReady),
        ..Options::default()
    })
    .await;
    let message = api
        .get("/readyz")
        .await
        .error(StatusCode::SERVICE_UNAVAILABLE, "not_ready");
    assert!(message.contains("storage unreachable"), "{message}");
    // Liveness does not depend on it.
    assert_eq!(api.get("/healthz").await.status, StatusCode::OK);
    api.stop().await;
}

/// A readiness check that counts how often it is asked.
#[derive(Default)]
struct CountingReadiness(std::sync::atomic::AtomicUsize);

impl Readiness for CountingReadiness {
    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Box::pin(async {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            Ok(())
        })
    }
}

/// `/readyz` is open to anyone, and a directory store's check writes a file:
/// a flood of probes runs the check once per `READINESS_TTL`, not per probe.
#[tokio::test]
async fn readyz_checks_dependencies_at_most_once_a_second() {
    let counting = Arc::new(CountingReadiness::default());
    let api = Api::with(Options {
        readiness: counting.clone(),
        ..Options::default()
    })
    .await;
    let probes = (0..50).map(|_| api.get("/readyz"));
    for reply in futures::future::join_all(probes).await {
        assert_eq!(reply.ok(), &json!({ "status": "ok" }));
    }
    assert_eq!(counting.0.load(std::sync::atomic::Ordering::SeqCst), 1);
    tokio::time::sleep(api::READINESS_TTL).await;
    api.get("/readyz").await.ok();
    assert_eq!(counting.0.load(std::sync::atomic::Ordering::SeqCst), 2);
    api.stop().await;
}

#[tokio::test]
async fn readyz_gives_up_on_a_check_that_hangs() {
    let api = Api::with(Options {
        readiness: Arc::new(HungReadiness),
        ..Options::default()
    })
    .await;
    let message = api
        .get("/readyz")
        .await
        .error(StatusCode::SERVICE_UNAVAILABLE, "not_ready");
    assert!(message.contains("did not answer"), "{message}");
    api.stop().await;
}

#[tokio::test]
async fn a_draining_server_is_not_ready_and_refuses_work_with_503() {
    let api = Api::start().await;
    api.executor.shutdown().await;
    api.get("/readyz")
        .await
        .error(StatusCode::SERVICE_UNAVAILABLE, "shutting_down");
    for uri in ["/api/exec", "/api/executions"] {
        api.post_json(uri, json!({ "code": "1" }))
            .await
            .error(StatusCode::SERVICE_UNAVAILABLE, "shutting_down");
    }
    assert_eq!(api.get("/healthz").await.status, StatusCode::OK);
    // The readiness probe never left an execution behind.
    assert_eq!(
        api.get("/api/executions").await.ok()["executions"],
        json!([])
    );
}

// ---- OpenAPI -------------------------------------------------------------

/// The routes the issue specifies, as (method, OpenAPI path).
const ROUTES: [(&str, &str); 18] = [
    ("post", "/api/exec"),
    ("post", "/api/executions"),
    ("get", "/api/executions"),
    ("get", "/api/executions/{id}"),
    ("get", "/api/executions/{id}/output"),
    ("post", "/api/executions/{id}/cancel"),
    ("get", "/api/sessions"),
    ("get", "/api/sessions/{session}"),
    ("get", "/api/heaps"),
    ("post", "/api/heaps/query"),
    ("get", "/api/heaps/{heap}/tags"),
    ("put", "/api/heaps/{heap}/tags"),
    ("delete", "/api/heaps/{heap}/tags"),
    ("delete", "/api/heaps/{heap}/tags/{key}"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/api/version"),
    ("get", "/openapi.json"),
];

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// The (method, path) operations an OpenAPI document declares.
fn operations(document: &Value) -> Vec<(String, String)> {
    let paths = document["paths"].as_object().expect("paths is an object");
    let mut operations: Vec<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| {
            let item = item.as_object().expect("a path item is an object");
            item.keys()
                .filter(|key| {
                    METHODS.contains(&key.as_str()) || *key == "head" || *key == "options"
                })
                .map(|method| (method.clone(), path.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    operations.sort();
    operations
}

#[tokio::test]
async fn openapi_document_paths_match_the_router_both_ways() {
    let api = Api::start().await;
    let document = api.get("/openapi.json").await.ok().clone();
    assert!(
        document["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.")),
        "{document}"
    );

    // The document declares exactly the specified routes…
    let mut expected: Vec<(String, String)> = ROUTES
        .iter()
        .map(|(method, path)| (method.to_string(), path.to_string()))
        .collect();
    expected.sort();
    assert_eq!(operations(&document), expected);

    // …the router serves every operation it declares…
    let paths: Vec<&String> = document["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .collect();
    for path in paths {
        let uri = path
            .replace("{id}", "no-such-id")
            .replace("{session}", "no-such-session")
            .replace("{heap}", &"ab".repeat(32))
            .replace("{key}", "no-such-key");
        for method in METHODS {
            let declared = document["paths"][path.as_str()].get(method).is_some();
            let request = Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(&uri)
                .body(Body::empty())
                .expect("a valid request");
            let reply = api.send(request).await;
            if declared {
                assert_ne!(
                    reply.status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path}"
                );
                let routed = reply.body["error"]["message"]
                    .as_str()
                    .is_none_or(|message| !message.starts_with("no route"));
                assert!(
                    routed,
                    "{method} {path} is declared but not routed: {reply:?}"
                );
            } else {
                // …and nothing it does not declare.
                assert_eq!(
                    reply.status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path} is routed but not declared: {reply:?}"
                );
            }
        }
    }

    // Every schema a response refers to is defined.
    let text = document.to_string();
    let schemas = document["components"]["schemas"]
        .as_object()
        .expect("component schemas");
    for reference in text.split("\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap_or_default();
        assert!(schemas.contains_key(name), "undefined schema {name}");
    }
    api.stop().await;
}

#[tokio::test]
async fn the_served_document_is_the_generated_one() {
    let api = Api::start().await;
    let served = api.get("/openapi.json").await.ok().clone();
    let generated = serde_json::to_value(api::openapi()).expect("the document serializes");
    assert_eq!(served, generated);
    api.stop().await;
}
