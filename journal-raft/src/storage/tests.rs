//! The in-memory term index and tail cache against raft-engine itself: a
//! seeded random run of appends, conflicting overwrites, compactions,
//! snapshot installs, handle swaps and reopenings, comparing after every
//! step the answer raft-rs gets with the one read back from the engine.

use raft::Storage as _;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

fn peers() -> Peers {
    let mut p = Peers::new();
    p.insert(1, Peer::at("127.0.0.1:1"));
    p
}

fn entry(index: u64, term: u64, rng: &mut StdRng) -> Entry {
    let len = rng.random_range(0..300);
    Entry {
        index,
        term,
        data: (0..len)
            .map(|_| rng.random::<u8>())
            .collect::<Vec<u8>>()
            .into(),
        ..Default::default()
    }
}

fn ctx() -> GetEntriesContext {
    GetEntriesContext::empty(false)
}

/// Every index from 0 to past the end, and random ranges with random
/// bounds: the fast answers equal the engine's.
fn check(s: &RaftStorage, rng: &mut StdRng, step: usize, seed: u64) {
    let first = s.first();
    let last = s.last();
    let lo = first.saturating_sub(3);
    for idx in lo..=last + 3 {
        let fast = s.term(idx).map_err(|e| e.to_string());
        let slow = if idx == s.snapshot.index {
            Ok(s.snapshot.term)
        } else {
            s.term_from_engine(idx).map_err(|e| e.to_string())
        };
        assert_eq!(fast, slow, "seed {seed} step {step}: term({idx})");
    }
    for _ in 0..20 {
        let low = rng.random_range(lo..=last + 2);
        let high = rng.random_range(low..=last + 3);
        let max = match rng.random_range(0..3) {
            0 => None,
            _ => Some(rng.random_range(0..2000u64)),
        };
        let fast = s.entries(low, high, max, ctx()).map_err(|e| e.to_string());
        let slow = if low < first {
            Err(raft::Error::Store(StorageError::Compacted).to_string())
        } else if high > last + 1 {
            Err(unavailable().to_string())
        } else {
            s.entries_from_engine(low, high, max.map(|m| m as usize), Vec::new())
                .map_err(|e| e.to_string())
        };
        assert_eq!(
            fast, slow,
            "seed {seed} step {step}: entries({low}, {high}, {max:?})"
        );
    }
    // The index covers exactly what the engine holds.
    assert_eq!(
        (s.terms.first(), s.terms.last()),
        (s.engine.first_index(GROUP), s.engine.last_index(GROUP)),
        "seed {seed} step {step}: term index bounds"
    );
}

fn run(seed: u64, steps: usize) {
    println!("storage cache attacker: seed {seed}");
    let dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(seed);
    let cache = rng.random_range(0..4096usize);
    let mut s = RaftStorage::open(dir.path(), Some(&peers())).unwrap();
    s.set_log_cache_bytes(cache);
    let mut term = 1u64;
    for step in 0..steps {
        let first = s.first();
        let last = s.last();
        match rng.random_range(0..100) {
            // Appends at the end (the leader's and a caught-up follower's).
            0..=54 => {
                let n = rng.random_range(1..40);
                let batch: Vec<Entry> = (0..n)
                    .map(|i| entry(last + 1 + i, term, &mut rng))
                    .collect();
                s.persist(&batch, None, rng.random_bool(0.3)).unwrap();
            }
            // A follower's conflicting overwrite from a random index past
            // the snapshot, with a newer term.
            55..=69 => {
                term += rng.random_range(0..3);
                let from = rng.random_range(s.snapshot.index + 1..=last + 1);
                let n = rng.random_range(1..20);
                let batch: Vec<Entry> = (0..n).map(|i| entry(from + i, term, &mut rng)).collect();
                s.persist(&batch, None, false).unwrap();
            }
            // A new term (an election) without entries.
            70..=74 => term += 1,
            // A snapshot taken locally, compacting to a random point at or
            // below it.
            75..=84 if last >= first && last > s.snapshot.index => {
                let index = rng.random_range(first.max(s.snapshot.index + 1)..=last);
                let meta = SnapshotMetadata {
                    index,
                    term: s.term(index).unwrap(),
                    conf_state: Some(s.conf_state.clone()).into(),
                    ..Default::default()
                };
                let compact_to = rng.random_range(first..=index + 1);
                s.mark_snapshot(meta, compact_to).unwrap();
            }
            // A snapshot from the leader, past (or inside) the log.
            85..=89 => {
                term += 1;
                let index = rng.random_range(last.saturating_sub(5)..last + 30).max(1);
                let meta = SnapshotMetadata {
                    index,
                    term,
                    conf_state: Some(s.conf_state.clone()).into(),
                    ..Default::default()
                };
                let hs = HardState {
                    term,
                    commit: index,
                    ..Default::default()
                };
                s.install_snapshot(meta, peers(), &hs).unwrap();
            }
            // The handle swap after a raft-rs panic.
            90..=94 => s = s.reopen(),
            // A restart.
            _ => {
                drop(s);
                s = RaftStorage::open(dir.path(), None).unwrap();
                s.set_log_cache_bytes(cache);
            }
        }
        check(&s, &mut rng, step, seed);
    }
}

#[test]
fn term_index_and_tail_cache_agree_with_the_engine() {
    let base: u64 = std::env::var("PRIMACY_STORAGE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    for i in 0..6 {
        run(base.wrapping_add(i), 150);
    }
}

#[test]
fn runs_stay_few_when_terms_change_rarely() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(7);
    let mut s = RaftStorage::open(dir.path(), Some(&peers())).unwrap();
    for t in 1..=3u64 {
        let last = s.last();
        let batch: Vec<Entry> = (1..=1000).map(|i| entry(last + i, t, &mut rng)).collect();
        s.persist(&batch, None, false).unwrap();
    }
    assert_eq!(s.terms.runs(), 3);
    drop(s);
    let s = RaftStorage::open(dir.path(), None).unwrap();
    assert_eq!(s.terms.runs(), 3);
    assert_eq!(s.term(1500).unwrap(), 2);
}
