//! The one typed configuration every layer is built from.
//!
//! The same settings arrive three ways: a TOML file (`--config FILE`), `MCP_V8_*`
//! environment variables and command-line flags (see [`crate::cli`]). Precedence
//! is CLI > env > file > the defaults below. Keeping a single [`Config`] type
//! means the file format, the JSON Schema (`mcp-v8 config schema`) and the
//! commented default file (`mcp-v8 config default`) can never drift apart: all
//! three are derived from these structs and their doc comments.
//!
//! Every section is `deny_unknown_fields`, so a typo fails at startup with the
//! key and its line:column instead of being silently ignored.

mod error;
mod file;
mod flags;
mod render;
mod validate;

use std::ffi::OsString;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use error::{ConfigError, ParseError, Position};
pub use file::{check_file, load_file, parse_toml, position_of_key};
pub use flags::{FLAGS, env_var_for, flag_for};
pub use render::{default_toml, json_schema};

/// Upper bound for `limits.max_concurrent_executions`; also caps the CPU-count default
/// so that the defaults stay valid on very large machines.
pub const MAX_CONCURRENT_EXECUTIONS: usize = 256;

/// The complete mcp-v8 configuration.
///
/// Every key can also be given as a command-line flag or an `MCP_V8_*`
/// environment variable; precedence is CLI > env > file > defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
#[schemars(title = "mcp-v8 configuration")]
pub struct Config {
    /// Process-wide settings: where state lives and how much is logged.
    pub server: ServerConfig,
    /// How MCP clients reach the server. With no port set, MCP is spoken over
    /// stdin/stdout, which is what local MCP clients expect.
    pub transport: TransportConfig,
    /// Authentication of HTTP/SSE requests, off unless tokens, tokens_file or
    /// jwks_url is set. /healthz, /readyz and /openapi.json stay open.
    pub auth: AuthConfig,
    /// Resource limits that protect the host from the code it runs.
    /// Executions may ask for their own heap and timeout; these keys set the
    /// defaults and the ceilings.
    pub limits: LimitsConfig,
    /// How long finished execution records are kept.
    pub executions: ExecutionsConfig,
    /// Where heap snapshots are persisted.
    pub storage: StorageConfig,
    /// Persistent session bookkeeping.
    pub sessions: SessionsConfig,
    /// WebAssembly modules made available to JavaScript.
    pub wasm: WasmConfig,
    /// Resolution of npm:, jsr: and URL imports.
    pub modules: ModulesConfig,
    /// Authorization policies (Open Policy Agent).
    pub policy: PolicyConfig,
    /// Outbound `fetch()` from JavaScript.
    pub fetch: FetchConfig,
    /// Running several servers as one replicated cluster.
    pub cluster: ClusterConfig,
    /// Exporting traces and metrics.
    pub telemetry: TelemetryConfig,
}

/// `[server]`: process-wide settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Directory for execution records and output logs. When unset it is
    /// resolved at startup: $STATE_DIRECTORY (set by systemd), else
    /// $XDG_STATE_HOME/mcp-v8, else $HOME/.local/state/mcp-v8, else
    /// /var/lib/mcp-v8.
    #[schemars(example = "/var/lib/mcp-v8")]
    pub state_dir: Option<PathBuf>,
    /// Log filter, in tracing's EnvFilter syntax (for example
    /// "info,mcp_v8::executor=debug"). Logs go to stderr so that stdout stays
    /// free for MCP over stdio.
    pub log_level: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            state_dir: None,
            log_level: "info".to_owned(),
        }
    }
}

