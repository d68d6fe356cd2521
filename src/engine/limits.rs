//! Limits that hold: heap, ArrayBuffer memory, wall-clock time, cancellation.
//!
//! V8 aborts the whole process when a heap outgrows its limit unless a
//! near-heap-limit callback intervenes, and ArrayBuffer backing stores live
//! outside the V8 heap entirely. So each isolate gets both a heap limit with a
//! callback that terminates execution, and an ArrayBuffer allocator with a byte
//! budget of the same size. Time and cancellation are enforced from another
//! thread by [`Watchdog`], through V8's thread-safe termination.

use std::ffi::{c_char, c_void};
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use deno_core::v8;

/// Why an execution was stopped from outside the JavaScript it was running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    TimedOut,
    Cancelled,
    HeapExceeded,
}

/// The first stop reason recorded for one execution; later ones are ignored so
/// the outcome names what actually happened first.
#[derive(Debug, Default)]
pub struct StopFlag {
    reason: AtomicU8,
    /// Wakes [`StopFlag::stopped`].
    raised: tokio::sync::Notify,
}

impl StopFlag {
    pub fn set(&self, reason: StopReason) {
        let code = match reason {
            StopReason::TimedOut => 1,
            StopReason::Cancelled => 2,
            StopReason::HeapExceeded => 3,
        };
        let _ = self
            .reason
            .compare_exchange(0, code, Ordering::SeqCst, Ordering::SeqCst);
        self.raised.notify_one();
    }

    /// Resolves once a reason is set. Terminating the isolate stops running
    /// JS, but not an event loop that is waiting (on a timer, say): the
    /// engine also stops waiting when this resolves.
    pub async fn stopped(&self) {
        while self.get().is_none() {
            self.raised.notified().await;
        }
    }

    pub fn get(&self) -> Option<StopReason> {
        match self.reason.load(Ordering::SeqCst) {
            1 => Some(StopReason::TimedOut),
            2 => Some(StopReason::Cancelled),
            3 => Some(StopReason::HeapExceeded),
            _ => None,
        }
    }
}

/// Records `reason` and terminates the isolate: the one way every limit stops JS.
pub fn stop(isolate: &v8::IsolateHandle, flag: &StopFlag, reason: StopReason) {
    flag.set(reason);
    isolate.terminate_execution();
}

/// Explains that an execution ran out of heap; the one wording for every way
/// it is found out.
pub fn heap_exceeded_message(heap_memory_max_mb: u32) -> String {
    format!(
        "heap limit exceeded: the execution needed more than {heap_memory_max_mb} MB \
         (heap_memory_max_mb); use less memory or raise the limit"
    )
}

/// Who hears of a fatal out-of-memory error, and the heap limit of the
/// execution running when it happens. Process-wide: V8's OOM handler takes
/// no data, and a worker process runs one isolate at a time.
static LAST_WORDS: OnceLock<Box<dyn Fn(String) + Send + Sync>> = OnceLock::new();
static RUNNING_HEAP_MB: AtomicU32 = AtomicU32::new(0);

/// Makes a fatal out-of-memory error in any isolate armed with
/// [`report_fatal_oom`] call `report` with an explanation before the process
/// ends. A single allocation bigger than what the near-heap-limit callback can
/// grant (say `new Array(5e7)`, 400 MB at once) is such an error: V8 gives up
/// before the callback's termination can take effect.
pub fn on_fatal_oom(report: impl Fn(String) + Send + Sync + 'static) {
    let _ = LAST_WORDS.set(Box::new(report));
}

/// Arms `isolate` for [`on_fatal_oom`] while an execution with this heap
/// limit runs in it.
pub fn report_fatal_oom(isolate: &mut v8::Isolate, heap_memory_max_mb: u32) {
    RUNNING_HEAP_MB.store(heap_memory_max_mb, Ordering::SeqCst);
    isolate.set_oom_error_handler(fatal_oom);
}

/// V8 calls this instead of printing its own report, and aborts the process
/// when it returns; so it reports and exits at once (no unwinding, no exit
/// handlers: the heap is in no state to run them).
unsafe extern "C" fn fatal_oom(location: *const c_char, details: &v8::OomDetails) {
    if let Some(report) = LAST_WORDS.get() {
        let location = if location.is_null() {
            "?".into()
        } else {
            // SAFETY: V8 passes a NUL-terminated string.
            unsafe { std::ffi::CStr::from_ptr(location) }.to_string_lossy()
        };
        let kind = if details.is_heap_oom {
            "heap"
        } else {
            "process"
        };
        report(format!(
            "{}. One allocation was too big to stop in time (V8: {kind} out of memory, \
             \"{location}\"); the worker process running it was replaced",
            heap_exceeded_message(RUNNING_HEAP_MB.load(Ordering::SeqCst))
        ));
    }
    // SAFETY: ends the process; nothing after this runs.
    unsafe { libc::_exit(FATAL_OOM_EXIT_CODE) }
}

