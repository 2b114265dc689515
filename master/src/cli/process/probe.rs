//! Asking a local process whether it serves: a master's
//! `/api/v1/master/health` (its role and whether it can serve it), a
//! worker's registration with the primary. Every probe is bounded.

use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::client::{ClientOptions, Discovery, MasterClient};
use crate::config::{MasterConfig, RetrySettings};

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

/// What the primary says about the worker at `address`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerAnswer {
    /// `LIVE` or `LOST`.
    pub state: String,
    /// Milliseconds since its last heartbeat reached the primary.
    pub ms_since_heartbeat: u64,
}

/// Asks the primary (found as `config` says, retried for a few seconds)
/// for the worker registered as `address`; the freshest entry if it
/// registered more than once. A worker serves no port of its own: its
/// registration is how it is seen to run.
pub async fn worker_registration(
    config: &MasterConfig,
    address: &str,
) -> Result<WorkerAnswer, String> {
    let discovery = Discovery::from_config(config).map_err(|e| e.to_string())?;
    let options = ClientOptions {
        retry: RetrySettings {
            max_duration: PROBE_TIMEOUT,
            base_sleep: Duration::from_millis(50),
            max_sleep: Duration::from_millis(500),
        },
        connect_timeout: Duration::from_secs(1),
        credentials: config.rpc_credentials(),
    };
    let client = MasterClient::new(discovery, options);
    let (primary, info) = tokio::time::timeout(PROBE_TIMEOUT * 2, client.leader_info())
        .await
        .map_err(|_| format!("no primary answered within {:?}", PROBE_TIMEOUT * 2))?
        .map_err(|e| format!("no primary: {e}"))?;
    info.workers
        .iter()
        .filter(|w| w.address == address)
        .min_by_key(|w| w.ms_since_heartbeat)
        .map(|w| WorkerAnswer {
            state: w.state.clone(),
            ms_since_heartbeat: w.ms_since_heartbeat,
        })
        .ok_or_else(|| format!("the primary {primary} has no worker {address}"))
}