/// `[transport]`: how MCP clients reach the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TransportConfig {
    /// Serve MCP over streamable HTTP on this port instead of stdio.
    #[schemars(example = 8080)]
    pub http_port: Option<u16>,
    /// Serve MCP over the legacy SSE transport on this port instead of stdio.
    /// Cannot be combined with http_port.
    #[schemars(example = 8081)]
    pub sse_port: Option<u16>,
    /// Address the HTTP/SSE listener binds to. The default only accepts local
    /// connections; use 0.0.0.0 (or :: for IPv6 and IPv4) to listen on every
    /// interface, and then set allowed_hosts.
    pub bind: String,
    /// Host header values the HTTP/SSE server answers to; any other gets 403,
    /// which defeats DNS rebinding. "name" allows any port, "name:port" only
    /// that port, "*.name" every subdomain of name; "*" allows every host.
    /// The default allows loopback names only. /healthz and /readyz are
    /// exempt.
    pub allowed_hosts: Vec<String>,
    /// Origin header values allowed on HTTP/SSE requests; a request from any
    /// other browser origin gets 403 (requests without Origin pass).
    /// Entries are scheme://host, scheme://host:port or scheme://host:* (any
    /// port); "*" allows every origin.
    pub allowed_origins: Vec<String>,
    /// Largest accepted request, in bytes: an HTTP body on every route
    /// (larger ones get 413), or an MCP message over stdio (there at least
    /// 16 MiB; a longer line is dropped and logged, as its id cannot be
    /// read). At least 1024; code up to limits.max_code_bytes must fit.
    #[schemars(range(min = validate::MIN_BODY_BYTES))]
    pub max_body_bytes: usize,
    /// Seconds a client has to send a request's headers, counted from when
    /// the connection opens or its previous request was answered (1..=3600).
    /// A connection that takes longer, or stays idle that long between
    /// requests, is closed: clients that open connections and send nothing
    /// (or a byte at a time) would otherwise hold them, and the server's
    /// file descriptors, forever. Streams being answered are not affected.
    #[schemars(range(
        min = *validate::REQUEST_HEADER_TIMEOUT_SECS.start(),
        max = *validate::REQUEST_HEADER_TIMEOUT_SECS.end()
    ))]
    pub request_header_timeout_secs: u64,
    /// Seconds a request body may pause: a body from which no bytes arrive
    /// for this long is abandoned, its request refused with 400 and its
    /// connection closed (1..=3600). A client that sends headers and then
    /// stalls would otherwise hold its connection forever. Counted between
    /// reads, not over the whole body, so slow links can still upload large
    /// code.
    #[schemars(range(
        min = *validate::REQUEST_BODY_TIMEOUT_SECS.start(),
        max = *validate::REQUEST_BODY_TIMEOUT_SECS.end()
    ))]
    pub request_body_timeout_secs: u64,
    /// Seconds between keep-alive comments on open SSE streams, so proxies
    /// do not close idle connections (1..=3600).
    #[schemars(range(
        min = *validate::SSE_KEEP_ALIVE_SECS.start(),
        max = *validate::SSE_KEEP_ALIVE_SECS.end()
    ))]
    pub sse_keep_alive_secs: u64,
    /// Seconds a streamable HTTP session may go without a request before the
    /// server ends it; the client's next request then gets 404 and it must
    /// initialize again (1..=604800). Sessions hold no execution state:
    /// executions and heaps outlive them.
    #[schemars(range(min = *validate::SESSION_IDLE_SECS.start(), max = *validate::SESSION_IDLE_SECS.end()))]
    pub session_idle_secs: u64,
    /// MCP sessions open at once (1..=1000000). At the bound, a new
    /// streamable HTTP session ends the one idle longest (its client's next
    /// request gets 404 and it initializes again); a new SSE stream is
    /// refused with 503 until one closes.
    #[schemars(range(min = *validate::MAX_SESSIONS.start(), max = *validate::MAX_SESSIONS.end()))]
    pub max_sessions: usize,
}

/// The loopback names, with any port: what a local client sends as `Host`.
const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            http_port: None,
            sse_port: None,
            bind: "127.0.0.1".to_owned(),
            allowed_hosts: LOOPBACK_HOSTS.map(str::to_owned).to_vec(),
            allowed_origins: ["http", "https"]
                .iter()
                .flat_map(|scheme| LOOPBACK_HOSTS.map(|host| format!("{scheme}://{host}:*")))
                .collect(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            request_header_timeout_secs: 30,
            request_body_timeout_secs: 30,
            sse_keep_alive_secs: 15,
            session_idle_secs: 3600,
            max_sessions: 1000,
        }
    }
}

