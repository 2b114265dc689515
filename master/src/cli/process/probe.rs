//! Asking a local process whether it serves: a master's
//! `/api/v1/master/health` (its role and whether it can serve it), a
//! worker's RPC port accepting connections. Every probe is bounded.

use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Bound on one probe (connect, request and answer).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// A master's answer on its health endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthAnswer {
    /// `PRIMARY`, `STANDBY` or `STARTING`.
    pub role: String,
    /// Whether the master can serve that role (a standby: follows and is
    /// within the lag bound).
    pub healthy: bool,
    /// Entries behind the primary, when the master knows.
    pub lag: Option<u64>,
    /// The master's reason, in one sentence.
    pub reason: String,
}

/// GETs `http://host:port/api/v1/master/health`; `Err` names what failed
/// (refused, timed out, not JSON).
pub async fn master_health(host: &str, port: u16) -> Result<HealthAnswer, String> {
    let body = tokio::time::timeout(PROBE_TIMEOUT, get(host, port, "/api/v1/master/health"))
        .await
        .map_err(|_| format!("no answer within {PROBE_TIMEOUT:?}"))??;
    let v: serde_json::Value =
        serde_json::from_str(&body).map_err(|e| format!("the answer is not JSON ({e})"))?;
    Ok(HealthAnswer {
        role: v["role"].as_str().unwrap_or("UNKNOWN").to_string(),
        healthy: v["healthy"].as_bool().unwrap_or(false),
        lag: v["lag"].as_u64(),
        reason: v["reason"].as_str().unwrap_or("").to_string(),
    })
}

/// One HTTP/1.1 GET; the body as text whatever the status (the health
/// endpoint answers 503 with the same JSON when unhealthy).
async fn get(host: &str, port: u16, path: &str) -> Result<String, String> {
    let stream = TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("cannot connect to {host}:{port} ({e})"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake with {host}:{port} failed ({e})"))?;
    let driver = tokio::spawn(conn);
    let request = http::Request::get(path)
        .header(http::header::HOST, format!("{host}:{port}"))
        .body(Empty::<bytes::Bytes>::new())
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("GET {path} on {host}:{port} failed ({e})"))?;
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("reading the answer of {host}:{port} failed ({e})"))?
        .to_bytes();
    driver.abort();
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// Whether `host:port` accepts a TCP connection within [`PROBE_TIMEOUT`].
pub async fn port_open(host: &str, port: u16) -> bool {
    matches!(
        tokio::time::timeout(PROBE_TIMEOUT, TcpStream::connect((host, port))).await,
        Ok(Ok(_))
    )
}
