//! Secrets — API keys, bearer tokens — held as [`SecretString`] from the moment they are read,
//! so that no `Debug` output or log line shows them, and compared with what a client presents
//! without revealing, by timing, how much of a guess was right.

use std::convert::Infallible;

pub use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

/// Reads a setting as a secret (a clap value parser), so that it is never held in plain text.
pub fn secret(raw: &str) -> Result<SecretString, Infallible> {
    Ok(raw.trim().into())
}

/// The token of an `Authorization: Bearer TOKEN` value; the scheme name is case-insensitive
/// (RFC 9110 §11.1).
pub fn bearer_token(authorization: &str) -> Option<&str> {
    authorization
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
}

/// Whether `presented` is one of `secrets`. Every secret is compared in constant time and none
/// is skipped, so neither which secret nearly matched nor where a guess went wrong shows.
pub fn matches_any<'a>(
    presented: &str,
    secrets: impl IntoIterator<Item = &'a SecretString>,
) -> bool {
    secrets.into_iter().fold(false, |found, secret| {
        bool::from(
            presented
                .as_bytes()
                .ct_eq(secret.expose_secret().as_bytes()),
        ) | found
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets<const N: usize>(raw: [&str; N]) -> Vec<SecretString> {
        raw.into_iter().map(SecretString::from).collect()
    }

    #[test]
    fn only_an_identical_secret_matches() {
        assert!(matches_any("s3cret", &secrets(["s3cret"])));
        assert!(!matches_any("s3cret", &secrets(["s3creT"])));
        assert!(!matches_any("s3cret", &secrets(["s3cret!"])));
        assert!(!matches_any("", &secrets(["x"])));
        assert!(!matches_any("x", &secrets([])));
        assert!(matches_any("b", &secrets(["a", "b", "c"])));
    }

    #[test]
    fn a_secret_never_shows_in_debug_output() {
        let key = secret(" hunter2 ").unwrap();
        assert_eq!(key.expose_secret(), "hunter2");
        assert!(!format!("{key:?}").contains("hunter2"));
    }

    #[test]
    fn the_bearer_scheme_is_read_in_any_case() {
        assert_eq!(bearer_token("Bearer tok"), Some("tok"));
        assert_eq!(bearer_token("bEaReR  tok "), Some("tok"));
        assert_eq!(bearer_token("Basic tok"), None);
        assert_eq!(bearer_token("Bearer"), None);
    }
}
