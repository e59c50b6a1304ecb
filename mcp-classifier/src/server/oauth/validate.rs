//! Checking a JWT access token: its signature against the authorization server's keys, then
//! its claims (RFC 9068, RFC 8707 audience binding).

use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{AlgorithmFamily, Validation};
use serde::Deserialize;

use super::jwks::{KeyStore, Lookup};
use super::scope::Scopes;

/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY: Duration = Duration::from_secs(30);

/// Why a token is refused. The texts go to the client as `error_description`: no quotes, no
/// backslashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not a JWT this server can read")]
    Malformed,
    #[error("the token's algorithm is not accepted: asymmetric signatures only, matching the key")]
    Algorithm,
    #[error("no key of the authorization server matches the token's kid")]
    UnknownKey,
    #[error("the authorization server's keys are not loaded yet")]
    KeysUnavailable,
    #[error("the token's signature is invalid")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    #[error("the token was issued by another issuer")]
    Issuer,
    #[error("the token's audience is not this server")]
    Audience,
    #[error("the token has no {0} claim")]
    MissingClaim(&'static str),
}

impl TokenError {
    fn from_jwt(error: &jsonwebtoken::errors::Error) -> Self {
        match error.kind() {
            ErrorKind::ExpiredSignature => Self::Expired,
            ErrorKind::ImmatureSignature => Self::NotYetValid,
            ErrorKind::InvalidAudience => Self::Audience,
            ErrorKind::InvalidIssuer => Self::Issuer,
            ErrorKind::InvalidSignature => Self::Signature,
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => Self::Algorithm,
            ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
                "exp" => Self::MissingClaim("exp"),
                "iss" => Self::MissingClaim("iss"),
                "aud" => Self::MissingClaim("aud"),
                _ => Self::Malformed,
            },
            _ => Self::Malformed,
        }
    }
}

/// What a valid token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub subject: Option<String>,
    pub scopes: Scopes,
}

/// The claims read besides those `jsonwebtoken` checks (`exp`, `nbf`, `iss`, `aud`).
#[derive(Deserialize)]
struct Claims {
    /// Read only to refuse an `iss` that is not one string (jsonwebtoken takes an array).
    #[serde(rename = "iss")]
    _issuer: Option<String>,
    sub: Option<String>,
    /// RFC 9068: space-separated.
    scope: Option<String>,
    /// Some authorization servers (Entra ID, Okta) use `scp`, as a list or a string.
    scp: Option<ScopeList>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ScopeList {
    Text(String),
    List(Vec<String>),
}

/// Checks tokens issued by one issuer for one resource.
pub(super) struct Validator {
    /// One per key family, each with that family's algorithms (jsonwebtoken checks that the
    /// key and every listed algorithm are of one family; the key's own algorithms are checked
    /// before, by the key lookup).
    rsa: Validation,
    ec: Validation,
    ed: Validation,
}

impl Validator {
    pub(super) fn new(issuer: &str, audience: &str) -> Self {
        let validation = |family| {
            let mut validation = Validation::new_for_family(family);
            validation.leeway = LEEWAY.as_secs();
            validation.validate_exp = true;
            validation.validate_nbf = true;
            validation.validate_aud = true;
            validation.set_issuer(&[issuer]);
            validation.set_audience(&[audience]);
            validation.set_required_spec_claims(&["exp", "iss", "aud"]);
            validation
        };
        Self {
            rsa: validation(AlgorithmFamily::Rsa),
            ec: validation(AlgorithmFamily::Ec),
            ed: validation(AlgorithmFamily::Ed),
        }
    }

