//! Dead chunks: a stalled, deposed primary may write into a slot garbage
//! collection freed (and crash before it removes that chunk). No reader or
//! writer may take such a chunk for part of the log. These three attacks
//! came from a review of the first fix of issue 7; each lost an
//! acknowledged entry or split a standby's state from the primary's before
//! chunk identities were checked.
mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use common::members::{chunk_exists as exists, gated, lead_and_write, open_member};
use common::{formatted, init_tracing, WAIT};
use journal_core::testkit::wait_until;
use journal_core::{wait_for_primary, ElectionState, JournalSystem};
use journal_ufs::inspect::read_folder;

/// A deposed, stalled primary P writes into a slot GC freed (its dead chunk
/// lives until P's liveness check deletes it, or for ever if P crashes). A
/// standby S stalled at the same position reads the dead chunk and applies
/// it: the reader never checks liveness. If the dead chunk ends where a live
/// chunk starts, the divergence is permanent and verify_end never notices.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standby_applies_dead_chunk() {
    init_tracing();
    let storage = formatted().await;
    let url = storage.url();
    let (fp, gp) = gated(&url);
    let (fs, gs) = gated(&url);
    let p = open_member(&url, 0, Some(fp), 1).await;
    let s = open_member(&url, 1, Some(fs), 1).await;
    let q = open_member(&url, 2, None, 1).await;
    let end = lead_and_write(&p, 1, "p", 3).await;
    wait_until("s", WAIT, || s.journal.status().last_applied >= end).await;
    wait_until("q", WAIT, || q.journal.status().last_applied >= end).await;
    gs.pause();
    gp.pause_at_next_put();
    let pj = p.journal.clone();
    let dead = tokio::spawn(async move { pj.propose(Bytes::from_static(b"DEAD")).await });
    gp.wait_held(WAIT).await;
    q.election.set(ElectionState::Leader { epoch: 2 });
    wait_for_primary(&mut q.journal.role(), WAIT).await.unwrap();
    q.journal.propose(Bytes::from_static(b"q-0")).await.unwrap();
    let ck = q.journal.checkpoint().await.unwrap();
    let contents = read_folder(&url).await.unwrap();
    let firsts: Vec<u64> = contents.chunks.iter().map(|c| c.header.first_seq).collect();
    eprintln!("end={end} checkpoint={ck} chunks={firsts:?}");
    assert!(!exists(&url, end + 1).await, "slot end+1 should be freed");
    gp.pause_after_next_put.store(true, Ordering::SeqCst);
    gp.resume();
    let deadline = std::time::Instant::now() + WAIT;
    while !exists(&url, end + 1).await {
        assert!(
            std::time::Instant::now() < deadline,
            "dead chunk never landed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    gs.resume();
    let target = q.journal.status().last_applied;
    wait_until("s catches up", WAIT, || {
        s.journal.status().last_applied >= target
    })
    .await;
    // Let P finish (it deletes its dead chunk) and S run several end checks.
    gp.resume();
    eprintln!("P's dead proposal: {:?}", dead.await.unwrap());
    tokio::time::sleep(Duration::from_secs(3)).await;
    q.journal.propose(Bytes::from_static(b"q-1")).await.unwrap();
    let target = q.journal.status().last_applied;
    wait_until("s catches up again", WAIT, || {
        s.journal.status().last_applied >= target
    })
    .await;
    let se = s.machine.read().entries.clone();
    let qe = q.machine.read().entries.clone();
    eprintln!("S: {se:?}\nQ: {qe:?}");
    assert_eq!(se, qe, "standby state diverged from the primary's");
    for m in [p, s, q] {
        m.journal.shutdown().await;
    }
}

/// A deposed, stalled primary's write lands in a freed slot but the put
/// reports an error (timeout after the write reached the store). The Failed
/// path reads the chunk back, sees its own writer id and applies it without
/// the liveness check; every later write checks the dead chunk as "prev" and
/// is acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ambiguous_write_failure_skips_liveness_check() {
    init_tracing();
    let storage = formatted().await;
    let url = storage.url();
    let (fp, gp) = gated(&url);
    let p = open_member(&url, 0, Some(fp), 1).await;
    let q = open_member(&url, 1, None, 1).await;
    let end = lead_and_write(&p, 1, "p", 3).await;
    wait_until("q", WAIT, || q.journal.status().last_applied >= end).await;
    gp.pause_at_next_put();
    let pj = p.journal.clone();
    let x1 = tokio::spawn(async move { pj.propose(Bytes::from_static(b"x1")).await });
    gp.wait_held(WAIT).await;
    q.election.set(ElectionState::Leader { epoch: 2 });
    wait_for_primary(&mut q.journal.role(), WAIT).await.unwrap();
    for i in 0..4 {
        q.journal
            .propose(Bytes::from(format!("q-{i}")))
            .await
            .unwrap();
    }
    q.journal.checkpoint().await.unwrap();
    let contents = read_folder(&url).await.unwrap();
    let firsts: Vec<u64> = contents.chunks.iter().map(|c| c.header.first_seq).collect();
    eprintln!("end={end} chunks={firsts:?}");
    gp.fail_after_next_put.store(true, Ordering::SeqCst);
    gp.resume();
    eprintln!("x1: {:?}", x1.await.unwrap());
    let x2 = p.journal.propose(Bytes::from_static(b"x2")).await;
    eprintln!("x2: {x2:?}; P role {:?}", p.journal.status().role);
    let qe = q.machine.read().entries.clone();
    assert!(
        x2.is_err() || qe.iter().any(|(_, e)| e.as_ref() == b"x2"),
        "x2 was acknowledged by a deposed primary but is not in the live log (Q: {qe:?})"
    );
    p.journal.shutdown().await;
    q.journal.shutdown().await;
}

