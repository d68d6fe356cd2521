//! The on-disk layout shared by the directory store and the S3 cache, and the
//! crash-safe way of writing into it. Everything here blocks: callers run it
//! through [`super::error::blocking`].
//!
//! Layout: `<root>/<first two hex chars>/<hash>`. Only names that parse as a
//! [`HeapKey`] are ever read, so temporary files (`.tmp.*`) and anything else
//! in the tree are never served.
//!
//! A write goes to a temporary file in the object's own directory, is
//! fsynced, renamed over the final name and the directory fsynced: after a
//! crash, the final name holds either nothing or the complete object.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::{HeapKey, StorageError};

/// Prefix of in-progress writes. Starts with a dot so that it can never be a
/// valid key, and so that it can be swept after a crash.
const TEMP_PREFIX: &str = ".tmp.";
/// Temporary files older than this at start-up belong to a write that
/// crashed; younger ones may belong to another process sharing the directory.
const STALE_TEMP_AGE: Duration = Duration::from_secs(3600);
/// Snapshots hold whatever agents put in their heaps: owner-only.
use crate::private_fs::{DIR_MODE, FILE_MODE};

/// Where `key` lives under `root`.
pub(super) fn object_path(root: &Path, key: &HeapKey) -> PathBuf {
    root.join(key.shard()).join(key.as_str())
}

/// Creates `root` (owner-only when it is new) if it does not exist yet, and
/// refuses it unless it is a directory of this process's user that no one
/// else can write into. The default root is under `/tmp`, where another
/// user may have created it first: whoever can write into the root can plant
/// a snapshot (named by its own hash, so it verifies), and V8 deserialises
/// snapshot bytes without defending against them.
pub(super) fn create_root(root: &Path) -> Result<(), StorageError> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(root)
        .map_err(|err| StorageError::io("create directory", root, err))?;
    let meta = fs::metadata(root).map_err(|err| StorageError::io("inspect", root, err))?;
    let refuse = |reason: String| {
        Err(StorageError::Unsafe {
            path: root.to_path_buf(),
            reason,
        })
    };
    if !meta.is_dir() {
        return refuse("it is not a directory".into());
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return refuse(format!(
            "it belongs to user id {}, and this server runs as user id {me}",
            meta.uid()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return refuse(format!(
            "its mode {:o} lets other users write into it",
            meta.mode() & 0o7777
        ));
    }
    // Whoever can rename the root away can put a directory of their own in
    // its place while the server runs: every directory above it must belong
    // to root or this user, and one that others may write into must be
    // sticky (as /tmp is), so that they cannot rename what is not theirs.
    let real = fs::canonicalize(root).map_err(|err| StorageError::io("resolve", root, err))?;
    for parent in real.ancestors().skip(1) {
        let meta = fs::metadata(parent).map_err(|err| StorageError::io("inspect", parent, err))?;
        if meta.uid() != 0 && meta.uid() != me {
            return refuse(format!(
                "{} above it belongs to user id {}, who could replace it",
                parent.display(),
                meta.uid()
            ));
        }
        if meta.mode() & 0o022 != 0 && meta.mode() & 0o1000 == 0 {
            return refuse(format!(
                "{} above it (mode {:o}) lets other users replace it; make that directory \
                 sticky (chmod +t) or not writable by others",
                parent.display(),
                meta.mode() & 0o7777
            ));
        }
    }
    Ok(())
}

/// The object's bytes, unverified, or `None` when there is no such file.
pub(super) fn read(root: &Path, key: &HeapKey) -> Result<Option<Vec<u8>>, StorageError> {
    let path = object_path(root, key);
    match fs::read(&path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(StorageError::io("read", path, err)),
    }
}

/// Whether the object's file exists.
pub(super) fn exists(root: &Path, key: &HeapKey) -> Result<bool, StorageError> {
    let path = object_path(root, key);
    path.try_exists()
        .map_err(|err| StorageError::io("look up", path, err))
}

/// Deletes the object's file; a file that is already gone is fine.
pub(super) fn remove(root: &Path, key: &HeapKey) -> Result<(), StorageError> {
    let path = object_path(root, key);
    match fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(StorageError::io("delete", path, err)),
    }
}

