//! Harness for the HTTP black-box tests: start the real binary listening on an
//! ephemeral port and find out which one from its start-up line.
//!
//! The server prints `mcp-v8 listening on http://ADDR` (once per listener) to
//! stderr when it is ready to accept connections; `--http-port 0` or
//! `--sse-port 0` asks the OS for a free port, so tests never collide.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::{BIN, DEADLINE, POLL_INTERVAL};

/// The line prefix the server prints for every listener once it accepts.
pub const LISTENING: &str = "mcp-v8 listening on http://";

/// A running `mcp-v8` serving HTTP, killed when dropped.
pub struct HttpServer {
    pub child: Child,
    /// Where the server listens, e.g. `127.0.0.1:43121`.
    pub addr: SocketAddr,
    /// `http://ADDR`, for building URLs.
    pub base: String,
    pub state_dir: PathBuf,
    /// Everything the server printed to stderr after the listening line.
    pub stderr: tokio::sync::mpsc::UnboundedReceiver<String>,
    _owned_state: Option<TempDir>,
}

impl HttpServer {
    /// `mcp-v8 --state-dir TMP --http-port 0 ARGS…`.
    pub async fn start(args: &[&str]) -> Self {
        Self::start_with(&["--http-port", "0"], args, &[], None).await
    }

    /// `mcp-v8 --state-dir DIR PORT_ARGS… ARGS…` with extra environment.
    pub async fn start_with(
        port_args: &[&str],
        args: &[&str],
        env: &[(&str, &str)],
        state_dir: Option<PathBuf>,
    ) -> Self {
        let (state_dir, owned_state) = match state_dir {
            Some(dir) => (dir, None),
            None => {
                let temp = tempfile::tempdir().expect("create a temporary state directory");
                (temp.path().to_path_buf(), Some(temp))
            }
        };
        let args: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
        let mut child = Command::new(BIN)
            .arg("--state-dir")
            .arg(&state_dir)
            .args(super::private_heap_store(&state_dir, &args))
            .args(port_args)
            .args(&args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn the mcp-v8 server");
        let stderr = child.stderr.take().expect("piped stderr");
        let mut lines = BufReader::new(stderr).lines();
        let addr = tokio::time::timeout(DEADLINE, async {
            while let Some(line) = lines.next_line().await.expect("read server stderr") {
                if let Some(rest) = line.split(LISTENING).nth(1) {
                    let addr = rest.split_whitespace().next().unwrap_or(rest);
                    return addr.parse::<SocketAddr>().expect("listening address");
                }
            }
            panic!("the server exited before it listened");
        })
        .await
        .expect("the server did not start listening in time");
        // Keep draining stderr so the server never blocks on a full pipe.
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = sender.send(line);
            }
        });
        Self {
            child,
            addr,
            base: format!("http://{addr}"),
            state_dir,
            stderr: receiver,
            _owned_state: owned_state,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Polls the oldest execution `GET /api/executions` lists until `done`
    /// holds of it, for at most `within`, and returns it.
    pub async fn poll_first_execution(
        &self,
        within: Duration,
        what: &str,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let http = reqwest::Client::new();
        let first = async {
            loop {
                let list: serde_json::Value = http
                    .get(self.url("/api/executions"))
                    .send()
                    .await
                    .expect("GET /api/executions")
                    .json()
                    .await
                    .expect("a JSON list");
                let execution = &list["executions"][0];
                if done(execution) {
                    return execution.clone();
                }
                tokio::time::sleep(POLL_INTERVAL).await;
            }
        };
        tokio::time::timeout(within, first)
            .await
            .unwrap_or_else(|_| panic!("the first execution: {what}, not within {within:?}"))
    }
}

// ---- MCP over HTTP ---------------------------------------------------------

impl HttpServer {
    /// Sends SIGTERM and waits for the process to exit; returns its status.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("the server is running");
        let pid = libc::pid_t::try_from(pid).expect("pid fits pid_t");
        // SAFETY: kill(2) takes plain integers and has no memory-safety requirements.
        let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(
            rc,
            0,
            "kill -TERM {pid}: {}",
            std::io::Error::last_os_error()
        );
        tokio::time::timeout(DEADLINE, self.child.wait())
            .await
            .expect("the server did not exit after SIGTERM")
            .expect("wait for the server")
    }
}

/// The `Accept` header Streamable HTTP requires on POST.
pub const MCP_ACCEPT: &str = "application/json, text/event-stream";

/// A JSON-RPC `initialize` request (id 1) asking for protocol `version`.
pub fn initialize_request(version: &str) -> serde_json::Value {
    serde_json::json!({
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": version,
            "capabilities": {},
            "clientInfo": { "name": "mcp-v8-tests", "version": "0" }
        }
    })
}

/// POSTs a JSON-RPC message to Streamable HTTP `url`, with a session id and a
/// bearer token when given.
pub async fn post_mcp(
    client: &reqwest::Client,
    url: &str,
    session: Option<&str>,
    token: Option<&str>,
    message: &serde_json::Value,
) -> reqwest::Response {
    let mut request = client
        .post(url)
        .header(reqwest::header::ACCEPT, MCP_ACCEPT)
        .json(message);
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    tokio::time::timeout(DEADLINE, request.send())
        .await
        .expect("the server did not answer in time")
        .expect("send the request")
}

/// The JSON-RPC messages of a response: the JSON body itself, or the `data:`
/// lines of an SSE body that parse as JSON.
pub async fn mcp_messages(response: reqwest::Response) -> Vec<serde_json::Value> {
    let is_sse = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/event-stream"));
    let body = tokio::time::timeout(DEADLINE, response.text())
        .await
        .expect("the response body did not end in time")
        .expect("read the response body");
    if !is_sse {
        return vec![serde_json::from_str(&body).expect("a JSON body")];
    }
    body.lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str(data.trim()).ok())
        .collect()
}
