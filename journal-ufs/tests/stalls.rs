//! One master stalls (its storage calls are held at a gate, as in a GC
//! pause or a suspended VM) while another writes, checkpoints and collects
//! garbage; then it resumes. Each test reproduces a hole adversarial testing
//! found (issue 7, cases 1 and 2) and fails without its fix.

#![allow(clippy::needless_range_loop)]

mod common;

use bytes::Bytes;
use common::members::{gated, open_member, Member};
use common::{formatted, init_tracing, propose_n, WAIT};
use journal_core::testkit::wait_until;
use journal_core::{wait_for_primary, ElectionState, JournalError, JournalSystem};
use journal_ufs::inspect::read_folder;

/// Writes, checkpoints and collects garbage twice, so that every chunk the
/// stalled master still needs is gone.
async fn write_past(primary: &Member, tag: &str) -> u64 {
    for round in 0..2 {
        propose_n(&primary.journal, &format!("{tag}-{round}"), 40).await;
        primary.journal.checkpoint().await.unwrap();
    }
    propose_n(&primary.journal, &format!("{tag}-tail"), 10).await;
    primary.journal.status().last_applied
}

/// Case 1: a standby that has not applied any chunk yet (fresh, then again
/// right after each reload from a checkpoint) is stalled while the primary
/// writes, checkpoints and garbage-collects the chunks it needs. Before the
/// fix it polled an absent slot for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_standby_with_nothing_applied_always_catches_up() {
    init_tracing();
    let storage = formatted().await;
    let url = storage.url();
    let (folder, gate) = gated(&url);
    // The standby opens on the empty log: next slot 1, no chunk applied.
    let standby = open_member(&url, 1, Some(folder), 1).await;
    let primary = open_member(&url, 0, None, 1).await;
    primary.election.set(ElectionState::Leader { epoch: 1 });
    wait_for_primary(&mut primary.journal.role(), WAIT)
        .await
        .unwrap();
    for round in 0..3 {
        gate.pause();
        let target = write_past(&primary, &format!("round{round}")).await;
        let contents = read_folder(&url).await.unwrap();
        let first_chunk = contents.chunks.first().map(|c| c.header.first_seq);
        let standby_next = standby.journal.status().last_applied + 1;
        assert!(
            first_chunk.is_some_and(|f| f > standby_next),
            "round {round}: garbage collection should have removed the standby's next slot {standby_next} (first chunk {first_chunk:?})"
        );
        gate.resume();
        wait_until(
            &format!("round {round}: the stalled standby to catch up to {target}"),
            WAIT,
            || standby.journal.status().last_applied >= target,
        )
        .await;
        assert_eq!(
            standby.machine.read().entries,
            primary.machine.read().entries,
            "round {round}: the standby's state differs from the primary's"
        );
    }
    standby.journal.shutdown().await;
    primary.journal.shutdown().await;
}

/// Case 2: the read barrier of a primary that garbage collection overtook.
/// It was deposed without being told and stalled; the new primary wrote,
/// checkpointed and collected its slot. Before the fix the barrier saw its
/// next slot free and answered a "linearizable" read from a stale state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_primary_overtaken_by_gc_fails_its_read_barrier() {
    init_tracing();
    let storage = formatted().await;
    let url = storage.url();
    let old = open_member(&url, 0, None, 1).await;
    let new = open_member(&url, 1, None, 1).await;
    old.election.set(ElectionState::Leader { epoch: 1 });
    wait_for_primary(&mut old.journal.role(), WAIT)
        .await
        .unwrap();
    propose_n(&old.journal, "old", 20).await;
    old.journal.read_barrier().await.unwrap();
    let stale = old.journal.status().last_applied;
    // The new primary takes over; the old one is not told.
    new.election.set(ElectionState::Leader { epoch: 2 });
    wait_for_primary(&mut new.journal.role(), WAIT)
        .await
        .unwrap();
    let target = write_past(&new, "new").await;
    let contents = read_folder(&url).await.unwrap();
    assert!(
        contents.chunks.iter().all(|c| c.header.first_seq > stale),
        "garbage collection should have freed the old primary's slot"
    );
    assert!(old.journal.status().role.is_primary());
    match old.journal.read_barrier().await {
        Err(JournalError::Fenced { .. }) => {}
        other => panic!(
            "a primary overtaken by garbage collection passed a read barrier with {stale} entries applied while the log holds {target}: {other:?}"
        ),
    }
    assert!(!old.journal.status().role.is_primary());
    wait_until("the old primary to follow again", WAIT, || {
        old.journal.status().last_applied >= target
    })
    .await;
    assert_eq!(old.machine.read().entries, new.machine.read().entries);
    old.journal.shutdown().await;
    new.journal.shutdown().await;
}

/// Case 2, the claim: a master elected on an empty log verifies the log's
/// end and is held just before it writes its claim into slot 1. Meanwhile
/// another primary claims slot 1, writes, checkpoints and collects slot 1.
/// When the held claim lands in the freed slot, the claimant has no previous
/// chunk to check; it must still see that it was overtaken, remove its dead
/// claim, reload, and serve only with every acknowledged entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_held_while_gc_frees_its_slot_is_not_trusted() {
    init_tracing();
    let storage = formatted().await;
    let url = storage.url();
    let (folder, gate) = gated(&url);
    let late = open_member(&url, 0, Some(folder), 1).await;
    let other = open_member(&url, 1, None, 1).await;
    gate.pause_at_next_put();
    late.election.set(ElectionState::Leader { epoch: 1 });
    gate.wait_held(WAIT).await;
    other.election.set(ElectionState::Leader { epoch: 2 });
    wait_for_primary(&mut other.journal.role(), WAIT)
        .await
        .unwrap();
    let acked = propose_n(&other.journal, "acked", 30).await;
    let target = write_past(&other, "more").await;
    let contents = read_folder(&url).await.unwrap();
    assert!(
        contents.chunks.iter().all(|c| c.header.first_seq > 1),
        "garbage collection should have freed slot 1"
    );
    // The other primary is deposed (its election moves on); the held claim lands.
    other.election.set(ElectionState::Follower { leader: None });
    gate.resume();
    wait_for_primary(&mut late.journal.role(), WAIT)
        .await
        .unwrap();
    let entries = late.machine.read().entries.clone();
    for entry in &acked {
        assert!(
            entries.iter().any(|(_, e)| e == entry),
            "the new primary serves without acknowledged entry {entry:?} (it has {} entries, the log held {target} records)",
            entries.len()
        );
    }
    late.journal.read_barrier().await.unwrap();
    late.journal
        .propose(Bytes::from_static(b"after the takeover"))
        .await
        .unwrap();
    // Nothing was lost and, once the held claim (left in the freed slot as
    // dead history) is collected, the log reads back linear.
    late.journal.checkpoint().await.unwrap();
    let contents = read_folder(&url).await.unwrap();
    for pair in contents.chunks.windows(2) {
        assert_eq!(pair[0].end(), pair[1].header.first_seq, "the log forked");
    }
    late.journal.shutdown().await;
    other.journal.shutdown().await;
}
