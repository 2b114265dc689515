//! The short fuzz pass CI runs: every target over its committed seeds and
//! regression inputs, over proptest mutations of the seeds, and over random
//! bytes. Bounded by case counts (no clock): about a minute in all.
//!
//! A failure prints the input as hex; add it under `regressions/<target>/`
//! with the fix so it stays covered.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

fn dir(kind: &str, target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(kind)
        .join(target)
}

fn inputs(kind: &str, target: &str) -> Vec<(String, Vec<u8>)> {
    let Ok(read) = std::fs::read_dir(dir(kind, target)) else {
        return Vec::new();
    };
    let mut out: Vec<(String, Vec<u8>)> = read
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| {
            let bytes = std::fs::read(e.path()).expect("a readable corpus file");
            (e.file_name().to_string_lossy().into_owned(), bytes)
        })
        .collect();
    out.sort();
    out
}

/// One edit of a seed.
#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Set(usize, u8),
    Truncate(usize),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
    Duplicate(usize, usize),
    /// Overwrites 4 bytes with an interesting little-endian number.
    Number(usize, u32),
}

fn edit() -> impl Strategy<Value = Edit> {
    let at = any::<usize>();
    prop_oneof![
        (at, 0u8..8).prop_map(|(a, b)| Edit::Flip(a, b)),
        (at, any::<u8>()).prop_map(|(a, b)| Edit::Set(a, b)),
        at.prop_map(Edit::Truncate),
        (at, proptest::collection::vec(any::<u8>(), 1..16)).prop_map(|(a, v)| Edit::Insert(a, v)),
        (at, 1usize..32).prop_map(|(a, n)| Edit::Remove(a, n)),
        (at, 1usize..64).prop_map(|(a, n)| Edit::Duplicate(a, n)),
        (
            at,
            prop_oneof![
                Just(0u32),
                Just(1),
                Just(0x7f),
                Just(0xff),
                Just(0xffff),
                Just(u32::MAX),
                Just(u32::MAX / 2 + 1),
                Just(64 << 20),
                Just((64 << 20) + 1),
                any::<u32>()
            ]
        )
            .prop_map(|(a, n)| Edit::Number(a, n)),
    ]
}

