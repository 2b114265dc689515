//! One master process: the journal, the state machine, the gRPC server, the
//! status server (`web`) and the background tasks (role log, worker
//! liveness sweep), wired together.
//!
//! Order matters: the RPC and web ports are bound **before** the journal
//! opens, so a port in use fails the start before this master joins an
//! election under an address it cannot serve; the status server answers
//! from then on (STARTING while the journal replays). On shutdown a primary
//! first hands primacy to another master (`rpc::handoff`: Raft leadership
//! transfer to the most caught-up voter, or, with the UFS journal and
//! ZooKeeper, resigning to the next contender) while it still answers
//! (clients are redirected to the new primary), then the server stops
//! accepting, the status server closes, and the journal is shut down
//! cleanly (it leaves the election and fails pending proposals), so the
//! next start replays it normally.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::service::interceptor::InterceptedService;

use journal_core::{JournalError, Role, SharedStateMachine};
use parking_lot::RwLock;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::backend;
use crate::config::{ConfigError, MasterConfig};
use crate::meta::MetaMachine;
use crate::metrics::MasterMetrics;
use crate::rpc::{self, gate, MasterState};
use crate::status::{ClusterSettings, StatusContext};
use crate::web::{WebContext, WebServer};

/// Why a master could not start or stopped abnormally. The CLI maps each to
/// an exit code ([`ServerError::exit_code`]).
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The configuration is malformed or contradictory (names key and value).
    #[error("configuration error: {0}")]
    Config(#[from] ConfigError),
    /// The journal could not be opened or failed.
    #[error("{0}")]
    Journal(#[from] JournalError),
    /// The RPC port could not be bound (in use, or not permitted).
    #[error("cannot listen on {address} (alluxio.master.rpc.port = {port}): {source}")]
    Bind {
        /// The port from `alluxio.master.rpc.port`.
        port: u16,
        /// The socket address tried.
        address: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The status port could not be bound (in use, or not permitted).
    #[error("cannot listen on {address} (alluxio.master.web.port = {port}): {source}")]
    WebBind {
        /// The port from `alluxio.master.web.port`.
        port: u16,
        /// The socket address tried.
        address: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The gRPC server failed while serving.
    #[error("the RPC server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
}

impl ServerError {
    /// 2 for what the operator must fix before a start can work (config,
    /// port, unformatted or foreign journal), 1 for everything else
    /// (corruption, I/O, a failing server).
    pub fn exit_code(&self) -> u8 {
        match self {
            ServerError::Config(_) | ServerError::Bind { .. } | ServerError::WebBind { .. } => 2,
            ServerError::Journal(
                JournalError::Unformatted { .. }
                | JournalError::ForeignJournal { .. }
                | JournalError::Config { .. },
            ) => 2,
            ServerError::Journal(_) | ServerError::Serve(_) => 1,
        }
    }
}

/// Runs one master until `shutdown` completes, then (a primary) hands
/// primacy to another master within a bound, stops accepting, shuts the
/// journal down and returns `Ok`.
///
/// Binds `0.0.0.0:alluxio.master.rpc.port` (every interface; the address
/// advertised to clients and the election is [`MasterConfig::rpc_address`])
/// and `0.0.0.0:alluxio.master.web.port` (the status server, served at
/// once), opens the journal chosen by the configuration
/// ([`backend::open_journal_with`], which never formats), and serves
/// FileSystemMaster, WorkerMaster and MetaMaster. Role changes are logged
/// and kept in the role history; losing primacy clears the worker registry.
pub async fn run(
    cfg: MasterConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let backend = cfg.backend()?;
    cfg.check_security()?;
    let started_ms = rpc::wall_clock_ms();
    let bind = SocketAddr::from(([0, 0, 0, 0], cfg.rpc_port));
    let listener = TcpListener::bind(bind)
        .await
        .map_err(|source| ServerError::Bind {
            port: cfg.rpc_port,
            address: bind,
            source,
        })?;
    let web_bind = SocketAddr::from(([0, 0, 0, 0], cfg.web_port));
    let web_listener =
        TcpListener::bind(web_bind)
            .await
            .map_err(|source| ServerError::WebBind {
                port: cfg.web_port,
                address: web_bind,
                source,
            })?;
    let metrics = Arc::new(MasterMetrics::new());
    let web_ctx = Arc::new(WebContext::new(
        cfg.rpc_address(),
        metrics.clone(),
        started_ms,
    ));
    let web = WebServer::spawn(web_listener, web_ctx.clone());
    tracing::info!("status page on http://{web_bind}/ (alluxio.master.web.port)");

    let machine = Arc::new(RwLock::new(MetaMachine::default()));
    let shared: SharedStateMachine = machine.clone();
    let journal = match backend::open_journal_with(&cfg, shared, metrics.journal.clone()).await {
        Ok(j) => j,
        Err(e) => {
            web.stop().await;
            return Err(e.into());
        }
    };
    let status = StatusContext::new(ClusterSettings::from_config(&cfg, backend), metrics.clone());
    let state = MasterState::with_status(
        journal.clone(),
        machine,
        cfg.rpc_address(),
        cfg.worker_timeout,
        status,
        started_ms,
    );
    match backend::cluster_id(&cfg).await {
        Ok(Some(id)) => {
            let _ = state.cluster_id.set(id);
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "cannot read the journal's cluster id"),
    }
    state
        .status
        .history
        .lock()
        .record("STANDBY", 0, format!("journal open: {backend}"));
    web_ctx.set_master(state.clone());
    tracing::info!(
        %backend,
        location = %journal.status().location,
        cluster = state.cluster_id.get().map_or("?", String::as_str),
        "journal open; this master is {}",
        *journal.role().borrow()
    );

    let stopping = Arc::new(AtomicBool::new(false));
    let roles = tokio::spawn(log_roles(state.clone(), stopping.clone()));
    let sweeper = tokio::spawn(sweep_workers(state.clone()));

    let (fs, workers, info) = rpc::services(state.clone());
    let admin = rpc::journal_service(state.clone());
    tracing::info!("listening on {bind} (advertised as {})", cfg.rpc_address());
    let stop = stopping.clone();
    let handing = state.clone();
    // Checked inside the metrics layer, so refusals are counted (code
    // UNAUTHENTICATED), and in front of every service: a refused request
    // reaches no handler and changes nothing.
    let inbound_auth = journal_raft::auth::ServerAuth::new(
        cfg.security
            .rpc_auth
            .then(|| cfg.security.secret.as_deref().cloned())
            .flatten(),
        journal_raft::auth::Realm::Rpc,
    );
    if inbound_auth.is_required() {
        tracing::info!(
            "the RPC port requires authentication ({})",
            journal_raft::auth::KEY_RPC_AUTH
        );
    }
    let served = tonic::transport::Server::builder()
        .layer(metrics.rpc_layer())
        .add_service(InterceptedService::new(fs, inbound_auth.clone()))
        .add_service(InterceptedService::new(workers, inbound_auth.clone()))
        .add_service(InterceptedService::new(info, inbound_auth.clone()))
        .add_service(InterceptedService::new(admin, inbound_auth))
        .serve_with_incoming_shutdown(
            // Without TCP_NODELAY a response of more than one segment (a
            // listing) waits for the client's delayed ACK, about 40 ms.
            journal_core::net::nodelay_incoming(listener),
            async move {
                shutdown.await;
                // Still serving: requests that reach this master while
                // primacy moves are answered, or redirected once it moved.
                rpc::handoff::hand_over_on_shutdown(&handing).await;
                stop.store(true, Ordering::SeqCst);
                tracing::info!("shutting down: no longer accepting requests");
            },
        )
        .await;

    stopping.store(true, Ordering::SeqCst);
    web.stop().await;
    journal.shutdown().await;
    sweeper.abort();
    // The role task ends by itself once the journal's role watch closes or
    // flips to standby; do not wait for it longer than a moment.
    let _ = tokio::time::timeout(Duration::from_secs(1), roles).await;
    tracing::info!("journal shut down; master stopped");
    served.map_err(ServerError::from)
}

/// Logs every role change; on losing primacy, clears the worker registry
/// (a new primary starts empty and workers re-register with it).
async fn log_roles(state: Arc<MasterState>, stopping: Arc<AtomicBool>) {
    let mut role: watch::Receiver<Role> = state.journal.role();
    let mut current = *role.borrow_and_update();
    let mut standby_since = Instant::now();
    if let Role::Primary { epoch } = current {
        log_gained(&state, epoch, standby_since);
    }
    while role.changed().await.is_ok() {
        let next = *role.borrow_and_update();
        match (current, next) {
            (Role::Standby, Role::Primary { epoch }) => log_gained(&state, epoch, standby_since),
            (Role::Primary { epoch }, Role::Standby) => {
                standby_since = Instant::now();
                state.workers.lock().clear();
                state.status.metrics.role_changed(next);
                let status = state.journal.status();
                let leader = gate::primary_rpc_address(&status);
                let reason = if stopping.load(Ordering::SeqCst) {
                    "this master is shutting down".to_string()
                } else if status.epoch > epoch {
                    format!("a newer primary (epoch {}) took over", status.epoch)
                } else {
                    "the election was lost or the journal stopped serving (see the journal's log)"
                        .to_string()
                };
                tracing::warn!(
                    role = "STANDBY",
                    epoch,
                    primary = leader.as_deref().unwrap_or("unknown"),
                    "lost primacy: {reason}; the worker registry was cleared"
                );
                state.status.history.lock().record(
                    "STANDBY",
                    epoch,
                    format!("lost primacy: {reason}"),
                );
            }
            (Role::Primary { epoch: a }, Role::Primary { epoch: b }) if a != b => {
                state.workers.lock().clear();
                state.status.metrics.role_changed(next);
                tracing::warn!(
                    role = "PRIMARY",
                    "primacy moved from epoch {a} to epoch {b}"
                );
                state.status.history.lock().record(
                    "PRIMARY",
                    b,
                    format!("primacy moved from epoch {a} to epoch {b}"),
                );
            }
            _ => {}
        }
        current = next;
    }
}

fn log_gained(state: &MasterState, epoch: u64, standby_since: Instant) {
    let status = state.journal.status();
    // The journal reports primary only after catching up, so the time since
    // this master became a standby bounds election wait plus catch-up.
    let reason = format!(
        "gained primacy at epoch {epoch} after catching up to seq {} in {} ms",
        status.last_applied,
        standby_since.elapsed().as_millis()
    );
    tracing::info!(role = "PRIMARY", address = %state.address, "{reason}");
    state.status.metrics.role_changed(Role::Primary { epoch });
    state.status.history.lock().record("PRIMARY", epoch, reason);
}

/// Marks workers LOST after the timeout; runs on every master (a standby's
/// registry is empty).
async fn sweep_workers(state: Arc<MasterState>) {
    let timeout = state.workers.lock().timeout();
    // Five sweeps per timeout bound how late a loss is noticed (20%).
    let period = (timeout / 5).clamp(Duration::from_millis(10), Duration::from_secs(5));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let lost = state.workers.lock().sweep(Instant::now());
        for address in lost {
            tracing::warn!(
                worker = %address,
                "worker lost: no heartbeat for longer than {timeout:?} (alluxio.master.worker.timeout)"
            );
        }
    }
}
