//! The JSON-RPC envelope of a message, read without building the message: whether some bytes
//! are one JSON-RPC 2.0 message at all, the `id` at the start of a line too long to parse, and
//! the error replies the transports send when they cannot hand a message to rmcp.
//!
//! rmcp answers what it cannot parse with `415` over HTTP and with silence over stdio; the
//! checks here give the peer a JSON-RPC error instead. They read the bytes once, skipping
//! every value they do not need, and build no `serde_json::Value`. [`operation`] reads what a
//! message asks for (its method, and a `tools/call`'s tool) from its start, for the HTTP
//! transport's scope check.

use std::fmt;

use rmcp::model::{ErrorData, RequestId};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

/// A JSON-RPC 2.0 message, as far as its envelope tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Envelope {
    /// A `method` and an `id`: owed an answer.
    Request,
    /// A `method` without an `id`: never answered, not even with an error.
    Notification,
    /// A `result` or an `error`: never answered.
    Response,
}

impl Envelope {
    /// The error for a message whose envelope is sound but which rmcp still could not take:
    /// what is left to be wrong is what the method carries.
    pub(crate) fn unparsed(self) -> ErrorData {
        match self {
            Self::Request | Self::Notification => ErrorData::invalid_params(
                "Invalid params: the params are not what the method takes",
                None,
            ),
            Self::Response => ErrorData::invalid_request(
                "Invalid Request: the result or error of this response is malformed",
                None,
            ),
        }
    }
}

/// Checks that `bytes` are one JSON-RPC 2.0 message object, and says which kind; otherwise the
/// error to answer: Parse error for bytes that are not UTF-8 or not JSON, Invalid Request for
/// JSON that is not a single JSON-RPC message.
pub(crate) fn check(bytes: &[u8]) -> Result<Envelope, ErrorData> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        ErrorData::parse_error(
            format!(
                "Parse error: the message is not valid UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            ),
            None,
        )
    })?;
    match serde_json::from_str::<Top>(text) {
        Ok(Top::Object(members)) => members.envelope(),
        Ok(Top::Batch) => Err(ErrorData::invalid_request(
            "Invalid Request: batches (a JSON array of messages) are not supported by this \
             protocol version; send one message at a time",
            None,
        )),
        Ok(Top::Scalar(what)) => Err(ErrorData::invalid_request(
            format!("Invalid Request: a message is a JSON object, not {what}"),
            None,
        )),
        // Every value is accepted above, so what is left is the text itself.
        Err(e) => Err(ErrorData::parse_error(
            format!("Parse error: the message is not valid JSON ({e})"),
            None,
        )),
    }
}

/// The `id` member of the JSON object `prefix` begins with, when it is a string or an integer
/// and appears within `prefix`. Other members' values, strings and nested values included, are
/// skipped by serde_json's parser, so an `"id"` inside them is never taken for the message's.
pub fn leading_id(prefix: &[u8]) -> Option<RequestId> {
    let id = search_id(prefix)?;
    // A number that runs into the end of the prefix may go on past it (`12` of `1234`, `1.0`
    // of `1.05`, `1` of `1e3`): it is known whole only when no continuation changes it. More
    // digits change any number that reaches the end (or make it no integer, or no JSON), but
    // for a zero or where digits are past f64's precision; an exponent changes those, unless
    // nothing can (`0e0`).
    if matches!(id, RequestId::Number(_)) && prefix.last().is_some_and(u8::is_ascii_digit) {
        let unchanged = |more: &[u8]| search_id(&[prefix, more].concat()).as_ref() == Some(&id);
        if !(unchanged(b"1") && unchanged(b"e9")) {
            return None;
        }
    }
    Some(id)
}

/// The `id` member of the JSON object `prefix` begins with, if a usable id is read whole
/// within it (a number may still be cut: see [`leading_id`]).
fn search_id(prefix: &[u8]) -> Option<RequestId> {
    let mut found = None;
    let mut deserializer = serde_json::Deserializer::from_slice(prefix);
    // The search stops with an error once it has what it came for (or at the prefix's end);
    // only what it stored counts.
    let _ = IdSearch { found: &mut found }.deserialize(&mut deserializer);
    found
}

