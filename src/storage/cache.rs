//! A local, size-bounded cache in front of a remote store (S3), so that an
//! execution resuming a recent heap does not pay a round trip.
//!
//! Reads try the cache first; a cached file is verified like any read, and a
//! corrupt one is deleted and fetched again. Writes go to the remote store
//! first and then to the cache (write-through), so the cache never holds an
//! object the remote store lacks. The cache is an optimisation: failing to
//! write or evict a cache file is logged, never returned.
//!
//! The cache directory belongs to one server process: the index of sizes and
//! use order lives in memory, rebuilt from the files (by modification time) at
//! start-up.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use futures::FutureExt;
use futures::future::BoxFuture;

use super::error::blocking;
use super::lru::LruIndex;
use super::{HeapKey, HeapObject, HeapStore, StorageError, files};
use crate::dir_lock::{self, DirLock, DirLockError};

/// `remote` with a cache of its objects in `dir`.
#[derive(Debug)]
pub struct CachedStore {
    remote: Arc<dyn HeapStore>,
    cache: Arc<Cache>,
}

/// The cache directory and its index; shared with blocking tasks.
#[derive(Debug)]
struct Cache {
    dir: PathBuf,
    index: Mutex<LruIndex>,
    /// The index counts only this process's writes, so a second process on
    /// the same directory would push it past its bound: one holds it.
    _lock: DirLock,
}

/// What a cache lookup found.
enum Lookup {
    Hit(Vec<u8>),
    Miss,
}

impl CachedStore {
    /// Creates `dir` if needed, indexes the files already in it (evicting down
    /// to `max_bytes` if the bound shrank) and sweeps temporary files left by
    /// a crash.
    pub async fn open(
        remote: Arc<dyn HeapStore>,
        dir: impl Into<PathBuf>,
        max_bytes: u64,
    ) -> Result<Self, StorageError> {
        let dir = dir.into();
        let backend = format!("cache {}", dir.display());
        let cache = blocking(&backend, move || Cache::open(dir, max_bytes)).await?;
        Ok(CachedStore {
            remote,
            cache: Arc::new(cache),
        })
    }

    /// The cache directory.
    pub fn cache_dir(&self) -> &Path {
        &self.cache.dir
    }

    /// Bytes currently held in the cache, as the index counts them.
    pub fn cached_bytes(&self) -> u64 {
        self.cache.index().total_bytes()
    }

    async fn get_cached(&self, key: &HeapKey) -> Result<Vec<u8>, StorageError> {
        let cache = self.cache.clone();
        let lookup_key = key.clone();
        let describe = self.describe();
        match blocking(&describe, move || Ok(cache.lookup(&lookup_key))).await? {
            Lookup::Hit(object) => return Ok(object),
            Lookup::Miss => {}
        }
        let object = self.remote.get(key).await?;
        let cache = self.cache.clone();
        let key = key.clone();
        blocking(&describe, move || {
            cache.store(&key, &object);
            Ok(object)
        })
        .await
    }

    async fn put_through(&self, object: HeapObject) -> Result<(), StorageError> {
        self.remote.put(object.clone()).await?;
        let cache = self.cache.clone();
        blocking(&self.describe(), move || {
            cache.store(object.key(), object.bytes());
            Ok(())
        })
        .await
    }

    async fn check_both(&self) -> Result<(), StorageError> {
        self.remote.check().await?;
        let cache = self.cache.clone();
        blocking(&self.describe(), move || files::probe_writable(&cache.dir)).await
    }
}

impl HeapStore for CachedStore {
    fn put(&self, object: HeapObject) -> BoxFuture<'_, Result<(), StorageError>> {
        self.put_through(object).boxed()
    }

    fn get(&self, key: &HeapKey) -> BoxFuture<'_, Result<Vec<u8>, StorageError>> {
        let key = key.clone();
        async move { self.get_cached(&key).await }.boxed()
    }

    fn contains(&self, key: &HeapKey) -> BoxFuture<'_, Result<bool, StorageError>> {
        let key = key.clone();
        async move {
            // Everything cached was written through or read from the remote
            // store, which keeps it: no need to ask.
            if self.cache.index().contains(&key) {
                return Ok(true);
            }
            self.remote.contains(&key).await
        }
        .boxed()
    }

    fn check(&self) -> BoxFuture<'_, Result<(), StorageError>> {
        self.check_both().boxed()
    }

    fn describe(&self) -> String {
        format!(
            "{} (cache {})",
            self.remote.describe(),
            self.cache.dir.display()
        )
    }
}