/// Default of `transport.max_body_bytes`: room for the largest source code
/// (`limits.max_code_bytes`) many times over, JSON-escaped.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// `[auth]`: who may use the HTTP/SSE server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Static bearer tokens; a request must carry one of them (or a valid
    /// JWT) as "Authorization: Bearer TOKEN". Prefer tokens_file or the
    /// environment over the command line, where other users can read them.
    #[schemars(example = serde_json::json!(["change-me"]))]
    pub tokens: Vec<String>,
    /// File of further static bearer tokens, one per line; blank lines and
    /// lines starting with # are skipped. Read at startup.
    #[schemars(example = "/etc/mcp-v8/tokens")]
    pub tokens_file: Option<PathBuf>,
    /// JWKS URL of the authorization server: bearer JWTs signed by one of
    /// its keys (RS*, PS*, ES256, ES384 or EdDSA) are accepted when exp,
    /// nbf, iss and aud check out. Requires issuer and audience.
    #[schemars(example = "https://auth.example.com/.well-known/jwks.json")]
    pub jwks_url: Option<String>,
    /// Required "iss" claim of JWTs.
    #[schemars(example = "https://auth.example.com/")]
    pub issuer: Option<String>,
    /// Required "aud" claim of JWTs: this server's identifier at the
    /// authorization server.
    #[schemars(example = "https://mcp.example.com/mcp")]
    pub audience: Option<String>,
    /// Authorization servers named in the OAuth protected resource metadata
    /// (/.well-known/oauth-protected-resource); when empty, the issuer.
    #[schemars(example = serde_json::json!(["https://auth.example.com/"]))]
    pub authorization_servers: Vec<String>,
    /// This server's resource identifier in that metadata, as clients reach
    /// it. When unset it is built from each request's Host: http://HOST/mcp
    /// (or /sse).
    #[schemars(example = "https://mcp.example.com/mcp")]
    pub resource: Option<String>,
}

/// `[limits]`: resource limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// V8 heap limit, in MiB, for an execution that does not ask for one.
    /// At least 4, and not more than heap_memory_cap_mb.
    #[schemars(range(min = *validate::HEAP_CAP_MB.start(), max = *validate::HEAP_CAP_MB.end()))]
    pub heap_memory_max_mb: u32,
    /// The largest heap, in MiB, any single execution may ask for (4..=4096).
    /// Bounds the memory one caller can take from the host.
    #[schemars(range(min = *validate::HEAP_CAP_MB.start(), max = *validate::HEAP_CAP_MB.end()))]
    pub heap_memory_cap_mb: u32,
    /// Wall-clock limit, in seconds, for an execution that does not set its
    /// own; when it passes, the execution is stopped and recorded as timed
    /// out (1..=300).
    #[schemars(range(min = *validate::EXECUTION_TIMEOUT_SECS.start(), max = *validate::EXECUTION_TIMEOUT_SECS.end()))]
    pub execution_timeout_secs: u64,
    /// Executions that run at the same time, one worker process each
    /// (1..=256). Defaults to the number of CPUs.
    #[schemars(range(min = 1, max = MAX_CONCURRENT_EXECUTIONS))]
    pub max_concurrent_executions: usize,
    /// Executions that may wait for a free worker before new ones are refused
    /// as busy. 0 disables the queue.
    pub max_queued_executions: usize,
    /// Console output kept per execution, in bytes; output beyond this is
    /// dropped, and the output then ends with a line saying so (at least 1024).
    #[schemars(range(min = validate::MIN_OUTPUT_BYTES))]
    pub max_output_bytes: u64,
    /// Largest accepted source code, in bytes (1024 to 67108864, 64 MiB).
    #[schemars(range(min = validate::MIN_CODE_BYTES, max = validate::MAX_CODE_BYTES))]
    pub max_code_bytes: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            heap_memory_max_mb: 8,
            heap_memory_cap_mb: 64,
            execution_timeout_secs: 30,
            max_concurrent_executions: default_concurrency(),
            max_queued_executions: 1000,
            max_output_bytes: 16 * 1024 * 1024,
            max_code_bytes: 1024 * 1024,
        }
    }
}

/// One worker per CPU keeps V8 busy without oversubscribing the host.
fn default_concurrency() -> usize {
    std::thread::available_parallelism()
        .map_or(1, NonZeroUsize::get)
        .min(MAX_CONCURRENT_EXECUTIONS)
}

/// `[executions]`: retention of finished execution records and their output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ExecutionsConfig {
    /// Keep at most this many finished execution records (those in flight
    /// are kept regardless); the oldest are deleted first (at least 1).
    #[schemars(range(min = 1))]
    pub retain_count: usize,
    /// Also delete finished records older than this many seconds (checked
    /// every tenth of it, at least every minute). Unset keeps records
    /// regardless of age.
    #[schemars(example = 604800, range(min = 1))]
    pub retain_max_age_secs: Option<u64>,
}

impl Default for ExecutionsConfig {
    fn default() -> Self {
        Self {
            retain_count: 10_000,
            retain_max_age_secs: None,
        }
    }
}

