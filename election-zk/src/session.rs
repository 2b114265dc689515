//! Connecting to ZooKeeper, with retries, and mapping its errors.

use std::time::Duration;

use journal_core::JournalError;
use tokio::sync::watch;
use zookeeper_client as zk;

use crate::config::ZkConfig;

/// Maps a ZooKeeper error to the journal's, naming the path or address.
pub(crate) fn zk_err(location: impl Into<String>, e: zk::Error) -> JournalError {
    JournalError::io(location, e)
}

/// Awaits `fut` for at most `after`; a `Timeout` error names `what`.
/// ZooKeeper calls queue while disconnected, so every call is bounded.
pub(crate) async fn bounded<T>(
    what: impl Into<String>,
    after: Duration,
    fut: impl std::future::Future<Output = T>,
) -> Result<T, JournalError> {
    tokio::time::timeout(after, fut)
        .await
        .map_err(|_| JournalError::Timeout {
            what: what.into(),
            after,
        })
}

/// True for session states after which the session cannot be used again.
pub(crate) fn is_session_end(s: zk::SessionState) -> bool {
    s.is_terminated()
}

/// Connects to the ensemble, retrying with exponential backoff until it
/// works or `closing` turns true (then `None`). Every failed attempt logs
/// which address it waits for; nothing here panics.
pub(crate) async fn connect_with_retry(
    cfg: &ZkConfig,
    closing: &mut watch::Receiver<bool>,
) -> Option<zk::Client> {
    let mut backoff = Duration::from_millis(100);
    let mut attempt = 0u32;
    loop {
        if *closing.borrow() {
            return None;
        }
        attempt += 1;
        let connect = zk::Client::connector()
            .with_session_timeout(cfg.session_timeout)
            .with_fail_eagerly()
            .connect(&cfg.address);
        match tokio::time::timeout(cfg.connection_timeout, connect).await {
            Ok(Ok(client)) => {
                tracing::info!(
                    zookeeper = %cfg.address,
                    session = %client.session_id(),
                    negotiated_timeout_ms = client.session_timeout().as_millis() as u64,
                    "connected to ZooKeeper"
                );
                return Some(client);
            }
            Ok(Err(e)) => {
                if attempt == 1 || attempt.is_power_of_two() {
                    tracing::warn!(zookeeper = %cfg.address, error = %e, attempt, retry_in_ms = backoff.as_millis() as u64, "waiting for ZooKeeper");
                }
            }
            Err(_) => {
                tracing::warn!(zookeeper = %cfg.address, attempt, timeout_ms = cfg.connection_timeout.as_millis() as u64, "waiting for ZooKeeper: connection attempt timed out");
            }
        }
        tokio::select! {
            _ = closing.changed() => return None,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(cfg.max_backoff);
    }
}
