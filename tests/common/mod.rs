//! Shared harness for the black-box tests: start the real `mcp-v8` binary as a
//! child process, talk MCP to it over stdio with rmcp's client, and inspect its
//! worker processes through /proc.
//!
//! Every server gets its own state directory, so tests are independent and run
//! in parallel. Waiting is always polling against a deadline, never a sleep
//! whose length decides the outcome.

// Each test crate compiles this module and uses a different subset of it.
#![allow(dead_code)]

pub mod http;
pub mod s3;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rmcp::model::{CallToolRequestParams, CallToolResult, JsonObject};
use rmcp::service::RunningService;
use rmcp::transport::TokioChildProcess;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};
use tempfile::TempDir;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_mcp-v8");

/// Upper bound for anything that should finish quickly. Generous because the
/// test machine has two cores and runs many servers at once; a healthy run
/// never comes near it, so it only turns a hang into a failure.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// How often to re-check a condition while polling.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// `wait_ms` for `run_js` calls that expect a quick result: the call returns as
/// soon as the execution finishes, so this is only an upper bound.
pub const RUN_WAIT_MS: u64 = 10_000;

/// The statuses after which an execution never changes.
pub const FINAL_STATUSES: [&str; 4] = ["completed", "failed", "cancelled", "timed_out"];

/// Command-line arguments, environment and state directory for one server.
#[derive(Debug, Default, Clone)]
pub struct ServerOptions {
    args: Vec<String>,
    env: Vec<(String, String)>,
    state_dir: Option<PathBuf>,
    binary: Option<PathBuf>,
}

impl ServerOptions {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds command-line arguments (after `--state-dir DIR`).
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Uses `dir` as the state directory instead of a fresh temporary one, so
    /// a later server can reopen it.
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }

    /// Runs `binary` instead of the one cargo built.
    pub fn binary(mut self, binary: impl Into<PathBuf>) -> Self {
        self.binary = Some(binary.into());
        self
    }

    /// Starts the server and completes the MCP handshake.
    pub async fn start(self) -> Server {
        let (state_dir, owned_state) = match self.state_dir {
            Some(dir) => (dir, None),
            None => {
                let temp = tempfile::tempdir().expect("create a temporary state directory");
                (temp.path().to_path_buf(), Some(temp))
            }
        };

        let mut command =
            tokio::process::Command::new(self.binary.as_deref().unwrap_or(Path::new(BIN)));
        command
            .arg("--state-dir")
            .arg(&state_dir)
            .args(private_heap_store(&state_dir, &self.args))
            .args(&self.args)
            .envs(self.env.iter().map(|(key, value)| (key, value)))
            // If a test panics before it stops the server, the server must
            // not outlive it.
            .kill_on_drop(true);
        let transport = TokioChildProcess::new(command).expect("spawn the mcp-v8 server");
        let pid = transport.id().expect("the server has a pid");
        let client = tokio::time::timeout(DEADLINE, ().serve(transport))
            .await
            .expect("MCP handshake timed out")
            .expect("MCP handshake failed");

        Server {
            client,
            pid,
            state_dir,
            _owned_state: owned_state,
        }
    }
}

/// Storage flags that keep a test's heaps inside its own state directory,
/// unless the test chose its storage itself. (The server's default heap
/// directory, /tmp/mcp-v8-heaps, would be shared by every test.)
pub fn private_heap_store(state_dir: &Path, args: &[String]) -> Vec<String> {
    let chooses_storage = args
        .iter()
        .any(|arg| ["--stateless", "--directory-path", "--s3-bucket"].contains(&arg.as_str()));
    if chooses_storage {
        Vec::new()
    } else {
        vec![
            "--directory-path".to_owned(),
            state_dir.join("heaps").display().to_string(),
        ]
    }
}

/// A running `mcp-v8` server and the MCP client connected to it.
pub struct Server {
    client: RunningService<RoleClient, ()>,
    pid: u32,
    state_dir: PathBuf,
    /// Keeps a temporary state directory alive as long as the server.
    _owned_state: Option<TempDir>,
}

impl Server {
    /// A server with default settings and a fresh state directory.
    pub async fn start() -> Self {
        ServerOptions::new().start().await
    }

    /// A server with extra command-line arguments and a fresh state directory.
    pub async fn start_with(args: &[&str]) -> Self {
        ServerOptions::new()
            .args(args.iter().copied())
            .start()
            .await
    }