/// `[storage]`: where heap snapshots are persisted (a directory or S3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Never persist heap snapshots; every execution starts from a fresh heap.
    /// Cannot be combined with directory_path, s3_bucket, cache_dir or
    /// sessions.db_path.
    pub stateless: bool,
    /// Persist heap snapshots as files in this directory (created if
    /// missing, owner-only). When neither this nor s3_bucket is set and
    /// stateless is off, snapshots go to /tmp/mcp-v8-heaps.
    #[schemars(example = "/var/lib/mcp-v8/heaps")]
    pub directory_path: Option<PathBuf>,
    /// Persist heap snapshots in this S3 bucket instead of a directory.
    /// Credentials come from the AWS SDK's standard chain (AWS_* environment
    /// variables, ~/.aws files, web identity, container or instance role).
    /// Cannot be combined with directory_path.
    #[schemars(example = "mcp-v8-heaps")]
    pub s3_bucket: Option<String>,
    /// Key prefix for objects in s3_bucket; a trailing / is added when
    /// missing. Requires s3_bucket.
    #[schemars(example = "heaps/")]
    pub s3_prefix: Option<String>,
    /// AWS region of s3_bucket; unset uses the AWS SDK's usual lookup
    /// (AWS_REGION, ~/.aws/config), else us-east-1. Requires s3_bucket.
    #[schemars(example = "us-east-1")]
    pub s3_region: Option<String>,
    /// Custom S3 endpoint URL (http:// or https://), for S3-compatible stores
    /// such as MinIO. Requires s3_bucket.
    #[schemars(example = "http://127.0.0.1:9000")]
    pub s3_endpoint: Option<String>,
    /// Address the bucket as endpoint/bucket rather than bucket.endpoint,
    /// which most S3-compatible stores require. Requires s3_bucket.
    pub s3_force_path_style: bool,
    /// Local directory caching snapshots from s3_bucket, to avoid a round
    /// trip per execution: reads try it first, writes go to S3 and then to
    /// it. Requires s3_bucket; owned by one server process.
    #[schemars(example = "/var/cache/mcp-v8")]
    pub cache_dir: Option<PathBuf>,
    /// Size bound of cache_dir, in MiB (at least 1); the least recently used
    /// snapshots are deleted beyond it. Changing it requires cache_dir.
    #[schemars(range(min = 1))]
    pub cache_max_mb: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            stateless: false,
            directory_path: None,
            s3_bucket: None,
            s3_prefix: None,
            s3_region: None,
            s3_endpoint: None,
            s3_force_path_style: false,
            cache_dir: None,
            cache_max_mb: 1024,
        }
    }
}

/// `[sessions]`: persistent session bookkeeping.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SessionsConfig {
    /// Directory of the database (sled) recording sessions, the heap
    /// snapshots their executions started from and produced, and heap tags.
    /// Used in stateful mode only. When unset: the "sessions" directory in
    /// the state directory.
    #[schemars(example = "/var/lib/mcp-v8/sessions")]
    pub db_path: Option<PathBuf>,
}

/// `[wasm]`: WebAssembly modules made available to JavaScript.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct WasmConfig {
    /// Modules to preload, each exposed to JavaScript under its name.
    #[schemars(example = serde_json::json!([{ "name": "math", "path": "/opt/mcp-v8/math.wasm" }]))]
    pub modules: Vec<WasmModule>,
    /// File listing further modules to preload, for lists too long to keep
    /// inline.
    #[schemars(example = "/etc/mcp-v8/wasm.json")]
    pub config: Option<PathBuf>,
}

/// One preloaded WebAssembly module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WasmModule {
    /// Name JavaScript uses to reach the module.
    pub name: String,
    /// The .wasm file.
    pub path: PathBuf,
}

/// `[modules]`: resolution of npm:, jsr: and URL imports.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ModulesConfig {
    /// Allow code to import modules over the network (npm:, jsr:, https:).
    /// Off by default because it lets executed code pull in arbitrary code.
    pub allow_remote_imports: bool,
    /// npm registry used for npm: imports; unset uses the public registry.
    #[schemars(example = "https://registry.npmjs.org/")]
    pub npm_registry: Option<String>,
    /// JSR registry used for jsr: imports; unset uses the public registry.
    #[schemars(example = "https://jsr.io/")]
    pub jsr_registry: Option<String>,
}

