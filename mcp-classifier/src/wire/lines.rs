//! Line framing for [`super::LineTransport`]: each `\n`-terminated line becomes one message,
//! parsed by the hot decoder when it can, by rmcp's codec otherwise. A line that cannot become a
//! message is answered with a JSON-RPC error where JSON-RPC owes the peer one.

use bytes::BytesMut;
use rmcp::model::{ErrorData, RequestId};
use rmcp::service::{RxJsonRpcMessage, ServiceRole};
use rmcp::transport::async_rw::JsonRpcMessageCodec;
use tokio_util::codec::Decoder;

use super::HotDecoder;
use super::envelope::{self, Envelope};

/// The longest line accepted, as rmcp's stdio transport: a payload fit for the Streamable HTTP
/// client is fit here. Longer lines are refused and dropped, never buffered past this.
pub(super) const MAX_LINE: usize = 16 * 1024 * 1024;

/// How much of a line over [`MAX_LINE`] is searched for its `id`. Envelope members come first
/// in practice; a bound keeps the search cheap however the line goes on.
const ID_SEARCH: usize = 64 * 1024;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// What one line amounted to. Only a failure of the byte stream ends the stream of these.
pub enum Incoming<Role: ServiceRole> {
    Message(Box<RxJsonRpcMessage<Role>>),
    /// A line that is no message the service can take: the peer is owed this error. Our reply
    /// is itself a response, which a peer never answers and we never answer either, so a peer
    /// that echoes what it receives cannot start a storm of errors.
    Refused {
        id: Option<RequestId>,
        error: ErrorData,
    },
    /// Nothing to act on: a blank line, a foreign notification, a response or notification
    /// that cannot be parsed (JSON-RPC answers neither).
    Skipped,
}

pub struct LineCodec<Role: ServiceRole> {
    hot: HotDecoder<Role>,
    /// rmcp's codec, for its rule on a line that fails to parse (a foreign notification is
    /// ignored).
    fallback: JsonRpcMessageCodec<RxJsonRpcMessage<Role>>,
    /// Where the search for the next newline resumes.
    scanned: usize,
    /// Dropping the rest of an oversized line (already answered).
    discarding: bool,
}

impl<Role: ServiceRole> LineCodec<Role> {
    pub fn new(hot: HotDecoder<Role>) -> Self {
        Self {
            hot,
            fallback: JsonRpcMessageCodec::default(),
            scanned: 0,
            discarding: false,
        }
    }

    fn parse(&mut self, line: &[u8]) -> Incoming<Role> {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        let body = body.strip_suffix(b"\r").unwrap_or(body);
        let body = body.strip_prefix(UTF8_BOM).unwrap_or(body);
        if body.is_empty() {
            return Incoming::Skipped;
        }
        if let Some(message) = (self.hot)(body) {
            return Incoming::Message(Box::new(message));
        }
        // rmcp's codec parses exactly so, then applies its rules to what fails. Those rules
        // need the line, which its decoder consumes: only a failed line is copied for it.
        let error = match serde_json::from_slice(body) {
            Ok(message) => return Incoming::Message(Box::new(message)),
            Err(e) => e,
        };
        match self.fallback.decode(&mut BytesMut::from(line)) {
            Ok(Some(message)) => Incoming::Message(Box::new(message)),
            // A foreign notification, which rmcp ignores.
            Ok(None) => Incoming::Skipped,
            Err(_) => Self::refusal(body, &error),
        }
    }

    /// Why rmcp could not take `body`, judged by the envelope, and whether that is answered.
    fn refusal(body: &[u8], cause: &dyn std::fmt::Display) -> Incoming<Role> {
        match envelope::check(body) {
            Err(error) => {
                tracing::debug!(error = %cause, "answering a line that is no JSON-RPC message");
                Incoming::Refused { id: None, error }
            }
            Ok(Envelope::Request) => {
                tracing::debug!(error = %cause, "answering a request rmcp could not parse");
                Incoming::Refused {
                    id: envelope::leading_id(body),
                    error: Envelope::Request.unparsed(),
                }
            }
            Ok(kind @ (Envelope::Notification | Envelope::Response)) => {
                tracing::debug!(error = %cause, ?kind, "ignoring a message rmcp could not parse");
                Incoming::Skipped
            }
        }
    }

