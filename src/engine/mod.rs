//! The engine: one fresh V8 isolate per execution, inside a worker process.
//!
//! [`Engine::boot`] initialises V8 once per process and makes the startup
//! snapshot of our bootstrap JS (console, timers, result encoder), so every
//! isolate starts from it instead of compiling the runtime's own JS again.
//! [`Engine::run`] then takes one [`Job`] at a time: prepare the source (swc),
//! create an isolate from the snapshot with the job's limits, evaluate, drive
//! the event loop until idle, encode the result, drop the isolate.
//!
//! Invariant: at most one isolate runs in a process at any time, and an engine
//! that makes heap snapshots ([`EngineMode::Stateful`]) has no other isolate
//! alive at all. V8 crashes when one isolate creates a snapshot while another
//! is active in the same process; one execution at a time per worker process is
//! what makes snapshots (and fatal V8 errors) safe for the server as a whole.
//! A [`EngineMode::Stateless`] engine never makes a snapshot after boot, so it
//! keeps one idle isolate alive: V8 shares the read-only heap between the
//! isolates of a process only while one of them lives, and without the idle
//! one every execution would deserialise it again (~40 % of an isolate's cost).
//! It also makes each job's isolate ahead of time and drops it after the
//! outcome is reported ([`Engine::tidy`]), so a job waits for neither.

mod console;
pub mod heap;
mod limits;
mod loader;
pub mod source;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use deno_core::error::{CoreError, CoreErrorKind, JsError};
use deno_core::{JsRuntime, JsRuntimeForSnapshot, PollEventLoopOptions, RuntimeOptions, v8};
use serde::{Deserialize, Serialize};

pub use console::{ConsoleLevel, ConsoleSink};
pub use limits::{StopReason, Watchdog, on_fatal_oom, on_free_memory_release};

use console::mcp_v8_runtime;
use heap::RestoredBlob;
use limits::{ArrayBufferBudget, StopFlag};
use loader::Loader;
use source::{PreparedSource, RESULT_EXPORT, SourceKind};

/// The runtime's own JS, evaluated once into the startup snapshot. ASCII only
/// (non-ASCII characters are written as `\u` escapes): V8 takes it as a
/// one-byte external string only then (see [`BOOTSTRAP_SOURCE`]).
const BOOTSTRAP_JS: &str = include_str!("js/bootstrap.js");

/// Stateful engines only, after the bootstrap: heap-safe replacements for
/// the built-ins whose objects V8 cannot snapshot (it aborts the process);
/// see the file's own comment. ASCII only, like the bootstrap.
const HEAP_SAFE_JS: &str = include_str!("js/heap_safe.js");

/// The runtime's JS as V8 external strings over the binary's own bytes (the
/// constructor checks, at compile time, that they are ASCII). V8 keeps a
/// script's source in the heap for as long as its functions live, and a
/// snapshot copies every string it holds, unless the string is external and
/// its resource is one of the isolate's external references: then it
/// records the reference's index. Their addresses are references of our
/// extension ([`SOURCE_REFERENCES`]), so neither the startup snapshot nor
/// any heap carries the 84 KB of source (a tenth of a trivial heap, which
/// V8 checksums twice and we compress, hash and store on every stateful
/// execution).
static BOOTSTRAP_SOURCE: v8::OneByteConst =
    v8::String::create_external_onebyte_const(BOOTSTRAP_JS.as_bytes());
static HEAP_SAFE_SOURCE: v8::OneByteConst =
    v8::String::create_external_onebyte_const(HEAP_SAFE_JS.as_bytes());

/// External references for the runtime's JS sources: every runtime, the
/// startup snapshot's creator included, registers them through our extension
/// ([`runtime_extension`]), in this order, whether it evaluates the scripts
/// or restores them.
const SOURCE_REFERENCES: [v8::ExternalReference; 2] = [
    v8::ExternalReference {
        pointer: &raw const BOOTSTRAP_SOURCE as *mut std::ffi::c_void,
    },
    v8::ExternalReference {
        pointer: &raw const HEAP_SAFE_SOURCE as *mut std::ffi::c_void,
    },
];

/// Our ops and the external references of our JS sources. (Set here, not in
/// `extension!`: deno_core 0.413's macro does not expand a list of them.)
fn runtime_extension() -> deno_core::Extension {
    let mut extension = mcp_v8_runtime::init();
    extension.external_references = std::borrow::Cow::Borrowed(&SOURCE_REFERENCES);
    extension
}

