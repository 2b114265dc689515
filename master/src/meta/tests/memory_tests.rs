//! Memory per inode, measured with the counting allocator (printed, not
//! asserted: the figure depends on the allocator and the crate versions).
//!
//! Run: `cargo test -p master --lib meta::tests::memory -- --nocapture`
//! (add `--ignored` for the 1,000,000-inode figure).

use std::time::Instant;

use super::alloc_count::live;
use crate::meta::{MetaMachine, StoreView, ROOT_ID};

/// Builds `files` files in directories of 1,000 (names like Alluxio's test
/// trees: `/dir0042/part-00017`) directly through apply, and prints the live
/// bytes per inode of the machine (tables + id counter; no sessions: the
/// harness's single client holds one row).
fn measure(files: u64) {
    let before = live();
    let mut m = MetaMachine::default();
    let start = Instant::now();
    let mut seq = 0;
    let client = [7u8; 16];
    let mut apply = |m: &mut MetaMachine, op| {
        seq += 1;
        let e = crate::meta::encode_entry(&client, seq, seq, op);
        journal_core::StateMachine::apply(m, seq, &e)
    };
    for i in 0..files {
        if i % 1000 == 0 {
            apply(
                &mut m,
                crate::meta::Entry::mkdir(format!("/dir{:04}", i / 1000), false),
            );
        }
        let path = format!("/dir{:04}/part-{:05}", i / 1000, i % 1000);
        apply(&mut m, crate::meta::Entry::create_file(path));
    }
    let took = start.elapsed();
    let after = live();
    let inodes = m.store().counts().inodes;
    assert!(m.store().inode(ROOT_ID).is_some());
    let per = |v: i64| v as f64 / inodes as f64;
    eprintln!(
        "meta memory: {inodes} inodes: {:.1} B/inode requested, {:.1} B/inode as glibc malloc chunks, \
         {:.2} allocations/inode; built in {took:?}",
        per(after.bytes - before.bytes),
        per(after.malloc_bytes - before.malloc_bytes),
        per(after.allocs - before.allocs),
    );
    drop(m);
}

#[test]
fn memory_per_inode_at_100k() {
    measure(100_000);
}

#[test]
#[ignore = "slow in debug builds; run with --ignored to print the 1M figure"]
fn memory_per_inode_at_1m() {
    measure(1_000_000);
}