/// Writes `object` under `key` atomically and durably (see the module docs).
pub(super) fn write_atomic(root: &Path, key: &HeapKey, object: &[u8]) -> Result<(), StorageError> {
    let shard = root.join(key.shard());
    ensure_shard(root, &shard)?;
    let temp = TempFile::create(&shard, key.as_str())?;
    temp.write_durably(object)?;
    let target = object_path(root, key);
    temp.rename_to(&target)?;
    sync_dir(&shard)
}

/// Proves `root` is writable the way a real write is: a file created, written,
/// fsynced and deleted.
pub(super) fn probe_writable(root: &Path) -> Result<(), StorageError> {
    create_root(root)?;
    let temp = TempFile::create(root, "probe")?;
    temp.write_durably(b"probe")?;
    // Dropping the guard deletes the file.
    Ok(())
}

/// One object file found by [`scan`].
#[derive(Debug)]
pub(super) struct Found {
    pub key: HeapKey,
    pub size: u64,
    pub modified: SystemTime,
}

/// Every object file under `root` (those whose name is a valid key in the
/// right shard); used to rebuild the cache index at start-up.
pub(super) fn scan(root: &Path) -> Result<Vec<Found>, StorageError> {
    let mut found = Vec::new();
    for shard in shards(root)? {
        let entries = fs::read_dir(&shard).map_err(|err| StorageError::io("list", &shard, err))?;
        for entry in entries.flatten() {
            let Some(key) = entry
                .file_name()
                .to_str()
                .and_then(|name| HeapKey::parse(name).ok())
            else {
                continue;
            };
            if shard.file_name().and_then(|name| name.to_str()) != Some(key.shard()) {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_file() {
                found.push(Found {
                    key,
                    size: meta.len(),
                    modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                });
            }
        }
    }
    Ok(found)
}

/// Deletes temporary files that a crashed write left behind (older than
/// [`STALE_TEMP_AGE`]). Best effort: returns how many were deleted.
pub(super) fn sweep_stale_temp_files(root: &Path) -> usize {
    let now = SystemTime::now();
    let is_stale = |entry: &fs::DirEntry| {
        let is_temp = entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.starts_with(TEMP_PREFIX));
        let age = entry
            .metadata()
            .and_then(|meta| meta.modified())
            .ok()
            .and_then(|modified| now.duration_since(modified).ok());
        is_temp && age.is_some_and(|age| age > STALE_TEMP_AGE)
    };
    let mut dirs = shards(root).unwrap_or_default();
    dirs.push(root.to_path_buf());
    let mut swept = 0;
    for dir in dirs {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if is_stale(&entry) && fs::remove_file(entry.path()).is_ok() {
                swept += 1;
            }
        }
    }
    swept
}

/// Marks the object as just used (best effort), so that the cache's
/// least-recently-used order survives a restart.
pub(super) fn touch(root: &Path, key: &HeapKey) {
    let path = object_path(root, key);
    if let Ok(file) = OpenOptions::new().write(true).open(&path) {
        let _ = file.set_modified(SystemTime::now());
    }
}

/// The two-hex-character subdirectories of `root`.
fn shards(root: &Path) -> Result<Vec<PathBuf>, StorageError> {
    let entries = fs::read_dir(root).map_err(|err| StorageError::io("list", root, err))?;
    Ok(entries
        .flatten()
        .filter(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            name.len() == 2 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        })
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
        .map(|entry| entry.path())
        .collect())
}

/// Creates the shard directory if needed and makes its entry in `root`
/// durable, so that a rename into it cannot vanish with the directory.
fn ensure_shard(root: &Path, shard: &Path) -> Result<(), StorageError> {
    match DirBuilder::new().mode(DIR_MODE).create(shard) {
        Ok(()) => sync_dir(root),
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            // The root itself was deleted under us; recreate it once.
            create_root(root)?;
            ensure_shard(root, shard)
        }
        Err(err) => Err(StorageError::io("create directory", shard, err)),
    }
}

fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(|err| StorageError::io("sync directory", dir, err))
}

/// A file being written under a temporary name; deleted on drop unless it
/// was renamed into place.
struct TempFile {
    path: PathBuf,
    file: Option<File>,
}

impl TempFile {
    fn create(dir: &Path, label: &str) -> Result<Self, StorageError> {
        let name = format!("{TEMP_PREFIX}{label}.{}", uuid::Uuid::new_v4().as_simple());
        let path = dir.join(name);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(&path)
            .map_err(|err| StorageError::io("create", &path, err))?;
        Ok(TempFile {
            path,
            file: Some(file),
        })
    }

    fn write_durably(&self, bytes: &[u8]) -> Result<(), StorageError> {
        let Some(mut file) = self.file.as_ref() else {
            return Ok(());
        };
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .map_err(|err| StorageError::io("write", &self.path, err))
    }

    fn rename_to(mut self, target: &Path) -> Result<(), StorageError> {
        self.file = None;
        fs::rename(&self.path, target)
            .map_err(|err| StorageError::io("rename into", target, err))?;
        // Renamed: nothing left to clean up.
        self.path = PathBuf::new();
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn refusal(root: &Path) -> String {
        match create_root(root) {
            Err(err @ StorageError::Unsafe { .. }) => err.to_string(),
            other => panic!("{} accepted or failed otherwise: {other:?}", root.display()),
        }
    }

    #[test]
    fn a_new_root_is_created_owner_only() {
        let temp = tempfile::tempdir().expect("temp dir");
        let root = temp.path().join("a/b");
        create_root(&root).expect("a new root");
        let mode = fs::metadata(&root).expect("root").mode() & 0o777;
        assert_eq!(mode, DIR_MODE);
        create_root(&root).expect("the same root again");
    }

    #[test]
    fn a_root_others_can_write_into_is_refused() {
        let temp = tempfile::tempdir().expect("temp dir");
        for mode in [0o777, 0o1777, 0o770] {
            fs::set_permissions(temp.path(), fs::Permissions::from_mode(mode)).expect("chmod");
            let message = refusal(temp.path());
            assert!(
                message.contains("lets other users write into it"),
                "{message}"
            );
        }
        fs::set_permissions(temp.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        create_root(temp.path()).expect("readable by others, writable by its owner only");
    }

    #[test]
    fn a_root_of_another_user_is_refused() {
        let temp = tempfile::tempdir().expect("temp dir");
        // SAFETY: geteuid has no preconditions.
        let root = if unsafe { libc::geteuid() } == 0 {
            std::os::unix::fs::chown(temp.path(), Some(65534), Some(65534)).expect("chown");
            temp.path().to_path_buf()
        } else {
            // Not root: `/` is someone else's already.
            PathBuf::from("/")
        };
        let message = refusal(&root);
        assert!(message.contains("belongs to user id"), "{message}");
    }

    #[test]
    fn a_root_inside_a_directory_others_can_rename_it_in_is_refused() {
        let temp = tempfile::tempdir().expect("temp dir");
        let parent = temp.path().join("open");
        let root = parent.join("heaps");
        fs::create_dir(&parent).expect("parent");
        fs::set_permissions(&parent, fs::Permissions::from_mode(0o777)).expect("chmod");
        let message = refusal(&root);
        assert!(message.contains("lets other users replace it"), "{message}");
        fs::set_permissions(&parent, fs::Permissions::from_mode(0o1777)).expect("chmod");
        create_root(&root).expect("a sticky parent, as /tmp is");
    }

    #[test]
    fn a_file_as_root_is_refused() {
        let temp = tempfile::NamedTempFile::new().expect("temp file");
        match create_root(temp.path()) {
            Err(StorageError::Io { .. }) => {}
            Err(err @ StorageError::Unsafe { .. }) => {
                assert!(err.to_string().contains("not a directory"), "{err}")
            }
            other => panic!("a file accepted as root: {other:?}"),
        }
    }
}
