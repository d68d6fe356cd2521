//! One mcp-v8 process per directory: a lock file (`lock`, naming the holder's
//! pid) that the kernel releases when the process ends, however it ends.
//!
//! The state directory and a heap cache directory each hold files one
//! process keeps an index or a journal of; a second process writing them
//! would corrupt the first one's view. Each is locked where it is opened.

use std::fs::{File, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::path::Path;

use crate::private_fs;

/// Held for as long as the directory is in use.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

#[derive(Debug, thiserror::Error)]
pub enum DirLockError {
    /// Another process holds the lock; `holder` is its pid if it wrote one.
    #[error("in use by another mcp-v8 process{}", holder.map(|pid| format!(" (pid {pid})")).unwrap_or_default())]
    InUse { holder: Option<u32> },
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Creates `dir` (owner-only) if needed and takes its lock.
pub fn lock(dir: &Path) -> Result<DirLock, DirLockError> {
    if dir.exists() && !dir.is_dir() {
        // create_dir_all would say "File exists", which reads as no error.
        return Err(io::Error::new(
            io::ErrorKind::NotADirectory,
            "it exists and is not a directory",
        )
        .into());
    }
    private_fs::create_dir_all(dir)?;
    let mut file = private_fs::open_options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join("lock"))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            return Err(DirLockError::InUse {
                holder: holder.trim().parse().ok(),
            });
        }
        Err(TryLockError::Error(error)) => return Err(error.into()),
    }
    file.set_len(0)?;
    file.rewind()?;
    writeln!(file, "{}", std::process::id())?;
    Ok(DirLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_holder() {
        let dir = tempfile::tempdir().expect("temp dir");
        let locked = dir.path().join("locked");
        let held = lock(&locked).expect("first lock");
        let error = lock(&locked).expect_err("second lock");
        let pid = std::process::id();
        assert!(
            matches!(error, DirLockError::InUse { holder: Some(holder) } if holder == pid),
            "{error}"
        );
        drop(held);
        lock(&locked).expect("free again");
    }

    #[test]
    fn a_file_is_not_a_directory() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("file");
        std::fs::write(&file, "").expect("a file");
        let error = lock(&file).expect_err("a file");
        assert!(error.to_string().contains("not a directory"), "{error}");
    }
}
