//! The command line: subcommands, and one flag per config key.
//!
//! Every key of [`Config`] has a flag and an `MCP_V8_*` environment variable
//! here (the pairing is [`config::FLAGS`]; the tests check the two agree).
//! clap already resolves "flag, else env", so applying [`Overrides`] on top of
//! the file gives the documented precedence: CLI > env > file > defaults.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::builder::BoolishValueParser;
use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::config::{
    self, AuthConfig, ClusterConfig, Config, ConfigError, ExecutionsConfig, FetchConfig,
    LimitsConfig, ModulesConfig, PolicyConfig, ServerConfig, SessionsConfig, StorageConfig,
    TelemetryConfig, TransportConfig, WasmConfig, WasmModule,
};

/// A V8 JavaScript/TypeScript runtime for AI agents, served over MCP.
#[derive(Debug, Parser)]
#[command(name = "mcp-v8", version)]
pub struct Cli {
    /// TOML config file (see `mcp-v8 config default`); flags and MCP_V8_*
    /// variables override its values.
    #[arg(long, env = "MCP_V8_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub overrides: Overrides,
}

impl Cli {
    /// Parses the command line and the `MCP_V8_*` variables; on an error,
    /// prints clap's message and exits. A bad value that came from a
    /// variable is blamed on the variable, not only on the flag clap names.
    /// Call [`forget_empty_variables`] first.
    pub fn parse_env_and_args() -> Self {
        match Self::try_parse_from(serve_flags_anywhere(std::env::args_os().collect())) {
            Ok(cli) => cli,
            Err(error) => {
                let variable = variable_behind(&error);
                let _ = error.print();
                if let Some(variable) = variable {
                    eprintln!("note: that value comes from the environment variable {variable}");
                }
                std::process::exit(error.exit_code());
            }
        }
    }

    /// The subcommand to run; `serve` when none was given.
    pub fn command_or_serve(&self) -> Command {
        self.command.clone().unwrap_or(Command::Serve)
    }
}

/// `args` without an explicit `serve` subcommand, so that the server's flags
/// may follow it (`mcp-v8 serve --http-port 8080`): clap only takes them
/// before it, where they belong to the top-level command. `serve` is the
/// command anyway when none is given.
fn serve_flags_anywhere(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let command = Cli::command();
    let mut index = 1;
    while let Some(arg) = args.get(index).and_then(|arg| arg.to_str()) {
        if arg == "--" {
            break;
        }
        if let Some(flag) = arg.strip_prefix("--") {
            let takes_value = takes_next_word(&command, flag);
            index += if takes_value { 2 } else { 1 };
            continue;
        }
        if arg.starts_with('-') {
            index += 1;
            continue;
        }
        // The first word that is no flag or value is the subcommand. Another
        // word after `serve` is left for clap to refuse.
        if arg == "serve" && !has_word_after(&command, &args[index + 1..]) {
            args.remove(index);
        }
        break;
    }
    args
}

/// Whether `--flag` (given without `=value`) takes the next word as its value.
fn takes_next_word(command: &clap::Command, flag: &str) -> bool {
    !flag.contains('=')
        && command
            .get_arguments()
            .find(|candidate| candidate.get_long() == Some(flag))
            .is_some_and(|candidate| {
                candidate.get_action().takes_values() && !candidate.is_require_equals_set()
            })
}

/// Whether `args` (after `serve`) hold a word that is no flag or value.
fn has_word_after(command: &clap::Command, args: &[std::ffi::OsString]) -> bool {
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let Some(arg) = arg.to_str() else { return true };
        if arg == "--" {
            return true;
        }
        if let Some(flag) = arg.strip_prefix("--") {
            let takes_value = takes_next_word(command, flag);
            if takes_value {
                rest.next();
            }
        } else if !arg.starts_with('-') {
            return true;
        }
    }
    false
}

/// Unsets every empty `MCP_V8_*` variable: an empty variable counts as unset
/// (setting one to nothing is the usual way to unset it in a unit or compose
/// file), where clap would take it for an empty value.
///
/// # Safety
/// Changes the process environment: no other thread may exist yet.
pub unsafe fn forget_empty_variables() {
    let empty: Vec<_> = std::env::vars_os()
        .filter(|(key, value)| {
            value.is_empty() && key.to_str().is_some_and(|key| key.starts_with("MCP_V8_"))
        })
        .map(|(key, _)| key)
        .collect();
    for key in empty {
        // SAFETY: the caller guarantees a single thread.
        unsafe { std::env::remove_var(key) };
    }
}

