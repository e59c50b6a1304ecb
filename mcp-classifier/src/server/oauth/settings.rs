//! The three settings that make the server an OAuth resource server, checked together.

use std::net::IpAddr;
use std::path::PathBuf;

use http::Uri;

/// What `MCP_OAUTH_ISSUER`, `MCP_OAUTH_JWKS` and `MCP_RESOURCE_URL` say, checked.
#[derive(Debug, Clone)]
pub struct OAuthSettings {
    /// The authorization server's issuer identifier: a token's `iss` must be exactly this.
    pub issuer: String,
    /// Where the authorization server's public keys are.
    pub jwks: JwksSource,
    /// This server's public URL: a token's audience and the metadata's `resource`.
    pub resource: ResourceUrl,
}

/// A JWK Set in a file or at a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    File(PathBuf),
    /// `https://`, or `http://` on a loopback host.
    Url(Uri),
}

/// This server's resource URL, as written, with the parts the metadata needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceUrl {
    /// As written (trimmed): tokens' `aud` is compared with exactly this text.
    pub url: String,
    /// The host, for the accepted `Host` values.
    pub host: String,
    /// `scheme://authority`.
    origin: String,
    /// The path, `/` when it has none.
    path: String,
}

impl ResourceUrl {
    /// The path of the protected resource metadata of this resource (RFC 9728 §3.1): the
    /// well-known prefix, then the resource's path unless that is `/`.
    pub fn metadata_path(&self) -> String {
        let suffix = if self.path == "/" { "" } else { &self.path };
        format!("{}{suffix}", super::metadata::WELL_KNOWN)
    }

    /// The absolute URL of the metadata, for `WWW-Authenticate: Bearer resource_metadata=…`.
    pub fn metadata_url(&self) -> String {
        format!("{}{}", self.origin, self.metadata_path())
    }
}

/// Why the OAuth settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(
        "OAuth needs MCP_OAUTH_ISSUER, MCP_OAUTH_JWKS and MCP_RESOURCE_URL together; {missing} \
         {verb} not set"
    )]
    Incomplete { missing: String, verb: &'static str },
    #[error("{name} must be an absolute https:// URL (http:// only on a loopback host): {why}")]
    Url { name: &'static str, why: String },
}

impl OAuthSettings {
    /// The settings, when any of the three is set: `None` when none is, an error naming what
    /// is missing when only some are. Blank values count as unset.
    pub fn from_values(
        issuer: Option<&str>,
        jwks: Option<&str>,
        resource: Option<&str>,
    ) -> Result<Option<Self>, SettingsError> {
        let named = [
            ("MCP_OAUTH_ISSUER", issuer),
            ("MCP_OAUTH_JWKS", jwks),
            ("MCP_RESOURCE_URL", resource),
        ]
        .map(|(name, value)| (name, value.map(str::trim).filter(|v| !v.is_empty())));
        let missing: Vec<&str> = named
            .iter()
            .filter(|(_, value)| value.is_none())
            .map(|(name, _)| *name)
            .collect();
        let [(_, Some(issuer)), (_, Some(jwks)), (_, Some(resource))] = named else {
            if missing.len() == named.len() {
                return Ok(None);
            }
            return Err(SettingsError::Incomplete {
                verb: if missing.len() == 1 { "is" } else { "are" },
                missing: missing.join(" and "),
            });
        };
        check_url("MCP_OAUTH_ISSUER", issuer)?;
        let jwks = if has_scheme(jwks, "https") || has_scheme(jwks, "http") {
            JwksSource::Url(check_url("MCP_OAUTH_JWKS", jwks)?)
        } else {
            JwksSource::File(PathBuf::from(jwks))
        };
        let uri = check_url("MCP_RESOURCE_URL", resource)?;
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return Err(url_error("MCP_RESOURCE_URL", "it has no scheme or host"));
        };
        Ok(Some(Self {
            issuer: issuer.to_owned(),
            jwks,
            resource: ResourceUrl {
                url: resource.to_owned(),
                host: authority.host().to_owned(),
                origin: format!("{scheme}://{authority}"),
                path: uri.path().to_owned(),
            },
        }))
    }
}

fn has_scheme(text: &str, scheme: &str) -> bool {
    text.get(..scheme.len() + 3)
        .is_some_and(|start| start.eq_ignore_ascii_case(&format!("{scheme}://")))
}

fn url_error(name: &'static str, why: impl Into<String>) -> SettingsError {
    SettingsError::Url {
        name,
        why: why.into(),
    }
}