impl Cache {
    fn open(dir: PathBuf, max_bytes: u64) -> Result<Self, StorageError> {
        files::create_root(&dir)?;
        let lock = dir_lock::lock(&dir).map_err(|error| match error {
            DirLockError::InUse { holder } => StorageError::InUse {
                path: dir.clone(),
                holder,
            },
            DirLockError::Io(error) => StorageError::io("lock", &dir, error),
        })?;
        files::sweep_stale_temp_files(&dir);
        let mut found = files::scan(&dir)?;
        found.sort_by_key(|file| file.modified);
        let mut index = LruIndex::new(max_bytes);
        let mut evicted = Vec::new();
        for file in found {
            evicted.extend(index.insert(file.key, file.size));
        }
        let cache = Cache {
            dir,
            index: Mutex::new(index),
            _lock: lock,
        };
        cache.delete(&evicted);
        Ok(cache)
    }

    /// The index, even if a thread panicked while holding it: every update
    /// leaves it consistent, and the worst a stale entry costs is a refetch.
    fn index(&self) -> MutexGuard<'_, LruIndex> {
        self.index
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A verified cached copy, or a miss. Unreadable and corrupt files count
    /// as misses (and corrupt ones are deleted), so that a damaged cache can
    /// never fail an execution the remote store could serve.
    fn lookup(&self, key: &HeapKey) -> Lookup {
        let object = match files::read(&self.dir, key) {
            Ok(Some(object)) => object,
            Ok(None) => {
                let mut index = self.index();
                // A concurrent store may have written and indexed it since
                // the read: forget only a file that is still not there.
                if !files::object_path(&self.dir, key).exists() {
                    index.remove(key);
                }
                return Lookup::Miss;
            }
            Err(err) => {
                tracing::warn!(error = %err, "heap cache read failed; fetching from the store");
                return Lookup::Miss;
            }
        };
        if let Err(err) = key.verify(&object) {
            tracing::warn!(error = %err, "deleting a corrupt cached heap; fetching it again");
            self.index().remove(key);
            self.delete(std::slice::from_ref(key));
            return Lookup::Miss;
        }
        let size = object.len() as u64;
        let mut index = self.index();
        if !index.touch(key) {
            // Written by an earlier process after the start-up scan, or
            // re-created after an eviction raced with a read.
            let evicted = index.insert(key.clone(), size);
            self.delete_locked(&evicted);
        }
        drop(index);
        files::touch(&self.dir, key);
        Lookup::Hit(object)
    }

    /// Adds a verified object, evicting least recently used ones beyond the
    /// bound. Best effort: failures are logged.
    fn store(&self, key: &HeapKey, object: &[u8]) {
        let size = object.len() as u64;
        if !self.index().fits(size) {
            tracing::debug!(%key, size, "heap larger than the whole cache; not cached");
            return;
        }
        if let Err(err) = files::write_atomic(&self.dir, key, object) {
            tracing::warn!(error = %err, "could not cache a heap");
            return;
        }
        let mut index = self.index();
        let evicted = index.insert(key.clone(), size);
        // Deleted while the index is locked, so that a concurrent store of an
        // evicted key cannot be undone by this deletion.
        self.delete_locked(&evicted);
    }

    fn delete(&self, keys: &[HeapKey]) {
        let _index = self.index();
        self.delete_locked(keys);
    }