/// The variable a refused value came from, when it did not come from the
/// command line: clap names the flag either way.
fn variable_behind(error: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue};

    let Some(ContextValue::String(arg)) = error.get(ContextKind::InvalidArg) else {
        return None;
    };
    // "--heap-memory-max <MB>"
    let long = arg.split_whitespace().next()?.strip_prefix("--")?;
    let command = Cli::command();
    let variable = command
        .get_arguments()
        .find(|candidate| candidate.get_long() == Some(long))?
        .get_env()?
        .to_str()?
        .to_owned();
    let given = on_command_line(&format!("--{long}"));
    (!given && std::env::var_os(&variable).is_some()).then_some(variable)
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Serve MCP (the default when no subcommand is given); the options
    /// above may come before or after it.
    Serve,
    /// Check, generate or describe config files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Run one execution worker. The server starts these itself.
    #[command(hide = true)]
    Worker {
        /// Stateless jobs only (the server runs without a heap store).
        #[arg(long)]
        stateless: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum ConfigCommand {
    /// Validate FILE: prints `ok: FILE`, or the first problem with its key
    /// and line:column, and exits non-zero.
    Check {
        /// The config file to check.
        file: PathBuf,
    },
    /// Print a complete config file with every key, its documentation and
    /// its default.
    Default,
    /// Print the JSON Schema of the config file.
    Schema,
}

/// Reads the config file (if any), applies env and CLI overrides, and
/// validates the result. Validation happens only after merging, so a flag can
/// fix a value the file gets wrong.
///
/// Does not reject unsupported features; call [`Config::ensure_supported`]
/// before serving.
pub fn load(cli: &Cli) -> Result<Config, ConfigError> {
    let home = std::env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .map(PathBuf::from);
    let file = cli
        .config
        .as_ref()
        .map(|path| match (path.strip_prefix("~"), &home) {
            (Ok(rest), Some(home)) => home.join(rest),
            _ => path.clone(),
        });
    let mut config = match &file {
        Some(path) => config::load_file(path)?,
        None => Config::default(),
    };
    cli.overrides.apply(&mut config);
    config.expand_home(home.as_deref());
    config
        .validate()
        .map_err(|error| with_origins(error, file.as_deref()))?;
    Ok(config)
}

/// `error` with where each key it names was set, when any was set at all:
/// a conflict may well be between a variable in a unit file and a line of
/// the config file, and the key names alone do not say where to look.
fn with_origins(error: ConfigError, file: Option<&Path>) -> ConfigError {
    let text = file.and_then(|path| std::fs::read_to_string(path).ok());
    let file = file.zip(text.as_deref());
    let origins: Vec<(String, String)> = error
        .keys()
        .into_iter()
        .filter_map(|key| Some((key.to_owned(), origin_of(key, file)?)))
        .collect();
    if origins.is_empty() {
        return error;
    }
    ConfigError::WithOrigins {
        error: Box::new(error),
        origins,
    }
}

/// Where `key` got its value, in the order overrides apply: the command
/// line, then its variable, then a line of the config file. `None` for a
/// default.
fn origin_of(key: &str, file: Option<(&Path, &str)>) -> Option<String> {
    if let Some(flag) = config::flag_for(key) {
        if on_command_line(flag) {
            return Some(flag.to_owned());
        }
        let variable = config::env_var_for(flag);
        if std::env::var_os(&variable).is_some() {
            return Some(variable);
        }
    }
    let (path, text) = file?;
    let position = config::position_of_key(text, key)?;
    Some(format!("{}:{}", path.display(), position.line))
}

/// Whether `flag` (`--name`) was given on this process's command line, as
/// `--name VALUE`, `--name=VALUE` or a bare switch.
fn on_command_line(flag: &str) -> bool {
    let with_value = format!("{flag}=");
    std::env::args_os()
        .any(|given| given == flag || given.as_encoded_bytes().starts_with(with_value.as_bytes()))
}

/// Runs a `mcp-v8 config …` subcommand, writing to stdout. An error means the
/// process should exit non-zero after printing it.
pub fn run_config_command(command: &ConfigCommand) -> anyhow::Result<()> {
    let stdout = io::stdout();
    write_config_command(command, &mut stdout.lock())
}

fn write_config_command(command: &ConfigCommand, out: &mut impl Write) -> anyhow::Result<()> {
    match command {
        ConfigCommand::Check { file } => {
            config::check_file(file)?;
            writeln!(out, "ok: {}", file.display())?;
        }
        ConfigCommand::Default => out.write_all(config::default_toml()?.as_bytes())?,
        ConfigCommand::Schema => writeln!(out, "{}", config::json_schema())?,
    }
    Ok(())
}

/// One optional flag per config key, grouped by section. A flag left out
/// (and its variable unset) leaves the file's value alone.
#[derive(Debug, Clone, Default, PartialEq, Args)]
pub struct Overrides {
    #[command(flatten, next_help_heading = "Server")]
    pub server: ServerFlags,
    #[command(flatten, next_help_heading = "Transport")]
    pub transport: TransportFlags,
    #[command(flatten, next_help_heading = "Authentication (HTTP/SSE)")]
    pub auth: AuthFlags,
    #[command(flatten, next_help_heading = "Limits")]
    pub limits: LimitsFlags,
    #[command(flatten, next_help_heading = "Execution records")]
    pub executions: ExecutionsFlags,
    #[command(flatten, next_help_heading = "Heap snapshot storage")]
    pub storage: StorageFlags,
    #[command(flatten, next_help_heading = "Sessions")]
    pub sessions: SessionsFlags,
    #[command(flatten, next_help_heading = "WebAssembly")]
    pub wasm: WasmFlags,
    #[command(flatten, next_help_heading = "Module imports")]
    pub modules: ModulesFlags,
    #[command(flatten, next_help_heading = "Policy")]
    pub policy: PolicyFlags,
    #[command(flatten, next_help_heading = "Fetch")]
    pub fetch: FetchFlags,
    #[command(flatten, next_help_heading = "Cluster")]
    pub cluster: ClusterFlags,
    #[command(flatten, next_help_heading = "Telemetry")]
    pub telemetry: TelemetryFlags,
}

impl Overrides {
    /// Overwrites every key of `config` that was given as a flag or variable.
    pub fn apply(&self, config: &mut Config) {
        self.server.apply(&mut config.server);
        self.transport.apply(&mut config.transport);
        self.auth.apply(&mut config.auth);
        self.limits.apply(&mut config.limits);
        self.executions.apply(&mut config.executions);
        self.storage.apply(&mut config.storage);
        self.sessions.apply(&mut config.sessions);
        self.wasm.apply(&mut config.wasm);
        self.modules.apply(&mut config.modules);
        self.policy.apply(&mut config.policy);
        self.fetch.apply(&mut config.fetch);
        self.cluster.apply(&mut config.cluster);
        self.telemetry.apply(&mut config.telemetry);
    }
}

/// `slot = value` if the flag was given.
fn set<T: Clone>(slot: &mut T, value: &Option<T>) {
    if let Some(value) = value {
        *slot = value.clone();
    }
}

/// `slot = Some(value)` if the flag was given.
fn set_some<T: Clone>(slot: &mut Option<T>, value: &Option<T>) {
    if value.is_some() {
        *slot = value.clone();
    }
}

/// Replaces (rather than extends) the file's list if the flag was given, so
/// that the command line states the whole list.
fn set_list<T: Clone>(slot: &mut Vec<T>, values: &[T]) {
    if !values.is_empty() {
        *slot = values.to_vec();
    }
}

#[derive(Debug, Clone, Default, PartialEq, Args)]
pub struct ServerFlags {
    /// Directory for execution records and output logs [server.state_dir]
    #[arg(long, env = "MCP_V8_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Log filter, tracing EnvFilter syntax [server.log_level]
    #[arg(long, env = "MCP_V8_LOG_LEVEL", value_name = "FILTER")]
    pub log_level: Option<String>,
}

impl ServerFlags {
    fn apply(&self, server: &mut ServerConfig) {
        set_some(&mut server.state_dir, &self.state_dir);
        set(&mut server.log_level, &self.log_level);
    }
}

#[derive(Debug, Clone, Default, PartialEq, Args)]
pub struct TransportFlags {
    /// Serve MCP over streamable HTTP on this port [transport.http_port]
    #[arg(long, env = "MCP_V8_HTTP_PORT", value_name = "PORT")]
    pub http_port: Option<u16>,
    /// Serve MCP over SSE on this port [transport.sse_port]
    #[arg(long, env = "MCP_V8_SSE_PORT", value_name = "PORT")]
    pub sse_port: Option<u16>,
    /// Address the HTTP/SSE listener binds to [transport.bind]
    #[arg(long, env = "MCP_V8_BIND", value_name = "ADDR")]
    pub bind: Option<String>,
    /// Allowed Host values, comma-separated; * allows all [transport.allowed_hosts]
    #[arg(
        long,
        env = "MCP_V8_ALLOWED_HOSTS",
        value_name = "HOSTS",
        value_delimiter = ','
    )]
    pub allowed_hosts: Vec<String>,
    /// Allowed Origin values, comma-separated; * allows all [transport.allowed_origins]
    #[arg(
        long,
        env = "MCP_V8_ALLOWED_ORIGINS",
        value_name = "ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,
    /// Largest accepted HTTP request body [transport.max_body_bytes]
    #[arg(long, env = "MCP_V8_MAX_BODY_BYTES", value_name = "BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Seconds a client has to send a request's headers [transport.request_header_timeout_secs]
    #[arg(long, env = "MCP_V8_REQUEST_HEADER_TIMEOUT_SECS", value_name = "SECS")]
    pub request_header_timeout_secs: Option<u64>,
    /// Seconds a request body may pause before it is abandoned [transport.request_body_timeout_secs]
    #[arg(long, env = "MCP_V8_REQUEST_BODY_TIMEOUT_SECS", value_name = "SECS")]
    pub request_body_timeout_secs: Option<u64>,
    /// Seconds between SSE keep-alive comments [transport.sse_keep_alive_secs]
    #[arg(long, env = "MCP_V8_SSE_KEEP_ALIVE_SECS", value_name = "SECS")]
    pub sse_keep_alive_secs: Option<u64>,
    /// Seconds before an idle streamable HTTP session ends [transport.session_idle_secs]
    #[arg(long, env = "MCP_V8_SESSION_IDLE_SECS", value_name = "SECS")]
    pub session_idle_secs: Option<u64>,
    /// MCP sessions open at once [transport.max_sessions]
    #[arg(long, env = "MCP_V8_MAX_SESSIONS", value_name = "N")]
    pub max_sessions: Option<usize>,
}

