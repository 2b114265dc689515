//! Tests of master::meta, with a small harness that stamps entries the way
//! a primary would (one client, increasing request seqs and times).

mod alloc_count;
mod conformance_tests;
mod memory_tests;
mod ops_tests;
mod prop_tests;
mod restore_diff_tests;
mod restore_reference;
mod restore_tests;
mod session_tests;
mod snapshot_tests;

use super::{encode_entry, Entry, ErrorCode, FileInfo, FsResult, MetaConfig, MetaMachine, Op};

/// A machine and one client feeding it entries.
pub(super) struct Harness {
    pub machine: MetaMachine,
    pub client: Vec<u8>,
    pub seq: u64,
    pub ms: u64,
}

impl Harness {
    pub fn new() -> Self {
        Harness::with_config(MetaConfig::default())
    }

    pub fn with_config(config: MetaConfig) -> Self {
        Harness {
            machine: MetaMachine::new(config),
            client: b"client-0123456789".to_vec(),
            seq: 0,
            ms: 1_000,
        }
    }

    /// Applies `op` as the client's next request, one millisecond later.
    pub fn run(&mut self, op: Op) -> FsResult {
        self.seq += 1;
        self.ms += 1;
        let entry = encode_entry(&self.client, self.seq, self.ms, op);
        self.machine.apply_entry(&entry)
    }

    /// Runs `op` and returns the inode it reports; panics on an error.
    pub fn ok(&mut self, op: Op) -> FileInfo {
        let what = format!("{op:?}");
        match self.run(op).into_info() {
            Ok(info) => info,
            Err(e) => panic!("{what} failed: {e}"),
        }
    }

    /// Runs `op`, expects `code`, returns the message.
    pub fn fails(&mut self, op: Op, code: ErrorCode) -> String {
        let what = format!("{op:?}");
        let before = self.machine.canonical_dump();
        let next_id = self.machine.next_id();
        let r = self.run(op);
        let Some(e) = r.err() else {
            panic!("{what} succeeded, expected {code:?}");
        };
        assert_eq!(e.code, code, "{what}: {}", e.message);
        // A refused op changes no table; only the session row records it.
        assert_eq!(
            tables(&before),
            tables(&self.machine.canonical_dump()),
            "{what} changed the tables"
        );
        assert_eq!(next_id, self.machine.next_id(), "{what} used an id");
        e.message
    }

    pub fn mkdir(&mut self, path: &str) -> FileInfo {
        self.ok(Entry::mkdir(path, true))
    }

    pub fn touch(&mut self, path: &str) -> FileInfo {
        self.ok(Entry::create_file(path))
    }

    pub fn stat(&self, path: &str) -> FileInfo {
        match self.machine.get_status(path) {
            Ok(info) => info,
            Err(e) => panic!("stat {path}: {e}"),
        }
    }

    pub fn ls(&self, path: &str) -> Vec<String> {
        match self.machine.list_status(path) {
            Ok(l) => l.into_iter().map(|i| i.name).collect(),
            Err(e) => panic!("ls {path}: {e}"),
        }
    }
}

/// The table lines of a canonical dump (without counters and sessions).
pub(super) fn tables(dump: &str) -> String {
    dump.lines()
        .filter(|l| l.starts_with("inode") || l.starts_with("edge") || l.starts_with("blocks"))
        .collect::<Vec<_>>()
        .join("\n")
}
