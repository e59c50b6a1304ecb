//! What the server tells clients about its authorization: the protected resource metadata
//! (RFC 9728) and the `WWW-Authenticate` challenges (RFC 6750 §3, RFC 9728 §5.1).

use bytes::Bytes;
use http::HeaderValue;
use serde_json::json;

use super::scope::{CLASSIFY, READ};
use super::settings::OAuthSettings;

/// Where protected resource metadata lives (RFC 9728 §3).
pub const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// The name clients show for this resource.
const RESOURCE_NAME: &str = "smart-traffic classifier";

/// The protected resource metadata document.
pub(super) fn document(settings: &OAuthSettings) -> Bytes {
    Bytes::from(
        json!({
            "resource": settings.resource.url,
            "authorization_servers": [settings.issuer],
            "scopes_supported": [READ, CLASSIFY],
            "bearer_methods_supported": ["header"],
            "resource_name": RESOURCE_NAME,
        })
        .to_string(),
    )
}

/// `Bearer k1="v1", k2="v2"`. Every value here is this server's own text or a URL it has
/// checked; a quote or backslash would still be replaced, so the header always parses.
pub(super) fn challenge(params: &[(&str, &str)]) -> HeaderValue {
    let params: Vec<String> = params
        .iter()
        .map(|(name, value)| format!(r#"{name}="{}""#, value.replace(['"', '\\'], "'")))
        .collect();
    HeaderValue::from_str(&format!("Bearer {}", params.join(", ")))
        .unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn the_document_names_the_resource_its_issuer_and_scopes() {
        let settings = OAuthSettings::from_values(
            Some("https://auth.example.com"),
            Some("jwks.json"),
            Some("https://traffic.example.com/mcp"),
        )
        .unwrap()
        .unwrap();
        let document: serde_json::Value = serde_json::from_slice(&document(&settings)).unwrap();
        assert_eq!(
            document,
            json!({
                "resource": "https://traffic.example.com/mcp",
                "authorization_servers": ["https://auth.example.com"],
                "scopes_supported": ["traffic:read", "traffic:classify"],
                "bearer_methods_supported": ["header"],
                "resource_name": "smart-traffic classifier",
            })
        );
    }

    #[test]
    fn challenges_quote_their_values() {
        assert_eq!(
            challenge(&[("error", "invalid_token"), ("scope", "a b")]),
            "Bearer error=\"invalid_token\", scope=\"a b\""
        );
        assert_eq!(
            challenge(&[("error_description", "say \"hi\"\\")]),
            "Bearer error_description=\"say 'hi''\""
        );
        assert_eq!(challenge(&[("x", "line\nbreak")]), "Bearer");
    }
}
