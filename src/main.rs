//! `mcp-v8`: parse the command line, build the parts, wire them together.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use futures::future::BoxFuture;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tracing_subscriber::EnvFilter;

use mcp_v8::cli::{self, Cli, Command};
use mcp_v8::config::Config;
use mcp_v8::engine::EngineMode;
use mcp_v8::executor::records::Retention;
use mcp_v8::executor::{Executor, ExecutorConfig, state_dir, worker};
use mcp_v8::sessions::SessionStore;
use mcp_v8::storage::{self, HeapStore};
use mcp_v8::tools::McpV8;
use mcp_v8::transport;
use mcp_v8::transport::api::{ApiState, Readiness};
use mcp_v8::transport::http::HttpServer;

/// mimalloc for everything in the process, V8's own `malloc`s included (the
/// `override` feature replaces the C allocator): a snapshot is V8 walking
/// the heap into hash sets and growing buffers, a node and a reallocation at
/// a time, and workers spent a twentieth of a stateful execution in glibc's
/// `malloc` and `free`. 3 % more stateful executions/s. Without transparent
/// huge pages (`no_thp`): with them each process held 20 MB more.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("Error: {}", describe(&error));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, each said once: most of our errors
/// already quote their cause (an I/O error's text is the useful part), and
/// anyhow's report would repeat it under "Caused by".
fn describe(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

fn run() -> anyhow::Result<()> {
    // SAFETY: no other thread exists yet.
    unsafe { cli::forget_empty_variables() };
    // SAFETY: `mi_collect` has no preconditions.
    mcp_v8::engine::on_free_memory_release(|| unsafe { libmimalloc_sys::mi_collect(true) });
    let cli = Cli::parse_env_and_args();
    match cli.command_or_serve() {
        Command::Config(command) => cli::run_config_command(&command),
        Command::Worker { stateless } => {
            // The server's level, handed down through the environment.
            init_logging(&std::env::var(WORKER_LOG_LEVEL).unwrap_or_else(|_| "info".to_owned()));
            worker::child::run(if stateless {
                EngineMode::Stateless
            } else {
                EngineMode::Stateful
            })
        }
        Command::Serve => {
            let config = cli::load(&cli)?;
            config.ensure_supported()?;
            mcp_v8::engine::check_v8_flags().map_err(anyhow::Error::msg)?;
            init_logging(&config.server.log_level);
            for warning in config.warnings() {
                tracing::warn!("{warning}");
            }
            // SAFETY: no other thread exists yet; workers inherit it.
            unsafe { std::env::set_var(WORKER_LOG_LEVEL, &config.server.log_level) };
            tokio::runtime::Runtime::new()
                .context("starting the async runtime")?
                .block_on(serve(config))
        }
    }
}

/// Serves MCP on the configured transport until the client leaves (stdio)
/// or a shutdown signal arrives, then shuts the executor down.
async fn serve(config: Config) -> anyhow::Result<()> {
    // Checked before anything starts, so a bad Host/Origin entry or an
    // unreadable tokens file fails fast.
    let http = HttpServer::from_config(&config)?;
    let _state_dir = state_dir::lock(&config.state_dir())?;
    let heap_store = storage::open(&config.storage)
        .await
        .context("opening the heap store")?;
    // Sessions and tags describe heaps, so they exist only in stateful mode.
    let sessions = match &heap_store {
        Some(_) => {
            let path = config.session_db_path();
            Some(
                SessionStore::open(&path)
                    .with_context(|| format!("opening the session database {}", path.display()))?,
            )
        }
        None => None,
    };
    let executor = Executor::start(executor_config(
        &config,
        heap_store.clone(),
        sessions.clone(),
    )?)
    .await?;
    let readiness = Arc::new(ServerReadiness {
        executor: executor.clone(),
        heap_store,
    });
    let mut api_state = ApiState::new(executor.clone(), readiness);
    let tools = match sessions {
        Some(sessions) => {
            api_state = api_state.with_sessions(sessions.clone());
            McpV8::with_state(executor.clone(), sessions)
        }
        None => McpV8::new(executor.clone()),
    };
    let result = match http {
        Some(http) => {
            // The plain HTTP API (/api, /healthz, /readyz, /openapi.json), on the same port.
            let api = transport::api::router(api_state);
            // The listener drains the requests waiting on executions.
            let draining = async {
                shutdown_signal().await;
                drain(&executor).await;
            };
            http.serve(tools, api, draining)
                .await
                .map_err(anyhow::Error::from)
        }
        None => {
            let calls = tools.clone();
            let stdio = transport::serve_stdio(tools, config.transport.max_body_bytes);
            tokio::pin!(stdio);
            tokio::select! {
                result = &mut stdio => result,
                () = shutdown_signal() => {
                    // The session stays open while executions drain, so a
                    // run_js waiting on one gets its answer: until the calls
                    // have returned, and a moment longer for their answers
                    // to be written.
                    let drained = async {
                        drain(&executor).await;
                        let _ = tokio::time::timeout(DRAIN, calls.calls_finished()).await;
                        tokio::time::sleep(STDIO_LAST_WORDS).await;
                    };
                    tokio::select! {
                        result = &mut stdio => result,
                        () = drained => Ok(()),
                    }
                }
            }
        }
    };
    executor.shutdown().await;
    result
}

/// How long executions in flight may run on after a shutdown signal, while
/// new ones are refused, before the listener stops and they are cancelled.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

/// How long the stdio session stays open after the last tool call has
/// returned, for its answer to be written.
const STDIO_LAST_WORDS: std::time::Duration = std::time::Duration::from_millis(100);

/// Draining, the same for every transport: new executions are refused (503
/// over HTTP, and /readyz says so) while the ones in flight finish; what
/// still runs after [`DRAIN`] is cancelled, so callers waiting on it (run_js
/// with wait_ms, /api/exec) get the cancelled record, saying the server shut
/// down.
async fn drain(executor: &Executor) {
    executor.refuse_new();
    if tokio::time::timeout(DRAIN, executor.drained())
        .await
        .is_err()
    {
        tracing::warn!("executions still in flight after {DRAIN:?}; cancelling them");
        executor.shutdown().await;
    }
}

/// Resolves on the first SIGTERM or SIGINT (Ctrl-C). A second one, while the
/// server shuts down, ends the process at once (exit status 128 + the
/// signal's number): whoever asks twice does not want to wait for the
/// executions in flight. Nothing acknowledged is lost that way: session and
/// tag writes are flushed before they are acknowledged, heaps are stored
/// before their executions complete, and workers die with the server
/// (`PR_SET_PDEATHSIG`). If no handler can be installed the server runs on,
/// and stops when its transport ends.
async fn shutdown_signal() {
    let mut signals = Signals::install();
    let first = signals.next().await;
    tracing::info!(
        "{} received, shutting down (send it again to exit at once)",
        first.name
    );
    tokio::spawn(async move {
        let second = signals.next().await;
        tracing::warn!(
            "{} received during shutdown: exiting at once, cancelling what still runs",
            second.name
        );
        std::process::exit(128 + second.number);
    });
}

/// The two signals that stop the server.
struct Signals {
    interrupt: Option<Signal>,
    terminate: Option<Signal>,
}

/// One received signal: its name for the log, its number for the exit status.
struct Received {
    name: &'static str,
    number: i32,
}

impl Signals {
    fn install() -> Self {
        let listen = |kind: SignalKind, name: &str| {
            signal(kind)
                .inspect_err(|error| tracing::error!(%error, "cannot listen for {name}"))
                .ok()
        };
        Self {
            interrupt: listen(SignalKind::interrupt(), "SIGINT"),
            terminate: listen(SignalKind::terminate(), "SIGTERM"),
        }
    }

    /// The next signal; never resolves if neither could be installed.
    async fn next(&mut self) -> Received {
        tokio::select! {
            Some(()) = recv(&mut self.interrupt) => Received { name: "SIGINT", number: libc::SIGINT },
            Some(()) = recv(&mut self.terminate) => Received { name: "SIGTERM", number: libc::SIGTERM },
            else => std::future::pending().await,
        }
    }
}

async fn recv(signal: &mut Option<Signal>) -> Option<()> {
    match signal {
        Some(signal) => signal.recv().await,
        None => None,
    }
}

/// `/readyz` reports ready while workers can be started and the heap store
/// (if any) answers: without either, every execution would fail.
struct ServerReadiness {
    executor: Executor,
    heap_store: Option<Arc<dyn HeapStore>>,
}

impl Readiness for ServerReadiness {
    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            if let Some(trouble) = self.executor.worker_trouble() {
                return Err(format!("no worker process can be started: {trouble}"));
            }
            match &self.heap_store {
                Some(store) => store.check().await.map_err(|error| error.to_string()),
                None => Ok(()),
            }
        })
    }
}

