//! No quorum (two of three members down): the leader cannot commit, so the
//! proposals waiting for it stay within the configured bound, the excess is
//! refused at once with `Overloaded`, the rest fail once the leader steps
//! down, nothing is acknowledged, and when the members return the group
//! serves again with every entry acknowledged before kept.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{assert_acked_present, entry, init_tracing, Group};
use journal_core::testkit::wait_until;
use journal_core::{JournalError, JournalSystem, PendingLimits};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_quorum_waiting_proposals_stay_bounded_and_service_resumes() {
    init_tracing();
    const BOUND: usize = 8;
    const PROPOSERS: usize = 200;
    let mut group = Group::new(3);
    let config = |group: &Group, i: usize| {
        let mut cfg = group.config(i);
        // A long no-quorum window (check_quorum steps the leader down after
        // an election timeout), so the proposals below all meet a leader
        // that cannot commit, however slowly this machine runs.
        cfg.election_timeout_min = Duration::from_secs(3);
        cfg.election_timeout_max = Duration::from_secs(6);
        cfg.pending = PendingLimits {
            max_proposals: BOUND,
            max_bytes: 1 << 20,
        };
        cfg
    };
    for i in 0..3 {
        let cfg = config(&group, i);
        group.open_with(i, cfg).await;
    }
    let p = group.primary(WAIT).await;
    let mut acked = Vec::new();
    for i in 0..5 {
        let e = entry("before", i, 16);
        let out = group.m(p).journal.propose(e.clone()).await.unwrap();
        acked.push((e, out));
    }
    let others: Vec<usize> = (0..3).filter(|i| *i != p).collect();
    for &o in &others {
        group.close(o).await;
    }

    let journal = group.m(p).journal.clone();
    let mut tasks = Vec::new();
    for i in 0..PROPOSERS {
        let j = journal.clone();
        tasks.push(tokio::spawn(async move {
            j.propose(entry("noquorum", i, 16)).await
        }));
    }
    let mut overloaded = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(out) => panic!("acknowledged without a quorum: {out:?}"),
            Err(JournalError::Overloaded { .. }) => overloaded += 1,
            Err(e) => assert!(e.is_retryable(), "{e}"),
        }
    }
    assert!(
        journal.pending().peak() <= BOUND,
        "peak {} above the bound {BOUND}",
        journal.pending().peak()
    );
    assert!(
        overloaded >= PROPOSERS - BOUND,
        "only {overloaded} refused as overloaded"
    );
    wait_until("every slot to be freed", WAIT, || {
        journal.pending().pending() == 0
    })
    .await;
    wait_until("the leader without a quorum to step down", WAIT, || {
        !group.m(p).is_primary()
    })
    .await;
    // Refused at once now, and still no queue.
    let e = journal.propose(Bytes::from("late")).await.unwrap_err();
    assert!(e.is_retryable(), "{e}");

    for &o in &others {
        let cfg = config(&group, o);
        group.open_with(o, cfg).await;
    }
    let p2 = group.primary(WAIT).await;
    for i in 0..5 {
        let e = entry("after", i, 16);
        let out = group.m(p2).journal.propose(e.clone()).await.unwrap();
        acked.push((e, out));
    }
    let last = group.m(p2).journal.status().last_applied;
    for i in 0..3 {
        group.wait_applied(i, last, WAIT).await;
        assert_acked_present(&group.m(i).entries(), &acked, &format!("member {i}"));
    }
    group.close_all().await;
}
