//! The execution record journal: records that survive a server restart.
//!
//! Records live in memory; every change is also appended to
//! `<dir>/executions.jsonl` as one JSON line, written with a single `write_all`
//! on a file opened in append mode. A line is either a whole
//! [`ExecutionRecord`] (the latest state of that id: last write wins) or a
//! tombstone `{"removed":"<id>"}` for a record evicted by retention.
//!
//! Durability: there is **no fsync per record**. A crash of this process keeps
//! everything already written (the data is in the kernel's page cache), so it
//! loses at most the line being written, i.e. the execution in flight; only a
//! power loss or kernel crash can lose more. Compaction, which replaces the
//! whole file, is fsynced, so it never loses records that were already safe.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::types::{ExecutionRecord, ExecutionStatus, ExecutionSummary};
use crate::private_fs;

const JOURNAL_FILE: &str = "executions.jsonl";
const JOURNAL_TMP_FILE: &str = "executions.jsonl.tmp";

/// The error given to executions that were in flight when the previous process died.
const INTERRUPTED_ERROR: &str = "the server stopped before this execution finished";

/// Compaction runs once the journal holds more than `2 * live records + this`
/// lines, so its cost is amortised over many appends even for tiny stores.
const COMPACTION_SLACK: usize = 1024;
/// ...or once it is larger than twice the live records were at the last
/// compaction plus this many bytes: a record holds its result (up to 16 MiB),
/// so a count of lines alone would let a few hundred large results fill GBs.
const COMPACTION_SLACK_BYTES: u64 = 64 * 1024 * 1024;

/// How many finished executions to keep, and for how long.
///
/// Only final records are ever evicted; queued and running ones stay however
/// many there are.
#[derive(Debug, Clone)]
pub struct Retention {
    /// Evict the oldest final records while more than this many final
    /// records exist (records in flight are not counted).
    pub max_count: usize,
    /// Evict final records that completed longer ago than this.
    pub max_age: Option<Duration>,
}

/// The durable set of execution records, safe to share between threads.
///
/// Every method takes the internal lock for a few syscalls, so it is called
/// from async code without `spawn_blocking`. Two exceptions hold the lock
/// longer, on the caller's thread: appending a record with a large result
/// (up to 16 MiB, more once JSON escapes it), and the compaction such
/// appends eventually trigger, which rewrites and fsyncs the whole journal.
/// Moving compaction off the lock (write a new generation while appends go
/// on) is the known next step should large results become common.
pub struct RecordStore {
    inner: Mutex<Inner>,
}

impl RecordStore {
    /// Opens (or creates) the journal in `dir` and restores its records.
    ///
    /// A torn last line (the process died mid-write) is ignored; any other
    /// unparsable line is skipped with a warning. Records that were queued or
    /// running when the previous process died become `failed` with the error
    /// "the server stopped before this execution finished" and
    /// `completed_at = now`. Retention is then applied and the journal is
    /// always rewritten: this persists those changes and drops a torn tail,
    /// which the next append would otherwise glue onto a valid line.
    ///
    /// Returns the ids evicted by retention so the caller can delete their output.
    pub fn open(dir: &Path, retention: Retention) -> io::Result<(Self, Vec<String>)> {
        private_fs::create_dir_all(dir)?;
        let mut records = replay(&dir.join(JOURNAL_FILE))?;
        let now = Utc::now();
        records.fail_interrupted(now);
        let evicted = records.evict(&retention, now, None);
        let (journal, journal_bytes) = rewrite_journal(dir, &records)?;
        let inner = Inner {
            dir: dir.to_owned(),
            journal,
            journal_bytes,
            compacted_bytes: journal_bytes,
            journal_lines: records.len(),
            records,
            retention,
        };
        Ok((
            Self {
                inner: Mutex::new(inner),
            },
            evicted,
        ))
    }