/// The largest result, in bytes of its text. A result travels whole to the
/// server, stays in the execution record and comes back in every
/// `get_execution`; bulk data belongs in the console output, which is paged.
pub const MAX_RESULT_BYTES: usize = 16 * 1024 * 1024;
/// An error's message and stack past this many bytes are cut: an error is
/// read by people and models, not parsed.
pub const MAX_ERROR_BYTES: usize = 64 * 1024;
/// The largest heap object (compressed snapshot) a stateful execution may
/// leave: it travels whole between processes and to the store, and comes back
/// whole to resume.
pub const MAX_HEAP_OBJECT_BYTES: usize = 128 * 1024 * 1024;
/// The name agent code has in stack traces.
const MAIN_FILE: &str = "file:///main.ts";
/// Extra V8 command-line flags for the workers (advanced tuning). They are part
/// of the heap fingerprint: a snapshot only restores under the flags it was
/// made with.
pub const V8_FLAGS_ENV: &str = "MCP_V8_V8_FLAGS";
/// The V8 flags of this process, from `MCP_V8_V8_FLAGS` (usually none).
pub fn v8_flags() -> &'static str {
    static FLAGS: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    FLAGS.get_or_init(|| {
        std::env::var(V8_FLAGS_ENV)
            .map(|flags| flags.trim().to_owned())
            .unwrap_or_default()
    })
}
/// Checks `MCP_V8_V8_FLAGS` before any worker starts, so that a typo stops
/// the server with its name instead of each worker printing V8's complaint
/// and ignoring every flag after it. Sets the flags in this process, which
/// is harmless in the server: it never starts V8.
pub fn check_v8_flags() -> Result<(), String> {
    let flags = v8_flags();
    if flags.is_empty() {
        return Ok(());
    }
    let mut args = vec![String::from("mcp-v8")];
    args.extend(flags.split_whitespace().map(str::to_owned));
    // V8 removes the flags it knows and leaves the rest, program name first.
    let unknown = v8::V8::set_flags_from_command_line(args);
    match unknown.get(1..) {
        Some(rest) if !rest.is_empty() => Err(format!(
            "{V8_FLAGS_ENV}: V8 did not take {} (an unknown flag, or a bad value and \
             what follows it; `node --v8-options` lists V8's flags)",
            rest.join(" ")
        )),
        _ => Ok(()),
    }
}
/// V8 flags of every stateful engine (see [`Engine::boot`]). Part of the
/// heap fingerprint: they shape what a snapshot holds.
const STATEFUL_V8_FLAGS: &str = "--no-js-explicit-resource-management";
/// V8 flag of every stateful engine once its startup snapshot is made (see
/// [`tune_for_snapshots`]). Part of the heap fingerprint too.
const SEALED_READ_ONLY_SPACE: &str = "--no-extensible-ro-snapshot";
/// V8 flags of every stateful engine, set before V8 is initialised (V8 reads
/// these then). Flags stay unfrozen for those set later. One thread does all
/// garbage collection: every snapshot begins with full collections of a
/// small heap, where V8's helper threads cost more than they save, and on a
/// machine whose cores all run workers they take their time from the other
/// workers. Part of the heap fingerprint too.
pub const STATEFUL_INIT_V8_FLAGS: &str = "--no-freeze-flags-after-init --single-threaded-gc";
/// V8's own default for `Error.stackTraceLimit`.
const DEFAULT_STACK_TRACE_LIMIT: i32 = 10;
/// Heap headroom granted after the limit is hit, so termination can complete.
const TERMINATION_HEADROOM: usize = 16 * 1024 * 1024;
/// Room V8 gets beyond the job's heap limit (and twice the snapshot it
/// deserialises) while deno_core builds a runtime, before the job's limit
/// and its near-heap-limit callback are in place; see [`lower_heap_limit`].
const CREATION_HEADROOM: usize = 16 * 1024 * 1024;

/// One execution as the engine sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub execution_id: String,
    pub code: String,
    pub heap_memory_max_mb: u32,
    pub timeout: Duration,
    /// Snapshot the heap when the code completes (stateful mode).
    pub stateful: bool,
    /// A stored heap object ([`heap::encode`]) to resume from instead of the
    /// fresh startup snapshot. (`serde_bytes`: one copy on the wire, not a
    /// sequence of single bytes.)
    #[serde(default, with = "serde_bytes")]
    pub restore: Option<Vec<u8>>,
}

/// How an execution ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Completed {
        result: String,
        /// The heap object a stateful execution left behind.
        #[serde(with = "serde_bytes")]
        heap: Option<Vec<u8>>,
    },
    Failed {
        error: String,
    },
    TimedOut {
        error: String,
    },
    Cancelled,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("the bootstrap JavaScript failed to evaluate: {0}")]
    Bootstrap(String),
    #[error("could not start the watchdog thread: {0}")]
    Watchdog(#[from] std::io::Error),
    #[error("could not start the event loop: {0}")]
    EventLoop(std::io::Error),
    #[error("could not create the stateless engine's idle isolate: {0}")]
    IdleIsolate(String),
}

/// What an engine will be asked to do, fixed when it boots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineMode {
    /// Jobs may snapshot their heap and resume stored heaps; no isolate but
    /// the running one is ever alive.
    Stateful,
    /// Fresh, snapshot-free jobs only (the server's `--stateless` mode). One
    /// idle isolate from the startup snapshot is kept alive beside the running
    /// one, which makes every isolate cheaper to create.
    Stateless,
}

/// A booted V8 with its startup snapshot; runs one job at a time.
pub struct Engine {
    snapshot: &'static [u8],
    mode: EngineMode,
    watchdog: Watchdog,
    /// Stateless mode: the isolate for the next job, made by [`Engine::tidy`]
    /// while the worker waits, so a job does not wait for its creation.
    spare: RefCell<Option<FreshIsolate>>,
    /// Stateless mode: the last job's isolate, dropped by [`Engine::tidy`]
    /// once its outcome has been reported.
    retired: RefCell<Option<JsRuntime>>,
    /// The heap limit of the last job, for the next spare isolate.
    last_heap_limit: Cell<Option<usize>>,
    /// Set when a job left a runtime that can be neither snapshotted nor
    /// dropped (see [`Engine::is_spent`]).
    spent: Cell<bool>,
    /// Stateless mode's idle isolate (see the module docs). Declared before
    /// `event_loop`, so it is dropped while the tokio context still exists.
    _keeper: Option<JsRuntime>,
    event_loop: tokio::runtime::Runtime,
}

impl Engine {
    /// Initialises V8 for this process and builds the startup snapshot.
    pub fn boot(mode: EngineMode) -> Result<Self, EngineError> {
        console::start_clock();
        // Initialise V8 in normal mode first: if the snapshot creator were the
        // first runtime, deno_core would set `--predictable --random-seed=42`
        // for the whole process and every isolate would share one Math.random
        // sequence.
        // Before deno_core's own flags, which are set once, at initialisation,
        // and win where the two disagree.
        if mode == EngineMode::Stateful {
            v8::V8::set_flags_from_string(STATEFUL_INIT_V8_FLAGS);
        }
        if !v8_flags().is_empty() {
            v8::V8::set_flags_from_string(v8_flags());
        }
        JsRuntime::init_platform(None);
        if mode == EngineMode::Stateful {
            // V8 leaves explicit resource management out of isolates that
            // make snapshots, yet compiles `using` against it and aborts the
            // process when it runs. Without the flag, `using` in code that
            // escapes the source check (`eval`, `new Function`) is a plain
            // SyntaxError. deno_core turns it on while it initialises V8, so
            // it is turned off after that, before any isolate exists (hence
            // flags left unfrozen); only the parser reads it.
            v8::V8::set_flags_from_string(STATEFUL_V8_FLAGS);
        }
        let event_loop = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(EngineError::EventLoop)?;
        // V8 may post delayed tasks while it builds the snapshot (it does
        // under `--single-threaded`), which deno_core's platform can only
        // honour inside a tokio context.
        let snapshot = {
            let _context = event_loop.enter();
            Box::leak(startup_snapshot(mode)?)
        };
        if mode == EngineMode::Stateful {
            tune_for_snapshots();
        }
        let keeper = match mode {
            EngineMode::Stateful => None,
            EngineMode::Stateless => {
                // After the startup snapshot: from here on this process never
                // makes one. It must come from the same snapshot as the
                // isolates it shares the read-only heap with.
                let _context = event_loop.enter();
                let keeper = JsRuntime::try_new(RuntimeOptions {
                    startup_snapshot: Some(snapshot),
                    extensions: vec![runtime_extension()],
                    skip_op_registration: true,
                    ..Default::default()
                })
                .map_err(|error| EngineError::IdleIsolate(error.to_string()))?;
                Some(keeper)
            }
        };
        Ok(Self {
            snapshot,
            mode,
            watchdog: Watchdog::start()?,
            spare: RefCell::new(None),
            retired: RefCell::new(None),
            last_heap_limit: Cell::new(None),
            spent: Cell::new(false),
            _keeper: keeper,
            event_loop,
        })
    }

