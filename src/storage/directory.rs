//! Heap snapshots as files in a local directory (the default store).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;

use super::error::blocking;
use super::{HeapKey, HeapObject, HeapStore, StorageError, files};

/// Objects at `<root>/<ab>/<hash>`, written atomically (see [`files`]).
#[derive(Debug, Clone)]
pub struct DirectoryStore {
    root: Arc<Path>,
    description: Arc<str>,
}

impl DirectoryStore {
    /// Creates the directory if needed (owner-only) and deletes temporary
    /// files that a crash left behind.
    pub async fn open(root: impl Into<PathBuf>) -> Result<Self, StorageError> {
        let root: Arc<Path> = Arc::from(root.into());
        let description: Arc<str> = Arc::from(format!("directory {}", root.display()));
        let dir = root.clone();
        let swept = blocking(&description, move || {
            files::create_root(&dir)?;
            Ok(files::sweep_stale_temp_files(&dir))
        })
        .await?;
        if swept > 0 {
            tracing::info!(dir = %root.display(), swept, "deleted temporary files left by interrupted writes");
        }
        Ok(DirectoryStore { root, description })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Stores `object` unless a valid copy is already there; a present but
    /// corrupt copy is replaced.
    fn put_blocking(root: &Path, object: &HeapObject) -> Result<(), StorageError> {
        let key = object.key();
        if let Some(existing) = files::read(root, key)? {
            match key.verify(&existing) {
                Ok(()) => return Ok(()),
                Err(err) => tracing::warn!(error = %err, "replacing a corrupt heap file"),
            }
        }
        files::write_atomic(root, key, object.bytes())
    }

    fn get_blocking(root: &Path, key: &HeapKey) -> Result<Vec<u8>, StorageError> {
        let object = files::read(root, key)?.ok_or_else(|| StorageError::NotFound(key.clone()))?;
        key.verify(&object)?;
        Ok(object)
    }
}

impl HeapStore for DirectoryStore {
    fn put(&self, object: HeapObject) -> BoxFuture<'_, Result<(), StorageError>> {
        let root = self.root.clone();
        blocking(&self.description, move || {
            Self::put_blocking(&root, &object)
        })
        .boxed()
    }

