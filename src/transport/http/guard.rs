//! DNS-rebinding protection: only answer requests whose `Host` (and `Origin`,
//! when a browser sends one) the operator allowed.
//!
//! A web page can make a victim's browser resolve its own domain to
//! 127.0.0.1 and then talk to a server on localhost as if it were same-origin.
//! Such requests still carry the attacker's name in `Host` and their page's
//! `Origin`, so refusing unknown names closes the hole. The default allows
//! the loopback names only. `/healthz` and `/readyz` stay open for probes
//! that address the server by IP or service name (a load balancer's or
//! Kubernetes' health check sends the target's address as `Host`); they
//! answer a status, nothing a page could abuse.

use std::net::Ipv6Addr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::uri::Authority;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::Response;

use super::HttpError;
use super::reject::rejection;

/// The liveness and readiness probes, reachable under any name.
const EXEMPT_PATHS: [&str; 2] = ["/healthz", "/readyz"];

/// The configured `Host` and `Origin` allow-lists.
#[derive(Debug, Clone)]
pub struct Guard {
    hosts: Allowed<HostPattern>,
    origins: Allowed<OriginPattern>,
}

/// An allow-list, or `*`.
#[derive(Debug, Clone)]
enum Allowed<P> {
    Any,
    Only(Vec<P>),
}

impl Guard {
    /// Parses `transport.allowed_hosts` and `transport.allowed_origins`.
    pub fn new(hosts: &[String], origins: &[String]) -> Result<Self, HttpError> {
        Ok(Self {
            hosts: allowed(hosts, "transport.allowed_hosts", HostPattern::parse)?,
            origins: allowed(origins, "transport.allowed_origins", OriginPattern::parse)?,
        })
    }

    /// Whether a browser page of this `Origin` may use the server.
    pub fn origin_allowed(&self, origin: &HeaderValue) -> bool {
        match &self.origins {
            Allowed::Any => true,
            Allowed::Only(patterns) => origin
                .to_str()
                .ok()
                .and_then(Origin::parse)
                .is_some_and(|origin| patterns.iter().any(|pattern| pattern.matches(&origin))),
        }
    }

    /// Whether a request with these headers may proceed; `Err` says why not.
    fn check(&self, uri: &Uri, headers: &HeaderMap) -> Result<(), Refusal> {
        // Only the first of repeated headers would be checked below, while
        // whatever sits behind the server might read another.
        if headers.get_all(header::HOST).iter().nth(1).is_some() {
            return Err(Refusal::Malformed(
                "the request has more than one Host header",
            ));
        }
        if headers.get_all(header::ORIGIN).iter().nth(1).is_some() {
            return Err(Refusal::Forbidden(
                "the request has more than one Origin header",
            ));
        }
        if let Allowed::Only(patterns) = &self.hosts {
            // HTTP/2 carries the host in `:authority`, which hyper exposes as
            // the URI's authority rather than a `Host` header.
            let host = match headers.get(header::HOST) {
                Some(value) => value
                    .to_str()
                    .ok()
                    .and_then(|value| Authority::try_from(value).ok()),
                None => uri.authority().cloned(),
            }
            .ok_or(Refusal::Malformed("the request has no valid Host header"))?;
            let (name, port) = (normalize_host(host.host()), host.port_u16());
            if !patterns.iter().any(|pattern| pattern.matches(&name, port)) {
                return Err(Refusal::Forbidden(
                    "the Host header is not in transport.allowed_hosts",
                ));
            }
        }
        if let (Allowed::Only(patterns), Some(origin)) =
            (&self.origins, headers.get(header::ORIGIN))
        {
            let origin = origin
                .to_str()
                .ok()
                .and_then(Origin::parse)
                .ok_or(Refusal::Forbidden("the Origin header is malformed"))?;
            if !patterns.iter().any(|pattern| pattern.matches(&origin)) {
                return Err(Refusal::Forbidden(
                    "the Origin header is not in transport.allowed_origins",
                ));
            }
        }
        Ok(())
    }
}

