//! Bearer authentication on the HTTP transports: static tokens (flag, file,
//! environment) and JWTs checked against a JWKS this test serves itself.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use rmcp::ServiceExt;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

use common::DEADLINE;
use common::http::{HttpServer, initialize_request, post_mcp};

const ISSUER: &str = "https://issuer.test/";
const AUDIENCE: &str = "mcp-v8-tests";

/// `initialize` with `token` (or none); returns the status and the
/// `WWW-Authenticate` header.
async fn initialize_as(server: &HttpServer, token: Option<&str>) -> (StatusCode, Option<String>) {
    let client = reqwest::Client::new();
    let response = post_mcp(
        &client,
        &server.url("/mcp"),
        None,
        token,
        &initialize_request("2025-06-18"),
    )
    .await;
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|value| value.to_str().expect("ascii").to_owned());
    (response.status(), challenge)
}

async fn assert_accepts(server: &HttpServer, token: &str) {
    let (status, _) = initialize_as(server, Some(token)).await;
    assert_eq!(status, StatusCode::OK, "token {token:?} was refused");
}

/// Asserts a 401 whose challenge has `invalid_token` and mentions `why`.
async fn assert_refuses(server: &HttpServer, token: &str, why: &str) {
    let (status, challenge) = initialize_as(server, Some(token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{why}: token accepted");
    let challenge = challenge.expect("a WWW-Authenticate header");
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(
        challenge.contains(why),
        "{challenge} should mention {why:?}"
    );
}

/// No token: 401 with a bare challenge; probes stay open.
async fn assert_requires_a_token(server: &HttpServer) -> String {
    let (status, challenge) = initialize_as(server, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let challenge = challenge.expect("a WWW-Authenticate header");
    assert!(
        challenge.starts_with("Bearer realm=\"mcp-v8\""),
        "{challenge}"
    );
    assert!(!challenge.contains("error="), "{challenge}");
    let health = reqwest::get(server.url("/healthz"))
        .await
        .expect("GET /healthz");
    assert_ne!(
        health.status(),
        StatusCode::UNAUTHORIZED,
        "/healthz is open"
    );
    challenge
}

#[tokio::test]
async fn static_tokens_from_flags() {
    let server = HttpServer::start(&["--auth-tokens", "first-token,second-token"]).await;
    let challenge = assert_requires_a_token(&server).await;
    assert!(!challenge.contains("resource_metadata"), "{challenge}");
    assert_accepts(&server, "first-token").await;
    assert_accepts(&server, "second-token").await;
    assert_refuses(&server, "third-token", "not valid").await;
    assert_refuses(&server, "first-toke", "not valid").await;

    let response = reqwest::Client::new()
        .post(server.url("/mcp"))
        .header("authorization", "Basic Zmlyc3QtdG9rZW4=")
        .json(&initialize_request("2025-06-18"))
        .send()
        .await
        .expect("POST");
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "only Bearer counts"
    );

    // rmcp's own client, with the token as its auth header.
    let config = StreamableHttpClientTransportConfig::with_uri(server.url("/mcp"))
        .auth_header("second-token");
    let client = tokio::time::timeout(
        DEADLINE,
        ().serve(StreamableHttpClientTransport::from_config(config)),
    )
    .await
    .expect("handshake in time")
    .expect("MCP handshake with a token");
    let tools = client.list_all_tools().await.expect("tools/list");
    assert!(!tools.is_empty());
    client.cancel().await.expect("close");

    let no_metadata = reqwest::get(server.url("/.well-known/oauth-protected-resource"))
        .await
        .expect("GET metadata");
    assert_eq!(
        no_metadata.status(),
        StatusCode::NOT_FOUND,
        "only with JWT auth"
    );
    // Discovery documents we do not serve are 404, not 401: clients probing
    // for them treat only 404 as "not here".
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let response = reqwest::get(server.url(path)).await.expect("GET");
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }

    // Two Authorization headers: which one counts would depend on who reads
    // them, so neither does.
    let mut two = reqwest::header::HeaderMap::new();
    two.append(
        "authorization",
        "Bearer first-token".parse().expect("value"),
    );
    two.append("authorization", "Bearer wrong".parse().expect("value"));
    let response = reqwest::Client::new()
        .post(server.url("/mcp"))
        .headers(two)
        .header("accept", common::http::MCP_ACCEPT)
        .json(&initialize_request("2025-06-18"))
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("a JSON error");
    assert_eq!(body["error"]["code"], "invalid_request", "{body}");
}

/// `/openapi.json` declares the bearer scheme, and which operations are open
/// to all: exactly those a server with authentication serves without a token.
#[tokio::test]
async fn the_openapi_document_says_which_routes_need_the_token() {
    let server = HttpServer::start(&["--auth-tokens", "doc-token"]).await;
    let client = reqwest::Client::new();
    let document: Value = client
        .get(server.url("/openapi.json"))
        .send()
        .await
        .expect("GET /openapi.json")
        .json()
        .await
        .expect("a JSON document");
    let scheme = &document["components"]["securitySchemes"]["bearer"];
    assert_eq!(scheme["type"], "http", "{scheme}");
    assert_eq!(scheme["scheme"], "bearer", "{scheme}");
    assert_eq!(
        document["security"],
        json!([{}, { "bearer": [] }]),
        "a token is optional in general: auth is off by default"
    );

    let paths = document["paths"].as_object().expect("paths");
    let mut open = Vec::new();
    for (path, operations) in paths {
        // Paths with parameters need real ids; the rest are enough to tell.
        let Some(operation) = operations.get("get").filter(|_| !path.contains('{')) else {
            continue;
        };
        let public = operation["security"] == json!([{}]);
        let status = client
            .get(server.url(path))
            .send()
            .await
            .expect("GET")
            .status();
        assert_eq!(
            status == StatusCode::UNAUTHORIZED,
            !public,
            "{path}: {status}, while the document says public = {public}"
        );
        if public {
            open.push(path.as_str());
        }
    }
    open.sort_unstable();
    assert_eq!(open, ["/healthz", "/openapi.json", "/readyz"]);
}

#[tokio::test]
async fn static_tokens_from_a_file_and_the_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("tokens");
    std::fs::write(&file, "# CI\nfile-token\n\n").expect("write tokens");
    let file = file.to_str().expect("utf-8 path");
    let server = HttpServer::start(&["--auth-tokens-file", file]).await;
    assert_requires_a_token(&server).await;
    assert_accepts(&server, "file-token").await;
    assert_refuses(&server, "# CI", "not valid").await;

    let server = HttpServer::start_with(
        &["--http-port", "0"],
        &[],
        &[("MCP_V8_AUTH_TOKENS", "env-one,env-two")],
        None,
    )
    .await;
    assert_requires_a_token(&server).await;
    assert_accepts(&server, "env-one").await;
    assert_accepts(&server, "env-two").await;
    assert_refuses(&server, "env-one,env-two", "not valid").await;
}