impl TransportFlags {
    fn apply(&self, transport: &mut TransportConfig) {
        set_some(&mut transport.http_port, &self.http_port);
        set_some(&mut transport.sse_port, &self.sse_port);
        set(&mut transport.bind, &self.bind);
        set_list(&mut transport.allowed_hosts, &self.allowed_hosts);
        set_list(&mut transport.allowed_origins, &self.allowed_origins);
        set(&mut transport.max_body_bytes, &self.max_body_bytes);
        set(
            &mut transport.request_header_timeout_secs,
            &self.request_header_timeout_secs,
        );
        set(
            &mut transport.request_body_timeout_secs,
            &self.request_body_timeout_secs,
        );
        set(
            &mut transport.sse_keep_alive_secs,
            &self.sse_keep_alive_secs,
        );
        set(&mut transport.session_idle_secs, &self.session_idle_secs);
        set(&mut transport.max_sessions, &self.max_sessions);
    }
}

#[derive(Debug, Clone, Default, PartialEq, Args)]
pub struct AuthFlags {
    /// Static bearer tokens, comma-separated [auth.tokens]
    #[arg(
        long,
        env = "MCP_V8_AUTH_TOKENS",
        value_name = "TOKENS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub auth_tokens: Vec<String>,
    /// File of static bearer tokens, one per line [auth.tokens_file]
    #[arg(long, env = "MCP_V8_AUTH_TOKENS_FILE", value_name = "FILE")]
    pub auth_tokens_file: Option<PathBuf>,
    /// JWKS URL for verifying bearer JWTs [auth.jwks_url]
    #[arg(long, env = "MCP_V8_AUTH_JWKS_URL", value_name = "URL")]
    pub auth_jwks_url: Option<String>,
    /// Required JWT issuer [auth.issuer]
    #[arg(long, env = "MCP_V8_AUTH_ISSUER", value_name = "ISS")]
    pub auth_issuer: Option<String>,
    /// Required JWT audience [auth.audience]
    #[arg(long, env = "MCP_V8_AUTH_AUDIENCE", value_name = "AUD")]
    pub auth_audience: Option<String>,
    /// Authorization servers to advertise, comma-separated [auth.authorization_servers]
    #[arg(
        long,
        env = "MCP_V8_AUTH_AUTHORIZATION_SERVERS",
        value_name = "URLS",
        value_delimiter = ','
    )]
    pub auth_authorization_servers: Vec<String>,
    /// This server's resource identifier in the metadata [auth.resource]
    #[arg(long, env = "MCP_V8_AUTH_RESOURCE", value_name = "URL")]
    pub auth_resource: Option<String>,
}

