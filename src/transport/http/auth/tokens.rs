//! Static bearer tokens, compared in constant time.

use std::path::Path;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::super::HttpError;

/// The accepted static tokens, kept only as SHA-256 digests.
///
/// Comparing digests gives every comparison the same length, so neither the
/// position of the first differing byte nor a token's length leaks through
/// timing; and the tokens themselves are not kept in memory.
#[derive(Default)]
pub struct StaticTokens {
    digests: Vec<[u8; 32]>,
}

impl std::fmt::Debug for StaticTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StaticTokens({} tokens)", self.digests.len())
    }
}

impl StaticTokens {
    /// `auth.tokens` plus the lines of `auth.tokens_file`.
    pub fn load(tokens: &[String], file: Option<&Path>) -> Result<Self, HttpError> {
        let mut digests: Vec<[u8; 32]> = tokens.iter().map(|token| digest(token)).collect();
        if let Some(path) = file {
            let from_file = read_tokens_file(path)?;
            digests.extend(from_file.iter().map(|token| digest(token)));
        }
        Ok(Self { digests })
    }

    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// Whether `token` is one of the configured tokens. Looks at every
    /// configured token whatever the outcome, so timing does not reveal which
    /// one matched.
    pub fn contains(&self, token: &str) -> bool {
        let candidate = digest(token);
        self.digests
            .iter()
            .fold(subtle::Choice::from(0), |found, known| {
                found | known.ct_eq(&candidate)
            })
            .into()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// One token per line; blank lines and `#` comments are skipped.
fn read_tokens_file(path: &Path) -> Result<Vec<String>, HttpError> {
    let text = std::fs::read_to_string(path).map_err(|source| HttpError::TokensFile {
        path: path.to_path_buf(),
        source,
    })?;
    let mut tokens = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let token = line.trim();
        if token.is_empty() || token.starts_with('#') {
            continue;
        }
        if !token.bytes().all(|byte| byte.is_ascii_graphic()) {
            return Err(HttpError::BadToken {
                path: path.to_path_buf(),
                line: index + 1,
            });
        }
        tokens.push(token.to_owned());
    }
    if tokens.is_empty() {
        return Err(HttpError::NoTokens {
            path: path.to_path_buf(),
        });
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_exact_tokens_only() {
        let tokens = StaticTokens::load(&["alpha".to_owned(), "beta".to_owned()], None)
            .expect("inline tokens");
        assert!(tokens.contains("alpha"));
        assert!(tokens.contains("beta"));
        for wrong in ["", "alph", "alphaa", "ALPHA", "gamma"] {
            assert!(!tokens.contains(wrong), "{wrong}");
        }
    }

    #[test]
    fn file_skips_comments_and_blank_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tokens");
        std::fs::write(&path, "# ops team\n\n  one  \ntwo\n").expect("write");
        let tokens = StaticTokens::load(&[], Some(&path)).expect("file tokens");
        assert!(tokens.contains("one") && tokens.contains("two"));
        assert!(!tokens.contains("# ops team"));

        std::fs::write(&path, "# nothing here\n").expect("write");
        let err = StaticTokens::load(&[], Some(&path)).expect_err("empty");
        assert!(err.to_string().ends_with("lists no tokens"), "{err}");

        std::fs::write(&path, "ok\nnot ok\n").expect("write");
        let err = StaticTokens::load(&[], Some(&path)).expect_err("space");
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
