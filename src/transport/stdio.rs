//! MCP over the process's stdin and stdout, for clients that spawn the server.

use std::sync::Arc;

use anyhow::Context;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::service::{QuitReason, ServerInitializeError};
use rmcp::transport::Transport;
use rmcp::transport::async_rw::DEFAULT_MAX_LINE_LENGTH;
use rmcp::transport::stdio_pipes;
use rmcp::{RoleServer, ServiceExt};
use tokio::sync::Notify;

use super::PreInitFilter;
use super::json_lines::JsonLines;
use crate::tools::McpV8;

/// Serves MCP on stdin/stdout until the client disconnects (closes stdin) or
/// the session fails.
///
/// Stdout carries the protocol and nothing else: a single stray byte corrupts
/// the JSON-RPC stream, so logging must go to stderr, and child processes
/// (workers) must not inherit stdout.
///
/// Uses rmcp's `stdio_pipes`, which reads and writes the pipes a client creates
/// through the IO reactor; unlike blocking stdin reads it cannot keep the runtime
/// from shutting down after the client has gone. It falls back to blocking stdio
/// when the streams are not pipes (e.g. a terminal).
///
/// A message may be as large as an HTTP request body (`max_body_bytes`,
/// `transport.max_body_bytes`), so code that fits one fits the other, but
/// never less than rmcp's own bound. A longer line is dropped and logged: its
/// id cannot be read without buffering it whole. A line that is no message
/// is answered with what is wrong with it (see [`JsonLines`]).
pub async fn serve_stdio(server: McpV8, max_body_bytes: usize) -> anyhow::Result<()> {
    let (reader, writer) = stdio_pipes();
    let transport = JsonLines::new(reader, writer, max_body_bytes.max(DEFAULT_MAX_LINE_LENGTH));
    let transport = EndsWithStdout::new(transport);
    let service = match server.serve(PreInitFilter::new(transport)).await {
        Ok(service) => service,
        // The client left before it initialised: a clean end, as at any
        // other time.
        Err(ServerInitializeError::ConnectionClosed(_)) => {
            tracing::info!("the MCP client closed stdin before initializing");
            return Ok(());
        }
        Err(error) => return Err(error).context("MCP initialization over stdio failed"),
    };
    let reason = service
        .waiting()
        .await
        .context("the MCP stdio session task failed")?;
    match reason {
        QuitReason::JoinError(error) => {
            Err(error).context("the MCP stdio session ended abnormally")
        }
        reason => {
            tracing::info!(?reason, "MCP stdio session ended");
            Ok(())
        }
    }
}

/// Ends the session when stdout is gone: a client that closed its end can
/// read no answer, yet rmcp would go on reading requests and logging a
/// broken pipe for each.
struct EndsWithStdout<T> {
    inner: T,
    gone: Arc<Notify>,
}

impl<T> EndsWithStdout<T> {
    fn new(inner: T) -> Self {
        Self {
            inner,
            gone: Arc::new(Notify::new()),
        }
    }
}

impl<T> Transport<RoleServer> for EndsWithStdout<T>
where
    T: Transport<RoleServer, Error = std::io::Error>,
{
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: ServerJsonRpcMessage,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let sent = self.inner.send(item);
        let gone = self.gone.clone();
        async move {
            let result = sent.await;
            if let Err(error) = &result
                && error.kind() == std::io::ErrorKind::BrokenPipe
            {
                // A permit: the next receive ends, even if none waits now.
                gone.notify_one();
            }
            result
        }
    }

    async fn receive(&mut self) -> Option<ClientJsonRpcMessage> {
        tokio::select! {
            message = self.inner.receive() => message,
            () = self.gone.notified() => {
                tracing::warn!("stdout is closed, so no answer can reach the client; ending the session");
                None
            }
        }
    }

    fn close(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.inner.close()
    }
}