/// `[policy]`: authorization through Open Policy Agent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Base URL of the OPA server consulted for policy decisions.
    #[schemars(example = "http://127.0.0.1:8181")]
    pub opa_url: Option<String>,
    /// OPA policy path that decides whether a fetch() may proceed.
    #[schemars(example = "mcp/fetch")]
    pub opa_fetch_policy: Option<String>,
    /// JSON file of policies evaluated locally, without an OPA server.
    #[schemars(example = "/etc/mcp-v8/policies.json")]
    pub policies_json: Option<PathBuf>,
}

/// `[fetch]`: outbound fetch() from JavaScript.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct FetchConfig {
    /// Headers injected into matching requests, so secrets stay out of the
    /// executed code. Each entry reads "host=HOST,header=NAME,value=VALUE".
    #[schemars(example = serde_json::json!(["host=api.example.com,header=Authorization,value=Bearer TOKEN"]))]
    pub headers: Vec<String>,
    /// File of header injection rules, for rules too many or too secret to
    /// keep inline.
    #[schemars(example = "/etc/mcp-v8/fetch-headers.json")]
    pub header_config: Option<PathBuf>,
}

/// `[cluster]`: several servers replicating state with Raft.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// Port for cluster traffic between nodes; setting it enables clustering.
    #[schemars(example = 4000)]
    pub port: Option<u16>,
    /// This node's unique, stable identifier within the cluster.
    #[schemars(example = "node-1")]
    pub node_id: Option<String>,
    /// Cluster addresses of the other nodes.
    #[schemars(example = serde_json::json!(["10.0.0.2:4000", "10.0.0.3:4000"]))]
    pub peers: Vec<String>,
    /// Cluster address of an existing node to join at startup.
    #[schemars(example = "10.0.0.2:4000")]
    pub join: Option<String>,
    /// Address other nodes should use to reach this one, when it differs from
    /// the bind address (NAT, containers).
    #[schemars(example = "10.0.0.1:4000")]
    pub advertise_addr: Option<String>,
    /// Leader heartbeat period, in ms. Must be below election_timeout_min_ms
    /// so that a healthy leader is never voted out.
    pub heartbeat_interval_ms: u64,
    /// Lower bound of the randomized election timeout, in ms.
    pub election_timeout_min_ms: u64,
    /// Upper bound of the randomized election timeout, in ms.
    pub election_timeout_max_ms: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            port: None,
            node_id: None,
            peers: Vec::new(),
            join: None,
            advertise_addr: None,
            heartbeat_interval_ms: 100,
            election_timeout_min_ms: 300,
            election_timeout_max_ms: 600,
        }
    }
}

/// `[telemetry]`: OpenTelemetry export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// OTLP endpoint receiving traces and metrics; unset disables export.
    #[schemars(example = "http://127.0.0.1:4317")]
    pub otlp_endpoint: Option<String>,
    /// service.name reported with exported telemetry.
    pub service_name: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            service_name: "mcp-v8".to_owned(),
        }
    }
}

impl Config {
    /// Expands a leading `~` (alone or before `/`) in every path setting to
    /// `home`, as shells do: TOML and `--flag=~/x` reach the server
    /// unexpanded, and a directory literally named `~` in the working
    /// directory was created instead. Without a home the paths stay as
    /// they are.
    pub fn expand_home(&mut self, home: Option<&Path>) {
        let Some(home) = home else { return };
        let expand = |path: &mut PathBuf| {
            if let Ok(rest) = path.strip_prefix("~") {
                *path = home.join(rest);
            }
        };
        let optional = [
            &mut self.server.state_dir,
            &mut self.auth.tokens_file,
            &mut self.storage.directory_path,
            &mut self.storage.cache_dir,
            &mut self.sessions.db_path,
            &mut self.wasm.config,
            &mut self.policy.policies_json,
            &mut self.fetch.header_config,
        ];
        for path in optional.into_iter().flatten() {
            expand(path);
        }
        for module in &mut self.wasm.modules {
            expand(&mut module.path);
        }
    }

    /// The state directory: `server.state_dir` if set, else the platform
    /// default (see [`resolve_state_dir`]).
    pub fn state_dir(&self) -> PathBuf {
        resolve_state_dir(self.server.state_dir.as_deref(), |name| {
            std::env::var_os(name)
        })
    }

    /// The session database directory: `sessions.db_path` if set, else
    /// `sessions` in the [state directory](Self::state_dir).
    pub fn session_db_path(&self) -> PathBuf {
        self.sessions
            .db_path
            .clone()
            .unwrap_or_else(|| self.state_dir().join("sessions"))
    }
}

