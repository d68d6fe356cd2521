//! [`Executor`]: the handle the tool layer talks to.
//!
//! Submissions are validated, recorded as `queued` and put on one queue that
//! `max_concurrent` slot tasks drain (an execution in a session only when the
//! session's previous one has settled); each slot owns one worker process and
//! runs one execution at a time on it. Every status change is written to the record
//! journal before anyone can observe it, so what a caller was told survives a
//! restart.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::output::{OutputStore, OutputWriter};
use super::records::{RecordStore, Retention};
use super::worker::WorkerProcess;
use super::worker::protocol::{FromWorker, ToWorker};
use super::{
    CancelReason, ExecutionRecord, ExecutionStatus, ExecutionSummary, ExecutorError, OutputPage,
    OutputQuery, RunRequest,
};
use crate::engine::{EngineMode, Job, Outcome};
use crate::sessions::{self, NewSessionEntry, SessionStore};
use crate::storage::{HeapKey, HeapObject, HeapStore, StorageError};

/// Output logs up to this size are read on the async thread that asks for a
/// page (a read of this size takes microseconds); larger ones on the
/// blocking pool. See [`Executor::output`].
const READ_IN_PLACE_BYTES: u64 = 256 * 1024;

/// Per-call heap limits below this cannot even hold the runtime's own heap.
pub const MIN_HEAP_MB: u32 = 4;
/// How long after its deadline a worker that has not stopped is killed.
const TIMEOUT_GRACE: Duration = Duration::from_millis(1500);
/// How long a cancelled execution may take to stop before its worker is killed.
const CANCEL_GRACE: Duration = Duration::from_secs(2);
/// Extra time a stateful execution may take past its deadline: the heap
/// snapshot is taken after the code has finished.
const SNAPSHOT_GRACE: Duration = Duration::from_secs(10);
/// Pause before starting a worker again after a failed start, so a broken
/// binary does not spin.
const RESPAWN_BACKOFF: Duration = Duration::from_secs(1);
/// How often a slot whose worker could not be started tries again while no
/// execution comes (one that comes tries at once).
const IDLE_RESPAWN_INTERVAL: Duration = Duration::from_secs(5);

/// Everything the executor needs, resolved from the server configuration.
#[derive(Debug, Clone)]
pub struct ExecutorConfig {
    /// Where the record journal and output logs live.
    pub state_dir: PathBuf,
    /// The `mcp-v8` binary to start as `mcp-v8 worker`.
    pub worker_exe: PathBuf,
    /// Worker processes, which is also how many executions run at once.
    pub max_concurrent: usize,
    /// Executions that may wait for a worker before `submit` answers busy.
    pub max_queued: usize,
    pub default_heap_mb: u32,
    /// Per-call heap limits must lie in `[MIN_HEAP_MB, heap_cap_mb]`.
    pub heap_cap_mb: u32,
    pub default_timeout_secs: u64,
    /// Per-call timeouts must lie in `[1, max_timeout_secs]`.
    pub max_timeout_secs: u64,
    pub max_output_bytes: u64,
    pub max_code_bytes: usize,
    pub retention: Retention,
    /// Where heap snapshots go; `None` is stateless mode.
    pub heap_store: Option<Arc<dyn HeapStore>>,
    /// Session logs and heap tags (stateful mode only).
    pub sessions: Option<SessionStore>,
}

/// Cheap to clone; all clones drive the same queue, workers and records.
#[derive(Clone)]
pub struct Executor {
    inner: Arc<Inner>,
}

struct Inner {
    config: ExecutorConfig,
    records: RecordStore,
    outputs: OutputStore,
    queue: Mutex<Option<mpsc::UnboundedSender<Ticket>>>,
    /// Queued plus running executions; bounded by `max_concurrent + max_queued`.
    in_flight: AtomicUsize,
    /// Woken whenever an execution reaches its final status.
    finished: tokio::sync::Notify,
    running: AtomicUsize,
    /// Live state of executions that are not final yet.
    active: Mutex<HashMap<String, Active>>,
    shutting_down: AtomicBool,
    /// A session's executions run one after another, in the order they were
    /// submitted, each resuming the heap the previous one left. Only the
    /// session's current execution is on the queue (or running); a key here
    /// means it has one, and the executions submitted after it wait in its
    /// list, off the queue, so a session's backlog never holds a slot idle.
    session_turns: Mutex<HashMap<String, VecDeque<Ticket>>>,
    /// Why the last attempt to start a worker failed; `None` once one starts.
    worker_trouble: Mutex<Option<String>>,
    /// Session-log writes that outlive the call that finished their
    /// execution ([`Inner::log_unstarted`]); shutdown waits for them.
    background: TaskTracker,
}

