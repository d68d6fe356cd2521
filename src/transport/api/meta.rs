//! Routes about the server itself: liveness, readiness, version and the
//! OpenAPI document.

use std::time::Duration;

use axum::Json;
use axum::extract::State;

use super::ApiState;
use super::error::{ApiError, ErrorBody, ErrorCode};
use super::types::{Health, Version};
use crate::executor::{Executor, ExecutorError, RunRequest};

/// How long `/readyz` waits for the readiness check: probes time out after a
/// few seconds, and a check that hangs means "not ready" anyway.
const READINESS_TIMEOUT: Duration = Duration::from_secs(5);

/// Liveness: the process is up and answering.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "meta",
    responses((status = 200, description = "Always `{\"status\":\"ok\"}`.", body = Health)),
)]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: the server's dependencies answer and the executor takes work.
/// A load balancer should stop routing here while this fails.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "meta",
    responses(
        (status = 200, description = "Ready: `{\"status\":\"ok\"}`.", body = Health),
        (status = 503, description = "Not ready (`not_ready`) or draining (`shutting_down`); the message says why.", body = ErrorBody),
    ),
)]
pub async fn readyz(State(state): State<ApiState>) -> Result<Json<Health>, ApiError> {
    accepts_work(&state.executor).await?;
    let not_ready = |reason| ApiError::new(ErrorCode::NotReady, reason);
    tokio::time::timeout(READINESS_TIMEOUT, state.readiness.check())
        .await
        .map_err(|_| {
            not_ready(format!(
                "the readiness check did not answer within {} s",
                READINESS_TIMEOUT.as_secs()
            ))
        })?
        .map_err(not_ready)?;
    Ok(Json(Health { status: "ok" }))
}

/// The server's name and version, and the V8 version it runs code with.
#[utoipa::path(
    get,
    path = "/api/version",
    tag = "meta",
    responses((status = 200, description = "Versions.", body = Version)),
)]
pub async fn version() -> Json<Version> {
    Json(Version {
        name: env!("CARGO_PKG_NAME"),
        version: env!("CARGO_PKG_VERSION"),
        // A constant compiled into the binary: reading it does not start V8,
        // which only ever runs in worker processes.
        v8_version: deno_core::v8::VERSION_STRING,
    })
}

/// This API's OpenAPI 3.1 document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI document.", content_type = "application/json")),
)]
pub async fn openapi_json() -> Json<&'static utoipa::openapi::OpenApi> {
    Json(super::openapi())
}

/// Whether the executor is taking work, asked without side effects.
///
/// The executor has no direct query for this; `submit` refuses a request with
/// `ShuttingDown` before it validates anything, and a 0 MiB heap always fails
/// validation, so this probe never creates an execution. A router test holds
/// the behaviour in place.
async fn accepts_work(executor: &Executor) -> Result<(), ApiError> {
    let probe = RunRequest {
        heap_memory_max_mb: Some(0),
        ..RunRequest::default()
    };
    match executor.submit(probe) {
        Err(ExecutorError::ShuttingDown) => Err(ExecutorError::ShuttingDown.into()),
        Err(_) => Ok(()),
        Ok(execution_id) => {
            // Only if a 0 MiB heap ever became valid; never leave it running.
            tracing::warn!(
                execution_id,
                "the readiness probe was accepted as an execution"
            );
            let _ = executor.cancel(&execution_id).await;
            Ok(())
        }
    }
}