    /// The error for a line over [`MAX_LINE`], with the request's id if `start` shows it.
    fn too_long(start: &[u8]) -> Incoming<Role> {
        let start = start.strip_prefix(UTF8_BOM).unwrap_or(start);
        let id = envelope::leading_id(&start[..start.len().min(ID_SEARCH)]);
        tracing::warn!(
            max = MAX_LINE,
            ?id,
            "refusing an incoming line over the limit"
        );
        Incoming::Refused {
            id,
            error: ErrorData::invalid_request(
                "Invalid Request: the line exceeds the 16 MiB limit of one message",
                None,
            ),
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
                    // Answered now, from the line's start; the rest is dropped as it arrives.
                    let refused = Self::too_long(buf);
                    buf.clear();
                    self.scanned = 0;
                    self.discarding = true;
                    return Ok(Some(refused));
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
                return Ok(Some(Self::too_long(&line)));
            }
            return Ok(Some(self.parse(&line)));
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use rmcp::RoleServer;
    use rmcp::model::{ErrorCode, JsonRpcMessage};

    use super::*;
    use crate::wire::tool_call_request;

    fn codec() -> LineCodec<RoleServer> {
        LineCodec::new(tool_call_request)
    }

    fn decode_all(
        codec: &mut LineCodec<RoleServer>,
        buf: &mut BytesMut,
    ) -> Vec<Incoming<RoleServer>> {
        let mut items = Vec::new();
        while let Some(item) = codec.decode(buf).unwrap() {
            items.push(item);
        }
        items
    }

    fn refused(item: &Incoming<RoleServer>) -> (Option<RequestId>, ErrorData) {
        match item {
            Incoming::Refused { id, error } => (id.clone(), error.clone()),
            Incoming::Message(m) => panic!("a message, not refused: {m:?}"),
            Incoming::Skipped => panic!("skipped, not refused"),
        }
    }

    fn one(line: &str) -> Incoming<RoleServer> {
        let mut buf = BytesMut::from(format!("{line}\n").as_bytes());
        let mut items = decode_all(&mut codec(), &mut buf);
        assert_eq!(items.len(), 1, "{line}");
        items.remove(0)
    }

    #[test]
    fn lines_that_are_no_message_are_refused_with_the_error_they_are_owed() {
        for (line, code, words) in [
            ("not json at all", ErrorCode::PARSE_ERROR, "not valid JSON"),
            (
                "{\"jsonrpc\":\"2.0\",",
                ErrorCode::PARSE_ERROR,
                "not valid JSON",
            ),
            ("{\"hello\":1}", ErrorCode::INVALID_REQUEST, "\"jsonrpc\""),
            (
                "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]",
                ErrorCode::INVALID_REQUEST,
                "batches",
            ),
            ("17", ErrorCode::INVALID_REQUEST, "not a number"),
        ] {
            let (id, error) = refused(&one(line));
            assert_eq!((id, error.code), (None, code), "{line}");
            assert!(error.message.contains(words), "{line}: {}", error.message);
        }
        // Invalid UTF-8 inside a string.
        let mut buf =
            BytesMut::from(&b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"p\xFFng\"}\n"[..]);
        let (id, error) = refused(&decode_all(&mut codec(), &mut buf)[0]);
        assert_eq!((id, error.code), (None, ErrorCode::PARSE_ERROR));
        assert!(error.message.contains("UTF-8"), "{}", error.message);
        // A request whose params rmcp cannot take: Invalid params, with the request's id.
        let (id, error) = refused(&one(
            r#"{"jsonrpc":"2.0","id":5,"method":"tools/list","params":7}"#,
        ));
        assert_eq!(
            (id, error.code),
            (Some(RequestId::Number(5)), ErrorCode::INVALID_PARAMS)
        );
    }

    #[test]
    fn notifications_responses_and_blank_lines_are_never_answered() {
        for line in [
            "",
            "\r",
            r#"{"jsonrpc":"2.0","method":"notifications/initialized","params":7}"#,
            // Foreign, and rmcp ignores it rather than failing.
            r#"{"method":"window/logMessage","params":{}}"#,
            r#"{"jsonrpc":"2.0","id":3,"error":7}"#,
        ] {
            assert!(matches!(one(line), Incoming::Skipped), "{line}");
        }
        // Our own error replies parse as responses, so echoing them back draws nothing.
        let reply = envelope::error_reply(None, &ErrorData::parse_error("Parse error: x", None));
        let reply = String::from_utf8(reply).unwrap();
        assert!(
            matches!(one(&reply), Incoming::Message(m) if matches!(*m, JsonRpcMessage::Error(_))),
            "{reply}"
        );
    }

    #[test]
    fn a_line_over_the_limit_is_refused_with_its_id_without_being_buffered() {
        let mut codec = codec();
        let head = br#"{"jsonrpc":"2.0","id":41,"method":"tools/call","params":{"pad":""#;
        let chunk = vec![b'x'; 64 * 1024];
        let mut buf = BytesMut::from(&head[..]);
        let mut items = Vec::new();
        let mut peak = 0;
        let mut sent = head.len();
        while sent < MAX_LINE + 4 * chunk.len() {
            buf.extend_from_slice(&chunk);
            sent += chunk.len();
            peak = peak.max(buf.len());
            items.extend(decode_all(&mut codec, &mut buf));
        }
        buf.extend_from_slice(b"\"}}\n{\"jsonrpc\":\"2.0\",\"id\":42,\"method\":\"ping\"}\n");
        items.extend(decode_all(&mut codec, &mut buf));
        assert!(peak <= MAX_LINE + chunk.len(), "buffered {peak} bytes");
        assert_eq!(items.len(), 2);
        let (id, error) = refused(&items[0]);
        assert_eq!(
            (id, error.code),
            (Some(RequestId::Number(41)), ErrorCode::INVALID_REQUEST)
        );
        assert!(error.message.contains("16 MiB"), "{}", error.message);
        // The next line is read as usual.
        let Incoming::Message(next) = &items[1] else {
            panic!("the line after is not read");
        };
        assert!(matches!(&**next, JsonRpcMessage::Request(r) if r.id == RequestId::Number(42)));
    }

    #[test]
    fn a_line_over_the_limit_without_an_id_in_reach_is_refused_with_none() {
        // The whole line at once, its id beyond the searched start.
        let mut line = br#"{"jsonrpc":"2.0","params":{"pad":""#.to_vec();
        line.resize(MAX_LINE, b'x');
        line.extend_from_slice(br#""},"id":7,"method":"ping"}"#);
        line.push(b'\n');
        let mut buf = BytesMut::from(&line[..]);
        let items = decode_all(&mut codec(), &mut buf);
        assert_eq!(items.len(), 1);
        let (id, error) = refused(&items[0]);
        assert_eq!((id, error.code), (None, ErrorCode::INVALID_REQUEST));
    }
}