/// Why [`Guard::check`] refused a request.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    /// HTTP/1.1 requires exactly one valid `Host` (RFC 9112, section 3.2):
    /// a request without one is malformed (400), whatever it asks for.
    Malformed(&'static str),
    /// A well-formed request from a name or origin not allowed (403). A
    /// repeated or malformed `Origin` is refused so too: it is what a page
    /// would send to get past the list.
    Forbidden(&'static str),
}

impl Refusal {
    /// The answer's status and error code, and the reason it gives.
    fn answer(self) -> (StatusCode, &'static str, &'static str) {
        match self {
            Self::Malformed(reason) => (StatusCode::BAD_REQUEST, "invalid_request", reason),
            Self::Forbidden(reason) => (StatusCode::FORBIDDEN, "forbidden", reason),
        }
    }
}

/// Middleware: 403 for a request from a name or origin that is not allowed,
/// 400 for one without a valid `Host`.
pub async fn check_host_and_origin(
    State(guard): State<Arc<Guard>>,
    request: Request,
    next: Next,
) -> Response {
    if !EXEMPT_PATHS.contains(&request.uri().path())
        && let Err(refusal) = guard.check(request.uri(), request.headers())
    {
        let (status, code, reason) = refusal.answer();
        tracing::warn!(
            host = ?request.headers().get(header::HOST),
            origin = ?request.headers().get(header::ORIGIN),
            reason,
            "refused a request (possible DNS rebinding)"
        );
        return rejection(status, code, reason);
    }
    next.run(request).await
}

fn allowed<P>(
    entries: &[String],
    key: &'static str,
    parse: fn(&str) -> Result<P, &'static str>,
) -> Result<Allowed<P>, HttpError> {
    if entries.iter().any(|entry| entry.trim() == "*") {
        return Ok(Allowed::Any);
    }
    entries
        .iter()
        .map(|entry| {
            parse(entry.trim()).map_err(|expected| HttpError::Pattern {
                key,
                entry: entry.clone(),
                expected,
            })
        })
        .collect::<Result<_, _>>()
        .map(Allowed::Only)
}

/// Lowercase, without the brackets of an IPv6 literal or the final dot of
/// a fully qualified name (`localhost.` is `localhost`).
fn normalize_host(host: &str) -> String {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase()
}

/// An `allowed_hosts` entry: a name, with a port or (any port) without; or
/// `*.name`, any subdomain of a name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HostPattern {
    host: String,
    port: Option<u16>,
    /// `*.host`: names ending in `.host` match, `host` itself does not.
    subdomains: bool,
}

impl HostPattern {
    const EXPECTED: &'static str =
        "a host name or IP, optionally with :port, or *.name for every subdomain of name";

    fn parse(entry: &str) -> Result<Self, &'static str> {
        // A bare IPv6 address ("::1") is not an authority; accept it anyway.
        if let Ok(ip) = entry.parse::<Ipv6Addr>() {
            return Ok(Self {
                host: ip.to_string(),
                port: None,
                subdomains: false,
            });
        }
        let (subdomains, entry) = match entry.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, entry),
        };
        let authority = Authority::try_from(entry).map_err(|_| Self::EXPECTED)?;
        let host = normalize_host(authority.host());
        // http accepts `*` in a host; taken literally it would never match.
        if authority.as_str().contains(['@', '*']) || host.is_empty() {
            return Err(Self::EXPECTED);
        }
        Ok(Self {
            host,
            port: authority.port_u16(),
            subdomains,
        })
    }

    /// A Host without a port names the scheme's default one, 80 or 443 (the
    /// server may sit behind a TLS proxy), so it matches a pattern with
    /// either.
    fn matches(&self, host: &str, port: Option<u16>) -> bool {
        let name_matches = if self.subdomains {
            host.strip_suffix(self.host.as_str())
                .is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('.'))
        } else {
            self.host == host
        };
        name_matches
            && self.port.is_none_or(|allowed| match port {
                Some(port) => port == allowed,
                None => matches!(allowed, 80 | 443),
            })
    }
}

