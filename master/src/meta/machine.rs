//! [`MetaMachine`]: the metadata tables, the session table and the id
//! counter, driven by journal entries.

use std::io::{Read, Write};

use bytes::Bytes;
use journal_core::{FrozenState, StateMachine};
use prost::Message;

use super::error::MetaError;
use super::mem_store::MemStore;
use super::ops::Tables;
use super::proto::{entry::Op, Entry, ErrorCode, FileInfo, FsResult};
use super::query;
use super::sessions::{
    Sessions, Verdict, DEFAULT_MAX_SESSIONS, DEFAULT_SESSION_RETENTION_MS, MAX_CLIENT_ID_BYTES,
};
use super::store::{InodeId, MetaStore, StoreView, ROOT_ID};
use super::{restore, snapshot};

/// Settings that shape the state. **Every master of a cluster must use the
/// same values** (they decide which sessions are forgotten, hence results).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetaConfig {
    /// A client's last result is kept this long after its last request, in
    /// log milliseconds.
    pub session_retention_ms: u64,
    /// Clients remembered at most (least recently used forgotten first).
    pub max_sessions: usize,
}

impl Default for MetaConfig {
    fn default() -> Self {
        MetaConfig {
            session_retention_ms: DEFAULT_SESSION_RETENTION_MS,
            max_sessions: DEFAULT_MAX_SESSIONS,
        }
    }
}

/// Everything a snapshot holds besides the tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Counters {
    /// The next inode id handed out (ids are never reused).
    pub next_id: InodeId,
    /// Log time: the largest `time_ms` of any entry applied. Monotone even if
    /// a new primary's clock is behind, so expiry never runs backwards.
    pub log_ms: u64,
}

/// The metadata state machine of the master.
///
/// Guarantees: `apply` is deterministic (same entries, same order → same
/// state and same outputs on every master), never reads a clock, never
/// panics on any entry bytes, and a refused or malformed entry changes no
/// table (a well-formed one still advances log time and session expiry). A
/// request (client id, request seq) is applied at most once while its
/// session is kept. `snapshot` → `restore` gives an equal state; `freeze`
/// is O(1) and writes exactly the state at the moment it was called.
pub struct MetaMachine<S: MetaStore = MemStore> {
    store: S,
    sessions: Sessions,
    counters: Counters,
    config: MetaConfig,
}

impl MetaMachine<MemStore> {
    /// An in-memory machine holding only the root directory.
    pub fn new(config: MetaConfig) -> Self {
        MetaMachine::with_store(MemStore::default(), config)
    }
}

impl Default for MetaMachine<MemStore> {
    fn default() -> Self {
        MetaMachine::new(MetaConfig::default())
    }
}

impl<S: MetaStore> MetaMachine<S> {
    /// A machine over `store`, which must hold the root directory (id
    /// [`ROOT_ID`]) and nothing that was not written by this machine.
    pub fn with_store(store: S, config: MetaConfig) -> Self {
        let next_id = store
            .inodes()
            .map(|(id, _)| id)
            .max()
            .unwrap_or(ROOT_ID)
            .max(ROOT_ID)
            + 1;
        MetaMachine {
            store,
            sessions: Sessions::default(),
            counters: Counters { next_id, log_ms: 0 },
            config,
        }
    }

    /// The settings the machine was made with.
    pub fn config(&self) -> MetaConfig {
        self.config
    }

    /// Read access to the tables (e.g. for counts and dumps).
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The session table.
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// Log time: the largest entry time applied so far.
    pub fn log_ms(&self) -> u64 {
        self.counters.log_ms
    }

    /// The id the next created inode gets.
    pub fn next_id(&self) -> InodeId {
        self.counters.next_id
    }

    /// Get status of `path`. Reads the applied state only; the RPC layer
    /// passes the journal's read barrier first for a linearizable answer.
    pub fn get_status(&self, path: &str) -> Result<FileInfo, MetaError> {
        query::get_status(&self.store, path)
    }

    /// List status of `path`: a directory's children in name order, or the
    /// file itself.
    pub fn list_status(&self, path: &str) -> Result<Vec<FileInfo>, MetaError> {
        query::list_status(&self.store, path)
    }

    /// Applies one encoded entry and returns its decoded result (what
    /// [`StateMachine::apply`] returns, typed), for tests and embedders.
    pub fn apply_entry(&mut self, entry: &[u8]) -> FsResult {
        super::entry::decode_result(self.apply_bytes(entry))
    }