impl AuthFlags {
    fn apply(&self, auth: &mut AuthConfig) {
        set_list(&mut auth.tokens, &self.auth_tokens);
        set_some(&mut auth.tokens_file, &self.auth_tokens_file);
        set_some(&mut auth.jwks_url, &self.auth_jwks_url);
        set_some(&mut auth.issuer, &self.auth_issuer);
        set_some(&mut auth.audience, &self.auth_audience);
        set_list(
            &mut auth.authorization_servers,
            &self.auth_authorization_servers,
        );
        set_some(&mut auth.resource, &self.auth_resource);
    }
}

#[derive(Debug, Clone, Default, PartialEq, Args)]
pub struct LimitsFlags {
    /// Default V8 heap per execution, MiB [limits.heap_memory_max_mb]
    #[arg(long, env = "MCP_V8_HEAP_MEMORY_MAX", value_name = "MB")]
    pub heap_memory_max: Option<u32>,
    /// Largest heap an execution may ask for, MiB [limits.heap_memory_cap_mb]
    #[arg(long, env = "MCP_V8_HEAP_MEMORY_CAP", value_name = "MB")]
    pub heap_memory_cap: Option<u32>,
    /// Wall-clock limit per execution, seconds [limits.execution_timeout_secs]
    #[arg(long, env = "MCP_V8_EXECUTION_TIMEOUT", value_name = "SECS")]
    pub execution_timeout: Option<u64>,
    /// Executions running at once [limits.max_concurrent_executions]
    #[arg(long, env = "MCP_V8_MAX_CONCURRENT_EXECUTIONS", value_name = "N")]
    pub max_concurrent_executions: Option<usize>,
    /// Executions waiting for a worker; 0 = no queue [limits.max_queued_executions]
    #[arg(long, env = "MCP_V8_MAX_QUEUED_EXECUTIONS", value_name = "N")]
    pub max_queued_executions: Option<usize>,
    /// Console output kept per execution [limits.max_output_bytes]
    #[arg(long, env = "MCP_V8_MAX_OUTPUT_BYTES", value_name = "BYTES")]
    pub max_output_bytes: Option<u64>,
    /// Largest accepted source code [limits.max_code_bytes]
    #[arg(long, env = "MCP_V8_MAX_CODE_BYTES", value_name = "BYTES")]
    pub max_code_bytes: Option<usize>,
}

impl LimitsFlags {
    fn apply(&self, limits: &mut LimitsConfig) {
        set(&mut limits.heap_memory_max_mb, &self.heap_memory_max);
        set(&mut limits.heap_memory_cap_mb, &self.heap_memory_cap);
        set(&mut limits.execution_timeout_secs, &self.execution_timeout);
        set(
            &mut limits.max_concurrent_executions,
            &self.max_concurrent_executions,
        );
        set(
            &mut limits.max_queued_executions,
            &self.max_queued_executions,
        );
        set(&mut limits.max_output_bytes, &self.max_output_bytes);
        set(&mut limits.max_code_bytes, &self.max_code_bytes);
    }
}

#[derive(Debug, Clone, Default, PartialEq, Args)]
pub struct ExecutionsFlags {
    /// Execution records to keep [executions.retain_count]
    #[arg(long, env = "MCP_V8_RETAIN_EXECUTIONS", value_name = "N")]
    pub retain_executions: Option<usize>,
    /// Delete finished records older than this [executions.retain_max_age_secs]
    #[arg(long, env = "MCP_V8_RETAIN_MAX_AGE_SECS", value_name = "SECS")]
    pub retain_max_age_secs: Option<u64>,
}

impl ExecutionsFlags {
    fn apply(&self, executions: &mut ExecutionsConfig) {
        set(&mut executions.retain_count, &self.retain_executions);
        set_some(
            &mut executions.retain_max_age_secs,
            &self.retain_max_age_secs,
        );
    }
}

#[derive(Debug, Clone, Default, PartialEq, Args)]
pub struct StorageFlags {
    /// Never persist heap snapshots [storage.stateless]
    #[arg(
        long,
        env = "MCP_V8_STATELESS",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = BoolishValueParser::new()
    )]
    pub stateless: Option<bool>,
    /// Persist heap snapshots in this directory [storage.directory_path]
    #[arg(long, env = "MCP_V8_DIRECTORY_PATH", value_name = "DIR")]
    pub directory_path: Option<PathBuf>,
    /// Persist heap snapshots in this S3 bucket [storage.s3_bucket]
    #[arg(long, env = "MCP_V8_S3_BUCKET", value_name = "BUCKET")]
    pub s3_bucket: Option<String>,
    /// Key prefix within the bucket [storage.s3_prefix]
    #[arg(long, env = "MCP_V8_S3_PREFIX", value_name = "PREFIX")]
    pub s3_prefix: Option<String>,
    /// AWS region of the bucket [storage.s3_region]
    #[arg(long, env = "MCP_V8_S3_REGION", value_name = "REGION")]
    pub s3_region: Option<String>,
    /// Custom S3-compatible endpoint [storage.s3_endpoint]
    #[arg(long, env = "MCP_V8_S3_ENDPOINT", value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// Path-style bucket addressing [storage.s3_force_path_style]
    #[arg(
        long,
        env = "MCP_V8_S3_FORCE_PATH_STYLE",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = BoolishValueParser::new()
    )]
    pub s3_force_path_style: Option<bool>,
    /// Local cache for snapshots fetched from S3 [storage.cache_dir]
    #[arg(long, env = "MCP_V8_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Size bound of the cache, MiB [storage.cache_max_mb]
    #[arg(long, env = "MCP_V8_CACHE_MAX_MB", value_name = "MB")]
    pub cache_max_mb: Option<u64>,
}