    /// True once a job has left this engine unable to run another: a
    /// stateful runtime stopped or failed while deno_core still waited on a
    /// promise of it holds native callbacks V8 cannot snapshot (it aborts
    /// the process), and a snapshot-creating runtime cannot be dropped
    /// either; it is leaked. The worker reports the outcome and exits.
    pub fn is_spent(&self) -> bool {
        self.spent.get()
    }

    /// The watchdog, for cancelling the running job from another thread.
    pub fn watchdog(&self) -> Watchdog {
        self.watchdog.clone()
    }

    /// Runs one job to its outcome in a fresh isolate.
    pub fn run(&self, job: &Job, console: ConsoleSink) -> Outcome {
        if self.mode == EngineMode::Stateless && (job.stateful || job.restore.is_some()) {
            // The executor never sends these to a stateless worker; refusing
            // them keeps a snapshot from ever being made beside the keeper.
            return Outcome::failed(
                "this engine was started stateless: it cannot snapshot or resume heaps",
            );
        }
        let using_declarations = self.mode == EngineMode::Stateless;
        let source = match source::prepare(&job.code, MAIN_FILE, using_declarations) {
            Ok(source) => source,
            Err(error) => return Outcome::failed(error),
        };
        let restored = match job.restore.as_deref().map(heap::decode).transpose() {
            Ok(blob) => blob.map(RestoredBlob::new),
            Err(error) => return Outcome::failed(error),
        };
        // SAFETY: every runtime below is dropped or consumed by `snapshot()`
        // before this function returns, and `restored` lives until then.
        let base = match &restored {
            Some(blob) => unsafe { blob.as_static() },
            None => self.snapshot,
        };
        // V8 posts delayed tasks through deno_core's platform, which needs the
        // tokio context present when the isolate is created.
        let _context = self.event_loop.enter();
        let heap_limit = heap_limit(job);
        let outcome = if self.mode == EngineMode::Stateless {
            self.run_stateless(job, &source, heap_limit, console)
        } else if job.stateful {
            let (options, loader, budget) = FreshIsolate::options(base, heap_limit);
            loader.add_source_map(&file_name(job), source.source_map.clone());
            match JsRuntimeForSnapshot::try_new(options) {
                Ok(mut runtime) => match lower_heap_limit(&mut runtime, &budget, heap_limit) {
                    Ok(()) => self.run_stateful(runtime, job, &source, &budget, console),
                    Err(error) => {
                        // The one way to dispose of a snapshot-creating runtime.
                        drop(runtime.snapshot());
                        Outcome::failed(error)
                    }
                },
                Err(error) => Outcome::failed(isolate_not_created(error)),
            }
        } else {
            match FreshIsolate::new(base, heap_limit) {
                Ok(isolate) => self.run_in(isolate, job, &source, console).0,
                Err(error) => Outcome::failed(error),
            }
        };
        if self.spent.get() {
            // The leaked runtime was built from it.
            std::mem::forget(restored);
        } else {
            drop(restored);
        }
        outcome
    }

    /// Work for the time between jobs, after the last outcome was reported:
    /// a stateless engine drops the last job's isolate and makes the next
    /// one (with the last job's heap limit, the one the next job most likely
    /// asks for). Jobs run correctly without it, only later.
    pub fn tidy(&self) {
        if self.mode != EngineMode::Stateless {
            return;
        }
        let _context = self.event_loop.enter();
        drop(self.retired.borrow_mut().take());
        let mut spare = self.spare.borrow_mut();
        if let (None, Some(heap_limit)) = (&*spare, self.last_heap_limit.get()) {
            // A failure here is met again, and reported, by the next job.
            *spare = FreshIsolate::new(self.snapshot, heap_limit).ok();
        }
    }

    /// A stateless job: in the spare isolate when its heap limit fits, else in
    /// a new one; the isolate is retired, not dropped, until [`Engine::tidy`].
    fn run_stateless(
        &self,
        job: &Job,
        source: &PreparedSource,
        heap_limit: usize,
        console: ConsoleSink,
    ) -> Outcome {
        drop(self.retired.borrow_mut().take());
        self.last_heap_limit.set(Some(heap_limit));
        let spare = self
            .spare
            .borrow_mut()
            .take()
            .filter(|spare| spare.heap_limit == heap_limit);
        let isolate = match spare {
            Some(isolate) => isolate,
            None => match FreshIsolate::new(self.snapshot, heap_limit) {
                Ok(isolate) => isolate,
                Err(error) => return Outcome::failed(error),
            },
        };
        let (outcome, used) = self.run_in(isolate, job, source, console);
        *self.retired.borrow_mut() = Some(used);
        outcome
    }

