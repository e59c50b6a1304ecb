use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::Deserialize;

use super::StoreError;

/// A position in the newest-first listing: the last `(observed_at, id)` a page returned.
/// Opaque to clients (a string); keyset-based, so rows arriving during a walk never shift it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(try_from = "String")]
#[schemars(inline)]
pub struct Cursor {
    pub(crate) observed_at: DateTime<Utc>,
    pub(crate) id: i64,
}

const VERSION: &str = "v1";

impl Cursor {
    pub fn encode(&self) -> String {
        let raw = format!(
            "{VERSION}:{}:{}",
            self.observed_at.timestamp_micros(),
            self.id
        );
        URL_SAFE_NO_PAD.encode(raw)
    }

    pub fn decode(token: &str) -> Result<Self, StoreError> {
        const MALFORMED: StoreError = StoreError::InvalidCursor("not a cursor this service issued");
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| MALFORMED)?;
        let raw = String::from_utf8(bytes).map_err(|_| MALFORMED)?;
        let mut parts = raw.split(':');
        let (Some(VERSION), Some(micros), Some(id), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(MALFORMED);
        };
        let micros: i64 = micros.parse().map_err(|_| MALFORMED)?;
        let id: i64 = id.parse().map_err(|_| MALFORMED)?;
        let observed_at = DateTime::from_timestamp_micros(micros).ok_or(MALFORMED)?;
        Ok(Self { observed_at, id })
    }
}

/// A cursor arrives as the token [`Cursor::encode`] gave out.
impl TryFrom<String> for Cursor {
    type Error = StoreError;

    fn try_from(token: String) -> Result<Self, StoreError> {
        Self::decode(&token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_survives_encoding() {
        let c = Cursor {
            observed_at: DateTime::from_timestamp_micros(1_764_400_000_123_456).unwrap(),
            id: 42,
        };
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
    }

    #[test]
    fn tampered_cursors_are_refused() {
        for bad in [
            "",
            "!!!",
            "djE6MQ",
            &URL_SAFE_NO_PAD.encode("v2:1:1"),
            &URL_SAFE_NO_PAD.encode("v1:x:1"),
        ] {
            assert!(
                matches!(Cursor::decode(bad), Err(StoreError::InvalidCursor(_))),
                "{bad}"
            );
        }
    }
}
