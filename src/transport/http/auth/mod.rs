//! Optional bearer authentication for every route but the health, readiness
//! and discovery documents.
//!
//! Off unless `[auth]` configures static tokens (`tokens`, `tokens_file`) or
//! JWT verification (`jwks_url` with `issuer` and `audience`); with both, a
//! request may present either. A refused request gets 401 with a
//! `WWW-Authenticate: Bearer` challenge (RFC 6750) which, with JWT auth,
//! points at the protected resource metadata (RFC 9728) so that MCP clients
//! can find the authorization server.

mod jwt;
mod metadata;
mod tokens;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use self::jwt::{JwtError, JwtVerifier};
use self::metadata::ResourceMetadata;
use self::tokens::StaticTokens;
use super::HttpError;
use super::reject::rejection;
use crate::config::AuthConfig;

/// The `realm` of our challenges.
const REALM: &str = "mcp-v8";

/// Paths anyone may fetch: probes and documents that describe the server.
const PUBLIC_PATHS: [&str; 3] = ["/healthz", "/readyz", "/openapi.json"];

/// The configured ways of proving who you are.
#[derive(Debug)]
pub struct Auth {
    tokens: StaticTokens,
    jwt: Option<JwtVerifier>,
    metadata: Option<ResourceMetadata>,
}

/// Why a request was refused.
#[derive(Debug)]
enum Refusal {
    /// No bearer token at all: the challenge carries no error code.
    Missing,
    /// A token that is neither a static token nor (without JWT auth) a JWT.
    Unknown,
    Jwt(JwtError),
}

/// Whether `[auth]` asks for authentication at all.
pub fn is_configured(config: &AuthConfig) -> bool {
    !config.tokens.is_empty() || config.tokens_file.is_some() || config.jwks_url.is_some()
}

impl Auth {
    /// `None` when `[auth]` configures no way to authenticate. `endpoint` is
    /// the MCP path of this mode, the default resource in the metadata.
    pub fn from_config(
        config: &AuthConfig,
        endpoint: &'static str,
    ) -> Result<Option<Self>, HttpError> {
        let tokens = StaticTokens::load(&config.tokens, config.tokens_file.as_deref())?;
        let jwt = match (&config.jwks_url, &config.issuer, &config.audience) {
            (Some(url), Some(issuer), Some(audience)) => {
                Some(JwtVerifier::new(url, issuer, audience)?)
            }
            // Validation requires all three together.
            _ => None,
        };
        if tokens.is_empty() && jwt.is_none() {
            return Ok(None);
        }
        let metadata = jwt.as_ref().map(|jwt| {
            let servers = if config.authorization_servers.is_empty() {
                vec![jwt.issuer().to_owned()]
            } else {
                config.authorization_servers.clone()
            };
            ResourceMetadata::new(config.resource.clone(), servers, endpoint)
        });
        Ok(Some(Self {
            tokens,
            jwt,
            metadata,
        }))
    }

    fn metadata(&self) -> Option<&ResourceMetadata> {
        self.metadata.as_ref()
    }

    /// The discovery routes: the protected resource metadata with JWT auth,
    /// nothing otherwise.
    pub fn routes(self: &Arc<Self>) -> Router {
        match self.metadata {
            Some(_) => metadata::routes(Arc::clone(self)),
            None => Router::new(),
        }
    }

    async fn check(&self, token: &str) -> Result<(), Refusal> {
        if self.tokens.contains(token) {
            return Ok(());
        }
        match &self.jwt {
            Some(jwt) => jwt.verify(token).await.map_err(Refusal::Jwt),
            None => Err(Refusal::Unknown),
        }
    }