/// What a message asks the server to do, as far as deciding who may ask it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// A request or notification of this method, other than `tools/call`.
    Method(String),
    /// A `tools/call` of the tool of this name.
    ToolCall(String),
    /// A response (a `result` or an `error`, no `method`): it asks for nothing.
    Response,
    /// Bytes whose method (or tool) cannot be read: not JSON, a batch, a `method` that is not
    /// a string, a `tools/call` without a tool name, a member that repeats before the scan
    /// could stop.
    Unknown,
}

/// What the message in `bytes` asks for, read from its start: the scan stops at the `method`
/// (at a `tools/call`'s `params.name` for that method), so the arguments of a large
/// `classify_batch` are never read when, as clients write them, `method` and `name` come
/// first. Values it passes are skipped, never built. rmcp refuses a message that repeats
/// `method` or `name`, so a member after the point where the scan stopped cannot make the
/// message ask for something else.
pub fn operation(bytes: &[u8]) -> Operation {
    let mut found = None;
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    // The scan stops with an error once it knows (or at malformed input); only what it
    // stored counts.
    let _ = OperationScan { found: &mut found }.deserialize(&mut deserializer);
    found.unwrap_or(Operation::Unknown)
}

/// The top-level members of a message, read until its operation is known.
struct OperationScan<'a> {
    found: &'a mut Option<Operation>,
}

/// How a scan stops once it has what it came for (or has seen enough to know it never will).
fn stop<E: de::Error>() -> E {
    de::Error::custom("scan over")
}

impl<'de> DeserializeSeed<'de> for OperationScan<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for OperationScan<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut tool_call = false;
        let mut params = false;
        let mut tool: Option<String> = None;
        let mut response = false;
        while let Some(member) = map.next_key::<Member>()? {
            match member {
                Member::Method if !tool_call => {
                    let method: String = map.next_value()?;
                    if method != "tools/call" {
                        *self.found = Some(Operation::Method(method));
                        return Err(stop());
                    }
                    if let Some(tool) = tool.take() {
                        *self.found = Some(Operation::ToolCall(tool));
                        return Err(stop());
                    }
                    tool_call = true;
                }
                Member::Params if !params => {
                    params = true;
                    let mut name = None;
                    let read = map.next_value_seed(ToolName {
                        stop: tool_call,
                        name: &mut name,
                    });
                    if tool_call {
                        // The method is known: the name decides, whatever else follows.
                        *self.found = name.map(Operation::ToolCall);
                        return Err(stop());
                    }
                    read?;
                    tool = name;
                }
                // A second `method` or `params`: rmcp refuses the message, so may the scan.
                Member::Method | Member::Params => return Err(stop()),
                Member::Result | Member::Error => {
                    response = true;
                    map.next_value::<IgnoredAny>()?;
                }
                Member::Jsonrpc | Member::Id | Member::Name | Member::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if response && !tool_call {
            *self.found = Some(Operation::Response);
        }
        Ok(())
    }
}

/// Stores the `name` member of a request's `params` object. With `stop`, the scan ends as
/// soon as it is read; otherwise (the `method` is still to come) the rest of `params` is
/// skipped. A repeated `name` stores none.
struct ToolName<'a> {
    stop: bool,
    name: &'a mut Option<String>,
}

impl<'de> DeserializeSeed<'de> for ToolName<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ToolName<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a params object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(member) = map.next_key::<Member>()? {
            match member {
                Member::Name if self.name.is_none() => {
                    *self.name = Some(map.next_value()?);
                    if self.stop {
                        return Err(stop());
                    }
                }
                Member::Name => {
                    *self.name = None;
                    return Err(stop());
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// `{"jsonrpc":"2.0","id":…,"error":…}`, with `"id": null` when the request's id is unknown, as
/// JSON-RPC 2.0 asks (rmcp leaves `id` out instead).
pub(crate) fn error_reply(id: Option<&RequestId>, error: &ErrorData) -> Vec<u8> {
    #[derive(Serialize)]
    struct Reply<'a> {
        jsonrpc: &'static str,
        id: Option<&'a RequestId>,
        error: &'a ErrorData,
    }
    let reply = Reply {
        jsonrpc: "2.0",
        id,
        error,
    };
    // Strings, integers and a JSON `data` value cannot fail to serialize; the fallback only
    // keeps the reply well-formed if that ever changes.
    serde_json::to_vec(&reply).unwrap_or_else(|_| {
        br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"Internal error"}}"#
            .to_vec()
    })
}