fn apply(seed: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for e in edits {
        let pos = |a: usize, len: usize| if len == 0 { 0 } else { a % len };
        match e {
            Edit::Flip(a, bit) if !v.is_empty() => {
                let i = pos(*a, v.len());
                v[i] ^= 1 << bit;
            }
            Edit::Set(a, b) if !v.is_empty() => {
                let i = pos(*a, v.len());
                v[i] = *b;
            }
            Edit::Truncate(a) => v.truncate(pos(*a, v.len() + 1)),
            Edit::Insert(a, bytes) => {
                let i = pos(*a, v.len() + 1);
                v.splice(i..i, bytes.iter().copied());
            }
            Edit::Remove(a, n) if !v.is_empty() => {
                let i = pos(*a, v.len());
                let end = (i + n).min(v.len());
                v.drain(i..end);
            }
            Edit::Duplicate(a, n) if !v.is_empty() => {
                let i = pos(*a, v.len());
                let end = (i + n).min(v.len());
                let copy = v[i..end].to_vec();
                v.splice(end..end, copy);
            }
            Edit::Number(a, n) if v.len() >= 4 => {
                let i = pos(*a, v.len() - 3);
                v[i..i + 4].copy_from_slice(&n.to_le_bytes());
            }
            _ => {}
        }
    }
    v
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs `name` over its seeds and regressions, `mutated` edited seeds and
/// `random` random inputs.
fn pass(name: &str, mutated: u32, random: u32) {
    let target = primacy_fuzz::target(name).expect("a registered target");
    let seeds = inputs("corpus", name);
    assert!(
        !seeds.is_empty(),
        "no seed corpus in {}",
        dir("corpus", name).display()
    );
    for (kind, list) in [
        ("corpus", &seeds),
        ("regressions", &inputs("regressions", name)),
    ] {
        for (file, bytes) in list.iter() {
            let outcome = std::panic::catch_unwind(|| (target.run)(bytes));
            assert!(outcome.is_ok(), "{name}: {kind}/{file} failed");
        }
    }
    let config = |cases| Config {
        cases,
        failure_persistence: None,
        // Fixed seed: CI runs the same inputs every time; AFL explores.
        rng_algorithm: proptest::test_runner::RngAlgorithm::ChaCha,
        ..Config::default()
    };
    let seed_count = seeds.len();
    let mut runner = TestRunner::new_with_rng(
        config(mutated),
        proptest::test_runner::TestRng::from_seed(
            proptest::test_runner::RngAlgorithm::ChaCha,
            &[7; 32],
        ),
    );
    let strategy = (0..seed_count, proptest::collection::vec(edit(), 1..6));
    let result = runner.run(&strategy, |(i, edits)| {
        let data = apply(&seeds[i].1, &edits);
        let outcome = std::panic::catch_unwind(|| (target.run)(&data));
        prop_assert!(outcome.is_ok(), "{name}: failed on {}", hex(&data));
        Ok(())
    });
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
    let mut runner = TestRunner::new_with_rng(
        config(random),
        proptest::test_runner::TestRng::from_seed(
            proptest::test_runner::RngAlgorithm::ChaCha,
            &[11; 32],
        ),
    );
    let result = runner.run(&proptest::collection::vec(any::<u8>(), 0..512), |data| {
        let outcome = std::panic::catch_unwind(|| (target.run)(&data));
        prop_assert!(outcome.is_ok(), "{name}: failed on {}", hex(&data));
        Ok(())
    });
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
}

#[test]
fn every_target_has_seeds_and_a_test() {
    let tested = [
        "frame",
        "ufs_chunk",
        "ufs_format",
        "snapshot_stream",
        "meta_restore",
        "meta_apply",
        "rpc_request",
        "raft_peer",
        "raft_format",
        "raft_storage",
        "properties",
    ];
    for t in primacy_fuzz::TARGETS {
        assert!(tested.contains(&t.name), "{} has no test below", t.name);
        assert!(
            !inputs("corpus", t.name).is_empty(),
            "{} has no seeds",
            t.name
        );
    }
}

/// The seeds are what the writers produce: each decodes on the happy path
/// of its target (so mutations start from valid objects, not from noise).
#[test]
fn seeds_are_valid_objects() {
    use journal_core::StateMachine;
    use primacy_fuzz::targets::{raft_peer, ufs_chunk};
    for (f, b) in inputs("corpus", "ufs_chunk") {
        journal_ufs::chunk::decode_chunk(&b, ufs_chunk::FIRST_SEQ, ufs_chunk::CLUSTER)
            .unwrap_or_else(|e| panic!("{f}: {e:?}"));
    }
    for (f, b) in inputs("corpus", "ufs_format") {
        journal_ufs::format::parse_format(&b, "f", "n").unwrap_or_else(|e| panic!("{f}: {e}"));
    }
    for (f, b) in inputs("corpus", "raft_format") {
        journal_raft::format::parse_marker(&b, Path::new("/d"))
            .unwrap_or_else(|e| panic!("{f}: {e}"));
    }
    for (f, b) in inputs("corpus", "snapshot_stream") {
        let mut m = master::meta::MetaMachine::default();
        journal_core::snapshot::restore_snapshot(&mut m, &mut b.as_slice(), "s")
            .unwrap_or_else(|e| panic!("{f}: {e}"));
    }
    for (f, b) in inputs("corpus", "meta_restore") {
        let mut m = master::meta::MetaMachine::default();
        m.restore(&mut b.as_slice())
            .unwrap_or_else(|e| panic!("{f}: {e}"));
    }
    for (f, b) in inputs("corpus", "properties") {
        master::config::properties::parse(&String::from_utf8_lossy(&b))
            .unwrap_or_else(|e| panic!("{f}: {e:?}"));
    }
    for (f, b) in inputs("corpus", "raft_peer") {
        assert!(raft_peer::feed(&b) > 0, "{f}: no message reached raft-rs");
    }
    let walk = journal_raft::storage::walk_log_file(
        &inputs("corpus", "raft_storage")
            .into_iter()
            .find(|(f, _)| f == "log-file")
            .expect("a log-file seed")
            .1,
    );
    assert!(
        !walk.batches.is_empty() && walk.torn_at.is_none() && walk.zero_tail,
        "{walk:?}"
    );
}

#[test]
fn frame() {
    pass("frame", 2000, 500);
}

#[test]
fn ufs_chunk() {
    pass("ufs_chunk", 2000, 500);
}

#[test]
fn ufs_format() {
    pass("ufs_format", 2000, 500);
}

#[test]
fn snapshot_stream() {
    pass("snapshot_stream", 1000, 300);
}

#[test]
fn meta_restore() {
    pass("meta_restore", 1000, 300);
}

#[test]
fn meta_apply() {
    pass("meta_apply", 1000, 300);
}

#[test]
fn rpc_request() {
    pass("rpc_request", 1000, 300);
}

#[test]
fn raft_peer() {
    pass("raft_peer", 1000, 300);
}

#[test]
fn raft_format() {
    pass("raft_format", 2000, 500);
}

#[test]
fn raft_storage() {
    pass("raft_storage", 1000, 300);
}

#[test]
fn properties() {
    pass("properties", 2000, 500);
}
