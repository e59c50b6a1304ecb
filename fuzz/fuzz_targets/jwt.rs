//! A bearer token, checked as the Streamable HTTP server checks one (`ResourceServer::authorize`)
//! against a fixed key set: an Ed25519 key this target signs with (`kid` "k1") and a P-256 key
//! nobody here holds (`kid` "ec"). Input: a mode byte, then
//! - mode 0: `header JSON \n claims JSON`, signed here with the Ed25519 key;
//! - mode 1: the token as it is;
//! - mode 2: `header JSON \n claims JSON \n signature text`, forged.
//!
//! Checks: a token accepted carries this key's signature of its own header and claims, and
//! claims the service requires (`iss`, `aud`, an unexpired `exp`, no future `nbf`); its subject
//! is the `sub` claim; refusals are words a `WWW-Authenticate` header can carry.
#![no_main]

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, get_current_timestamp};
use libfuzzer_sys::fuzz_target;
use mcp_classifier::server::oauth::{LEEWAY, OAuthSettings, Refusal, ResourceServer};
use serde_json::{Value, json};
use tokio::runtime::Runtime;

const ISSUER: &str = "https://auth.example.com";
const RESOURCE: &str = "https://traffic.example.com/mcp";
/// PKCS#8 v1 of an Ed25519 private key, up to its 32-byte seed (RFC 8410).
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

struct Fixture {
    runtime: Runtime,
    server: ResourceServer,
    key: EncodingKey,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let key = EncodingKey::from_ed_der(&[&ED25519_PKCS8_PREFIX[..], &[7; 32]].concat());
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::EdDSA).unwrap();
        jwk.common.key_id = Some("k1".to_owned());
        // RFC 7517's example P-256 key.
        let ec = json!({"kty": "EC", "crv": "P-256", "kid": "ec", "use": "sig",
            "x": "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
            "y": "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"});
        let path = std::env::temp_dir().join(format!(
            "smart-traffic-fuzz-jwks-{}.json",
            std::process::id()
        ));
        std::fs::write(&path, json!({"keys": [jwk, ec]}).to_string()).unwrap();
        let settings =
            OAuthSettings::from_values(Some(ISSUER), Some(path.to_str().unwrap()), Some(RESOURCE))
                .unwrap()
                .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let server = runtime.block_on(ResourceServer::start(&settings)).unwrap();
        Fixture {
            runtime,
            server,
            key,
        }
    })
}

/// The token the input describes.
fn token(data: &[u8], key: &EncodingKey) -> Option<String> {
    let (&mode, rest) = data.split_first()?;
    let text = std::str::from_utf8(rest).ok()?;
    let mut parts = text.splitn(3, '\n');
    let (header, claims) = (parts.next()?, parts.next().unwrap_or(""));
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    match mode % 3 {
        0 => {
            let signature =
                jsonwebtoken::crypto::sign(signing_input.as_bytes(), key, Algorithm::EdDSA)
                    .unwrap();
            Some(format!("{signing_input}.{signature}"))
        }
        1 => Some(text.to_owned()),
        _ => Some(format!("{signing_input}.{}", parts.next().unwrap_or(""))),
    }
}

/// Whether `token` is this key's signature of its own first two parts.
fn signed_here(token: &str, key: &EncodingKey) -> bool {
    let Some((input, signature)) = token.rsplit_once('.') else {
        return false;
    };
    let ours = jsonwebtoken::crypto::sign(input.as_bytes(), key, Algorithm::EdDSA).unwrap();
    URL_SAFE_NO_PAD.decode(signature).ok() == URL_SAFE_NO_PAD.decode(ours).ok()
}

fuzz_target!(|data: &[u8]| {
    let fixture = fixture();
    let Some(token) = token(data, &fixture.key) else {
        return;
    };
    let outcome = fixture
        .runtime
        .block_on(fixture.server.authorize(Some(&token)));
    let grant = match outcome {
        Ok(grant) => grant,
        Err(refusal) => {
            if let Refusal::Invalid(error) = &refusal {
                assert!(!error.to_string().contains(['"', '\\']), "{error}");
            }
            fixture.server.challenge(&refusal);
            return;
        }
    };
    assert!(
        signed_here(&token, &fixture.key),
        "accepted a signature not made here: {token}"
    );
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "EdDSA");
    let claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["iss"], ISSUER, "issuer");
    let audience = &claims["aud"];
    assert!(
        audience == RESOURCE
            || audience
                .as_array()
                .is_some_and(|a| a.iter().any(|v| v == RESOURCE)),
        "audience {audience}"
    );
    // A second either side for the clock moving between the check and this one.
    let now = get_current_timestamp() as f64;
    let leeway = LEEWAY.as_secs() as f64 + 1.0;
    let exp = claims["exp"].as_f64().expect("exp is a number");
    assert!(exp >= now - leeway, "expired: {exp}");
    if let Some(nbf) = claims.get("nbf").filter(|v| !v.is_null()) {
        let nbf = nbf.as_f64().expect("nbf is a number");
        assert!(nbf <= now + leeway, "not valid yet: {nbf}");
    }
    assert_eq!(grant.subject.as_deref(), claims["sub"].as_str(), "subject");
});
