//! The engine: one fresh V8 isolate per execution, inside a worker process.
//!
//! [`Engine::boot`] initialises V8 once per process and makes the startup
//! snapshot of our bootstrap JS (console, timers, result encoder), so every
//! isolate starts from it instead of compiling the runtime's own JS again.
//! [`Engine::run`] then takes one [`Job`] at a time: prepare the source (swc),
//! create an isolate from the snapshot with the job's limits, evaluate, drive
//! the event loop until idle, encode the result, drop the isolate.
//!
//! Invariant: at most one isolate is alive in a process at any time. V8 crashes
//! when one isolate creates a snapshot while another is active in the same
//! process; running one at a time per worker process is what makes snapshots
//! (and fatal V8 errors) safe for the server as a whole.

mod console;
mod limits;
mod loader;
pub mod source;

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use deno_core::{JsRuntime, JsRuntimeForSnapshot, PollEventLoopOptions, RuntimeOptions, v8};
use serde::{Deserialize, Serialize};

pub use console::{ConsoleLevel, ConsoleSink};
pub use limits::{StopReason, Watchdog};

use console::mcp_v8_runtime;
use limits::{ArrayBufferBudget, StopFlag};
use loader::Loader;
use source::{PreparedSource, RESULT_EXPORT, SourceKind};

/// The runtime's own JS, evaluated once into the startup snapshot.
const BOOTSTRAP_JS: &str = include_str!("js/bootstrap.js");
/// The name agent code has in stack traces.
const MAIN_FILE: &str = "file:///main.ts";
/// Heap headroom granted after the limit is hit, so termination can complete.
const TERMINATION_HEADROOM: usize = 16 * 1024 * 1024;

/// One execution as the engine sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub execution_id: String,
    pub code: String,
    pub heap_memory_max_mb: u32,
    pub timeout: Duration,
}

/// How an execution ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Completed { result: String },
    Failed { error: String },
    TimedOut { error: String },
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
}

/// A booted V8 with its startup snapshot; runs one job at a time.
pub struct Engine {
    snapshot: &'static [u8],
    watchdog: Watchdog,
    event_loop: tokio::runtime::Runtime,
}

impl Engine {
    /// Initialises V8 for this process and builds the startup snapshot.
    pub fn boot() -> Result<Self, EngineError> {
        // Initialise V8 in normal mode first: if the snapshot creator were the
        // first runtime, deno_core would set `--predictable --random-seed=42`
        // for the whole process and every isolate would share one Math.random
        // sequence.
        JsRuntime::init_platform(None);
        let snapshot = Box::leak(startup_snapshot()?);
        let event_loop = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(EngineError::EventLoop)?;
        Ok(Self {
            snapshot,
            watchdog: Watchdog::start()?,
            event_loop,
        })
    }

    /// The watchdog, for cancelling the running job from another thread.
    pub fn watchdog(&self) -> Watchdog {
        self.watchdog.clone()
    }

    /// Runs one job to its outcome in a fresh isolate.
    pub fn run(&self, job: &Job, console: ConsoleSink) -> Outcome {
        let source = match source::prepare(&job.code, MAIN_FILE) {
            Ok(source) => source,
            Err(error) => {
                return Outcome::Failed {
                    error: error.to_string(),
                };
            }
        };
        // V8 posts delayed tasks through deno_core's platform, which needs the
        // tokio context present when the isolate is created.
        let _context = self.event_loop.enter();
        let heap_limit = job.heap_memory_max_mb as usize * 1024 * 1024;
        let (budget, allocator) = ArrayBufferBudget::allocator(heap_limit);
        let loader = Rc::new(Loader::default());
        loader.add_source_map(MAIN_FILE, source.source_map.clone());
        let created = JsRuntime::try_new(RuntimeOptions {
            startup_snapshot: Some(self.snapshot),
            extensions: vec![mcp_v8_runtime::init()],
            module_loader: Some(loader),
            create_params: Some(
                v8::CreateParams::default()
                    .heap_limits(0, heap_limit)
                    .array_buffer_allocator(allocator),
            ),
            ..Default::default()
        });
        let mut runtime = match created {
            Ok(runtime) => runtime,
            Err(error) => {
                return Outcome::Failed {
                    error: format!("could not create the V8 isolate: {error}"),
                };
            }
        };
        runtime.op_state().borrow_mut().put(console);
        hide_internals(&mut runtime);

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
        );
        let evaluated = self
            .event_loop
            .block_on(evaluate(&mut runtime, &source))
            .and_then(|value| encode(&mut runtime, value));
        self.watchdog.disarm();
        drop(runtime);

