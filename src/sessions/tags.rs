//! Heap tags: string labels on heap snapshots, to find a snapshot again by
//! what it holds rather than by its hash.
//!
//! The `heap_tags` tree maps a heap name (64 hex digits) to its tags as a JSON
//! object; a heap without tags has no entry. Tags are not tied to heaps that
//! exist in storage: the tag store only knows names.
//!
//! [`SessionStore::query_by_tags`] scans every tagged heap. Tagging is done by
//! hand or per execution, so the tree stays small enough that an index would
//! cost more in write paths and consistency than it saves.

use std::collections::BTreeMap;

use sled::IVec;

use super::validate::{validate_heap, validate_tags};
use super::{SessionError, SessionStore};

/// A heap's tags, key to value.
pub type Tags = BTreeMap<String, String>;

impl SessionStore {
    /// The tags of `heap`; empty when it has none.
    pub fn get_tags(&self, heap: &str) -> Result<Tags, SessionError> {
        validate_heap(heap)?;
        match self.tags.get(heap.as_bytes())? {
            Some(value) => decode_tags(heap, &value),
            None => Ok(Tags::new()),
        }
    }

    /// Replaces the tags of `heap` with `tags` (an empty map removes them all).
    pub fn set_tags(&self, heap: &str, tags: Tags) -> Result<(), SessionError> {
        validate_heap(heap)?;
        validate_tags(&tags)?;
        if tags.is_empty() {
            self.tags.remove(heap.as_bytes())?;
        } else {
            self.tags.insert(heap.as_bytes(), encode_tags(&tags)?)?;
        }
        self.flush()
    }

    /// Removes the tags named in `keys` from `heap` (all of its tags when
    /// `keys` is `None`) and returns the tags that remain. Keys the heap does
    /// not carry are ignored, so deleting twice is harmless.
    pub fn delete_tags(&self, heap: &str, keys: Option<&[String]>) -> Result<Tags, SessionError> {
        validate_heap(heap)?;
        let Some(keys) = keys else {
            self.tags.remove(heap.as_bytes())?;
            self.flush()?;
            return Ok(Tags::new());
        };
        // A read-modify-write under compare-and-swap, so that a concurrent
        // set_tags on the same heap is never half-overwritten.
        loop {
            let Some(current) = self.tags.get(heap.as_bytes())? else {
                return Ok(Tags::new());
            };
            let mut remaining = decode_tags(heap, &current)?;
            remaining.retain(|key, _| !keys.contains(key));
            let new = if remaining.is_empty() {
                None
            } else {
                Some(encode_tags(&remaining)?)
            };
            if self
                .tags
                .compare_and_swap(heap.as_bytes(), Some(current), new)?
                .is_ok()
            {
                self.flush()?;
                return Ok(remaining);
            }
        }
    }

    /// Every heap whose tags include all of `filter`'s key/value pairs, with
    /// its full tags, by heap name. An empty filter lists every tagged heap.
    pub fn query_by_tags(&self, filter: &Tags) -> Result<Vec<(String, Tags)>, SessionError> {
        validate_tags(filter)?;
        let mut matches = Vec::new();
        for item in self.tags.iter() {
            let (key, value) = item?;
            let heap = String::from_utf8(key.to_vec()).map_err(|_| SessionError::Corrupt {
                what: "heap name".to_owned(),
                reason: "it is not UTF-8".to_owned(),
            })?;
            let tags = decode_tags(&heap, &value)?;
            if filter.iter().all(|(k, v)| tags.get(k) == Some(v)) {
                matches.push((heap, tags));
            }
        }
        Ok(matches)
    }
}

fn encode_tags(tags: &Tags) -> Result<Vec<u8>, SessionError> {
    serde_json::to_vec(tags).map_err(|error| SessionError::Corrupt {
        what: "set of tags to store".to_owned(),
        reason: error.to_string(),
    })
}

