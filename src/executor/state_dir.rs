//! One server process per state directory.
//!
//! The record journal, the output logs and (by default) the session database
//! live in the state directory, and two processes writing them at once would
//! corrupt each other's records: the second server to start is refused, by
//! name, before it touches anything.

use std::path::{Path, PathBuf};

use crate::dir_lock::{self, DirLock, DirLockError};

/// Held for as long as the server runs; the lock goes with the process.
pub type StateDirLock = DirLock;

#[derive(Debug, thiserror::Error)]
pub enum StateDirError {
    #[error(
        "the state directory {} is in use by another mcp-v8 process{}; each server needs \
         its own: set --state-dir (MCP_V8_STATE_DIR or server.state_dir), one per MCP \
         client that starts a server",
        dir.display(),
        holder.map(|pid| format!(" (pid {pid})")).unwrap_or_default()
    )]
    InUse { dir: PathBuf, holder: Option<u32> },
    #[error("locking the state directory {}: {source}", dir.display())]
    Io {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Creates `dir` if needed and takes its lock (the file `lock` in it, which
/// names the holder's pid).
pub fn lock(dir: &Path) -> Result<StateDirLock, StateDirError> {
    dir_lock::lock(dir).map_err(|error| match error {
        DirLockError::InUse { holder } => StateDirError::InUse {
            dir: dir.to_path_buf(),
            holder,
        },
        DirLockError::Io(source) => StateDirError::Io {
            dir: dir.to_path_buf(),
            source,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_holder() {
        let dir = tempfile::tempdir().expect("temp dir");
        let state = dir.path().join("state");
        let held = lock(&state).expect("first lock");
        let error = lock(&state).expect_err("second lock");
        let pid = std::process::id();
        assert!(
            matches!(error, StateDirError::InUse { holder: Some(holder), .. } if holder == pid),
            "{error}"
        );
        assert!(error.to_string().contains("--state-dir"), "{error}");
        drop(held);
        lock(&state).expect("free again");
    }
}
