//! [`ApiError`]: every failed request, as `{"error": {"code", "message"}}`.
//!
//! Clients branch on the HTTP status and on `code`, a stable snake_case string;
//! `message` is for people and may change. Executor errors and axum's extractor
//! rejections are both turned into this one shape, so no route ever answers
//! with plain text.

use axum::Json;
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::executor::ExecutorError;
use crate::storage::StorageError;
use crate::tools::ToolError;

/// What kind of failure a request met; the `code` of an error response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: the request is malformed or an argument is out of range; the message names the field.
    InvalidArgument,
    /// 404: no such execution, or no such route.
    NotFound,
    /// 405: the route exists but not with this method (see the `Allow` header).
    MethodNotAllowed,
    /// 413: the request body is larger than the server accepts.
    PayloadTooLarge,
    /// 415: the body's `Content-Type` is not one this route reads.
    UnsupportedMediaType,
    /// 429: the execution queue is full; retry after `Retry-After` seconds.
    Busy,
    /// 503: the server is draining and accepts no new work.
    ShuttingDown,
    /// 503 from `/readyz`: a dependency (such as storage) is not ready.
    NotReady,
    /// 503: the heap store could not be reached; retry later.
    StorageUnavailable,
    /// 500: the server failed; the message says what and the server log has details.
    Internal,
}

impl ErrorCode {
    fn status(self) -> StatusCode {
        match self {
            Self::InvalidArgument => StatusCode::BAD_REQUEST,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Busy => StatusCode::TOO_MANY_REQUESTS,
            Self::ShuttingDown | Self::NotReady | Self::StorageUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable kind of failure.
    pub code: ErrorCode,
    /// Human-readable explanation; for bad input it names the offending field.
    pub message: String,
}

/// A failed request: an [`ErrorCode`] (which fixes the HTTP status) and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// A listing argument the tool layer refused (a `limit` out of range, an
    /// unknown field): the tools' checks, the API's 400.
    pub fn invalid_argument(error: ToolError) -> Self {
        Self::new(ErrorCode::InvalidArgument, error.message())
    }

    /// The execution was accepted but reading it back failed: the id goes into
    /// the message so the caller can still follow the execution up.
    pub fn after_submit(execution_id: &str, error: ExecutorError) -> Self {
        let mut api_error = Self::from(error);
        api_error.message = format!(
            "execution {execution_id} was started, but reading its state failed: {}; \
             follow it with GET /api/executions/{execution_id}",
            api_error.message
        );
        api_error
    }

    /// Maps an axum rejection by its status: a body over the limit stays 413,
    /// a wrong media type 415, a server-side extractor fault 500, and any other
    /// client error (axum uses 422 for JSON of the wrong shape) becomes 400.
    /// axum's text is kept as the message (it names the field that failed),
    /// but for a body over the limit, where it names no setting.
    fn from_rejection(status: StatusCode, text: String) -> Self {
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            return Self::new(
                ErrorCode::PayloadTooLarge,
                crate::transport::http::reject::BODY_TOO_LARGE,
            );
        }
        let code = match status {
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
            status if status.is_server_error() => ErrorCode::Internal,
            _ => ErrorCode::InvalidArgument,
        };
        Self::new(code, text)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.code.status();
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
            },
        };
        let mut response = (status, Json(body)).into_response();
        if self.code == ErrorCode::Busy {
            // A full queue drains within about one execution; telling clients
            // when to come back keeps them from hammering the server.
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<ExecutorError> for ApiError {
    fn from(error: ExecutorError) -> Self {
        let code = match &error {
            ExecutorError::NotFound(_) => ErrorCode::NotFound,
            ExecutorError::InvalidArgument { .. } => ErrorCode::InvalidArgument,
            ExecutorError::Busy { .. } => ErrorCode::Busy,
            ExecutorError::ShuttingDown => ErrorCode::ShuttingDown,
            ExecutorError::Storage(io_error) => {
                // The server's fault, not the caller's: leave a trace for the operator.
                tracing::error!(error = %io_error, "execution state storage failed");
                ErrorCode::Internal
            }
            ExecutorError::HeapStore(StorageError::NotFound(_)) => ErrorCode::NotFound,
            ExecutorError::HeapStore(storage_error) => {
                tracing::error!(error = %storage_error, "heap store failed");
                match storage_error {
                    StorageError::Unavailable { .. } => ErrorCode::StorageUnavailable,
                    _ => ErrorCode::Internal,
                }
            }
        };
        Self::new(code, error.to_string())
    }
}

macro_rules! from_rejection {
    ($($rejection:ty),*) => {$(
        impl From<$rejection> for ApiError {
            fn from(rejection: $rejection) -> Self {
                Self::from_rejection(rejection.status(), rejection.body_text())
            }
        }
    )*};
}

from_rejection!(BytesRejection, JsonRejection, PathRejection, QueryRejection);

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_json(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("read the body");
        serde_json::from_slice(&bytes).expect("the body is JSON")
    }

    #[tokio::test]
    async fn busy_is_429_with_retry_after() {
        let error = ApiError::from(ExecutorError::Busy {
            in_flight: 1,
            running: 1,
            max_concurrent: 1,
            max_queued: 0,
        });
        let response = error.into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        let body = body_json(response).await;
        assert_eq!(body["error"]["code"], "busy");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("busy"))
        );
    }

    #[test]
    fn executor_errors_map_to_their_status() {
        let cases = [
            (ExecutorError::NotFound("x".into()), StatusCode::NOT_FOUND),
            (
                ExecutorError::InvalidArgument {
                    field: "heap_memory_max_mb",
                    message: "too big".into(),
                },
                StatusCode::BAD_REQUEST,
            ),
            (ExecutorError::ShuttingDown, StatusCode::SERVICE_UNAVAILABLE),
            (
                ExecutorError::Storage(std::io::Error::other("disk full")),
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
        ];
        for (error, status) in cases {
            let response = ApiError::from(error).into_response();
            assert_eq!(response.status(), status);
            assert!(!response.headers().contains_key(header::RETRY_AFTER));
        }
    }

    #[test]
    fn rejections_keep_413_and_415_and_turn_422_into_400() {
        let code = |status| ApiError::from_rejection(status, String::new()).code();
        assert_eq!(
            code(StatusCode::PAYLOAD_TOO_LARGE),
            ErrorCode::PayloadTooLarge
        );
        assert_eq!(
            code(StatusCode::UNSUPPORTED_MEDIA_TYPE),
            ErrorCode::UnsupportedMediaType
        );
        assert_eq!(
            code(StatusCode::UNPROCESSABLE_ENTITY),
            ErrorCode::InvalidArgument
        );
        assert_eq!(code(StatusCode::INTERNAL_SERVER_ERROR), ErrorCode::Internal);
    }
}