        match (flag.get(), evaluated) {
            (Some(StopReason::TimedOut), _) => Outcome::TimedOut {
                error: format!(
                    "execution timed out after {} s (execution_timeout_secs)",
                    job.timeout.as_secs_f64()
                ),
            },
            (Some(StopReason::Cancelled), _) => Outcome::Cancelled,
            (Some(StopReason::HeapExceeded), _) => Outcome::Failed {
                error: format!(
                    "heap limit exceeded: the execution needed more than {} MB \
                     (heap_memory_max_mb); use less memory or raise the limit",
                    job.heap_memory_max_mb
                ),
            },
            (None, Ok(result)) => Outcome::Completed { result },
            (None, Err(error)) => Outcome::Failed { error },
        }
    }
}

/// Removes the globals through which JS could reach deno_core's ops. They must
/// exist while deno_core builds the runtime, so this runs right after.
fn hide_internals(runtime: &mut JsRuntime) {
    deno_core::scope!(scope, runtime);
    let global = scope.get_current_context().global(scope);
    for name in ["Deno", "__bootstrap"] {
        if let Some(key) = v8::String::new(scope, name) {
            global.delete(scope, key.into());
        }
    }
}

/// Evaluates the bootstrap JS in a snapshot-creating runtime.
fn startup_snapshot() -> Result<Box<[u8]>, EngineError> {
    let mut runtime = JsRuntimeForSnapshot::new(RuntimeOptions {
        extensions: vec![mcp_v8_runtime::init()],
        ..Default::default()
    });
    runtime
        .execute_script("ext:mcp_v8/bootstrap.js", BOOTSTRAP_JS)
        .map_err(|error| EngineError::Bootstrap(error.to_string()))?;
    Ok(runtime.snapshot())
}

/// Runs the code, awaits its value if it is a promise, and then keeps the event
/// loop going until it is idle (pending timers still fire).
async fn evaluate(
    runtime: &mut JsRuntime,
    source: &PreparedSource,
) -> Result<v8::Global<v8::Value>, String> {
    let value = match source.kind {
        SourceKind::Script => runtime
            .execute_script(MAIN_FILE, source.code.clone())
            .map_err(|error| describe(&error))?,
        SourceKind::Module => evaluate_module(runtime, source).await?,
    };
    let resolution = runtime.resolve(value);
    let value = runtime
        .with_event_loop_promise(resolution, PollEventLoopOptions::default())
        .await
        .map_err(|error| error.to_string())?;
    runtime
        .run_event_loop(PollEventLoopOptions::default())
        .await
        .map_err(|error| error.to_string())?;
    Ok(value)
}

async fn evaluate_module(
    runtime: &mut JsRuntime,
    source: &PreparedSource,
) -> Result<v8::Global<v8::Value>, String> {
    let specifier = deno_core::resolve_url(MAIN_FILE).map_err(|error| error.to_string())?;
    let module = runtime
        .load_main_es_module_from_code(&specifier, source.code.clone())
        .await
        .map_err(|error| error.to_string())?;
    let evaluation = runtime.mod_evaluate(module);
    runtime
        .with_event_loop_future(evaluation, PollEventLoopOptions::default())
        .await
        .map_err(|error| error.to_string())?;
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

/// Turns the result into its wire string with the bootstrap's encoder.
fn encode(runtime: &mut JsRuntime, value: v8::Global<v8::Value>) -> Result<String, String> {
    deno_core::scope!(scope, runtime);
    let value = v8::Local::new(scope, value);
    if let Ok(text) = v8::Local::<v8::String>::try_from(value) {
        return Ok(text.to_rust_string_lossy(scope));
    }
    let global = scope.get_current_context().global(scope);
    let key = v8::String::new(scope, "mcp-v8.encode").ok_or("out of memory")?;
    let symbol = v8::Symbol::for_key(scope, key);
    let encoder = global
        .get(scope, symbol.into())
        .and_then(|encoder| v8::Local::<v8::Function>::try_from(encoder).ok())
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

/// A JS error as the agent should read it: message and stack, without the
/// "Uncaught" prefix deno_core adds for top-level errors.
fn describe(error: &deno_core::error::JsError) -> String {
    let text = error.to_string();
    text.strip_prefix("Uncaught ")
        .map(str::to_owned)
        .unwrap_or(text)
}
