//! Binding the listener, announcing it, and shutting down in two steps.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
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
pub async fn serve(
    addr: SocketAddr,
    app: Router,
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

    let stop_accepting = CancellationToken::new();
    let server = axum::serve(listener, app)
        .with_graceful_shutdown(stop_accepting.clone().cancelled_owned())
        .into_future();
    let mut server = std::pin::pin!(server);
    tokio::select! {
        result = &mut server => return result.map_err(HttpError::Serve),
        () = shutdown => {}
    }

    tracing::info!("shutting down: no new connections, draining in-flight requests");
    stop_accepting.cancel();
    let drained = tokio::time::timeout(DRAIN, &mut server).await;
    // Sessions without a connection (or with only a stream) end here too.
    sessions.cancel();
    let result = match drained {
        Ok(result) => result,
        Err(_) => match tokio::time::timeout(CLOSE, &mut server).await {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!("connections still open after the drain period; closing them");
                Ok(())
            }
        },
    };
    result.map_err(HttpError::Serve)
}