/// An execution's place in the queue (or in its session's line). The
/// execution itself waits in its `Active` entry, so cancelling a queued one
/// frees its code at once rather than when a slot reaches its ticket.
struct Ticket {
    execution_id: String,
    session: Option<String>,
}

/// An accepted execution waiting for a worker.
struct Pending {
    job: Job,
    /// The heap asked for explicitly; with only a session, the session's
    /// latest heap is looked up when the execution starts.
    heap: Option<HeapKey>,
    session: Option<String>,
    tags: Option<BTreeMap<String, String>>,
}

/// How an execution ended, with the heap it left behind stored.
struct Settled {
    status: ExecutionStatus,
    result: Option<String>,
    error: Option<String>,
    heap: Option<(HeapKey, u64)>,
}

/// What only an in-flight execution has: a way to stop it and to await it.
struct Active {
    cancel: CancellationToken,
    /// Why it was cancelled, once it was.
    cancel_reason: Option<CancelReason>,
    status: watch::Sender<ExecutionStatus>,
    /// The execution, until a slot takes it to run.
    pending: Option<Pending>,
}

impl Executor {
    /// Opens the state directory (replaying the record journal) and starts the
    /// worker slots. Workers boot in the background; the first executions wait
    /// for them.
    pub async fn start(config: ExecutorConfig) -> anyhow::Result<Self> {
        use anyhow::Context;
        crate::private_fs::create_dir_all(&config.state_dir).with_context(|| {
            format!(
                "creating the state directory {}",
                config.state_dir.display()
            )
        })?;
        let outputs = OutputStore::open(&config.state_dir.join("output"))
            .context("opening the output log directory")?;
        let (records, evicted) = RecordStore::open(&config.state_dir, config.retention.clone())
            .context("opening the execution record journal")?;
        for execution_id in evicted {
            outputs.remove(&execution_id);
        }
        let (sender, receiver) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            records,
            outputs,
            queue: Mutex::new(Some(sender)),
            in_flight: AtomicUsize::new(0),
            finished: tokio::sync::Notify::new(),
            running: AtomicUsize::new(0),
            active: Mutex::new(HashMap::new()),
            shutting_down: AtomicBool::new(false),
            session_turns: Mutex::new(HashMap::new()),
            worker_trouble: Mutex::new(None),
            background: TaskTracker::new(),
            config,
        });
        let receiver = Arc::new(tokio::sync::Mutex::new(receiver));
        for _ in 0..inner.config.max_concurrent {
            tokio::spawn(run_slot(inner.clone(), receiver.clone()));
        }
        if let Some(period) = inner.records.expiry_period() {
            tokio::spawn(expire_old_records(Arc::downgrade(&inner), period));
        }
        Ok(Self { inner })
    }

    /// Why workers cannot be started, while the last attempt failed (a
    /// fatal V8 flag, exhausted memory or processes): every execution would
    /// fail, so `/readyz` reports it. Slots without a worker try again every
    /// [`IDLE_RESPAWN_INTERVAL`] even when no work comes, so this clears
    /// without traffic once the cause is gone.
    pub fn worker_trouble(&self) -> Option<String> {
        lock(&self.inner.worker_trouble).clone()
    }

    /// Validates and queues an execution; returns its id at once.
    pub fn submit(&self, request: RunRequest) -> Result<String, ExecutorError> {
        let inner = &self.inner;
        if inner.shutting_down.load(Ordering::SeqCst) {
            return Err(ExecutorError::ShuttingDown);
        }
        let (heap_mb, timeout, heap) = inner.validate(&request)?;
        inner.reserve_slot()?;
        let execution_id = uuid::Uuid::new_v4().to_string();
        let record = ExecutionRecord {
            execution_id: execution_id.clone(),
            status: ExecutionStatus::Queued,
            result: None,
            error: None,
            heap: None,
            heap_size_bytes: None,
            session: request.session.clone(),
            started_at: Utc::now(),
            completed_at: None,
            duration_ms: 0,
        };
        if let Err(error) = inner.store(&record) {
            inner.in_flight.fetch_sub(1, Ordering::SeqCst);
            return Err(error);
        }
        let ticket = Ticket {
            execution_id: execution_id.clone(),
            session: request.session.clone(),
        };
        let pending = Pending {
            job: Job {
                execution_id: execution_id.clone(),
                code: request.code,
                heap_memory_max_mb: heap_mb,
                timeout,
                stateful: inner.config.heap_store.is_some(),
                restore: None,
            },
            heap,
            session: request.session,
            tags: request.tags,
        };
        let (status, _) = watch::channel(ExecutionStatus::Queued);
        lock(&inner.active).insert(
            execution_id.clone(),
            Active {
                cancel: CancellationToken::new(),
                cancel_reason: None,
                status,
                pending: Some(pending),
            },
        );
        let Some(ticket) = inner.take_turn(ticket) else {
            // Queued behind the session's current execution.
            return Ok(execution_id);
        };
        if let Err(ticket) = inner.enqueue(ticket) {
            inner.refuse(&ticket);
            inner.pass_turn(ticket.session.as_deref());
            return Err(ExecutorError::ShuttingDown);
        }
        Ok(execution_id)
    }

    /// Waits up to `max_wait` for the execution to reach a final status, then
    /// returns its record as it is (final or still in flight).
    pub async fn wait(
        &self,
        execution_id: &str,
        max_wait: Duration,
    ) -> Result<ExecutionRecord, ExecutorError> {
        let _ = tokio::time::timeout(max_wait, self.settled(execution_id)).await;
        self.get(execution_id)
    }

    /// The execution's record once it has finished, however long that takes.
    pub async fn finished(&self, execution_id: &str) -> Result<ExecutionRecord, ExecutorError> {
        self.settled(execution_id).await;
        self.get(execution_id)
    }

    /// Resolves once the execution has a final status (at once if it has one
    /// or is unknown).
    async fn settled(&self, execution_id: &str) {
        let subscription = lock(&self.inner.active)
            .get(execution_id)
            .map(|active| active.status.subscribe());
        if let Some(mut status) = subscription {
            let _ = status.wait_for(|status| status.is_final()).await;
        }
    }

    pub fn get(&self, execution_id: &str) -> Result<ExecutionRecord, ExecutorError> {
        let mut record = self
            .inner
            .records
            .get(execution_id)
            .ok_or_else(|| ExecutorError::NotFound(execution_id.to_owned()))?;
        if !record.status.is_final() {
            record.duration_ms = elapsed_ms(&record);
        }
        Ok(record)
    }

    /// A page of the execution's console output. A page is cut from the whole
    /// log (its line count is part of every page), and a log may hold up to
    /// `max_output_bytes`: a log past [`READ_IN_PLACE_BYTES`] is read on the
    /// blocking pool, so that paging through a large one cannot stall the
    /// runtime's threads. Smaller ones, nearly all, are read in place.
    pub async fn output(
        &self,
        execution_id: &str,
        query: &OutputQuery,
    ) -> Result<OutputPage, ExecutorError> {
        let record = self.get(execution_id)?;
        let outputs = &self.inner.outputs;
        match outputs.log_len(execution_id) {
            // Most executions print nothing: no log to open.
            0 => return outputs.empty_page(execution_id, record.status, query),
            len if len <= READ_IN_PLACE_BYTES => {
                return outputs.read_page(execution_id, record.status, query);
            }
            _ => {}
        }
        let inner = Arc::clone(&self.inner);
        let (execution_id, query) = (execution_id.to_owned(), query.clone());
        tokio::task::spawn_blocking(move || {
            inner
                .outputs
                .read_page(&execution_id, record.status, &query)
        })
        .await
        .map_err(|error| ExecutorError::Storage(std::io::Error::other(error)))?
    }

    /// Cancels a queued or running execution on request and returns its
    /// final record. Cancelling a finished execution returns its record
    /// unchanged.
    pub async fn cancel(&self, execution_id: &str) -> Result<ExecutionRecord, ExecutorError> {
        self.cancel_because(execution_id, CancelReason::Requested)
            .await
    }

    /// [`cancel`](Self::cancel), recording `reason` as the record's error.
    pub async fn cancel_because(
        &self,
        execution_id: &str,
        reason: CancelReason,
    ) -> Result<ExecutionRecord, ExecutorError> {
        let record = self.get(execution_id)?;
        if record.status.is_final() {
            return Ok(record);
        }
        if let Some(active) = lock(&self.inner.active).get_mut(execution_id) {
            active.cancel_reason.get_or_insert(reason);
            // A queued one is skipped by the slot that dequeues it.
            active.cancel.cancel();
        }
        match record.status {
            ExecutionStatus::Queued => {
                self.inner
                    .finish(execution_id, Settled::from(Outcome::Cancelled));
                self.get(execution_id)
            }
            _ => self.wait(execution_id, CANCEL_GRACE * 2).await,
        }
    }

    /// False once shutdown has begun and new submissions are refused.
    pub fn is_accepting(&self) -> bool {
        !self.inner.shutting_down.load(Ordering::SeqCst)
    }

    /// The first step of a shutdown: new submissions are refused (as
    /// `ShuttingDown`) while the executions in flight go on.
    pub fn refuse_new(&self) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
    }

    /// Resolves once no execution is queued or running.
    pub async fn drained(&self) {
        crate::in_flight::until_zero(&self.inner.in_flight, &self.inner.finished).await;
    }

    /// Refuses a heap the store does not hold, so that a mistyped or foreign
    /// hash is reported instead of being tagged (tags of a heap that can never
    /// be resumed would only be found by a query, pointing nowhere).
    pub async fn require_stored_heap(&self, heap: &str) -> Result<(), ExecutorError> {
        let Some(store) = &self.inner.config.heap_store else {
            return Err(stateless_error("heap"));
        };
        let key = HeapKey::parse(heap).map_err(|error| invalid("heap", error.to_string()))?;
        if store.contains(&key).await? {
            Ok(())
        } else {
            Err(StorageError::NotFound(key).into())
        }
    }

    /// All retained executions, oldest first.
    pub fn list(&self) -> Vec<ExecutionSummary> {
        self.inner.records.list()
    }

    /// Stops accepting work, cancels what is queued or running, and lets the
    /// slots stop their workers.
    pub async fn shutdown(&self) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
        lock(&self.inner.queue).take();
        let in_flight: Vec<String> = lock(&self.inner.active).keys().cloned().collect();
        for execution_id in in_flight {
            let _ = self
                .cancel_because(&execution_id, CancelReason::ShuttingDown)
                .await;
        }
        self.inner.background.close();
        self.inner.background.wait().await;
    }
}