/// A serialized origin (RFC 6454): `null` or `scheme://host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    Null,
    Tuple {
        scheme: String,
        host: String,
        /// The explicit port, else the scheme's default (None if it has none).
        port: Option<u16>,
    },
}

impl Origin {
    fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("null") {
            return Some(Self::Null);
        }
        let uri = Uri::try_from(text).ok()?;
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let authority = uri.authority()?;
        let has_path = !matches!(uri.path(), "" | "/") || uri.query().is_some();
        if has_path || authority.as_str().contains('@') {
            return None;
        }
        let port = authority.port_u16().or(match scheme.as_str() {
            "http" => Some(80),
            "https" => Some(443),
            _ => None,
        });
        Some(Self::Tuple {
            host: normalize_host(authority.host()),
            scheme,
            port,
        })
    }
}

/// An `allowed_origins` entry: an origin, or one with `:*` for any port.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OriginPattern {
    origin: Origin,
    any_port: bool,
}

impl OriginPattern {
    fn parse(entry: &str) -> Result<Self, &'static str> {
        const EXPECTED: &str = "scheme://host, scheme://host:port, scheme://host:* or null";
        let (base, any_port) = match entry.strip_suffix(":*") {
            Some(base) => (base, true),
            None => (entry, false),
        };
        let origin = Origin::parse(base).ok_or(EXPECTED)?;
        let explicit_port = matches!(&origin, Origin::Tuple { .. })
            && Uri::try_from(base)
                .ok()
                .and_then(|uri| uri.port_u16())
                .is_some();
        if any_port && (origin == Origin::Null || explicit_port) {
            return Err(EXPECTED);
        }
        Ok(Self { origin, any_port })
    }

    fn matches(&self, origin: &Origin) -> bool {
        match (&self.origin, origin) {
            (Origin::Null, Origin::Null) => true,
            (
                Origin::Tuple { scheme, host, port },
                Origin::Tuple {
                    scheme: their_scheme,
                    host: their_host,
                    port: their_port,
                },
            ) => {
                scheme == their_scheme
                    && host == their_host
                    && (self.any_port || port == their_port)
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;
    use crate::config::TransportConfig;

    fn guard(hosts: &[&str], origins: &[&str]) -> Guard {
        let owned = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        Guard::new(&owned(hosts), &owned(origins)).expect("valid patterns")
    }

    fn default_guard() -> Guard {
        let config = TransportConfig::default();
        Guard::new(&config.allowed_hosts, &config.allowed_origins).expect("defaults parse")
    }

    fn check(guard: &Guard, host: Option<&str>, origin: Option<&str>) -> Result<(), &'static str> {
        let mut headers = HeaderMap::new();
        if let Some(host) = host {
            headers.insert(header::HOST, HeaderValue::from_str(host).expect("header"));
        }
        if let Some(origin) = origin {
            headers.insert(
                header::ORIGIN,
                HeaderValue::from_str(origin).expect("header"),
            );
        }
        guard
            .check(&Uri::from_static("/mcp"), &headers)
            .map_err(|refusal| refusal.answer().2)
    }

    #[test]
    fn defaults_allow_loopback_names_on_any_port() {
        let guard = default_guard();
        for host in [
            "localhost",
            "localhost:8080",
            "127.0.0.1:1",
            "[::1]:9",
            "LOCALHOST",
            // The fully qualified form of the same name.
            "localhost.",
        ] {
            assert_eq!(check(&guard, Some(host), None), Ok(()), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "127.0.0.2",
            "0.0.0.0",
        ] {
            assert!(check(&guard, Some(host), None).is_err(), "{host}");
        }
        assert_eq!(
            check(&guard, None, None),
            Err("the request has no valid Host header")
        );
    }

    #[test]
    fn defaults_allow_loopback_origins_only() {
        let guard = default_guard();
        for origin in [
            "http://localhost:3000",
            "https://127.0.0.1",
            "http://[::1]:5173",
        ] {
            assert_eq!(
                check(&guard, Some("localhost"), Some(origin)),
                Ok(()),
                "{origin}"
            );
        }
        for origin in [
            "http://evil.example",
            "null",
            "http://localhost.evil.example",
            "garbage",
        ] {
            assert!(
                check(&guard, Some("localhost"), Some(origin)).is_err(),
                "{origin}"
            );
        }
    }

    #[test]
    fn ports_are_exact_when_given() {
        let guard = guard(
            &["mcp.example.com:8443", "::1"],
            &["https://app.example.com"],
        );
        assert_eq!(check(&guard, Some("mcp.example.com:8443"), None), Ok(()));
        assert!(check(&guard, Some("mcp.example.com"), None).is_err());
        assert!(check(&guard, Some("mcp.example.com:8080"), None).is_err());
        assert_eq!(check(&guard, Some("[::1]:1234"), None), Ok(()));
        let host = Some("[::1]");
        assert_eq!(
            check(&guard, host, Some("https://app.example.com:443")),
            Ok(())
        );
        assert_eq!(check(&guard, host, Some("https://APP.example.com")), Ok(()));
        assert!(check(&guard, host, Some("https://app.example.com:8443")).is_err());
        assert!(check(&guard, host, Some("http://app.example.com")).is_err());
    }

    #[test]
    fn a_host_without_port_matches_a_default_port() {
        for pattern in ["mcp.example.com:80", "mcp.example.com:443"] {
            let guard = guard(&[pattern], &[]);
            assert_eq!(check(&guard, Some("mcp.example.com"), None), Ok(()));
            assert_eq!(check(&guard, Some(pattern), None), Ok(()));
            assert!(check(&guard, Some("mcp.example.com:8080"), None).is_err());
        }
    }

    #[test]
    fn star_dot_allows_subdomains_and_final_dots_are_ignored() {
        let guard = guard(&["*.example.com", "mcp.test:8080"], &[]);
        for host in ["a.example.com", "A.B.example.com:9000", "a.example.com."] {
            assert_eq!(check(&guard, Some(host), None), Ok(()), "{host}");
        }
        for host in ["example.com", "evil-example.com", "a.example.com.evil"] {
            assert!(check(&guard, Some(host), None).is_err(), "{host}");
        }
        assert_eq!(check(&guard, Some("mcp.test.:8080"), None), Ok(()));
        assert_eq!(
            check(&default_guard(), Some("localhost.:3000"), None),
            Ok(())
        );
        // A star anywhere else would only ever match itself.
        for bad in ["a.*.com", "*example.com", "*.*.com"] {
            let err = Guard::new(&[bad.to_owned()], &[]).expect_err(bad);
            assert!(err.to_string().contains("*.name"), "{err}");
        }
    }

    #[test]
    fn star_allows_everything() {
        let guard = guard(&["*"], &["*"]);
        assert_eq!(
            check(&guard, Some("anything:1"), Some("http://x.example")),
            Ok(())
        );
        assert_eq!(check(&guard, None, Some("null")), Ok(()));
    }

    #[test]
    fn bad_entries_name_their_key() {
        let err = Guard::new(&["a b".to_owned()], &[]).expect_err("bad host");
        assert!(
            err.to_string()
                .starts_with("transport.allowed_hosts: \"a b\""),
            "{err}"
        );
        for bad in ["localhost", "http://x/path", "http://x:1:*", "null:*"] {
            let err = Guard::new(&[], &[bad.to_owned()]).expect_err(bad);
            assert!(
                err.to_string().starts_with("transport.allowed_origins"),
                "{err}"
            );
        }
    }
}
