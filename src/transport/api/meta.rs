//! Routes about the server itself: liveness, readiness, version and the
//! OpenAPI document.

use std::time::Duration;

use axum::Json;
use axum::extract::State;

use super::ApiState;
use super::error::{ApiError, ErrorBody, ErrorCode};
use super::types::{Health, Version};
use crate::executor::{Executor, ExecutorError};

/// How long `/readyz` waits for the readiness check: probes time out after a
/// few seconds, and a check that hangs means "not ready" anyway.
const READINESS_TIMEOUT: Duration = Duration::from_secs(5);

/// Liveness: the process is up and answering.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "meta",
    security(()),
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
    security(()),
    responses(
        (status = 200, description = "Ready: `{\"status\":\"ok\"}`.", body = Health),
        (status = 503, description = "Not ready (`not_ready`) or draining (`shutting_down`); the message says why.", body = ErrorBody),
    ),
)]
pub async fn readyz(State(state): State<ApiState>) -> Result<Json<Health>, ApiError> {
    accepts_work(&state.executor)?;
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
    security(()),
    responses((status = 200, description = "The OpenAPI document.", content_type = "application/json")),
)]
pub async fn openapi_json() -> Json<&'static utoipa::openapi::OpenApi> {
    Json(super::openapi())
}

/// Whether the executor is taking work (not draining).
fn accepts_work(executor: &Executor) -> Result<(), ApiError> {
    if executor.is_accepting() {
        Ok(())
    } else {
        Err(ExecutorError::ShuttingDown.into())
    }
}