impl Inner {
    /// Checks a request against the server's limits and mode; returns the heap
    /// limit, the timeout and the heap to resume.
    fn validate(
        &self,
        request: &RunRequest,
    ) -> Result<(u32, Duration, Option<HeapKey>), ExecutorError> {
        let config = &self.config;
        if request.code.len() > config.max_code_bytes {
            return Err(invalid(
                "code",
                format!(
                    "the code is {} bytes; the limit is {} bytes (limits.max_code_bytes)",
                    request.code.len(),
                    config.max_code_bytes
                ),
            ));
        }
        let heap_mb = request.heap_memory_max_mb.unwrap_or(config.default_heap_mb);
        if !(MIN_HEAP_MB..=config.heap_cap_mb).contains(&heap_mb) {
            return Err(invalid(
                "heap_memory_max_mb",
                format!(
                    "{heap_mb} is outside the allowed range {MIN_HEAP_MB}..={} MB",
                    config.heap_cap_mb
                ),
            ));
        }
        let timeout = request
            .execution_timeout_secs
            .unwrap_or(config.default_timeout_secs);
        if !(1..=config.max_timeout_secs).contains(&timeout) {
            return Err(invalid(
                "execution_timeout_secs",
                format!(
                    "{timeout} is outside the allowed range 1..={} seconds",
                    config.max_timeout_secs
                ),
            ));
        }
        let stateless = config.heap_store.is_none();
        let heap = match &request.heap {
            None => None,
            Some(_) if stateless => return Err(stateless_error("heap")),
            Some(text) => {
                Some(HeapKey::parse(text).map_err(|error| invalid("heap", error.to_string()))?)
            }
        };
        if let Some(session) = &request.session {
            if stateless || config.sessions.is_none() {
                return Err(stateless_error("session"));
            }
            sessions::validate_session_name(session)
                .map_err(|error| invalid("session", error.to_string()))?;
        }
        if let Some(tags) = &request.tags {
            if stateless {
                return Err(stateless_error("tags"));
            }
            sessions::validate_tags(tags).map_err(|error| invalid("tags", error.to_string()))?;
        }
        Ok((heap_mb, Duration::from_secs(timeout), heap))
    }