    /// Runs a snapshot-free job in `isolate`; returns its outcome and the used
    /// runtime, for the caller to dispose of.
    fn run_in(
        &self,
        mut isolate: FreshIsolate,
        job: &Job,
        source: &PreparedSource,
        console: ConsoleSink,
    ) -> (Outcome, JsRuntime) {
        isolate
            .loader
            .add_source_map(&file_name(job), source.source_map.clone());
        // A snapshot-free runtime drops fine, waiting or not.
        let evaluation = self.execute(&mut isolate.runtime, job, source, &isolate.budget, console);
        (classify(job, evaluation, None), isolate.runtime)
    }

    /// Runs the job and snapshots the heap. The snapshot is taken even when the
    /// code failed and then thrown away: `snapshot()` is the only way to
    /// dispose of a snapshot-creating isolate; dropping it leaks the isolate.
    fn run_stateful(
        &self,
        mut runtime: JsRuntimeForSnapshot,
        job: &Job,
        source: &PreparedSource,
        budget: &ArrayBufferBudget,
        console: ConsoleSink,
    ) -> Outcome {
        let evaluation = self.execute(&mut runtime, job, source, budget, console);
        if evaluation.waiting {
            self.spent.set(true);
            std::mem::forget(runtime);
            return classify(job, evaluation, None);
        }
        let (stop, evaluated) = (evaluation.stop, &evaluation.result);
        if stop.is_some() {
            runtime.v8_isolate().cancel_terminate_execution();
        }
        let restorable = restore_internals(&mut runtime);
        if !release_natives(&mut runtime) {
            // Like a runtime still waiting: it cannot be snapshotted safely,
            // nor dropped; it is leaked and the worker replaced.
            self.spent.set(true);
            std::mem::forget(runtime);
            return Outcome::failed(
                "the code finished, but its heap could not be made ready for a snapshot \
                 (releasing its Intl objects failed), so it was not stored",
            );
        }
        let blob = runtime.snapshot();
        if !restorable && stop.is_none() && evaluated.is_ok() {
            return Outcome::failed(
                "the code completed, but it left the global object in a state a heap cannot \
                 be resumed from (non-extensible, sealed or frozen, or with a `Deno` property \
                 of its own that cannot be replaced), so the heap was not stored",
            );
        }
        let heap = match (stop, evaluated) {
            (None, Ok(_)) => match heap::encode(&blob) {
                Ok(object) if object.len() > MAX_HEAP_OBJECT_BYTES => {
                    let (size, limit) = sizes(object.len(), MAX_HEAP_OBJECT_BYTES);
                    return Outcome::failed(format!(
                        "the code completed, but its heap snapshot is {size} compressed, more \
                         than the {limit} a stored heap may be; keep less data in the heap"
                    ));
                }
                Ok(object) => Some(object),
                Err(error) => {
                    return Outcome::failed(format!("could not encode the heap snapshot: {error}"));
                }
            },
            _ => None,
        };
        classify(job, evaluation, heap)
    }

    /// Evaluates the job in `runtime` under its limits.
    fn execute(
        &self,
        runtime: &mut JsRuntime,
        job: &Job,
        source: &PreparedSource,
        budget: &ArrayBufferBudget,
        console: ConsoleSink,
    ) -> Evaluation {
        runtime.op_state().borrow_mut().put(console);
        hide_internals(runtime);
        install_exception_formatter(runtime);
        if job.stateful {
            enable_stack_traces(runtime);
            runtime
                .v8_isolate()
                .set_prepare_stack_trace_callback(prepare_stack_trace_for_snapshot);
        }
        limits::report_fatal_oom(runtime.v8_isolate(), job.heap_memory_max_mb);
        let flag = Arc::new(StopFlag::default());
        let isolate = runtime.v8_isolate().thread_safe_handle();
        budget.on_exceeded(isolate.clone(), flag.clone());
        {
            let (isolate, flag) = (isolate.clone(), flag.clone());
            runtime.add_near_heap_limit_callback(move |current, _initial| {
                limits::stop(&isolate, &flag, StopReason::HeapExceeded);
                current + TERMINATION_HEADROOM
            });
        }
        self.watchdog.arm(
            &job.execution_id,
            isolate,
            flag.clone(),
            Instant::now() + job.timeout,
            limits::memory_allowance(job.heap_memory_max_mb),
        );
        let file_name = file_name(job);
        let value_settled = Cell::new(false);
        let evaluated = self.event_loop.block_on(async {
            tokio::select! {
                biased;
                evaluated = evaluate(runtime, source, &file_name, &value_settled) => evaluated,
                // The outcome is the stop reason's, whatever this says.
                () = flag.stopped() => Err(Unfinished::waiting("stopped".to_owned())),
            }
        });
        self.watchdog.disarm();
        let waiting = matches!(&evaluated, Err(unfinished) if unfinished.waiting);
        let result = evaluated
            .map_err(|unfinished| unfinished.error)
            .and_then(|value| encode(runtime, value));
        Evaluation {
            stop: flag.get(),
            result,
            waiting,
            value_settled: value_settled.get(),
        }
    }
}

/// How a job's evaluation ended.
struct Evaluation {
    /// Why JS was stopped, if it was.
    stop: Option<StopReason>,
    /// The encoded result, or the error text.
    result: Result<String, String>,
    /// deno_core was still waiting on a promise of the evaluation (see
    /// [`Unfinished`]).
    waiting: bool,
    /// The code's value had settled: what still ran was the event loop
    /// (timers, pending operations), which a timeout then cut short.
    value_settled: bool,
}

impl Outcome {
    pub fn failed(error: impl ToString) -> Self {
        Self::Failed {
            error: error.to_string(),
        }
    }
}

/// V8's heap limit while a runtime is built from `base`: the job's, plus room
/// for the snapshot and deno_core's set-up, in whole MB (V8 derives the sizes
/// of its memory reservations from it, and fails a check on odd sizes).
fn creation_heap_limit(base: &[u8], heap_limit: usize) -> usize {
    (heap_limit + 2 * base.len() + CREATION_HEADROOM).next_multiple_of(1024 * 1024)
}

fn isolate_not_created(error: deno_core::error::CoreError) -> String {
    format!("could not create the V8 isolate: {error}")
}