/// An absolute `https://` URL, or `http://` on a loopback host; no user name or password, no
/// fragment, no query (but for the JWKS).
fn check_url(name: &'static str, text: &str) -> Result<Uri, SettingsError> {
    let uri: Uri = text
        .parse()
        .map_err(|e: http::uri::InvalidUri| url_error(name, format!("{text:?}: {e}")))?;
    let Some(authority) = uri.authority() else {
        return Err(url_error(name, format!("{text:?} has no host")));
    };
    if authority.as_str().contains('@') {
        return Err(url_error(
            name,
            format!("{text:?} holds a user name or password"),
        ));
    }
    if text.contains('#') {
        return Err(url_error(name, format!("{text:?} has a fragment")));
    }
    if uri.query().is_some() && name != "MCP_OAUTH_JWKS" {
        return Err(url_error(name, format!("{text:?} has a query")));
    }
    match uri.scheme_str() {
        Some(scheme) if scheme.eq_ignore_ascii_case("https") => Ok(uri),
        Some(scheme) if scheme.eq_ignore_ascii_case("http") && is_loopback(authority.host()) => {
            Ok(uri)
        }
        Some(scheme) if scheme.eq_ignore_ascii_case("http") => Err(url_error(
            name,
            format!("{text:?} is http:// on a host that is not loopback"),
        )),
        _ => Err(url_error(name, format!("{text:?} is not an http(s) URL"))),
    }
}

/// `localhost`, `127.0.0.0/8` or `::1`.
fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn settings(
        issuer: Option<&str>,
        jwks: Option<&str>,
        resource: Option<&str>,
    ) -> Result<Option<OAuthSettings>, String> {
        OAuthSettings::from_values(issuer, jwks, resource).map_err(|e| e.to_string())
    }

    const ISSUER: Option<&str> = Some("https://auth.example.com/realms/traffic");
    const RESOURCE: Option<&str> = Some("https://traffic.example.com/mcp");

    #[test]
    fn none_of_the_three_is_no_oauth() {
        assert!(settings(None, None, None).unwrap().is_none());
        assert!(settings(Some(" "), Some(""), None).unwrap().is_none());
    }

    #[test]
    fn a_partial_set_names_what_is_missing() {
        let error = settings(ISSUER, None, None).unwrap_err();
        assert!(
            error.ends_with("MCP_OAUTH_JWKS and MCP_RESOURCE_URL are not set"),
            "{error}"
        );
        let error = settings(ISSUER, Some("keys.json"), Some("  ")).unwrap_err();
        assert!(error.ends_with("MCP_RESOURCE_URL is not set"), "{error}");
        let error = settings(None, Some("keys.json"), RESOURCE).unwrap_err();
        assert!(error.ends_with("MCP_OAUTH_ISSUER is not set"), "{error}");
    }

    #[test]
    fn the_resource_url_gives_the_metadata_url() {
        let oauth = settings(ISSUER, Some("/etc/keys.json"), RESOURCE)
            .unwrap()
            .unwrap();
        assert_eq!(oauth.jwks, JwksSource::File("/etc/keys.json".into()));
        assert_eq!(oauth.resource.url, "https://traffic.example.com/mcp");
        assert_eq!(oauth.resource.host, "traffic.example.com");
        assert_eq!(
            oauth.resource.metadata_url(),
            "https://traffic.example.com/.well-known/oauth-protected-resource/mcp"
        );
        let root = settings(ISSUER, Some("k"), Some("http://127.0.0.1:8001"))
            .unwrap()
            .unwrap();
        assert_eq!(
            root.resource.metadata_url(),
            "http://127.0.0.1:8001/.well-known/oauth-protected-resource"
        );
    }

    #[test]
    fn urls_must_be_https_or_loopback_http() {
        for (jwks, resource, words) in [
            ("k", "http://traffic.example.com/mcp", "not loopback"),
            ("k", "traffic.example.com/mcp", "invalid format"),
            ("k", "/mcp", "no host"),
            ("k", "ftp://traffic.example.com/mcp", "not an http(s) URL"),
            ("k", "https://user:pw@traffic.example.com/mcp", "user name"),
            ("k", "https://traffic.example.com/mcp?x=1", "query"),
            ("k", "https://traffic.example.com/mcp#x", "fragment"),
            (
                "http://keys.example.com/jwks",
                "https://t.example.com/mcp",
                "MCP_OAUTH_JWKS",
            ),
        ] {
            let error = settings(ISSUER, Some(jwks), Some(resource)).unwrap_err();
            assert!(error.contains(words), "{resource}: {error}");
        }
        for loopback in [
            "http://localhost:8001/mcp",
            "http://127.0.0.2/mcp",
            "http://[::1]:80/mcp",
        ] {
            assert!(
                settings(ISSUER, Some("k"), Some(loopback)).is_ok(),
                "{loopback}"
            );
        }
        let error = settings(Some("auth.example.com"), Some("k"), RESOURCE).unwrap_err();
        assert!(error.starts_with("MCP_OAUTH_ISSUER must be"), "{error}");
        let url = settings(ISSUER, Some("HTTPS://keys.example.com/jwks?v=2"), RESOURCE)
            .unwrap()
            .unwrap();
        assert!(matches!(url.jwks, JwksSource::Url(_)), "{:?}", url.jwks);
    }
}
