//! Errors the executor reports to its callers (the tool and HTTP layers).

use crate::storage::StorageError;

/// Why an executor call was refused. Messages are written for the model or
/// person reading them: they say what happened and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    #[error("unknown execution id: {0}")]
    NotFound(String),
    #[error("invalid argument `{field}`: {message}")]
    InvalidArgument {
        field: &'static str,
        message: String,
    },
    /// Every worker is taken and the queue is full. An execution counts as
    /// waiting until its worker runs it (at start-up, workers still boot).
    #[error(
        "server busy: {in_flight} executions in flight ({running} running, the rest waiting) \
         fill its {max_concurrent} workers and {max_queued} queue places; retry later"
    )]
    Busy {
        in_flight: usize,
        running: usize,
        max_concurrent: usize,
        max_queued: usize,
    },
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error("execution state storage failed: {0}")]
    Storage(#[from] std::io::Error),
    /// A heap named in the call is not in the heap store, or the store could
    /// not be asked (the message names the heap or the store).
    #[error(transparent)]
    HeapStore(#[from] StorageError),
}
