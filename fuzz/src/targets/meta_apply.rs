//! master::meta journal entries, as `apply` receives them from the log.

use bytes::Bytes;
use journal_core::StateMachine;
use master::meta::{encode_entry, Entry, MetaMachine};

use crate::records;

/// A short history touching every operation, as real clients send it: the
/// seed of the entry targets and the state the restore target starts from.
pub fn sample_entries() -> Vec<Bytes> {
    let client = b"fuzz-client-0001";
    let ops = [
        Entry::mkdir("/a/b", true),
        Entry::create_file("/a/b/f"),
        Entry::complete_file("/a/b/f", &[(1 << 24, 4096), ((1 << 24) + 1, 100)]),
        Entry::mkdir("/c", false),
        Entry::rename("/a/b/f", "/c/g"),
        Entry::create_file("/c/h"),
        Entry::delete("/a", true),
    ];
    let mut out: Vec<Bytes> = ops
        .into_iter()
        .enumerate()
        .map(|(i, op)| encode_entry(client, i as u64 + 1, 1_700_000_000_000 + i as u64, op))
        .collect();
    // A retry of the last request: must apply once.
    out.push(encode_entry(
        client,
        7,
        1_700_000_000_010,
        Entry::delete("/a", true),
    ));
    out
}

/// A machine that applied [`sample_entries`].
pub fn populated() -> MetaMachine {
    let mut m = MetaMachine::default();
    for (i, e) in sample_entries().iter().enumerate() {
        m.apply(i as u64 + 1, e);
    }
    m
}

/// Applies each record of `data` ([`records::split`]) as an entry.
///
/// Contract: apply never fails (a bad entry is an error output) and is
/// deterministic: two machines applying the same entries answer alike and
/// end equal; whatever state the entries built snapshots, restores into an
/// equal machine (whose own snapshot is byte-identical) and goes on
/// answering alike.
pub fn target(data: &[u8]) {
    let entries = records::split(data);
    let mut a = MetaMachine::default();
    let mut b = MetaMachine::default();
    for (i, e) in entries.iter().enumerate() {
        let seq = i as u64 + 1;
        assert_eq!(
            a.apply(seq, e),
            b.apply(seq, e),
            "entry {seq} answered differently"
        );
    }
    let mut snap = Vec::new();
    a.snapshot(&mut snap).expect("an applied state snapshots");
    let mut c = MetaMachine::default();
    c.restore(&mut snap.as_slice())
        .unwrap_or_else(|e| panic!("the snapshot of an applied state does not restore: {e}"));
    assert_eq!(c.canonical_dump(), a.canonical_dump());
    let mut again = Vec::new();
    c.snapshot(&mut again).expect("snapshots");
    assert_eq!(again, snap, "a restored machine snapshots differently");
    let next = entries.len() as u64 + 1;
    for (i, e) in sample_entries().iter().enumerate() {
        let seq = next + i as u64;
        assert_eq!(
            a.apply(seq, e),
            c.apply(seq, e),
            "restored machine answered differently"
        );
    }
}