/// Puts the job's heap limit in force on a runtime that was built with more.
///
/// deno_core deserialises the snapshot and creates its op functions inside
/// `JsRuntime::try_new`, before anyone can install a near-heap-limit
/// callback. With the job's limit already in force there, a resumed heap
/// close to the limit (or bigger than it), or an unlucky moment for the
/// garbage collector, ends in V8's fatal out-of-memory error: the worker
/// process dies. So V8 builds the runtime with room to spare, and the limit
/// is lowered here, before any of the job's code runs. V8 lowers a limit in
/// one way only: when a near-heap-limit callback is removed with the limit
/// to restore. The same goes for the ArrayBuffer budget: a resumed heap's
/// buffers were allocated while it was built, and are measured here against
/// the same limit, on their own, as the budget measures them while code runs.
fn lower_heap_limit(
    runtime: &mut JsRuntime,
    budget: &ArrayBufferBudget,
    heap_limit: usize,
) -> Result<(), String> {
    // Each measured as while code runs: the V8 heap and the ArrayBuffers
    // each get the limit.
    let heap = runtime.v8_isolate().get_heap_statistics().used_heap_size();
    let buffers = budget.used();
    for (used, what) in [(heap, ""), (buffers, " of ArrayBuffers")] {
        if used > heap_limit {
            return Err(format!(
                "the heap to resume holds {} MB{what}, more than this execution's heap limit \
                 of {} MB; resume it with a larger heap_memory_max_mb",
                used.div_ceil(1024 * 1024),
                heap_limit / (1024 * 1024)
            ));
        }
    }
    runtime.add_near_heap_limit_callback(|current, _initial| current);
    runtime.remove_near_heap_limit_callback(heap_limit);
    budget.limit_to(heap_limit);
    Ok(())
}

/// The heap limit of a job, in bytes.
fn heap_limit(job: &Job) -> usize {
    job.heap_memory_max_mb as usize * 1024 * 1024
}

/// A runtime from a snapshot, not yet used, with the handles a job needs: its
/// loader (to which the job's source map is added) and its ArrayBuffer budget.
struct FreshIsolate {
    runtime: JsRuntime,
    loader: Rc<Loader>,
    budget: Arc<ArrayBufferBudget>,
    heap_limit: usize,
}

impl FreshIsolate {
    /// A runtime from `base`, with V8's heap limit lowered to `heap_limit`
    /// once it is built. Errors are the execution's failure message.
    fn new(base: &'static [u8], heap_limit: usize) -> Result<Self, String> {
        let (options, loader, budget) = Self::options(base, heap_limit);
        let mut runtime = JsRuntime::try_new(options).map_err(isolate_not_created)?;
        lower_heap_limit(&mut runtime, &budget, heap_limit)?;
        Ok(Self {
            runtime,
            loader,
            budget,
            heap_limit,
        })
    }

    /// Isolate settings: a heap limit with room to build the runtime (see
    /// [`lower_heap_limit`]), the ArrayBuffer budget of the job's heap limit,
    /// our ops, and a loader for the source maps of the code it runs.
    fn options(
        base: &'static [u8],
        heap_limit: usize,
    ) -> (RuntimeOptions, Rc<Loader>, Arc<ArrayBufferBudget>) {
        // Any ArrayBuffers of a resumed heap are in `base`, uncompressed.
        let (budget, allocator) = ArrayBufferBudget::allocator(heap_limit + base.len());
        let loader = Rc::new(Loader::default());
        let options = RuntimeOptions {
            startup_snapshot: Some(base),
            extensions: vec![runtime_extension()],
            // Every snapshot an isolate starts from (the startup snapshot, or
            // a heap made from it) already holds the functions of these same
            // ops; binding them again costs a tenth of the isolate's creation.
            skip_op_registration: true,
            module_loader: Some(loader.clone()),
            create_params: Some(
                v8::CreateParams::default()
                    .heap_limits(0, creation_heap_limit(base, heap_limit))
                    .array_buffer_allocator(allocator),
            ),
            ..Default::default()
        };
        (options, loader, budget)
    }
}

/// The name the job's code runs under (and stack traces show). A heap snapshot
/// keeps the modules and scripts it has loaded, so each stateful execution
/// needs a name of its own: a module cannot be loaded twice, and an older
/// script's frames must not be read through a newer script's source map.
fn file_name(job: &Job) -> String {
    if job.stateful {
        format!("file:///{}.ts", job.execution_id)
    } else {
        MAIN_FILE.to_owned()
    }
}

/// The outcome, from why JS was stopped (if it was) and how evaluation ended.
fn classify(job: &Job, evaluation: Evaluation, heap: Option<Vec<u8>>) -> Outcome {
    match (evaluation.stop, evaluation.result) {
        (Some(StopReason::TimedOut), _) => Outcome::TimedOut {
            error: format!(
                "execution timed out after {} s (execution_timeout_secs){}",
                job.timeout.as_secs_f64(),
                if evaluation.value_settled {
                    PENDING_WORK_HINT
                } else {
                    ""
                }
            ),
        },
        (Some(StopReason::Cancelled), _) => Outcome::Cancelled,
        (Some(StopReason::HeapExceeded), _) => {
            Outcome::failed(limits::heap_exceeded_message(job.heap_memory_max_mb))
        }
        (None, Ok(result)) if result.len() > MAX_RESULT_BYTES => {
            let (size, limit) = sizes(result.len(), MAX_RESULT_BYTES);
            Outcome::failed(format!(
                "the result is {size} as text, more than the {limit} a result may be; return \
                 less, or print the data with console.log and page through the output"
            ))
        }
        (None, Ok(result)) => Outcome::Completed { result, heap },
        (None, Err(error)) => Outcome::Failed {
            error: cut_error(without_runtime_frames(error)),
        },
    }
}

