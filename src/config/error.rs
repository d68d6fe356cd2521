//! Why a configuration was rejected, phrased in terms of its keys.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// A configuration that cannot be used. Every message names the offending key
/// (as `section.key`) so that it can be found in the file, the flags or the
/// environment.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read at all. (The I/O error is part of
    /// the message rather than a `source()`, so it is printed exactly once
    /// however the caller formats the error.)
    #[error("cannot read config file {}: {error}", path.display())]
    Read { path: PathBuf, error: io::Error },

    /// The file is not valid TOML, has an unknown key or a value of the wrong type.
    #[error(transparent)]
    Parse(#[from] ParseError),

    /// A value lies outside the range the server can work with.
    #[error("{key} = {value} is outside {range}{}", hint_suffix(hint))]
    OutOfRange {
        key: &'static str,
        value: String,
        range: String,
        hint: Option<&'static str>,
    },

    /// A value is below the smallest the server can work with.
    #[error("{key} = {value} is below the minimum of {min}")]
    TooSmall {
        key: &'static str,
        value: u64,
        min: u64,
    },

    /// A value is not of the form the key expects.
    #[error("{key} = {value:?} is invalid: {reason}")]
    Invalid {
        key: &'static str,
        value: String,
        reason: String,
    },

    /// Two keys that must keep an order (e.g. heartbeat < election timeout) do not.
    #[error("{lower_key} = {lower} must be {relation} {upper_key} = {upper}: {reason}")]
    Order {
        lower_key: &'static str,
        lower: u64,
        relation: &'static str,
        upper_key: &'static str,
        upper: u64,
        reason: &'static str,
    },

    /// Two keys are set that exclude each other.
    #[error("{key} cannot be combined with {other}: {reason}")]
    Conflict {
        key: &'static str,
        other: &'static str,
        reason: &'static str,
    },

    /// A key is set without another one it depends on.
    #[error("{key} requires {required}: {reason}")]
    Requires {
        key: &'static str,
        required: &'static str,
        reason: &'static str,
    },

    /// A problem with a value set in a config file, located in that file.
    #[error("{}:{}:{}: {error}", path.display(), position.line, position.column)]
    InFile {
        path: PathBuf,
        position: Position,
        error: Box<ConfigError>,
    },

    /// A problem with the merged configuration, with where each key it names
    /// was set (a flag, a variable, a line of the config file), so that a
    /// conflict between, say, a variable and the file can be found.
    #[error("{error} ({})", describe_origins(origins))]
    WithOrigins {
        error: Box<ConfigError>,
        /// `(key, where it was set)`, for the keys not left at their default.
        origins: Vec<(String, String)>,
    },

    /// Features are configured that this build does not implement yet.
    #[error("not yet supported: {}", .0.join(", "))]
    Unsupported(Vec<String>),
}

impl ConfigError {
    /// The dotted key the error is about, if it is about one key.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Read { .. } | Self::Unsupported(_) => None,
            Self::Parse(err) => err.key.as_deref(),
            Self::OutOfRange { key, .. }
            | Self::TooSmall { key, .. }
            | Self::Invalid { key, .. }
            | Self::Conflict { key, .. }
            | Self::Requires { key, .. } => Some(key),
            Self::Order { lower_key, .. } => Some(lower_key),
            Self::InFile { error, .. } | Self::WithOrigins { error, .. } => error.key(),
        }
    }

    /// Every key the error names: both keys of a conflict or an order, the
    /// key and its requirement, or the one key.
    pub fn keys(&self) -> Vec<&str> {
        match self {
            Self::Conflict { key, other, .. } => vec![key, other],
            Self::Requires { key, required, .. } => vec![key, required],
            Self::Order {
                lower_key,
                upper_key,
                ..
            } => vec![lower_key, upper_key],
            Self::InFile { error, .. } | Self::WithOrigins { error, .. } => error.keys(),
            other => other.key().into_iter().collect(),
        }
    }
}

/// `a is set by --flag, b by MCP_V8_B`.
fn describe_origins(origins: &[(String, String)]) -> String {
    let mut parts = origins.iter();
    let mut described = String::new();
    if let Some((key, origin)) = parts.next() {
        described = format!("{key} is set by {origin}");
    }
    for (key, origin) in parts {
        described.push_str(&format!(", {key} by {origin}"));
    }
    described
}

fn hint_suffix(hint: &Option<&'static str>) -> String {
    hint.map(|hint| format!("; {hint}")).unwrap_or_default()
}

/// A config file that failed to parse, located as precisely as toml allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    /// The file (or other origin) the TOML came from.
    pub path: PathBuf,
    /// 1-based position of the error, when toml reports one.
    pub position: Option<Position>,
    /// Dotted path of the offending key (`limits.heap_memory_max_mb`,
    /// `wasm.modules[0].name`), when the error lies within one.
    pub key: Option<String>,
    /// toml's description of the problem.
    pub message: String,
}

/// A 1-based line and column (in characters) within a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// `FILE:LINE:COL: KEY: MESSAGE`, the shape editors and terminals make clickable.
impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(Position { line, column }) = self.position {
            write!(f, ":{line}:{column}")?;
        }
        match &self.key {
            Some(key) => write!(f, ": {key}: {}", self.message),
            None => write!(f, ": {}", self.message),
        }
    }
}
