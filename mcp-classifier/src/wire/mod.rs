//! Newline-delimited MCP JSON-RPC over any byte stream (stdio, the in-process duplex pipe).
//!
//! It behaves as rmcp's own `AsyncRwTransport` does, with one difference: the message a peer
//! receives most often (a `tools/call` request on the server side, its result on ingest's
//! client side) is parsed straight into its type. rmcp parses every line through untagged
//! enums, which buffer the whole message and then try one variant after another against the
//! buffer (`tools/call` is the fourteenth); that was a quarter of the stdio server's CPU per
//! call. Every other line still goes through rmcp's parse and its rules (ignored foreign
//! notifications).
//!
//! Where rmcp would stay silent or drop a line, this transport answers with a JSON-RPC error
//! whose `id` is the request's, or `null` when that is unknown: `-32700` Parse error for a line
//! that is not JSON (or not UTF-8), `-32600` Invalid Request for JSON that is not one JSON-RPC
//! message (a batch, say) and for a line over the 16 MiB limit, `-32602` Invalid params for a
//! request rmcp cannot parse. Notifications and responses are never answered.

pub(crate) mod envelope;
mod lines;
mod tool_call;
mod tool_result;

use std::sync::Arc;

use futures::{SinkExt, StreamExt};
use rmcp::service::{RxJsonRpcMessage, ServiceRole, TxJsonRpcMessage};
use rmcp::transport::Transport;
use rmcp::transport::async_rw::JsonRpcMessageCodec;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Mutex;
use tokio_util::codec::{FramedRead, FramedWrite};

use self::envelope::error_reply;
pub use self::tool_call::tool_call_request;
// For the fuzz targets (fuzz/): the line framing, and the envelope reads the transports and
// the HTTP scope check rely on.
#[doc(hidden)]
pub use self::envelope::{Operation, leading_id, operation};
#[doc(hidden)]
pub use self::lines::{Incoming, LineCodec};
pub use self::tool_result::tool_result_response;

/// Parses the role's most frequent message directly; `None` sends the line down rmcp's path.
pub type HotDecoder<Role> = fn(&[u8]) -> Option<RxJsonRpcMessage<Role>>;

type Writer<Role, W> = FramedWrite<W, JsonRpcMessageCodec<TxJsonRpcMessage<Role>>>;

/// A line transport with a direct parse for one hot message (see the module docs).
pub struct LineTransport<Role: ServiceRole, R, W> {
    read: FramedRead<R, LineCodec<Role>>,
    write: Arc<Mutex<Option<Writer<Role, W>>>>,
    /// An error reply owed to the peer. `receive` runs inside a `select!` and can be dropped
    /// at any await, so the reply's progress lives here rather than on its stack.
    owed_reply: Option<Reply>,
}

enum Reply {
    /// The reply's line, not yet in the write buffer.
    Queue(Vec<u8>),
    /// In the write buffer, not yet flushed.
    Flush,
}

impl<Role: ServiceRole, R: AsyncRead, W: AsyncWrite> LineTransport<Role, R, W> {
    pub fn new(read: R, write: W, hot: HotDecoder<Role>) -> Self {
        Self {
            read: FramedRead::new(read, LineCodec::new(hot)),
            write: Arc::new(Mutex::new(Some(FramedWrite::new(
                write,
                JsonRpcMessageCodec::default(),
            )))),
            owed_reply: None,
        }
    }
}

impl<Role, R, W> LineTransport<Role, R, W>
where
    Role: ServiceRole,
    W: AsyncWrite + Send + Unpin + 'static,
{
    /// Sends the owed error reply; false when the writer is gone or failed.
    async fn pay_reply(&mut self) -> bool {
        if self.owed_reply.is_none() {
            return true;
        }
        let mut write = self.write.lock().await;
        let Some(framed) = write.as_mut() else {
            return false;
        };
        if let Some(Reply::Queue(line)) = self.owed_reply.replace(Reply::Flush) {
            // Written as is: rmcp's encoder would leave out an unknown `id`, where JSON-RPC
            // asks for `null`.
            let buffer = framed.write_buffer_mut();
            buffer.extend_from_slice(&line);
            buffer.extend_from_slice(b"\n");
        }
        if framed.flush().await.is_err() {
            return false;
        }
        self.owed_reply = None;
        true
    }
}

impl<Role, R, W> Transport<Role> for LineTransport<Role, R, W>
where
    Role: ServiceRole,
    R: AsyncRead + Send + Unpin,
    W: AsyncWrite + Send + Unpin + 'static,
{
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<Role>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let write = self.write.clone();
        async move {
            match write.lock().await.as_mut() {
                Some(framed) => framed.send(item).await.map_err(std::io::Error::from),
                None => Err(std::io::Error::new(
                    std::io::ErrorKind::NotConnected,
                    "transport is closed",
                )),
            }
        }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<Role>> {
        loop {
            if !self.pay_reply().await {
                return None;
            }
            match self.read.next().await? {
                Ok(Incoming::Message(message)) => return Some(*message),
                Ok(Incoming::Refused { id, error }) => {
                    self.owed_reply = Some(Reply::Queue(error_reply(id.as_ref(), &error)));
                }
                Ok(Incoming::Skipped) => {}
                Err(e) => {
                    tracing::error!(error = %e, "reading the MCP stream failed");
                    return None;
                }
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.write.lock().await.take();
        Ok(())
    }
}