#[tokio::test]
async fn sse_transport_requires_the_token_too() {
    let server = HttpServer::start_with(
        &["--sse-port", "0"],
        &["--auth-tokens", "sse-token"],
        &[],
        None,
    )
    .await;
    let client = reqwest::Client::new();
    let refused = client
        .get(server.url("/sse"))
        .send()
        .await
        .expect("GET /sse");
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let refused = client
        .post(server.url("/message?sessionId=x"))
        .json(&json!({}))
        .send()
        .await
        .expect("POST /message");
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let accepted = client
        .get(server.url("/sse"))
        .bearer_auth("sse-token")
        .send()
        .await
        .expect("GET /sse");
    assert_eq!(accepted.status(), StatusCode::OK);
}

// ---- JWT -------------------------------------------------------------------

/// An Ed25519 signing key with its key id.
struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    /// The public half, as a JWK.
    jwk: Value,
}

impl SigningKey {
    fn generate(kid: &str) -> Self {
        let mut seed = [0u8; 32];
        seed[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        seed[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        let public = ed25519_dalek::SigningKey::from_bytes(&seed)
            .verifying_key()
            .to_bytes();
        // PKCS#8 v1 wrapping of an Ed25519 seed (RFC 8410), what
        // jsonwebtoken's EncodingKey::from_ed_der expects.
        let mut der = vec![
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        der.extend_from_slice(&seed);
        Self {
            kid: kid.to_owned(),
            encoding: EncodingKey::from_ed_der(&der),
            jwk: json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "x": URL_SAFE_NO_PAD.encode(public),
                "kid": kid,
                "alg": "EdDSA",
                "use": "sig",
            }),
        }
    }

    /// A token with `claims`, signed by this key and naming `kid`.
    fn sign_as(&self, kid: &str, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("sign a JWT")
    }

    fn sign(&self, claims: &Value) -> String {
        self.sign_as(&self.kid, claims)
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// Claims that pass every check, for one hour.
fn good_claims() -> Value {
    json!({ "iss": ISSUER, "aud": AUDIENCE, "sub": "tester", "iat": now(), "exp": now() + 3600 })
}

/// A JWKS endpoint on 127.0.0.1 that counts its fetches.
struct JwksServer {
    addr: SocketAddr,
    fetches: Arc<AtomicUsize>,
}

impl JwksServer {
    async fn serve(keys: Vec<Value>) -> Self {
        let fetches = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&fetches);
        let document = json!({ "keys": keys });
        let app = axum::Router::new().route(
            "/jwks.json",
            axum::routing::get(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                let document = document.clone();
                async move { axum::Json(document) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the JWKS server");
        let addr = listener.local_addr().expect("JWKS address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, fetches }
    }

    fn url(&self) -> String {
        format!("http://{}/jwks.json", self.addr)
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

async fn start_with_jwt(jwks: &JwksServer, extra: &[&str]) -> HttpServer {
    let url = jwks.url();
    let mut args = vec![
        "--auth-jwks-url",
        url.as_str(),
        "--auth-issuer",
        ISSUER,
        "--auth-audience",
        AUDIENCE,
    ];
    args.extend_from_slice(extra);
    HttpServer::start(&args).await
}

#[tokio::test]
async fn jwts_are_checked_against_the_jwks() {
    let key = SigningKey::generate("key-1");
    let stranger = SigningKey::generate("key-1");
    let jwks = JwksServer::serve(vec![key.jwk.clone()]).await;
    let server = start_with_jwt(&jwks, &[]).await;

    let challenge = assert_requires_a_token(&server).await;
    let metadata_url = format!(
        "http://{}/.well-known/oauth-protected-resource/mcp",
        server.addr
    );
    assert!(
        challenge.contains(&format!("resource_metadata=\"{metadata_url}\"")),
        "{challenge}"
    );

    assert_accepts(&server, &key.sign(&good_claims())).await;

    let mut expired = good_claims();
    expired["exp"] = json!(now() - 3600);
    assert_refuses(&server, &key.sign(&expired), "expired").await;

    let mut early = good_claims();
    early["nbf"] = json!(now() + 3600);
    assert_refuses(&server, &key.sign(&early), "not valid yet").await;

    let mut wrong_audience = good_claims();
    wrong_audience["aud"] = json!("someone-else");
    assert_refuses(&server, &key.sign(&wrong_audience), "audience").await;

    let mut wrong_issuer = good_claims();
    wrong_issuer["iss"] = json!("https://evil.example/");
    assert_refuses(&server, &key.sign(&wrong_issuer), "issuer").await;

    let mut no_expiry = good_claims();
    no_expiry.as_object_mut().expect("object").remove("exp");
    assert_refuses(&server, &key.sign(&no_expiry), "exp").await;

    // Same kid, different key: the signature cannot verify.
    assert_refuses(&server, &stranger.sign(&good_claims()), "signature").await;

    // A key id the key set, fetched moments ago, lacks may be one the
    // authorization server has just added: 503 until the set may be fetched
    // again (a 401 would make the client throw a good token away).
    let fetches_before = jwks.fetches();
    for kid in ["key-2", "key-3", "key-4"] {
        let response = post_mcp(
            &reqwest::Client::new(),
            &server.url("/mcp"),
            None,
            Some(&key.sign_as(kid, &good_claims())),
            &initialize_request("2025-06-18"),
        )
        .await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{kid}");
        let retry_after: u64 = response.headers()["retry-after"]
            .to_str()
            .ok()
            .and_then(|value| value.parse().ok())
            .expect("a Retry-After in seconds");
        assert!((1..=30).contains(&retry_after), "{retry_after}");
        let body: Value = response.json().await.expect("a JSON error");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("fetched again in"), "{body}");
    }
    assert!(
        jwks.fetches() <= fetches_before + 1,
        "unknown key ids refetch the JWKS at most once per 30 s ({} fetches)",
        jwks.fetches()
    );

    assert_refuses(&server, "not.a.jwt", "well-formed").await;
    assert_refuses(&server, "opaque-token", "well-formed").await;
    // A token signed with HMAC, using the public key as the secret.
    let hmac = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &good_claims(),
        &EncodingKey::from_secret(key.jwk["x"].as_str().expect("x").as_bytes()),
    )
    .expect("sign HS256");
    assert_refuses(&server, &hmac, "HS256").await;
}

#[tokio::test]
async fn jwt_and_static_tokens_combine() {
    let key = SigningKey::generate("k");
    let jwks = JwksServer::serve(vec![key.jwk.clone()]).await;
    let server = start_with_jwt(&jwks, &["--auth-tokens", "ops-token"]).await;
    assert_accepts(&server, "ops-token").await;
    assert_accepts(&server, &key.sign(&good_claims())).await;
}

#[tokio::test]
async fn protected_resource_metadata_is_served_with_jwt_auth() {
    let key = SigningKey::generate("k");
    let jwks = JwksServer::serve(vec![key.jwk.clone()]).await;
    let server = start_with_jwt(&jwks, &[]).await;
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let response = reqwest::get(server.url(path)).await.expect("GET metadata");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let metadata: Value = response.json().await.expect("JSON metadata");
        assert_eq!(metadata["resource"], format!("http://{}/mcp", server.addr));
        assert_eq!(metadata["authorization_servers"], json!([ISSUER]));
        assert_eq!(metadata["bearer_methods_supported"], json!(["header"]));
    }

    let pinned = start_with_jwt(
        &jwks,
        &[
            "--auth-resource",
            "https://mcp.example.com/mcp",
            "--auth-authorization-servers",
            "https://login.example.com,https://backup.example.com",
        ],
    )
    .await;
    let metadata: Value = reqwest::get(pinned.url("/.well-known/oauth-protected-resource"))
        .await
        .expect("GET metadata")
        .json()
        .await
        .expect("JSON metadata");
    assert_eq!(metadata["resource"], "https://mcp.example.com/mcp");
    assert_eq!(
        metadata["authorization_servers"],
        json!(["https://login.example.com", "https://backup.example.com"])
    );
    let (_, challenge) = initialize_as(&pinned, None).await;
    let challenge = challenge.expect("a challenge");
    assert!(
        challenge.contains(
            "resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\""
        ),
        "{challenge}"
    );
}

/// A JWKS that cannot be fetched is the server's problem, not the token's:
/// 503 with `Retry-After`, so the client keeps its token; static tokens
/// still work.
#[tokio::test]
async fn an_unreachable_jwks_is_503_not_401() {
    let key = SigningKey::generate("k1");
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/jwks.json", closed.local_addr().expect("addr"));
    drop(closed);
    let server = HttpServer::start(&[
        "--auth-jwks-url",
        &url,
        "--auth-issuer",
        ISSUER,
        "--auth-audience",
        AUDIENCE,
        "--auth-tokens",
        "ops-token",
    ])
    .await;
    let response = post_mcp(
        &reqwest::Client::new(),
        &server.url("/mcp"),
        None,
        Some(&key.sign(&good_claims())),
        &initialize_request("2025-06-18"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "30");
    let body: Value = response.json().await.expect("a JSON error");
    assert_eq!(body["error"]["code"], "auth_unavailable", "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("cannot be reached"), "{body}");
    assert_accepts(&server, "ops-token").await;
}