/// The exit status of a worker that died of a fatal out-of-memory error.
const FATAL_OOM_EXIT_CODE: i32 = 86;

/// Byte budget for one isolate's ArrayBuffer backing stores.
///
/// When an allocation would cross the budget it fails (V8 then throws a
/// `RangeError` in JS) and the isolate is terminated as over its heap limit, so
/// the outcome is the same whichever kind of memory ran out.
pub struct ArrayBufferBudget {
    used: AtomicUsize,
    /// Generous while V8 deserialises a snapshot (see [`Self::allocator`]),
    /// the job's own once [`Self::limit_to`] has run.
    limit: AtomicUsize,
    on_exceeded: OnceLock<(v8::IsolateHandle, Arc<StopFlag>)>,
}

impl ArrayBufferBudget {
    /// Creates the budget and the V8 allocator that charges it, at first
    /// with `creation_limit`: V8 aborts the process when it cannot allocate
    /// the backing store of an ArrayBuffer it deserialises from a snapshot,
    /// so a resumed heap must always get its buffers, and is measured
    /// against the job's limit afterwards.
    pub fn allocator(creation_limit: usize) -> (Arc<Self>, v8::UniqueRef<v8::Allocator>) {
        let budget = Arc::new(Self {
            used: AtomicUsize::new(0),
            limit: AtomicUsize::new(creation_limit),
            on_exceeded: OnceLock::new(),
        });
        // SAFETY: the allocator owns one strong count of `budget`, released in
        // `drop_budget` when V8 destroys the allocator.
        let allocator =
            unsafe { v8::new_rust_allocator(Arc::into_raw(budget.clone()), &BUDGET_VTABLE) };
        (budget, allocator)
    }

    /// Connects the budget to its isolate once the isolate exists.
    pub fn on_exceeded(&self, isolate: v8::IsolateHandle, flag: Arc<StopFlag>) {
        let _ = self.on_exceeded.set((isolate, flag));
    }

    /// Bytes of ArrayBuffer backing stores allocated now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::SeqCst)
    }

    /// Puts the job's limit in force, once the runtime is built.
    pub fn limit_to(&self, limit: usize) {
        self.limit.store(limit, Ordering::SeqCst);
    }

    fn reserve(&self, len: usize) -> bool {
        let limit = self.limit.load(Ordering::SeqCst);
        let reserved = self
            .used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                used.checked_add(len).filter(|&total| total <= limit)
            })
            .is_ok();
        if !reserved && let Some((isolate, flag)) = self.on_exceeded.get() {
            stop(isolate, flag, StopReason::HeapExceeded);
        }
        reserved
    }

    fn release(&self, len: usize) {
        self.used.fetch_sub(len, Ordering::SeqCst);
    }
}

static BUDGET_VTABLE: v8::RustAllocatorVtable<ArrayBufferBudget> = v8::RustAllocatorVtable {
    allocate: allocate_zeroed,
    allocate_uninitialized,
    free: free_buffer,
    drop: drop_budget,
};

unsafe extern "C" fn allocate_zeroed(budget: &ArrayBufferBudget, len: usize) -> *mut c_void {
    if !budget.reserve(len) {
        return std::ptr::null_mut();
    }
    // SAFETY: plain C allocation; `max(1)` because calloc(0) may return null.
    let data = unsafe { libc::calloc(len.max(1), 1) };
    if data.is_null() {
        budget.release(len);
    }
    data
}

unsafe extern "C" fn allocate_uninitialized(budget: &ArrayBufferBudget, len: usize) -> *mut c_void {
    if !budget.reserve(len) {
        return std::ptr::null_mut();
    }
    // SAFETY: plain C allocation; `max(1)` because malloc(0) may return null.
    let data = unsafe { libc::malloc(len.max(1)) };
    if data.is_null() {
        budget.release(len);
    }
    data
}

unsafe extern "C" fn free_buffer(budget: &ArrayBufferBudget, data: *mut c_void, len: usize) {
    // SAFETY: `data` came from `allocate_*` above.
    unsafe { libc::free(data) };
    budget.release(len);
}