/// `error` without the stack frames of the runtime's own JavaScript
/// (deno_core's `ext:core/…` timers, our `ext:mcp_v8/bootstrap.js`): an
/// error thrown in a timer callback otherwise ends in four frames the agent
/// neither wrote nor can act on. The agent's own frames (`file:///…`) and
/// V8's builtins (`<anonymous>`) stay.
fn without_runtime_frames(error: String) -> String {
    let is_runtime_frame = |line: &str| {
        line.trim_start().strip_prefix("at ").is_some_and(|frame| {
            frame.starts_with("ext:") || (frame.contains(" (ext:") && frame.ends_with(')'))
        })
    };
    if !error.lines().any(is_runtime_frame) {
        return error;
    }
    error
        .lines()
        .filter(|line| !is_runtime_frame(line))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `error` cut to [`MAX_ERROR_BYTES`] (on a character boundary), saying so.
fn cut_error(mut error: String) -> String {
    if error.len() <= MAX_ERROR_BYTES {
        return error;
    }
    let total = error.len();
    error.truncate(error.floor_char_boundary(MAX_ERROR_BYTES));
    error.push_str(&format!(" [error cut: {total} bytes in all]"));
    error
}

/// A byte count for messages: `12.3 MiB`.
fn mebibytes(bytes: usize) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// A size over its limit and the limit, in MiB to one decimal, or in bytes
/// where MiB would show the two alike ("16.0 MiB, more than 16.0 MiB").
fn sizes(size: usize, limit: usize) -> (String, String) {
    let (size_mib, limit_mib) = (mebibytes(size), mebibytes(limit));
    if size_mib == limit_mib {
        (format!("{size} bytes"), format!("{limit} bytes"))
    } else {
        (size_mib, limit_mib)
    }
}

/// The globals through which JS could reach deno_core's ops. deno_core needs
/// them while it builds a runtime (also from a heap snapshot), so they are
/// moved out of sight for the agent's code and put back before a snapshot.
const INTERNALS: [&str; 1] = ["Deno"];
/// Where the hidden internals wait: a private symbol JS cannot name.
const HIDDEN_INTERNALS: &str = "mcp-v8.hidden-internals";

fn hide_internals(runtime: &mut JsRuntime) {
    move_internals(runtime, true);
}

/// Puts the internals back before a snapshot. `false` when the agent's code
/// made that impossible (a non-extensible global object, or a `Deno` of its
/// own that cannot be replaced): deno_core cannot build a runtime from such a
/// heap, so it must not be stored.
fn restore_internals(runtime: &mut JsRuntime) -> bool {
    move_internals(runtime, false)
}

/// Drops the native objects behind the heap-safe Intl objects (see
/// `js/heap_safe.js`): a heap V8 snapshots must hold none.
/// False if that failed (the function missing, or stopped part-way by a
/// termination): a snapshot then could abort the process.
fn release_natives(runtime: &mut JsRuntime) -> bool {
    deno_core::scope!(scope, runtime);
    let Some(release) = bootstrap_function(scope, "mcp-v8.releaseNatives") else {
        return false;
    };
    let undefined = v8::undefined(scope);
    release.call(scope, undefined.into(), &[]).is_some()
}

fn move_internals(runtime: &mut JsRuntime, hide: bool) -> bool {
    deno_core::scope!(scope, runtime);
    let global = scope.get_current_context().global(scope);
    let Some(private_name) = v8::String::new(scope, HIDDEN_INTERNALS) else {
        return false;
    };
    let private = v8::Private::for_api(scope, Some(private_name));
    let mut moved = true;
    for name in INTERNALS {
        let Some(key) = v8::String::new(scope, name) else {
            moved = false;
            continue;
        };
        if hide {
            if let Some(value) = global.get(scope, key.into()) {
                global.set_private(scope, private, value);
                global.delete(scope, key.into());
            }
        } else if let Some(value) = global.get_private(scope, private)
            && !value.is_undefined()
        {
            // Defined, not assigned: an accessor or a read-only `Deno` of
            // the agent's would take an assignment without storing it.
            global.define_own_property(scope, key.into(), value, v8::PropertyAttribute::NONE);
            let back = global
                .get(scope, key.into())
                .is_some_and(|now| now.strict_equals(value));
            moved &= back;
            if back {
                global.delete_private(scope, private);
            }
        }
    }
    moved
}

/// V8 leaves `Error.stackTraceLimit` unset in snapshot-creating isolates, so
/// errors in stateful executions would carry no stack; give it V8's default.
fn enable_stack_traces(runtime: &mut JsRuntime) {
    deno_core::scope!(scope, runtime);
    let global = scope.get_current_context().global(scope);
    let (Some(error_name), Some(limit_name)) = (
        v8::String::new(scope, "Error"),
        v8::String::new(scope, "stackTraceLimit"),
    ) else {
        return;
    };
    let Some(error) = global
        .get(scope, error_name.into())
        .and_then(|error| v8::Local::<v8::Object>::try_from(error).ok())
    else {
        return;
    };
    let limit = v8::Integer::new(scope, DEFAULT_STACK_TRACE_LIMIT);
    error.set(scope, limit_name.into(), limit.into());
}

/// Formats `error.stack` like deno_core's own callback, minus one thing: deno_core
/// also stashes the raw V8 call-site objects on the error, and those do not
/// survive a heap snapshot (reading such an error's stack after a restore
/// crashes V8). Used in snapshot-creating runtimes only.
fn prepare_stack_trace_for_snapshot<'s, 'i>(
    scope: &mut v8::PinScope<'s, 'i>,
    error: v8::Local<'s, v8::Value>,
    callsites: v8::Local<'s, v8::Array>,
) -> v8::Local<'s, v8::Value> {
    let user_formatter = (|| {
        let global = scope.get_current_context().global(scope);
        let error_name = v8::String::new(scope, "Error")?;
        let constructor = global.get(scope, error_name.into())?;
        let constructor = v8::Local::<v8::Object>::try_from(constructor).ok()?;
        let prepare_name = v8::String::new(scope, "prepareStackTrace")?;
        let prepare = constructor.get(scope, prepare_name.into())?;
        let prepare = v8::Local::<v8::Function>::try_from(prepare).ok()?;
        Some((constructor, prepare))
    })();
    match user_formatter {
        // `Error.prepareStackTrace` set by the agent's code replaces formatting.
        Some((constructor, prepare)) => prepare
            .call(scope, constructor.into(), &[error, callsites.into()])
            .unwrap_or_else(|| v8::undefined(scope).into()),
        None => deno_core::error::format_stack_trace(scope, error, callsites),
    }
}

