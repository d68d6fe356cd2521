//! Reading the TOML file and pinpointing what is wrong with it.
//!
//! toml's own error display shows a snippet but not which key the error lies
//! in, and for a type error its span covers only the value. We re-parse the
//! document into a spanned tree and walk it to name the key, so that every
//! message reads `FILE:LINE:COL: section.key: problem`.

use std::ops::Range;
use std::path::Path;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::Config;
use super::error::{ConfigError, ParseError, Position};

/// Reads and parses a config file. Does not validate: values may still be
/// overridden by the environment and the command line, and only the merged
/// result has to make sense (see [`Config::validate`]).
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    parse_toml(&read(path)?, path)
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.to_path_buf(),
        error,
    })
}

/// What `mcp-v8 config check` runs: parse, validate, and refuse features this
/// build lacks. Validation errors about a key the file sets are located at
/// that key, so every complaint points into the file.
pub fn check_file(path: &Path) -> Result<Config, ConfigError> {
    let text = read(path)?;
    let config = parse_toml(&text, path)?;
    config
        .validate()
        .and_then(|()| config.ensure_supported())
        .map_err(|err| locate_key(err, &text, path))?;
    Ok(config)
}

/// Wraps `err` with the file position of its key, when the file sets that key.
fn locate_key(err: ConfigError, text: &str, path: &Path) -> ConfigError {
    let offset = err.key().and_then(|key| offset_of_key(text, key));
    match offset {
        Some(offset) => ConfigError::InFile {
            path: path.to_path_buf(),
            position: position(text, offset),
            error: Box::new(err),
        },
        None => err,
    }
}

/// Where in `text` (a config file's contents) the dotted `section.key` is
/// set, if it is.
pub fn position_of_key(text: &str, key: &str) -> Option<Position> {
    offset_of_key(text, key).map(|offset| position(text, offset))
}

/// Byte offset of the value of a dotted `section.key`, if the file sets it.
fn offset_of_key(text: &str, key: &str) -> Option<usize> {
    let document = DeTable::parse(text).ok()?;
    let (section, field) = key.split_once('.')?;
    let DeValue::Table(table) = document.get_ref().get(section)?.get_ref() else {
        return None;
    };
    Some(table.get(field)?.span().start)
}

/// Parses config TOML; `origin` is only used to name the source in errors.
pub fn parse_toml(text: &str, origin: &Path) -> Result<Config, ConfigError> {
    toml::from_str(text).map_err(|err| locate(&err, text, origin).into())
}

/// Turns toml's error into one that names the file, position and key.
fn locate(err: &toml::de::Error, text: &str, origin: &Path) -> ParseError {
    let span = err.span();
    let key = span.as_ref().and_then(|span| key_at(text, span.start));
    let mut message = err.message().to_owned();
    if key.is_none()
        && let Some(snippet) = span.as_ref().and_then(|span| snippet(text, span))
    {
        message = format!("{message} (at `{snippet}`)");
    }
    ParseError {
        path: origin.to_path_buf(),
        position: span.map(|span| position(text, span.start)),
        key,
        message,
    }
}

/// 1-based line and character column of byte `offset` in `text`.
pub(super) fn position(text: &str, offset: usize) -> Position {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    Position {
        line: before.matches('\n').count() + 1,
        column: before[line_start..].chars().count() + 1,
    }
}

/// The erroneous text itself, when it is short enough to quote on one line.
fn snippet<'a>(text: &'a str, span: &Range<usize>) -> Option<&'a str> {
    const MAX_QUOTED: usize = 40;
    let quoted = text.get(span.clone())?.trim();
    let fits = !quoted.is_empty() && quoted.len() <= MAX_QUOTED && !quoted.contains('\n');
    fits.then_some(quoted)
}

/// Dotted path of the innermost key whose name or value contains `offset`.
///
/// Returns `None` when the text does not even parse as TOML (then the error
/// is a syntax error, which has no key) or when `offset` lies outside every key.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let document = DeTable::parse(text).ok()?;
    let mut path = Vec::new();
    find_in_table(document.get_ref(), offset, &mut path).then(|| render_path(&path))
}

/// One step of a key path: a table key or an array index.
enum Segment {
    Key(String),
    Index(usize),
}

fn render_path(path: &[Segment]) -> String {
    let mut rendered = String::new();
    for segment in path {
        match segment {
            Segment::Key(key) if rendered.is_empty() => rendered.push_str(key),
            Segment::Key(key) => {
                rendered.push('.');
                rendered.push_str(key);
            }
            Segment::Index(index) => rendered.push_str(&format!("[{index}]")),
        }
    }
    rendered
}

/// Depth first, so the innermost match wins: a table's own span covers only
/// its `[header]`, so the keys below it must be searched regardless.
fn find_in_table(table: &DeTable<'_>, offset: usize, path: &mut Vec<Segment>) -> bool {
    for (key, value) in table {
        path.push(Segment::Key(key.get_ref().to_string()));
        if find_in_value(value, offset, path)
            || contains(key.span(), offset)
            || contains(value.span(), offset)
        {
            return true;
        }
        path.pop();
    }
    false
}

