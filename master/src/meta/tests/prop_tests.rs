//! Random op sequences: determinism, snapshot equivalence, freeze exactness.
//!
//! Paths come from a tiny name space (a, b, c; depth ≤ 3) so operations
//! collide often; clients, request seqs and times are drawn so duplicates,
//! stale requests, expiry (retention 300 ms) and eviction (2 sessions) all
//! happen; some entries are garbage bytes or invalid paths.

use journal_core::StateMachine;
use proptest::prelude::*;

use crate::meta::{encode_entry, Entry, MetaConfig, MetaMachine, Op};

fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        9 => prop::collection::vec(prop::sample::select(vec!["a", "b", "c"]), 1..=3)
            .prop_map(|c| format!("/{}", c.join("/"))),
        1 => Just("/".to_string()),
        1 => prop::sample::select(vec!["", "a", "/a/", "/a//b", "/.", "/a\0"])
            .prop_map(str::to_string),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (path(), any::<bool>()).prop_map(|(p, r)| Entry::mkdir(p, r)),
        path().prop_map(Entry::create_file),
        (path(), prop::collection::vec((0u64..4, 0u64..100), 0..3))
            .prop_map(|(p, b)| Entry::complete_file(p, &b)),
        (path(), any::<bool>()).prop_map(|(p, r)| Entry::delete(p, r)),
        (path(), path()).prop_map(|(s, d)| Entry::rename(s, d)),
    ]
}

/// One step of a history: a client's request, or bytes that are no entry.
#[derive(Debug, Clone)]
enum Step {
    /// `dt` moves the primary's clock: forward by `dt`, or back by
    /// `dt * 10` for `dt < 40` (a new primary behind in time).
    Request {
        client: u8,
        seq: u64,
        dt: u64,
        op: Op,
    },
    Garbage(Vec<u8>),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        12 => (0u8..4, 1u64..6, 0u64..400, op())
            .prop_map(|(client, seq, dt, op)| Step::Request { client, seq, dt, op }),
        1 => prop::collection::vec(any::<u8>(), 0..24).prop_map(Step::Garbage),
    ]
}

/// The journal entries of a history.
fn entries(steps: &[Step]) -> Vec<Vec<u8>> {
    let mut clock = 10_000u64;
    steps
        .iter()
        .map(|s| match s {
            Step::Garbage(g) => g.clone(),
            Step::Request {
                client,
                seq,
                dt,
                op,
            } => {
                let time = if *dt < 40 {
                    clock - dt * 10
                } else {
                    clock + dt
                };
                clock = clock.max(time);
                encode_entry(&[*client], *seq, time, op.clone()).to_vec()
            }
        })
        .collect()
}

fn config() -> MetaConfig {
    MetaConfig {
        session_retention_ms: 300,
        max_sessions: 2,
    }
}

fn snapshot(m: &MetaMachine) -> Vec<u8> {
    let mut out = Vec::new();
    m.snapshot(&mut out)
        .unwrap_or_else(|e| panic!("snapshot: {e}"));
    out
}

fn restore(bytes: &[u8]) -> MetaMachine {
    let mut m = MetaMachine::new(config());
    m.restore(&mut &bytes[..])
        .unwrap_or_else(|e| panic!("restore: {e}"));
    m
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn replicas_agree_and_snapshots_and_freezes_are_exact(
        steps in prop::collection::vec(step(), 1..80),
        cut in any::<prop::sample::Index>(),
    ) {
        let entries = entries(&steps);
        let cut = cut.index(entries.len());
        let mut one = MetaMachine::new(config());
        let mut two = MetaMachine::new(config());
        let mut frozen = None;
        for (i, e) in entries.iter().enumerate() {
            if i == cut {
                let f = one.freeze().unwrap_or_else(|| panic!("freeze is supported"));
                frozen = Some((f, one.canonical_dump()));
            }
            let seq = i as u64 + 1;
            prop_assert_eq!(one.apply(seq, e), two.apply(seq, e), "output of entry {}", i);
        }
        let dump = one.canonical_dump();
        prop_assert_eq!(&dump, &two.canonical_dump());
        // Restore verifies every invariant of the tree, so this also checks
        // that no sequence of operations breaks one.
        let bytes = snapshot(&one);
        prop_assert_eq!(restore(&bytes).canonical_dump(), dump);
        let Some((frozen, dump_then)) = frozen else {
            panic!("the cut lies inside the sequence");
        };
        let mut out = Vec::new();
        frozen.write_to(&mut out).unwrap_or_else(|e| panic!("write_to: {e}"));
        prop_assert_eq!(restore(&out).canonical_dump(), dump_then);
    }
}

/// The histories above are not vacuous: over 200 generated ones, every op
/// succeeds sometimes and every refusal the generator can reach happens.
#[test]
fn generated_histories_reach_every_outcome() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    use std::collections::BTreeMap;

    let mut runner = TestRunner::deterministic();
    let mut tally: BTreeMap<String, u64> = BTreeMap::new();
    let strategy = prop::collection::vec(step(), 1..80);
    for _ in 0..200 {
        let Ok(tree) = strategy.new_tree(&mut runner) else {
            panic!("strategy failed");
        };
        let steps = tree.current();
        let mut m = MetaMachine::new(config());
        for (s, e) in steps.iter().zip(entries(&steps)) {
            let kind = match s {
                Step::Garbage(_) => "garbage".to_string(),
                Step::Request { op, .. } => format!("{op:?}")
                    .split('(')
                    .next()
                    .unwrap_or("")
                    .to_string(),
            };
            let result = m.apply_entry(&e);
            let code = result.code().map_or("ok".to_string(), |c| format!("{c:?}"));
            *tally.entry(format!("{kind} {code}")).or_default() += 1;
        }
    }
    eprintln!("meta property histories, outcomes: {tally:?}");
    for must in [
        "Mkdir ok",
        "CreateFile ok",
        "CompleteFile ok",
        "Delete ok",
        "Rename ok",
        "Mkdir AlreadyExists",
        "CreateFile NotFound",
        "CreateFile NotADirectory",
        "CompleteFile FileAlreadyCompleted",
        "CompleteFile IsADirectory",
        "Delete DirectoryNotEmpty",
        "Delete InvalidArgument",
        "Rename InvalidArgument",
        "Rename AlreadyExists",
        "Mkdir InvalidPath",
        "Mkdir StaleRequest",
        "garbage MalformedEntry",
    ] {
        assert!(
            tally.contains_key(must),
            "no history reached {must}: {tally:?}"
        );
    }
}