    /// Takes one place among the executions in flight, or answers busy.
    fn reserve_slot(&self) -> Result<(), ExecutorError> {
        let capacity = self
            .config
            .max_concurrent
            .saturating_add(self.config.max_queued);
        self.in_flight
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < capacity).then_some(n + 1)
            })
            .map(|_| ())
            .map_err(|in_flight| ExecutorError::Busy {
                in_flight,
                running: self.running.load(Ordering::SeqCst).min(in_flight),
                max_concurrent: self.config.max_concurrent,
                max_queued: self.config.max_queued,
            })
    }

    fn store(&self, record: &ExecutionRecord) -> Result<(), ExecutorError> {
        for evicted in self.records.put(record)? {
            self.outputs.remove(&evicted);
        }
        Ok(())
    }

    /// Moves a queued execution to running; false if it was cancelled meanwhile.
    fn start(&self, execution_id: &str) -> bool {
        let Some(mut record) = self.records.get(execution_id) else {
            return false;
        };
        if record.status != ExecutionStatus::Queued {
            return false;
        }
        record.status = ExecutionStatus::Running;
        // Only over the queued record: a cancellation may have made it final
        // since it was read, and must not be overwritten.
        match self
            .records
            .put_if(&record, |now| now.status == ExecutionStatus::Queued)
        {
            Ok(Some(evicted)) => evicted.iter().for_each(|id| self.outputs.remove(id)),
            Ok(None) => return false,
            Err(error) => tracing::error!(execution_id, "could not record the start: {error}"),
        }
        if let Some(active) = lock(&self.active).get(execution_id) {
            active.status.send_replace(ExecutionStatus::Running);
        }
        true
    }

    /// Records the final outcome once; later calls for the same id do nothing.
    fn finish(&self, execution_id: &str, settled: Settled) {
        let Some(active) = lock(&self.active).remove(execution_id) else {
            return;
        };
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        let Some(mut record) = self.records.get(execution_id) else {
            return;
        };
        let completed_at = Utc::now();
        record.status = settled.status;
        record.result = settled.result;
        record.error = match (settled.status, active.cancel_reason) {
            (ExecutionStatus::Cancelled, Some(reason)) => Some(reason.message().to_owned()),
            _ => settled.error,
        };
        if let Some((key, size)) = settled.heap {
            record.heap = Some(key.to_string());
            record.heap_size_bytes = Some(size);
        }
        record.duration_ms = (completed_at - record.started_at).num_milliseconds().max(0) as u64;
        record.completed_at = Some(completed_at);
        if let Err(error) = self.store(&record) {
            tracing::error!(execution_id, "could not record the outcome: {error}");
        }
        if let Some(pending) = &active.pending {
            self.log_unstarted(pending, settled.status);
        }
        active.status.send_replace(settled.status);
        self.finished.notify_waiters();
    }

    /// An execution with a session that ended before it started (cancelled
    /// on the queue, or at shutdown) is in its session's log too, like every
    /// other, with no output heap. In the background: its record is final
    /// already, so a failure can only be logged.
    fn log_unstarted(&self, pending: &Pending, status: ExecutionStatus) {
        let (Some(sessions), Some(session)) = (&self.config.sessions, &pending.session) else {
            return;
        };
        let (sessions, session) = (sessions.clone(), session.clone());
        let entry = session_entry(pending, status, None);
        self.background.spawn(async move {
            let name = session.clone();
            if let Err(error) = sessions
                .blocking(move |sessions| sessions.append(&name, entry))
                .await
            {
                tracing::error!(%session, "could not log an execution to its session: {error}");
            }
        });
    }

    /// `ticket` back if it may go on the queue now: it has no session, or
    /// its session has no execution on the queue or running. Otherwise it
    /// waits for its turn (see `session_turns`).
    fn take_turn(&self, ticket: Ticket) -> Option<Ticket> {
        let Some(session) = &ticket.session else {
            return Some(ticket);
        };
        let mut turns = lock(&self.session_turns);
        match turns.get_mut(session) {
            Some(waiting) => {
                waiting.push_back(ticket);
                None
            }
            None => {
                turns.insert(session.clone(), VecDeque::new());
                Some(ticket)
            }
        }
    }

    /// The session's current execution is over: its next one goes on the
    /// queue, or the session has no turn to hand out any more.
    fn pass_turn(&self, session: Option<&str>) {
        let Some(session) = session else { return };
        loop {
            let next = {
                let mut turns = lock(&self.session_turns);
                let Some(waiting) = turns.get_mut(session) else {
                    return;
                };
                match waiting.pop_front() {
                    Some(next) => next,
                    None => {
                        turns.remove(session);
                        return;
                    }
                }
            };
            match self.enqueue(next) {
                Ok(()) => return,
                Err(refused) => self.refuse(&refused),
            }
        }
    }

    /// Puts an execution on the queue the slots drain; gives it back once the
    /// queue is closed (shutdown).
    fn enqueue(&self, ticket: Ticket) -> Result<(), Ticket> {
        match lock(&self.queue).as_ref() {
            Some(queue) => queue.send(ticket).map_err(|refused| refused.0),
            None => Err(ticket),
        }
    }

    /// Ends an execution the closed queue would not take.
    fn refuse(&self, ticket: &Ticket) {
        self.finish(
            &ticket.execution_id,
            Settled::from(Outcome::failed("the server is shutting down")),
        );
    }

    /// The execution behind `execution_id`, to run, with its cancellation
    /// token; `None` if it was cancelled (or has ended) meanwhile.
    fn take_pending(&self, execution_id: &str) -> Option<(Pending, CancellationToken)> {
        let mut active = lock(&self.active);
        let active = active.get_mut(execution_id)?;
        if active.cancel.is_cancelled() {
            return None;
        }
        let pending = active.pending.take()?;
        Some((pending, active.cancel.clone()))
    }

    /// Finds the heap to resume (explicit, or the session's latest) and loads
    /// it into the job. Errors are the execution's failure message.
    async fn load_heap(&self, pending: &mut Pending) -> Result<(), String> {
        let Some(store) = &self.config.heap_store else {
            return Ok(());
        };
        if pending.heap.is_none()
            && let (Some(session), Some(sessions)) = (&pending.session, &self.config.sessions)
        {
            let name = session.clone();
            let latest = sessions
                .blocking(move |sessions| sessions.latest_heap(&name))
                .await
                .map_err(|error| format!("could not read session {session:?}: {error}"))?;
            pending.heap = latest
                .map(|text| HeapKey::parse(&text))
                .transpose()
                .map_err(|error| format!("session {session:?} names an invalid heap: {error}"))?;
        }
        if let Some(key) = &pending.heap {
            pending.job.restore = Some(store.get(key).await.map_err(|error| error.to_string())?);
        }
        Ok(())
    }

    /// Stores the heap a completed stateful execution left behind, tags it and
    /// logs the execution to its session.
    async fn settle(&self, pending: &Pending, mut outcome: Outcome) -> Settled {
        let object = match &mut outcome {
            Outcome::Completed { heap, .. } => heap.take(),
            _ => None,
        };
        let mut settled = Settled::from(outcome);
        if let (Some(object), Some(store)) = (object, &self.config.heap_store) {
            let object = HeapObject::new(object);
            let (key, size) = (object.key().clone(), object.bytes().len() as u64);
            match store.put(object).await {
                Ok(()) => settled.heap = Some((key, size)),
                Err(error) => {
                    settled.status = ExecutionStatus::Failed;
                    settled.error = Some(format!(
                        "the code completed, but its heap snapshot could not be stored: {error}"
                    ));
                }
            }
        }
        let Some(sessions) = &self.config.sessions else {
            return settled;
        };
        let output_heap = settled.heap.as_ref().map(|(key, _)| key.to_string());
        if let (Some(tags), Some(heap)) = (&pending.tags, &output_heap) {
            let (heap, tags) = (heap.clone(), tags.clone());
            if let Err(error) = sessions
                .blocking(move |sessions| sessions.set_tags(&heap, tags))
                .await
            {
                settled.note(format!("the heap's tags could not be saved: {error}"));
            }
        }
        if let Some(session) = &pending.session {
            let entry = session_entry(pending, settled.status, output_heap);
            let name = session.clone();
            if let Err(error) = sessions
                .blocking(move |sessions| sessions.append(&name, entry))
                .await
            {
                settled.note(format!(
                    "the execution could not be logged to session {session:?}: {error}"
                ));
            }
        }
        settled
    }
}