fn executor_config(
    config: &Config,
    heap_store: Option<Arc<dyn HeapStore>>,
    sessions: Option<SessionStore>,
) -> anyhow::Result<ExecutorConfig> {
    let limits = &config.limits;
    Ok(ExecutorConfig {
        state_dir: config.state_dir(),
        worker_exe: worker::own_binary().context("locating the mcp-v8 binary")?,
        max_concurrent: limits.max_concurrent_executions,
        max_queued: limits.max_queued_executions,
        default_heap_mb: limits.heap_memory_max_mb,
        heap_cap_mb: limits.heap_memory_cap_mb,
        default_timeout_secs: limits.execution_timeout_secs,
        max_timeout_secs: limits.execution_timeout_secs,
        max_output_bytes: limits.max_output_bytes,
        max_code_bytes: limits.max_code_bytes,
        retention: Retention {
            max_count: config.executions.retain_count,
            max_age: config
                .executions
                .retain_max_age_secs
                .map(std::time::Duration::from_secs),
        },
        heap_store,
        sessions,
    })
}

/// How a worker learns the server's log filter (`server.log_level`).
const WORKER_LOG_LEVEL: &str = "MCP_V8_WORKER_LOG_LEVEL";

/// Logs go to stderr: on stdio, stdout is the MCP channel. Colours only on
/// a terminal: a file, a pipe or journald would keep the escape codes.
fn init_logging(directive: &str) {
    let filter = EnvFilter::try_new(directive).unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
