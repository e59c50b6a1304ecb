//! Requests written byte by byte over TCP, for what an HTTP client library will not send:
//! made-up methods, bodies that stall, broken framing.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `host:port` of a base URL such as `http://127.0.0.1:8080`.
pub fn authority(base: &str) -> String {
    base.trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned()
}

/// Opens a connection to `base` and writes `bytes` without waiting for an answer.
pub async fn open(base: &str, bytes: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(authority(base))
        .await
        .unwrap_or_else(|e| panic!("connect to {base}: {e}"));
    stream.write_all(bytes).await.expect("write the request");
    stream
}

/// Everything the server writes until it closes the connection or `timeout` passes; `None`
/// when the connection is still open at the end (the server is holding it).
pub async fn read_to_close(stream: &mut TcpStream, timeout: Duration) -> Option<Vec<u8>> {
    let mut received = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut buf = [0u8; 8192];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(received),
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
        }
    }
}

/// One whole request and the first answer: (status, head and body as text). The request is
/// written while the answer is read, because a server may answer (and close) before it has
/// read everything, as it should with a body it refuses.
pub async fn exchange(base: &str, bytes: &[u8]) -> (u16, String) {
    let stream = TcpStream::connect(authority(base))
        .await
        .unwrap_or_else(|e| panic!("connect to {base}: {e}"));
    let (mut reader, mut writer) = stream.into_split();
    let request = bytes.to_vec();
    let writing = tokio::spawn(async move {
        // A refused body may be cut off by the server: a failed write is part of the test.
        let _ = writer.write_all(&request).await;
        writer
    });
    let mut received = Vec::new();
    let mut buf = [0u8; 8192];
    let answer = loop {
        let n = tokio::time::timeout(Duration::from_secs(30), reader.read(&mut buf))
            .await
            .expect("an answer within 30 s")
            .unwrap_or(0);
        received.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&received).into_owned();
        let complete = match text.split_once("\r\n\r\n") {
            Some((head, body)) => body.len() >= content_length(head),
            None => false,
        };
        if complete || n == 0 {
            break (status_of(&text), text);
        }
    };
    writing.abort();
    answer
}

fn content_length(head: &str) -> usize {
    head.lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())
                .flatten()
        })
        .unwrap_or(0)
}

/// The status code of a response's first line (0 when there is none).
pub fn status_of(response: &str) -> u16 {
    response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

/// A process's resident memory in KiB, from `/proc`.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// The process's open sockets (its descriptors that are sockets: connections and listeners).
pub fn open_sockets(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("/proc fd")
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().starts_with("socket:"))
        .count()
}