fn decode_tags(heap: &str, value: &IVec) -> Result<Tags, SessionError> {
    serde_json::from_slice(value).map_err(|error| SessionError::Corrupt {
        what: format!("set of tags for heap {heap}"),
        reason: error.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sessions::tests::{open_temp, reopen};

    fn heap(n: u8) -> String {
        format!("{n:02x}").repeat(32)
    }

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn set_replaces_and_get_reads_back() {
        let (_dir, store) = open_temp();
        assert_eq!(store.get_tags(&heap(1)).ok(), Some(Tags::new()));
        store
            .set_tags(&heap(1), tags(&[("a", "1"), ("b", "2")]))
            .expect("set");
        store
            .set_tags(&heap(1), tags(&[("c", "3")]))
            .expect("replace");
        assert_eq!(store.get_tags(&heap(1)).ok(), Some(tags(&[("c", "3")])));
        store.set_tags(&heap(1), Tags::new()).expect("clear");
        assert!(store.query_by_tags(&Tags::new()).expect("query").is_empty());
    }

    #[test]
    fn delete_some_or_all() {
        let (_dir, store) = open_temp();
        store
            .set_tags(&heap(1), tags(&[("a", "1"), ("b", "2"), ("c", "3")]))
            .expect("set");
        let keys = ["a".to_owned(), "missing".to_owned()];
        assert_eq!(
            store.delete_tags(&heap(1), Some(&keys)).ok(),
            Some(tags(&[("b", "2"), ("c", "3")]))
        );
        assert_eq!(
            store.delete_tags(&heap(1), Some(&keys)).ok(),
            Some(tags(&[("b", "2"), ("c", "3")])),
            "deleting again changes nothing"
        );
        assert_eq!(store.delete_tags(&heap(1), None).ok(), Some(Tags::new()));
        assert_eq!(store.get_tags(&heap(1)).ok(), Some(Tags::new()));
        assert_eq!(
            store.delete_tags(&heap(2), None).ok(),
            Some(Tags::new()),
            "an untagged heap"
        );
    }

    #[test]
    fn deleting_the_last_key_removes_the_heap_from_queries() {
        let (_dir, store) = open_temp();
        store.set_tags(&heap(1), tags(&[("a", "1")])).expect("set");
        let keys = ["a".to_owned()];
        assert_eq!(
            store.delete_tags(&heap(1), Some(&keys)).ok(),
            Some(Tags::new())
        );
        assert!(store.query_by_tags(&Tags::new()).expect("query").is_empty());
    }

    #[test]
    fn query_requires_every_pair() {
        let (_dir, store) = open_temp();
        store
            .set_tags(&heap(1), tags(&[("env", "prod"), ("team", "a")]))
            .expect("set");
        store
            .set_tags(&heap(2), tags(&[("env", "prod"), ("team", "b")]))
            .expect("set");
        store
            .set_tags(&heap(3), tags(&[("env", "dev")]))
            .expect("set");

        let names = |filter: &[(&str, &str)]| -> Vec<String> {
            store
                .query_by_tags(&tags(filter))
                .expect("query")
                .into_iter()
                .map(|(heap, _)| heap)
                .collect()
        };
        assert_eq!(names(&[("env", "prod")]), [heap(1), heap(2)]);
        assert_eq!(names(&[("env", "prod"), ("team", "b")]), [heap(2)]);
        assert_eq!(
            names(&[("env", "prod"), ("team", "c")]),
            Vec::<String>::new()
        );
        assert_eq!(names(&[]), [heap(1), heap(2), heap(3)]);

        let found = store
            .query_by_tags(&tags(&[("env", "dev")]))
            .expect("query");
        assert_eq!(found, [(heap(3), tags(&[("env", "dev")]))]);
    }

    #[test]
    fn invalid_heaps_and_tags_are_refused_before_writing() {
        let (_dir, store) = open_temp();
        let error = store
            .set_tags("ABC", tags(&[("a", "1")]))
            .expect_err("bad heap");
        assert!(matches!(error, SessionError::InvalidHeap(_)), "{error}");
        assert!(store.get_tags(&"A".repeat(64)).is_err(), "uppercase");
        assert!(store.delete_tags("", None).is_err());
        let error = store
            .set_tags(&heap(1), tags(&[("", "1")]))
            .expect_err("empty key");
        assert!(matches!(error, SessionError::InvalidTags(_)), "{error}");
        assert!(store.query_by_tags(&Tags::new()).expect("query").is_empty());
    }

    #[test]
    fn tags_survive_reopening() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("sessions");
        {
            let store = SessionStore::open(&path).expect("open");
            store.set_tags(&heap(1), tags(&[("a", "1")])).expect("set");
        }
        let store = reopen(&path);
        assert_eq!(store.get_tags(&heap(1)).ok(), Some(tags(&[("a", "1")])));
    }
}
