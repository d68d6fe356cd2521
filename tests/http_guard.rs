//! What every HTTP route enforces: the Host/Origin allow-lists against DNS
//! rebinding (403; 400 without exactly one valid Host), the request body
//! limit (413), and the time a client has to send its request's headers and
//! may pause within its body.

mod common;

use reqwest::StatusCode;
use reqwest::header::{HOST, ORIGIN};
use serde_json::{Value, json};

use common::http::{HttpServer, MCP_ACCEPT, initialize_request};

async fn initialize_with(
    server: &HttpServer,
    headers: &[(reqwest::header::HeaderName, &str)],
) -> StatusCode {
    let mut request = reqwest::Client::new()
        .post(server.url("/mcp"))
        .header("accept", MCP_ACCEPT)
        .json(&initialize_request("2025-06-18"));
    for (name, value) in headers {
        request = request.header(name, *value);
    }
    request.send().await.expect("POST /mcp").status()
}

/// Sends `request` as raw bytes on a new connection and returns everything
/// the server sends back until it closes the connection, which it must do
/// within 10 s.
async fn raw_exchange(addr: std::net::SocketAddr, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write");
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut answer),
    )
    .await
    .expect("the server closes the connection")
    .ok();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn foreign_origin_and_host_are_forbidden() {
    let server = HttpServer::start(&[]).await;
    let port = server.addr.port();

    assert_eq!(initialize_with(&server, &[]).await, StatusCode::OK);
    let local_origin = "http://localhost:5173";
    assert_eq!(
        initialize_with(&server, &[(ORIGIN, local_origin)]).await,
        StatusCode::OK
    );

    let response = reqwest::Client::new()
        .post(server.url("/mcp"))
        .header("accept", MCP_ACCEPT)
        .header(ORIGIN, "https://evil.example")
        .json(&initialize_request("2025-06-18"))
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body: Value = response.json().await.expect("JSON error body");
    assert_eq!(body["error"]["code"], "forbidden", "{body}");

    // A second Origin cannot hide behind an allowed first one.
    assert_eq!(
        initialize_with(
            &server,
            &[(ORIGIN, local_origin), (ORIGIN, "https://evil.example")]
        )
        .await,
        StatusCode::FORBIDDEN
    );

    let evil_host = format!("evil.example:{port}");
    assert_eq!(
        initialize_with(&server, &[(HOST, &evil_host)]).await,
        StatusCode::FORBIDDEN
    );
    let rebound = format!("attacker.example:{port}");
    let response = reqwest::Client::new()
        .get(server.url("/mcp"))
        .header(HOST, rebound.as_str())
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "every method");

    // The probes answer whatever name they are reached by: load balancers
    // and Kubernetes send the target's address as Host.
    for probe in ["/healthz", "/readyz"] {
        let response = reqwest::Client::new()
            .get(server.url(probe))
            .header(HOST, "10.0.0.5:8080")
            .send()
            .await
            .expect("GET a probe");
        assert_eq!(response.status(), StatusCode::OK, "{probe}");
    }
}

