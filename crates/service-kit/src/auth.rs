//! Secrets clients present — API keys and bearer tokens — read from their header and compared
//! without revealing, by timing, how much of a guess was right.

use subtle::ConstantTimeEq;

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
pub fn matches_any<'a>(presented: &str, secrets: impl IntoIterator<Item = &'a str>) -> bool {
    secrets.into_iter().fold(false, |found, secret| {
        bool::from(presented.as_bytes().ct_eq(secret.as_bytes())) | found
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_identical_secret_matches() {
        assert!(matches_any("s3cret", ["s3cret"]));
        assert!(!matches_any("s3cret", ["s3creT"]));
        assert!(!matches_any("s3cret", ["s3cret!"]));
        assert!(!matches_any("", ["x"]));
        assert!(!matches_any("x", []));
        assert!(matches_any("b", ["a", "b", "c"]));
    }

    #[test]
    fn the_bearer_scheme_is_read_in_any_case() {
        assert_eq!(bearer_token("Bearer tok"), Some("tok"));
        assert_eq!(bearer_token("bEaReR  tok "), Some("tok"));
        assert_eq!(bearer_token("Basic tok"), None);
        assert_eq!(bearer_token("Bearer"), None);
    }
}