    /// Inserts or replaces a record (last write wins per id), appends it to the
    /// journal, applies retention, and returns the evicted ids.
    ///
    /// The record is journaled before memory changes, so an `Err` means nothing
    /// changed. A failure to journal evictions or to compact is only logged: the
    /// record itself is safe, and retention is re-applied on the next open.
    pub fn put(&self, record: &ExecutionRecord) -> io::Result<Vec<String>> {
        Self::put_locked(&mut self.lock(), record)
    }

    /// [`put`](Self::put), only if the stored record still passes `still`:
    /// no other write can come between the check and this one. `None` when
    /// the check failed and nothing was written.
    pub fn put_if(
        &self,
        record: &ExecutionRecord,
        still: impl FnOnce(&ExecutionRecord) -> bool,
    ) -> io::Result<Option<Vec<String>>> {
        let mut inner = self.lock();
        if !inner.records.get(&record.execution_id).is_some_and(still) {
            return Ok(None);
        }
        Self::put_locked(&mut inner, record).map(Some)
    }

    fn put_locked(inner: &mut Inner, record: &ExecutionRecord) -> io::Result<Vec<String>> {
        inner.append(&record_line(record)?, 1)?;
        inner.records.upsert(record.clone());
        let evicted = inner.apply_retention(Utc::now(), Some(&record.execution_id));
        inner.compact_if_needed();
        Ok(evicted)
    }

    /// Applies retention without a write: records past `max_age` go even
    /// while no execution finishes. Returns the evicted ids.
    pub fn expire(&self) -> Vec<String> {
        let mut inner = self.lock();
        if inner.retention.max_age.is_none() {
            return Vec::new();
        }
        let evicted = inner.apply_retention(Utc::now(), None);
        inner.compact_if_needed();
        evicted
    }

    /// How often [`expire`](Self::expire) should run: a tenth of `max_age`,
    /// between a second and a minute; never without a `max_age`.
    pub fn expiry_period(&self) -> Option<Duration> {
        self.lock()
            .retention
            .max_age
            .map(|age| (age / 10).clamp(Duration::from_secs(1), Duration::from_secs(60)))
    }

    pub fn get(&self, execution_id: &str) -> Option<ExecutionRecord> {
        self.lock().records.get(execution_id).cloned()
    }

    /// Oldest first (by first insertion; updates keep a record's place).
    pub fn list(&self) -> Vec<ExecutionSummary> {
        self.lock().records.iter().map(summary).collect()
    }

