//! The two-primaries test, on any storage: two `UfsJournal`s on one folder
//! that both believe they are primary, proposing thousands of entries
//! concurrently, over several rounds of re-election. The file-naming
//! exclusion must keep the log linear.
#![allow(clippy::needless_range_loop)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::{Storage, CLUSTER};
use bytes::Bytes;
use journal_core::proto::journal_record::Kind;
use journal_core::testkit::{ManualElection, TestMachine};
use journal_core::{shared, ElectionState, JournalError, JournalSystem, LeaderElection};
use journal_ufs::inspect::read_opened;
use journal_ufs::{format, UfsJournal};

const IN_FLIGHT: usize = 64;

/// Proposes `PER_MASTER` entries tagged `tag`, `IN_FLIGHT` at a time, while
/// the test flips elections. Returns each entry with its outcome.
async fn proposer(
    journal: Arc<UfsJournal>,
    other: Arc<UfsJournal>,
    tag: &'static str,
    per_master: usize,
    wave_pause: Duration,
) -> Vec<(Bytes, Result<Bytes, String>)> {
    let mut results = Vec::with_capacity(per_master);
    let mut next = 0;
    let mut role = journal.role();
    while next < per_master {
        // Propose only while this master believes it is primary, so both
        // keep fighting for the log; the flipper re-elects a fenced master.
        let _ =
            tokio::time::timeout(Duration::from_secs(2), role.wait_for(|r| r.is_primary())).await;
        let wave: Vec<_> = (next..(next + IN_FLIGHT).min(per_master))
            .map(|i| {
                let j = journal.clone();
                let e = Bytes::from(format!("{tag}-{i}"));
                async move {
                    let r = j.propose(e.clone()).await;
                    (e, r)
                }
            })
            .collect();
        next += wave.len();
        for (e, r) in futures::future::join_all(wave).await {
            let r = match r {
                Ok(out) => Ok(out),
                Err(err @ (JournalError::Fenced { .. } | JournalError::NotPrimary { .. })) => {
                    Err(err.to_string())
                }
                Err(other) => panic!("{tag}: unexpected error {other}"),
            };
            results.push((e, r));
        }
        // Give the other master's proposals a chance to interleave.
        tokio::task::yield_now().await;
        if !wave_pause.is_zero() {
            // On a slow store, let the other master reach the end of the
            // log (bounded), then pause so it can prove the end and claim.
            let mine = journal.status().last_applied;
            let waited = std::time::Instant::now();
            while other.status().last_applied < mine && waited.elapsed() < Duration::from_secs(2) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            tokio::time::sleep(wave_pause).await;
        }
    }
    results
}