    /// Deletes the files of `keys`; the caller holds the index lock.
    fn delete_locked(&self, keys: &[HeapKey]) {
        for key in keys {
            if let Err(err) = files::remove(&self.dir, key) {
                tracing::warn!(error = %err, "could not evict a cached heap");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use bytes::Bytes;

    use super::*;
    use crate::storage::DirectoryStore;

    /// A remote store that counts its reads, to tell hits from misses.
    #[derive(Debug)]
    struct Counting {
        inner: DirectoryStore,
        gets: AtomicUsize,
    }

    impl HeapStore for Counting {
        fn put(&self, object: HeapObject) -> BoxFuture<'_, Result<(), StorageError>> {
            self.inner.put(object)
        }
        fn get(&self, key: &HeapKey) -> BoxFuture<'_, Result<Vec<u8>, StorageError>> {
            self.gets.fetch_add(1, Ordering::SeqCst);
            self.inner.get(key)
        }
        fn contains(&self, key: &HeapKey) -> BoxFuture<'_, Result<bool, StorageError>> {
            self.inner.contains(key)
        }
        fn check(&self) -> BoxFuture<'_, Result<(), StorageError>> {
            self.inner.check()
        }
        fn describe(&self) -> String {
            "counting".to_owned()
        }
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        remote: Arc<Counting>,
        store: CachedStore,
        cache_dir: PathBuf,
    }

    impl Fixture {
        async fn new(max_bytes: u64) -> Fixture {
            let dir = tempfile::tempdir().expect("tempdir");
            let remote = Arc::new(Counting {
                inner: DirectoryStore::open(dir.path().join("remote"))
                    .await
                    .expect("remote"),
                gets: AtomicUsize::new(0),
            });
            let cache_dir = dir.path().join("cache");
            let store = CachedStore::open(remote.clone(), &cache_dir, max_bytes)
                .await
                .expect("cache");
            Fixture {
                _dir: dir,
                remote,
                store,
                cache_dir,
            }
        }

        /// Closes the store and opens the directory again with `max_bytes`.
        async fn reopen(self, max_bytes: u64) -> Fixture {
            let Fixture {
                _dir,
                remote,
                store,
                cache_dir,
            } = self;
            drop(store);
            let store = CachedStore::open(remote.clone(), &cache_dir, max_bytes)
                .await
                .expect("reopen");
            Fixture {
                _dir,
                remote,
                store,
                cache_dir,
            }
        }

        fn remote_gets(&self) -> usize {
            self.remote.gets.load(Ordering::SeqCst)
        }

        fn cached(&self, key: &HeapKey) -> bool {
            files::object_path(&self.cache_dir, key).exists()
        }
    }

    /// An object of exactly `size` bytes, distinct per `seed`.
    fn object(seed: u8, size: usize) -> (HeapKey, Bytes) {
        let bytes = Bytes::from(vec![seed; size]);
        (HeapKey::of(&bytes), bytes)
    }

    #[tokio::test]
    async fn writes_go_through_and_reads_hit_the_cache() {
        let fixture = Fixture::new(1 << 20).await;
        let (key, bytes) = object(1, 100);
        fixture
            .store
            .put(HeapObject::new(bytes.clone()))
            .await
            .expect("put");
        assert!(fixture.cached(&key), "write-through");
        assert_eq!(fixture.store.get(&key).await.expect("get"), bytes);
        assert_eq!(fixture.remote_gets(), 0, "served from the cache");
        assert_eq!(
            fixture.store.describe(),
            format!("counting (cache {})", fixture.cache_dir.display())
        );
    }

    #[tokio::test]
    async fn a_wiped_cache_is_refilled_from_the_remote() {
        let fixture = Fixture::new(1 << 20).await;
        let (key, bytes) = object(2, 100);
        fixture
            .store
            .put(HeapObject::new(bytes.clone()))
            .await
            .expect("put");
        fs::remove_dir_all(&fixture.cache_dir).expect("wipe");

        assert_eq!(fixture.store.get(&key).await.expect("miss"), bytes);
        assert_eq!(fixture.remote_gets(), 1);
        assert!(fixture.cached(&key), "refilled");
        assert_eq!(fixture.store.get(&key).await.expect("hit"), bytes);
        assert_eq!(fixture.remote_gets(), 1);
    }

    #[tokio::test]
    async fn a_corrupt_cached_file_is_deleted_and_refetched() {
        let fixture = Fixture::new(1 << 20).await;
        let (key, bytes) = object(3, 100);
        fixture
            .store
            .put(HeapObject::new(bytes.clone()))
            .await
            .expect("put");
        let path = files::object_path(&fixture.cache_dir, &key);
        let mut damaged = bytes.to_vec();
        damaged[0] ^= 0xff;
        fs::write(&path, damaged).expect("damage");

        assert_eq!(fixture.store.get(&key).await.expect("refetched"), bytes);
        assert_eq!(fixture.remote_gets(), 1);
        assert_eq!(fs::read(&path).expect("rewritten"), bytes);
    }

    #[tokio::test]
    async fn missing_everywhere_is_not_found() {
        let fixture = Fixture::new(1 << 20).await;
        let (key, _) = object(4, 10);
        let err = fixture.store.get(&key).await.expect_err("missing");
        assert!(matches!(err, StorageError::NotFound(_)), "{err:?}");
    }

    #[tokio::test]
    async fn eviction_keeps_the_most_recently_used_within_the_bound() {
        let fixture = Fixture::new(250).await;
        let (a, a_bytes) = object(10, 100);
        let (b, b_bytes) = object(11, 100);
        let (c, c_bytes) = object(12, 100);
        fixture
            .store
            .put(HeapObject::new(a_bytes))
            .await
            .expect("a");
        fixture
            .store
            .put(HeapObject::new(b_bytes))
            .await
            .expect("b");
        fixture.store.get(&a).await.expect("use a");
        fixture
            .store
            .put(HeapObject::new(c_bytes))
            .await
            .expect("c");

        assert!(fixture.cached(&a), "recently used");
        assert!(!fixture.cached(&b), "least recently used is evicted");
        assert!(fixture.cached(&c), "just written");
        assert_eq!(fixture.store.cached_bytes(), 200);
        assert_eq!(fixture.remote_gets(), 0);
        // Evicted from the cache, still in the remote store.
        fixture.store.get(&b).await.expect("b from remote");
        assert_eq!(fixture.remote_gets(), 1);
    }

    #[tokio::test]
    async fn objects_larger_than_the_cache_are_not_cached() {
        let fixture = Fixture::new(50).await;
        let (key, bytes) = object(20, 100);
        fixture
            .store
            .put(HeapObject::new(bytes.clone()))
            .await
            .expect("put");
        assert!(!fixture.cached(&key));
        assert_eq!(fixture.store.get(&key).await.expect("get"), bytes);
        assert_eq!(fixture.store.cached_bytes(), 0);
    }

    #[tokio::test]
    async fn reopening_indexes_existing_files_and_enforces_a_smaller_bound() {
        let fixture = Fixture::new(1 << 20).await;
        let mut keys = Vec::new();
        for seed in 30..33 {
            let (key, bytes) = object(seed, 100);
            fixture
                .store
                .put(HeapObject::new(bytes))
                .await
                .expect("put");
            keys.push(key);
            // Distinct modification times give a deterministic order.
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let fixture = fixture.reopen(200).await;
        assert_eq!(fixture.store.cached_bytes(), 200);
        assert!(!fixture.cached(&keys[0]), "the oldest file is evicted");
        assert!(fixture.cached(&keys[1]) && fixture.cached(&keys[2]));
    }

    /// A file larger than the new, smaller bound goes; the ones that fit stay
    /// (it used to be kept, over the bound, and the small ones deleted).
    #[tokio::test]
    async fn reopening_with_a_bound_below_one_file_deletes_just_that_file() {
        let fixture = Fixture::new(1 << 20).await;
        let (small_a, bytes) = object(40, 100);
        fixture
            .store
            .put(HeapObject::new(bytes))
            .await
            .expect("put");
        let (small_b, bytes) = object(41, 100);
        fixture
            .store
            .put(HeapObject::new(bytes))
            .await
            .expect("put");
        std::thread::sleep(std::time::Duration::from_millis(20));
        let (large, bytes) = object(42, 1000);
        fixture
            .store
            .put(HeapObject::new(bytes))
            .await
            .expect("put");

        let fixture = fixture.reopen(500).await;
        assert_eq!(fixture.store.cached_bytes(), 200);
        assert!(!fixture.cached(&large), "over the bound");
        assert!(fixture.cached(&small_a) && fixture.cached(&small_b));
    }

    /// A cache directory belongs to one store: the index counts only its
    /// own writes, and two of them overran the bound.
    #[tokio::test]
    async fn a_directory_in_use_is_refused() {
        let fixture = Fixture::new(1 << 20).await;
        let error = CachedStore::open(fixture.remote.clone(), &fixture.cache_dir, 1 << 20)
            .await
            .expect_err("a second store on the same directory");
        assert!(matches!(error, StorageError::InUse { .. }), "{error}");
        assert!(error.to_string().contains("--cache-dir"), "{error}");
    }
}
