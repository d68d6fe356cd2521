//! Session logs: per session, the executions run in it, in order.
//!
//! Layout: the `session_next` tree maps a session name to the index its next
//! entry gets (so its keys are also the list of sessions), and the
//! `session_entries` tree maps `name NUL index` (index as 8 big-endian bytes,
//! so that byte order is index order) to the entry as JSON. Names never
//! contain NUL (see [`validate_session_name`]), so one session's prefix never
//! matches another's entries.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use sled::{IVec, Transactional};

use super::validate::{validate_heap, validate_session_name};
use super::{SessionError, SessionStore};
use crate::executor::ExecutionStatus;

/// One execution to append to a session's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewSessionEntry {
    pub execution_id: String,
    /// The heap snapshot the execution started (or, cancelled before its
    /// turn, was to start) from (64 lowercase hex), if any.
    pub input_heap: Option<String>,
    /// The heap snapshot the execution left behind, if one was saved; the
    /// session's next run without `heap` resumes from the latest of these.
    pub output_heap: Option<String>,
    /// The source code that ran.
    pub code: String,
    /// The execution's final status.
    pub status: ExecutionStatus,
    /// When the execution finished.
    pub timestamp: DateTime<Utc>,
}

/// One execution in a session's log, with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionEntry {
    /// Position in the session, 0-based and without gaps.
    pub index: u64,
    pub execution_id: String,
    pub input_heap: Option<String>,
    pub output_heap: Option<String>,
    pub code: String,
    pub status: ExecutionStatus,
    pub timestamp: DateTime<Utc>,
}

impl SessionEntry {
    fn new(index: u64, entry: NewSessionEntry) -> Self {
        Self {
            index,
            execution_id: entry.execution_id,
            input_heap: entry.input_heap,
            output_heap: entry.output_heap,
            code: entry.code,
            status: entry.status,
            timestamp: entry.timestamp,
        }
    }
}

impl SessionStore {
    /// Appends `entry` to `session`'s log, creating the session if needed, and
    /// returns the entry's index.
    ///
    /// The index is read and bumped in the same sled transaction that writes
    /// the entry, so concurrent appends to one session get dense, distinct
    /// indexes (sled retries a transaction that conflicts). The database is
    /// flushed before returning: an acknowledged append survives a crash.
    pub fn append(&self, session: &str, entry: NewSessionEntry) -> Result<u64, SessionError> {
        validate_session_name(session)?;
        for heap in [&entry.input_heap, &entry.output_heap]
            .into_iter()
            .flatten()
        {
            validate_heap(heap)?;
        }
        let value = serde_json::to_vec(&entry).map_err(|error| SessionError::Corrupt {
            what: "session entry".to_owned(),
            reason: error.to_string(),
        })?;
        let index = (&self.next_index, &self.entries).transaction(|(next_index, entries)| {
            let index = read_next_index(next_index, session)?;
            let following = index.checked_add(1).ok_or_else(|| {
                ConflictableTransactionError::Abort(SessionError::Corrupt {
                    what: format!("entry counter for session {session:?}"),
                    reason: "it is at its maximum".to_owned(),
                })
            })?;
            next_index.insert(session.as_bytes(), &following.to_be_bytes())?;
            entries.insert(entry_key(session, index), value.as_slice())?;
            Ok(index)
        })?;
        self.flush()?;
        Ok(index)
    }

    /// The heap a run in `session` without an explicit `heap` resumes from:
    /// the `output_heap` of the latest entry that has one. `None` for a new
    /// (or unknown) session, or one whose executions never saved a heap.
    pub fn latest_heap(&self, session: &str) -> Result<Option<String>, SessionError> {
        validate_session_name(session)?;
        for item in self.entries.scan_prefix(entry_prefix(session)).rev() {
            let (key, value) = item?;
            let entry = decode_entry(&key, &value)?;
            if entry.output_heap.is_some() {
                return Ok(entry.output_heap);
            }
        }
        Ok(None)
    }

    /// Names of every session, in byte order.
    pub fn list_sessions(&self) -> Result<Vec<String>, SessionError> {
        self.next_index
            .iter()
            .keys()
            .map(|key| {
                let key = key?;
                String::from_utf8(key.to_vec()).map_err(|_| SessionError::Corrupt {
                    what: "session name".to_owned(),
                    reason: "it is not UTF-8".to_owned(),
                })
            })
            .collect()
    }

