//! The master's gRPC server side (`proto/primacy/rpc.proto`).
//!
//! - [`gate`]: every FileSystemMaster and WorkerMaster call on a master that
//!   is not the primary is refused `UNAVAILABLE` with the primary's address
//!   (message and `primacy-primary` metadata); journal errors map the same
//!   way.
//! - [`fs`]: Mutate validates, stamps the time, proposes and returns the
//!   state machine's result; GetStatus/ListStatus pass a shared read
//!   barrier ([`reads`]) and read the machine.
//! - [`workers`](crate::workers): the primary's soft worker registry,
//!   served by the WorkerMaster service here.
//! - MetaMaster.GetMasterInfo and GetClusterInfo are answered by every
//!   master ([`info`]).
//! - [`journal_svc`]: JournalMaster, journal administration on the primary
//!   (checkpoint, quorum info, leadership transfer, membership), with
//!   [`handoff`], which also serves a stopping primary's graceful handoff.
//!
//! [`MasterState`] holds what the services share; [`services`] builds the
//! three tonic services with the request size limit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use journal_core::JournalSystem;
use parking_lot::{Mutex, RwLock};

use crate::meta::MetaMachine;
use crate::proto::rpc::file_system_master_server::FileSystemMasterServer;
use crate::proto::rpc::journal_master_server::JournalMasterServer;
use crate::proto::rpc::meta_master_server::MetaMasterServer;
use crate::proto::rpc::worker_master_server::WorkerMasterServer;
use crate::status::StatusContext;
use crate::workers::WorkerRegistry;

pub mod fs;
pub mod gate;
pub mod handoff;
pub mod info;
pub mod journal_svc;
pub mod reads;
pub mod worker_svc;

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

pub use gate::PRIMARY_METADATA_KEY;
pub use reads::ReadBatcher;

/// Largest request a service decodes (4 MiB, gRPC's customary limit). A
/// larger one is refused by tonic before decoding (`OUT_OF_RANGE`); a
/// CompleteFile with the maximum 2^20 blocks is about 20 MiB, so very
/// large files must be completed by a future streaming call.
pub const MAX_REQUEST_BYTES: usize = 4 << 20;

/// Largest response a service encodes. Listings of huge directories are the
/// only large answers; 64 MiB bounds the memory one answer may take.
pub const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// What the services share: the journal, the state machine it drives, the
/// worker registry, the read batcher and the clock stamp.
pub struct MasterState {
    /// This master's journal.
    pub journal: Arc<dyn JournalSystem>,
    /// The state machine the journal applies to (queries read it).
    pub machine: Arc<RwLock<MetaMachine>>,
    /// The primary's worker registry (empty on a standby).
    pub workers: Mutex<WorkerRegistry>,
    /// Shared read barriers for linearizable reads.
    pub reads: ReadBatcher,
    /// This master's advertised RPC address (`hostname:rpc.port`).
    pub address: String,
    /// When this master started, in ms since the Unix epoch.
    pub start_time_ms: u64,
    /// The journal's cluster id, once read (set by the server after the
    /// journal opened; `quorum info` shows it).
    pub cluster_id: std::sync::OnceLock<String>,
    /// Settings, role history, metrics and the peer client of the status
    /// views (`crate::status`).
    pub status: StatusContext,
    clock: Stamper,
}

impl MasterState {
    /// State for a master at `address` whose journal applies to `machine`,
    /// declaring workers lost after `worker_timeout`, with a standalone
    /// status context (no status server, its own registry).
    pub fn new(
        journal: Arc<dyn JournalSystem>,
        machine: Arc<RwLock<MetaMachine>>,
        address: String,
        worker_timeout: Duration,
    ) -> Arc<Self> {
        Self::with_status(
            journal,
            machine,
            address,
            worker_timeout,
            StatusContext::standalone(),
            wall_clock_ms(),
        )
    }

    /// [`MasterState::new`] with the process's status context and start
    /// time (ms since the Unix epoch).
    pub fn with_status(
        journal: Arc<dyn JournalSystem>,
        machine: Arc<RwLock<MetaMachine>>,
        address: String,
        worker_timeout: Duration,
        status: StatusContext,
        start_time_ms: u64,
    ) -> Arc<Self> {
        Arc::new(MasterState {
            reads: ReadBatcher::new(journal.clone()),
            journal,
            machine,
            workers: Mutex::new(WorkerRegistry::new(worker_timeout)),
            address,
            start_time_ms,
            cluster_id: std::sync::OnceLock::new(),
            status,
            clock: Stamper::default(),
        })
    }

    /// The time to stamp into the next entry: this primary's wall clock,
    /// but never below the last value stamped here nor below the log time
    /// the machine has applied (a new primary's clock may be behind the
    /// old one's), so entry times never go backwards.
    pub fn stamp_time(&self) -> u64 {
        let floor = self.machine.read().log_ms();
        self.clock.stamp(wall_clock_ms().max(floor))
    }
}

/// The three services over `state`, each decoding at most
/// [`MAX_REQUEST_BYTES`] per request.
pub fn services(
    state: Arc<MasterState>,
) -> (
    FileSystemMasterServer<fs::FsService>,
    WorkerMasterServer<worker_svc::WorkerService>,
    MetaMasterServer<info::InfoService>,
) {
    (
        FileSystemMasterServer::new(fs::FsService::new(state.clone()))
            .max_decoding_message_size(MAX_REQUEST_BYTES)
            .max_encoding_message_size(MAX_RESPONSE_BYTES),
        WorkerMasterServer::new(worker_svc::WorkerService::new(state.clone()))
            .max_decoding_message_size(MAX_REQUEST_BYTES)
            .max_encoding_message_size(MAX_RESPONSE_BYTES),
        MetaMasterServer::new(info::InfoService::new(state))
            .max_decoding_message_size(MAX_REQUEST_BYTES)
            .max_encoding_message_size(MAX_RESPONSE_BYTES),
    )
}

/// The JournalMaster service over `state` (journal administration), with
/// the same message limits as [`services`].
pub fn journal_service(
    state: Arc<MasterState>,
) -> JournalMasterServer<journal_svc::JournalService> {
    JournalMasterServer::new(journal_svc::JournalService::new(state))
        .max_decoding_message_size(MAX_REQUEST_BYTES)
        .max_encoding_message_size(MAX_RESPONSE_BYTES)
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn wall_clock_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Hands out entry times that never decrease.
#[derive(Debug, Default)]
struct Stamper {
    last: AtomicU64,
}

impl Stamper {
    /// `now`, or the last value handed out if that is larger.
    fn stamp(&self, now: u64) -> u64 {
        let prev = self.last.fetch_max(now, Ordering::AcqRel);
        prev.max(now)
    }
}

#[cfg(test)]
mod stamper_tests {
    use super::Stamper;

    #[test]
    fn stamps_never_go_backwards() {
        let s = Stamper::default();
        assert_eq!(s.stamp(100), 100);
        assert_eq!(s.stamp(90), 100);
        assert_eq!(s.stamp(150), 150);
    }
}
