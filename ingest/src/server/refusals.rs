//! Problem bodies for the refusals the HTTP layer writes by itself.
//!
//! actix-http answers a request it cannot parse (`400`), a request head that is too large
//! (`431`) or too slow (`408`) from its connection loop, before any route or middleware sees a
//! request, with an empty body and no way to change it. Every answer the application writes
//! carries `x-request-id`; these never do, and they are the last thing written on their
//! connection. [`RefusalIo`] wraps the connection and replaces exactly those writes with the
//! same status and an RFC 9457 problem body.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use actix_web::web::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A connection whose bare refusals are rewritten into problem documents.
pub struct RefusalIo<T> {
    inner: T,
    /// A rewritten answer and how much of it has been written.
    pending: Option<(Bytes, usize)>,
}

impl<T> RefusalIo<T> {
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            pending: None,
        }
    }
}

/// The refusals the HTTP layer sends: status, problem type, title and detail.
const REFUSALS: &[(&str, &str, &str, &str)] = &[
    (
        "400",
        "malformed-request",
        "The request is not valid HTTP/1.1",
        "the request line, a header or the message framing could not be parsed",
    ),
    (
        "408",
        "request-timeout",
        "The request head did not arrive in time",
        "the request line and headers were not complete within 5 s",
    ),
    (
        "431",
        "headers-too-large",
        "The request head is too large",
        "the request line and headers exceed 128 KiB or 96 headers",
    ),
];

/// A bare refusal is a status line and three or four short headers.
const MAX_BARE_REFUSAL: usize = 512;

/// The problem-document version of `written`, when it is one bare refusal.
fn rewrite(written: &[u8]) -> Option<Bytes> {
    // Every other write is passed over on these three byte checks.
    let bare = written.len() <= MAX_BARE_REFUSAL
        && written.starts_with(b"HTTP/1.1 4")
        && written.ends_with(b"\r\n\r\n");
    if !bare {
        return None;
    }
    let head = std::str::from_utf8(written)
        .ok()?
        .strip_suffix("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let code = status_line.strip_prefix("HTTP/1.1 ")?.get(..3)?;
    let (_, slug, title, detail) = REFUSALS.iter().find(|(c, ..)| *c == code)?;
    let headers: Vec<&str> = lines.collect();
    let empty = headers
        .iter()
        .any(|h| h.eq_ignore_ascii_case("content-length: 0"));
    let from_the_app = headers.iter().any(|h| {
        h.get(..13)
            .is_some_and(|name| name.eq_ignore_ascii_case("x-request-id:"))
    });
    if !empty || from_the_app {
        return None;
    }
    let body = serde_json::json!({
        "type": format!("/problems/{slug}"),
        "title": title,
        "status": code.parse::<u16>().ok()?,
        "detail": format!("{detail}; the connection is closed"),
    })
    .to_string();
    let mut answer = format!(
        "{status_line}\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: close\r\n",
        crate::problem::CONTENT_TYPE,
        body.len()
    );
    for header in headers {
        let name = header.split(':').next().unwrap_or_default();
        if !["content-length", "connection", "content-type"]
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n))
        {
            answer.push_str(header);
            answer.push_str("\r\n");
        }
    }
    answer.push_str("\r\n");
    answer.push_str(&body);
    Some(Bytes::from(answer))
}

impl<T: AsyncWrite + Unpin> RefusalIo<T> {
    /// Writes what is left of a rewritten answer.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((answer, written)) = &mut self.pending {
            if *written == answer.len() {
                self.pending = None;
                break;
            }
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &answer[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for RefusalIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for RefusalIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_pending(cx))?;
        if let Some(answer) = rewrite(buf) {
            // The caller's bytes count as written; the answer replacing them follows.
            self.pending = Some((answer, 0));
            if let Poll::Ready(Err(e)) = self.poll_pending(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    const BARE_400: &[u8] = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\ndate: Wed, 02 Dec 2026 04:00:28 GMT\r\n\r\n";

    #[test]
    fn a_bare_refusal_becomes_a_problem_document_with_the_same_status() {
        let answer = rewrite(BARE_400).unwrap();
        let text = std::str::from_utf8(&answer).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
        assert!(head.contains("content-type: application/problem+json"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(head.contains("date: Wed, 02 Dec 2026"), "{head}");
        let problem: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(problem["type"], "/problems/malformed-request");
        assert_eq!(problem["status"], 400);
        for (code, reason) in [
            ("408", "Request Timeout"),
            ("431", "Request Header Fields Too Large"),
        ] {
            let bare = format!(
                "HTTP/1.1 {code} {reason}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
            let answer = rewrite(bare.as_bytes()).unwrap();
            assert!(
                std::str::from_utf8(&answer)
                    .unwrap()
                    .contains(&format!("\"status\":{code}"))
            );
        }
    }

    #[test]
    fn answers_of_the_application_pass_untouched() {
        for written in [
            &b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nx-request-id: abc\r\n\r\n"[..],
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 12\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\nHTTP/1.1 200 OK",
        ] {
            assert!(
                rewrite(written).is_none(),
                "{}",
                String::from_utf8_lossy(written)
            );
        }
    }

    #[tokio::test]
    async fn the_rewritten_answer_is_written_whole_through_a_narrow_pipe() {
        let (client, server) = tokio::io::duplex(7);
        let mut io = RefusalIo::new(server);
        let writer = tokio::spawn(async move {
            io.write_all(BARE_400).await.unwrap();
            io.shutdown().await.unwrap();
        });
        let mut received = String::new();
        let mut client = client;
        client.read_to_string(&mut received).await.unwrap();
        writer.await.unwrap();
        assert_eq!(received.as_bytes(), &rewrite(BARE_400).unwrap()[..]);
    }
}
