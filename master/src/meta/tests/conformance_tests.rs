//! The embedder's state-machine check (`journal_core::testkit`) on the
//! metadata machine: every kind of operation, refusals, a retry of an
//! applied request, a stale request and several clients.

use bytes::Bytes;
use journal_core::testkit::{check_state_machine, check_state_machine_by};

use crate::meta::{encode_entry, Entry, MetaMachine};

fn entries() -> Vec<Bytes> {
    let a: &[u8] = b"client-a";
    let b: &[u8] = b"client-b";
    vec![
        encode_entry(a, 1, 1_000, Entry::mkdir("/data/logs", true)),
        encode_entry(b, 1, 1_001, Entry::create_file("/data/logs/one")),
        encode_entry(
            b,
            2,
            1_002,
            Entry::complete_file("/data/logs/one", &[(7, 100), (8, 20)]),
        ),
        // A retry of an applied request: answered from the session table.
        encode_entry(
            b,
            2,
            1_003,
            Entry::complete_file("/data/logs/one", &[(7, 100), (8, 20)]),
        ),
        // Refused: the parent is missing; then a stale request seq.
        encode_entry(a, 2, 1_004, Entry::create_file("/missing/file")),
        encode_entry(a, 1, 1_005, Entry::mkdir("/stale", false)),
        encode_entry(a, 3, 1_006, Entry::rename("/data/logs/one", "/data/one")),
        encode_entry(b, 3, 1_007, Entry::create_file("/data/two")),
        encode_entry(a, 4, 1_008, Entry::delete("/data/logs", true)),
        // A clock behind the log time: log time stays monotone.
        encode_entry(b, 4, 900, Entry::mkdir("/later", false)),
    ]
}

#[test]
fn the_metadata_machine_passes_the_state_machine_check() {
    check_state_machine(MetaMachine::default, &entries()).unwrap();
}

#[test]
fn and_compared_by_its_canonical_dump() {
    check_state_machine_by(MetaMachine::default, &entries(), |m: &MetaMachine| {
        Ok(m.canonical_dump())
    })
    .unwrap();
}