/// Every `period`, evicts the records past `executions.retain_max_age_secs`
/// and deletes their output, until the executor is gone: otherwise they
/// would stay while no execution finishes. Holds no strong reference.
async fn expire_old_records(inner: std::sync::Weak<Inner>, period: Duration) {
    loop {
        tokio::time::sleep(period).await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        for execution_id in inner.records.expire() {
            inner.outputs.remove(&execution_id);
        }
    }
}

/// The session log's entry for `pending`, ended now.
fn session_entry(
    pending: &Pending,
    status: ExecutionStatus,
    output_heap: Option<String>,
) -> NewSessionEntry {
    NewSessionEntry {
        execution_id: pending.job.execution_id.clone(),
        input_heap: pending.heap.as_ref().map(HeapKey::to_string),
        output_heap,
        code: pending.job.code.clone(),
        status,
        timestamp: Utc::now(),
    }
}

impl From<Outcome> for Settled {
    fn from(outcome: Outcome) -> Self {
        let (status, result, error) = match outcome {
            Outcome::Completed { result, .. } => (ExecutionStatus::Completed, Some(result), None),
            Outcome::Failed { error } => (ExecutionStatus::Failed, None, Some(error)),
            Outcome::TimedOut { error } => (ExecutionStatus::TimedOut, None, Some(error)),
            Outcome::Cancelled => (
                ExecutionStatus::Cancelled,
                None,
                Some(CancelReason::Requested.message().to_owned()),
            ),
        };
        Self {
            status,
            result,
            error,
            heap: None,
        }
    }
}

