//! A bound on open streamable HTTP sessions.
//!
//! Each session rmcp keeps costs the server about 60 KB and lives until its
//! client deletes it or it has been idle for `session_idle_secs` (an hour by
//! default). A client that initializes for every call and never deletes (some
//! do) would otherwise grow the server by gigabytes. At the bound, the session
//! idle longest is ended to make room: its client's next request gets 404 and
//! it initializes again, as the protocol asks of clients. Refusing the new
//! session instead would let one leaking client lock every other one out.
//! A session with a request in flight (a long tool call) is not idle: it is
//! ended only when every session has one.
//!
//! Idle sessions are ended here too, after `idle` without a request and
//! with none in flight. (rmcp's own idle timeout counts from the last
//! message, so it ended a session in the middle of a tool call longer than
//! the timeout, and the call's answer was lost.)
//!
//! Each request carries its session's [`SessionEnd`], cancelled as the
//! session's record here is dropped (however the session ended), so that a
//! `run_js` waiting on its execution stops it at once.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use rmcp::model::{ClientJsonRpcMessage, GetExtensions, JsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_server::session::ServerSseMessage;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{RestoreOutcome, SessionId, SessionManager};
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::tools::SessionEnd;

/// rmcp's [`LocalSessionManager`], holding at most `max` sessions and
/// ending those idle for longer than `idle`.
pub struct BoundedSessions {
    inner: Arc<LocalSessionManager>,
    max: usize,
    usage: Arc<Mutex<HashMap<SessionId, Usage>>>,
    /// Held while making room and creating, so that concurrent creations
    /// cannot overshoot the bound.
    creating: tokio::sync::Mutex<()>,
}

/// How a session is being used.
#[derive(Debug)]
struct Usage {
    /// When its last request arrived or was answered.
    last_used: Instant,
    /// Requests whose answer is still being streamed: a session waiting on
    /// a long tool call is busy, not idle.
    in_flight: usize,
    /// Handed to the session's requests; cancelled when this record is
    /// dropped, i.e. when the session has ended.
    ended: CancellationToken,
    _end_when_dropped: DropGuard,
}

impl Usage {
    fn new() -> Self {
        let ended = CancellationToken::new();
        Self {
            last_used: Instant::now(),
            in_flight: 0,
            _end_when_dropped: ended.clone().drop_guard(),
            ended,
        }
    }
}

impl BoundedSessions {
    /// Must be called inside a tokio runtime: it starts the task that ends
    /// idle sessions (which stops once this is dropped). `inner` should
    /// have no idle timeout of its own.
    pub fn new(inner: LocalSessionManager, max: usize, idle: Duration) -> Self {
        let inner = Arc::new(inner);
        let usage = Arc::default();
        tokio::spawn(end_idle_sessions(
            Arc::downgrade(&inner),
            Arc::clone(&usage),
            idle,
        ));
        Self {
            inner,
            max: max.max(1),
            usage,
            creating: tokio::sync::Mutex::default(),
        }
    }

    fn touch(&self, id: &SessionId) {
        touch(&self.usage, id, 0);
    }

    /// Ends sessions until one more fits: the longest idle first, and one
    /// with a request in flight only when every session has one.
    async fn make_room(&self) {
        loop {
            let open: HashSet<SessionId> =
                self.inner.sessions.read().await.keys().cloned().collect();
            if open.len() < self.max {
                return;
            }
            let victim = {
                let mut usage = lock(&self.usage);
                usage.retain(|id, _| open.contains(id));
                // A session without a record is older than any with one.
                open.iter()
                    .min_by_key(|id| {
                        let used = usage.get(*id);
                        (
                            used.is_some_and(|used| used.in_flight > 0),
                            used.map(|used| used.last_used),
                        )
                    })
                    .cloned()
            };
            let Some(victim) = victim else { return };
            tracing::info!(
                session_id = %victim,
                max_sessions = self.max,
                "ending the longest idle MCP session to make room for a new one"
            );
            if let Err(error) = self.inner.close_session(&victim).await {
                tracing::warn!(session_id = %victim, %error, "ending an MCP session");
            }
            lock(&self.usage).remove(&victim);
        }
    }
}