    pub fn len(&self) -> usize {
        self.lock().records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The state stays consistent across a panic (memory changes only after
    /// successful writes), so a poisoned lock is safe to keep using.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct Inner {
    dir: PathBuf,
    /// Append handle on `executions.jsonl`.
    journal: File,
    /// Length of the journal as far as we wrote it, to cut off a failed append.
    journal_bytes: u64,
    /// Length of the journal right after the last compaction (the live records).
    compacted_bytes: u64,
    journal_lines: usize,
    records: Records,
    retention: Retention,
}

impl Inner {
    /// Appends `buf` (`lines` whole lines) with one `write_all`.
    ///
    /// If the write fails part-way, the journal is truncated back to its last
    /// complete line, so the next append does not extend a torn one.
    fn append(&mut self, buf: &[u8], lines: usize) -> io::Result<()> {
        if let Err(err) = self.journal.write_all(buf) {
            if let Err(truncate_err) = self.journal.set_len(self.journal_bytes) {
                tracing::warn!(error = %truncate_err, "could not cut a failed append off the execution journal");
            }
            return Err(err);
        }
        self.journal_bytes += buf.len() as u64;
        self.journal_lines += lines;
        Ok(())
    }

    /// Evicts what retention allows and journals tombstones for the evicted ids.
    /// `written` is never evicted: its writer is about to answer with it.
    fn apply_retention(&mut self, now: DateTime<Utc>, written: Option<&str>) -> Vec<String> {
        let evicted = self.records.evict(&self.retention, now, written);
        if evicted.is_empty() {
            return evicted;
        }
        let appended = tombstone_lines(&evicted).and_then(|buf| self.append(&buf, evicted.len()));
        if let Err(err) = appended {
            tracing::warn!(error = %err, "could not journal evicted executions; they will be evicted again on restart");
        }
        evicted
    }

    fn compact_if_needed(&mut self) {
        let too_many_lines = self.journal_lines > 2 * self.records.len() + COMPACTION_SLACK;
        let too_many_bytes = self.journal_bytes > 2 * self.compacted_bytes + COMPACTION_SLACK_BYTES;
        if !too_many_lines && !too_many_bytes {
            return;
        }
        match rewrite_journal(&self.dir, &self.records) {
            Ok((journal, bytes)) => {
                self.journal = journal;
                self.journal_bytes = bytes;
                self.compacted_bytes = bytes;
                self.journal_lines = self.records.len();
            }
            Err(err) => {
                tracing::warn!(error = %err, "could not compact the execution journal; will retry")
            }
        }
    }
}

/// Records in first-insertion order. Keyed by a sequence number so evicting
/// from the middle (age, or skipping in-flight records) stays cheap.
#[derive(Default)]
struct Records {
    by_seq: BTreeMap<u64, ExecutionRecord>,
    seq_by_id: HashMap<String, u64>,
    next_seq: u64,
    /// Records not final yet: retention counts only final ones.
    in_flight: usize,
}

impl Records {
    fn upsert(&mut self, record: ExecutionRecord) {
        let now_in_flight = !record.status.is_final();
        let seq = match self.seq_by_id.get(&record.execution_id) {
            Some(&seq) => seq,
            None => {
                let seq = self.next_seq;
                self.next_seq += 1;
                self.seq_by_id.insert(record.execution_id.clone(), seq);
                seq
            }
        };
        let was_in_flight = self
            .by_seq
            .insert(seq, record)
            .is_some_and(|old| !old.status.is_final());
        self.in_flight = self.in_flight + usize::from(now_in_flight) - usize::from(was_in_flight);
    }

    fn remove(&mut self, execution_id: &str) {
        if let Some(seq) = self.seq_by_id.remove(execution_id)
            && let Some(removed) = self.by_seq.remove(&seq)
            && !removed.status.is_final()
        {
            self.in_flight -= 1;
        }
    }

    fn get(&self, execution_id: &str) -> Option<&ExecutionRecord> {
        let seq = self.seq_by_id.get(execution_id)?;
        self.by_seq.get(seq)
    }

    fn iter(&self) -> impl Iterator<Item = &ExecutionRecord> {
        self.by_seq.values()
    }

    fn len(&self) -> usize {
        self.by_seq.len()
    }

    fn apply(&mut self, entry: JournalEntry) {
        match entry {
            JournalEntry::Removed { removed } => self.remove(&removed),
            JournalEntry::Record(record) => self.upsert(record),
        }
    }

    /// Nothing can finish an execution whose process is gone, so records left
    /// in flight by the previous process are closed as failed.
    fn fail_interrupted(&mut self, now: DateTime<Utc>) {
        let interrupted = self.by_seq.values_mut().filter(|r| !r.status.is_final());
        let mut count = 0usize;
        for record in interrupted {
            record.status = ExecutionStatus::Failed;
            record.error = Some(INTERRUPTED_ERROR.to_owned());
            record.completed_at = Some(now);
            record.duration_ms = millis_between(record.started_at, now);
            count += 1;
        }
        self.in_flight = 0;
        if count > 0 {
            tracing::info!(
                count,
                "marked executions interrupted by the previous shutdown as failed"
            );
        }
    }

    /// Removes the records retention no longer allows and returns their ids.
    fn evict(
        &mut self,
        retention: &Retention,
        now: DateTime<Utc>,
        spared: Option<&str>,
    ) -> Vec<String> {
        let evicted = self.expired(retention, now, spared);
        for id in &evicted {
            self.remove(id);
        }
        evicted
    }

    /// Final records, oldest first, while there are more than `max_count`
    /// final records, plus final records that completed before
    /// `now - max_age`; never `spared`. Records in flight are neither evicted
    /// nor counted, and the record just written is spared: otherwise, with
    /// more executions in flight than `max_count`, an execution's record could
    /// be evicted as it is written, from under its waiting caller.
    fn expired(
        &self,
        retention: &Retention,
        now: DateTime<Utc>,
        spared: Option<&str>,
    ) -> Vec<String> {
        let cutoff = retention
            .max_age
            .and_then(|age| chrono::Duration::from_std(age).ok())
            .and_then(|age| now.checked_sub_signed(age));
        let mut excess = (self.len() - self.in_flight).saturating_sub(retention.max_count);
        let mut expired = Vec::new();
        // This runs on every write. With only a count bound (the default) the
        // scan stops as soon as nothing is over it: a full scan of 10 000
        // records on each write was most of the server's CPU under load.
        for record in self.iter() {
            if excess == 0 && cutoff.is_none() {
                break;
            }
            if !record.status.is_final() || spared == Some(record.execution_id.as_str()) {
                continue;
            }
            let too_old = cutoff.is_some_and(|cutoff| finished_at(record) < cutoff);
            if excess > 0 || too_old {
                excess = excess.saturating_sub(1);
                expired.push(record.execution_id.clone());
            }
        }
        expired
    }
}

/// One journal line: a record's latest state, or the eviction of an id.
#[derive(Deserialize)]
#[serde(untagged)]
enum JournalEntry {
    Removed { removed: String },
    Record(ExecutionRecord),
}

#[derive(Serialize)]
struct Tombstone<'a> {
    removed: &'a str,
}

/// Rebuilds the records from the journal at `path` (missing = empty).
fn replay(path: &Path) -> io::Result<Records> {
    let data = match fs::read(path) {
        Ok(data) => data,
        Err(err) if err.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(err) => return Err(err),
    };
    // Every complete line ends with '\n'; anything after the last one is a torn write.
    let complete_len = data.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let (complete, tail) = data.split_at(complete_len);
    let mut records = Records::default();
    for (index, line) in complete.split(|&b| b == b'\n').enumerate() {
        if line.trim_ascii().is_empty() {
            continue;
        }
        match serde_json::from_slice(line) {
            Ok(entry) => records.apply(entry),
            Err(err) => tracing::warn!(
                journal = %path.display(),
                line = index + 1,
                error = %err,
                "skipping an unreadable execution journal line"
            ),
        }
    }
    // A write cut short just before its '\n' is still a whole record.
    match serde_json::from_slice(tail) {
        Ok(entry) => records.apply(entry),
        Err(_) if !tail.is_empty() => {
            tracing::info!(journal = %path.display(), "ignoring a torn last journal line")
        }
        Err(_) => {}
    }
    Ok(records)
}

/// Writes the live records to a temporary file, fsyncs it and renames it over
/// the journal, then fsyncs the directory so the rename itself is durable.
///
/// Returns an append handle on the new journal and its length. The handle is
/// opened on the temporary file before the rename and stays valid after it, so
/// there is no window in which appends could go to the replaced file.
fn rewrite_journal(dir: &Path, records: &Records) -> io::Result<(File, u64)> {
    let tmp_path = dir.join(JOURNAL_TMP_FILE);
    remove_if_exists(&tmp_path)?;
    let mut buf = Vec::new();
    for record in records.iter() {
        buf.extend_from_slice(&record_line(record)?);
    }
    let mut file = private_fs::open_options()
        .append(true)
        .create_new(true)
        .open(&tmp_path)?;
    file.write_all(&buf)?;
    file.sync_all()?;
    fs::rename(&tmp_path, dir.join(JOURNAL_FILE))?;
    File::open(dir)?.sync_all()?;
    Ok((file, buf.len() as u64))
}

fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
        _ => Ok(()),
    }
}

