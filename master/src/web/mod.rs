//! The status server on `alluxio.master.web.port`, run by every master
//! (primary and standby alike) from the moment its port is bound, also
//! while the journal is still opening.
//!
//! - `/`: the HTML overview ([`page`]).
//! - `/api/v1/master/info`: the same facts as JSON ([`crate::status::json`]).
//! - `/api/v1/master/health`: 200 when this master can serve its role, 503
//!   otherwise ([`crate::status::health`]; `?role=primary|standby`).
//! - `/metrics`: Prometheus (OpenMetrics) text ([`crate::metrics`]).
//!
//! Only GET (and HEAD) are served; other methods are 405, other paths 404.
//! hyper serves HTTP/1.1 with a bound on reading a request's headers
//! ([`HEADER_TIMEOUT`]) and on open connections ([`MAX_CONNECTIONS`]), so
//! slow or piled-up clients cannot hold the master's resources.

#[cfg(feature = "failpoints")]
mod failpoints;
pub mod page;
mod routes;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};

use crate::metrics::MasterMetrics;
use crate::rpc::MasterState;

/// How long a client may take to send a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections served at once; more are closed at once on accept.
pub const MAX_CONNECTIONS: usize = 256;

/// What the status server shows: the master (once its journal is open)
/// and what is known before that.
pub struct WebContext {
    master: OnceLock<Arc<MasterState>>,
    /// This master's metrics registry.
    pub metrics: Arc<MasterMetrics>,
    /// This master's advertised RPC address.
    pub address: String,
    /// When this master process started (ms since the Unix epoch).
    pub start_time_ms: u64,
}

impl WebContext {
    /// A context for the master at `address` whose journal is not open yet.
    pub fn new(address: String, metrics: Arc<MasterMetrics>, start_time_ms: u64) -> WebContext {
        WebContext {
            master: OnceLock::new(),
            metrics,
            address,
            start_time_ms,
        }
    }

    /// The journal is open: from now on the views show `state`. Later calls
    /// are ignored (one master per process).
    pub fn set_master(&self, state: Arc<MasterState>) {
        let _ = self.master.set(state);
    }

    /// The master, once its journal is open.
    pub fn master(&self) -> Option<&Arc<MasterState>> {
        self.master.get()
    }
}

/// The running status server; [`WebServer::stop`] ends it.
pub struct WebServer {
    task: JoinHandle<()>,
}

impl WebServer {
    /// Serves `listener` (already bound, so a port in use was reported
    /// before) with the views of `ctx`, on this runtime.
    pub fn spawn(listener: TcpListener, ctx: Arc<WebContext>) -> WebServer {
        WebServer {
            task: tokio::spawn(accept_loop(listener, ctx)),
        }
    }

    /// Stops accepting and drops every open connection.
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

async fn accept_loop(listener: TcpListener, ctx: Arc<WebContext>) {
    let router = routes::router(ctx);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    // Dropping the set (when this task is aborted) aborts every connection.
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // Out of file descriptors, or a connection reset before it
                // was accepted: pause briefly instead of spinning.
                tracing::warn!(error = %e, "status server: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "status server: {MAX_CONNECTIONS} connections open; refusing one");
            continue;
        };
        let service = TowerToHyperService::new(router.clone());
        connections.spawn(async move {
            let _slot = slot;
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(e) = served {
                tracing::debug!(%peer, error = %e, "status server: connection ended with an error");
            }
        });
    }
}
