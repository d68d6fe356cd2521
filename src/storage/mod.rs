//! Heap snapshot stores: content-addressed, immutable objects named by SHA-256.
//!
//! The executor persists the heap an execution leaves behind and restores it
//! into a later one; this module only keeps the bytes. Objects are opaque
//! here (the executor frames them with its own header and compression).
//!
//! Invariants every backend keeps:
//! - An object is stored under the SHA-256 of its bytes ([`HeapKey`]), and
//!   never changes: a second `put` of the same key is a no-op. `put` takes a
//!   [`HeapObject`], whose key was computed from its bytes.
//! - Every read is verified against its key ([`HeapKey::verify`]); bytes that
//!   do not match are [`StorageError::Corrupt`], never returned.
//! - Keys are validated before they touch a path or an S3 key, so agent input
//!   such as `../../etc/passwd` cannot escape the store.
//! - Local writes are atomic: a crash leaves a complete object or none under
//!   its name (see `files`).
//!
//! Backends: [`DirectoryStore`] (the default, at [`DEFAULT_DIRECTORY`]),
//! [`S3Store`], and [`CachedStore`], a size-bounded local cache in front of
//! S3. [`open`] picks one from the `[storage]` configuration.

mod cache;
mod directory;
mod error;
mod files;
mod key;
mod lru;
mod s3;

use std::path::PathBuf;
use std::sync::Arc;

use futures::future::BoxFuture;

pub use cache::CachedStore;
pub use directory::DirectoryStore;
pub use error::StorageError;
pub use key::{HEAP_KEY_LEN, HeapKey, HeapObject, InvalidHeapKey};
pub use s3::S3Store;

use crate::config::StorageConfig;

/// Where heap snapshots go when the configuration names no store and is not
/// stateless.
pub const DEFAULT_DIRECTORY: &str = "/tmp/mcp-v8-heaps";

/// Bytes in a MiB, for `cache_max_mb`.
const MIB: u64 = 1024 * 1024;

/// Immutable, content-addressed objects. Implementations verify on read that
/// the bytes hash to the key.
///
/// Methods return boxed futures so that the store can be chosen at start-up
/// and shared as `Arc<dyn HeapStore>`.
pub trait HeapStore: Send + Sync + std::fmt::Debug + 'static {
    /// Stores `object` under its key. Idempotent: an object that is already
    /// present is not written again.
    fn put(&self, object: HeapObject) -> BoxFuture<'_, Result<(), StorageError>>;

    /// The object named `key`, verified; [`StorageError::NotFound`] when the
    /// store has no such object.
    fn get(&self, key: &HeapKey) -> BoxFuture<'_, Result<Vec<u8>, StorageError>>;

    /// Whether an object named `key` is stored, without reading it (so not
    /// verified): for calls that name a heap without resuming it.
    fn contains(&self, key: &HeapKey) -> BoxFuture<'_, Result<bool, StorageError>>;

    /// Readiness: the store is reachable and accepts writes (for S3, the
    /// bucket answers).
    fn check(&self) -> BoxFuture<'_, Result<(), StorageError>>;

    /// Names the store for logs and errors, e.g. `directory /tmp/mcp-v8-heaps`
    /// or `s3://bucket/prefix/ (cache /var/cache/mcp-v8)`.
    fn describe(&self) -> String;
}

/// Opens the store the `[storage]` section describes: `None` when stateless,
/// else S3 (behind a cache when `cache_dir` is set) when `s3_bucket` is set,
/// else a directory (`directory_path`, by default [`DEFAULT_DIRECTORY`]).
///
/// Local directories are created here, so that a path that cannot be used
/// stops the server at start-up; S3 is not contacted (see
/// [`HeapStore::check`]).
pub async fn open(config: &StorageConfig) -> Result<Option<Arc<dyn HeapStore>>, StorageError> {
    if config.stateless {
        return Ok(None);
    }
    let store: Arc<dyn HeapStore> = match &config.s3_bucket {
        Some(bucket) => {
            let remote = Arc::new(S3Store::open(bucket, config).await?);
            match &config.cache_dir {
                Some(dir) => {
                    let max_bytes = config.cache_max_mb.saturating_mul(MIB);
                    Arc::new(CachedStore::open(remote, dir, max_bytes).await?)
                }
                None => remote,
            }
        }
        None => {
            let dir = config
                .directory_path
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DIRECTORY));
            Arc::new(DirectoryStore::open(dir).await?)
        }
    };
    tracing::info!(store = %store.describe(), "heap snapshot storage");
    Ok(Some(store))
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[tokio::test]
    async fn stateless_opens_nothing() {
        let config = StorageConfig {
            stateless: true,
            ..StorageConfig::default()
        };
        assert!(open(&config).await.expect("open").is_none());
    }

    #[tokio::test]
    async fn directory_path_opens_a_directory_store() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = StorageConfig {
            directory_path: Some(dir.path().join("heaps")),
            ..StorageConfig::default()
        };
        let store = open(&config).await.expect("open").expect("stateful");
        assert_eq!(
            store.describe(),
            format!("directory {}", dir.path().join("heaps").display())
        );
        let object = HeapObject::new(Bytes::from_static(b"through the trait object"));
        store.put(object.clone()).await.expect("put");
        assert_eq!(store.get(object.key()).await.expect("get"), *object.bytes());
        store.check().await.expect("check");
    }

    #[test]
    fn default_configuration_is_the_default_directory() {
        let config = StorageConfig::default();
        assert!(!config.stateless);
        assert_eq!(config.directory_path, None);
        assert_eq!(config.s3_bucket, None);
        assert_eq!(DEFAULT_DIRECTORY, "/tmp/mcp-v8-heaps");
    }
}
