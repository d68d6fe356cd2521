//! [`ToolError`]: how a failed tool call is reported to the model.

use rmcp::model::{ContentBlock, IntoContents};

use crate::executor::ExecutorError;
use crate::sessions::SessionError;
use crate::storage::StorageError;

/// A tool call that could not be carried out, reported as a tool result with
/// `isError: true` and this message as its text.
///
/// rmcp turns the `Err` side of a tool's `Result` into such a result when the
/// error converts into content, which is why this implements [`IntoContents`]
/// rather than converting into a JSON-RPC error: the model must see the message
/// to correct its call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolError {
    message: String,
}

impl ToolError {
    /// An argument the executor never saw (it is validated by the tool layer),
    /// worded like the executor's own argument errors.
    pub fn invalid_argument(field: &'static str, message: impl Into<String>) -> Self {
        ExecutorError::InvalidArgument {
            field,
            message: message.into(),
        }
        .into()
    }

    /// The execution was accepted, but reading its state back failed. The id is
    /// part of the message so the model can still follow the execution up.
    pub fn after_submit(execution_id: &str, error: ExecutorError) -> Self {
        Self {
            message: format!(
                "execution {execution_id} was started, but reading its status failed: {error}; \
                 call get_execution with this execution_id to follow it"
            ),
        }
    }

    /// A failure inside the server that the caller cannot fix; logged for the
    /// operator, since the model can only report it.
    pub fn internal(message: impl Into<String>) -> Self {
        let message = message.into();
        tracing::error!(%message, "tool failed");
        Self { message }
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<ExecutorError> for ToolError {
    fn from(error: ExecutorError) -> Self {
        // Storage failures are the server's fault, not the caller's: leave a
        // trace for the operator as well as telling the model.
        match &error {
            ExecutorError::Storage(io_error) => {
                tracing::error!(error = %io_error, "execution state storage failed");
            }
            ExecutorError::HeapStore(storage_error)
                if !matches!(storage_error, StorageError::NotFound(_)) =>
            {
                tracing::error!(error = %storage_error, "heap store failed");
            }
            _ => {}
        }
        Self {
            message: error.to_string(),
        }
    }
}

impl From<SessionError> for ToolError {
    fn from(error: SessionError) -> Self {
        if error.is_invalid_argument() {
            Self {
                message: error.to_string(),
            }
        } else {
            Self::internal(error.to_string())
        }
    }
}

impl std::fmt::Display for ToolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ToolError {}

impl IntoContents for ToolError {
    fn into_contents(self) -> Vec<ContentBlock> {
        vec![ContentBlock::text(self.message)]
    }
}