/// The top-level JSON value, reduced to what the check needs.
enum Top {
    Object(Members),
    Batch,
    /// A string, number, boolean or null, in words.
    Scalar(&'static str),
}

impl<'de> Deserialize<'de> for Top {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TopVisitor)
    }
}

struct TopVisitor;

impl<'de> Visitor<'de> for TopVisitor {
    type Value = Top;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top, A::Error> {
        let mut members = Members::default();
        while let Some(member) = map.next_key::<Member>()? {
            match member {
                Member::Jsonrpc => members.jsonrpc = Some(map.next_value()?),
                Member::Method => members.method = Some(map.next_value()?),
                Member::Id => members.id = Some(map.next_value()?),
                Member::Result => {
                    members.result = true;
                    map.next_value::<IgnoredAny>()?;
                }
                Member::Error => {
                    members.error = true;
                    map.next_value::<IgnoredAny>()?;
                }
                Member::Params | Member::Name | Member::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Top::Object(members))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Top, A::Error> {
        // Read to the end so that broken JSON inside a batch is still a Parse error.
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Top::Batch)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Top, E> {
        Ok(Top::Scalar("a string"))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Top, E> {
        Ok(Top::Scalar("a boolean"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Top, E> {
        Ok(Top::Scalar("a number"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Top, E> {
        Ok(Top::Scalar("a number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Top, E> {
        Ok(Top::Scalar("a number"))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Top, E> {
        Ok(Top::Scalar("null"))
    }
}

/// The envelope members of an object (the last of each, should one repeat).
#[derive(Default)]
struct Members {
    jsonrpc: Option<Kind>,
    method: Option<Kind>,
    id: Option<Kind>,
    result: bool,
    error: bool,
}

impl Members {
    /// The same rules as rmcp's parse of the envelope: a request or notification has a string
    /// `method` and no `result`/`error`; a response has exactly one of `result` and `error`;
    /// ids are strings or integers, and only an error response may have a null one.
    fn envelope(&self) -> Result<Envelope, ErrorData> {
        let invalid = |why: &str| {
            Err(ErrorData::invalid_request(
                format!("Invalid Request: {why}"),
                None,
            ))
        };
        if self.jsonrpc != Some(Kind::Version) {
            return invalid(r#"the member "jsonrpc" must be "2.0""#);
        }
        let id_is_valid = self.id.is_some_and(Kind::is_request_id);
        match (self.method, self.result, self.error) {
            (Some(method), false, false) => {
                if !matches!(method, Kind::Str | Kind::Version) {
                    return invalid(r#"the member "method" must be a string"#);
                }
                match self.id {
                    None => Ok(Envelope::Notification),
                    Some(_) if id_is_valid => Ok(Envelope::Request),
                    Some(_) => invalid(r#"the member "id" must be a string or an integer"#),
                }
            }
            (Some(_), _, _) => invalid(
                "a message has either a \"method\" (a request or notification) or a \"result\" \
                 or \"error\" (a response), not both",
            ),
            (None, true, true) => invalid(r#"a response has a "result" or an "error", not both"#),
            (None, false, false) => invalid(
                "the object is not a JSON-RPC message: it has neither a \"method\" nor a \
                 \"result\" or \"error\"",
            ),
            (None, true, false) if id_is_valid => Ok(Envelope::Response),
            (None, true, false) => {
                invalid(r#"a response's member "id" must be a string or an integer"#)
            }
            (None, false, true) if id_is_valid || matches!(self.id, None | Some(Kind::Null)) => {
                Ok(Envelope::Response)
            }
            (None, false, true) => {
                invalid(r#"an error response's member "id" must be a string, an integer or null"#)
            }
        }
    }
}

/// The envelope members; any other is skipped.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Member {
    Jsonrpc,
    Method,
    Id,
    Result,
    Error,
    Params,
    /// `name`: not an envelope member, but the tool's in a `tools/call`'s `params`.
    Name,
    Other,
}

impl<'de> Deserialize<'de> for Member {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MemberVisitor;

        impl Visitor<'_> for MemberVisitor {
            type Value = Member;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a member name")
            }

            fn visit_str<E: de::Error>(self, name: &str) -> Result<Member, E> {
                Ok(match name {
                    "jsonrpc" => Member::Jsonrpc,
                    "method" => Member::Method,
                    "id" => Member::Id,
                    "result" => Member::Result,
                    "error" => Member::Error,
                    "params" => Member::Params,
                    "name" => Member::Name,
                    _ => Member::Other,
                })
            }
        }

        deserializer.deserialize_str(MemberVisitor)
    }
}

/// A member's value reduced to its kind; any JSON value is accepted (and skipped through).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The string `"2.0"`.
    Version,
    Str,
    /// An integer rmcp takes as a request id: it fits an `i64`, written as an integer or as a
    /// float that is exactly one (`1.0`, `1e2`).
    Integer,
    Null,
    /// Any other number, a boolean, an object or an array.
    Other,
}

impl Kind {
    fn is_request_id(self) -> bool {
        matches!(self, Self::Version | Self::Str | Self::Integer)
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(KindVisitor)
    }
}

struct KindVisitor;

impl<'de> Visitor<'de> for KindVisitor {
    type Value = Kind;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Kind, E> {
        Ok(if v == "2.0" { Kind::Version } else { Kind::Str })
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Kind, E> {
        Ok(Kind::Other)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Kind, E> {
        Ok(Kind::Integer)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Kind, E> {
        Ok(if i64::try_from(v).is_ok() {
            Kind::Integer
        } else {
            Kind::Other
        })
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Kind, E> {
        // rmcp's rule: below 2^53 an f64 says exactly which integer was sent.
        const MAX_EXACT: f64 = 9_007_199_254_740_992.0;
        Ok(if v.fract() == 0.0 && v.abs() < MAX_EXACT {
            Kind::Integer
        } else {
            Kind::Other
        })
    }

    fn visit_unit<E: de::Error>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kind, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Kind::Other)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kind, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Kind::Other)
    }
}

/// Walks the top-level members of an object until `"id"`, stores its value if it is a usable
/// id, and stops.
struct IdSearch<'a> {
    found: &'a mut Option<RequestId>,
}

impl<'de> DeserializeSeed<'de> for IdSearch<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for IdSearch<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(member) = map.next_key::<Member>()? {
            if member != Member::Id {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            *self.found = Some(map.next_value()?);
            return Err(de::Error::custom("found the id"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use rmcp::model::ErrorCode;

    use super::*;

    fn code(bytes: &[u8]) -> i32 {
        check(bytes).expect_err("rejected").code.0
    }

    #[test]
    fn sound_messages_pass_with_their_kind() {
        for (message, kind) in [
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
                Envelope::Request,
            ),
            (
                r#" {"method":"ping","id":"a","jsonrpc":"2.0"} "#,
                Envelope::Request,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1.0,"method":"x","params":{"id":[1]}}"#,
                Envelope::Request,
            ),
            (
                r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
                Envelope::Notification,
            ),
            (
                r#"{"jsonrpc":"2.0","id":3,"result":{}}"#,
                Envelope::Response,
            ),
            (
                r#"{"jsonrpc":"2.0","id":null,"error":{"code":1,"message":"m"}}"#,
                Envelope::Response,
            ),
            (
                r#"{"jsonrpc":"2.0","error":{"code":1,"message":"m"}}"#,
                Envelope::Response,
            ),
        ] {
            assert_eq!(check(message.as_bytes()), Ok(kind), "{message}");
        }
    }

    #[test]
    fn text_that_is_not_json_is_a_parse_error_in_words() {
        for bytes in [
            &b"not json"[..],
            b"",
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"",
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"} trailing",
            b"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"},",
            b"\xEF\xBB\xBF{}",
        ] {
            let error = check(bytes).expect_err("rejected");
            assert_eq!(error.code, ErrorCode::PARSE_ERROR, "{bytes:?}");
            assert!(
                error.message.contains("not valid JSON"),
                "{}",
                error.message
            );
        }
        let error = check(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"p\xFFng\"}").unwrap_err();
        assert_eq!(error.code, ErrorCode::PARSE_ERROR);
        assert_eq!(
            error.message,
            "Parse error: the message is not valid UTF-8 (invalid byte at offset 35)"
        );
    }

    #[test]
    fn json_that_is_not_one_message_is_an_invalid_request_saying_why() {
        let batch = check(br#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#).unwrap_err();
        assert_eq!(batch.code, ErrorCode::INVALID_REQUEST);
        assert!(batch.message.contains("batches"), "{}", batch.message);
        assert!(batch.message.contains("not supported"), "{}", batch.message);
        for (bytes, words) in [
            (&b"42"[..], "not a number"),
            (b"\"ping\"", "not a string"),
            (b"null", "not null"),
            (br#"{"hello":1}"#, r#""jsonrpc" must be "2.0""#),
            (
                br#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#,
                r#""jsonrpc" must be "2.0""#,
            ),
            (
                br#"{"jsonrpc":2.0,"id":1,"method":"ping"}"#,
                r#""jsonrpc" must be "2.0""#,
            ),
            (br#"{"jsonrpc":"2.0","id":1}"#, "neither"),
            (
                br#"{"jsonrpc":"2.0","id":1,"method":7}"#,
                r#""method" must be a string"#,
            ),
            (
                br#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#,
                r#""id" must be"#,
            ),
            (
                br#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#,
                r#""id" must be"#,
            ),
            (
                br#"{"jsonrpc":"2.0","id":{},"method":"ping"}"#,
                r#""id" must be"#,
            ),
            (
                br#"{"jsonrpc":"2.0","id":9223372036854775808,"method":"ping"}"#,
                r#""id" must be"#,
            ),
            (
                br#"{"jsonrpc":"2.0","id":1,"method":"ping","result":{}}"#,
                "not both",
            ),
            (
                br#"{"jsonrpc":"2.0","id":1,"result":{},"error":{}}"#,
                "not both",
            ),
            (br#"{"jsonrpc":"2.0","result":{}}"#, r#""id" must be"#),
        ] {
            let error = check(bytes).expect_err("rejected");
            assert_eq!(error.code, ErrorCode::INVALID_REQUEST, "{bytes:?}");
            assert!(
                error.message.contains(words),
                "{bytes:?}: {}",
                error.message
            );
            assert!(!error.message.contains("::"), "{}", error.message);
        }
        assert_eq!(code(br#"[]"#), ErrorCode::INVALID_REQUEST.0);
    }

    #[test]
    fn the_leading_id_is_the_top_level_one() {
        let id = |prefix: &str| leading_id(prefix.as_bytes());
        assert_eq!(
            id(r#"{"jsonrpc":"2.0","id":41,"method":"tools/call","params":{"#),
            Some(RequestId::Number(41))
        );
        assert_eq!(
            id(r#"{"id":"call-\"7\"","#),
            Some(RequestId::String("call-\"7\"".into()))
        );
        // An "id" inside a string, a nested object or an array is not the message's.
        assert_eq!(
            id(r#"{"note":"\"id\":1","params":{"id":2},"list":[{"id":3}],"id":4,"x"#),
            Some(RequestId::Number(4))
        );
        assert_eq!(id(r#"{"\u0069d":5,"#), Some(RequestId::Number(5)));
        assert_eq!(id(r#"{"params":{"id":2},"method":"x"#), None);
        // A number at the very end of the prefix may be cut; one followed by anything is not.
        assert_eq!(id(r#"{"jsonrpc":"2.0","id":12"#), None);
        assert_eq!(
            id(r#"{"jsonrpc":"2.0","id":12 "#),
            Some(RequestId::Number(12))
        );
        assert_eq!(
            id(r#"{"jsonrpc":"2.0","id":12,"met"#),
            Some(RequestId::Number(12))
        );
        assert_eq!(id(r#"{"jsonrpc":"2.0","id":"ab"#), None);
        for cut in [r#"{"id":1.0"#, r#"{"id":1e2"#, r#"{"id":0"#, r#"{"id":0.0"#] {
            assert_eq!(id(cut), None, "{cut}");
        }
        // Whatever follows, this one stays 0.
        assert_eq!(id(r#"{"id":0e0"#), Some(RequestId::Number(0)));
        assert_eq!(id(r#"{"id":1.0,"#), Some(RequestId::Number(1)));
        // Found by the mcp_lines fuzz target: a number followed by something is whole, even
        // when the line goes on to end in a digit (it was taken for a cut number then).
        let line = b"{\"jsonrpc\":\"2.0\",\"id\":2\0\0,\"error\":{\"code\":-32602}2";
        assert_eq!(leading_id(line), Some(RequestId::Number(2)));
        assert_eq!(leading_id(&line[..24]), Some(RequestId::Number(2)));
        // Ids rmcp would not take are none.
        for prefix in [
            r#"{"id":null,"#,
            r#"{"id":1.5,"#,
            r#"{"id":{},"#,
            r#"[{"id":1}"#,
            "xxxx",
            "",
        ] {
            assert_eq!(id(prefix), None, "{prefix}");
        }
    }

    #[test]
    fn the_operation_is_the_method_or_the_called_tool() {
        let op = |text: &str| operation(text.as_bytes());
        let method = |m: &str| Operation::Method(m.into());
        let tool = |t: &str| Operation::ToolCall(t.into());
        assert_eq!(
            op(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#),
            method("tools/list")
        );
        assert_eq!(
            op(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
            method("notifications/initialized")
        );
        assert_eq!(
            op(
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"classify","arguments":{}}}"#
            ),
            tool("classify")
        );
        // Any order of members; escapes are read as rmcp reads them.
        assert_eq!(
            op(
                r#"{"params":{"arguments":{"name":"x"},"name":"traffic_state"},"id":1,"jsonrpc":"2.0","method":"tools\/call"}"#
            ),
            tool("traffic_state")
        );
        assert_eq!(
            op(r#"{"jsonrpc":"2.0","id":1,"\u006dethod":"resources/read","params":{"uri":"x"}}"#),
            method("resources/read")
        );
        assert_eq!(
            op(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#),
            Operation::Response
        );
        assert_eq!(
            op(r#"{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"m"}}"#),
            Operation::Response
        );
        // A response that also names a method is taken at its method.
        assert_eq!(
            op(r#"{"jsonrpc":"2.0","id":1,"result":{},"method":"prompts/get"}"#),
            method("prompts/get")
        );
    }

    #[test]
    fn the_operation_scan_stops_at_the_tool_name() {
        // Everything after the name is never read: broken JSON there goes unnoticed.
        let head = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"classify_batch","arguments":{"events":["#;
        assert_eq!(
            operation(format!("{head}@@@ not json").as_bytes()),
            Operation::ToolCall("classify_batch".into())
        );
        assert_eq!(
            operation(br#"{"jsonrpc":"2.0","method":"ping","params":@@@"#),
            Operation::Method("ping".into())
        );
    }

    #[test]
    fn what_the_scan_cannot_read_is_unknown() {
        for text in [
            "",
            "not json",
            r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#,
            "42",
            r#"{"jsonrpc":"2.0","id":1}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":7}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":3}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":[]}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0","id":1,"params":{"name":"a","name":"b"},"method":"tools/call"}"#,
            r#"{"jsonrpc":"2.0","id":1,"params":{},"params":{"name":"a"},"method":"tools/call"}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{},"method":"tools/call"}"#,
        ] {
            assert_eq!(operation(text.as_bytes()), Operation::Unknown, "{text}");
        }
    }

    #[test]
    fn error_replies_carry_a_null_id_when_it_is_unknown() {
        let error = ErrorData::parse_error("Parse error: the message is not valid JSON", None);
        let reply: serde_json::Value = serde_json::from_slice(&error_reply(None, &error)).unwrap();
        assert_eq!(
            reply,
            serde_json::json!({"jsonrpc": "2.0", "id": null,
                "error": {"code": -32700, "message": "Parse error: the message is not valid JSON"}})
        );
        let reply: serde_json::Value =
            serde_json::from_slice(&error_reply(Some(&RequestId::Number(7)), &error)).unwrap();
        assert_eq!(reply["id"], 7);
    }
}
