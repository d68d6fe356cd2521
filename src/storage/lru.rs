//! Size-bounded least-recently-used bookkeeping for the S3 cache. Pure data:
//! the cache deletes the files this index tells it to evict.

use std::collections::{BTreeMap, HashMap};

use super::HeapKey;

/// Which cached objects exist, how large they are and in what order they
/// were last used.
#[derive(Debug)]
pub(super) struct LruIndex {
    max_bytes: u64,
    total_bytes: u64,
    /// Logical clock: a larger tick is a more recent use.
    clock: u64,
    entries: HashMap<HeapKey, Entry>,
    by_use: BTreeMap<u64, HeapKey>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    size: u64,
    last_used: u64,
}

impl LruIndex {
    pub(super) fn new(max_bytes: u64) -> Self {
        LruIndex {
            max_bytes,
            total_bytes: 0,
            clock: 0,
            entries: HashMap::new(),
            by_use: BTreeMap::new(),
        }
    }

    /// Whether an object of `size` bytes can be cached at all; one larger
    /// than the whole bound would evict everything and then itself.
    pub(super) fn fits(&self, size: u64) -> bool {
        size <= self.max_bytes
    }

    pub(super) fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// Records `key` (of `size` bytes) as the most recently used object and
    /// returns the least recently used others that must go to stay within the
    /// bound; they are already forgotten by the index. An object larger than
    /// the whole bound (found on disk after the bound shrank) is not kept:
    /// it alone is returned, and the others stay.
    pub(super) fn insert(&mut self, key: HeapKey, size: u64) -> Vec<HeapKey> {
        self.remove(&key);
        if !self.fits(size) {
            return vec![key];
        }
        let last_used = self.tick();
        self.by_use.insert(last_used, key.clone());
        self.entries.insert(key.clone(), Entry { size, last_used });
        self.total_bytes += size;

        let mut evicted = Vec::new();
        while self.total_bytes > self.max_bytes {
            let Some((_, oldest)) = self.by_use.first_key_value() else {
                break;
            };
            if *oldest == key {
                break;
            }
            let oldest = oldest.clone();
            self.remove(&oldest);
            evicted.push(oldest);
        }
        evicted
    }

    pub(super) fn contains(&self, key: &HeapKey) -> bool {
        self.entries.contains_key(key)
    }

    /// Marks `key` as just used; `false` when the index does not know it.
    pub(super) fn touch(&mut self, key: &HeapKey) -> bool {
        let Some(entry) = self.entries.get(key).copied() else {
            return false;
        };
        self.by_use.remove(&entry.last_used);
        let last_used = self.tick();
        self.by_use.insert(last_used, key.clone());
        self.entries.insert(
            key.clone(),
            Entry {
                size: entry.size,
                last_used,
            },
        );
        true
    }

    pub(super) fn remove(&mut self, key: &HeapKey) {
        if let Some(entry) = self.entries.remove(key) {
            self.by_use.remove(&entry.last_used);
            self.total_bytes -= entry.size;
        }
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> HeapKey {
        HeapKey::of(&[n])
    }

    #[test]
    fn an_object_larger_than_the_bound_goes_alone() {
        let mut index = LruIndex::new(100);
        assert!(index.insert(key(1), 40).is_empty());
        assert!(index.insert(key(2), 40).is_empty());
        assert_eq!(index.insert(key(3), 101), [key(3)]);
        assert_eq!(index.total_bytes(), 80);
        assert!(index.touch(&key(1)) && index.touch(&key(2)));
        assert!(!index.touch(&key(3)));
    }

    #[test]
    fn evicts_least_recently_used_beyond_the_bound() {
        let mut index = LruIndex::new(100);
        assert!(index.insert(key(1), 40).is_empty());
        assert!(index.insert(key(2), 40).is_empty());
        assert!(index.touch(&key(1)), "1 is now more recent than 2");
        assert_eq!(index.insert(key(3), 40), [key(2)]);
        assert_eq!(index.total_bytes(), 80);
        assert_eq!(index.insert(key(4), 90), [key(1), key(3)]);
        assert_eq!(index.total_bytes(), 90);
    }

    #[test]
    fn reinserting_does_not_double_count() {
        let mut index = LruIndex::new(100);
        index.insert(key(1), 60);
        assert!(index.insert(key(1), 60).is_empty());
        assert_eq!(index.total_bytes(), 60);
    }

    #[test]
    fn remove_and_unknown_keys() {
        let mut index = LruIndex::new(100);
        index.insert(key(1), 10);
        index.remove(&key(1));
        index.remove(&key(2));
        assert_eq!(index.total_bytes(), 0);
        assert!(!index.touch(&key(1)));
    }

    #[test]
    fn oversized_objects_do_not_fit() {
        let index = LruIndex::new(100);
        assert!(index.fits(100));
        assert!(!index.fits(101));
    }
}
