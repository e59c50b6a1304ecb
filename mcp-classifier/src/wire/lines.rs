//! Line framing for [`super::LineTransport`]: each `\n`-terminated line becomes one message,
//! parsed by the hot decoder when it can, by rmcp's codec otherwise.

use bytes::BytesMut;
use rmcp::service::{RxJsonRpcMessage, ServiceRole};
use rmcp::transport::async_rw::{JsonRpcMessageCodec, JsonRpcMessageCodecError};
use serde_json::error::Category;
use tokio_util::codec::Decoder;

use super::HotDecoder;

/// The longest line accepted, as rmcp's stdio transport: a payload fit for the Streamable HTTP
/// client is fit here. Longer lines are dropped rather than buffered.
const MAX_LINE: usize = 16 * 1024 * 1024;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// What one line amounted to. Only a failure of the byte stream ends the stream of these.
pub(super) enum Incoming<Role: ServiceRole> {
    Message(Box<RxJsonRpcMessage<Role>>),
    /// Well-formed JSON that is no JSON-RPC message: the peer is owed an `Invalid Request`.
    Invalid,
    /// Nothing to act on: a blank line, unparsable text (answering it could start an error
    /// storm with a peer that echoes), a foreign notification, an oversized line.
    Skipped,
}

pub(super) struct LineCodec<Role: ServiceRole> {
    hot: HotDecoder<Role>,
    fallback: JsonRpcMessageCodec<RxJsonRpcMessage<Role>>,
    /// Where the search for the next newline resumes.
    scanned: usize,
    /// Dropping the rest of an oversized line.
    discarding: bool,
}

impl<Role: ServiceRole> LineCodec<Role> {
    pub(super) fn new(hot: HotDecoder<Role>) -> Self {
        Self {
            hot,
            fallback: JsonRpcMessageCodec::default(),
            scanned: 0,
            discarding: false,
        }
    }

    fn parse(&mut self, mut line: BytesMut) -> Incoming<Role> {
        let body = line.strip_suffix(b"\n").unwrap_or(&line);
        let body = body.strip_suffix(b"\r").unwrap_or(body);
        let body = body.strip_prefix(UTF8_BOM).unwrap_or(body);
        if body.is_empty() {
            return Incoming::Skipped;
        }
        if let Some(message) = (self.hot)(body) {
            return Incoming::Message(Box::new(message));
        }
        // `line` still ends in its newline, so rmcp's codec sees exactly one whole line.
        match self.fallback.decode(&mut line) {
            Ok(Some(message)) => Incoming::Message(Box::new(message)),
            Ok(None) => Incoming::Skipped,
            Err(JsonRpcMessageCodecError::Serde(e))
                if matches!(e.classify(), Category::Data | Category::Io) =>
            {
                tracing::debug!(error = %e, "well-formed JSON that is no JSON-RPC message");
                Incoming::Invalid
            }
            Err(e) => {
                tracing::debug!(error = %e, "ignoring an unparsable line");
                Incoming::Skipped
            }
        }
    }
}

impl<Role: ServiceRole> Decoder for LineCodec<Role> {
    type Item = Incoming<Role>;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        loop {
            let newline = buf
                .get(self.scanned..)
                .and_then(|rest| rest.iter().position(|b| *b == b'\n'))
                .map(|at| at + self.scanned);
            let Some(end) = newline else {
                if self.discarding {
                    buf.clear();
                    self.scanned = 0;
                } else if buf.len() > MAX_LINE {
                    tracing::error!(max = MAX_LINE, "dropping an incoming line over the limit");
                    buf.clear();
                    self.scanned = 0;
                    self.discarding = true;
                    return Ok(Some(Incoming::Skipped));
                } else {
                    self.scanned = buf.len();
                }
                return Ok(None);
            };
            self.scanned = 0;
            let line = buf.split_to(end + 1);
            if self.discarding {
                self.discarding = false;
                continue;
            }
            if line.len() > MAX_LINE + 1 {
                tracing::error!(max = MAX_LINE, "dropping an incoming line over the limit");
                return Ok(Some(Incoming::Skipped));
            }
            return Ok(Some(self.parse(line)));
        }
    }

    /// A last line without its newline is an incomplete message: nothing to deliver.
    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        let decoded = self.decode(buf)?;
        if decoded.is_none() {
            buf.clear();
        }
        Ok(decoded)
    }
}