/// Makes every later `snapshot()` of this process cheaper; for a process
/// whose isolates are all built from a snapshot made before this call (a
/// stateful engine once its startup snapshot is made; public for the
/// benchmark's floor, which measures it on bare deno_core). With the
/// one-thread GC of [`STATEFUL_INIT_V8_FLAGS`], a sixth of a trivial stateful
/// execution's CPU. V8 must have been initialised with
/// [`STATEFUL_INIT_V8_FLAGS`], which leave its flags unfrozen; V8 aborts the
/// process otherwise.
///
/// - V8 seals the read-only space of each isolate as it deserialises it.
///   The snapshot already holds a complete one, and a sealed space spares
///   `snapshot()` its search of the whole heap for objects to move into it
///   (the startup snapshot had that search once).
/// - glibc keeps freed memory for the next job. Each stateful job builds a
///   runtime and serialises its heap into buffers that grow to the blob's
///   size, then frees it all; by default glibc hands such blocks back to the
///   kernel at once (`mmap`ed ones above its threshold, the top of the heap
///   past 128 KB), and the next job faults the same pages in again. Up to
///   [`RETAINED_FREE_BYTES`] of free memory is kept, unused, for the next
///   job (glibc targets only). Moot in the `mcp-v8` binary, which replaces
///   glibc's allocator with mimalloc (see `main.rs`); it serves binaries on
///   the system allocator, such as the benchmark's floor.
pub fn tune_for_snapshots() {
    v8::V8::set_flags_from_string(SEALED_READ_ONLY_SPACE);
    #[cfg(target_env = "gnu")]
    // SAFETY: `mallopt` only sets allocator parameters.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, LARGEST_HEAP_BLOCK);
        libc::mallopt(libc::M_TRIM_THRESHOLD, RETAINED_FREE_BYTES);
    }
}

/// Blocks up to this size come from the heap, not their own `mmap` (glibc's
/// largest threshold on 64-bit targets).
#[cfg(target_env = "gnu")]
const LARGEST_HEAP_BLOCK: i32 = 32 * 1024 * 1024;
/// Free memory at the top of the heap that glibc keeps rather than returns.
#[cfg(target_env = "gnu")]
const RETAINED_FREE_BYTES: i32 = 64 * 1024 * 1024;

/// Evaluates the runtime's own JS in a snapshot-creating runtime: the
/// bootstrap, and in a stateful engine the heap-safe built-ins.
fn startup_snapshot(mode: EngineMode) -> Result<Box<[u8]>, EngineError> {
    let mut runtime = JsRuntimeForSnapshot::new(RuntimeOptions {
        extensions: vec![runtime_extension()],
        ..Default::default()
    });
    let mut scripts = vec![("ext:mcp_v8/bootstrap.js", &BOOTSTRAP_SOURCE)];
    if mode == EngineMode::Stateful {
        scripts.push(("ext:mcp_v8/heap_safe.js", &HEAP_SAFE_SOURCE));
    }
    for (name, code) in scripts {
        runtime
            .execute_script(name, deno_core::FastStaticString::new(code))
            .map_err(|error| EngineError::Bootstrap(format!("{name}: {error}")))?;
    }
    Ok(runtime.snapshot())
}

/// Why evaluation produced no value.
struct Unfinished {
    error: String,
    /// deno_core was still waiting on a promise of the evaluation (its
    /// module evaluation, or the result's resolution), through native
    /// callbacks that V8 cannot put in a snapshot.
    waiting: bool,
}

impl Unfinished {
    fn settled(error: String) -> Self {
        Self {
            error,
            waiting: false,
        }
    }

    fn waiting(error: String) -> Self {
        Self {
            error,
            waiting: true,
        }
    }
}

/// Why a timed-out execution whose value had settled did not finish.
const PENDING_WORK_HINT: &str = ": the code's value was ready, but timers still pending, or \
    their callbacks, kept the execution running (a setInterval never cleared, a long \
    setTimeout, a callback that never returns); clear them with clearInterval/clearTimeout \
    so it can finish and return its value";

/// Runs the code, awaits its value if it is a promise, and then keeps the event
/// loop going until it is idle (pending timers still fire); `value_settled` is
/// set between the two.
async fn evaluate(
    runtime: &mut JsRuntime,
    source: &PreparedSource,
    file_name: &str,
    value_settled: &Cell<bool>,
) -> Result<v8::Global<v8::Value>, Unfinished> {
    let value = match source.kind {
        SourceKind::Script => runtime
            .execute_script(file_name.to_owned(), source.code.clone())
            .map_err(|error| Unfinished::settled(describe(&error)))?,
        SourceKind::Module => evaluate_module(runtime, source, file_name)
            .await
            .map_err(Unfinished::waiting)?,
    };
    let resolution = runtime.resolve(value);
    let value = runtime
        .with_event_loop_promise(resolution, PollEventLoopOptions::default())
        .await
        .map_err(|error| Unfinished::waiting(unsettled(error)))?;
    value_settled.set(true);
    runtime
        .run_event_loop(PollEventLoopOptions::default())
        .await
        .map_err(|error| Unfinished::settled(describe_core(&error)))?;
    Ok(value)
}

async fn evaluate_module(
    runtime: &mut JsRuntime,
    source: &PreparedSource,
    file_name: &str,
) -> Result<v8::Global<v8::Value>, String> {
    let specifier = deno_core::resolve_url(file_name).map_err(|error| error.to_string())?;
    // A runtime has one main module, and a resumed heap may hold an earlier
    // execution's; executions after the first load theirs as side modules.
    let module = if file_name == MAIN_FILE {
        runtime
            .load_main_es_module_from_code(&specifier, source.code.clone())
            .await
    } else {
        runtime
            .load_side_es_module_from_code(&specifier, source.code.clone())
            .await
    }
    .map_err(|error| describe_core(&error))?;
    let evaluation = runtime.mod_evaluate(module);
    // Not `with_event_loop_future`: it drops the event loop's errors, so an
    // error thrown by a timer while the module awaits, or a top-level await
    // that nothing can settle any more, would wait for the deadline instead
    // of failing.
    runtime
        .with_event_loop_promise(evaluation, PollEventLoopOptions::default())
        .await
        .map_err(unsettled)?;
    let namespace = runtime
        .get_module_namespace(module)
        .map_err(|error| error.to_string())?;
    deno_core::scope!(scope, runtime);
    let namespace = v8::Local::new(scope, namespace);
    let key = v8::String::new(scope, RESULT_EXPORT).ok_or("out of memory")?;
    let value = namespace
        .get(scope, key.into())
        .unwrap_or_else(|| v8::undefined(scope).into());
    Ok(v8::Global::new(scope, value))
}

