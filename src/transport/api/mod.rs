//! The plain HTTP API under `/api`, health endpoints and the OpenAPI document.
//!
//! Served by the HTTP transport on the same port as `/mcp`: [`router`] is
//! merged into its router, which adds the body-size limit, Host/Origin checks
//! and authentication for every route. Handlers are thin adapters over the
//! same [`Executor`] the MCP tools use, with the same semantics.
//!
//! Routes and the OpenAPI document are built from one list (utoipa-axum's
//! `routes!` takes each route's method and path from its `#[utoipa::path]`),
//! so `/openapi.json` always describes exactly what is served.
//!
//! Every failure is `{"error": {"code", "message"}}` ([`ApiError`]); unknown
//! routes and methods included.

mod error;
mod executions;
mod extract;
mod meta;
mod state;
mod types;

use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Request;
use futures::future::BoxFuture;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::executor::Executor;
use crate::sessions::SessionStore;

pub use error::{ApiError, ErrorBody, ErrorCode, ErrorDetail};
pub use executions::EXEC_OUTPUT_BYTES;
pub use types::{
    Created, ExecRequest, ExecResponse, ExecutionList, Health, OutputParams, Page, Record, Status,
    Summary, Version,
};

/// Whether the server's dependencies can serve requests; `/readyz` asks it.
///
/// A trait so the transport does not depend on what readiness means: the
/// storage layer plugs in a check of its backend.
pub trait Readiness: Send + Sync {
    /// `Err` carries the reason, which `/readyz` reports with its 503.
    fn check(&self) -> BoxFuture<'_, Result<(), String>>;
}

/// A readiness check run at most once per [`READINESS_TTL`], however often
/// `/readyz` is asked: `/readyz` is open to anyone who can reach the port
/// (auth exempts it, for load balancers), and a directory store's check
/// writes and fsyncs a file. Concurrent callers share one check.
struct CachedReadiness {
    inner: Arc<dyn Readiness>,
    last: tokio::sync::Mutex<Option<(Instant, Result<(), String>)>>,
}

/// How long a readiness answer is reused.
pub const READINESS_TTL: Duration = Duration::from_secs(1);

impl Readiness for CachedReadiness {
    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            // Held across the check: callers that arrive meanwhile wait for
            // its answer instead of starting checks of their own.
            let mut last = self.last.lock().await;
            if let Some((at, answer)) = &*last
                && at.elapsed() < READINESS_TTL
            {
                return answer.clone();
            }
            let answer = self.inner.check().await;
            *last = Some((Instant::now(), answer.clone()));
            answer
        })
    }
}

/// Readiness with no dependencies to check.
#[derive(Debug, Clone, Copy, Default)]
pub struct AlwaysReady;

impl Readiness for AlwaysReady {
    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(std::future::ready(Ok(())))
    }
}

/// What the API's handlers share. Cheap to clone.
#[derive(Clone)]
pub struct ApiState {
    executor: Executor,
    readiness: Arc<dyn Readiness>,
    /// The session log and heap tags of a stateful server.
    sessions: Option<SessionStore>,
}

impl ApiState {
    /// `readiness` is asked at most once per [`READINESS_TTL`].
    pub fn new(executor: Executor, readiness: Arc<dyn Readiness>) -> Self {
        Self {
            executor,
            readiness: Arc::new(CachedReadiness {
                inner: readiness,
                last: tokio::sync::Mutex::default(),
            }),
            sessions: None,
        }
    }

    /// Serves `/api/sessions` and `/api/heaps` from `sessions`.
    pub fn with_sessions(mut self, sessions: SessionStore) -> Self {
        self.sessions = Some(sessions);
        self
    }
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState").finish_non_exhaustive()
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "mcp-v8 HTTP API",
        description = "Run JavaScript/TypeScript in fresh V8 isolates and follow executions. \
                       Errors are `{\"error\": {\"code\", \"message\"}}` with a stable snake_case `code`."
    ),
    tags(
        (name = "executions", description = "Run code and follow executions."),
        (name = "state", description = "Sessions and heap tags (a stateful server only)."),
        (name = "meta", description = "Health, readiness, version and this document."),
    ),
    modifiers(&BearerAuth),
)]
struct ApiDoc;

/// The document's authentication: a bearer token, needed only when the
/// server has `[auth]` configured (the document is the same either way), so
/// every operation may be called with or without one. The routes open to
/// all (`/healthz`, `/readyz`, this document) say so with `security(())`.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, document: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
        };
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "Needed only when the server has `[auth]` configured: one of its static \
                 tokens, or a JWT its JWKS verifies. Without it such a server answers 401 \
                 `unauthorized` with `WWW-Authenticate`.",
            ))
            .build();
        document
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(BEARER_SCHEME, SecurityScheme::Http(scheme));
        document.security = Some(vec![
            SecurityRequirement::default(),
            SecurityRequirement::new(BEARER_SCHEME, Vec::<String>::new()),
        ]);
    }
}

/// The name of [`BearerAuth`]'s scheme in the document.
const BEARER_SCHEME: &str = "bearer";

/// Every route, each registered together with its OpenAPI operation.
fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(executions::exec))
        .routes(routes!(
            executions::create_execution,
            executions::list_executions
        ))
        .routes(routes!(executions::get_execution))
        .routes(routes!(executions::execution_output))
        .routes(routes!(executions::cancel_execution))
        .routes(routes!(state::list_sessions))
        .routes(routes!(state::session_entries))
        .routes(routes!(state::query_heaps))
        .routes(routes!(state::query_heaps_paged))
        .routes(routes!(
            state::get_tags,
            state::set_tags,
            state::delete_tags
        ))
        .routes(routes!(state::delete_tag))
        .routes(routes!(meta::healthz))
        .routes(routes!(meta::readyz))
        .routes(routes!(meta::version))
        .routes(routes!(meta::openapi_json))
}

/// The OpenAPI document served at `/openapi.json`. Built once: it depends on
/// nothing but the code.
pub fn openapi() -> &'static utoipa::openapi::OpenApi {
    static DOCUMENT: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(|| routes().into_openapi());
    &DOCUMENT
}

/// The API's routes, with JSON answers for unknown routes (404) and methods
/// (405), ready to be merged into the HTTP server's router.
///
/// It carries the catch-all fallback, so the router it is merged into must
/// not set one of its own (axum refuses to merge two).
pub fn router(state: ApiState) -> Router {
    let (router, _) = routes().split_for_parts();
    router
        .fallback(no_route)
        .method_not_allowed_fallback(crate::transport::http::reject::method_not_allowed)
        .with_state(state)
}

async fn no_route(request: Request) -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        format!(
            "no route for {} {}; see /openapi.json",
            request.method(),
            request.uri().path()
        ),
    )
}
