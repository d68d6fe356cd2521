//! Heap snapshot names: the SHA-256 of the stored object, as 64 lowercase hex
//! characters.
//!
//! Names arrive from agents (a `heap` argument) and end up in file paths and
//! S3 keys, so the only way to get a [`HeapKey`] is through [`HeapKey::parse`]
//! or [`HeapKey::of`]: a key that exists is safe to join onto a path.
//!
//! Because the name is the content's hash, every read can be checked against
//! it; [`HeapKey::verify`] is that check, shared by all backends. Writes take
//! a [`HeapObject`]: bytes hashed once, with the key they hash to.

use std::fmt;
use std::str::FromStr;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::StorageError;

/// Length of a heap name: a SHA-256 digest in hex.
pub const HEAP_KEY_LEN: usize = 64;

/// How much of a rejected name an error message repeats; names come from
/// agents and may be arbitrarily long.
const SHOWN_CHARS: usize = 80;

/// A validated heap snapshot name: 64 lowercase hex chars (SHA-256 of the
/// stored object).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HeapKey(String);

/// Bytes to store and their name, hashed once. Only [`HeapObject::new`]
/// makes one, so a store writes an object under its own name by
/// construction and never hashes it again (a trivial heap costs a tenth of a
/// millisecond to hash, on the request path of every stateful execution).
#[derive(Debug, Clone)]
pub struct HeapObject {
    key: HeapKey,
    bytes: Bytes,
}

impl HeapObject {
    pub fn new(bytes: impl Into<Bytes>) -> HeapObject {
        let bytes = bytes.into();
        HeapObject {
            key: HeapKey::of(&bytes),
            bytes,
        }
    }

    pub fn key(&self) -> &HeapKey {
        &self.key
    }

    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }
}

/// Why a text is not a heap name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid heap name {shown:?}: {reason}")]
pub struct InvalidHeapKey {
    /// The rejected text, cut to a readable length.
    shown: String,
    reason: String,
}

impl HeapKey {
    /// Accepts exactly 64 lowercase hexadecimal characters. Anything else,
    /// such as `../../etc/passwd` or an uppercase digest, is refused with the
    /// reason, so it can never reach a path or an S3 key.
    pub fn parse(text: &str) -> Result<HeapKey, InvalidHeapKey> {
        let invalid = |reason: String| InvalidHeapKey {
            shown: text.chars().take(SHOWN_CHARS).collect(),
            reason,
        };
        let len = text.chars().count();
        if len != HEAP_KEY_LEN {
            return Err(invalid(format!(
                "expected {HEAP_KEY_LEN} lowercase hexadecimal characters (a SHA-256), got {len}"
            )));
        }
        if let Some((at, c)) = text
            .chars()
            .enumerate()
            .find(|(_, c)| !matches!(c, '0'..='9' | 'a'..='f'))
        {
            let reason = if c.is_ascii_hexdigit() {
                format!("uppercase {c:?} at position {at}; heap names are lowercase")
            } else {
                format!("{c:?} at position {at} is not a hexadecimal digit")
            };
            return Err(invalid(reason));
        }
        Ok(HeapKey(text.to_owned()))
    }