/// Two stalled primaries. M2 (epoch 1) stalls before writing slot p; M
/// (epoch 2) claims p and stalls before writing slot s = p+1; M3 (epoch 3)
/// writes, checkpoints and collects p and s. M2's dead write re-creates p;
/// M's write into s then checks "prev p exists", sees M2's dead chunk and
/// acknowledges. slot_is_live's proof assumes a freed slot is never
/// re-created, but dead writes re-create them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_chunk_in_the_previous_slot_makes_a_freed_slot_look_live() {
    init_tracing();
    let storage = formatted().await;
    let url = storage.url();
    let (f2, g2) = gated(&url);
    let (fm, gm) = gated(&url);
    let m2 = open_member(&url, 0, Some(f2), 1).await;
    let m = open_member(&url, 1, Some(fm), 1).await;
    let m3 = open_member(&url, 2, None, 1).await;
    let end = lead_and_write(&m2, 1, "a", 3).await;
    wait_until("m", WAIT, || m.journal.status().last_applied >= end).await;
    g2.pause_at_next_put();
    let j2 = m2.journal.clone();
    let dead = tokio::spawn(async move { j2.propose(Bytes::from_static(b"DEAD2")).await });
    g2.wait_held(WAIT).await;
    m.election.set(ElectionState::Leader { epoch: 2 });
    wait_for_primary(&mut m.journal.role(), WAIT).await.unwrap();
    let p = end + 1;
    assert_eq!(m.journal.status().last_applied, p);
    wait_until("m3", WAIT, || m3.journal.status().last_applied >= p).await;
    gm.pause_at_next_put();
    let jm = m.journal.clone();
    let lost = tokio::spawn(async move { jm.propose(Bytes::from_static(b"LOST")).await });
    gm.wait_held(WAIT).await;
    m3.election.set(ElectionState::Leader { epoch: 3 });
    wait_for_primary(&mut m3.journal.role(), WAIT)
        .await
        .unwrap();
    for i in 0..2 {
        m3.journal
            .propose(Bytes::from(format!("q-{i}")))
            .await
            .unwrap();
    }
    m3.journal.checkpoint().await.unwrap();
    let contents = read_folder(&url).await.unwrap();
    let firsts: Vec<u64> = contents.chunks.iter().map(|c| c.header.first_seq).collect();
    eprintln!("p={p} chunks={firsts:?}");
    assert!(!exists(&url, p).await && !exists(&url, p + 1).await);
    g2.pause_after_next_put.store(true, Ordering::SeqCst);
    g2.resume();
    let deadline = std::time::Instant::now() + WAIT;
    while !exists(&url, p).await {
        assert!(
            std::time::Instant::now() < deadline,
            "dead chunk never landed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    gm.resume();
    let lost = lost.await.unwrap();
    eprintln!("LOST: {lost:?}");
    let more = m.journal.propose(Bytes::from_static(b"LOST2")).await;
    eprintln!("LOST2: {more:?}");
    g2.resume();
    eprintln!("DEAD2: {:?}", dead.await.unwrap());
    let qe = m3.machine.read().entries.clone();
    assert!(
        lost.is_err() || qe.iter().any(|(_, e)| e.as_ref() == b"LOST"),
        "LOST was acknowledged but is not in the live log (M3: {qe:?})"
    );
    for x in [m2, m, m3] {
        x.journal.shutdown().await;
    }
}

/// Found by a second review: the previous chunk can also vanish *after* a
/// successful write, when the new chunk became history and a checkpoint
/// moved past it. The writer used to take that for "my slot was freed" and
/// delete its own, live chunk: with one retained checkpoint that chunk held
/// the checkpoint's position, every master lost its predecessor, and none
/// could become primary again. Now the writer leaves the chunk alone, does
/// not acknowledge, and steps down; the cluster goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_chunk_checkpointed_past_is_not_deleted_by_its_writer() {
    init_tracing();
    let storage = formatted().await;
    let url = storage.url();
    let (fm, gm) = gated(&url);
    let m = open_member(&url, 0, Some(fm), 1).await;
    let s2 = open_member(&url, 1, None, 1).await;
    let s3 = open_member(&url, 2, None, 1).await;
    let slot = lead_and_write(&m, 1, "m", 3).await + 1;
    // The write of X lands; its writer stalls before checking its predecessor.
    gm.pause_after_next_put.store(true, Ordering::SeqCst);
    let mj = m.journal.clone();
    let x = tokio::spawn(async move { mj.propose(Bytes::from_static(b"X")).await });
    gm.wait_held(WAIT).await;
    assert!(exists(&url, slot).await, "X's chunk should be written");
    wait_until("the standbys to apply X", WAIT, || {
        s2.journal.status().last_applied >= slot && s3.journal.status().last_applied >= slot
    })
    .await;
    // A standby checkpoints past X; collection (one checkpoint kept) removes
    // everything before X's chunk.
    let checkpoint = s3.journal.checkpoint().await.unwrap();
    assert!(checkpoint > slot);
    assert!(
        !exists(&url, slot - 1).await,
        "the predecessor should be collected"
    );
    gm.resume();
    let answer = x.await.unwrap();
    eprintln!("X answered {answer:?}");
    assert!(
        exists(&url, slot).await,
        "the writer deleted its own live chunk"
    );
    // The cluster goes on: another master becomes primary and writes.
    m.election.set(ElectionState::Follower { leader: None });
    s2.election.set(ElectionState::Leader { epoch: 2 });
    wait_for_primary(&mut s2.journal.role(), WAIT)
        .await
        .unwrap();
    s2.journal
        .propose(Bytes::from_static(b"after"))
        .await
        .unwrap();
    let target = s2.journal.status().last_applied;
    for (name, member) in [("m", &m), ("s3", &s3)] {
        wait_until(&format!("{name} to follow"), WAIT, || {
            member.journal.status().last_applied >= target
        })
        .await;
    }
    let reference = s2.machine.read().entries.clone();
    assert!(
        reference.iter().any(|(_, e)| e.as_ref() == b"X"),
        "X was lost"
    );
    assert_eq!(s3.machine.read().entries, reference);
    // m reloaded from the checkpoint: compare what it holds from there on.
    let from = m
        .machine
        .read()
        .entries
        .first()
        .map(|(s, _)| *s)
        .unwrap_or(0);
    let tail: Vec<_> = reference
        .iter()
        .filter(|(s, _)| *s >= from)
        .cloned()
        .collect();
    assert_eq!(m.machine.read().entries, tail);
    for x in [m, s2, s3] {
        x.journal.shutdown().await;
    }
}