/// Runs the fight on `storage` with `per_master` proposals each and checks
/// the log: linear, every acknowledged entry exactly once at its
/// acknowledged position under the claim before it, no refused entry in it.
/// With a nonzero `wave_pause`, a master waits after each wave (up to 2 s)
/// until the other one has read the log up to its position, then pauses
/// `wave_pause`, so the other can claim the log while it still writes
/// (without it, on a store as slow to read as to write, one master can
/// finish its waves before the other ever reaches the end of the log).
pub async fn never_fork(storage: &Storage, per_master: usize, wave_pause: Duration) {
    format(&storage.folder(true).unwrap(), CLUSTER)
        .await
        .unwrap();

    let elections = [
        Arc::new(ManualElection::new()),
        Arc::new(ManualElection::new()),
    ];
    let machines = [shared(TestMachine::new()), shared(TestMachine::new())];
    let mut journals = Vec::new();
    for m in 0..2 {
        journals.push(
            UfsJournal::open(storage.config(m), elections[m].clone(), machines[m].clone())
                .await
                .unwrap(),
        );
    }
    // Both are told they lead, with different epochs, at the same moment.
    elections[0].set(ElectionState::Leader { epoch: 1 });
    elections[1].set(ElectionState::Leader { epoch: 2 });

    let a = tokio::spawn(proposer(
        journals[0].clone(),
        journals[1].clone(),
        "a",
        per_master,
        wave_pause,
    ));
    let b = tokio::spawn(proposer(
        journals[1].clone(),
        journals[0].clone(),
        "b",
        per_master,
        wave_pause,
    ));

    // Whoever gets fenced resigns; keep re-electing it so the fight goes on.
    let flipper = {
        let elections = elections.clone();
        tokio::spawn(async move {
            let mut epoch = 3;
            // Until the proposers are done (then aborted).
            loop {
                tokio::time::sleep(Duration::from_millis(15)).await;
                for e in &elections {
                    if e.watch().borrow().leader_epoch().is_none() {
                        e.set(ElectionState::Leader { epoch });
                        epoch += 1;
                    }
                }
            }
        })
    };
    let results_a = a.await.unwrap();
    let results_b = b.await.unwrap();
    flipper.abort();
    let fenced = elections[0].resignations() + elections[1].resignations();
    for j in &journals {
        j.shutdown().await;
    }

    // A fresh replay of the folder: it verifies every chunk, consecutive
    // sequence numbers and never-decreasing epochs.
    let contents = read_opened(&storage.folder(false).unwrap())
        .await
        .expect("the log replays cleanly");
    let mut position: HashMap<Bytes, Vec<(u64, u64)>> = HashMap::new();
    let mut claims = Vec::new();
    let mut last_epoch = 0;
    let mut expected_seq = 1;
    for chunk in &contents.chunks {
        assert_eq!(
            chunk.header.first_seq, expected_seq,
            "gap or overlap in the log"
        );
        assert!(chunk.header.epoch >= last_epoch, "epoch went backwards");
        last_epoch = chunk.header.epoch;
        expected_seq = chunk.end();
        for r in &chunk.records {
            match &r.kind {
                Some(Kind::Entry(e)) => position
                    .entry(e.clone())
                    .or_default()
                    .push((r.seq, r.epoch)),
                Some(Kind::Primacy(p)) => claims.push((r.seq, p.epoch, p.address.clone())),
                None => panic!("record without kind"),
            }
        }
    }
    let acked =
        |rs: &[(Bytes, Result<Bytes, String>)]| rs.iter().filter(|(_, r)| r.is_ok()).count();
    println!(
        "two primaries: a acked {}, b acked {}, {} claims, {} fencings, {} chunks for {} records",
        acked(&results_a),
        acked(&results_b),
        claims.len(),
        fenced,
        contents.chunks.len(),
        expected_seq - 1
    );
    assert!(
        fenced >= 1,
        "nobody was fenced: the test did not create two primaries"
    );
    assert!(claims.len() >= 2);

    for (tag, results) in [("a", &results_a), ("b", &results_b)] {
        for (entry, outcome) in results.iter() {
            let found = position.get(entry).cloned().unwrap_or_default();
            match outcome {
                Ok(out) => {
                    assert_eq!(
                        found.len(),
                        1,
                        "{tag}: acknowledged {entry:?} appears {} times",
                        found.len()
                    );
                    let seq = TestMachine::output_seq(out).unwrap();
                    assert_eq!(
                        found[0].0, seq,
                        "{tag}: {entry:?} acknowledged at another position"
                    );
                    // The entry's epoch is the claim that preceded it: no
                    // entry of an older primary follows a newer claim.
                    let claim = claims.iter().rev().find(|(s, _, _)| *s < seq).unwrap();
                    assert_eq!(
                        found[0].1, claim.1,
                        "{tag}: {entry:?} written under a superseded claim"
                    );
                }
                Err(_) => assert!(found.is_empty(), "{tag}: refused {entry:?} reached the log"),
            }
        }
    }
    // Every entry in the log was acknowledged to its proposer: a refused
    // write never lands (no store here loses an answer).
    let total_acked = acked(&results_a) + acked(&results_b);
    assert_eq!(position.len(), total_acked);
}
