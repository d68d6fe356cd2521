//! The HTTP+SSE transport of MCP 2024-11-05 (`/sse` and `/message`), for
//! clients that predate Streamable HTTP.
//!
//! `GET /sse` opens a session: an event stream whose first event, `endpoint`,
//! tells the client where to post (`/message?sessionId=ID`). Each `POST` there
//! carries one JSON-RPC message and is answered `202 Accepted`; the server's
//! answers travel back as `message` events on the stream. The session lives
//! as long as the stream: when the client disconnects, its [`McpV8`] service
//! stops and the id is forgotten (later posts get 404).
//!
//! rmcp no longer ships this transport, so each session is rmcp's generic
//! transport over a pair of channels: the session's service reads client
//! messages from one and writes its own into the other, which feeds the
//! stream.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::channel::mpsc;
use futures::{SinkExt, StreamExt, stream};
use rmcp::ServiceExt;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::sink_stream::SinkStreamTransport;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::reject::{extractor_rejection, method_not_allowed, rejection};
use crate::tools::McpV8;
use crate::transport::PreInitFilter;

/// The stream's path.
pub const PATH: &str = "/sse";
/// Where clients post their messages.
const MESSAGE_PATH: &str = "/message";
/// Messages buffered per direction before the sender waits.
const CHANNEL_CAPACITY: usize = 64;

/// The open sessions: where to deliver each one's client messages.
#[derive(Clone)]
struct Sessions {
    server: McpV8,
    senders: Arc<Mutex<HashMap<String, mpsc::Sender<ClientJsonRpcMessage>>>>,
    keep_alive: Duration,
    /// Open sessions allowed at once (`transport.max_sessions`).
    max_sessions: usize,
    /// Cancelled at shutdown: ends every stream and session.
    shutdown: CancellationToken,
}

impl Sessions {
    fn senders(&self) -> MutexGuard<'_, HashMap<String, mpsc::Sender<ClientJsonRpcMessage>>> {
        // The map stays consistent even if a holder panicked.
        self.senders.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `/sse` and `/message`. Cancelling `shutdown` ends every session.
pub fn routes(
    server: McpV8,
    keep_alive: Duration,
    max_sessions: usize,
    shutdown: CancellationToken,
) -> Router {
    let sessions = Sessions {
        server,
        senders: Arc::default(),
        keep_alive,
        max_sessions,
        shutdown,
    };
    Router::new()
        .route(PATH, get(open_session))
        .route(MESSAGE_PATH, post(post_message))
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(sessions)
}

/// `GET /sse`: starts a session and streams its server messages; 503 while
/// `max_sessions` streams are open. (A session here is its open stream, so
/// none can be ended for room the way idle streamable HTTP sessions are.)
async fn open_session(State(sessions): State<Sessions>) -> Response {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let (client_tx, client_rx) = mpsc::channel::<ClientJsonRpcMessage>(CHANNEL_CAPACITY);
    let (server_tx, server_rx) = mpsc::channel::<ServerJsonRpcMessage>(CHANNEL_CAPACITY);
    {
        let mut senders = sessions.senders();
        if senders.len() >= sessions.max_sessions {
            let mut refused = rejection(
                StatusCode::SERVICE_UNAVAILABLE,
                "too_many_sessions",
                format!(
                    "{} SSE sessions are open, the most this server allows \
                     (transport.max_sessions); try again when one has closed",
                    senders.len()
                ),
            );
            refused
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("5"));
            return refused;
        }
        senders.insert(id.clone(), client_tx);
    }
    let stop = sessions.shutdown.child_token();
    tokio::spawn(run_session(
        sessions.server.clone(),
        (server_tx, client_rx),
        stop.clone(),
        id.clone(),
    ));
    tracing::info!(session_id = %id, "SSE session opened");

    let endpoint = Event::default()
        .event("endpoint")
        .data(format!("{MESSAGE_PATH}?sessionId={id}"));
    // Dropped with the stream, i.e. when the client goes away.
    let guard = SessionGuard {
        id,
        sessions: sessions.clone(),
        stop: stop.clone(),
    };
    let messages = server_rx.filter_map(move |message| {
        let _session = &guard;
        std::future::ready(to_event(&message))
    });
    let events = stream::once(std::future::ready(endpoint))
        .chain(messages)
        .take_until(stop.cancelled_owned())
        .map(Ok::<Event, Infallible>);
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(sessions.keep_alive))
        .into_response()
}

/// Runs one session's [`McpV8`] until the client leaves or the server stops.
async fn run_session(
    server: McpV8,
    transport: (
        mpsc::Sender<ServerJsonRpcMessage>,
        mpsc::Receiver<ClientJsonRpcMessage>,
    ),
    stop: CancellationToken,
    id: String,
) {
    let (sink, stream) = transport;
    let transport = PreInitFilter::new(SinkStreamTransport::new(sink, stream));
    match server.serve_with_ct(transport, stop).await {
        Ok(running) => {
            let reason = running.waiting().await;
            tracing::debug!(session_id = %id, ?reason, "SSE session ended");
        }
        Err(error) => {
            tracing::debug!(session_id = %id, %error, "SSE session ended before initialization");
        }
    }
}

fn to_event(message: &ServerJsonRpcMessage) -> Option<Event> {
    Event::default()
        .event("message")
        .json_data(message)
        .inspect_err(|error| tracing::error!(%error, "cannot encode a server message"))
        .ok()
}

/// Forgets the session and stops its service when its stream is dropped.
struct SessionGuard {
    id: String,
    sessions: Sessions,
    stop: CancellationToken,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.sessions.senders().remove(&self.id);
        self.stop.cancel();
        tracing::info!(session_id = %self.id, "SSE session closed");
    }
}

#[derive(Debug, Deserialize)]
struct MessageQuery {
    #[serde(rename = "sessionId")]
    session_id: String,
}

/// `POST /message?sessionId=ID`: hands one client message to its session.
async fn post_message(
    State(sessions): State<Sessions>,
    query: Result<Query<MessageQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    // Refusals in the API's error shape, as from every other route.
    let query = match query {
        Ok(Query(query)) => query,
        Err(refused) => return extractor_rejection(refused.status(), refused.body_text()),
    };
    let body = match body {
        Ok(body) => body,
        Err(refused) => return extractor_rejection(refused.status(), refused.body_text()),
    };
    let sender = sessions.senders().get(&query.session_id).cloned();
    let Some(mut sender) = sender else {
        return unknown_session(&query.session_id);
    };
    let message: ClientJsonRpcMessage = match serde_json::from_slice(&body) {
        Ok(message) => message,
        Err(error) => {
            return rejection(
                StatusCode::BAD_REQUEST,
                "invalid_argument",
                format!("the body is not a JSON-RPC message: {error}"),
            );
        }
    };
    if sender.send(message).await.is_err() {
        // The session ended between the lookup and the send.
        return unknown_session(&query.session_id);
    }
    StatusCode::ACCEPTED.into_response()
}

fn unknown_session(id: &str) -> Response {
    rejection(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no SSE session {id:?}; open one with GET {PATH}"),
    )
}