unsafe extern "C" fn drop_budget(budget: *const ArrayBufferBudget) {
    // SAFETY: balances the `Arc::into_raw` in `ArrayBufferBudget::allocator`.
    drop(unsafe { Arc::from_raw(budget) });
}

/// What the watchdog is guarding right now.
struct Armed {
    execution_id: String,
    isolate: v8::IsolateHandle,
    flag: Arc<StopFlag>,
    deadline: Instant,
    /// How far the worker's resident memory may grow while this runs.
    memory_allowance: u64,
    /// The resident memory at the watchdog's first look at this execution.
    memory_baseline: Option<u64>,
    /// Past the allowance, a garbage collection asked for first: the
    /// collection count then, and when.
    collection: Option<(u64, Instant)>,
}

/// Garbage collections done at the watchdog's request, in this process (one
/// isolate runs at a time in a worker).
static COLLECTIONS: AtomicU64 = AtomicU64::new(0);

/// How long the watchdog waits for a collection it asked for before it stops
/// the execution anyway (the interrupt runs only when JS runs again).
const COLLECTION_WAIT: Duration = Duration::from_millis(200);

/// Runs on the isolate's thread, between JS instructions: a full collection,
/// then the C heap's free memory back to the system. Memory outside V8's
/// heap (ICU objects behind Intl, for one) is freed only when V8 collects
/// the JS objects holding it, and V8 schedules collections by its own heap,
/// which such objects barely touch: resident memory can look exhausted while
/// most of it is garbage.
unsafe extern "C" fn collect_garbage(isolate: v8::UnsafeRawIsolatePtr, _data: *mut c_void) {
    // SAFETY: V8 passes the interrupted isolate, alive for this call.
    let mut isolate = unsafe { v8::Isolate::from_raw_isolate_ptr(isolate) };
    isolate.low_memory_notification();
    let release = RELEASE_FREE_MEMORY.get().copied().unwrap_or(trim_glibc);
    release();
    COLLECTIONS.fetch_add(1, Ordering::SeqCst);
}

/// How the process hands its C heap's free memory back to the system, if its
/// allocator is not glibc's (see [`on_free_memory_release`]).
static RELEASE_FREE_MEMORY: OnceLock<fn()> = OnceLock::new();

/// Sets how the watchdog's collections return freed C heap memory to the
/// system, for a binary that replaces the C allocator (glibc's `malloc_trim`
/// otherwise, which would then trim a heap nobody uses, and resident memory
/// freed by a collection would still count against the execution). Set
/// once, before the first execution; later calls are ignored.
pub fn on_free_memory_release(release: fn()) {
    let _ = RELEASE_FREE_MEMORY.set(release);
}

fn trim_glibc() {
    // SAFETY: plain glibc call with no preconditions.
    unsafe { libc::malloc_trim(0) };
}

/// How often the watchdog looks at the worker's resident memory while an
/// execution runs.
const MEMORY_CHECK_EVERY: Duration = Duration::from_millis(20);

/// The memory an execution may add to its worker's resident set, in bytes,
/// for a heap limit of `heap_memory_max_mb`.
///
/// The heap limit and the ArrayBuffer budget bound what V8 allocates through
/// them; WebAssembly memories and resizable ArrayBuffers come straight from
/// the operating system, past both. Watching the process's resident memory
/// bounds those too: twice the heap limit (heap and buffers) plus 64 MB of
/// slack for compiled code and V8's own bookkeeping. Past it, the watchdog
/// has a full collection run first (see [`collect_garbage`]) and stops the
/// execution only if that does not bring the memory back. The check runs
/// between JS instructions, so one native call (a `fill` of a huge buffer)
/// can overshoot it for as long as it runs.
pub fn memory_allowance(heap_memory_max_mb: u32) -> u64 {
    (2 * u64::from(heap_memory_max_mb) + 64) * 1024 * 1024
}

/// The process's resident memory in bytes, from `/proc/self/statm`.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page_size = u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).ok()?;
    Some(pages * page_size)
}

/// One long-lived thread per worker that terminates the running isolate when
/// its deadline passes, and the entry point for cancellation from the IPC
/// reader thread. No thread is spawned per execution.
#[derive(Clone)]
pub struct Watchdog {
    shared: Arc<(Mutex<Slot>, Condvar)>,
}