    /// The name `object` is stored under: its SHA-256.
    pub fn of(object: &[u8]) -> HeapKey {
        HeapKey(hex::encode(Sha256::digest(object)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Checks that `object` is the content this key names. Every backend calls
    /// this on every read (writes take a [`HeapObject`]), so a truncated file, a
    /// flipped bit or a file planted under the wrong name is reported as
    /// [`StorageError::Corrupt`] instead of being restored into an isolate.
    pub fn verify(&self, object: &[u8]) -> Result<(), StorageError> {
        let actual = HeapKey::of(object);
        if actual == *self {
            Ok(())
        } else {
            Err(StorageError::Corrupt {
                key: self.clone(),
                reason: format!("its {} bytes hash to {actual}", object.len()),
            })
        }
    }

    /// The first two characters: the subdirectory a directory store keeps the
    /// object in, so no single directory grows to millions of entries.
    pub(crate) fn shard(&self) -> &str {
        &self.0[..2]
    }
}

impl fmt::Display for HeapKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for HeapKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for HeapKey {
    type Err = InvalidHeapKey;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        HeapKey::parse(text)
    }
}

impl TryFrom<String> for HeapKey {
    type Error = InvalidHeapKey;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        HeapKey::parse(&text)
    }
}

impl From<HeapKey> for String {
    fn from(key: HeapKey) -> String {
        key.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SHA-256 of the empty string, a well-known digest.
    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn rejection(text: &str) -> String {
        match HeapKey::parse(text) {
            Ok(key) => panic!("{text:?} was accepted as {key}"),
            Err(err) => err.to_string(),
        }
    }

    #[test]
    fn of_is_the_sha256_in_lowercase_hex() {
        assert_eq!(HeapKey::of(b"").as_str(), EMPTY_SHA256);
        assert_eq!(HeapKey::parse(EMPTY_SHA256), Ok(HeapKey::of(b"")));
    }

    #[test]
    fn path_traversal_is_refused_clearly() {
        assert_eq!(
            rejection("../../etc/passwd"),
            "invalid heap name \"../../etc/passwd\": expected 64 lowercase hexadecimal \
             characters (a SHA-256), got 16"
        );
        let padded = format!("../../{}", &EMPTY_SHA256[6..]);
        assert!(
            rejection(&padded).ends_with("'.' at position 0 is not a hexadecimal digit"),
            "{}",
            rejection(&padded)
        );
    }

    #[test]
    fn uppercase_short_long_and_non_hex_are_refused() {
        let upper = EMPTY_SHA256.to_uppercase();
        assert!(
            rejection(&upper).ends_with("uppercase 'E' at position 0; heap names are lowercase")
        );
        assert!(rejection(&EMPTY_SHA256[..63]).ends_with("got 63"));
        assert!(rejection(&format!("{EMPTY_SHA256}0")).ends_with("got 65"));
        assert!(rejection("").ends_with("got 0"));
        let non_hex = format!("{}g", &EMPTY_SHA256[..63]);
        assert!(rejection(&non_hex).ends_with("'g' at position 63 is not a hexadecimal digit"));
        // 64 bytes but fewer characters: counted as characters, not bytes.
        let multibyte = format!("{}é", &EMPTY_SHA256[..62]);
        assert!(rejection(&multibyte).ends_with("got 63"));
    }

    #[test]
    fn long_input_is_cut_in_the_message() {
        let message = rejection(&"x".repeat(10_000));
        assert!(message.len() < 200, "{message}");
    }

    #[test]
    fn serde_is_a_validated_string() {
        let key = HeapKey::of(b"heap");
        let json = serde_json::to_string(&key).expect("serializes");
        assert_eq!(json, format!("\"{key}\""));
        assert_eq!(serde_json::from_str::<HeapKey>(&json).ok(), Some(key));
        let err = serde_json::from_str::<HeapKey>("\"../x\"").expect_err("invalid");
        assert!(err.to_string().contains("invalid heap name"), "{err}");
    }

    #[test]
    fn verify_accepts_the_content_and_nothing_else() {
        let object = b"snapshot bytes".to_vec();
        let key = HeapKey::of(&object);
        assert!(key.verify(&object).is_ok());

        let mut flipped = object.clone();
        flipped[3] ^= 0x01;
        let message = key.verify(&flipped).expect_err("flipped").to_string();
        assert!(
            message.starts_with(&format!("heap corrupt: {key}: its 14 bytes hash to ")),
            "{message}"
        );
        let truncated = &object[..object.len() - 1];
        assert!(matches!(
            key.verify(truncated),
            Err(StorageError::Corrupt { .. })
        ));
    }
}
