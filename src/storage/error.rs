//! Why a heap store call failed, phrased for the agent or operator reading it.

use std::io;
use std::path::PathBuf;

use super::HeapKey;

/// A failed heap store call. The messages are what an execution that needed
/// the heap fails with, so each says which heap or which store, and why.
///
/// Causes (I/O errors, S3 errors) are part of the message rather than a
/// `source()`, so they are printed exactly once however the caller formats
/// the error.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// No object with this name exists in the store.
    #[error("heap not found: {0}")]
    NotFound(HeapKey),

    /// The stored bytes do not hash to their name (truncated, bit-flipped or
    /// planted). The object is never handed out.
    #[error("heap corrupt: {key}: {reason}")]
    Corrupt { key: HeapKey, reason: String },

    /// The store could not be reached or refused the request (network, S3
    /// credentials or permissions, a task that could not run).
    #[error("heap storage unavailable ({backend}): {message}")]
    Unavailable { backend: String, message: String },

    /// A local directory that others could write into: a file planted in it
    /// would be deserialised by V8, which trusts snapshot bytes.
    #[error(
        "heap storage directory {} is not safe to use: {reason}; choose a directory of your \
         own (storage.directory_path / cache_dir), or fix its owner and permissions",
        path.display()
    )]
    Unsafe { path: PathBuf, reason: String },

    /// A cache directory another mcp-v8 process uses.
    #[error(
        "the heap cache directory {} is in use by another mcp-v8 process{}; each server \
         needs a cache_dir of its own (--cache-dir, MCP_V8_CACHE_DIR)",
        path.display(),
        holder.map(|pid| format!(" (pid {pid})")).unwrap_or_default()
    )]
    InUse { path: PathBuf, holder: Option<u32> },

    /// A local file operation failed.
    #[error("heap storage I/O error: cannot {action} {}: {error}", path.display())]
    Io {
        /// What was being done, as a verb phrase ("write", "create directory").
        action: &'static str,
        path: PathBuf,
        error: io::Error,
    },
}

impl StorageError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, error: io::Error) -> Self {
        StorageError::Io {
            action,
            path: path.into(),
            error,
        }
    }

    pub(crate) fn unavailable(backend: impl Into<String>, message: impl Into<String>) -> Self {
        StorageError::Unavailable {
            backend: backend.into(),
            message: message.into(),
        }
    }
}

/// Runs blocking file work (reads, writes, fsyncs, hashing megabytes) on
/// tokio's blocking pool so that it never stalls the async workers. A task
/// that panicked or was dropped at shutdown reports as the store being
/// unavailable rather than propagating the panic into the caller.
pub(crate) async fn blocking<T, F>(backend: &str, work: F) -> Result<T, StorageError>
where
    F: FnOnce() -> Result<T, StorageError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| StorageError::unavailable(backend, format!("storage task failed: {err}")))?
}
