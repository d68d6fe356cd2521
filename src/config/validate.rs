//! Checks that need more than one key or a range, run on the merged
//! configuration (file + env + CLI), plus the list of features this build
//! accepts in the file but cannot serve yet.

use std::fmt::Display;
use std::net::IpAddr;
use std::ops::RangeInclusive;

use super::error::ConfigError;
use super::flags::flag_for;
use super::{Config, MAX_CONCURRENT_EXECUTIONS, StorageConfig};
use crate::executor::MIN_HEAP_MB;

/// Heap cap bounds, in MiB: V8 cannot start an isolate in less than a few MiB,
/// and one execution taking more than 4 GiB is almost certainly a mistake.
pub(super) const HEAP_CAP_MB: RangeInclusive<u32> = MIN_HEAP_MB..=4096;
/// Longer executions belong in a batch system, not behind an MCP tool call.
pub(super) const EXECUTION_TIMEOUT_SECS: RangeInclusive<u64> = 1..=300;
pub(super) const MIN_OUTPUT_BYTES: u64 = 1024;
pub(super) const MIN_CODE_BYTES: u64 = 1024;
/// Code travels to a worker in one message, beside the heap it resumes (see
/// `executor::worker::protocol::MAX_FRAME_BYTES`).
pub(super) const MAX_CODE_BYTES: u64 = 64 * 1024 * 1024;
/// A body limit below this could not carry an MCP `initialize`.
pub(super) const MIN_BODY_BYTES: u64 = 1024;
/// A legitimate client sends its headers at once; an hour is far beyond any.
pub(super) const REQUEST_HEADER_TIMEOUT_SECS: RangeInclusive<u64> = 1..=3600;
/// A body that pauses longer than an hour is not coming.
pub(super) const REQUEST_BODY_TIMEOUT_SECS: RangeInclusive<u64> = 1..=3600;
/// Proxies commonly close connections idle for a minute, so a keep-alive
/// period much longer than that defeats its purpose.
pub(super) const SSE_KEEP_ALIVE_SECS: RangeInclusive<u64> = 1..=3600;
/// A week: past that, an idle session is better ended than kept.
pub(super) const SESSION_IDLE_SECS: RangeInclusive<u64> = 1..=604_800;
/// A session costs tens of kilobytes: a million is already gigabytes.
pub(super) const MAX_SESSIONS: RangeInclusive<usize> = 1..=1_000_000;

/// Whether a key is set to something the server would have to act on.
type IsSet = fn(&Config) -> bool;

/// Keys the file format already accepts but this build cannot act on yet.
/// Delete an entry when its feature lands; the server refuses to start while
/// any of these is set rather than silently ignoring it.
const NOT_YET_SUPPORTED: &[(&str, IsSet)] = &[
    ("wasm.modules", |c| !c.wasm.modules.is_empty()),
    ("wasm.config", |c| c.wasm.config.is_some()),
    ("modules.allow_remote_imports", |c| {
        c.modules.allow_remote_imports
    }),
    ("modules.npm_registry", |c| c.modules.npm_registry.is_some()),
    ("modules.jsr_registry", |c| c.modules.jsr_registry.is_some()),
    ("policy.opa_url", |c| c.policy.opa_url.is_some()),
    ("policy.opa_fetch_policy", |c| {
        c.policy.opa_fetch_policy.is_some()
    }),
    ("policy.policies_json", |c| c.policy.policies_json.is_some()),
    ("fetch.headers", |c| !c.fetch.headers.is_empty()),
    ("fetch.header_config", |c| c.fetch.header_config.is_some()),
    ("cluster.port", |c| c.cluster.port.is_some()),
    ("cluster.node_id", |c| c.cluster.node_id.is_some()),
    ("cluster.peers", |c| !c.cluster.peers.is_empty()),
    ("cluster.join", |c| c.cluster.join.is_some()),
    ("cluster.advertise_addr", |c| {
        c.cluster.advertise_addr.is_some()
    }),
    ("telemetry.otlp_endpoint", |c| {
        c.telemetry.otlp_endpoint.is_some()
    }),
];

