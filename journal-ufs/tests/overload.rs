//! Overload and long outages: while the folder is stuck or away, the
//! proposals waiting for it stay within the configured bound (the rest are
//! refused at once with `Overloaded`), the primary answers with clear
//! errors instead of hanging or spinning, and when the folder returns the
//! journal serves again by itself with every acknowledged entry kept.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::members::gated;
use common::{config, formatted, init_tracing, WAIT};
use journal_core::testkit::{wait_until, ManualElection, TestMachine};
use journal_core::{
    shared, wait_for_primary, ElectionState, JournalError, JournalSystem, PendingLimits,
};
use journal_ufs::{Folder, UfsJournal, UfsJournalConfig};
use parking_lot::RwLock;

struct Opened {
    journal: Arc<UfsJournal>,
    machine: Arc<RwLock<TestMachine>>,
    election: Arc<ManualElection>,
}

/// Opens a master on `url` (through `folder` when given), elected at once.
async fn open_primary(
    url: &str,
    folder: Option<Folder>,
    tune: impl FnOnce(&mut UfsJournalConfig),
) -> Opened {
    let election = Arc::new(ManualElection::new());
    let machine = shared(TestMachine::new());
    let mut cfg = config(url, 0);
    tune(&mut cfg);
    let journal = match folder {
        Some(f) => UfsJournal::open_in(f, cfg, election.clone(), machine.clone()).await,
        None => UfsJournal::open(cfg, election.clone(), machine.clone()).await,
    }
    .unwrap();
    election.set(ElectionState::Leader { epoch: 1 });
    wait_for_primary(&mut journal.role(), WAIT).await.unwrap();
    Opened {
        journal,
        machine,
        election,
    }
}

fn applied(machine: &Arc<RwLock<TestMachine>>) -> BTreeSet<Bytes> {
    machine
        .read()
        .entries
        .iter()
        .map(|(_, e)| e.clone())
        .collect()
}

