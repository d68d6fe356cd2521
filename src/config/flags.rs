//! The command-line and environment spelling of every config key.
//!
//! Flags keep the names operators already use (`--heap-memory-max`,
//! `--session-db-path`, ...), so they cannot be derived from the keys. This
//! table is the one place that pairs them; `cli.rs` tests check that clap
//! defines exactly these flags with exactly these environment variables, and
//! the tests below check that it covers every key.

/// `(config key, command-line flag)` for every key, in file order.
pub const FLAGS: &[(&str, &str)] = &[
    ("server.state_dir", "--state-dir"),
    ("server.log_level", "--log-level"),
    ("transport.http_port", "--http-port"),
    ("transport.sse_port", "--sse-port"),
    ("transport.bind", "--bind"),
    ("transport.allowed_hosts", "--allowed-hosts"),
    ("transport.allowed_origins", "--allowed-origins"),
    ("transport.max_body_bytes", "--max-body-bytes"),
    (
        "transport.request_header_timeout_secs",
        "--request-header-timeout-secs",
    ),
    (
        "transport.request_body_timeout_secs",
        "--request-body-timeout-secs",
    ),
    ("transport.sse_keep_alive_secs", "--sse-keep-alive-secs"),
    ("transport.session_idle_secs", "--session-idle-secs"),
    ("transport.max_sessions", "--max-sessions"),
    ("auth.tokens", "--auth-tokens"),
    ("auth.tokens_file", "--auth-tokens-file"),
    ("auth.jwks_url", "--auth-jwks-url"),
    ("auth.issuer", "--auth-issuer"),
    ("auth.audience", "--auth-audience"),
    ("auth.authorization_servers", "--auth-authorization-servers"),
    ("auth.resource", "--auth-resource"),
    ("limits.heap_memory_max_mb", "--heap-memory-max"),
    ("limits.heap_memory_cap_mb", "--heap-memory-cap"),
    ("limits.execution_timeout_secs", "--execution-timeout"),
    (
        "limits.max_concurrent_executions",
        "--max-concurrent-executions",
    ),
    ("limits.max_queued_executions", "--max-queued-executions"),
    ("limits.max_output_bytes", "--max-output-bytes"),
    ("limits.max_code_bytes", "--max-code-bytes"),
    ("executions.retain_count", "--retain-executions"),
    ("executions.retain_max_age_secs", "--retain-max-age-secs"),
    ("storage.stateless", "--stateless"),
    ("storage.directory_path", "--directory-path"),
    ("storage.s3_bucket", "--s3-bucket"),
    ("storage.s3_prefix", "--s3-prefix"),
    ("storage.s3_region", "--s3-region"),
    ("storage.s3_endpoint", "--s3-endpoint"),
    ("storage.s3_force_path_style", "--s3-force-path-style"),
    ("storage.cache_dir", "--cache-dir"),
    ("storage.cache_max_mb", "--cache-max-mb"),
    ("sessions.db_path", "--session-db-path"),
    ("wasm.modules", "--wasm-module"),
    ("wasm.config", "--wasm-config"),
    ("modules.allow_remote_imports", "--allow-remote-imports"),
    ("modules.npm_registry", "--npm-registry"),
    ("modules.jsr_registry", "--jsr-registry"),
    ("policy.opa_url", "--opa-url"),
    ("policy.opa_fetch_policy", "--opa-fetch-policy"),
    ("policy.policies_json", "--policies-json"),
    ("fetch.headers", "--fetch-header"),
    ("fetch.header_config", "--fetch-header-config"),
    ("cluster.port", "--cluster-port"),
    ("cluster.node_id", "--node-id"),
    ("cluster.peers", "--peers"),
    ("cluster.join", "--join"),
    ("cluster.advertise_addr", "--advertise-addr"),
    ("cluster.heartbeat_interval_ms", "--heartbeat-interval"),
    ("cluster.election_timeout_min_ms", "--election-timeout-min"),
    ("cluster.election_timeout_max_ms", "--election-timeout-max"),
    ("telemetry.otlp_endpoint", "--otlp-endpoint"),
    ("telemetry.service_name", "--service-name"),
];

/// The flag for a config key (`limits.heap_memory_max_mb` → `--heap-memory-max`).
pub fn flag_for(key: &str) -> Option<&'static str> {
    FLAGS
        .iter()
        .find(|(candidate, _)| *candidate == key)
        .map(|(_, flag)| *flag)
}

/// The environment variable for a flag: `MCP_V8_` + the flag upper-snake-cased
/// (`--heap-memory-max` → `MCP_V8_HEAP_MEMORY_MAX`).
pub fn env_var_for(flag: &str) -> String {
    let name = flag.trim_start_matches('-').replace('-', "_");
    format!("MCP_V8_{}", name.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::config::render::schema_keys;

    #[test]
    fn every_key_has_exactly_one_flag() {
        let table: BTreeSet<&str> = FLAGS.iter().map(|(key, _)| *key).collect();
        assert_eq!(table.len(), FLAGS.len(), "duplicate key in FLAGS");
        let schema: BTreeSet<String> = schema_keys().into_iter().collect();
        let table: BTreeSet<String> = table.into_iter().map(str::to_owned).collect();
        assert_eq!(table, schema);
    }

    #[test]
    fn flags_are_unique_and_well_formed() {
        let flags: BTreeSet<&str> = FLAGS.iter().map(|(_, flag)| *flag).collect();
        assert_eq!(flags.len(), FLAGS.len(), "duplicate flag in FLAGS");
        for flag in flags {
            let name = flag.strip_prefix("--").expect("flags start with --");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{flag}"
            );
        }
    }

    #[test]
    fn env_names_follow_the_flag() {
        assert_eq!(env_var_for("--heap-memory-max"), "MCP_V8_HEAP_MEMORY_MAX");
        assert_eq!(env_var_for("--s3-bucket"), "MCP_V8_S3_BUCKET");
        assert_eq!(flag_for("sessions.db_path"), Some("--session-db-path"));
        assert_eq!(flag_for("nope"), None);
    }
}
