//! Named sessions (execution logs) and heap tags, kept in sled.
//!
//! A *session* is a name under which executions are logged, in order, with the
//! heap snapshot each started from and the one it left behind; a run with a
//! session but no explicit heap resumes the session's latest heap
//! ([`SessionStore::latest_heap`]). *Tags* are string labels on heap snapshots,
//! independent of sessions, so that a snapshot can be found by what it holds.
//!
//! The store only records names: snapshots themselves live in
//! [`crate::storage`]. It is written at the rate executions finish and tags are
//! set, so every write is flushed to disk before it is acknowledged; sled's
//! batching is not worth an acknowledged entry lost in a crash.

mod error;
mod log;
mod tags;
mod validate;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use error::SessionError;
pub use log::{NewSessionEntry, SessionEntry};
pub use tags::Tags;
pub use validate::{
    MAX_SESSION_NAME_CHARS, MAX_TAG_KEY_CHARS, MAX_TAG_VALUE_CHARS, MAX_TAGS_PER_HEAP,
    validate_heap, validate_session_name, validate_tags,
};

/// The file sled 0.34 keeps its log (all data) in, inside the database
/// directory.
const SLED_LOG_FILE: &str = "db";

/// Handle to the session database. Cheap to clone: clones share the database
/// (sled's handles are reference-counted), and every method is safe to call
/// from several threads at once.
#[derive(Clone)]
pub struct SessionStore {
    db: sled::Db,
    /// Session name → index of its next entry (u64, big-endian).
    next_index: sled::Tree,
    /// `name NUL index` → [`NewSessionEntry`] as JSON.
    entries: sled::Tree,
    /// Heap name → its tags as a JSON object.
    tags: sled::Tree,
    /// sled's log file, for the fsync sled leaves out (see `flush`).
    log_file: Arc<std::fs::File>,
}

impl std::fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionStore")
            .field("db", &self.db.name())
            .finish_non_exhaustive()
    }
}

impl SessionStore {
    /// Opens the database directory at `path`, creating it if needed.
    ///
    /// sled locks the directory: a second server (or a second `open` in the
    /// same process while a handle is alive) on the same path fails here.
    pub fn open(path: &Path) -> Result<Self, SessionError> {
        let open_error = |source| SessionError::Open {
            path: path.to_path_buf(),
            source,
        };
        // sled creates its files with the umask's mode: an owner-only
        // directory keeps the logged code from other users.
        crate::private_fs::create_dir_all(path).map_err(|source| open_error(source.into()))?;
        let db = sled::Config::new()
            .path(path)
            .open()
            .map_err(|source| match &source {
                // sled 0.34 words its lock failure ("could not acquire lock
                // on …") over the WouldBlock of the lock call.
                sled::Error::Io(io)
                    if io.kind() == std::io::ErrorKind::WouldBlock
                        || io.to_string().contains("could not acquire lock") =>
                {
                    SessionError::InUse {
                        path: path.to_path_buf(),
                    }
                }
                _ => open_error(source),
            })?;
        let tree = |name: &str| db.open_tree(name).map_err(open_error);
        let log_path = path.join(SLED_LOG_FILE);
        let log_file = std::fs::File::open(&log_path).map_err(|source| SessionError::Sync {
            path: log_path,
            source,
        })?;
        Ok(Self {
            next_index: tree("session_next")?,
            entries: tree("session_entries")?,
            tags: tree("heap_tags")?,
            db,
            log_file: Arc::new(log_file),
        })
    }

    /// Runs `op` on tokio's blocking pool: sled's reads block and its writes
    /// end with a flush, which must not stall the threads serving requests.
    pub async fn blocking<T, F>(&self, op: F) -> Result<T, SessionError>
    where
        T: Send + 'static,
        F: FnOnce(&SessionStore) -> Result<T, SessionError> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || op(&store))
            .await
            .map_err(|error| SessionError::Task(error.to_string()))?
    }

    /// Makes every write so far durable. Flushing the database flushes all of
    /// its trees.
    fn flush(&self) -> Result<(), SessionError> {
        self.db.flush()?;
        // sled 0.34 writes its log with sync_file_range, which neither
        // records the file's new length nor empties the device's write
        // cache: after a power loss an acknowledged entry could be gone.
        // fsync on any handle to the file covers both.
        self.log_file
            .sync_all()
            .map_err(|source| SessionError::Sync {
                path: PathBuf::from(SLED_LOG_FILE),
                source,
            })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A store in a fresh temporary directory, which lives as long as the
    /// returned guard.
    pub(crate) fn open_temp() -> (tempfile::TempDir, SessionStore) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SessionStore::open(&dir.path().join("sessions")).expect("open store");
        (dir, store)
    }

    /// Opens the store at `path` again after its last handle was dropped.
    /// sled's background threads let go of the database's file lock a moment
    /// after that, not at once; a second process (a restarted server) never
    /// sees this, only a test that reopens in the same process.
    pub(crate) fn reopen(path: &Path) -> SessionStore {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match SessionStore::open(path) {
                Ok(store) => return store,
                Err(error) if std::time::Instant::now() < deadline => {
                    assert!(
                        matches!(error, SessionError::InUse { .. }),
                        "reopen: {error}"
                    );
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(error) => panic!("reopen: {error}"),
            }
        }
    }

    #[test]
    fn open_creates_missing_directories() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("a/b/sessions");
        let store = SessionStore::open(&path).expect("open");
        assert!(store.list_sessions().expect("list").is_empty());
        assert!(path.is_dir());
    }

    #[test]
    fn a_second_open_of_a_live_store_fails_with_the_path() {
        let (dir, _store) = open_temp();
        let path = dir.path().join("sessions");
        let error = SessionStore::open(&path).expect_err("locked");
        assert!(
            error.to_string().contains(&path.display().to_string()),
            "{error}"
        );
    }
}