    /// The subject and scopes of a valid `token`. A `kid` no loaded key has loads the keys
    /// again first (at most once per 30 s).
    pub(super) async fn validate(
        &self,
        token: &str,
        keys: &KeyStore,
    ) -> Result<Verified, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        let kid = header.kid.as_deref();
        let mut set = keys.current();
        if matches!(set.find(kid, header.alg), Lookup::Unknown) {
            keys.reload_for_unknown_key().await;
            set = keys.current();
        }
        let key = match set.find(kid, header.alg) {
            Lookup::Found(key) => key,
            Lookup::WrongAlgorithm => return Err(TokenError::Algorithm),
            Lookup::Unknown if !set.is_loaded() => return Err(TokenError::KeysUnavailable),
            Lookup::Unknown => return Err(TokenError::UnknownKey),
        };
        let validation = match key.key.family() {
            AlgorithmFamily::Rsa => &self.rsa,
            AlgorithmFamily::Ec => &self.ec,
            AlgorithmFamily::Ed => &self.ed,
            AlgorithmFamily::Hmac => return Err(TokenError::Algorithm),
        };
        let claims = jsonwebtoken::decode::<Claims>(token, &key.key, validation)
            .map_err(|e| TokenError::from_jwt(&e))?
            .claims;
        let scp = match &claims.scp {
            Some(ScopeList::Text(text)) => Scopes::parse(text.split_whitespace()),
            Some(ScopeList::List(list)) => Scopes::parse(list.iter().map(String::as_str)),
            None => Scopes::NONE,
        };
        let scope = Scopes::parse(claims.scope.as_deref().unwrap_or("").split_whitespace());
        Ok(Verified {
            subject: claims.sub,
            scopes: scope.with(scp),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::Arc;

    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::jwk::Jwk;
    use jsonwebtoken::{Algorithm, EncodingKey, Header, get_current_timestamp};
    use serde_json::{Value, json};

    use super::*;
    use crate::server::oauth::settings::JwksSource;

    const ISSUER: &str = "https://auth.example.com";
    const RESOURCE: &str = "https://traffic.example.com/mcp";
    /// PKCS#8 v1 of an Ed25519 private key, up to its 32-byte seed (RFC 8410).
    const ED25519_PKCS8_PREFIX: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];

    /// An Ed25519 key made for the test, and its public JWK.
    struct TestKey {
        kid: &'static str,
        key: EncodingKey,
        jwk: Jwk,
    }

    impl TestKey {
        fn new(kid: &'static str) -> Self {
            let seed: [u8; 32] = rand::random();
            let key = EncodingKey::from_ed_der(&[&ED25519_PKCS8_PREFIX[..], &seed].concat());
            let mut jwk = Jwk::from_encoding_key(&key, Algorithm::EdDSA).unwrap();
            jwk.common.key_id = Some(kid.to_owned());
            Self { kid, key, jwk }
        }

        fn sign(&self, claims: &Value) -> String {
            let mut header = Header::new(Algorithm::EdDSA);
            header.kid = Some(self.kid.to_owned());
            jsonwebtoken::encode(&header, claims, &self.key).unwrap()
        }
    }

    /// Claims valid for a minute, `extra` added (a `null` removes a claim).
    fn claims(extra: Value) -> Value {
        let now = get_current_timestamp();
        let mut claims = json!({"iss": ISSUER, "aud": RESOURCE, "sub": "agent-7",
            "iat": now, "exp": now + 60, "scope": "openid traffic:read"});
        for (name, value) in extra.as_object().unwrap() {
            if value.is_null() {
                claims.as_object_mut().unwrap().remove(name);
            } else {
                claims[name] = value.clone();
            }
        }
        claims
    }

    struct Fixture {
        key: TestKey,
        keys: Arc<KeyStore>,
        validator: Validator,
        _dir: tempfile::TempDir,
    }

    impl Fixture {
        async fn new() -> Self {
            let key = TestKey::new("k1");
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("jwks.json");
            std::fs::write(&path, json!({"keys": [key.jwk]}).to_string()).unwrap();
            let (keys, refresh) = KeyStore::open(&JwksSource::File(path)).await.unwrap();
            refresh.abort();
            Self {
                key,
                keys,
                validator: Validator::new(ISSUER, RESOURCE),
                _dir: dir,
            }
        }

        async fn check(&self, token: &str) -> Result<Verified, TokenError> {
            self.validator.validate(token, &self.keys).await
        }

        async fn check_claims(&self, extra: Value) -> Result<Verified, TokenError> {
            self.check(&self.key.sign(&claims(extra))).await
        }
    }

    fn b64(value: &Value) -> String {
        URL_SAFE_NO_PAD.encode(value.to_string())
    }

    #[tokio::test]
    async fn a_valid_token_gives_its_subject_and_scopes() {
        let fixture = Fixture::new().await;
        assert_eq!(
            fixture.check_claims(json!({})).await,
            Ok(Verified {
                subject: Some("agent-7".into()),
                scopes: Scopes::READ
            })
        );
        let both = fixture
            .check_claims(
                json!({"scope": null, "scp": ["traffic:classify", "traffic:read"],
                "aud": ["https://other.example.com", RESOURCE], "sub": null}),
            )
            .await
            .unwrap();
        assert_eq!(both.scopes, Scopes::ALL);
        assert_eq!(both.subject, None);
        let none = fixture.check_claims(json!({"scope": null})).await.unwrap();
        assert_eq!(none.scopes, Scopes::NONE);
        // Within the leeway either side.
        let now = get_current_timestamp();
        let skewed = json!({"exp": now - LEEWAY.as_secs() / 2, "nbf": now + LEEWAY.as_secs() / 2});
        assert!(fixture.check_claims(skewed).await.is_ok());
    }

    #[tokio::test]
    async fn claims_out_of_bounds_are_refused_saying_which() {
        let fixture = Fixture::new().await;
        let now = get_current_timestamp();
        for (extra, error) in [
            (
                json!({"exp": now - 2 * LEEWAY.as_secs()}),
                TokenError::Expired,
            ),
            (json!({"nbf": now + 600}), TokenError::NotYetValid),
            (
                json!({"aud": "https://other.example.com/mcp"}),
                TokenError::Audience,
            ),
            (
                json!({"aud": ["https://other.example.com/mcp"]}),
                TokenError::Audience,
            ),
            (
                json!({"aud": "https://traffic.example.com/mcp/"}),
                TokenError::Audience,
            ),
            (
                json!({"iss": "https://evil.example.com"}),
                TokenError::Issuer,
            ),
            (json!({"iss": [ISSUER]}), TokenError::Malformed),
            (json!({"exp": null}), TokenError::MissingClaim("exp")),
            (json!({"aud": null}), TokenError::MissingClaim("aud")),
            (json!({"iss": null}), TokenError::MissingClaim("iss")),
            (json!({"exp": "tomorrow"}), TokenError::MissingClaim("exp")),
        ] {
            assert_eq!(
                fixture.check_claims(extra.clone()).await,
                Err(error),
                "{extra}"
            );
        }
    }

    #[tokio::test]
    async fn forged_tokens_are_refused() {
        let fixture = Fixture::new().await;
        let token = fixture.key.sign(&claims(json!({})));
        let (signed, signature) = token.rsplit_once('.').unwrap();
        let (header, _) = signed.split_once('.').unwrap();
        // More scope, the signature kept.
        let tampered = format!(
            "{header}.{}.{signature}",
            b64(&claims(json!({"scope": "traffic:read traffic:classify"})))
        );
        assert_eq!(fixture.check(&tampered).await, Err(TokenError::Signature));
        // No signature at all.
        let none = format!(
            "{}.{}.",
            b64(&json!({"alg": "none", "typ": "JWT", "kid": "k1"})),
            b64(&claims(json!({})))
        );
        assert_eq!(fixture.check(&none).await, Err(TokenError::Malformed));
        // HS256 keyed with the public key's bytes (algorithm confusion).
        let public = URL_SAFE_NO_PAD
            .decode(match &fixture.key.jwk.algorithm {
                jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(okp) => &okp.x,
                _ => unreachable!(),
            })
            .unwrap();
        let mut hs = Header::new(Algorithm::HS256);
        hs.kid = Some("k1".into());
        let confused = jsonwebtoken::encode(
            &hs,
            &claims(json!({})),
            &EncodingKey::from_secret(&public).unwrap(),
        )
        .unwrap();
        assert_eq!(fixture.check(&confused).await, Err(TokenError::Algorithm));
        // Another algorithm for the key's kid.
        let rs = format!(
            "{}.{}.{signature}",
            b64(&json!({"alg": "RS256", "kid": "k1"})),
            b64(&claims(json!({})))
        );
        assert_eq!(fixture.check(&rs).await, Err(TokenError::Algorithm));
        // A key the authorization server never published.
        let stranger = TestKey::new("k2").sign(&claims(json!({})));
        assert_eq!(fixture.check(&stranger).await, Err(TokenError::UnknownKey));
        for garbage in ["", "abc", "a.b.c", "a.b", &format!("{token}.x")] {
            assert_eq!(
                fixture.check(garbage).await,
                Err(TokenError::Malformed),
                "{garbage}"
            );
        }
    }

    #[test]
    fn refusals_are_words_a_header_can_carry() {
        for error in [
            TokenError::Malformed,
            TokenError::Algorithm,
            TokenError::UnknownKey,
            TokenError::KeysUnavailable,
            TokenError::Signature,
            TokenError::Expired,
            TokenError::NotYetValid,
            TokenError::Issuer,
            TokenError::Audience,
            TokenError::MissingClaim("exp"),
        ] {
            let text = error.to_string();
            assert!(!text.contains(['"', '\\']), "{text}");
        }
    }
}