impl Settled {
    /// Adds a problem that did not change how the code ended.
    fn note(&mut self, problem: String) {
        tracing::warn!("{problem}");
        self.error = Some(match self.error.take() {
            Some(error) => format!("{error}; {problem}"),
            None => problem,
        });
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> ExecutorError {
    ExecutorError::InvalidArgument {
        field,
        message: message.into(),
    }
}

fn stateless_error(field: &'static str) -> ExecutorError {
    invalid(
        field,
        "this server runs stateless (storage.stateless): heaps, sessions and tags need a heap store",
    )
}

/// One concurrency slot: takes executions off the queue and runs them on its
/// worker, replacing the worker whenever it dies.
async fn run_slot(
    inner: Arc<Inner>,
    queue: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Ticket>>>,
) {
    let mut worker = spawn_worker(&inner).await;
    loop {
        let next = if worker.is_some() {
            queue.lock().await.recv().await
        } else {
            tokio::select! {
                next = async { queue.lock().await.recv().await } => next,
                () = tokio::time::sleep(IDLE_RESPAWN_INTERVAL) => {
                    worker = spawn_worker(&inner).await;
                    continue;
                }
            }
        };
        let Some(Ticket {
            execution_id,
            session,
        }) = next
        else {
            break;
        };
        match inner.take_pending(&execution_id) {
            Some((mut pending, cancel)) if inner.start(&execution_id) => {
                inner.running.fetch_add(1, Ordering::SeqCst);
                let outcome = match inner.load_heap(&mut pending).await {
                    Err(error) => Outcome::Failed { error },
                    Ok(()) => run_on_worker(&inner, &mut worker, &pending.job, &cancel).await,
                };
                // The worker is free as soon as the outcome is in: storing the heap
                // and logging the session happen while it runs the next execution.
                // The session's turn passes only then, so the session's next
                // execution resumes the heap this one leaves.
                let inner = inner.clone();
                tokio::spawn(async move {
                    let settled = inner.settle(&pending, outcome).await;
                    inner.running.fetch_sub(1, Ordering::SeqCst);
                    inner.finish(&execution_id, settled);
                    inner.pass_turn(session.as_deref());
                });
            }
            Some((pending, _)) => {
                // Cancelled between leaving the queue and starting: the
                // cancellation found no pending execution to log.
                inner.log_unstarted(&pending, ExecutionStatus::Cancelled);
                inner.pass_turn(session.as_deref());
            }
            None => inner.pass_turn(session.as_deref()),
        }
    }
    if let Some(process) = worker {
        process.kill().await;
    }
}

/// How many workers a job is offered to before it fails: a worker that died
/// while idle (killed from outside, say) is only noticed when the next job is
/// handed to it, and that job has not started, so a new worker takes it.
const HAND_OVER_ATTEMPTS: usize = 2;

/// Runs `job` on the slot's worker (starting one if needed) and keeps the
/// worker for the next job unless it had to be killed.
async fn run_on_worker(
    inner: &Inner,
    worker: &mut Option<WorkerProcess>,
    job: &Job,
    cancel: &CancellationToken,
) -> Outcome {
    let max_output_bytes = inner.config.max_output_bytes;
    let run = ToWorker::Run {
        job: job.clone(),
        max_output_bytes,
    };
    let mut attempts = 0;
    loop {
        attempts += 1;
        if worker.is_none() {
            *worker = spawn_worker(inner).await;
        }
        let Some(mut process) = worker.take() else {
            return Outcome::failed(
                "no worker process could be started for this execution; see the server log",
            );
        };
        let unread = match process.send(&run).await {
            Ok(()) => {
                let output = inner.outputs.writer(&job.execution_id, max_output_bytes);
                match supervise(process, job, output, cancel).await {
                    Followed::To(outcome, survivor) => {
                        *worker = survivor.map(|survivor| *survivor);
                        return outcome;
                    }
                    Followed::Unread(why) => why,
                }
            }
            Err(error) => format!(
                "{error}; {}",
                super::worker::describe_exit(process.kill().await)
            ),
        };
        if attempts == HAND_OVER_ATTEMPTS {
            return Outcome::failed(format!(
                "could not hand the execution to a worker process ({unread}); see the server log"
            ));
        }
        tracing::warn!(
            execution_id = %job.execution_id,
            "a worker process died before it read its execution ({unread}); replacing it"
        );
    }
}

async fn spawn_worker(inner: &Inner) -> Option<WorkerProcess> {
    if inner.shutting_down.load(Ordering::SeqCst) {
        return None;
    }
    let mode = if inner.config.heap_store.is_some() {
        EngineMode::Stateful
    } else {
        EngineMode::Stateless
    };
    match WorkerProcess::spawn(&inner.config.worker_exe, mode).await {
        Ok(worker) => {
            lock(&inner.worker_trouble).take();
            Some(worker)
        }
        Err(error) => {
            tracing::error!("could not start a worker process: {error}");
            *lock(&inner.worker_trouble) = Some(error.to_string());
            tokio::time::sleep(RESPAWN_BACKOFF).await;
            None
        }
    }
}

/// How a job handed to a worker ended.
enum Followed {
    /// With this outcome; the worker comes back if it is still usable.
    To(Outcome, Option<Box<WorkerProcess>>),
    /// The worker died without reading the job, so it never started. (The
    /// kernel reports a reset, not an end of stream, when a socket closes
    /// with data unread.)
    Unread(String),
}

/// Follows one job that `worker` has been handed to its outcome: streams its
/// output, forwards a cancellation, and kills the worker if it dies, overruns
/// its deadline or ignores a cancellation.
async fn supervise(
    mut worker: WorkerProcess,
    job: &Job,
    mut output: OutputWriter,
    cancel: &CancellationToken,
) -> Followed {
    let mut heard_from_worker = false;
    let grace = if job.stateful {
        TIMEOUT_GRACE + SNAPSHOT_GRACE
    } else {
        TIMEOUT_GRACE
    };
    let deadline = tokio::time::sleep(job.timeout + grace);
    tokio::pin!(deadline);
    let mut cancel_deadline = None;
    loop {
        let grace_at = cancel_deadline;
        let cancel_grace = async move {
            match grace_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            message = worker.receive() => match message {
                Ok(Some(FromWorker::Output { text, .. })) => {
                    heard_from_worker = true;
                    if let Err(error) = output.append_line(&text) {
                        tracing::error!(execution_id = %job.execution_id, "could not write output: {error}");
                    }
                }
                Ok(Some(FromWorker::Done(outcome))) => {
                    return Followed::To(outcome, Some(Box::new(worker)));
                }
                Ok(Some(FromWorker::Retired(outcome))) => {
                    worker.exit_status().await;
                    return Followed::To(outcome, None);
                }
                Ok(Some(FromWorker::Ready)) => {}
                // Unread data can only be this job (the worker's reader thread
                // reads every frame as it comes), unless a cancellation was
                // sent after it.
                Err(error)
                    if error.kind() == std::io::ErrorKind::ConnectionReset
                        && !heard_from_worker
                        && cancel_deadline.is_none() =>
                {
                    let status = worker.exit_status().await;
                    return Followed::Unread(format!(
                        "{error}; {}",
                        super::worker::describe_exit(status)
                    ));
                }
                Ok(None) | Err(_) => {
                    let status = worker.exit_status().await;
                    return Followed::To(crashed(status), None);
                }
            },
            _ = cancel.cancelled(), if cancel_deadline.is_none() => {
                let message = ToWorker::Cancel { execution_id: job.execution_id.clone() };
                if worker.send(&message).await.is_err() {
                    worker.kill().await;
                    return Followed::To(Outcome::Cancelled, None);
                }
                cancel_deadline = Some(tokio::time::Instant::now() + CANCEL_GRACE);
            }
            _ = cancel_grace => {
                worker.kill().await;
                return Followed::To(Outcome::Cancelled, None);
            }
            _ = &mut deadline => {
                worker.kill().await;
                return Followed::To(
                    Outcome::TimedOut {
                        error: format!(
                            "execution timed out after {} s (execution_timeout_secs); \
                             its worker did not stop and was replaced",
                            job.timeout.as_secs()
                        ),
                    },
                    None,
                );
            }
        }
    }
}

fn crashed(status: Option<std::process::ExitStatus>) -> Outcome {
    Outcome::Failed {
        error: format!(
            "the worker process running this execution died ({}); the execution was lost \
             and the worker has been replaced. A V8 fatal error (e.g. memory that could not \
             be reclaimed) or an external kill causes this",
            super::worker::describe_exit(status)
        ),
    }
}

fn elapsed_ms(record: &ExecutionRecord) -> u64 {
    (Utc::now() - record.started_at).num_milliseconds().max(0) as u64
}

/// A poisoned lock only means a panic elsewhere mid-update of plain maps; the
/// data is still consistent enough to serve.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