/// Every entry in `acked` is in a master that opens the folder afresh.
async fn assert_durable(url: &str, acked: &BTreeSet<Bytes>) {
    let fresh = open_primary(url, None, |_| {}).await;
    let replayed = applied(&fresh.machine);
    let lost: Vec<_> = acked.difference(&replayed).collect();
    assert!(lost.is_empty(), "acknowledged entries lost: {lost:?}");
    fresh.journal.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_write_keeps_the_queue_bounded_and_everything_queued_commits_after() {
    init_tracing();
    let storage = formatted().await;
    let url = storage.url();
    let (folder, gate) = gated(&url);
    const BOUND: usize = 16;
    const PROPOSERS: usize = 200;
    let primary = open_primary(&url, Some(folder), |c| {
        c.pending = PendingLimits {
            max_proposals: BOUND,
            max_bytes: 1 << 20,
        };
    })
    .await;
    // The next chunk write hangs before it reaches the folder.
    gate.pause_at_next_put();
    let j = primary.journal.clone();
    let first = tokio::spawn(async move { j.propose(Bytes::from("first")).await });
    gate.wait_held(WAIT).await;
    // Callers that give up do not free the slot their entry still holds in
    // the queue: the bound counts entries, not waiting callers.
    const IMPATIENT: usize = 10;
    for i in 0..IMPATIENT {
        let r = tokio::time::timeout(
            Duration::from_millis(1),
            primary
                .journal
                .propose(Bytes::from(format!("impatient-{i}"))),
        )
        .await;
        assert!(r.is_err(), "cannot be answered while the write is stuck");
    }
    wait_until("the abandoned proposals to hold their slots", WAIT, || {
        primary.journal.pending().pending() == 1 + IMPATIENT
    })
    .await;
    let mut tasks = Vec::new();
    for i in 0..PROPOSERS {
        let j = primary.journal.clone();
        let entry = Bytes::from(format!("stuck-{i}"));
        tasks.push(tokio::spawn(async move {
            (entry.clone(), j.propose(entry).await)
        }));
    }
    let admitted = BOUND - 1 - IMPATIENT;
    // Refused proposals return at once although the write is still stuck.
    wait_until("the excess proposals to be refused", WAIT, || {
        tasks.iter().filter(|t| t.is_finished()).count() == PROPOSERS - admitted
    })
    .await;
    assert_eq!(primary.journal.pending().pending(), BOUND);
    let mut refused = 0;
    let mut still = Vec::new();
    for t in tasks {
        if t.is_finished() {
            match t.await.unwrap().1 {
                Err(e @ JournalError::Overloaded { .. }) => {
                    assert!(e.is_retryable());
                    assert!(e.to_string().contains("retry"), "{e}");
                    refused += 1;
                }
                other => panic!("finished while the write is stuck: {other:?}"),
            }
        } else {
            still.push(t);
        }
    }
    assert!(gate.is_paused(), "the write must still be stuck");
    assert!(primary.journal.pending().peak() <= BOUND);
    gate.resume();
    let mut acked = BTreeSet::new();
    first.await.unwrap().unwrap();
    acked.insert(Bytes::from("first"));
    for t in still {
        let (entry, r) = t.await.unwrap();
        match r {
            Ok(_) => {
                acked.insert(entry);
            }
            Err(JournalError::Overloaded { .. }) => refused += 1,
            Err(e) => panic!("unexpected failure: {e}"),
        }
    }
    assert_eq!(refused, PROPOSERS - admitted);
    assert_eq!(acked.len(), 1 + admitted);
    assert!(primary.journal.pending().peak() <= BOUND);
    wait_until("every slot to be freed", WAIT, || {
        primary.journal.pending().pending() == 0
    })
    .await;
    // The journal takes new proposals again.
    for i in 0..5 {
        let e = Bytes::from(format!("after-{i}"));
        primary.journal.propose(e.clone()).await.unwrap();
        acked.insert(e);
    }
    let here = applied(&primary.machine);
    assert!(acked.is_subset(&here));
    primary.journal.shutdown().await;
    assert_durable(&url, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_byte_bound_refuses_too() {
    init_tracing();
    let storage = formatted().await;
    let url = storage.url();
    let (folder, gate) = gated(&url);
    let primary = open_primary(&url, Some(folder), |c| {
        c.pending = PendingLimits {
            max_proposals: 1000,
            max_bytes: 10_000,
        };
    })
    .await;
    gate.pause_at_next_put();
    let j = primary.journal.clone();
    let first = tokio::spawn(async move { j.propose(Bytes::from(vec![1u8; 4000])).await });
    gate.wait_held(WAIT).await;
    let j = primary.journal.clone();
    let second = tokio::spawn(async move { j.propose(Bytes::from(vec![2u8; 4000])).await });
    wait_until("two proposals to wait", WAIT, || {
        primary.journal.pending().pending() == 2
    })
    .await;
    let e = primary
        .journal
        .propose(Bytes::from(vec![3u8; 4000]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            JournalError::Overloaded {
                pending: 2,
                pending_bytes: 8000,
                ..
            }
        ),
        "{e:?}"
    );
    gate.resume();
    first.await.unwrap().unwrap();
    second.await.unwrap().unwrap();
    primary
        .journal
        .propose(Bytes::from(vec![4u8; 4000]))
        .await
        .unwrap();
    primary.journal.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_folder_outage_fails_fast_without_spinning_and_service_resumes_by_itself() {
    init_tracing();
    let storage = formatted().await;
    let url = storage.url();
    let (folder, gate) = gated(&url);
    let backoff = Duration::from_millis(20);
    let primary = open_primary(&url, Some(folder), |c| {
        c.retry_backoff = backoff;
        c.error_log_interval = Duration::from_millis(200);
    })
    .await;
    let mut acked = BTreeSet::new();
    for i in 0..5 {
        let e = Bytes::from(format!("before-{i}"));
        primary.journal.propose(e.clone()).await.unwrap();
        acked.insert(e);
    }

    gate.down.store(true, Ordering::SeqCst);
    // The primary does not acknowledge, and says why instead of hanging.
    let r = tokio::time::timeout(WAIT, primary.journal.propose(Bytes::from("during")))
        .await
        .expect("a proposal during the outage must fail, not hang");
    let e = r.expect_err("nothing can be acknowledged while the folder is away");
    assert!(e.is_retryable(), "{e}");
    // "Minutes" here: 50 retry back-offs. Proposals keep failing at once
    // and the retries are paced by the back-off.
    let calls_before = gate.calls.load(Ordering::SeqCst);
    let outage = backoff * 50;
    let started = tokio::time::Instant::now();
    while started.elapsed() < outage {
        let r = tokio::time::timeout(WAIT, primary.journal.propose(Bytes::from("during")))
            .await
            .expect("fails fast");
        let e = r.expect_err("not acknowledged during the outage");
        assert!(e.is_retryable(), "{e}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let calls = gate.calls.load(Ordering::SeqCst) - calls_before;
    // A busy loop would make hundreds of thousands of calls; one retry
    // cycle per back-off makes a handful each.
    let cycles = (started.elapsed().as_millis() / backoff.as_millis()) as u64 + 1;
    assert!(
        calls <= cycles * 40,
        "{calls} storage calls in {cycles} back-off periods: the outage is retried in a busy loop"
    );

    gate.down.store(false, Ordering::SeqCst);
    wait_for_primary(&mut primary.journal.role(), WAIT)
        .await
        .expect("the master serves again by itself once the folder is back");
    let mut resumed = false;
    for _ in 0..200 {
        match primary.journal.propose(Bytes::from("after-0")).await {
            Ok(_) => {
                resumed = true;
                break;
            }
            Err(e) if e.is_retryable() => tokio::time::sleep(backoff).await,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(resumed, "proposals are acknowledged again");
    acked.insert(Bytes::from("after-0"));
    for i in 1..5 {
        let e = Bytes::from(format!("after-{i}"));
        primary.journal.propose(e.clone()).await.unwrap();
        acked.insert(e);
    }
    assert!(acked.is_subset(&applied(&primary.machine)));
    primary.journal.shutdown().await;
    assert_durable(&url, &acked).await;
}

/// Primacy lost while the queue is full and the write is stuck: every slot
/// is freed once the stuck write returns (the proposals behind it are
/// answered, not kept), so the re-elected master is not refused as
/// "overloaded" for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_primacy_with_a_full_queue_gives_every_slot_back() {
    init_tracing();
    let storage = formatted().await;
    let url = storage.url();
    let (folder, gate) = gated(&url);
    const BOUND: usize = 8;
    let primary = open_primary(&url, Some(folder), |c| {
        c.pending = PendingLimits {
            max_proposals: BOUND,
            max_bytes: 1 << 20,
        };
    })
    .await;
    gate.pause_at_next_put();
    let mut tasks = Vec::new();
    for i in 0..BOUND {
        let j = primary.journal.clone();
        tasks.push(tokio::spawn(async move {
            j.propose(Bytes::from(format!("queued-{i}"))).await
        }));
        if i == 0 {
            gate.wait_held(WAIT).await;
        }
    }
    wait_until("the queue to fill", WAIT, || {
        primary.journal.pending().pending() == BOUND
    })
    .await;
    assert!(matches!(
        primary.journal.propose(Bytes::from("excess")).await,
        Err(JournalError::Overloaded { .. })
    ));
    // Deposed while the write hangs, then the folder answers again.
    primary
        .election
        .set(ElectionState::Follower { leader: None });
    gate.resume();
    for t in tasks {
        // Acknowledged (the stuck batch landed) or refused; never hung.
        let r = tokio::time::timeout(WAIT, t).await.expect("answered");
        if let Err(e) = r.unwrap() {
            assert!(!matches!(e, JournalError::Overloaded { .. }), "{e}");
        }
    }
    wait_until("every slot to be freed after the step-down", WAIT, || {
        primary.journal.pending().pending() == 0
    })
    .await;
    primary.election.set(ElectionState::Leader { epoch: 2 });
    wait_for_primary(&mut primary.journal.role(), WAIT)
        .await
        .unwrap();
    // The whole bound is usable again.
    let mut again = Vec::new();
    for i in 0..BOUND {
        let j = primary.journal.clone();
        again.push(tokio::spawn(async move {
            j.propose(Bytes::from(format!("again-{i}"))).await
        }));
    }
    for t in again {
        t.await.unwrap().unwrap();
    }
    assert_eq!(primary.journal.pending().pending(), 0);
    primary.journal.shutdown().await;
}

/// An entry larger than the byte bound is refused at once as invalid (not
/// "overloaded, retry", which no retry could ever get past), also while
/// other proposals wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_above_the_byte_bound_is_invalid_even_under_load() {
    init_tracing();
    let storage = formatted().await;
    let url = storage.url();
    let (folder, gate) = gated(&url);
    let primary = open_primary(&url, Some(folder), |c| {
        c.pending = PendingLimits {
            max_proposals: 100,
            max_bytes: 1000,
        };
    })
    .await;
    let idle = primary
        .journal
        .propose(Bytes::from(vec![7u8; 1001]))
        .await
        .unwrap_err();
    assert!(
        matches!(idle, JournalError::InvalidEntry { .. }),
        "{idle:?}"
    );
    gate.pause_at_next_put();
    let j = primary.journal.clone();
    let small = tokio::spawn(async move { j.propose(Bytes::from("small")).await });
    gate.wait_held(WAIT).await;
    let busy = primary
        .journal
        .propose(Bytes::from(vec![7u8; 1001]))
        .await
        .unwrap_err();
    assert!(
        matches!(busy, JournalError::InvalidEntry { .. }),
        "{busy:?}"
    );
    assert!(!busy.is_retryable());
    gate.resume();
    small.await.unwrap().unwrap();
    primary
        .journal
        .propose(Bytes::from(vec![7u8; 1000]))
        .await
        .unwrap();
    primary.journal.shutdown().await;
}