impl StorageFlags {
    fn apply(&self, storage: &mut StorageConfig) {
        set(&mut storage.stateless, &self.stateless);
        set_some(&mut storage.directory_path, &self.directory_path);
        set_some(&mut storage.s3_bucket, &self.s3_bucket);
        set_some(&mut storage.s3_prefix, &self.s3_prefix);
        set_some(&mut storage.s3_region, &self.s3_region);
        set_some(&mut storage.s3_endpoint, &self.s3_endpoint);
        set(&mut storage.s3_force_path_style, &self.s3_force_path_style);
        set_some(&mut storage.cache_dir, &self.cache_dir);
        set(&mut storage.cache_max_mb, &self.cache_max_mb);
    }
}

#[derive(Debug, Clone, Default, PartialEq, Args)]
pub struct SessionsFlags {
    /// Session database directory [sessions.db_path]
    #[arg(long, env = "MCP_V8_SESSION_DB_PATH", value_name = "DIR")]
    pub session_db_path: Option<PathBuf>,
}

impl SessionsFlags {
    fn apply(&self, sessions: &mut SessionsConfig) {
        set_some(&mut sessions.db_path, &self.session_db_path);
    }
}

#[derive(Debug, Clone, Default, PartialEq, Args)]
pub struct WasmFlags {
    /// Preload a WebAssembly module; repeatable or comma-separated [wasm.modules]
    #[arg(
        long,
        env = "MCP_V8_WASM_MODULE",
        value_name = "NAME=PATH",
        value_delimiter = ',',
        value_parser = parse_wasm_module
    )]
    pub wasm_module: Vec<WasmModule>,
    /// File listing further modules to preload [wasm.config]
    #[arg(long, env = "MCP_V8_WASM_CONFIG", value_name = "FILE")]
    pub wasm_config: Option<PathBuf>,
}

impl WasmFlags {
    fn apply(&self, wasm: &mut WasmConfig) {
        set_list(&mut wasm.modules, &self.wasm_module);
        set_some(&mut wasm.config, &self.wasm_config);
    }
}

/// Parses `NAME=PATH` (the path may itself contain `=`).
fn parse_wasm_module(spec: &str) -> Result<WasmModule, String> {
    match spec.split_once('=') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() => Ok(WasmModule {
            name: name.to_owned(),
            path: PathBuf::from(path),
        }),
        _ => Err(format!("expected NAME=PATH, got {spec:?}")),
    }
}

#[derive(Debug, Clone, Default, PartialEq, Args)]
pub struct ModulesFlags {
    /// Allow npm:, jsr: and URL imports [modules.allow_remote_imports]
    #[arg(
        long,
        env = "MCP_V8_ALLOW_REMOTE_IMPORTS",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = BoolishValueParser::new()
    )]
    pub allow_remote_imports: Option<bool>,
    /// npm registry for npm: imports [modules.npm_registry]
    #[arg(long, env = "MCP_V8_NPM_REGISTRY", value_name = "URL")]
    pub npm_registry: Option<String>,
    /// JSR registry for jsr: imports [modules.jsr_registry]
    #[arg(long, env = "MCP_V8_JSR_REGISTRY", value_name = "URL")]
    pub jsr_registry: Option<String>,
}

impl ModulesFlags {
    fn apply(&self, modules: &mut ModulesConfig) {
        set(
            &mut modules.allow_remote_imports,
            &self.allow_remote_imports,
        );
        set_some(&mut modules.npm_registry, &self.npm_registry);
        set_some(&mut modules.jsr_registry, &self.jsr_registry);
    }
}

#[derive(Debug, Clone, Default, PartialEq, Args)]
pub struct PolicyFlags {
    /// OPA server for policy decisions [policy.opa_url]
    #[arg(long, env = "MCP_V8_OPA_URL", value_name = "URL")]
    pub opa_url: Option<String>,
    /// OPA policy path deciding fetch() calls [policy.opa_fetch_policy]
    #[arg(long, env = "MCP_V8_OPA_FETCH_POLICY", value_name = "PATH")]
    pub opa_fetch_policy: Option<String>,
    /// Policies evaluated locally [policy.policies_json]
    #[arg(long, env = "MCP_V8_POLICIES_JSON", value_name = "FILE")]
    pub policies_json: Option<PathBuf>,
}

impl PolicyFlags {
    fn apply(&self, policy: &mut PolicyConfig) {
        set_some(&mut policy.opa_url, &self.opa_url);
        set_some(&mut policy.opa_fetch_policy, &self.opa_fetch_policy);
        set_some(&mut policy.policies_json, &self.policies_json);
    }
}

#[derive(Debug, Clone, Default, PartialEq, Args)]
pub struct FetchFlags {
    /// Inject a header into matching fetch() calls; repeatable [fetch.headers]
    ///
    /// The rule itself contains commas, so the variable holds a single rule.
    #[arg(
        long,
        env = "MCP_V8_FETCH_HEADER",
        value_name = "host=H,header=N,value=V"
    )]
    pub fetch_header: Vec<String>,
    /// File of header injection rules [fetch.header_config]
    #[arg(long, env = "MCP_V8_FETCH_HEADER_CONFIG", value_name = "FILE")]
    pub fetch_header_config: Option<PathBuf>,
}

