//! MCP over the process's stdin and stdout, for clients that spawn the server.

use anyhow::Context;
use rmcp::service::{QuitReason, ServerInitializeError};
use rmcp::transport::async_rw::{AsyncRwTransport, DEFAULT_MAX_LINE_LENGTH};
use rmcp::transport::stdio_pipes;
use rmcp::{RoleServer, ServiceExt};

use super::PreInitFilter;
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
/// never less than rmcp's own bound. A longer line is dropped and logged by
/// rmcp: its id cannot be read without buffering it whole.
pub async fn serve_stdio(server: McpV8, max_body_bytes: usize) -> anyhow::Result<()> {
    let (reader, writer) = stdio_pipes();
    let transport = AsyncRwTransport::<RoleServer, _, _>::new(reader, writer)
        .with_max_line_length(max_body_bytes.max(DEFAULT_MAX_LINE_LENGTH));
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
