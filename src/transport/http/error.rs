//! Why the HTTP server could not start or keep running.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// A failure to set up or run the HTTP/SSE server. Configuration problems
/// name the key they come from, so the operator knows what to fix.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// `transport.bind` is validated with the rest of the configuration; this
    /// only fires if that validation was skipped.
    #[error("transport.bind = {bind:?} is not an IP address")]
    BindAddress { bind: String },

    /// The port is taken, or binding it needs privileges we lack.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },

    /// An entry of `transport.allowed_hosts` or `transport.allowed_origins`
    /// that does not parse.
    #[error("{key}: {entry:?} is not a valid entry: expected {expected}")]
    Pattern {
        key: &'static str,
        entry: String,
        expected: &'static str,
    },

    /// `auth.tokens_file` could not be read.
    #[error("cannot read auth.tokens_file {}: {source}", path.display())]
    TokensFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// `auth.tokens_file` is set but lists no token: serving would lock
    /// every client out without saying why.
    #[error("auth.tokens_file {} lists no tokens", path.display())]
    NoTokens { path: PathBuf },

    /// A token in `auth.tokens_file` cannot be sent in an HTTP header.
    #[error(
        "auth.tokens_file {} line {line}: a token must be visible ASCII without spaces",
        path.display()
    )]
    BadToken { path: PathBuf, line: usize },

    /// The HTTP client that fetches the JWKS could not be built (TLS setup).
    #[error("cannot build the HTTP client for auth.jwks_url: {0}")]
    JwksClient(#[source] reqwest::Error),
}