    /// 401 with the `WWW-Authenticate` challenge for `refusal`.
    fn challenge(&self, refusal: &Refusal, headers: &HeaderMap) -> Response {
        let mut challenge = format!("Bearer realm=\"{REALM}\"");
        if let Some(metadata) = &self.metadata {
            challenge.push_str(&format!(
                ", resource_metadata=\"{}\"",
                quoted(&metadata.url(headers))
            ));
        }
        let message = match refusal {
            Refusal::Missing => "this server requires an Authorization: Bearer token".to_owned(),
            Refusal::Unknown => "the bearer token is not valid".to_owned(),
            Refusal::Jwt(error) => error.to_string(),
        };
        if !matches!(refusal, Refusal::Missing) {
            challenge.push_str(&format!(
                ", error=\"invalid_token\", error_description=\"{}\"",
                quoted(&message)
            ));
        }
        let mut response = rejection(StatusCode::UNAUTHORIZED, "unauthorized", message);
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

/// Middleware: let a request through only with an accepted bearer token.
pub async fn require_bearer(
    State(auth): State<Arc<Auth>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    // Discovery documents are public by definition; one we do not serve is
    // a plain 404, which is what clients probing for them look for.
    if PUBLIC_PATHS.contains(&path) || path.starts_with(WELL_KNOWN_PREFIX) {
        return next.run(request).await;
    }
    let mut authorizations = request.headers().get_all(header::AUTHORIZATION).iter();
    let outcome = match (authorizations.next(), authorizations.next()) {
        (Some(_), Some(_)) => {
            // Which one counts would depend on who reads the headers (a
            // proxy, us): RFC 6750 allows one way of sending a token.
            return rejection(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "more than one Authorization header: send exactly one",
            );
        }
        (Some(value), None) => match bearer_token(value) {
            Some(token) => auth.check(token).await,
            None => Err(Refusal::Missing),
        },
        (None, _) => Err(Refusal::Missing),
    };
    match outcome {
        Ok(()) => next.run(request).await,
        Err(Refusal::Jwt(error)) if error.retry_after().is_some() => {
            // Callers choose key ids freely: only an unreachable key set is
            // worth a warning each time.
            if matches!(error, JwtError::KeySetUnavailable(_)) {
                tracing::warn!(path, %error, "refused a JWT that could not be checked");
            } else {
                tracing::debug!(path, %error, "refused a JWT that could not be checked yet");
            }
            let retry_after = error.retry_after().unwrap_or(jwt::KEY_SET_RETRY_AFTER);
            let mut response = rejection(
                StatusCode::SERVICE_UNAVAILABLE,
                "auth_unavailable",
                error.to_string(),
            );
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after.as_secs()),
            );
            response
        }
        Err(refusal) => {
            tracing::debug!(path, ?refusal, "refused an unauthenticated request");
            auth.challenge(&refusal, request.headers())
        }
    }
}

/// Where discovery documents live (RFC 8615).
const WELL_KNOWN_PREFIX: &str = "/.well-known/";

/// The token of an `Authorization: Bearer TOKEN` header (scheme name in any
/// case, RFC 9110 §11.1).
fn bearer_token(value: &HeaderValue) -> Option<&str> {
    let value = value.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Makes `text` safe inside a quoted-string of a challenge.
fn quoted(text: &str) -> String {
    text.replace(['"', '\\'], "'")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        let token =
            |value: &'static str| bearer_token(&HeaderValue::from_static(value)).map(str::to_owned);
        assert_eq!(token("Bearer abc").as_deref(), Some("abc"));
        assert_eq!(token("bearer   abc ").as_deref(), Some("abc"));
        assert_eq!(token("Basic abc"), None);
        assert_eq!(token("Bearer"), None);
    }

    #[test]
    fn no_keys_means_no_auth() {
        let auth = Auth::from_config(&AuthConfig::default(), "/mcp").expect("valid");
        assert!(auth.is_none());
    }

    #[tokio::test]
    async fn static_tokens_challenge_without_metadata() {
        let config = AuthConfig {
            tokens: vec!["s3cret".to_owned()],
            ..AuthConfig::default()
        };
        let auth = Auth::from_config(&config, "/mcp")
            .expect("valid")
            .expect("enabled");
        assert!(auth.check("s3cret").await.is_ok());
        let refusal = auth.check("guess").await.expect_err("wrong token");
        let response = auth.challenge(&refusal, &HeaderMap::new());
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let challenge = response.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .expect("ascii");
        assert_eq!(
            challenge,
            "Bearer realm=\"mcp-v8\", error=\"invalid_token\", error_description=\"the bearer token is not valid\""
        );
    }

    #[test]
    fn metadata_url_follows_the_resource_path() {
        let mut host = HeaderMap::new();
        host.insert(header::HOST, HeaderValue::from_static("127.0.0.1:9000"));
        let derived = ResourceMetadata::new(None, Vec::new(), "/mcp");
        assert_eq!(derived.resource(&host), "http://127.0.0.1:9000/mcp");
        assert_eq!(
            derived.url(&host),
            "http://127.0.0.1:9000/.well-known/oauth-protected-resource/mcp"
        );
        let pinned = ResourceMetadata::new(
            Some("https://mcp.example.com".to_owned()),
            Vec::new(),
            "/mcp",
        );
        assert_eq!(
            pinned.url(&host),
            "https://mcp.example.com/.well-known/oauth-protected-resource"
        );
    }
}