    pub fn client(&self) -> &RunningService<RoleClient, ()> {
        &self.client
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// Ends the session and waits until the server process has exited.
    pub async fn stop(self) {
        let pid = self.pid;
        let _ = tokio::time::timeout(DEADLINE, self.client.cancel()).await;
        poll_until(&format!("server process {pid} to exit"), || {
            process_gone(pid).then_some(())
        })
        .await;
    }

    // ---- tool calls ------------------------------------------------------

    /// Calls a tool and returns the raw result, whether or not it is an error.
    pub async fn call_raw(&self, tool: &str, arguments: Value) -> CallToolResult {
        let arguments: JsonObject = match arguments {
            Value::Object(map) => map,
            other => panic!("tool arguments must be a JSON object, got {other}"),
        };
        let params = CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments);
        tokio::time::timeout(DEADLINE, self.client.call_tool(params))
            .await
            .unwrap_or_else(|_| panic!("{tool} did not answer within {DEADLINE:?}"))
            .unwrap_or_else(|error| panic!("{tool} failed at the protocol level: {error}"))
    }

    /// Calls a tool that must succeed and returns its `structuredContent`,
    /// after checking that the text content carries the same JSON.
    pub async fn call(&self, tool: &str, arguments: Value) -> Value {
        let result = self.call_raw(tool, arguments).await;
        assert_ne!(
            result.is_error,
            Some(true),
            "{tool} returned an error: {}",
            text_of(&result)
        );
        let structured = result
            .structured_content
            .clone()
            .unwrap_or_else(|| panic!("{tool} returned no structuredContent: {result:?}"));
        let text: Value = serde_json::from_str(&text_of(&result))
            .unwrap_or_else(|error| panic!("{tool}: text content is not JSON ({error})"));
        assert_eq!(
            text, structured,
            "{tool}: text and structured content differ"
        );
        structured
    }

    /// Calls a tool that must fail with `isError: true` and returns the error text.
    pub async fn call_err(&self, tool: &str, arguments: Value) -> String {
        let result = self.call_raw(tool, arguments).await;
        assert_eq!(
            result.is_error,
            Some(true),
            "{tool} was expected to fail but returned {:?}",
            result.structured_content
        );
        text_of(&result)
    }

    // ---- executions ------------------------------------------------------

    /// Starts `code` without waiting and returns its execution id.
    pub async fn start_js(&self, code: &str) -> String {
        self.start_js_with(json!({ "code": code })).await
    }

    /// Starts an execution from full `run_js` arguments and returns its id.
    pub async fn start_js_with(&self, arguments: Value) -> String {
        let response = self.call("run_js", arguments).await;
        execution_id(&response)
    }

    /// Runs `code` to a final status and returns its `get_execution` record.
    pub async fn run_and_wait(&self, code: &str) -> Value {
        self.run_and_wait_with(json!({ "code": code })).await
    }

    /// Runs an execution from `run_js` arguments (`wait_ms` is added unless
    /// given) to a final status and returns its `get_execution` record.
    pub async fn run_and_wait_with(&self, mut arguments: Value) -> Value {
        if arguments.get("wait_ms").is_none() {
            arguments["wait_ms"] = json!(RUN_WAIT_MS);
        }
        let response = self.call("run_js", arguments).await;
        let id = execution_id(&response);
        self.wait_final(&id).await
    }

    /// Runs `code`, asserts that it completed, and returns its result.
    pub async fn eval(&self, code: &str) -> String {
        let record = self.run_and_wait(code).await;
        assert_eq!(
            record["status"], "completed",
            "{code:?} did not complete: {record}"
        );
        record["result"]
            .as_str()
            .unwrap_or_else(|| panic!("{code:?} completed without a string result: {record}"))
            .to_owned()
    }

    pub async fn get(&self, id: &str) -> Value {
        self.call("get_execution", json!({ "execution_id": id }))
            .await
    }

