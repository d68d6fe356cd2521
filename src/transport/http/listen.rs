//! Binding the listener, announcing it, and shutting down in two steps.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::HttpError;

/// How long in-flight requests may run on after a shutdown signal.
const DRAIN: Duration = Duration::from_secs(5);
/// How long connections get to close once their sessions are cancelled.
const CLOSE: Duration = Duration::from_secs(2);

/// Serves `app` on `addr` until `shutdown` resolves, then drains.
///
/// `shutdown` may take its time (the server refuses new executions with 503
/// meanwhile, see `main`); once it resolves, the listener stops accepting and
/// in-flight requests get [`DRAIN`] to finish. Event streams never finish by themselves, so after that
/// `sessions` is cancelled, which ends them and every MCP session, and the
/// remaining connections get [`CLOSE`] before they are dropped.
///
/// HTTP/1.1 only, served by hyper directly rather than `axum::serve`, whose
/// connections have no timer: a client could open connections and never
/// send a request (or send it a byte at a time), and hold them forever.
/// Here each connection has `header_timeout` to send a request's headers.
pub async fn serve(
    addr: SocketAddr,
    app: Router,
    header_timeout: Duration,
    shutdown: impl Future<Output = ()>,
    sessions: CancellationToken,
) -> Result<(), HttpError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| HttpError::Listen { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| HttpError::Listen { addr, source })?;
    // The ready line: scripts and tests wait for it (and read the port from
    // it when port 0 was asked for), so it is printed whatever the log filter.
    // One write of the whole line: workers share stderr, and `eprintln!`
    // writes the pieces of its format separately, so a worker's line could
    // land inside this one.
    let ready = format!("mcp-v8 listening on http://{local}\n");
    let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), ready.as_bytes());

    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true);
    let connections = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    pause_after_accept_error(&error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Answers are small and often streamed: do not hold them back.
        let _ = stream.set_nodelay(true);
        let connection =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let connection = connections.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "HTTP connection ended with an error");
            }
        });
    }
    drop(listener);

    tracing::info!("shutting down: no new connections, draining in-flight requests");
    let mut closed = std::pin::pin!(connections.shutdown());
    let drained = tokio::time::timeout(DRAIN, &mut closed).await;
    // Sessions without a connection (or with only a stream) end here too.
    sessions.cancel();
    if drained.is_err() && tokio::time::timeout(CLOSE, &mut closed).await.is_err() {
        tracing::warn!("connections still open after the drain period; closing them");
    }
    Ok(())
}

/// Waits a moment after a failed `accept`, unless the failure was the
/// connection's own (it was reset before it was accepted): out of file
/// descriptors, retrying at once would spin.
async fn pause_after_accept_error(error: &io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};

    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::warn!(%error, "accepting a connection failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