/// Every so often (a quarter of `idle`, between 250 ms and 30 s), ends the
/// sessions without a request in flight whose last use is `idle` ago, until
/// the manager is gone.
async fn end_idle_sessions(
    manager: Weak<LocalSessionManager>,
    usage: Arc<Mutex<HashMap<SessionId, Usage>>>,
    idle: Duration,
) {
    let period = (idle / 4).clamp(Duration::from_millis(250), Duration::from_secs(30));
    loop {
        tokio::time::sleep(period).await;
        let Some(manager) = manager.upgrade() else {
            return;
        };
        let open: Vec<SessionId> = manager.sessions.read().await.keys().cloned().collect();
        let expired: Vec<SessionId> = {
            let mut usage = lock(&usage);
            usage.retain(|id, _| open.contains(id));
            open.into_iter()
                .filter(|id| {
                    // A session not seen yet starts its idle time now.
                    let used = usage.entry(id.clone()).or_insert_with(Usage::new);
                    used.in_flight == 0 && used.last_used.elapsed() >= idle
                })
                .collect()
        };
        for id in expired {
            tracing::info!(session_id = %id, idle_secs = idle.as_secs(), "ending an idle MCP session");
            if let Err(error) = manager.close_session(&id).await {
                tracing::warn!(session_id = %id, %error, "ending an MCP session");
            }
            lock(&usage).remove(&id);
        }
    }
}

/// Records a use of `id`, with `started` more requests in flight, and
/// returns what tells them that the session has ended.
fn touch(
    usage: &Mutex<HashMap<SessionId, Usage>>,
    id: &SessionId,
    started: usize,
) -> CancellationToken {
    let mut usage = lock(usage);
    let entry = usage.entry(id.clone()).or_insert_with(Usage::new);
    entry.last_used = Instant::now();
    entry.in_flight += started;
    entry.ended.clone()
}

fn lock(usage: &Mutex<HashMap<SessionId, Usage>>) -> MutexGuard<'_, HashMap<SessionId, Usage>> {
    // Counters and timestamps only: a holder that panicked leaves nothing
    // that matters inconsistent.
    usage.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One request in flight; when its answer stream is dropped (answered, or
/// the client went away) the session counts as used at that moment.
struct InFlight {
    id: SessionId,
    usage: Arc<Mutex<HashMap<SessionId, Usage>>>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(used) = lock(&self.usage).get_mut(&self.id) {
            used.in_flight = used.in_flight.saturating_sub(1);
            used.last_used = Instant::now();
        }
    }
}

impl SessionManager for BoundedSessions {
    type Error = <LocalSessionManager as SessionManager>::Error;
    type Transport = <LocalSessionManager as SessionManager>::Transport;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        let _creating = self.creating.lock().await;
        self.make_room().await;
        let (id, transport) = self.inner.create_session().await?;
        self.touch(&id);
        Ok((id, transport))
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        self.touch(id);
        self.inner.initialize_session(id, message).await
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        self.inner.has_session(id).await
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        lock(&self.usage).remove(id);
        self.inner.close_session(id).await
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        mut message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        let ended = touch(&self.usage, id, 1);
        if let JsonRpcMessage::Request(request) = &mut message {
            request.request.extensions_mut().insert(SessionEnd(ended));
        }
        let in_flight = InFlight {
            id: id.clone(),
            usage: Arc::clone(&self.usage),
        };
        // The guard lives as long as the answer's stream.
        let answer = self.inner.create_stream(id, message).await?;
        Ok(answer.map(move |message| {
            let _in_flight = &in_flight;
            message
        }))
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        self.touch(id);
        self.inner.accept_message(id, message).await
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.touch(id);
        self.inner.create_standalone_stream(id).await
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.touch(id);
        self.inner.resume(id, last_event_id).await
    }

    async fn restore_session(
        &self,
        id: SessionId,
    ) -> Result<RestoreOutcome<Self::Transport>, Self::Error> {
        let _creating = self.creating.lock().await;
        self.make_room().await;
        self.touch(&id);
        self.inner.restore_session(id).await
    }
}