    fn get(&self, key: &HeapKey) -> BoxFuture<'_, Result<Vec<u8>, StorageError>> {
        let (root, key) = (self.root.clone(), key.clone());
        blocking(&self.description, move || Self::get_blocking(&root, &key)).boxed()
    }

    fn contains(&self, key: &HeapKey) -> BoxFuture<'_, Result<bool, StorageError>> {
        let (root, key) = (self.root.clone(), key.clone());
        blocking(&self.description, move || files::exists(&root, &key)).boxed()
    }

    fn check(&self) -> BoxFuture<'_, Result<(), StorageError>> {
        let root = self.root.clone();
        blocking(&self.description, move || files::probe_writable(&root)).boxed()
    }

    fn describe(&self) -> String {
        self.description.to_string()
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use bytes::Bytes;

    use super::*;

    async fn store() -> (tempfile::TempDir, DirectoryStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = DirectoryStore::open(dir.path().join("heaps"))
            .await
            .expect("open");
        (dir, store)
    }

    fn object(text: &str) -> (HeapKey, Bytes) {
        let bytes = Bytes::from(text.as_bytes().to_vec());
        (HeapKey::of(&bytes), bytes)
    }

    /// Every file under the store, relative to its root.
    fn tree(store: &DirectoryStore) -> Vec<String> {
        let mut paths = Vec::new();
        for shard in fs::read_dir(store.root()).expect("root").flatten() {
            for entry in fs::read_dir(shard.path()).expect("shard").flatten() {
                let path = entry.path();
                let relative = path.strip_prefix(store.root()).expect("under root");
                paths.push(relative.display().to_string());
            }
        }
        paths.sort();
        paths
    }

    #[tokio::test]
    async fn round_trip_in_a_sharded_layout() {
        let (_dir, store) = store().await;
        let (key, bytes) = object("heap one");
        store
            .put(HeapObject::new(bytes.clone()))
            .await
            .expect("put");
        assert_eq!(store.get(&key).await.expect("get"), bytes);
        assert_eq!(tree(&store), [format!("{}/{key}", &key.as_str()[..2])]);
        assert_eq!(
            store.describe(),
            format!("directory {}", store.root().display())
        );
    }

    #[tokio::test]
    async fn missing_is_not_found() {
        let (_dir, store) = store().await;
        let (key, _) = object("never stored");
        let err = store.get(&key).await.expect_err("missing");
        assert!(matches!(err, StorageError::NotFound(_)), "{err:?}");
        assert_eq!(err.to_string(), format!("heap not found: {key}"));
    }

    #[tokio::test]
    async fn flipped_byte_and_truncation_are_corrupt() {
        let (_dir, store) = store().await;
        let (key, bytes) = object("a heap that will be damaged");
        store
            .put(HeapObject::new(bytes.clone()))
            .await
            .expect("put");
        let path = files::object_path(store.root(), &key);

        let mut flipped = bytes.to_vec();
        flipped[5] ^= 0x20;
        fs::write(&path, &flipped).expect("damage");
        let err = store.get(&key).await.expect_err("flipped");
        assert!(matches!(err, StorageError::Corrupt { .. }), "{err:?}");
        assert!(
            err.to_string()
                .starts_with(&format!("heap corrupt: {key}: ")),
            "{err}"
        );

        fs::write(&path, &bytes[..10]).expect("truncate");
        let err = store.get(&key).await.expect_err("truncated");
        assert!(err.to_string().contains("its 10 bytes hash to"), "{err}");
    }

    #[tokio::test]
    async fn put_is_idempotent_and_repairs_a_corrupt_copy() {
        let (_dir, store) = store().await;
        let (key, bytes) = object("stored twice");
        store
            .put(HeapObject::new(bytes.clone()))
            .await
            .expect("first put");
        let path = files::object_path(store.root(), &key);
        let written = fs::metadata(&path)
            .and_then(|m| m.modified())
            .expect("mtime");
        std::thread::sleep(std::time::Duration::from_millis(20));

        store
            .put(HeapObject::new(bytes.clone()))
            .await
            .expect("second put");
        let after = fs::metadata(&path)
            .and_then(|m| m.modified())
            .expect("mtime");
        assert_eq!(written, after, "a valid copy is not rewritten");

        fs::write(&path, b"garbage").expect("damage");
        store
            .put(HeapObject::new(bytes.clone()))
            .await
            .expect("repairing put");
        assert_eq!(store.get(&key).await.expect("get"), bytes);
    }

    #[tokio::test]
    async fn writes_leave_no_temp_files_and_stray_temp_files_are_not_served() {
        let (_dir, store) = store().await;
        let (_, bytes) = object("atomic");
        store.put(HeapObject::new(bytes)).await.expect("put");
        assert!(
            tree(&store).iter().all(|path| !path.contains(".tmp")),
            "{:?}",
            tree(&store)
        );

        // A write that crashed before its rename: the complete content, but
        // only under a temporary name.
        let (other, other_bytes) = object("interrupted");
        let shard = store.root().join(other.shard());
        fs::create_dir_all(&shard).expect("shard");
        fs::write(shard.join(format!(".tmp.{other}.0123")), &other_bytes).expect("stray");
        let err = store.get(&other).await.expect_err("not served");
        assert!(matches!(err, StorageError::NotFound(_)), "{err:?}");
    }

    #[tokio::test]
    async fn open_sweeps_only_stale_temp_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let shard = dir.path().join("ab");
        fs::create_dir_all(&shard).expect("shard");
        let stale = shard.join(".tmp.stale.1");
        let fresh = shard.join(".tmp.fresh.2");
        fs::write(&stale, b"x").expect("stale");
        fs::write(&fresh, b"x").expect("fresh");
        let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
        fs::File::options()
            .write(true)
            .open(&stale)
            .and_then(|file| file.set_modified(two_hours_ago))
            .expect("age");

        DirectoryStore::open(dir.path()).await.expect("open");
        assert!(!stale.exists(), "a crashed write's leftovers are deleted");
        assert!(
            fresh.exists(),
            "a write in progress elsewhere is left alone"
        );
    }

    #[tokio::test]
    async fn check_proves_writability() {
        let (_dir, store) = store().await;
        store.check().await.expect("writable");
        assert!(tree(&store).is_empty(), "the probe cleans up after itself");

        let blocked = tempfile::tempdir().expect("tempdir");
        let file = blocked.path().join("not-a-directory");
        fs::write(&file, b"").expect("file");
        let err = DirectoryStore::open(&file)
            .await
            .expect_err("a file is no directory");
        assert!(matches!(err, StorageError::Io { .. }), "{err:?}");
        assert!(
            err.to_string()
                .starts_with("heap storage I/O error: cannot create directory"),
            "{err}"
        );
    }
}