/// HTTP/1.1 requires exactly one valid `Host` (RFC 9112): a request without
/// one, or with two, is malformed (400), not forbidden.
#[tokio::test]
async fn requests_without_exactly_one_host_are_malformed() {
    let server = HttpServer::start(&["--stateless"]).await;
    let answer = |request: &'static str| raw_exchange(server.addr, request.as_bytes());
    let (without, twice, bad, one) = tokio::join!(
        answer("GET /api/version HTTP/1.1\r\nConnection: close\r\n\r\n"),
        answer(
            "GET /api/version HTTP/1.1\r\nHost: localhost\r\nHost: localhost\r\n\
             Connection: close\r\n\r\n"
        ),
        answer("GET /api/version HTTP/1.1\r\nHost: local host\r\nConnection: close\r\n\r\n"),
        answer("GET /api/version HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
    );
    for (answer, reason) in [
        (&without, "no valid Host"),
        (&twice, "more than one Host"),
        (&bad, "no valid Host"),
    ] {
        assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
        assert!(
            answer.contains(r#""code":"invalid_request""#) && answer.contains(reason),
            "{answer}"
        );
    }
    assert!(one.starts_with("HTTP/1.1 200 OK"), "{one}");
}

#[tokio::test]
async fn allow_lists_come_from_the_config() {
    let server = HttpServer::start(&[
        "--allowed-hosts",
        "mcp.example.com",
        "--allowed-origins",
        "https://app.example.com",
    ])
    .await;
    let port = server.addr.port();
    let host = format!("mcp.example.com:{port}");
    assert_eq!(
        initialize_with(&server, &[(HOST, &host)]).await,
        StatusCode::OK
    );
    assert_eq!(
        initialize_with(&server, &[]).await,
        StatusCode::FORBIDDEN,
        "localhost is no longer in the list"
    );
    assert_eq!(
        initialize_with(
            &server,
            &[(HOST, &host), (ORIGIN, "https://app.example.com")]
        )
        .await,
        StatusCode::OK
    );
    assert_eq!(
        initialize_with(&server, &[(HOST, &host), (ORIGIN, "http://localhost:3000")]).await,
        StatusCode::FORBIDDEN
    );

    let open = HttpServer::start(&["--allowed-hosts", "*", "--allowed-origins", "*"]).await;
    let anything = format!("whatever.example:{}", open.addr.port());
    assert_eq!(
        initialize_with(&open, &[(HOST, &anything), (ORIGIN, "https://x.example")]).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn bad_allow_list_entries_stop_the_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = tokio::process::Command::new(common::BIN)
        .arg("--state-dir")
        .arg(dir.path())
        .args(["--http-port", "0", "--allowed-origins", "localhost:3000"])
        .output()
        .await
        .expect("run the server");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("transport.allowed_origins: \"localhost:3000\" is not a valid entry"),
        "{stderr}"
    );
}

/// A JSON-RPC request whose body is about `size` bytes.
fn padded_request(size: usize) -> Value {
    let mut request = initialize_request("2025-06-18");
    request["params"]["clientInfo"]["padding"] = json!("x".repeat(size));
    request
}

#[tokio::test]
async fn oversized_bodies_get_413_on_streamable_http() {
    let server = HttpServer::start(&["--max-body-bytes", "4096"]).await;
    let client = reqwest::Client::new();
    let post = |body: Value| {
        client
            .post(server.url("/mcp"))
            .header("accept", MCP_ACCEPT)
            .json(&body)
            .send()
    };
    let response = post(padded_request(8192)).await.expect("POST");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // In JSON-RPC's shape, naming the limit, like every refusal of /mcp.
    let body: Value = response.json().await.expect("a JSON body");
    assert_eq!(body["error"]["code"], -32600, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("4096 bytes") && message.contains("max_body_bytes"),
        "{body}"
    );
    let response = post(padded_request(2048)).await.expect("POST");
    assert_eq!(response.status(), StatusCode::OK, "under the limit");
}

/// A connection that sends nothing, or headers a byte at a time, is closed
/// after `transport.request_header_timeout_secs` (it was held forever, and
/// enough of them exhausted the server's file descriptors); a client that
/// sends its request at once is served on the same terms.
#[tokio::test]
async fn slow_or_silent_connections_are_closed() {
    let server = HttpServer::start(&["--stateless", "--request-header-timeout-secs", "1"]).await;
    let closed_within = |partial: &'static [u8]| raw_exchange(server.addr, partial);
    let (silent, partial, whole) = tokio::join!(
        closed_within(b""),
        closed_within(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n"),
        closed_within(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
    );
    assert!(silent.is_empty() && partial.is_empty(), "{partial:?}");
    assert!(whole.starts_with("HTTP/1.1 200 OK"), "{whole}");
}

/// A request whose body stalls for `transport.request_body_timeout_secs` is
/// refused and its connection closed, on the API and on `/mcp` alike (it was
/// held, with its connection, for as long as the client kept it open).
#[tokio::test]
async fn stalled_request_bodies_are_abandoned() {
    let server = HttpServer::start(&["--stateless", "--request-body-timeout-secs", "1"]).await;
    let stalled = |path: &'static str| {
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\n\
             Accept: application/json, text/event-stream\r\n\
             Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"code\":"
        );
        let addr = server.addr;
        async move { raw_exchange(addr, request.as_bytes()).await }
    };
    let (api, mcp) = tokio::join!(stalled("/api/exec"), stalled("/mcp"));
    for answer in [&api, &mcp] {
        assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
        assert!(answer.contains("timeout"), "{answer}");
    }
}

#[tokio::test]
async fn oversized_bodies_get_413_on_sse_messages() {
    let server = HttpServer::start_with(
        &["--sse-port", "0"],
        &["--max-body-bytes", "4096"],
        &[],
        None,
    )
    .await;
    let response = reqwest::Client::new()
        .post(server.url("/message?sessionId=whatever"))
        .json(&padded_request(8192))
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

/// A page of an allowed origin can read the answers (CORS) and the session
/// header; its preflight is answered before authentication, since browsers
/// send it without the token. Other origins stay forbidden.
#[tokio::test]
async fn allowed_origins_get_cors_and_preflights_need_no_token() {
    let server = HttpServer::start(&["--auth-tokens", "cors-token"]).await;
    let http = reqwest::Client::new();
    let origin = "http://localhost:6274";
    let preflight = |origin: &'static str| {
        http.request(reqwest::Method::OPTIONS, server.url("/mcp"))
            .header(ORIGIN, origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type,mcp-session-id",
            )
            .send()
    };
    let answer = preflight(origin).await.expect("preflight");
    assert_eq!(answer.status(), StatusCode::OK);
    let headers = answer.headers();
    assert_eq!(headers["access-control-allow-origin"], origin);
    let allowed_headers = headers["access-control-allow-headers"]
        .to_str()
        .expect("ascii")
        .to_ascii_lowercase();
    assert!(
        allowed_headers.contains("mcp-session-id"),
        "{allowed_headers}"
    );
    assert!(
        allowed_headers.contains("authorization"),
        "{allowed_headers}"
    );
    let methods = headers["access-control-allow-methods"]
        .to_str()
        .expect("ascii");
    assert!(methods.contains("POST"), "{methods}");

    let answer = http
        .post(server.url("/mcp"))
        .header("accept", MCP_ACCEPT)
        .header(ORIGIN, origin)
        .bearer_auth("cors-token")
        .json(&initialize_request("2025-06-18"))
        .send()
        .await
        .expect("initialize");
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.headers()["access-control-allow-origin"], origin);
    let exposed = answer.headers()["access-control-expose-headers"]
        .to_str()
        .expect("ascii")
        .to_ascii_lowercase();
    assert!(exposed.contains("mcp-session-id"), "{exposed}");
    assert!(answer.headers().contains_key("mcp-session-id"));

    // Without the token, only the preflight passes.
    let answer = http
        .post(server.url("/api/exec"))
        .header(ORIGIN, origin)
        .json(&json!({ "code": "1" }))
        .send()
        .await
        .expect("exec");
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(answer.headers()["access-control-allow-origin"], origin);

    let foreign = preflight("https://evil.example").await.expect("preflight");
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    assert!(
        !foreign
            .headers()
            .contains_key("access-control-allow-origin")
    );
}
