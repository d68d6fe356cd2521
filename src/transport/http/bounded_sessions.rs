//! A bound on open streamable HTTP sessions.
//!
//! Each session rmcp keeps costs the server about 60 KB and lives until its
//! client deletes it or it has been idle for `session_idle_secs` (an hour by
//! default). A client that initializes for every call and never deletes (some
//! do) would otherwise grow the server by gigabytes. At the bound, the session
//! idle longest is ended to make room: its client's next request gets 404 and
//! it initializes again, as the protocol asks of clients. Refusing the new
//! session instead would let one leaking client lock every other one out.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use futures::Stream;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_server::session::ServerSseMessage;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{RestoreOutcome, SessionId, SessionManager};

/// rmcp's [`LocalSessionManager`], holding at most `max` sessions.
pub struct BoundedSessions {
    inner: LocalSessionManager,
    max: usize,
    /// When each session last saw a request (or was created).
    last_used: Mutex<HashMap<SessionId, Instant>>,
    /// Held while making room and creating, so that concurrent creations
    /// cannot overshoot the bound.
    creating: tokio::sync::Mutex<()>,
}

impl BoundedSessions {
    pub fn new(inner: LocalSessionManager, max: usize) -> Self {
        Self {
            inner,
            max: max.max(1),
            last_used: Mutex::default(),
            creating: tokio::sync::Mutex::default(),
        }
    }

    fn last_used(&self) -> MutexGuard<'_, HashMap<SessionId, Instant>> {
        // Timestamps only: a holder that panicked leaves nothing inconsistent.
        self.last_used
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn touch(&self, id: &SessionId) {
        self.last_used().insert(id.clone(), Instant::now());
    }

    /// Ends sessions, longest idle first, until one more fits.
    async fn make_room(&self) {
        loop {
            let open: HashSet<SessionId> =
                self.inner.sessions.read().await.keys().cloned().collect();
            if open.len() < self.max {
                return;
            }
            let victim = {
                let mut last_used = self.last_used();
                last_used.retain(|id, _| open.contains(id));
                // A session without a timestamp is older than any with one.
                open.iter()
                    .min_by_key(|id| last_used.get(*id).copied())
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
            self.last_used().remove(&victim);
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
        self.last_used().remove(id);
        self.inner.close_session(id).await
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.touch(id);
        self.inner.create_stream(id, message).await
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
