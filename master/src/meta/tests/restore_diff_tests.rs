//! The fast restore against the reference one (`restore_reference.rs`):
//! random states, snapshotted, then their records tampered with in ways
//! that keep every frame's CRC valid (rows moved, duplicated, dropped,
//! re-pointed, counts "repaired" so deeper checks are reached). Both
//! restores must agree: both refuse with the same message, or both accept
//! the same state. The seed of each case is printed so a failure replays.

use super::restore_reference;
use super::restore_tests::{snapshot_records, stream};
use super::Harness;
use crate::meta::proto::{snapshot_record::Record, EdgeRecord};
use crate::meta::restore;
use crate::meta::snapshot::dump;
use crate::meta::{Entry, MemStore, MetaStore};

/// splitmix64: small, seedable, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const NAMES: [&str; 4] = ["a", "b", "c", "dd"];

fn random_path(rng: &mut Rng) -> String {
    let depth = 1 + rng.below(4);
    (0..depth)
        .map(|_| format!("/{}", NAMES[rng.below(NAMES.len())]))
        .collect()
}

/// The records of a random state built by real operations.
fn random_records(rng: &mut Rng) -> Vec<Record> {
    let mut h = Harness::new();
    for _ in 0..(20 + rng.below(60)) {
        let p = random_path(rng);
        let op = match rng.below(6) {
            0 | 1 => Entry::mkdir(p, true),
            2 => Entry::create_file(p),
            3 => Entry::complete_file(p, &[(rng.next() % 5, rng.next() % 50), (9, 1)]),
            4 => Entry::rename(p, random_path(rng)),
            _ => Entry::delete(p, rng.below(2) == 0),
        };
        let _ = h.run(op);
    }
    snapshot_records(&h)
}

fn edges_of(recs: &mut [Record]) -> Option<&mut Vec<EdgeRecord>> {
    recs.iter_mut().find_map(|r| match r {
        Record::Edges(b) => Some(&mut b.edges),
        _ => None,
    })
}

fn sort_edges(e: &mut [EdgeRecord]) {
    e.sort_by(|a, b| (a.parent, &a.name).cmp(&(b.parent, &b.name)));
}

/// One random tampering; returns what it did, for the failure message.
fn tamper(recs: &mut Vec<Record>, rng: &mut Rng) -> String {
    let ids: Vec<u64> = recs
        .iter()
        .flat_map(|r| match r {
            Record::Inodes(b) => b.inodes.iter().map(|i| i.id).collect(),
            _ => Vec::new(),
        })
        .collect();
    let any_id = |rng: &mut Rng| match rng.below(8) {
        0 => rng.next() % 200,
        _ => ids[rng.below(ids.len())],
    };
    let what = rng.below(12);
    match what {
        // Re-point an edge's child (two parents, cycles, missing inodes).
        0 | 1 => {
            let child = any_id(rng);
            if let Some(e) = edges_of(recs).filter(|e| !e.is_empty()) {
                let at = rng.below(e.len());
                e[at].child = child;
            }
        }
        // Move an edge under another parent, kept in order.
        2 | 3 => {
            let parent = any_id(rng);
            if let Some(e) = edges_of(recs).filter(|e| !e.is_empty()) {
                let at = rng.below(e.len());
                e[at].parent = parent;
                if rng.below(4) != 0 {
                    sort_edges(e);
                }
            }
        }
        // Swap two edges (order), duplicate or drop one.
        4 => {
            if let Some(e) = edges_of(recs).filter(|e| e.len() > 1) {
                let at = rng.below(e.len() - 1);
                match rng.below(3) {
                    0 => e.swap(at, at + 1),
                    1 => {
                        let copy = e[at].clone();
                        e.insert(at, copy);
                    }
                    _ => {
                        e.remove(at);
                    }
                }
            }
        }
        // Rename an edge (bad names, clashes).
        5 => {
            let name = ["", "..", "a/b", "a", "b", "zz"][rng.below(6)].to_string();
            if let Some(e) = edges_of(recs).filter(|e| !e.is_empty()) {
                let at = rng.below(e.len());
                e[at].name = name;
                sort_edges(e);
            }
        }
        // Inode rows: change a size, a kind, an id; drop or add one.
        6 | 7 => {
            let extra = any_id(rng);
            if let Some(b) = recs.iter_mut().find_map(|r| match r {
                Record::Inodes(b) => Some(&mut b.inodes),
                _ => None,
            }) {
                let at = rng.below(b.len());
                match rng.below(6) {
                    0 => b[at].size = b[at].size.wrapping_add(1),
                    1 => b[at].size = b[at].size.wrapping_sub(1),
                    2 => b[at].is_directory = !b[at].is_directory,
                    3 => b[at].completed = !b[at].completed,
                    4 => {
                        b.remove(at);
                    }
                    _ => {
                        let mut row = b[at];
                        row.id = extra;
                        b.push(row);
                        b.sort_by_key(|i| i.id);
                    }
                }
            }
        }
        // Block rows.
        8 => {
            if let Some(f) = recs.iter_mut().find_map(|r| match r {
                Record::Blocks(b) if !b.files.is_empty() => Some(&mut b.files),
                _ => None,
            }) {
                let at = rng.below(f.len());
                match rng.below(3) {
                    0 => f[at].blocks[0].length += 1,
                    1 => f[at].file_id = f[at].file_id.wrapping_add(1),
                    _ => {
                        f.remove(at);
                    }
                }
            }
        }
        // Two tamperings at once.
        _ => {
            let a = tamper(recs, rng);
            let b = tamper(recs, rng);
            return format!("{a} + {b}");
        }
    }
    // Mostly repair the counts so the deeper checks are reached.
    if rng.below(4) != 0 {
        repair_counts(recs);
    }
    format!("tampering {what}")
}