fn record_line(record: &ExecutionRecord) -> io::Result<Vec<u8>> {
    let mut line = serde_json::to_vec(record)?;
    line.push(b'\n');
    Ok(line)
}

fn tombstone_lines(ids: &[String]) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    for id in ids {
        serde_json::to_writer(&mut buf, &Tombstone { removed: id })?;
        buf.push(b'\n');
    }
    Ok(buf)
}

/// When a final record finished, for age-based retention. A final record
/// without `completed_at` should not exist; its start time is the best guess.
fn finished_at(record: &ExecutionRecord) -> DateTime<Utc> {
    record.completed_at.unwrap_or(record.started_at)
}

fn millis_between(start: DateTime<Utc>, end: DateTime<Utc>) -> u64 {
    u64::try_from((end - start).num_milliseconds()).unwrap_or(0)
}

fn summary(record: &ExecutionRecord) -> ExecutionSummary {
    ExecutionSummary {
        execution_id: record.execution_id.clone(),
        status: record.status,
        started_at: record.started_at,
        completed_at: record.completed_at,
    }
}

#[cfg(test)]
mod tests {
    use std::fs::OpenOptions;

    use super::*;

    const KEEP_ALL: Retention = Retention {
        max_count: usize::MAX,
        max_age: None,
    };

    fn record(id: &str, status: ExecutionStatus) -> ExecutionRecord {
        let started_at = Utc::now() - chrono::Duration::seconds(10);
        let done = status.is_final();
        ExecutionRecord {
            execution_id: id.to_owned(),
            status,
            result: (status == ExecutionStatus::Completed).then(|| "42".to_owned()),
            error: None,
            heap: None,
            heap_size_bytes: None,
            session: None,
            started_at,
            completed_at: done.then(Utc::now),
            duration_ms: if done { 10_000 } else { 0 },
        }
    }

