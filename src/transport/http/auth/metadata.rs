//! OAuth 2.0 Protected Resource Metadata (RFC 9728), served when JWT
//! authentication is on, so that an MCP client that got a 401 can discover
//! which authorization server issues tokens for this server.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use super::Auth;

/// Where the metadata lives (RFC 9728 §3); a resource with a path has its
/// metadata at this prefix followed by that path.
pub const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// The metadata document.
#[derive(Debug, Serialize)]
struct Metadata<'a> {
    resource: String,
    authorization_servers: &'a [String],
    bearer_methods_supported: [&'static str; 1],
    resource_name: &'static str,
}

/// What the document says, from the `[auth]` config.
#[derive(Debug, Clone)]
pub struct ResourceMetadata {
    /// `auth.resource`; `None` derives it from the request.
    resource: Option<String>,
    authorization_servers: Vec<String>,
    /// The MCP endpoint of this mode (`/mcp` or `/sse`).
    endpoint: &'static str,
}

impl ResourceMetadata {
    pub fn new(
        resource: Option<String>,
        authorization_servers: Vec<String>,
        endpoint: &'static str,
    ) -> Self {
        Self {
            resource,
            authorization_servers,
            endpoint,
        }
    }

    /// This server's resource identifier: `auth.resource`, else
    /// `http://HOST/ENDPOINT` from the request (the Host guard has vetted it).
    pub fn resource(&self, headers: &HeaderMap) -> String {
        if let Some(resource) = &self.resource {
            return resource.clone();
        }
        let host = headers
            .get(header::HOST)
            .and_then(|host| host.to_str().ok())
            .unwrap_or("localhost");
        format!("http://{host}{}", self.endpoint)
    }

    /// The metadata URL for `resource`: its origin, the well-known prefix,
    /// then its path (RFC 9728 §3.1).
    pub fn url(&self, headers: &HeaderMap) -> String {
        let resource = self.resource(headers);
        match Uri::try_from(resource.as_str()) {
            Ok(uri) => {
                let scheme = uri.scheme_str().unwrap_or("http");
                let authority = uri.authority().map_or("localhost", |a| a.as_str());
                let path = uri.path().trim_end_matches('/');
                format!("{scheme}://{authority}{WELL_KNOWN}{path}")
            }
            Err(_) => format!("{}{WELL_KNOWN}", resource.trim_end_matches('/')),
        }
    }
}

/// The metadata routes: the bare well-known path and any path below it, so
/// that the URL derived from a resource with a path is served too.
pub fn routes(auth: Arc<Auth>) -> Router {
    Router::new()
        .route(WELL_KNOWN, get(document))
        .route(&format!("{WELL_KNOWN}/{{*resource_path}}"), get(document))
        .with_state(auth)
}

async fn document(State(auth): State<Arc<Auth>>, headers: HeaderMap) -> Response {
    // Only mounted with JWT auth, which always has metadata.
    let Some(metadata) = auth.metadata() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    Json(Metadata {
        resource: metadata.resource(&headers),
        authorization_servers: &metadata.authorization_servers,
        bearer_methods_supported: ["header"],
        resource_name: "mcp-v8",
    })
    .into_response()
}