    /// Up to `limit` entries of `session`, by index, from index `from` on,
    /// and how many entries the session has in all. Reads only the page.
    pub fn entries(
        &self,
        session: &str,
        from: u64,
        limit: usize,
    ) -> Result<(Vec<SessionEntry>, u64), SessionError> {
        validate_session_name(session)?;
        let Some(counter) = self.next_index.get(session.as_bytes())? else {
            return Err(SessionError::NotFound(session.to_owned()));
        };
        let total = decode_counter(session, &counter)?;
        let prefix = entry_prefix(session);
        let entries = self
            .entries
            .range(entry_key(session, from)..)
            .take_while(|item| {
                item.as_ref()
                    .map_or(true, |(key, _)| key.starts_with(&prefix))
            })
            .take(limit)
            .map(|item| {
                let (key, value) = item?;
                decode_entry(&key, &value)
            })
            .collect::<Result<_, _>>()?;
        Ok((entries, total))
    }
}

fn read_next_index(
    next_index: &TransactionalTree,
    session: &str,
) -> Result<u64, ConflictableTransactionError<SessionError>> {
    match next_index.get(session.as_bytes())? {
        Some(stored) => {
            decode_counter(session, &stored).map_err(ConflictableTransactionError::Abort)
        }
        None => Ok(0),
    }
}

/// A session's entry counter: the index its next entry gets, which is also
/// how many it has.
fn decode_counter(session: &str, stored: &IVec) -> Result<u64, SessionError> {
    let bytes: [u8; 8] = stored
        .as_ref()
        .try_into()
        .map_err(|_| SessionError::Corrupt {
            what: format!("entry counter for session {session:?}"),
            reason: format!("it has {} bytes instead of 8", stored.len()),
        })?;
    Ok(u64::from_be_bytes(bytes))
}

fn entry_prefix(session: &str) -> Vec<u8> {
    let mut prefix = Vec::with_capacity(session.len() + 1);
    prefix.extend_from_slice(session.as_bytes());
    prefix.push(0);
    prefix
}

fn entry_key(session: &str, index: u64) -> Vec<u8> {
    let mut key = entry_prefix(session);
    key.extend_from_slice(&index.to_be_bytes());
    key
}