    /// The body of `apply`: the encoded [`FsResult`] of `entry`.
    fn apply_bytes(&mut self, entry: &[u8]) -> Bytes {
        let entry = match Entry::decode(entry) {
            Ok(e) => e,
            Err(e) => {
                return encode(FsResult::error(MetaError::new(
                    ErrorCode::MalformedEntry,
                    format!("the entry is not a metadata entry: {e}"),
                )))
            }
        };
        if let Err(e) = check_envelope(&entry) {
            return encode(FsResult::error(e));
        }
        let Some(op) = entry.op else {
            return encode(FsResult::error(MetaError::new(
                ErrorCode::MalformedEntry,
                "the entry carries no operation",
            )));
        };
        self.counters.log_ms = self.counters.log_ms.max(entry.time_ms);
        let now = self.counters.log_ms;
        self.sessions.expire(now, self.config.session_retention_ms);
        match self
            .sessions
            .check(&entry.client_id, entry.request_seq, now)
        {
            Verdict::Apply => {}
            // The first result, byte for byte, without applying again.
            Verdict::Duplicate(first) => return first,
            Verdict::Stale { last_seq } => {
                return encode(FsResult::error(MetaError::new(
                    ErrorCode::StaleRequest,
                    format!(
                        "request {} of client {} is below its last applied request {last_seq}; \
                         its result is no longer kept (not applied)",
                        entry.request_seq,
                        hex(&entry.client_id)
                    ),
                )));
            }
        }
        let result = encode(self.execute(op, entry.time_ms));
        self.sessions.record(
            entry.client_id,
            entry.request_seq,
            now,
            result.clone(),
            self.config.max_sessions,
        );
        result
    }

    fn execute(&mut self, op: Op, ms: u64) -> FsResult {
        let mut t = Tables {
            store: &mut self.store,
            next_id: &mut self.counters.next_id,
            ms,
        };
        match op {
            Op::Mkdir(m) => t.mkdir(&m.path, m.recursive).into(),
            Op::CreateFile(c) => t.create_file(&c.path).into(),
            Op::CompleteFile(c) => t.complete_file(&c.path, &c.blocks).into(),
            Op::Delete(d) => t
                .delete(&d.path, d.recursive)
                .map_or_else(FsResult::error, |d| FsResult::deleted(d.inodes)),
            Op::Rename(r) => t.rename(&r.src, &r.dst).into(),
        }
    }

    /// An immutable copy of the whole state (tables, sessions, counters),
    /// O(1) for the in-memory store.
    pub fn frozen(&self) -> FrozenMeta<S::Frozen> {
        FrozenMeta {
            store: self.store.freeze(),
            sessions: self.sessions.clone(),
            counters: self.counters.clone(),
        }
    }

    /// A canonical, human-readable dump of the whole state, written
    /// independently of the snapshot code: two machines are equal exactly
    /// when their dumps are. Meant for tests and debugging (it is O(state)).
    pub fn canonical_dump(&self) -> String {
        snapshot::dump(&self.store, &self.sessions, &self.counters)
    }
}

/// Checks what apply needs before it may touch the session table.
fn check_envelope(entry: &Entry) -> Result<(), MetaError> {
    if entry.client_id.is_empty() || entry.client_id.len() > MAX_CLIENT_ID_BYTES {
        return Err(MetaError::new(
            ErrorCode::MalformedEntry,
            format!(
                "client id of {} bytes; it must have 1 to {MAX_CLIENT_ID_BYTES}",
                entry.client_id.len()
            ),
        ));
    }
    Ok(())
}

fn encode(result: FsResult) -> Bytes {
    Bytes::from(result.encode_to_vec())
}

/// Lower-case hex of a client id, for messages.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The state captured by [`MetaMachine::frozen`] / `freeze`.
pub struct FrozenMeta<F: StoreView> {
    store: F,
    sessions: Sessions,
    counters: Counters,
}

impl<F: StoreView + 'static> FrozenState for FrozenMeta<F> {
    fn write_to(&self, out: &mut dyn Write) -> std::io::Result<()> {
        snapshot::write(&self.store, &self.sessions, &self.counters, out)
    }
}

impl<F: StoreView> FrozenMeta<F> {
    /// The canonical dump of the captured state (see [`MetaMachine::canonical_dump`]).
    pub fn canonical_dump(&self) -> String {
        snapshot::dump(&self.store, &self.sessions, &self.counters)
    }
}

impl<S: MetaStore> StateMachine for MetaMachine<S> {
    /// Applies the entry; the journal's `seq` is not needed (ordering is the
    /// journal's, times come from the entry). Never panics.
    fn apply(&mut self, _seq: u64, entry: &[u8]) -> Bytes {
        self.apply_bytes(entry)
    }

    fn snapshot(&self, out: &mut dyn Write) -> std::io::Result<()> {
        snapshot::write(&self.store, &self.sessions, &self.counters, out)
    }

    /// Reads the whole stream into a new store and swaps it in only once
    /// every record and every cross-table invariant verified; on error the
    /// machine is unchanged.
    fn restore(&mut self, input: &mut dyn Read) -> std::io::Result<()> {
        let (store, sessions, counters) = restore::read(self.store.empty(), input)?;
        self.store = store;
        self.sessions = sessions;
        self.counters = counters;
        Ok(())
    }

    fn freeze(&self) -> Option<Box<dyn FrozenState>> {
        Some(Box::new(self.frozen()))
    }
}