    /// Polls `get_execution` until the execution is final; returns its record.
    pub async fn wait_final(&self, id: &str) -> Value {
        let started = Instant::now();
        loop {
            let record = self.get(id).await;
            if is_final(&record) {
                return record;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "execution {id} not final after {DEADLINE:?}: {record}"
            );
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Polls `get_execution` until the execution has `status`; fails at once if
    /// it reaches a different final status instead.
    pub async fn wait_status(&self, id: &str, status: &str) -> Value {
        let started = Instant::now();
        loop {
            let record = self.get(id).await;
            if record["status"] == status {
                return record;
            }
            assert!(
                !is_final(&record),
                "execution {id} ended before reaching {status}: {record}"
            );
            assert!(
                started.elapsed() < DEADLINE,
                "execution {id} not {status} after {DEADLINE:?}: {record}"
            );
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    pub async fn cancel(&self, id: &str) -> Value {
        self.call("cancel_execution", json!({ "execution_id": id }))
            .await
    }

    pub async fn list(&self) -> Vec<Value> {
        let listing = self.call("list_executions", json!({})).await;
        listing["executions"]
            .as_array()
            .unwrap_or_else(|| panic!("list_executions without an executions array: {listing}"))
            .clone()
    }

    // ---- console output --------------------------------------------------

    /// One page of output, from `get_execution_output` arguments besides the id.
    pub async fn output_page(&self, id: &str, mut query: Value) -> Value {
        query["execution_id"] = json!(id);
        self.call("get_execution_output", query).await
    }

    /// The whole console output, read in line-mode pages of the default size.
    pub async fn output(&self, id: &str) -> String {
        let mut text = String::new();
        let mut line_offset = 0;
        loop {
            let page = self
                .output_page(id, json!({ "line_offset": line_offset }))
                .await;
            text.push_str(page["data"].as_str().expect("page data is a string"));
            if page["has_more"] != true {
                return text;
            }
            line_offset = page["next_line_offset"]
                .as_u64()
                .expect("next_line_offset is a number");
        }
    }

    pub async fn output_lines(&self, id: &str) -> Vec<String> {
        self.output(id).await.lines().map(str::to_owned).collect()
    }

    // ---- worker processes ------------------------------------------------

    /// Live (not zombie) `mcp-v8 worker` children of this server.
    /// The pid of the server's one worker, once it has served an execution
    /// (workers boot in the background), as a list to compare later lists
    /// of [`worker_pids`](Self::worker_pids) with.
    pub async fn one_serving_worker(&self) -> Vec<u32> {
        assert_eq!(self.eval("1+1").await, "2");
        let workers = self.worker_pids();
        assert_eq!(workers.len(), 1, "{workers:?}");
        workers
    }

    pub fn worker_pids(&self) -> Vec<u32> {
        live_children(self.pid)
            .into_iter()
            .filter(|&pid| is_worker(pid))
            .collect()
    }
}

// ---- record helpers ------------------------------------------------------

/// Runs the binary with `args` where it must refuse to start, and returns
/// its stderr once it has exited unsuccessfully (within 30 s).
pub async fn refused_start<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcp-v8"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .output();
    let output = tokio::time::timeout(std::time::Duration::from_secs(30), run)
        .await
        .expect("the server exits")
        .expect("the server runs");
    assert!(!output.status.success(), "the server started: {output:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn execution_id(response: &Value) -> String {
    response["execution_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no execution_id in {response}"))
        .to_owned()
}

pub fn is_final(record: &Value) -> bool {
    record["status"]
        .as_str()
        .is_some_and(|status| FINAL_STATUSES.contains(&status))
}

/// The record's `error`, lowercased for case-insensitive checks.
pub fn error_of(record: &Value) -> String {
    record["error"]
        .as_str()
        .unwrap_or_else(|| panic!("record without an error: {record}"))
        .to_lowercase()
}

/// The concatenated text content of a tool result.
pub fn text_of(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|block| block.as_text())
        .map(|text| text.text.as_str())
        .collect()
}

/// Polls `check` until it yields a value, failing after [`DEADLINE`].
pub async fn poll_until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "timed out after {DEADLINE:?} waiting for {what}"
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

// ---- /proc -----------------------------------------------------------------

/// State letter and parent pid from `/proc/<pid>/stat`. The command name in
/// parentheses may itself contain spaces and parentheses, so fields are read
/// after the last `)`.
fn stat_of(pid: u32) -> Option<(char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let parent = fields.next()?.parse().ok()?;
    Some((state, parent))
}

/// True once `pid` has exited (gone, or a zombie waiting to be reaped).
pub fn process_gone(pid: u32) -> bool {
    stat_of(pid).is_none_or(|(state, _)| state == 'Z' || state == 'X')
}

/// Live child processes of `parent`.
pub fn live_children(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            stat_of(pid).is_some_and(|(state, ppid)| ppid == parent && state != 'Z' && state != 'X')
        })
        .collect()
}

/// True if `pid` runs as `mcp-v8 worker …`.
fn is_worker(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
        // `mcp-v8 worker [--stateless]`
        cmdline.split(|&byte| byte == 0).nth(1) == Some(b"worker".as_slice())
    })
}

/// Sends SIGKILL to `pid`.
pub fn kill_hard(pid: u32) {
    let pid = libc::pid_t::try_from(pid).expect("pid fits pid_t");
    // SAFETY: kill(2) takes plain integers and has no memory-safety requirements.
    let rc = unsafe { libc::kill(pid, libc::SIGKILL) };
    assert_eq!(
        rc,
        0,
        "kill -9 {pid} failed: {}",
        std::io::Error::last_os_error()
    );
}