/// Makes the header's counts and each directory's child count agree with
/// the rows, so the walk and the one-parent checks decide.
fn repair_counts(recs: &mut [Record]) {
    let mut children = std::collections::BTreeMap::<u64, u64>::new();
    let (mut inodes, mut edges, mut files) = (0, 0, 0);
    for r in recs.iter() {
        match r {
            Record::Inodes(b) => inodes += b.inodes.len() as u64,
            Record::Edges(b) => {
                edges += b.edges.len() as u64;
                for e in &b.edges {
                    *children.entry(e.parent).or_default() += 1;
                }
            }
            Record::Blocks(b) => files += b.files.len() as u64,
            _ => {}
        }
    }
    for r in recs.iter_mut() {
        match r {
            Record::Header(h) => {
                h.inodes = inodes;
                h.edges = edges;
                h.block_files = files;
            }
            Record::Inodes(b) => {
                for i in &mut b.inodes {
                    if i.is_directory {
                        i.size = children.get(&i.id).copied().unwrap_or(0);
                    }
                }
            }
            _ => {}
        }
    }
}

fn both(bytes: &[u8]) -> (Result<String, String>, Result<String, String>) {
    let fast = restore::read(MemStore::default().empty(), &mut &bytes[..])
        .map(|(s, sessions, c)| dump(&s, &sessions, &c))
        .map_err(|e| e.to_string());
    let slow = restore_reference::read(MemStore::default().empty(), &mut &bytes[..])
        .map(|(s, sessions, c)| dump(&s, &sessions, &c))
        .map_err(|e| e.to_string());
    (fast, slow)
}

#[test]
fn fast_restore_agrees_with_the_reference_on_tampered_streams() {
    let base = std::env::var("PRIMACY_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(7, |d| d.as_nanos() as u64)
        });
    println!("seed {base} (PRIMACY_TEST_SEED={base} replays it)");
    let (mut accepted, mut refused) = (0, 0);
    for case in 0..400u64 {
        let seed = base.wrapping_add(case);
        let mut rng = Rng(seed);
        let mut recs = random_records(&mut rng);
        let intact = stream(&recs);
        let (fast, slow) = both(&intact);
        assert!(
            fast.is_ok(),
            "seed {seed}: an intact stream refused: {fast:?}"
        );
        assert_eq!(fast, slow, "seed {seed}: intact stream");
        let what = if case % 8 == 0 {
            "none".to_string()
        } else {
            tamper(&mut recs, &mut rng)
        };
        let (fast, slow) = both(&stream(&recs));
        assert_eq!(fast, slow, "seed {seed}: {what}");
        if fast.is_ok() {
            accepted += 1;
        } else {
            refused += 1;
        }
    }
    println!("{accepted} accepted, {refused} refused");
    assert!(refused > 100, "the tampering rarely broke anything");
}