impl FetchFlags {
    fn apply(&self, fetch: &mut FetchConfig) {
        set_list(&mut fetch.headers, &self.fetch_header);
        set_some(&mut fetch.header_config, &self.fetch_header_config);
    }
}

#[derive(Debug, Clone, Default, PartialEq, Args)]
pub struct ClusterFlags {
    /// Port for cluster traffic; enables clustering [cluster.port]
    #[arg(long, env = "MCP_V8_CLUSTER_PORT", value_name = "PORT")]
    pub cluster_port: Option<u16>,
    /// This node's stable identifier [cluster.node_id]
    #[arg(long, env = "MCP_V8_NODE_ID", value_name = "ID")]
    pub node_id: Option<String>,
    /// Other nodes' cluster addresses, comma-separated [cluster.peers]
    #[arg(
        long,
        env = "MCP_V8_PEERS",
        value_name = "ADDRS",
        value_delimiter = ','
    )]
    pub peers: Vec<String>,
    /// Existing node to join at startup [cluster.join]
    #[arg(long, env = "MCP_V8_JOIN", value_name = "ADDR")]
    pub join: Option<String>,
    /// Address other nodes use to reach this one [cluster.advertise_addr]
    #[arg(long, env = "MCP_V8_ADVERTISE_ADDR", value_name = "ADDR")]
    pub advertise_addr: Option<String>,
    /// Leader heartbeat period, ms [cluster.heartbeat_interval_ms]
    #[arg(long, env = "MCP_V8_HEARTBEAT_INTERVAL", value_name = "MS")]
    pub heartbeat_interval: Option<u64>,
    /// Election timeout lower bound, ms [cluster.election_timeout_min_ms]
    #[arg(long, env = "MCP_V8_ELECTION_TIMEOUT_MIN", value_name = "MS")]
    pub election_timeout_min: Option<u64>,
    /// Election timeout upper bound, ms [cluster.election_timeout_max_ms]
    #[arg(long, env = "MCP_V8_ELECTION_TIMEOUT_MAX", value_name = "MS")]
    pub election_timeout_max: Option<u64>,
}

impl ClusterFlags {
    fn apply(&self, cluster: &mut ClusterConfig) {
        set_some(&mut cluster.port, &self.cluster_port);
        set_some(&mut cluster.node_id, &self.node_id);
        set_list(&mut cluster.peers, &self.peers);
        set_some(&mut cluster.join, &self.join);
        set_some(&mut cluster.advertise_addr, &self.advertise_addr);
        set(&mut cluster.heartbeat_interval_ms, &self.heartbeat_interval);
        set(
            &mut cluster.election_timeout_min_ms,
            &self.election_timeout_min,
        );
        set(
            &mut cluster.election_timeout_max_ms,
            &self.election_timeout_max,
        );
    }
}

#[derive(Debug, Clone, Default, PartialEq, Args)]
pub struct TelemetryFlags {
    /// OTLP endpoint for traces and metrics [telemetry.otlp_endpoint]
    #[arg(long, env = "MCP_V8_OTLP_ENDPOINT", value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// service.name reported with telemetry [telemetry.service_name]
    #[arg(long, env = "MCP_V8_SERVICE_NAME", value_name = "NAME")]
    pub service_name: Option<String>,
}