#[derive(Default)]
struct Slot {
    armed: Option<Armed>,
    /// A cancellation that arrived before its execution was armed: the server
    /// sends `Cancel` right after `Run`, and the reader thread may pass it on
    /// while the engine is still creating the isolate. Honoured by the next
    /// `arm` if the ids match, dropped by it otherwise (then it was for an
    /// execution that had already finished).
    early_cancel: Option<String>,
    /// When the watchdog thread wakes up by itself next (`None`: only when
    /// notified). Arming a deadline later than that, or disarming, needs no
    /// wake-up: the thread looks again when it wakes. So back-to-back
    /// executions cost the thread no context switches.
    wakes_at: Option<Instant>,
}

impl Watchdog {
    pub fn start() -> std::io::Result<Self> {
        let watchdog = Self {
            shared: Arc::new((Mutex::new(Slot::default()), Condvar::new())),
        };
        let shared = watchdog.shared.clone();
        std::thread::Builder::new()
            .name("mcp-v8-watchdog".into())
            .spawn(move || watch(&shared))?;
        Ok(watchdog)
    }

    pub fn arm(
        &self,
        execution_id: &str,
        isolate: v8::IsolateHandle,
        flag: Arc<StopFlag>,
        deadline: Instant,
        memory_allowance: u64,
    ) {
        let (slot, wake) = &*self.shared;
        let mut slot = lock(slot);
        if slot.early_cancel.take().as_deref() == Some(execution_id) {
            stop(&isolate, &flag, StopReason::Cancelled);
        }
        slot.armed = Some(Armed {
            execution_id: execution_id.to_owned(),
            isolate,
            flag,
            deadline,
            memory_allowance,
            memory_baseline: None,
            collection: None,
        });
        // An execution armed while the thread sleeps with nothing to guard
        // needs it awake; otherwise it looks within MEMORY_CHECK_EVERY.
        if slot.wakes_at.is_none_or(|wakes_at| wakes_at > deadline) {
            wake.notify_one();
        }
    }

    pub fn disarm(&self) {
        let (slot, _) = &*self.shared;
        lock(slot).armed = None;
    }

    /// Stops `execution_id` if it is the one running, or as soon as it is
    /// armed if nothing is running; returns whether it was running.
    pub fn cancel(&self, execution_id: &str) -> bool {
        let (slot, _) = &*self.shared;
        let mut slot = lock(slot);
        match &slot.armed {
            Some(armed) if armed.execution_id == execution_id => {
                stop(&armed.isolate, &armed.flag, StopReason::Cancelled);
                true
            }
            Some(_) => false,
            None => {
                slot.early_cancel = Some(execution_id.to_owned());
                false
            }
        }
    }
}

fn watch(shared: &(Mutex<Slot>, Condvar)) {
    let (slot, wake) = shared;
    let mut guard = lock(slot);
    loop {
        let now = Instant::now();
        let Some(armed) = guard.armed.as_mut() else {
            guard.wakes_at = None;
            guard = wake.wait(guard).unwrap_or_else(|e| e.into_inner());
            continue;
        };
        if now >= armed.deadline {
            stop(&armed.isolate, &armed.flag, StopReason::TimedOut);
            guard.armed = None;
            continue;
        }
        if let Some(resident) = resident_bytes() {
            let baseline = *armed.memory_baseline.get_or_insert(resident);
            let over = resident.saturating_sub(baseline) > armed.memory_allowance;
            match (over, armed.collection) {
                (false, _) => armed.collection = None,
                // Over for the first time: garbage may be what fills it.
                (true, None) => {
                    armed.collection = Some((COLLECTIONS.load(Ordering::SeqCst), now));
                    armed
                        .isolate
                        .request_interrupt(collect_garbage, std::ptr::null_mut());
                }
                (true, Some((before, asked))) => {
                    let collected = COLLECTIONS.load(Ordering::SeqCst) > before;
                    if collected || now.duration_since(asked) > COLLECTION_WAIT {
                        stop(&armed.isolate, &armed.flag, StopReason::HeapExceeded);
                        guard.armed = None;
                        continue;
                    }
                }
            }
        }
        let wakes_at = armed.deadline.min(now + MEMORY_CHECK_EVERY);
        guard.wakes_at = Some(wakes_at);
        guard = wake
            .wait_timeout(guard, wakes_at - now)
            .map(|(guard, _)| guard)
            .unwrap_or_else(|e| e.into_inner().0);
    }
}

/// A poisoned lock only means another thread panicked mid-update of a plain
/// `Option`; the value is still usable.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_stop_reason_wins() {
        let flag = StopFlag::default();
        assert_eq!(flag.get(), None);
        flag.set(StopReason::HeapExceeded);
        flag.set(StopReason::TimedOut);
        assert_eq!(flag.get(), Some(StopReason::HeapExceeded));
    }
}
