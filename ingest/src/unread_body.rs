//! Connections whose request body was not read to the end are closed after the response.
//!
//! actix-web closes such a connection itself only while the body is still held when the
//! response ends; once the handler has dropped it, the server drains it with no deadline, so a
//! client that stops sending mid-body (on a route that never reads it, or after a refusal)
//! would hold its connection and a file descriptor forever. Here an unfinished body travels
//! with the response body, so the server sees it unread and closes instead of draining.

use std::cell::{Cell, RefCell};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use actix_web::HttpMessage;
use actix_web::body::{BodySize, BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use futures::{Stream, StreamExt};

/// The middleware (`actix_web::middleware::from_fn(unread_body::close_connection)`).
pub async fn close_connection(
    mut request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<BoxBody, HoldingBody>>, actix_web::Error> {
    let body = Rc::new(Shared {
        payload: RefCell::new(request.take_payload()),
        ended: Cell::new(false),
    });
    request.set_payload(Payload::Stream {
        payload: Box::pin(Reader(Rc::clone(&body))),
    });
    let response = next.call(request).await?;
    if body.ended.get() || !has_body(&response) {
        return Ok(response.map_into_boxed_body().map_into_left_body());
    }
    Ok(response.map_body(|_, inner| {
        EitherBody::right(HoldingBody {
            inner: inner.boxed(),
            _request_body: body,
        })
    }))
}

/// Whether the request came with a body at all (a length above 0, or chunks).
fn has_body<B>(response: &ServiceResponse<B>) -> bool {
    let headers = response.request().headers();
    headers.contains_key(actix_web::http::header::TRANSFER_ENCODING)
        || headers
            .get(actix_web::http::header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
}

/// The request body, shared by the handler's reader and the middleware.
struct Shared {
    payload: RefCell<Payload>,
    /// The reader saw the end of the body: nothing is left to drain.
    ended: Cell<bool>,
}

struct Reader(Rc<Shared>);

impl Stream for Reader {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let next = self.0.payload.borrow_mut().poll_next_unpin(cx);
        if let Poll::Ready(None) = next {
            self.0.ended.set(true);
        }
        next
    }
}

/// A response body carrying the unfinished request body until it has been sent. It does not
/// turn itself into bytes early (`try_into_bytes`), which would drop what it carries.
pub struct HoldingBody {
    inner: BoxBody,
    _request_body: Rc<Shared>,
}

impl MessageBody for HoldingBody {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        self.inner.size()
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.inner).poll_next(cx)
    }
}
