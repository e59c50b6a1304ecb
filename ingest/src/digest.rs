//! Short SHA-256 digests in hex: the same on every replica and every version, and saying
//! nothing of what they digest (ETags, the rate limit's key names).

use sha2::{Digest, Sha256};

/// The first `bytes` bytes of the SHA-256 of `data`, in lowercase hex.
pub fn sha256_hex(data: &[u8], bytes: usize) -> String {
    hex(Sha256::digest(data).iter().take(bytes))
}

/// `bytes` in lowercase hex.
pub fn hex<'a>(bytes: impl IntoIterator<Item = &'a u8>) -> String {
    bytes.into_iter().map(|b| format!("{b:02x}")).collect()
}