/// Why awaiting the code's value (or a module's evaluation) ended early, in
/// the agent's terms where deno_core's are about its own internals.
fn unsettled(error: CoreError) -> String {
    match &*error.0 {
        CoreErrorKind::PendingPromiseResolution => NEVER_SETTLES.to_owned(),
        // A module's top-level await: deno_core asks V8 which await stalled
        // and reports V8's own message, with the place of that await.
        CoreErrorKind::Js(js_error) if js_error.exception_message == V8_STALLED_TLA => {
            match js_error
                .frames
                .first()
                .and_then(|frame| frame.maybe_format_location())
            {
                Some(location) => format!("{NEVER_SETTLES} (the await at {location})"),
                None => NEVER_SETTLES.to_owned(),
            }
        }
        _ => describe_core(&error),
    }
}

/// What an execution whose awaited promise nothing can settle fails with.
const NEVER_SETTLES: &str = "the code awaits a promise that can never settle: nothing is left \
    (no timer, no pending operation) that could resolve or reject it";

/// V8's message (template `kTopLevelAwaitStalled`) for a module whose
/// top-level await nothing can settle.
const V8_STALLED_TLA: &str = "Top-level await promise never resolved";

/// A function the bootstrap left on the global object under `Symbol.for(key)`.
fn bootstrap_function<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    key: &str,
) -> Option<v8::Local<'s, v8::Function>> {
    let global = scope.get_current_context().global(scope);
    let key = v8::String::new(scope, key)?;
    let symbol = v8::Symbol::for_key(scope, key);
    global
        .get(scope, symbol.into())
        .and_then(|function| v8::Local::<v8::Function>::try_from(function).ok())
}

/// Makes deno_core describe uncaught exceptions with the bootstrap's
/// formatter (see `formatException` in bootstrap.js). Without it, failures
/// are still reported, in deno_core's own words.
fn install_exception_formatter(runtime: &mut JsRuntime) {
    deno_core::scope!(scope, runtime);
    if let Some(install) = bootstrap_function(scope, "mcp-v8.installExceptionFormatter") {
        let receiver = v8::undefined(scope).into();
        install.call(scope, receiver, &[]);
    }
}

/// Turns the result into its wire string with the bootstrap's encoder.
fn encode(runtime: &mut JsRuntime, value: v8::Global<v8::Value>) -> Result<String, String> {
    deno_core::scope!(scope, runtime);
    let value = v8::Local::new(scope, value);
    if let Ok(text) = v8::Local::<v8::String>::try_from(value) {
        return Ok(text.to_rust_string_lossy(scope));
    }
    let encoder = bootstrap_function(scope, "mcp-v8.encode")
        .ok_or("the result encoder is missing from the runtime")?;
    v8::tc_scope!(let scope, scope);
    let receiver = v8::undefined(scope).into();
    match encoder.call(scope, receiver, &[value]) {
        Some(encoded) => Ok(encoded.to_rust_string_lossy(scope)),
        None => Err(match scope.exception() {
            Some(exception) => format!(
                "the result could not be encoded: {}",
                exception.to_rust_string_lossy(scope)
            ),
            None => "the result could not be encoded".to_owned(),
        }),
    }
}

/// A thrown value as the agent should read it, without the "Uncaught"
/// prefix deno_core adds. An Error is shown by the bootstrap's formatter
/// (stack, own properties, cause, aggregated errors), or by its stack when
/// the formatter could not run; any other value as the formatter showed it,
/// with the place it was thrown.
fn describe(error: &JsError) -> String {
    let message = without_uncaught(&error.exception_message);
    if error.name.is_some() || error.stack.is_some() {
        if message.contains("\n    at ") {
            return message.to_owned();
        }
        return without_uncaught(&error.to_string()).to_owned();
    }
    match error
        .frames
        .first()
        .and_then(|frame| frame.maybe_format_location())
    {
        Some(location) => format!("{message}\n    at {location}"),
        None => message.to_owned(),
    }
}

/// An error's text in the agent's terms: a thrown value as [`describe`]
/// shows it, anything else (a module that cannot load, an op that failed)
/// in deno_core's words.
fn describe_core(error: &CoreError) -> String {
    match &*error.0 {
        CoreErrorKind::Js(js_error) => describe(js_error),
        _ => error.to_string(),
    }
}

fn without_uncaught(text: &str) -> &str {
    text.strip_prefix("Uncaught (in promise) ")
        .or_else(|| text.strip_prefix("Uncaught "))
        .unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_over_a_limit_never_read_alike() {
        assert_eq!(
            sizes(17 * 1024 * 1024, 16 * 1024 * 1024),
            ("17.0 MiB".to_owned(), "16.0 MiB".to_owned())
        );
        assert_eq!(
            sizes(16 * 1024 * 1024 + 1, 16 * 1024 * 1024),
            ("16777217 bytes".to_owned(), "16777216 bytes".to_owned())
        );
    }

    #[test]
    fn runtime_frames_are_dropped_and_the_agents_kept() {
        let error = "Error: boom\n    at file:///main.ts:1:49\n    at Object.fire [as _onTimeout] \
                     (ext:mcp_v8/bootstrap.js:1145:7)\n    at listOnTimeout (ext:core/02_timers.js:307:17)\n    \
                     at ext:core/01_core.js:448:21\n    at Array.map (<anonymous>)";
        assert_eq!(
            without_runtime_frames(error.to_owned()),
            "Error: boom\n    at file:///main.ts:1:49\n    at Array.map (<anonymous>)"
        );
        let message = "Error: the text (ext:x) at ext: is mine\nsecond line";
        assert_eq!(without_runtime_frames(message.to_owned()), message);
    }
}