impl Config {
    /// Checks ranges and cross-key rules; the first problem found is returned.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_server()?;
        self.validate_transport()?;
        self.validate_auth()?;
        self.validate_limits()?;
        self.validate_executions()?;
        self.validate_storage()?;
        self.validate_cluster()?;
        self.validate_paths()?;
        self.validate_combinations()
    }

    /// An empty path would silently mean the current directory (or fail
    /// later, far from the key that caused it).
    fn validate_paths(&self) -> Result<(), ConfigError> {
        let paths = [
            ("server.state_dir", &self.server.state_dir),
            ("auth.tokens_file", &self.auth.tokens_file),
            ("storage.directory_path", &self.storage.directory_path),
            ("storage.cache_dir", &self.storage.cache_dir),
            ("sessions.db_path", &self.sessions.db_path),
            ("policy.policies_json", &self.policy.policies_json),
            ("fetch.header_config", &self.fetch.header_config),
        ];
        match paths.into_iter().find(|(_, path)| {
            path.as_ref()
                .is_some_and(|path| path.as_os_str().is_empty())
        }) {
            Some((key, _)) => Err(ConfigError::Invalid {
                key,
                value: String::new(),
                reason: "a path cannot be empty; leave the key out for its default".to_owned(),
            }),
            None => Ok(()),
        }
    }

    /// Settings that are valid but cannot all take effect, for the log.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let (code, body) = (self.limits.max_code_bytes, self.transport.max_body_bytes);
        if code > body {
            warnings.push(format!(
                "limits.max_code_bytes ({code}) is larger than transport.max_body_bytes ({body}): \
                 code arrives inside a request, so code past the request limit can never be run; \
                 raise transport.max_body_bytes too"
            ));
        }
        warnings
    }

    /// Flags of the features that are set but not implemented in this build,
    /// e.g. `["--wasm-module", "--cluster-port"]`. Empty when the server can
    /// honour the whole configuration.
    pub fn unsupported_features(&self) -> Vec<&'static str> {
        self.unsupported_keys()
            .map(|key| flag_for(key).unwrap_or(key))
            .collect()
    }

    /// Fails with "not yet supported: --cluster-port (cluster.port), …"
    /// when [`Self::unsupported_features`] is not empty. The server calls this
    /// before starting, and so does `mcp-v8 config check`.
    pub fn ensure_supported(&self) -> Result<(), ConfigError> {
        let unsupported: Vec<String> = self
            .unsupported_keys()
            .map(|key| match flag_for(key) {
                Some(flag) => format!("{flag} ({key})"),
                None => key.to_owned(),
            })
            .collect();
        if unsupported.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Unsupported(unsupported))
        }
    }

    fn unsupported_keys(&self) -> impl Iterator<Item = &'static str> + '_ {
        NOT_YET_SUPPORTED
            .iter()
            .filter(|(_, is_set)| is_set(self))
            .map(|(key, _)| *key)
    }

    fn validate_server(&self) -> Result<(), ConfigError> {
        let level = &self.server.log_level;
        tracing_subscriber::EnvFilter::try_new(level)
            .map(drop)
            .map_err(|err| ConfigError::Invalid {
                key: "server.log_level",
                value: level.clone(),
                reason: err.to_string(),
            })
    }

    /// The Host/Origin entries themselves are parsed (and refused with their
    /// key) when the HTTP server starts.
    fn validate_transport(&self) -> Result<(), ConfigError> {
        let transport = &self.transport;
        if let Err(err) = transport.bind.parse::<IpAddr>() {
            return Err(ConfigError::Invalid {
                key: "transport.bind",
                value: transport.bind.clone(),
                reason: format!("{err}; expected an IP address such as 127.0.0.1, 0.0.0.0 or ::"),
            });
        }
        for (key, list) in [
            ("transport.allowed_hosts", &transport.allowed_hosts),
            ("transport.allowed_origins", &transport.allowed_origins),
        ] {
            if list.is_empty() {
                return Err(ConfigError::Invalid {
                    key,
                    value: "[]".to_owned(),
                    reason: "an empty list refuses every request; use [\"*\"] to allow all"
                        .to_owned(),
                });
            }
        }
        at_least(
            "transport.max_body_bytes",
            as_u64(transport.max_body_bytes),
            MIN_BODY_BYTES,
        )?;
        in_range(
            "transport.request_header_timeout_secs",
            transport.request_header_timeout_secs,
            REQUEST_HEADER_TIMEOUT_SECS,
            None,
        )?;
        in_range(
            "transport.request_body_timeout_secs",
            transport.request_body_timeout_secs,
            REQUEST_BODY_TIMEOUT_SECS,
            None,
        )?;
        in_range(
            "transport.sse_keep_alive_secs",
            transport.sse_keep_alive_secs,
            SSE_KEEP_ALIVE_SECS,
            None,
        )?;
        in_range(
            "transport.session_idle_secs",
            transport.session_idle_secs,
            SESSION_IDLE_SECS,
            None,
        )?;
        in_range(
            "transport.max_sessions",
            transport.max_sessions,
            MAX_SESSIONS,
            None,
        )
    }

    /// JWT checks need all three of jwks_url, issuer and audience; the other
    /// JWT keys mean nothing without them.
    fn validate_auth(&self) -> Result<(), ConfigError> {
        let auth = &self.auth;
        if let Some(token) = auth
            .tokens
            .iter()
            .find(|token| token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(ConfigError::Invalid {
                key: "auth.tokens",
                value: "<redacted>".to_owned(),
                reason: format!(
                    "a token of {} bytes is empty or holds characters other than visible ASCII",
                    token.len()
                ),
            });
        }
        let Some(url) = &auth.jwks_url else {
            let jwt_only = [
                ("auth.issuer", auth.issuer.is_some()),
                ("auth.audience", auth.audience.is_some()),
                (
                    "auth.authorization_servers",
                    !auth.authorization_servers.is_empty(),
                ),
                ("auth.resource", auth.resource.is_some()),
            ];
            return match jwt_only.into_iter().find(|(_, set)| *set) {
                Some((key, _)) => Err(ConfigError::Requires {
                    key,
                    required: "auth.jwks_url",
                    reason: "it only applies to JWT authentication",
                }),
                None => Ok(()),
            };
        };
        let parsed = reqwest::Url::parse(url).map_err(|err| err.to_string());
        if let Err(reason) = parsed.and_then(|url| match url.scheme() {
            "http" | "https" if url.has_host() => Ok(()),
            _ => Err("expected an http:// or https:// URL".to_owned()),
        }) {
            return Err(ConfigError::Invalid {
                key: "auth.jwks_url",
                value: url.clone(),
                reason,
            });
        }
        for (key, set) in [
            ("auth.issuer", auth.issuer.is_some()),
            ("auth.audience", auth.audience.is_some()),
        ] {
            if !set {
                return Err(ConfigError::Requires {
                    key: "auth.jwks_url",
                    required: key,
                    reason: "a JWT is only accepted when its iss and aud claims are checked",
                });
            }
        }
        Ok(())
    }

    fn validate_limits(&self) -> Result<(), ConfigError> {
        let limits = &self.limits;
        in_range(
            "limits.heap_memory_cap_mb",
            limits.heap_memory_cap_mb,
            HEAP_CAP_MB,
            None,
        )?;
        let heap_hint = (limits.heap_memory_max_mb > limits.heap_memory_cap_mb)
            .then_some("raise limits.heap_memory_cap_mb to allow more");
        in_range(
            "limits.heap_memory_max_mb",
            limits.heap_memory_max_mb,
            MIN_HEAP_MB..=limits.heap_memory_cap_mb,
            heap_hint,
        )?;
        in_range(
            "limits.execution_timeout_secs",
            limits.execution_timeout_secs,
            EXECUTION_TIMEOUT_SECS,
            None,
        )?;
        in_range(
            "limits.max_concurrent_executions",
            limits.max_concurrent_executions,
            1..=MAX_CONCURRENT_EXECUTIONS,
            None,
        )?;
        // max_queued_executions: any value works, 0 disables the queue.
        at_least(
            "limits.max_output_bytes",
            limits.max_output_bytes,
            MIN_OUTPUT_BYTES,
        )?;
        at_least(
            "limits.max_code_bytes",
            as_u64(limits.max_code_bytes),
            MIN_CODE_BYTES,
        )?;
        in_range(
            "limits.max_code_bytes",
            as_u64(limits.max_code_bytes),
            MIN_CODE_BYTES..=MAX_CODE_BYTES,
            None,
        )
    }

    fn validate_executions(&self) -> Result<(), ConfigError> {
        at_least(
            "executions.retain_count",
            as_u64(self.executions.retain_count),
            1,
        )?;
        // 0 would delete a record as soon as its execution finished, before
        // its caller could read it.
        match self.executions.retain_max_age_secs {
            Some(secs) => at_least("executions.retain_max_age_secs", secs, 1),
            None => Ok(()),
        }
    }

    /// A half-configured S3 store stops the server at start-up instead of
    /// failing every execution that needs a heap later.
    fn validate_storage(&self) -> Result<(), ConfigError> {
        let storage = &self.storage;
        at_least("storage.cache_max_mb", storage.cache_max_mb, 1)?;
        let Some(bucket) = &storage.s3_bucket else {
            let s3_only = [
                ("storage.s3_prefix", storage.s3_prefix.is_some()),
                ("storage.s3_region", storage.s3_region.is_some()),
                ("storage.s3_endpoint", storage.s3_endpoint.is_some()),
                ("storage.s3_force_path_style", storage.s3_force_path_style),
            ];
            return match s3_only.into_iter().find(|(_, set)| *set) {
                Some((key, _)) => Err(ConfigError::Requires {
                    key,
                    required: "storage.s3_bucket",
                    reason: "it only applies to the S3 store",
                }),
                None => Ok(()),
            };
        };
        if bucket.trim().is_empty() {
            return Err(ConfigError::Invalid {
                key: "storage.s3_bucket",
                value: bucket.clone(),
                reason: "a bucket name cannot be empty".to_owned(),
            });
        }
        if storage.directory_path.is_some() {
            return Err(ConfigError::Conflict {
                key: "storage.s3_bucket",
                other: "storage.directory_path",
                reason: "heap snapshots are kept in one store",
            });
        }
        if let Some(endpoint) = &storage.s3_endpoint {
            let is_http_url = reqwest::Url::parse(endpoint)
                .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.has_host());
            if !is_http_url {
                return Err(ConfigError::Invalid {
                    key: "storage.s3_endpoint",
                    value: endpoint.clone(),
                    reason: "expected an http:// or https:// URL".to_owned(),
                });
            }
        }
        Ok(())
    }

    /// Raft only works if a healthy leader's heartbeat always arrives before a
    /// follower's election timer can fire.
    fn validate_cluster(&self) -> Result<(), ConfigError> {
        let cluster = &self.cluster;
        if cluster.heartbeat_interval_ms >= cluster.election_timeout_min_ms {
            return Err(ConfigError::Order {
                lower_key: "cluster.heartbeat_interval_ms",
                lower: cluster.heartbeat_interval_ms,
                relation: "less than",
                upper_key: "cluster.election_timeout_min_ms",
                upper: cluster.election_timeout_min_ms,
                reason: "followers would start elections against a healthy leader",
            });
        }
        if cluster.election_timeout_min_ms > cluster.election_timeout_max_ms {
            return Err(ConfigError::Order {
                lower_key: "cluster.election_timeout_min_ms",
                lower: cluster.election_timeout_min_ms,
                relation: "at most",
                upper_key: "cluster.election_timeout_max_ms",
                upper: cluster.election_timeout_max_ms,
                reason: "they bound the randomized election timeout",
            });
        }
        Ok(())
    }

    fn validate_combinations(&self) -> Result<(), ConfigError> {
        let storage = &self.storage;
        if storage.stateless {
            let persistent = [
                ("storage.s3_bucket", storage.s3_bucket.is_some()),
                ("storage.directory_path", storage.directory_path.is_some()),
                ("storage.cache_dir", storage.cache_dir.is_some()),
                ("sessions.db_path", self.sessions.db_path.is_some()),
            ];
            if let Some((other, _)) = persistent.into_iter().find(|(_, set)| *set) {
                return Err(ConfigError::Conflict {
                    key: "storage.stateless",
                    other,
                    reason: "stateless mode keeps no heap snapshots or sessions",
                });
            }
        }
        if self.transport.http_port.is_some() && self.transport.sse_port.is_some() {
            return Err(ConfigError::Conflict {
                key: "transport.http_port",
                other: "transport.sse_port",
                reason: "the server speaks one MCP transport at a time",
            });
        }
        if storage.cache_dir.as_deref() == Some(self.state_dir().as_path()) {
            return Err(ConfigError::Conflict {
                key: "storage.cache_dir",
                other: "server.state_dir",
                reason: "each directory is held by its own lock; give the cache a directory of its own",
            });
        }
        if storage.cache_dir.is_none()
            && storage.cache_max_mb != StorageConfig::default().cache_max_mb
        {
            return Err(ConfigError::Requires {
                key: "storage.cache_max_mb",
                required: "storage.cache_dir",
                reason: "it bounds the cache, and there is none",
            });
        }
        if storage.cache_dir.is_some() && storage.s3_bucket.is_none() {
            return Err(ConfigError::Requires {
                key: "storage.cache_dir",
                required: "storage.s3_bucket",
                reason: "the cache only holds snapshots fetched from S3",
            });
        }
        Ok(())
    }
}