fn find_in_value(value: &Spanned<DeValue<'_>>, offset: usize, path: &mut Vec<Segment>) -> bool {
    match value.get_ref() {
        DeValue::Table(table) => find_in_table(table, offset, path),
        DeValue::Array(items) => items.iter().enumerate().any(|(index, item)| {
            path.push(Segment::Index(index));
            let found = find_in_value(item, offset, path) || contains(item.span(), offset);
            if !found {
                path.pop();
            }
            found
        }),
        _ => false,
    }
}

/// Like `Range::contains`, but an empty span still matches its start.
fn contains(span: Range<usize>, offset: usize) -> bool {
    span.contains(&offset) || span.start == offset
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_error(text: &str) -> ParseError {
        match parse_toml(text, Path::new("mcp-v8.toml")) {
            Err(ConfigError::Parse(err)) => err,
            other => panic!("expected a parse error, got {other:?}"),
        }
    }

    #[test]
    fn empty_file_is_all_defaults() {
        let config = parse_toml("", Path::new("empty.toml")).expect("empty file parses");
        assert_eq!(config, Config::default());
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let err = parse_error("[limits]\nheap_memory_max_mb = 16\nheap_memroy_cap_mb = 128\n");
        assert_eq!(err.key.as_deref(), Some("limits.heap_memroy_cap_mb"));
        assert_eq!(err.position, Some(Position { line: 3, column: 1 }));
        let message = err.to_string();
        assert!(
            message.starts_with("mcp-v8.toml:3:1: limits.heap_memroy_cap_mb: "),
            "{message}"
        );
        assert!(
            message.contains("unknown field `heap_memroy_cap_mb`"),
            "{message}"
        );
    }

    #[test]
    fn unknown_section_names_section() {
        let err = parse_error("# comment\n\n[limit]\nheap_memory_max_mb = 16\n");
        assert_eq!(err.key.as_deref(), Some("limit"));
        assert_eq!(err.position, Some(Position { line: 3, column: 2 }));
    }

    #[test]
    fn type_error_names_key_and_position() {
        let err = parse_error(
            "[server]\nlog_level = \"debug\"\n\n[limits]\nheap_memory_max_mb = \"lots\"\n",
        );
        assert_eq!(err.key.as_deref(), Some("limits.heap_memory_max_mb"));
        assert_eq!(
            err.position,
            Some(Position {
                line: 5,
                column: 22
            })
        );
        assert!(err.message.contains("invalid type"), "{}", err.message);
    }

    #[test]
    fn out_of_type_range_names_key() {
        let err = parse_error("transport = { http_port = 70000 }\n");
        assert_eq!(err.key.as_deref(), Some("transport.http_port"));
        assert_eq!(
            err.position,
            Some(Position {
                line: 1,
                column: 27
            })
        );
    }

    #[test]
    fn errors_inside_arrays_of_tables_name_the_element() {
        let err = parse_error(
            "[[wasm.modules]]\nname = \"a\"\npath = \"a.wasm\"\n\n[[wasm.modules]]\nname = 7\npath = \"b.wasm\"\n",
        );
        assert_eq!(err.key.as_deref(), Some("wasm.modules[1].name"));
        assert_eq!(err.position, Some(Position { line: 6, column: 8 }));

        let err = parse_error("[wasm]\nmodules = [{ name = \"a\" }]\n");
        assert_eq!(err.key.as_deref(), Some("wasm.modules[0]"));
        assert!(
            err.message.contains("missing field `path`"),
            "{}",
            err.message
        );
    }

    #[test]
    fn syntax_error_has_position_but_no_key() {
        let err = parse_error("[limits]\nheap_memory_max_mb = 1\nheap_memory_max_mb = 2\n");
        assert_eq!(err.key, None);
        assert_eq!(err.position.map(|p| p.line), Some(3));
        assert!(
            err.message.contains("`heap_memory_max_mb`"),
            "{}",
            err.message
        );
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        assert_eq!(position("a = \"é\"\nb", 9), Position { line: 2, column: 1 });
        assert_eq!(position("é = x", 3), Position { line: 1, column: 3 });
        assert_eq!(position("é", 1), Position { line: 1, column: 1 });
    }

    #[test]
    fn check_file_locates_validation_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("mcp-v8.toml");
        std::fs::write(
            &path,
            "[limits]\nheap_memory_cap_mb = 64\nheap_memory_max_mb = 100\n",
        )
        .expect("write");
        let message = check_file(&path).expect_err("invalid").to_string();
        let expected = format!(
            "{}:3:22: limits.heap_memory_max_mb = 100 is outside 4..=64",
            path.display()
        );
        assert!(message.starts_with(&expected), "{message}");

        std::fs::write(&path, "[cluster]\nport = 4000\n").expect("write");
        let message = check_file(&path).expect_err("unsupported").to_string();
        assert!(
            message.ends_with("not yet supported: --cluster-port (cluster.port)"),
            "{message}"
        );

        std::fs::write(&path, "[limits]\nheap_memory_cap_mb = 128\n").expect("write");
        assert_eq!(
            check_file(&path).expect("valid").limits.heap_memory_cap_mb,
            128
        );
    }

    #[test]
    fn unreadable_file_names_the_file() {
        let err = load_file(Path::new("/nonexistent/mcp-v8.toml")).expect_err("missing file");
        assert!(
            err.to_string().contains("/nonexistent/mcp-v8.toml"),
            "{err}"
        );
    }
}
