//! MCP over HTTP: Streamable HTTP at `/mcp` (`--http-port`), or the legacy
//! HTTP+SSE transport at `/sse` + `/message` (`--sse-port`).
//!
//! One listener serves the mode's MCP routes together with whatever other
//! routes `main.rs` hands in (the plain API), behind layers that apply to
//! every route alike, outermost first:
//!
//! 1. `guard`: `Host`/`Origin` allow-lists against DNS rebinding (403);
//!    `/healthz` is exempt.
//! 2. `cors`: CORS headers for the allowed origins; it answers preflight
//!    requests itself, which browsers send without credentials.
//! 3. `auth`: bearer tokens or JWTs when `[auth]` is configured (401);
//!    health, readiness and discovery documents are exempt.
//! 4. The body limit, `transport.max_body_bytes` (413): axum's extractors
//!    honour it through `DefaultBodyLimit`, and rmcp's `/mcp` service is
//!    given the same number.
//! 5. The body timeout, `transport.request_body_timeout_secs`: a body that
//!    pauses longer fails to read (400), and hyper closes a connection
//!    whose request body was not read to its end.

mod auth;
mod bounded_sessions;
mod cors;
mod error;
mod guard;
mod listen;
mod malformed;
pub(crate) mod reject;
mod sse;
mod streamable;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use tokio_util::sync::CancellationToken;
use tower_http::timeout::RequestBodyTimeoutLayer;

pub use error::HttpError;

use self::auth::Auth;
use self::guard::Guard;
use crate::config::{Config, TransportConfig};
use crate::tools::McpV8;

/// Which MCP transport the listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `/mcp`, the current transport.
    StreamableHttp,
    /// `/sse` + `/message`, for clients of MCP 2024-11-05.
    Sse,
}

impl Mode {
    /// The path clients connect to.
    pub fn endpoint(self) -> &'static str {
        match self {
            Self::StreamableHttp => streamable::PATH,
            Self::Sse => sse::PATH,
        }
    }
}

/// Everything the server needs, resolved and checked at startup so that a
/// bad entry stops the server before it listens.
#[derive(Debug)]
pub struct HttpServer {
    mode: Mode,
    addr: SocketAddr,
    guard: Arc<Guard>,
    auth: Option<Arc<Auth>>,
    max_body_bytes: usize,
    /// See `transport.request_header_timeout_secs`.
    header_timeout: Duration,
    /// See `transport.request_body_timeout_secs`.
    body_timeout: Duration,
    keep_alive: Duration,
    session_idle: Duration,
    max_sessions: usize,
}

impl HttpServer {
    /// The HTTP server `config` asks for; `None` when it sets no port (MCP
    /// then runs on stdio).
    pub fn from_config(config: &Config) -> Result<Option<Self>, HttpError> {
        let transport = &config.transport;
        let (mode, port) = match (transport.http_port, transport.sse_port) {
            (Some(port), _) => (Mode::StreamableHttp, port),
            (None, Some(port)) => (Mode::Sse, port),
            (None, None) => {
                if auth::is_configured(&config.auth) {
                    tracing::warn!("[auth] only applies to HTTP and SSE; ignored on stdio");
                }
                return Ok(None);
            }
        };
        let ip: IpAddr = transport.bind.parse().map_err(|_| HttpError::BindAddress {
            bind: transport.bind.clone(),
        })?;
        if !ip.is_loopback() && transport.allowed_hosts == TransportConfig::default().allowed_hosts
        {
            tracing::warn!(
                bind = %ip,
                "listening beyond loopback while transport.allowed_hosts only allows loopback \
                 names: remote clients get 403 until their Host is allowed"
            );
        }
        Ok(Some(Self {
            mode,
            addr: SocketAddr::new(ip, port),
            guard: Arc::new(Guard::new(
                &transport.allowed_hosts,
                &transport.allowed_origins,
            )?),
            auth: Auth::from_config(&config.auth, mode.endpoint())?.map(Arc::new),
            max_body_bytes: transport.max_body_bytes,
            header_timeout: Duration::from_secs(transport.request_header_timeout_secs),
            body_timeout: Duration::from_secs(transport.request_body_timeout_secs),
            keep_alive: Duration::from_secs(transport.sse_keep_alive_secs),
            session_idle: Duration::from_secs(transport.session_idle_secs),
            max_sessions: transport.max_sessions,
        }))
    }

    /// Serves `server` (and `extra` routes, e.g. the plain API) until
    /// `shutdown` resolves, then drains in-flight requests briefly and ends
    /// every session. Returns once the listener is closed.
    pub async fn serve(
        self,
        server: McpV8,
        extra: Router,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), HttpError> {
        let sessions = CancellationToken::new();
        let app = self.app(server, extra, sessions.clone());
        tracing::info!(
            mode = ?self.mode,
            endpoint = self.mode.endpoint(),
            auth = self.auth.is_some(),
            "serving MCP over HTTP"
        );
        listen::serve(self.addr, app, self.header_timeout, shutdown, sessions).await
    }

    /// The routes of the mode, the discovery documents and `extra`, behind
    /// the guard, authentication and body-limit layers.
    fn app(&self, server: McpV8, extra: Router, sessions: CancellationToken) -> Router {
        let mcp = match self.mode {
            Mode::StreamableHttp => streamable::routes(
                server,
                self.keep_alive,
                self.session_idle,
                self.max_sessions,
                self.max_body_bytes,
                sessions,
            ),
            Mode::Sse => sse::routes(server, self.keep_alive, self.max_sessions, sessions),
        };
        let mut app = mcp.merge(extra);
        if let Some(auth) = &self.auth {
            app = app
                .merge(auth.routes())
                .layer(middleware::from_fn_with_state(
                    Arc::clone(auth),
                    auth::require_bearer,
                ));
        }
        app.layer(DefaultBodyLimit::max(self.max_body_bytes))
            .layer(RequestBodyTimeoutLayer::new(self.body_timeout))
            .layer(cors::layer(Arc::clone(&self.guard)))
            .layer(middleware::from_fn_with_state(
                Arc::clone(&self.guard),
                guard::check_host_and_origin,
            ))
    }
}
