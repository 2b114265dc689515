//! Fuzz targets for every decoder of primacy that reads bytes from disk or
//! from the network.
//!
//! Each target is a plain `fn(&[u8])` that feeds the bytes to one decoder
//! and asserts the decoder's contract, not only that it returns: damage is
//! an error naming the object (never another valid state), what decodes
//! re-encodes to something that decodes to the same value, and no length
//! field makes it reserve memory the input cannot back. A broken contract
//! panics, which both drivers report:
//!
//! - `cargo test` (tests/corpus.rs) runs every target over the committed
//!   seed corpus (`corpus/<target>/`, written by `fuzz-seed` with the
//!   project's own encoders), over mutations of it and over random bytes:
//!   the short pass CI runs;
//! - `fuzz-afl <target>` (feature `afl`, built with `cargo afl build`) is
//!   the coverage-guided driver for long runs (docs/reliability.md).

pub mod records;
pub mod targets;

/// One fuzz target: a name (its corpus directory), what it covers and its body.
#[derive(Clone, Copy)]
pub struct Target {
    /// The target's name, also its directory under `corpus/`.
    pub name: &'static str,
    /// The decoder(s) it covers.
    pub covers: &'static str,
    /// The body: returns for any input whose handling honoured the
    /// contract, panics otherwise.
    pub run: fn(&[u8]),
}

/// Every target, in the order docs/reliability.md lists them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "frame",
        covers: "journal-core record framing: FrameDecoder and read_frame",
        run: targets::frame::target,
    },
    Target {
        name: "ufs_chunk",
        covers: "journal-ufs chunk objects: decode_chunk",
        run: targets::ufs_chunk::target,
    },
    Target {
        name: "ufs_format",
        covers: "journal-ufs FORMAT marker: parse_format",
        run: targets::ufs_format::target,
    },
    Target {
        name: "snapshot_stream",
        covers: "journal-core snapshot streams (UFS checkpoints, Raft snapshot files) restored into master::meta",
        run: targets::snapshot_stream::target,
    },
    Target {
        name: "meta_restore",
        covers: "master::meta's snapshot body (MetaMachine::restore)",
        run: targets::meta_restore::target,
    },
    Target {
        name: "meta_apply",
        covers: "master::meta journal entries (MetaMachine::apply)",
        run: targets::meta_apply::target,
    },
    Target {
        name: "rpc_request",
        covers: "the master's gRPC handlers (FileSystemMaster, WorkerMaster, JournalMaster) on prost-decoded requests",
        run: targets::rpc_request::target,
    },
    Target {
        name: "raft_peer",
        covers: "journal-raft peer messages: MessageBatch, eraftpb::Message, the inbound checks, then raft-rs stepping them",
        run: targets::raft_peer::target,
    },
    Target {
        name: "raft_format",
        covers: "journal-raft FORMAT marker: parse_marker",
        run: targets::raft_format::target,
    },
    Target {
        name: "raft_storage",
        covers: "journal-raft log-file walk (walk_log_file, has_valid_chain_after) and the peer map (decode_peers)",
        run: targets::raft_storage::target,
    },
    Target {
        name: "properties",
        covers: "master::config: alluxio-site.properties parsing and MasterConfig::from_properties",
        run: targets::properties::target,
    },
];

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}