/// Resolves the state directory from the configured value and the environment.
///
/// The order follows the conventions a service is started under: systemd's
/// `StateDirectory=` (which may list several, colon-separated; the first is
/// ours), then the XDG base directory spec, then the system-wide default.
/// Empty variables count as unset, as the XDG spec requires. `env` is a
/// parameter so that tests need not mutate the process environment.
pub fn resolve_state_dir(
    configured: Option<&Path>,
    env: impl Fn(&str) -> Option<OsString>,
) -> PathBuf {
    let var = |name: &str| env(name).filter(|value| !value.is_empty());
    if let Some(dir) = configured {
        return dir.to_path_buf();
    }
    if let Some(dirs) = var("STATE_DIRECTORY") {
        let dirs = dirs.to_string_lossy().into_owned();
        if let Some(first) = dirs.split(':').find(|dir| !dir.is_empty()) {
            return PathBuf::from(first);
        }
    }
    // The spec: a relative path in an XDG variable is invalid, to be ignored.
    if let Some(xdg) = var("XDG_STATE_HOME").filter(|xdg| Path::new(xdg).is_absolute()) {
        return PathBuf::from(xdg).join("mcp-v8");
    }
    if let Some(home) = var("HOME") {
        return PathBuf::from(home).join(".local/state/mcp-v8");
    }
    PathBuf::from("/var/lib/mcp-v8")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<OsString> {
        move |name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| OsString::from(value))
        }
    }

    #[test]
    fn defaults_are_valid() {
        let config = Config::default();
        if let Err(err) = config.validate() {
            panic!("defaults must be valid: {err}");
        }
        assert!(config.unsupported_features().is_empty());
        assert_eq!(config.limits.heap_memory_max_mb, 8);
        assert_eq!(config.limits.max_output_bytes, 16_777_216);
        assert_eq!(config.limits.max_code_bytes, 1_048_576);
        assert!(config.limits.max_concurrent_executions >= 1);
    }

    #[test]
    fn configured_state_dir_wins() {
        let dir = resolve_state_dir(
            Some(Path::new("/srv/state")),
            env_of(&[("STATE_DIRECTORY", "/x")]),
        );
        assert_eq!(dir, PathBuf::from("/srv/state"));
    }

    #[test]
    fn systemd_state_directory_takes_first_entry() {
        let dir = resolve_state_dir(
            None,
            env_of(&[
                ("STATE_DIRECTORY", "/var/lib/a:/var/lib/b"),
                ("XDG_STATE_HOME", "/xdg"),
            ]),
        );
        assert_eq!(dir, PathBuf::from("/var/lib/a"));
    }

    #[test]
    fn xdg_then_home_then_system_default() {
        let xdg = resolve_state_dir(None, env_of(&[("XDG_STATE_HOME", "/xdg"), ("HOME", "/h")]));
        assert_eq!(xdg, PathBuf::from("/xdg/mcp-v8"));
        let home = resolve_state_dir(None, env_of(&[("XDG_STATE_HOME", ""), ("HOME", "/h")]));
        assert_eq!(home, PathBuf::from("/h/.local/state/mcp-v8"));
        let system = resolve_state_dir(None, env_of(&[]));
        assert_eq!(system, PathBuf::from("/var/lib/mcp-v8"));
        let relative = resolve_state_dir(
            None,
            env_of(&[("XDG_STATE_HOME", "relstate"), ("HOME", "/h")]),
        );
        assert_eq!(relative, PathBuf::from("/h/.local/state/mcp-v8"));
    }

    #[test]
    fn a_leading_tilde_is_the_home_directory() {
        let mut config = Config::default();
        config.server.state_dir = Some(PathBuf::from("~/state"));
        config.storage.directory_path = Some(PathBuf::from("~"));
        config.sessions.db_path = Some(PathBuf::from("~user/db"));
        config.storage.cache_dir = Some(PathBuf::from("/abs/~/cache"));
        config.expand_home(Some(Path::new("/home/a")));
        assert_eq!(
            config.server.state_dir,
            Some(PathBuf::from("/home/a/state"))
        );
        assert_eq!(
            config.storage.directory_path,
            Some(PathBuf::from("/home/a"))
        );
        // Only `~` itself: `~user` and a `~` further in are left alone.
        assert_eq!(config.sessions.db_path, Some(PathBuf::from("~user/db")));
        assert_eq!(
            config.storage.cache_dir,
            Some(PathBuf::from("/abs/~/cache"))
        );
    }
}
