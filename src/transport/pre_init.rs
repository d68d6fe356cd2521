//! Keeps a stray message before `initialize` from ending a session.
//!
//! rmcp's server answers pings and refuses requests that come before
//! `initialize`, but any notification or response there ends the session
//! with an error: over stdio the server exited 1 when a client sent
//! `notifications/initialized` (or a cancellation) one line too early, and an
//! SSE session closed its stream without a word. Notifications need no
//! answer and responses answer nothing the server asked, so until the
//! session begins they are dropped, with a warning, and the session goes on.
//!
//! An `initialize` whose params rmcp cannot read reaches rmcp as some other
//! request, which it refuses for missing `_meta` fields: a message about a
//! newer protocol's stateless requests that says nothing of what is wrong.
//! It is answered here with `-32602` and serde's words, as over HTTP.

use std::borrow::Cow;

use rmcp::RoleServer;
use rmcp::model::{ClientJsonRpcMessage, ClientRequest, GetMeta, RequestId, ServerJsonRpcMessage};
use rmcp::transport::Transport;

use crate::tools::unreadable_request;

/// A server transport that drops notifications and responses until the
/// session begins: with an `initialize` request, or with the answer to a
/// request that carries its protocol version in `_meta` (the stateless
/// lifecycle of MCP 2026-07-28). rmcp answers such a request from its
/// pre-initialisation loop, and stays there, when the version is not one it
/// serves or the request is a `server/discover` probe; only a result shows
/// that it went on.
pub struct PreInitFilter<T> {
    inner: T,
    begun: bool,
    /// A request that may begin the session, by its answer.
    candidate: Option<RequestId>,
}

impl<T> PreInitFilter<T> {
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            begun: false,
            candidate: None,
        }
    }
}

/// Whether a request may begin the session (see
/// `rmcp::service::serve_server`).
fn may_begin_session(request: &ClientRequest) -> bool {
    match request {
        ClientRequest::PingRequest(_) | ClientRequest::DiscoverRequest(_) => false,
        other => other.get_meta().protocol_version().is_some(),
    }
}

impl<T> Transport<RoleServer> for PreInitFilter<T>
where
    T: Transport<RoleServer>,
{
    type Error = T::Error;

    fn name() -> Cow<'static, str> {
        T::name()
    }

    fn send(
        &mut self,
        item: ServerJsonRpcMessage,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        if let (ServerJsonRpcMessage::Response(response), Some(candidate)) =
            (&item, &self.candidate)
            && response.id == *candidate
        {
            self.begun = true;
        }
        self.inner.send(item)
    }

    async fn receive(&mut self) -> Option<ClientJsonRpcMessage> {
        loop {
            let message = self.inner.receive().await?;
            if self.begun {
                return Some(message);
            }
            let dropped = match &message {
                ClientJsonRpcMessage::Request(request) => {
                    if let ClientRequest::CustomRequest(custom) = &request.request
                        && custom.method == "initialize"
                    {
                        let error = unreadable_request(&custom.method, custom.params.clone());
                        let answer = ServerJsonRpcMessage::error(error, Some(request.id.clone()));
                        if let Err(error) = self.inner.send(answer).await {
                            tracing::warn!(%error, "cannot answer an unreadable initialize");
                        }
                        continue;
                    }
                    if matches!(request.request, ClientRequest::InitializeRequest(_)) {
                        // rmcp either serves the session or ends it.
                        self.begun = true;
                    } else if may_begin_session(&request.request) {
                        self.candidate = Some(request.id.clone());
                    }
                    return Some(message);
                }
                ClientJsonRpcMessage::Notification(notification) => {
                    let method = serde_json::to_value(&notification.notification)
                        .ok()
                        .and_then(|value| value["method"].as_str().map(str::to_owned))
                        .unwrap_or_default();
                    format!("the notification {method:?}")
                }
                ClientJsonRpcMessage::Response(response) => {
                    format!("a response to request {}", response.id)
                }
                ClientJsonRpcMessage::Error(error) => {
                    format!("an error response ({})", error.error.message)
                }
            };
            tracing::warn!("{dropped} came before initialize; dropped");
        }
    }

    fn close(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.inner.close()
    }
}