impl TelemetryFlags {
    fn apply(&self, telemetry: &mut TelemetryConfig) {
        set_some(&mut telemetry.otlp_endpoint, &self.otlp_endpoint);
        set(&mut telemetry.service_name, &self.service_name);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn flags_may_follow_serve() {
        let parsed = |args: &[&str]| {
            let args = serve_flags_anywhere(args.iter().map(Into::into).collect());
            args.into_iter()
                .map(|arg| arg.into_string().expect("UTF-8"))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            parsed(&["mcp-v8", "serve", "--http-port", "8080"]),
            ["mcp-v8", "--http-port", "8080"]
        );
        assert_eq!(
            parsed(&[
                "mcp-v8",
                "--stateless",
                "--state-dir",
                "serve",
                "serve",
                "--bind=::"
            ]),
            ["mcp-v8", "--stateless", "--state-dir", "serve", "--bind=::"]
        );
        // `serve` with another subcommand after it is left for clap to refuse.
        assert_eq!(
            parsed(&["mcp-v8", "serve", "config", "default"]),
            ["mcp-v8", "serve", "config", "default"]
        );
        // Another subcommand keeps its words, even one spelled "serve".
        assert_eq!(
            parsed(&["mcp-v8", "config", "check", "serve"]),
            ["mcp-v8", "config", "check", "serve"]
        );
        let cli = Cli::try_parse_from(serve_flags_anywhere(
            ["mcp-v8", "serve", "--http-port", "8080"]
                .map(Into::into)
                .to_vec(),
        ))
        .expect("serve with a flag after it");
        assert_eq!(cli.command_or_serve(), Command::Serve);
        assert_eq!(cli.overrides.transport.http_port, Some(8080));
    }

    use std::collections::BTreeMap;
    use std::path::Path;

    use clap::CommandFactory;

    use super::*;

    /// Marks the child process of [`env_sits_between_file_and_cli`].
    const ENV_CHILD: &str = "MCP_V8_TEST_ENV_CHILD";

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("mcp-v8").chain(args.iter().copied()))
            .unwrap_or_else(|err| panic!("{args:?}: {err}"))
    }

    fn write_file(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("mcp-v8.toml");
        std::fs::write(&path, text).expect("write config");
        path
    }

    /// `--flag` → `MCP_V8_FLAG` for every override clap knows about.
    fn clap_flags() -> BTreeMap<String, String> {
        Cli::command()
            .get_arguments()
            .filter_map(|arg| {
                let long = arg.get_long()?;
                let env = arg.get_env()?.to_string_lossy().into_owned();
                Some((format!("--{long}"), env))
            })
            .filter(|(long, _)| long != "--config")
            .collect()
    }

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_key_has_its_flag_and_env() {
        let expected: BTreeMap<String, String> = config::FLAGS
            .iter()
            .map(|(_, flag)| (flag.to_string(), config::env_var_for(flag)))
            .collect();
        assert_eq!(clap_flags(), expected);
    }

    #[test]
    fn serve_is_the_default() {
        assert_eq!(parse(&[]).command_or_serve(), Command::Serve);
        assert_eq!(parse(&["serve"]).command_or_serve(), Command::Serve);
        assert_eq!(
            parse(&["worker"]).command,
            Some(Command::Worker { stateless: false })
        );
        assert_eq!(
            parse(&["worker", "--stateless"]).command,
            Some(Command::Worker { stateless: true })
        );
        assert_eq!(
            parse(&["config", "check", "a.toml"]).command,
            Some(Command::Config(ConfigCommand::Check {
                file: PathBuf::from("a.toml")
            }))
        );
    }

    #[test]
    fn worker_is_hidden() {
        let help = Cli::command().render_help().to_string();
        let commands: Vec<&str> = help
            .lines()
            .skip_while(|line| *line != "Commands:")
            .take_while(|line| !line.is_empty())
            .collect();
        assert!(
            commands
                .iter()
                .any(|line| line.trim_start().starts_with("serve")),
            "{help}"
        );
        assert!(
            !commands.iter().any(|line| line.contains("worker")),
            "{help}"
        );
    }

    #[test]
    fn no_flags_leave_the_file_alone() {
        let mut config = Config::default();
        config.limits.heap_memory_cap_mb = 128;
        config.cluster.peers = vec!["a:1".to_owned()];
        let before = config.clone();
        Overrides::default().apply(&mut config);
        assert_eq!(config, before);
    }

    #[test]
    fn cli_beats_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = write_file(
            dir.path(),
            "[limits]\nheap_memory_max_mb = 16\nexecution_timeout_secs = 10\n\n[cluster]\npeers = [\"a:1\"]\n",
        );
        let file = file.to_str().expect("utf-8 temp path");
        let cli = parse(&[
            "--config",
            file,
            "--heap-memory-max",
            "32",
            "--peers",
            "b:2,c:3",
            "serve",
        ]);
        let config = load(&cli).expect("valid");
        assert_eq!(config.limits.heap_memory_max_mb, 32, "CLI wins");
        assert_eq!(
            config.limits.execution_timeout_secs, 10,
            "file wins over default"
        );
        assert_eq!(config.cluster.peers, ["b:2", "c:3"], "lists are replaced");
        assert_eq!(config.limits.heap_memory_cap_mb, 64, "default");
    }

    #[test]
    fn flags_can_repair_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = write_file(dir.path(), "[limits]\nheap_memory_max_mb = 100\n");
        let file = file.to_str().expect("utf-8 temp path");
        let err = load(&parse(&["--config", file])).expect_err("100 > cap");
        assert!(
            err.to_string().contains("raise limits.heap_memory_cap_mb"),
            "{err}"
        );
        let config = load(&parse(&["--config", file, "--heap-memory-cap", "128"])).expect("valid");
        assert_eq!(config.limits.heap_memory_max_mb, 100);
    }

    #[test]
    fn file_errors_name_key_and_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = write_file(dir.path(), "[limits]\n\nheap_memory_max = 16\n");
        let err =
            load(&parse(&["--config", file.to_str().expect("utf-8")])).expect_err("unknown key");
        let message = err.to_string();
        assert!(
            message.contains(":3:1: limits.heap_memory_max: unknown field"),
            "{message}"
        );
    }

    /// Every override set to a non-default value.
    const EVERY_FLAG: &str = "\
        --state-dir=/s --log-level=debug --http-port=1 --sse-port=2 --bind=0.0.0.0 \
        --allowed-hosts=h --allowed-origins=http://o --max-body-bytes=2048 --request-header-timeout-secs=9 \
        --request-body-timeout-secs=8 --sse-keep-alive-secs=5 --session-idle-secs=60 --max-sessions=9 \
        --auth-tokens=t --auth-tokens-file=/t --auth-jwks-url=u \
        --auth-issuer=i --auth-audience=a --auth-authorization-servers=s --auth-resource=r \
        --heap-memory-max=9 --heap-memory-cap=99 --execution-timeout=5 \
        --max-concurrent-executions=3 --max-queued-executions=0 --max-output-bytes=2048 \
        --max-code-bytes=4096 --retain-executions=7 --retain-max-age-secs=60 \
        --stateless --directory-path=/d --s3-bucket=b --s3-prefix=p --s3-region=r \
        --s3-endpoint=e --s3-force-path-style --cache-dir=/c --cache-max-mb=10 \
        --session-db-path=/db --wasm-module=m=/m.wasm --wasm-config=/w \
        --allow-remote-imports --npm-registry=n --jsr-registry=j --opa-url=o \
        --opa-fetch-policy=f --policies-json=/p --fetch-header=host=h,header=x,value=v \
        --fetch-header-config=/h --cluster-port=4 --node-id=id --peers=a --join=j \
        --advertise-addr=ad --heartbeat-interval=10 --election-timeout-min=20 \
        --election-timeout-max=30 --otlp-endpoint=ot --service-name=svc";

    #[test]
    fn every_flag_reaches_its_key() {
        let args: Vec<&str> = EVERY_FLAG.split_whitespace().collect();
        let cli = parse(&args);
        let mut config = Config::default();
        cli.overrides.apply(&mut config);
        let defaults = toml::Table::try_from(Config::default()).expect("serializes");
        let applied = toml::Table::try_from(&config).expect("serializes");
        for (key, _) in config::FLAGS {
            let (section, field) = key.split_once('.').expect("dotted key");
            let before = defaults[section].get(field);
            let after = applied[section].get(field);
            assert_ne!(before, after, "{key} was not overridden");
        }
        assert_eq!(config.fetch.headers, ["host=h,header=x,value=v"]);
        assert_eq!(config.wasm.modules[0].path, PathBuf::from("/m.wasm"));
    }

    #[test]
    fn boolean_flags_take_optional_values() {
        assert_eq!(
            parse(&["--stateless"]).overrides.storage.stateless,
            Some(true)
        );
        assert_eq!(
            parse(&["--stateless=false"]).overrides.storage.stateless,
            Some(false)
        );
        assert_eq!(
            parse(&["--stateless=0"]).overrides.storage.stateless,
            Some(false)
        );
        assert_eq!(
            parse(&["--stateless", "serve"]).command,
            Some(Command::Serve)
        );
    }

    #[test]
    fn wasm_modules_parse_name_and_path() {
        let cli = parse(&[
            "--wasm-module",
            "a=/x.wasm,b=y=z.wasm",
            "--wasm-module",
            "c=c.wasm",
        ]);
        let names: Vec<(&str, &Path)> = cli
            .overrides
            .wasm
            .wasm_module
            .iter()
            .map(|m| (m.name.as_str(), m.path.as_path()))
            .collect();
        assert_eq!(
            names,
            [
                ("a", Path::new("/x.wasm")),
                ("b", Path::new("y=z.wasm")),
                ("c", Path::new("c.wasm"))
            ]
        );
        for bad in [
            "--wasm-module=nopath",
            "--wasm-module==x.wasm",
            "--wasm-module=x=",
        ] {
            let err = Cli::try_parse_from(["mcp-v8", bad]).expect_err(bad);
            assert!(err.to_string().contains("NAME=PATH"), "{err}");
        }
    }

    #[test]
    fn config_commands_print() {
        let mut out = Vec::new();
        write_config_command(&ConfigCommand::Default, &mut out).expect("default");
        let text = String::from_utf8(out).expect("utf-8");
        let parsed = config::parse_toml(&text, Path::new("default.toml")).expect("parses");
        assert_eq!(parsed, Config::default());

        let mut out = Vec::new();
        write_config_command(&ConfigCommand::Schema, &mut out).expect("schema");
        let schema: serde_json::Value = serde_json::from_slice(&out).expect("JSON");
        assert!(schema.to_string().contains("heap_memory_max_mb"));
    }

    #[test]
    fn config_check_reports_ok_or_the_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = write_file(dir.path(), "[limits]\nheap_memory_cap_mb = 128\n");
        let mut out = Vec::new();
        write_config_command(&ConfigCommand::Check { file: file.clone() }, &mut out).expect("ok");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            format!("ok: {}\n", file.display())
        );

        write_file(dir.path(), "[limits]\nheap_memory_cap_mb = \"big\"\n");
        let err = write_config_command(
            &ConfigCommand::Check { file: file.clone() },
            &mut Vec::new(),
        )
        .expect_err("type error");
        let message = err.to_string();
        assert!(
            message.contains(":2:22: limits.heap_memory_cap_mb: invalid type"),
            "{message}"
        );
    }

    /// Environment variables are process-global and other tests parse the
    /// command line concurrently, so this test re-runs itself in a child
    /// process with the variables set, instead of mutating its own environment.
    #[test]
    fn env_sits_between_file_and_cli() {
        if std::env::var_os(ENV_CHILD).is_some() {
            return check_env_precedence();
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let file = write_file(
            dir.path(),
            "[limits]\nheap_memory_max_mb = 16\nexecution_timeout_secs = 10\nmax_queued_executions = 5\n",
        );
        let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"));
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("MCP_V8_") {
                child.env_remove(name);
            }
        }
        let output = child
            .args([
                "--exact",
                "cli::tests::env_sits_between_file_and_cli",
                "--nocapture",
            ])
            .env(ENV_CHILD, "1")
            .env("MCP_V8_CONFIG", &file)
            .env("MCP_V8_HEAP_MEMORY_MAX", "32")
            .env("MCP_V8_EXECUTION_TIMEOUT", "20")
            .env("MCP_V8_S3_BUCKET", "heaps")
            .env("MCP_V8_S3_FORCE_PATH_STYLE", "1")
            .env("MCP_V8_ALLOW_REMOTE_IMPORTS", "false")
            .output()
            .expect("run child");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            stdout.contains("1 passed"),
            "the child ran no test:\n{stdout}"
        );
    }

    fn check_env_precedence() {
        let config = load(&parse(&["--execution-timeout", "40"])).expect("valid");
        assert_eq!(config.limits.heap_memory_max_mb, 32, "env beats file");
        assert_eq!(config.limits.execution_timeout_secs, 40, "CLI beats env");
        assert_eq!(config.limits.max_queued_executions, 5, "file beats default");
        assert!(config.storage.s3_force_path_style, "env 1 is true");
        let cli = parse(&["--allow-remote-imports"]);
        assert_eq!(
            cli.overrides.modules.allow_remote_imports,
            Some(true),
            "CLI beats env false"
        );
        assert_eq!(
            parse(&[]).overrides.modules.allow_remote_imports,
            Some(false),
            "env false is an explicit false"
        );
    }
}
