//! The rules for session names, heap names and tags.
//!
//! Everything that becomes part of a sled key is checked here first: session
//! names are joined to entry indexes with a NUL separator, which is only
//! unambiguous because names cannot contain control characters, and heap names
//! must be exactly the 64 hex digits the storage layer uses.

use std::collections::BTreeMap;

use super::SessionError;
use crate::storage::HeapKey;

/// Longest session name, in characters.
pub const MAX_SESSION_NAME_CHARS: usize = 128;
/// Longest tag key, in characters.
pub const MAX_TAG_KEY_CHARS: usize = 128;
/// Longest tag value, in characters.
pub const MAX_TAG_VALUE_CHARS: usize = 1024;
/// Most tags one heap may carry: tags label snapshots, they are not a database.
pub const MAX_TAGS_PER_HEAP: usize = 64;

/// How much of a rejected value an error message quotes.
const QUOTE_CHARS: usize = 80;

/// Checks a session name: 1 to 128 characters, not all of them spaces, none
/// of them a control character.
pub fn validate_session_name(name: &str) -> Result<(), SessionError> {
    let invalid = |reason: String| SessionError::InvalidSessionName {
        name: quote(name),
        reason,
    };
    if name.is_empty() {
        return Err(invalid("a session name cannot be empty".to_owned()));
    }
    if name.trim().is_empty() {
        // Surely a mistake, and one no listing would show legibly.
        return Err(invalid(
            "a session name cannot be only white space".to_owned(),
        ));
    }
    let chars = name.chars().count();
    if chars > MAX_SESSION_NAME_CHARS {
        return Err(invalid(format!(
            "it has {chars} characters; at most {MAX_SESSION_NAME_CHARS} are allowed"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid(
            "control characters (newlines, tabs, NUL, ...) are not allowed".to_owned(),
        ));
    }
    Ok(())
}

/// Checks a heap name: 64 lowercase hexadecimal characters, by the storage
/// layer's own rule, so that every name tagged or logged is one a heap can
/// have. Lowercase only matters here too: accepting `AB..` as well as `ab..`
/// would give one snapshot two sets of tags.
pub fn validate_heap(heap: &str) -> Result<(), SessionError> {
    HeapKey::parse(heap)?;
    Ok(())
}

/// Checks a set of tags: at most 64, keys of 1 to 128 characters, values of
/// at most 1024.
pub fn validate_tags(tags: &BTreeMap<String, String>) -> Result<(), SessionError> {
    if tags.len() > MAX_TAGS_PER_HEAP {
        return Err(SessionError::InvalidTags(format!(
            "{} tags given; a heap carries at most {MAX_TAGS_PER_HEAP}",
            tags.len()
        )));
    }
    for (key, value) in tags {
        validate_tag_key(key)?;
        let chars = value.chars().count();
        if chars > MAX_TAG_VALUE_CHARS {
            return Err(SessionError::InvalidTags(format!(
                "the value of {} has {chars} characters; at most {MAX_TAG_VALUE_CHARS} are allowed",
                quote(key)
            )));
        }
    }
    Ok(())
}

fn validate_tag_key(key: &str) -> Result<(), SessionError> {
    if key.is_empty() {
        return Err(SessionError::InvalidTags(
            "a tag key cannot be empty".to_owned(),
        ));
    }
    let chars = key.chars().count();
    if chars > MAX_TAG_KEY_CHARS {
        return Err(SessionError::InvalidTags(format!(
            "the key {} has {chars} characters; at most {MAX_TAG_KEY_CHARS} are allowed",
            quote(key)
        )));
    }
    if key.chars().any(char::is_control) {
        return Err(SessionError::InvalidTags(format!(
            "the key {} holds a control character (newline, tab, NUL, ...), which keys may not",
            quote(key)
        )));
    }
    Ok(())
}

/// `value` as a quoted string for an error message, shortened so that a huge
/// argument does not become a huge message.
fn quote(value: &str) -> String {
    match value.char_indices().nth(QUOTE_CHARS) {
        Some((cut, _)) => format!("{:?}...", &value[..cut]),
        None => format!("{value:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names() {
        for good in ["a", "my session", "données/été-2025", &"x".repeat(128)] {
            assert!(validate_session_name(good).is_ok(), "{good:?}");
        }
        for bad in [
            "",
            "   ",
            "\u{a0}",
            "a\nb",
            "nul\0",
            "tab\there",
            &"x".repeat(129),
        ] {
            let error = validate_session_name(bad).expect_err(bad);
            assert!(error.is_invalid_argument());
        }
        // Characters, not bytes: 128 two-byte characters are fine.
        assert!(validate_session_name(&"é".repeat(128)).is_ok());
    }

    #[test]
    fn heap_names() {
        assert!(validate_heap(&"0123456789abcdef".repeat(4)).is_ok());
        for bad in [
            String::new(),
            "ab".repeat(31),
            "ab".repeat(33),
            "AB".repeat(32),
            "g".repeat(64),
            // 64 bytes, but not 64 hex digits.
            "é".repeat(32),
        ] {
            let error = validate_heap(&bad).expect_err(&bad);
            assert!(error.is_invalid_argument());
            assert!(error.to_string().contains("get_execution"), "{error}");
        }
    }

    #[test]
    fn long_values_are_quoted_shortened() {
        let error = validate_heap(&"z".repeat(10_000)).expect_err("too long");
        assert!(error.to_string().len() < 400, "{error}");
        let error = validate_session_name(&"\n".repeat(10_000)).expect_err("too long");
        assert!(error.to_string().len() < 400, "{error}");
        assert!(error.to_string().contains("\\n\"..."), "{error}");
    }

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn tag_limits() {
        assert!(validate_tags(&BTreeMap::new()).is_ok());
        assert!(validate_tags(&tags(&[("k", "")])).is_ok());
        let long_key = "k".repeat(MAX_TAG_KEY_CHARS + 1);
        let long_value = "v".repeat(MAX_TAG_VALUE_CHARS + 1);
        assert!(validate_tags(&tags(&[("", "v")])).is_err());
        for key in ["a\nb", "nul\0", "\t"] {
            let error = validate_tags(&tags(&[(key, "v")])).expect_err(key);
            assert!(error.to_string().contains("control character"), "{error}");
        }
        assert!(validate_tags(&tags(&[("k", "multi\nline value")])).is_ok());
        assert!(validate_tags(&tags(&[(&long_key, "v")])).is_err());
        assert!(validate_tags(&tags(&[("k", &long_value)])).is_err());
        let at_limit = "v".repeat(MAX_TAG_VALUE_CHARS);
        assert!(validate_tags(&tags(&[("k", &at_limit)])).is_ok());

        let many: BTreeMap<String, String> = (0..=MAX_TAGS_PER_HEAP)
            .map(|i| (format!("k{i}"), String::new()))
            .collect();
        let error = validate_tags(&many).expect_err("65 tags");
        assert!(error.to_string().contains("at most 64"), "{error}");
    }
}