fn in_range<T: PartialOrd + Display>(
    key: &'static str,
    value: T,
    range: RangeInclusive<T>,
    hint: Option<&'static str>,
) -> Result<(), ConfigError> {
    if range.contains(&value) {
        return Ok(());
    }
    Err(ConfigError::OutOfRange {
        key,
        value: value.to_string(),
        range: format!("{}..={}", range.start(), range.end()),
        hint,
    })
}

fn at_least(key: &'static str, value: u64, min: u64) -> Result<(), ConfigError> {
    if value >= min {
        Ok(())
    } else {
        Err(ConfigError::TooSmall { key, value, min })
    }
}

/// usize fits in u64 on every target Rust supports; saturate rather than panic.
fn as_u64(value: usize) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::WasmModule;

    fn error_of(edit: impl FnOnce(&mut Config)) -> String {
        let mut config = Config::default();
        edit(&mut config);
        match config.validate() {
            Ok(()) => panic!("expected a validation error for {config:?}"),
            Err(err) => err.to_string(),
        }
    }

    #[test]
    fn heap_max_above_cap_suggests_raising_cap() {
        let message = error_of(|c| c.limits.heap_memory_max_mb = 100);
        assert_eq!(
            message,
            "limits.heap_memory_max_mb = 100 is outside 4..=64; \
             raise limits.heap_memory_cap_mb to allow more"
        );
    }

    #[test]
    fn heap_max_within_raised_cap_is_fine() {
        let mut config = Config::default();
        config.limits.heap_memory_cap_mb = 128;
        config.limits.heap_memory_max_mb = 100;
        assert!(config.validate().is_ok());
    }

    fn assert_rejected(edit: impl FnOnce(&mut Config), expected: &str) {
        let message = error_of(edit);
        assert!(
            message.starts_with(expected),
            "{message:?} should start with {expected:?}"
        );
    }

    #[test]
    fn range_errors_name_the_key() {
        assert_rejected(
            |c| c.limits.heap_memory_max_mb = 3,
            "limits.heap_memory_max_mb = 3 is outside 4..=64",
        );
        assert_rejected(
            |c| c.limits.heap_memory_cap_mb = 2,
            "limits.heap_memory_cap_mb = 2 is outside 4..=4096",
        );
        assert_rejected(
            |c| c.limits.heap_memory_cap_mb = 5000,
            "limits.heap_memory_cap_mb = 5000 is outside 4..=4096",
        );
        assert_rejected(
            |c| c.limits.execution_timeout_secs = 0,
            "limits.execution_timeout_secs = 0 is outside 1..=300",
        );
        assert_rejected(
            |c| c.limits.execution_timeout_secs = 301,
            "limits.execution_timeout_secs = 301 is outside 1..=300",
        );
        assert_rejected(
            |c| c.limits.max_concurrent_executions = 257,
            "limits.max_concurrent_executions = 257 is outside 1..=256",
        );
        assert_rejected(
            |c| c.limits.max_output_bytes = 1023,
            "limits.max_output_bytes = 1023 is below the minimum of 1024",
        );
        assert_rejected(
            |c| c.limits.max_code_bytes = 10,
            "limits.max_code_bytes = 10 is below the minimum of 1024",
        );
        assert_rejected(
            |c| c.limits.max_code_bytes = 64 * 1024 * 1024 + 1,
            "limits.max_code_bytes = 67108865 is outside 1024..=67108864",
        );
        assert_rejected(
            |c| c.executions.retain_count = 0,
            "executions.retain_count = 0 is below the minimum of 1",
        );
    }

    #[test]
    fn zero_queue_is_allowed() {
        let mut config = Config::default();
        config.limits.max_queued_executions = 0;
        assert!(config.validate().is_ok());
    }

    #[test]
    fn cluster_timing_must_be_ordered() {
        let message = error_of(|c| c.cluster.heartbeat_interval_ms = 300);
        assert!(message.starts_with("cluster.heartbeat_interval_ms = 300 must be less than cluster.election_timeout_min_ms = 300"), "{message}");
        let message = error_of(|c| c.cluster.election_timeout_min_ms = 700);
        assert!(message.starts_with("cluster.election_timeout_min_ms = 700 must be at most cluster.election_timeout_max_ms = 600"), "{message}");
        let mut config = Config::default();
        config.cluster.election_timeout_max_ms = 300;
        assert!(config.validate().is_ok(), "min == max is allowed");
    }

    #[test]
    fn invalid_log_filter_is_rejected() {
        let message = error_of(|c| c.server.log_level = "mcp_v8=loud".to_owned());
        assert!(
            message.starts_with("server.log_level = \"mcp_v8=loud\" is invalid"),
            "{message}"
        );
        let mut config = Config::default();
        config.server.log_level = "warn,mcp_v8::executor=debug".to_owned();
        assert!(config.validate().is_ok());
    }

    #[test]
    fn code_larger_than_a_request_is_warned_about() {
        let mut config = Config::default();
        assert_eq!(config.warnings(), Vec::<String>::new());
        config.limits.max_code_bytes = config.transport.max_body_bytes + 1;
        assert!(config.validate().is_ok());
        let warnings = config.warnings();
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].starts_with("limits.max_code_bytes ("),
            "{warnings:?}"
        );
    }

    #[test]
    fn empty_paths_are_refused_with_their_key() {
        assert_rejected(
            |c| c.server.state_dir = Some(PathBuf::new()),
            "server.state_dir = \"\" is invalid: a path cannot be empty",
        );
        assert_rejected(
            |c| c.sessions.db_path = Some(PathBuf::new()),
            "sessions.db_path = \"\" is invalid",
        );
        assert_rejected(
            |c| c.storage.directory_path = Some(PathBuf::new()),
            "storage.directory_path = \"\" is invalid",
        );
    }

    #[test]
    fn stateless_conflicts_with_persistence() {
        let stateless_with: [fn(&mut Config); 4] = [
            |c| c.storage.s3_bucket = Some("bucket".to_owned()),
            |c| c.storage.directory_path = Some(PathBuf::from("/heaps")),
            |c| c.storage.cache_dir = Some(PathBuf::from("/cache")),
            |c| c.sessions.db_path = Some(PathBuf::from("/sessions")),
        ];
        for edit in stateless_with {
            let message = error_of(|c| {
                c.storage.stateless = true;
                edit(c);
            });
            assert!(
                message.starts_with("storage.stateless cannot be combined with "),
                "{message}"
            );
        }
    }

    #[test]
    fn storage_keys_are_checked_together() {
        let s3 = |c: &mut Config| c.storage.s3_bucket = Some("heaps".to_owned());
        assert_rejected(
            |c| c.storage.s3_endpoint = Some("http://127.0.0.1:9000".to_owned()),
            "storage.s3_endpoint requires storage.s3_bucket",
        );
        assert_rejected(
            |c| {
                s3(c);
                c.storage.directory_path = Some(PathBuf::from("/heaps"));
            },
            "storage.s3_bucket cannot be combined with storage.directory_path",
        );
        assert_rejected(
            |c| {
                s3(c);
                c.storage.s3_endpoint = Some("127.0.0.1:9000".to_owned());
            },
            "storage.s3_endpoint = \"127.0.0.1:9000\" is invalid: expected an http:// or https:// URL",
        );
        assert_rejected(
            |c| c.storage.s3_bucket = Some(" ".to_owned()),
            "storage.s3_bucket = \" \" is invalid: a bucket name cannot be empty",
        );
        assert_rejected(
            |c| c.storage.cache_max_mb = 0,
            "storage.cache_max_mb = 0 is below the minimum of 1",
        );
        let mut config = Config::default();
        s3(&mut config);
        config.storage.s3_endpoint = Some("https://s3.example.com".to_owned());
        config.storage.s3_force_path_style = true;
        config.storage.s3_prefix = Some("heaps/".to_owned());
        assert!(config.validate().is_ok());
        assert!(config.unsupported_features().is_empty());
    }

    #[test]
    fn http_and_sse_conflict() {
        let message = error_of(|c| {
            c.transport.http_port = Some(8080);
            c.transport.sse_port = Some(8081);
        });
        assert!(
            message.starts_with("transport.http_port cannot be combined with transport.sse_port"),
            "{message}"
        );
    }

    #[test]
    fn transport_keys_are_checked() {
        assert_rejected(
            |c| c.transport.bind = "localhost".to_owned(),
            "transport.bind = \"localhost\" is invalid: ",
        );
        assert_rejected(
            |c| c.transport.allowed_hosts.clear(),
            "transport.allowed_hosts = \"[]\" is invalid: an empty list refuses every request",
        );
        assert_rejected(
            |c| c.transport.max_body_bytes = 100,
            "transport.max_body_bytes = 100 is below the minimum of 1024",
        );
        assert_rejected(
            |c| c.transport.sse_keep_alive_secs = 0,
            "transport.sse_keep_alive_secs = 0 is outside 1..=3600",
        );
        assert_rejected(
            |c| c.transport.session_idle_secs = 0,
            "transport.session_idle_secs = 0 is outside 1..=604800",
        );
        assert_rejected(
            |c| c.transport.max_sessions = 0,
            "transport.max_sessions = 0 is outside 1..=1000000",
        );
        let mut config = Config::default();
        config.transport.bind = "::".to_owned();
        config.transport.http_port = Some(0);
        assert!(config.validate().is_ok());
        assert!(config.ensure_supported().is_ok());
    }

    #[test]
    fn jwt_auth_needs_url_issuer_and_audience() {
        let jwks = |c: &mut Config| c.auth.jwks_url = Some("https://a.example/jwks".to_owned());
        assert_rejected(
            |c| c.auth.issuer = Some("https://a.example/".to_owned()),
            "auth.issuer requires auth.jwks_url",
        );
        assert_rejected(jwks, "auth.jwks_url requires auth.issuer");
        assert_rejected(
            |c| {
                jwks(c);
                c.auth.issuer = Some("i".to_owned());
            },
            "auth.jwks_url requires auth.audience",
        );
        assert_rejected(
            |c| c.auth.jwks_url = Some("file:///jwks".to_owned()),
            "auth.jwks_url = \"file:///jwks\" is invalid",
        );
        let message = error_of(|c| c.auth.tokens = vec!["ok".to_owned(), "sec ret".to_owned()]);
        assert!(
            message.starts_with("auth.tokens = \"<redacted>\""),
            "{message}"
        );
        assert!(!message.contains("sec ret"), "{message}");
        let mut config = Config::default();
        jwks(&mut config);
        config.auth.issuer = Some("i".to_owned());
        config.auth.audience = Some("a".to_owned());
        config.auth.tokens = vec!["t0k3n".to_owned()];
        assert!(config.validate().is_ok());
    }

    #[test]
    fn the_cache_is_not_the_state_directory() {
        let message = error_of(|c| {
            c.server.state_dir = Some(PathBuf::from("/srv/mcp"));
            c.storage.s3_bucket = Some("bucket".to_owned());
            c.storage.cache_dir = Some(PathBuf::from("/srv/mcp"));
        });
        assert!(
            message.contains("storage.cache_dir") && message.contains("server.state_dir"),
            "{message}"
        );
    }

    #[test]
    fn path_style_requires_s3_bucket() {
        let message = error_of(|c| c.storage.s3_force_path_style = true);
        assert!(
            message.starts_with("storage.s3_force_path_style requires storage.s3_bucket"),
            "{message}"
        );
    }

    #[test]
    fn cache_size_requires_a_cache() {
        let message = error_of(|c| c.storage.cache_max_mb = 64);
        assert!(
            message.starts_with("storage.cache_max_mb requires storage.cache_dir"),
            "{message}"
        );
    }

    #[test]
    fn cache_dir_requires_s3_bucket() {
        let message = error_of(|c| c.storage.cache_dir = Some(PathBuf::from("/cache")));
        assert!(
            message.starts_with("storage.cache_dir requires storage.s3_bucket"),
            "{message}"
        );
        let mut config = Config::default();
        config.storage.cache_dir = Some(PathBuf::from("/cache"));
        config.storage.s3_bucket = Some("bucket".to_owned());
        assert!(config.validate().is_ok());
    }

    #[test]
    fn unsupported_features_lists_flags() {
        let mut config = Config::default();
        config.cluster.port = Some(4000);
        config.wasm.modules.push(WasmModule {
            name: "m".to_owned(),
            path: PathBuf::from("m.wasm"),
        });
        assert_eq!(
            config.unsupported_features(),
            ["--wasm-module", "--cluster-port"]
        );
        let message = config
            .ensure_supported()
            .expect_err("unsupported")
            .to_string();
        assert_eq!(
            message,
            "not yet supported: --wasm-module (wasm.modules), --cluster-port (cluster.port)"
        );
    }

    #[test]
    fn unsupported_keys_all_have_flags() {
        for (key, _) in NOT_YET_SUPPORTED {
            assert!(flag_for(key).is_some(), "{key} has no flag");
        }
    }

    #[test]
    fn defaults_are_supported() {
        assert_eq!(Config::default().ensure_supported().ok(), Some(()));
    }
}
