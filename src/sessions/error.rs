//! [`SessionError`]: why a session store call failed.

use std::path::PathBuf;

use crate::storage::InvalidHeapKey;

/// Why a [`SessionStore`](super::SessionStore) call failed.
///
/// The argument errors are worded for the model that sent the argument: they
/// quote what was wrong (shortened) and state the rule. The storage errors are
/// the operator's business; the tool layer logs them.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("unknown session: {0:?}; list_sessions shows the sessions that exist")]
    NotFound(String),
    #[error("invalid session name {name}: {reason}")]
    InvalidSessionName { name: String, reason: String },
    #[error("{0}; use a heap as get_execution reports it in `heap`")]
    InvalidHeap(#[from] InvalidHeapKey),
    #[error("invalid tags: {0}")]
    InvalidTags(String),
    #[error(
        "the session database {} is in use by another mcp-v8 process; give each server its own \
         sessions.db_path",
        path.display()
    )]
    InUse { path: PathBuf },
    #[error("opening the session database at {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },
    #[error("session database failed: {0}")]
    Storage(#[from] sled::Error),
    #[error("making the session database durable ({}): {source}", path.display())]
    Sync {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The blocking task running a call died (it panicked).
    #[error("session store task failed: {0}")]
    Task(String),
    /// A stored value that does not decode: the database was damaged or
    /// written by an incompatible version. Never caused by a caller.
    #[error("session database holds a corrupt {what}: {reason}")]
    Corrupt { what: String, reason: String },
}

impl SessionError {
    /// True for errors caused by the caller's arguments rather than by the
    /// database, so that callers know whose fault it is.
    pub fn is_invalid_argument(&self) -> bool {
        matches!(
            self,
            Self::NotFound(_)
                | Self::InvalidSessionName { .. }
                | Self::InvalidHeap(_)
                | Self::InvalidTags(_)
        )
    }
}

impl From<sled::transaction::TransactionError<SessionError>> for SessionError {
    fn from(error: sled::transaction::TransactionError<SessionError>) -> Self {
        match error {
            sled::transaction::TransactionError::Abort(error) => error,
            sled::transaction::TransactionError::Storage(error) => Self::Storage(error),
        }
    }
}