/// Decodes a stored entry; its index is the last 8 bytes of its key.
fn decode_entry(key: &IVec, value: &IVec) -> Result<SessionEntry, SessionError> {
    let corrupt = |reason: String| SessionError::Corrupt {
        what: "session entry".to_owned(),
        reason,
    };
    let index_bytes = key
        .len()
        .checked_sub(8)
        .and_then(|start| key.get(start..))
        .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
        .ok_or_else(|| corrupt(format!("its key has only {} bytes", key.len())))?;
    let entry: NewSessionEntry =
        serde_json::from_slice(value).map_err(|error| corrupt(error.to_string()))?;
    Ok(SessionEntry::new(u64::from_be_bytes(index_bytes), entry))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::sessions::tests::{open_temp, reopen};

    fn heap(n: u8) -> String {
        format!("{n:02x}").repeat(32)
    }

    fn entry(id: &str, input: Option<String>, output: Option<String>) -> NewSessionEntry {
        NewSessionEntry {
            execution_id: id.to_owned(),
            input_heap: input,
            output_heap: output,
            code: format!("// {id}"),
            status: ExecutionStatus::Completed,
            timestamp: Utc::now(),
        }
    }

    #[test]
    fn appends_are_numbered_from_zero_and_read_back_in_order() {
        let (_dir, store) = open_temp();
        assert_eq!(
            store.append("s", entry("a", None, Some(heap(1)))).ok(),
            Some(0)
        );
        assert_eq!(
            store
                .append("s", entry("b", Some(heap(1)), Some(heap(2))))
                .ok(),
            Some(1)
        );
        assert_eq!(store.append("other", entry("c", None, None)).ok(), Some(0));

        let (entries, total) = store.entries("s", 0, usize::MAX).expect("entries");
        assert_eq!(total, 2);
        let ids: Vec<(u64, &str)> = entries
            .iter()
            .map(|e| (e.index, e.execution_id.as_str()))
            .collect();
        assert_eq!(ids, [(0, "a"), (1, "b")]);
        assert_eq!(entries[1].input_heap, Some(heap(1)));
        assert_eq!(entries[1].code, "// b");
        assert_eq!(
            store.list_sessions().expect("list"),
            ["other".to_owned(), "s".to_owned()]
        );
    }

    #[test]
    fn a_session_prefix_does_not_match_longer_names() {
        let (_dir, store) = open_temp();
        store.append("ab", entry("x", None, None)).expect("append");
        store.append("a", entry("y", None, None)).expect("append");
        let ids: Vec<String> = store
            .entries("a", 0, usize::MAX)
            .expect("entries")
            .0
            .into_iter()
            .map(|e| e.execution_id)
            .collect();
        assert_eq!(ids, ["y"]);
    }

    #[test]
    fn concurrent_appends_get_dense_distinct_indexes() {
        const THREADS: usize = 8;
        const PER_THREAD: usize = 25;
        let (_dir, store) = open_temp();
        let handles: Vec<_> = (0..THREADS)
            .map(|thread| {
                let store = store.clone();
                std::thread::spawn(move || {
                    (0..PER_THREAD)
                        .map(|i| {
                            store
                                .append("shared", entry(&format!("{thread}-{i}"), None, None))
                                .expect("append")
                        })
                        .collect::<Vec<u64>>()
                })
            })
            .collect();
        let mut indexes: Vec<u64> = handles
            .into_iter()
            .flat_map(|handle| handle.join().expect("appender thread"))
            .collect();
        indexes.sort_unstable();
        let total = u64::try_from(THREADS * PER_THREAD).expect("small");
        assert_eq!(indexes, (0..total).collect::<Vec<_>>());

        let (entries, _) = store.entries("shared", 0, usize::MAX).expect("entries");
        let stored: Vec<u64> = entries.iter().map(|e| e.index).collect();
        assert_eq!(stored, (0..total).collect::<Vec<_>>());
        let ids: BTreeSet<&str> = entries.iter().map(|e| e.execution_id.as_str()).collect();
        assert_eq!(
            ids.len(),
            THREADS * PER_THREAD,
            "every append is stored once"
        );
    }

    #[test]
    fn entries_are_read_a_page_at_a_time() {
        let (_dir, store) = open_temp();
        for name in ["a", "b", "c", "d", "e"] {
            store.append("s", entry(name, None, None)).expect("append");
        }
        store.append("s2", entry("x", None, None)).expect("append");
        let page = |from, limit| {
            let (entries, total) = store.entries("s", from, limit).expect("entries");
            assert_eq!(total, 5);
            entries
                .into_iter()
                .map(|e| (e.index, e.execution_id))
                .collect::<Vec<_>>()
        };
        assert_eq!(page(0, 2), [(0, "a".to_owned()), (1, "b".to_owned())]);
        assert_eq!(page(3, 10), [(3, "d".to_owned()), (4, "e".to_owned())]);
        assert_eq!(page(5, 10), []);
        assert_eq!(page(u64::MAX, 10), []);
    }

    #[test]
    fn latest_heap_skips_entries_without_one() {
        let (_dir, store) = open_temp();
        assert_eq!(store.latest_heap("new").ok(), Some(None));
        store.append("s", entry("a", None, None)).expect("append");
        assert_eq!(store.latest_heap("s").ok(), Some(None));
        store
            .append("s", entry("b", None, Some(heap(1))))
            .expect("append");
        store
            .append("s", entry("c", Some(heap(1)), Some(heap(2))))
            .expect("append");
        store
            .append("s", entry("d", Some(heap(2)), None))
            .expect("append");
        assert_eq!(store.latest_heap("s").ok(), Some(Some(heap(2))));
    }

    #[test]
    fn unknown_and_invalid_sessions() {
        let (_dir, store) = open_temp();
        let error = store.entries("nope", 0, 1).expect_err("unknown");
        assert!(matches!(error, SessionError::NotFound(_)), "{error}");
        assert!(error.to_string().contains("list_sessions"), "{error}");
        let error = store.append("", entry("a", None, None)).expect_err("empty");
        assert!(matches!(error, SessionError::InvalidSessionName { .. }));
        let error = store
            .append("s", entry("a", Some("not-a-heap".to_owned()), None))
            .expect_err("bad heap");
        assert!(matches!(error, SessionError::InvalidHeap(_)));
        assert!(
            store.list_sessions().expect("list").is_empty(),
            "nothing was written"
        );
    }

    #[test]
    fn entries_survive_reopening() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("sessions");
        {
            let store = SessionStore::open(&path).expect("open");
            store
                .append("s", entry("a", None, Some(heap(7))))
                .expect("append");
        }
        let store = reopen(&path);
        assert_eq!(store.list_sessions().expect("list"), ["s".to_owned()]);
        assert_eq!(store.latest_heap("s").ok(), Some(Some(heap(7))));
        assert_eq!(store.append("s", entry("b", None, None)).ok(), Some(1));
    }
}
