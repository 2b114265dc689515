//! A raw HTTP/1.1 client for the status server tests: well-formed requests
//! and deliberately broken ones over a plain TCP socket, every step bounded.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::BOUND;

/// One answer: status code, headers (names lower-cased) and body.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// `(name, value)`, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body as text (lossy).
    pub body: String,
}

impl HttpResponse {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON (panics with the body if it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// Sends `bytes` to `127.0.0.1:port`, then reads until the server closes
/// (bounded). Returns what came back (possibly nothing).
pub async fn exchange(port: u16, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let io = async {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
        // A server may answer and close before taking everything (a 405
        // for a huge body); what was sent so far is enough.
        let _ = s.write_all(bytes).await;
        let mut out = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match s.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                // A reset after the answer (the server closed with
                // unread bytes) still leaves what was read.
                Err(_) if !out.is_empty() => break,
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    };
    tokio::time::timeout(BOUND, io)
        .await
        .unwrap_or_else(|_| panic!("no answer from port {port} within {BOUND:?}"))
}

/// Parses a raw HTTP/1.1 answer (Content-Length or chunked body, or up to
/// the end).
pub fn parse(raw: &[u8]) -> Option<HttpResponse> {
    let text = String::from_utf8_lossy(raw);
    let (head, rest) = text.split_once("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        let mut body = String::new();
        let mut rest = rest;
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).ok()?;
            if n == 0 {
                break;
            }
            body.push_str(tail.get(..n)?);
            rest = tail.get(n + 2..)?;
        }
        body
    } else {
        rest.to_string()
    };
    Some(HttpResponse {
        status,
        headers,
        body,
    })
}

/// `METHOD path` on `127.0.0.1:port` with `Connection: close`.
pub async fn request(port: u16, method: &str, path: &str) -> HttpResponse {
    let req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    let raw = exchange(port, req.as_bytes())
        .await
        .unwrap_or_else(|e| panic!("{method} {path} on port {port}: {e}"));
    parse(&raw).unwrap_or_else(|| {
        panic!(
            "{method} {path}: not an HTTP answer: {:?}",
            String::from_utf8_lossy(&raw)
        )
    })
}

/// `GET path`.
pub async fn get(port: u16, path: &str) -> HttpResponse {
    request(port, "GET", path).await
}

/// Polls `GET path` until `ok` holds on the answer; panics after `bound`
/// with the last answer.
pub async fn wait_get(
    port: u16,
    path: &str,
    bound: Duration,
    what: &str,
    ok: impl Fn(&HttpResponse) -> bool,
) -> HttpResponse {
    let deadline = std::time::Instant::now() + bound;
    loop {
        let last = match tokio::time::timeout(Duration::from_secs(5), async {
            let raw = exchange(
                port,
                format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
            )
            .await
            .ok()?;
            parse(&raw)
        })
        .await
        {
            Ok(Some(r)) if ok(&r) => return r,
            Ok(Some(r)) => format!("{} {}", r.status, r.body),
            Ok(None) => "no HTTP answer".to_string(),
            Err(_) => "no answer within 5 s".to_string(),
        };
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within {bound:?}; last answer: {last}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
