//! An authorization server as far as a resource server sees one: keys made for the test (never
//! written anywhere but a temporary JWKS), tokens signed with them, and a JWKS served over HTTP
//! or HTTPS on loopback whose keys a test can swap.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};
use jsonwebtoken::{Algorithm, EncodingKey, Header, get_current_timestamp};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

/// The issuer the test tokens name.
pub const ISSUER: &str = "https://auth.example.com/realms/traffic";
/// The resource URL the server is configured with: the tokens' audience.
pub const RESOURCE: &str = "https://traffic.example.com/mcp";
/// Where the challenges say the metadata is.
pub const METADATA_URL: &str =
    "https://traffic.example.com/.well-known/oauth-protected-resource/mcp";

/// PKCS#8 v1 of an Ed25519 private key, up to its 32-byte seed (RFC 8410).
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// An Ed25519 key generated for the test, and its public JWK.
pub struct TestKey {
    pub kid: String,
    key: EncodingKey,
    pub jwk: Jwk,
}

impl TestKey {
    pub fn new(kid: &str) -> Self {
        let seed: [u8; 32] = rand::random();
        let key = EncodingKey::from_ed_der(&[&ED25519_PKCS8_PREFIX[..], &seed].concat());
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::EdDSA).expect("public JWK");
        jwk.common.key_id = Some(kid.to_owned());
        Self {
            kid: kid.to_owned(),
            key,
            jwk,
        }
    }

    /// A JWT of `claims`, signed with this key and naming its `kid`.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).expect("sign")
    }

    /// A token for this server with `scope`, valid for ten minutes.
    pub fn token(&self, scope: &str) -> String {
        self.sign(&claims(json!({ "scope": scope })))
    }

    /// The raw public key: what an algorithm-confusion attack uses as an HMAC secret.
    pub fn public_bytes(&self) -> Vec<u8> {
        let AlgorithmParameters::OctetKeyPair(okp) = &self.jwk.algorithm else {
            panic!("an Ed25519 JWK");
        };
        URL_SAFE_NO_PAD.decode(&okp.x).expect("base64url x")
    }
}

/// Claims the server accepts (subject `agent-7`, both scopes, ten minutes), `extra` added (a
/// `null` removes a claim).
pub fn claims(extra: Value) -> Value {
    let now = get_current_timestamp();
    let mut claims = json!({"iss": ISSUER, "aud": RESOURCE, "sub": "agent-7", "iat": now,
        "exp": now + 600, "scope": "traffic:read traffic:classify"});
    for (name, value) in extra.as_object().expect("an object of claims") {
        if value.is_null() {
            claims.as_object_mut().expect("claims").remove(name);
        } else {
            claims[name] = value.clone();
        }
    }
    claims
}

/// `header.claims.signature` with each part as given, base64url-encoded.
pub fn token_of(header: &Value, claims: &Value, signature: &[u8]) -> String {
    let part = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
    format!(
        "{}.{}.{}",
        part(header.to_string().as_bytes()),
        part(claims.to_string().as_bytes()),
        part(signature)
    )
}

/// A JWK Set of `keys`, as JSON text.
pub fn jwks(keys: &[&TestKey]) -> String {
    json!({ "keys": keys.iter().map(|k| &k.jwk).collect::<Vec<_>>() }).to_string()
}

/// A JWKS file in a temporary directory (kept while this lives).
pub struct JwksFile {
    _dir: tempfile::TempDir,
    pub path: String,
}

impl JwksFile {
    pub fn new(keys: &[&TestKey]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("jwks.json");
        std::fs::write(&path, jwks(keys)).expect("write the JWKS");
        Self {
            path: path.display().to_string(),
            _dir: dir,
        }
    }
}

/// The server's environment for OAuth with the keys at `jwks` (a path or a URL).
pub fn oauth_env(jwks: &str) -> Vec<(&'static str, String)> {
    vec![
        ("MCP_OAUTH_ISSUER", ISSUER.to_owned()),
        ("MCP_OAUTH_JWKS", jwks.to_owned()),
        ("MCP_RESOURCE_URL", RESOURCE.to_owned()),
    ]
}

/// A JWKS served over HTTP/1.1 on loopback, one response per connection; counts the requests.
pub struct JwksServer {
    pub url: String,
    keys: Arc<Mutex<String>>,
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

/// A certificate for `localhost` made for the test, in a temporary PEM file (for
/// `SSL_CERT_FILE`), and the TLS acceptor that presents it.
pub struct TestCertificate {
    _dir: tempfile::TempDir,
    pub pem_path: String,
    acceptor: TlsAcceptor,
}

impl TestCertificate {
    pub fn new() -> Self {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .expect("a certificate");
        let dir = tempfile::tempdir().expect("temp dir");
        let pem_path = dir.path().join("ca.pem");
        std::fs::write(&pem_path, made.cert.pem()).expect("write the certificate");
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(made.signing_key.serialize_der().into());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(vec![made.cert.der().clone()], key)
        .expect("TLS server config");
        Self {
            pem_path: pem_path.display().to_string(),
            _dir: dir,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        }
    }
}

impl JwksServer {
    pub async fn start(keys: &[&TestKey]) -> Self {
        Self::serve(keys, None).await
    }

    /// The same over TLS with `certificate`, at `https://localhost:PORT/jwks`.
    pub async fn start_tls(keys: &[&TestKey], certificate: &TestCertificate) -> Self {
        Self::serve(keys, Some(certificate.acceptor.clone())).await
    }

    async fn serve(keys: &[&TestKey], tls: Option<TlsAcceptor>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("address").port();
        let url = match tls {
            Some(_) => format!("https://localhost:{port}/jwks"),
            None => format!("http://127.0.0.1:{port}/jwks"),
        };
        let document = Arc::new(Mutex::new(jwks(keys)));
        let requests = Arc::new(AtomicUsize::new(0));
        let (served, counted) = (document.clone(), requests.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let body = served.lock().expect("keys").clone();
                match &tls {
                    None => answer(stream, &body, &counted).await,
                    // A client that refuses the certificate ends the handshake: no request.
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(stream).await {
                            answer(stream, &body, &counted).await;
                        }
                    }
                }
            }
        });
        Self {
            url,
            keys: document,
            requests,
            task,
        }
    }

    /// Serves `keys` from now on (the authorization server rotated its keys).
    pub fn rotate(&self, keys: &[&TestKey]) {
        *self.keys.lock().expect("keys") = jwks(keys);
    }

    /// How many times the JWKS was fetched.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// Reads a request head and answers it with `body` as JSON, counting the request.
async fn answer(
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    body: &str,
    counted: &AtomicUsize,
) {
    let mut head = Vec::new();
    let mut buffer = [0u8; 1024];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buffer[..n]),
        }
    }
    counted.fetch_add(1, Ordering::SeqCst);
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
