//! Checks that need more than one key or a range, run on the merged
//! configuration (file + env + CLI), plus the list of features this build
//! accepts in the file but cannot serve yet.

use std::fmt::Display;
use std::ops::RangeInclusive;

use super::error::ConfigError;
use super::flags::flag_for;
use super::{Config, MAX_CONCURRENT_EXECUTIONS};

/// Heap cap bounds, in MiB: V8 cannot start an isolate in less than a few MiB,
/// and one execution taking more than 4 GiB is almost certainly a mistake.
const HEAP_CAP_MB: RangeInclusive<u32> = 4..=4096;
/// Longer executions belong in a batch system, not behind an MCP tool call.
const EXECUTION_TIMEOUT_SECS: RangeInclusive<u64> = 1..=300;
const MIN_OUTPUT_BYTES: u64 = 1024;
const MIN_CODE_BYTES: u64 = 1024;

/// Whether a key is set to something the server would have to act on.
type IsSet = fn(&Config) -> bool;

/// Keys the file format already accepts but this build cannot act on yet.
/// Delete an entry when its feature lands; the server refuses to start while
/// any of these is set rather than silently ignoring it.
const NOT_YET_SUPPORTED: &[(&str, IsSet)] = &[
    ("transport.http_port", |c| c.transport.http_port.is_some()),
    ("transport.sse_port", |c| c.transport.sse_port.is_some()),
    ("storage.stateless", |c| c.storage.stateless),
    ("storage.directory_path", |c| {
        c.storage.directory_path.is_some()
    }),
    ("storage.s3_bucket", |c| c.storage.s3_bucket.is_some()),
    ("storage.s3_prefix", |c| c.storage.s3_prefix.is_some()),
    ("storage.s3_region", |c| c.storage.s3_region.is_some()),
    ("storage.s3_endpoint", |c| c.storage.s3_endpoint.is_some()),
    ("storage.s3_force_path_style", |c| {
        c.storage.s3_force_path_style
    }),
    ("storage.cache_dir", |c| c.storage.cache_dir.is_some()),
    ("storage.cache_max_mb", |c| c.storage.cache_max_mb.is_some()),
    ("sessions.db_path", |c| c.sessions.db_path.is_some()),
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
        self.validate_limits()?;
        self.validate_executions()?;
        self.validate_cluster()?;
        self.validate_combinations()
    }

    /// Flags of the features that are set but not implemented in this build,
    /// e.g. `["--http-port", "--wasm-module"]`. Empty when the server can
    /// honour the whole configuration.
    pub fn unsupported_features(&self) -> Vec<&'static str> {
        self.unsupported_keys()
            .map(|key| flag_for(key).unwrap_or(key))
            .collect()
    }

    /// Fails with "not yet supported: --http-port (transport.http_port), …"
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
            1..=limits.heap_memory_cap_mb,
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
        )
    }

    fn validate_executions(&self) -> Result<(), ConfigError> {
        at_least(
            "executions.retain_count",
            as_u64(self.executions.retain_count),
            1,
        )
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
            ];
            if let Some((other, _)) = persistent.into_iter().find(|(_, set)| *set) {
                return Err(ConfigError::Conflict {
                    key: "storage.stateless",
                    other,
                    reason: "stateless mode never persists heap snapshots",
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
            "limits.heap_memory_max_mb = 100 is outside 1..=64; \
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
            |c| c.limits.heap_memory_max_mb = 0,
            "limits.heap_memory_max_mb = 0 is outside 1..=64",
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
    fn stateless_conflicts_with_persistence() {
        let stateless_with: [fn(&mut Config); 3] = [
            |c| c.storage.s3_bucket = Some("bucket".to_owned()),
            |c| c.storage.directory_path = Some(PathBuf::from("/heaps")),
            |c| c.storage.cache_dir = Some(PathBuf::from("/cache")),
        ];
        for edit in stateless_with {
            let message = error_of(|c| {
                c.storage.stateless = true;
                edit(c);
            });
            assert!(
                message.starts_with("storage.stateless cannot be combined with storage."),
                "{message}"
            );
        }
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
        config.transport.http_port = Some(8080);
        config.wasm.modules.push(WasmModule {
            name: "m".to_owned(),
            path: PathBuf::from("m.wasm"),
        });
        assert_eq!(
            config.unsupported_features(),
            ["--http-port", "--wasm-module"]
        );
        let message = config
            .ensure_supported()
            .expect_err("unsupported")
            .to_string();
        assert_eq!(
            message,
            "not yet supported: --http-port (transport.http_port), --wasm-module (wasm.modules)"
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
