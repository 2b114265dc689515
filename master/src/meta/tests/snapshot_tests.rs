//! Snapshot, restore and freeze: equal states, and every damaged stream refused.

use std::time::Instant;

use journal_core::StateMachine;

use super::Harness;
use crate::meta::{Entry, MetaMachine, StoreView};

/// A small state with every table and a session.
fn small() -> MetaMachine {
    let mut h = Harness::new();
    h.mkdir("/a/b");
    h.touch("/a/b/f");
    h.ok(Entry::complete_file("/a/b/f", &[(1, 10), (2, 20)]));
    h.touch("/a/open");
    h.mkdir("/z");
    h.machine
}

fn snapshot_bytes(m: &MetaMachine) -> Vec<u8> {
    let mut out = Vec::new();
    if let Err(e) = m.snapshot(&mut out) {
        panic!("snapshot: {e}");
    }
    out
}

fn restored(bytes: &[u8]) -> std::io::Result<MetaMachine> {
    let mut m = MetaMachine::default();
    m.restore(&mut &bytes[..])?;
    Ok(m)
}

#[test]
fn restore_gives_an_equal_state_and_the_same_next_results() {
    let mut m = small();
    let bytes = snapshot_bytes(&m);
    let mut r = match restored(&bytes) {
        Ok(r) => r,
        Err(e) => panic!("restore: {e}"),
    };
    assert_eq!(m.canonical_dump(), r.canonical_dump());
    assert_eq!(snapshot_bytes(&r), bytes, "one state, one stream");
    let next = crate::meta::encode_entry(b"x", 1, 9_999, Entry::mkdir("/a/new", false));
    assert_eq!(m.apply(1, &next), r.apply(1, &next));
    assert_eq!(m.canonical_dump(), r.canonical_dump());
}

#[test]
fn every_truncation_is_refused_and_leaves_the_machine_unchanged() {
    let bytes = snapshot_bytes(&small());
    let mut target = MetaMachine::default();
    let mut h = Harness::new();
    h.mkdir("/existing");
    target
        .restore(&mut &snapshot_bytes(&h.machine)[..])
        .unwrap_or_else(|e| panic!("{e}"));
    let before = target.canonical_dump();
    for len in 0..bytes.len() {
        let r = target.restore(&mut &bytes[..len]);
        assert!(
            r.is_err(),
            "a stream cut at {len} of {} bytes was accepted",
            bytes.len()
        );
        assert_eq!(
            before,
            target.canonical_dump(),
            "cut at {len} changed the state"
        );
    }
    let mut longer = bytes.clone();
    longer.extend_from_slice(&bytes);
    assert!(restored(&longer).is_err(), "bytes after the trailer");
}

#[test]
fn garbage_and_flipped_bytes_are_refused() {
    let bytes = snapshot_bytes(&small());
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for len in [0usize, 1, 7, 8, 100, 4096] {
        let garbage: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        assert!(restored(&garbage).is_err(), "{len} garbage bytes accepted");
    }
    for at in 0..bytes.len() {
        let mut flipped = bytes.clone();
        flipped[at] ^= 0x40;
        assert!(restored(&flipped).is_err(), "flipped byte {at} accepted");
    }
}

#[test]
fn freeze_writes_the_state_of_its_moment_while_apply_goes_on() {
    let mut h = Harness::new();
    h.mkdir("/before");
    let dump_then = h.machine.canonical_dump();
    let bytes_then = snapshot_bytes(&h.machine);
    let frozen = h
        .machine
        .freeze()
        .unwrap_or_else(|| panic!("freeze is supported"));
    h.mkdir("/after");
    h.run(Entry::delete("/before", false));
    let mut out = Vec::new();
    frozen.write_to(&mut out).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out, bytes_then);
    let r = restored(&out).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.canonical_dump(), dump_then);
}

#[test]
fn a_hundred_thousand_inodes_round_trip() {
    let mut h = Harness::new();
    let start = Instant::now();
    // 100 directories × 999 files + the directories + the root = 100,001.
    for d in 0..100 {
        h.mkdir(&format!("/dir{d:03}"));
        for f in 0..999 {
            h.touch(&format!("/dir{d:03}/file-{f:04}"));
        }
    }
    let built = start.elapsed();
    let inodes = h.machine.store().counts().inodes;
    assert!(inodes >= 100_000);
    let start = Instant::now();
    let bytes = snapshot_bytes(&h.machine);
    let written = start.elapsed();
    let start = Instant::now();
    let r = restored(&bytes).unwrap_or_else(|e| panic!("restore: {e}"));
    let read = start.elapsed();
    assert_eq!(r.canonical_dump(), h.machine.canonical_dump());
    eprintln!(
        "meta snapshot: {inodes} inodes, {} bytes ({:.1} B/inode); build {built:?}, write {written:?}, restore {read:?} (debug build)",
        bytes.len(),
        bytes.len() as f64 / inodes as f64
    );
}

#[test]
fn the_journals_snapshot_stream_carries_a_frozen_state_written_on_another_thread() {
    use journal_core::snapshot::{restore_snapshot, write_frozen_snapshot, SnapshotMeta};
    let mut h = Harness::new();
    for d in 0..20 {
        h.mkdir(&format!("/d{d}"));
        for f in 0..50 {
            h.touch(&format!("/d{d}/f{f}"));
        }
    }
    let dump_then = h.machine.canonical_dump();
    let frozen = h
        .machine
        .freeze()
        .unwrap_or_else(|| panic!("freeze is supported"));
    let meta = SnapshotMeta {
        cluster_id: "test".into(),
        next_seq: 42,
        epoch: 3,
    };
    // Small frames, so the state spans many of the journal's frames.
    let writer = std::thread::spawn(move || {
        let mut out = Vec::new();
        write_frozen_snapshot(frozen.as_ref(), &meta, &mut out, 4096).map(|_| out)
    });
    // Apply goes on meanwhile.
    h.run(Entry::delete("/d0", true));
    h.mkdir("/later");
    let stream = match writer.join() {
        Ok(Ok(out)) => out,
        other => panic!("writer: {other:?}"),
    };
    let mut r = MetaMachine::default();
    let got = restore_snapshot(&mut r, &mut &stream[..], "test stream")
        .unwrap_or_else(|e| panic!("restore_snapshot: {e}"));
    assert_eq!(got.next_seq, 42);
    assert_eq!(r.canonical_dump(), dump_then);
    assert_ne!(h.machine.canonical_dump(), dump_then);
}