    fn ids(store: &RecordStore) -> Vec<String> {
        store.list().into_iter().map(|s| s.execution_id).collect()
    }

    fn journal(dir: &Path) -> String {
        fs::read_to_string(dir.join(JOURNAL_FILE)).unwrap()
    }

    #[test]
    fn put_get_list_in_insertion_order() {
        let dir = tempfile::tempdir().unwrap();
        let (store, evicted) = RecordStore::open(dir.path(), KEEP_ALL).unwrap();
        assert!(evicted.is_empty());
        assert!(store.is_empty());
        let records: Vec<_> = ["b", "a", "c"]
            .into_iter()
            .map(|id| record(id, ExecutionStatus::Completed))
            .collect();
        for rec in &records {
            assert!(store.put(rec).unwrap().is_empty());
        }
        assert_eq!(ids(&store), ["b", "a", "c"]);
        assert_eq!(store.len(), 3);
        assert_eq!(store.get("a").as_ref(), Some(&records[1]));
        assert_eq!(store.get("missing"), None);
        let summary = &store.list()[0];
        assert_eq!(summary.status, ExecutionStatus::Completed);
        assert_eq!(summary.started_at, records[0].started_at);
        assert_eq!(summary.completed_at, records[0].completed_at);
    }

    #[test]
    fn updates_replace_and_keep_position() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = RecordStore::open(dir.path(), KEEP_ALL).unwrap();
        store.put(&record("a", ExecutionStatus::Running)).unwrap();
        store.put(&record("b", ExecutionStatus::Running)).unwrap();
        let mut done = record("a", ExecutionStatus::Completed);
        done.result = Some("\"done\"".to_owned());
        store.put(&done).unwrap();
        assert_eq!(store.get("a"), Some(done.clone()));
        assert_eq!(store.len(), 2);
        assert_eq!(ids(&store), ["a", "b"]);
        drop(store);
        let (store, _) = RecordStore::open(dir.path(), KEEP_ALL).unwrap();
        assert_eq!(store.get("a"), Some(done));
    }

    #[test]
    fn put_if_writes_only_over_a_record_that_passes() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = RecordStore::open(dir.path(), KEEP_ALL).unwrap();
        let queued = |r: &ExecutionRecord| r.status == ExecutionStatus::Queued;
        let running = record("a", ExecutionStatus::Running);
        assert_eq!(store.put_if(&running, queued).unwrap(), None, "absent");
        store.put(&record("a", ExecutionStatus::Cancelled)).unwrap();
        assert_eq!(store.put_if(&running, queued).unwrap(), None, "final");
        assert_eq!(store.get("a").unwrap().status, ExecutionStatus::Cancelled);
        store.put(&record("a", ExecutionStatus::Queued)).unwrap();
        assert!(store.put_if(&running, queued).unwrap().is_some());
        assert_eq!(store.get("a").unwrap().status, ExecutionStatus::Running);
    }

    #[test]
    fn reopen_restores_records() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = RecordStore::open(dir.path(), KEEP_ALL).unwrap();
        let a = record("a", ExecutionStatus::Completed);
        let mut b = record("b", ExecutionStatus::Failed);
        b.error = Some("boom".to_owned());
        store.put(&a).unwrap();
        store.put(&b).unwrap();
        drop(store);
        let (store, evicted) = RecordStore::open(dir.path(), KEEP_ALL).unwrap();
        assert!(evicted.is_empty());
        assert_eq!(ids(&store), ["a", "b"]);
        assert_eq!(store.get("a"), Some(a));
        assert_eq!(store.get("b"), Some(b));
    }

    #[test]
    fn torn_last_line_is_ignored_and_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = RecordStore::open(dir.path(), KEEP_ALL).unwrap();
        store.put(&record("a", ExecutionStatus::Completed)).unwrap();
        drop(store);
        let torn =
            &String::from_utf8(record_line(&record("b", ExecutionStatus::Completed)).unwrap())
                .unwrap()[..20];
        let mut file = OpenOptions::new()
            .append(true)
            .open(dir.path().join(JOURNAL_FILE))
            .unwrap();
        file.write_all(torn.as_bytes()).unwrap();
        drop(file);

        let (store, _) = RecordStore::open(dir.path(), KEEP_ALL).unwrap();
        assert_eq!(ids(&store), ["a"]);
        // The torn tail is gone, so a later append makes a valid line.
        store.put(&record("c", ExecutionStatus::Completed)).unwrap();
        drop(store);
        let (store, _) = RecordStore::open(dir.path(), KEEP_ALL).unwrap();
        assert_eq!(ids(&store), ["a", "c"]);
    }

    #[test]
    fn garbage_lines_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let a = record_line(&record("a", ExecutionStatus::Completed)).unwrap();
        let b = record_line(&record("b", ExecutionStatus::Completed)).unwrap();
        let mut data = a;
        data.extend_from_slice(b"not json\n\n{\"execution_id\":1}\n");
        data.extend_from_slice(&b);
        fs::write(dir.path().join(JOURNAL_FILE), data).unwrap();
        let (store, _) = RecordStore::open(dir.path(), KEEP_ALL).unwrap();
        assert_eq!(ids(&store), ["a", "b"]);
    }

    #[test]
    fn in_flight_records_fail_on_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = RecordStore::open(dir.path(), KEEP_ALL).unwrap();
        store.put(&record("q", ExecutionStatus::Queued)).unwrap();
        store.put(&record("r", ExecutionStatus::Running)).unwrap();
        store.put(&record("c", ExecutionStatus::Completed)).unwrap();
        drop(store);
        let before = Utc::now();
        let (store, _) = RecordStore::open(dir.path(), KEEP_ALL).unwrap();
        for id in ["q", "r"] {
            let rec = store.get(id).unwrap();
            assert_eq!(rec.status, ExecutionStatus::Failed);
            assert_eq!(rec.error.as_deref(), Some(INTERRUPTED_ERROR));
            assert!(rec.completed_at.unwrap() >= before);
            assert!(rec.duration_ms >= 10_000);
        }
        assert_eq!(store.get("c").unwrap().status, ExecutionStatus::Completed);
        // The change is persisted: a second restart keeps the first completion time.
        let first = store.get("q").unwrap();
        drop(store);
        let (store, _) = RecordStore::open(dir.path(), KEEP_ALL).unwrap();
        assert_eq!(store.get("q"), Some(first));
    }

    #[test]
    fn retention_by_count_keeps_that_many_final_records_oldest_out_first() {
        let dir = tempfile::tempdir().unwrap();
        let retention = Retention {
            max_count: 2,
            max_age: None,
        };
        let (store, _) = RecordStore::open(dir.path(), retention.clone()).unwrap();
        let put = |id: &str, status| store.put(&record(id, status)).unwrap();
        assert!(put("run", ExecutionStatus::Running).is_empty());
        assert!(put("a", ExecutionStatus::Completed).is_empty());
        // Records in flight do not count: two final ones fit.
        assert!(put("b", ExecutionStatus::Failed).is_empty());
        assert!(put("q", ExecutionStatus::Queued).is_empty());
        assert_eq!(put("c", ExecutionStatus::Completed), ["a"]);
        // The record just written is never the one evicted, even when it is
        // the oldest final one (it finished last, after the others).
        assert_eq!(put("run", ExecutionStatus::Completed), ["b"]);
        assert_eq!(ids(&store), ["run", "q", "c"]);
        drop(store);

        // Evictions are journaled, and on reopen the interrupted records are
        // final and evictable, oldest first.
        let (store, evicted) = RecordStore::open(dir.path(), retention).unwrap();
        assert_eq!(evicted, ["run"]);
        assert_eq!(ids(&store), ["q", "c"]);
    }

    /// More executions in flight than `max_count`: each one's final record
    /// stays while its caller reads it.
    #[test]
    fn a_record_is_not_evicted_as_it_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let retention = Retention {
            max_count: 1,
            max_age: None,
        };
        let (store, _) = RecordStore::open(dir.path(), retention).unwrap();
        store
            .put(&record("long", ExecutionStatus::Running))
            .unwrap();
        store
            .put(&record("quick", ExecutionStatus::Running))
            .unwrap();
        assert!(
            store
                .put(&record("quick", ExecutionStatus::Completed))
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            store.get("quick").unwrap().status,
            ExecutionStatus::Completed
        );
        assert_eq!(
            store
                .put(&record("long", ExecutionStatus::Completed))
                .unwrap(),
            ["quick"]
        );
        assert_eq!(ids(&store), ["long"]);
    }

    #[test]
    fn retention_by_age() {
        let dir = tempfile::tempdir().unwrap();
        let retention = Retention {
            max_count: usize::MAX,
            max_age: Some(Duration::from_secs(3600)),
        };
        let (store, _) = RecordStore::open(dir.path(), retention.clone()).unwrap();
        let mut old = record("old", ExecutionStatus::Completed);
        old.started_at = Utc::now() - chrono::Duration::hours(3);
        old.completed_at = Some(Utc::now() - chrono::Duration::hours(2));
        let mut old_running = record("old-running", ExecutionStatus::Running);
        old_running.started_at = old.started_at;
        store.put(&old_running).unwrap();
        // Spared as it is written (its writer answers with it), evicted by
        // the next write.
        assert!(store.put(&old).unwrap().is_empty());
        assert_eq!(
            store
                .put(&record("new", ExecutionStatus::Completed))
                .unwrap(),
            ["old"]
        );
        assert_eq!(ids(&store), ["old-running", "new"]);
        drop(store);

        // Reopened, the old running record completes now, so it is kept.
        let (store, evicted) = RecordStore::open(dir.path(), retention).unwrap();
        assert!(evicted.is_empty());
        assert_eq!(ids(&store), ["old-running", "new"]);
    }

    /// Without any write, `expire` evicts what has grown too old (it stayed,
    /// listed and readable, until the next execution finished).
    #[test]
    fn expire_evicts_by_age_without_a_write() {
        let dir = tempfile::tempdir().unwrap();
        let retention = Retention {
            max_count: usize::MAX,
            max_age: Some(Duration::from_secs(3600)),
        };
        let (store, _) = RecordStore::open(dir.path(), retention).unwrap();
        assert_eq!(store.expiry_period(), Some(Duration::from_secs(60)));
        let mut old = record("old", ExecutionStatus::Completed);
        old.completed_at = Some(Utc::now() - chrono::Duration::hours(2));
        assert!(store.put(&old).unwrap().is_empty());
        store
            .put(&record("new", ExecutionStatus::Completed))
            .unwrap_or_default();
        let mut older = record("older", ExecutionStatus::Failed);
        older.completed_at = Some(Utc::now() - chrono::Duration::hours(5));
        assert!(store.put(&older).unwrap().is_empty());
        assert_eq!(store.expire(), ["older"]);
        assert_eq!(ids(&store), ["new"]);
        assert!(store.expire().is_empty());

        let dir = tempfile::tempdir().unwrap();
        let (store, _) = RecordStore::open(dir.path(), KEEP_ALL).unwrap();
        assert_eq!(store.expiry_period(), None);
        assert!(store.expire().is_empty());
    }

    #[test]
    fn retention_on_open_returns_evicted_ids() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = RecordStore::open(dir.path(), KEEP_ALL).unwrap();
        for id in ["a", "b", "c"] {
            store.put(&record(id, ExecutionStatus::Completed)).unwrap();
        }
        drop(store);
        let retention = Retention {
            max_count: 1,
            max_age: None,
        };
        let (store, evicted) = RecordStore::open(dir.path(), retention).unwrap();
        assert_eq!(evicted, ["a", "b"]);
        assert_eq!(ids(&store), ["c"]);
    }

    #[test]
    fn compaction_shrinks_the_journal_and_keeps_content() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = RecordStore::open(dir.path(), KEEP_ALL).unwrap();
        let mut a = record("a", ExecutionStatus::Completed);
        store.put(&record("b", ExecutionStatus::Completed)).unwrap();
        for n in 0..2000 {
            a.duration_ms = n;
            store.put(&a).unwrap();
        }
        let lines = journal(dir.path()).lines().count();
        assert!(lines <= 2 * 2 + COMPACTION_SLACK + 1, "{lines} lines");
        assert!(!dir.path().join(JOURNAL_TMP_FILE).exists());
        drop(store);
        let (store, _) = RecordStore::open(dir.path(), KEEP_ALL).unwrap();
        assert_eq!(ids(&store), ["b", "a"]);
        assert_eq!(store.get("a").unwrap().duration_ms, 1999);
        assert_eq!(journal(dir.path()).lines().count(), 2);
    }

    /// Large records are compacted by size long before their line count
    /// would call for it: the journal stays within about twice the live
    /// records plus the byte slack.
    #[test]
    fn large_records_are_compacted_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let retention = Retention {
            max_count: 2,
            max_age: None,
        };
        let (store, _) = RecordStore::open(dir.path(), retention).unwrap();
        let mut largest = 0;
        for n in 0..40 {
            let mut big = record(&format!("big-{n}"), ExecutionStatus::Completed);
            big.result = Some("r".repeat(4 * 1024 * 1024));
            store.put(&big).unwrap();
            let size = fs::metadata(dir.path().join(JOURNAL_FILE)).unwrap().len();
            largest = largest.max(size);
        }
        // Three 4 MiB records live at most (two kept, one being written).
        let bound = 2 * 3 * 4 * 1024 * 1024 + COMPACTION_SLACK_BYTES + 5 * 1024 * 1024;
        assert!(largest <= bound, "journal reached {largest} bytes");
        assert_eq!(ids(&store).len(), 2);
    }

    #[test]
    fn appends_after_compaction_reach_the_new_journal() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = RecordStore::open(dir.path(), KEEP_ALL).unwrap();
        let a = record("a", ExecutionStatus::Completed);
        for _ in 0..=COMPACTION_SLACK + 2 {
            store.put(&a).unwrap();
        }
        store
            .put(&record("after", ExecutionStatus::Completed))
            .unwrap();
        assert!(journal(dir.path()).contains("\"after\""));
    }
}
