//! Why a call to the classifier failed, in words an operator can act on. rmcp's own messages
//! embed the transport's Rust type name and `Debug` dumps of protocol messages; these are
//! what `/v1/ready` and an event's `last_error` show instead.

use rmcp::service::{ClientInitializeError, ServiceError};
use rmcp::transport::streamable_http_client::StreamableHttpError;
use service_kit::telemetry::error_chain;

/// A transport's error with its causes. The HTTP client's error is unwrapped, because rmcp's
/// wrapper prints it without its causes (which say what actually happened, e.g. refused).
fn transport(error: &(dyn std::error::Error + Send + Sync + 'static)) -> String {
    match error.downcast_ref::<StreamableHttpError<reqwest::Error>>() {
        Some(StreamableHttpError::Client(inner)) => error_chain(inner),
        _ => error_chain(error),
    }
}

/// Why connecting (the MCP `initialize` handshake) failed.
pub fn connect_error(error: &ClientInitializeError) -> String {
    match error {
        ClientInitializeError::TransportError { error, context } => {
            format!("{context}: {}", transport(error.error.as_ref()))
        }
        ClientInitializeError::ConnectionClosed(during) => {
            format!("the classifier closed the connection during {during}")
        }
        ClientInitializeError::JsonRpcError(data) => {
            format!("the classifier refused to initialize: {}", data.message)
        }
        ClientInitializeError::ExpectedInitResponse(_)
        | ClientInitializeError::ExpectedInitResult(_)
        | ClientInitializeError::ConflictInitResponseId(..)
        | ClientInitializeError::UncorrelatedErrorResponse { .. } => {
            "the classifier did not answer the MCP initialize request as the protocol requires"
                .into()
        }
        other => error_chain(other),
    }
}

/// Why a tool call on an open connection failed.
pub fn call_error(error: &ServiceError) -> String {
    match error {
        ServiceError::McpError(data) => format!(
            "the classifier answered with error {}: {}",
            data.code.0, data.message
        ),
        ServiceError::TransportSend(error) => format!(
            "could not send to the classifier: {}",
            transport(error.error.as_ref())
        ),
        ServiceError::TransportClosed => "the connection to the classifier closed".into(),
        other => error_chain(other),
    }
}

#[cfg(test)]
mod tests {
    use std::any::TypeId;

    use rmcp::transport::DynamicTransportError;

    use super::*;

    fn transport_error() -> DynamicTransportError {
        DynamicTransportError::from_parts(
            "rmcp::transport::streamable_http_client::StreamableHttpClientTransport<reqwest::Client>",
            TypeId::of::<()>(),
            Box::new(std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                "Connection refused (os error 111)",
            )),
        )
    }

    #[test]
    fn a_refused_connection_is_told_without_type_names() {
        let error = ClientInitializeError::TransportError {
            error: transport_error(),
            context: "send initialize request".into(),
        };
        assert!(
            error.to_string().contains("rmcp::"),
            "rmcp's own text has it"
        );
        let words = connect_error(&error);
        assert_eq!(
            words,
            "send initialize request: Connection refused (os error 111)"
        );
        let words = call_error(&ServiceError::TransportSend(transport_error()));
        assert!(
            !words.contains("::") && words.contains("refused"),
            "{words}"
        );
    }

    #[test]
    fn a_protocol_mismatch_is_told_without_a_message_dump() {
        let words = connect_error(&ClientInitializeError::ExpectedInitResponse(None));
        assert!(
            !words.contains("None") && words.contains("initialize"),
            "{words}"
        );
    }
}
