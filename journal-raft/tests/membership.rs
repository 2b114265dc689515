//! Membership under load: a 4th member joins (learner, then voter), a member
//! is removed, and leadership is transferred to a named member, all while
//! proposals keep flowing. Every acknowledged entry survives.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{entry, free_addresses, init_tracing, test_config, Group, Member};
use journal_core::{JournalError, JournalSystem};
use journal_raft::{member_id_for, RaftJournal};
use parking_lot::Mutex;

/// Proposes in a loop to whichever journal is primary; records acknowledgements.
fn spawn_load(
    journals: Arc<Mutex<Vec<Arc<RaftJournal>>>>,
    acked: Arc<Mutex<Vec<(bytes::Bytes, bytes::Bytes)>>>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<usize> {
    tokio::spawn(async move {
        let mut i = 0;
        let mut refused = 0;
        while !*stop.borrow() {
            let primary = journals
                .lock()
                .iter()
                .find(|j| j.role().borrow().is_primary())
                .cloned();
            let Some(j) = primary else {
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            };
            let e = entry("load", i, 200);
            i += 1;
            match j.propose(e.clone()).await {
                Ok(out) => acked.lock().push((e, out)),
                Err(JournalError::NotPrimary { .. }) | Err(JournalError::Shutdown) => refused += 1,
                Err(other) => panic!("unexpected proposal error: {other}"),
            }
        }
        refused
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn add_remove_and_transfer_while_proposals_flow() {
    init_tracing();
    tokio::time::timeout(Duration::from_secs(180), async {
        let mut g = Group::new(3);
        for i in 0..3 {
            g.open(i).await;
        }
        let p = g.primary(Duration::from_secs(30)).await;
        let journals = Arc::new(Mutex::new(
            (0..3).map(|i| g.m(i).journal.clone()).collect::<Vec<_>>(),
        ));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let load = spawn_load(journals.clone(), acked.clone(), stop_rx);
        tokio::time::sleep(Duration::from_millis(300)).await;

        // A 4th member: not in the initial address list, so it starts empty and waits.
        let new_addr = free_addresses(1).remove(0);
        let new_dir = g.root.path().join("member-new");
        let cfg = test_config(&new_addr, &g.addresses, &new_dir);
        let fourth = Member::open(cfg).await.unwrap();
        journals.lock().push(fourth.journal.clone());
        g.m(p)
            .journal
            .add_member("", &new_addr)
            .await
            .expect("add member");
        // Formatted JOIN (not in the list): its id is its own, learnt by add_member.
        let new_id = fourth.journal.id();
        assert_ne!(new_id, member_id_for(&new_addr));
        let status = g.m(p).journal.status();
        let row = status
            .members
            .iter()
            .find(|m| m.id == new_id.to_string())
            .expect("new member listed");
        assert_eq!(row.address, new_addr);
        assert_ne!(row.role, "LEARNER", "promoted to voter");
        assert_eq!(status.members.len(), 4, "{:?}", status.members);
        let n_before = acked.lock().len();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            acked.lock().len() > n_before,
            "proposals stalled after the join"
        );

        // Remove a follower.
        let victim = (p + 1) % 3;
        g.m(p)
            .journal
            .remove_member(&g.addresses[victim])
            .await
            .expect("remove member");
        let status = g.m(p).journal.status();
        assert_eq!(status.members.len(), 3, "{:?}", status.members);
        assert!(!status
            .members
            .iter()
            .any(|m| m.address == g.addresses[victim]));
        journals
            .lock()
            .retain(|j| j.config().address != g.addresses[victim]);
        g.close(victim).await;
        let n_before = acked.lock().len();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            acked.lock().len() > n_before,
            "proposals stalled after the removal"
        );

        // Transfer leadership to the new member, by address.
        g.m(p)
            .journal
            .transfer_leadership(&new_addr)
            .await
            .expect("transfer");
        journal_core::wait_for_primary(&mut fourth.journal.role(), Duration::from_secs(30))
            .await
            .expect("the named member serves");
        assert_eq!(g.m(p).journal.leader_id(), new_id);
        let n_before = acked.lock().len();
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            acked.lock().len() > n_before,
            "proposals stalled after the transfer"
        );

        stop_tx.send_replace(true);
        let refused = load.await.unwrap();
        let acked = acked.lock().clone();
        // One more write, then every live member must hold every acknowledged entry.
        let last = fourth.journal.propose(entry("final", 0, 1)).await.unwrap();
        let last_seq = journal_core::testkit::TestMachine::output_seq(&last).unwrap();
        for m in [g.m(p), &fourth] {
            let j = m.journal.clone();
            journal_core::testkit::wait_until("catch up", Duration::from_secs(30), || {
                j.status().last_applied >= last_seq
            })
            .await;
            common::assert_acked_present(&m.entries(), &acked, "membership");
        }
        assert_eq!(g.m(p).entries(), fourth.entries());
        eprintln!(
            "membership: {} acknowledged, {refused} refused during changes",
            acked.len()
        );
        fourth.journal.shutdown().await;
        g.close_all().await;
    })
    .await
    .expect("test finishes in 3 minutes");
}

/// Three members, open, and the index of the primary.
async fn three() -> (Group, usize) {
    let mut g = Group::new(3);
    for i in 0..3 {
        g.open(i).await;
    }
    let p = g.primary(Duration::from_secs(30)).await;
    (g, p)
}

/// `quorum elect` racing `quorum remove` of the same member: the removal is
/// proposed first (not applied yet), then leadership is asked to move to
/// that member. Handing leadership to a member the pending change removes
/// would leave a leader outside the membership (raft-rs keeps a removed
/// leader leading), serving as primary while no longer a member; the
/// transfer must be refused while a membership change is pending, the
/// removal completes, and the primary stays a member.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_transfer_to_a_member_while_its_removal_is_pending() {
    init_tracing();
    tokio::time::timeout(Duration::from_secs(120), async {
        let (mut g, p) = three().await;
        let t = (p + 1) % 3;
        let target = g.m(t).journal.id().to_string();
        let leader = g.m(p).journal.clone();
        // Both commands reach the driver in this order: `join!` polls the
        // removal first, and each sends its command on its first poll.
        let (removed, transferred) = tokio::join!(
            leader.remove_member(&target),
            leader.transfer_leadership(&target)
        );
        removed.expect("the removal completes");
        let e = transferred.expect_err("no transfer while a membership change is pending");
        assert!(e.to_string().contains("membership change"), "{e}");
        let status = leader.status();
        assert!(
            !status.members.iter().any(|m| m.id == target),
            "removed: {:?}",
            status.members
        );
        // Settled: the primary is a member of its own membership.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let q = g.primary(Duration::from_secs(30)).await;
        let own = g.m(q).journal.id().to_string();
        assert!(
            g.m(q).journal.status().members.iter().any(|m| m.id == own),
            "the primary (member {q}) is a member: {:?}",
            g.m(q).journal.status().members
        );
        g.close_all().await;
    })
    .await
    .expect("test finishes in 2 minutes");
}

/// Two transfers at once to different members: the second is refused at
/// once (raft-rs would abort the first, whose caller would then wait out
/// its timeout and report the member as behind), and so is one to the
/// leader itself meanwhile; the first completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_transfer_to_another_member_is_refused_while_one_runs() {
    init_tracing();
    tokio::time::timeout(Duration::from_secs(120), async {
        let (mut g, p) = three().await;
        let (a, b) = ((p + 1) % 3, (p + 2) % 3);
        let to_a = g.m(a).journal.id().to_string();
        let to_b = g.m(b).journal.id().to_string();
        let leader = g.m(p).journal.clone();
        let to_self = leader.id().to_string();
        let (first, second, back) = tokio::join!(
            leader.transfer_leadership(&to_a),
            leader.transfer_leadership(&to_b),
            leader.transfer_leadership(&to_self)
        );
        first.expect("the first transfer completes");
        let e = second.expect_err("the second is refused");
        assert!(e.to_string().contains("already being handed"), "{e}");
        // "Stay here" while leadership is leaving is no success either.
        let e = back.expect_err("a transfer to itself meanwhile is refused");
        assert!(e.to_string().contains("already being handed"), "{e}");
        assert_eq!(g.primary(Duration::from_secs(30)).await, a);
        g.close_all().await;
    })
    .await
    .expect("test finishes in 2 minutes");
}

/// Leadership moves (a handoff, the primary stopping) while `add_member`
/// waits for its learner to catch up: the wait ends with `NotPrimary` (the
/// caller retries on the new primary, which finds the learner and finishes)
/// instead of running into its timeout on a member that no longer tracks
/// the learner's progress and reporting the learner as slow.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_add_waiting_for_its_learner_ends_when_leadership_moves() {
    init_tracing();
    tokio::time::timeout(Duration::from_secs(120), async {
        let (mut g, p) = three().await;
        let a = (p + 1) % 3;
        // A member that never runs: it stays a learner that never catches up.
        let absent = free_addresses(1).remove(0);
        let leader = g.m(p).journal.clone();
        let adding = {
            let leader = leader.clone();
            let absent = absent.clone();
            tokio::spawn(async move { leader.add_member("4242", &absent).await })
        };
        journal_core::testkit::wait_until("the learner is listed", Duration::from_secs(30), || {
            leader
                .status()
                .members
                .iter()
                .any(|m| m.id == "4242" && m.role == "LEARNER")
        })
        .await;
        // The learner's addition may still be finishing: retry then.
        let to = g.m(a).journal.id().to_string();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            match leader.transfer_leadership(&to).await {
                Ok(()) => break,
                Err(e) if e.to_string().contains("in progress") => {
                    assert!(std::time::Instant::now() < deadline, "{e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("transfer: {e}"),
            }
        }
        let r = adding.await.expect("the add task");
        assert!(
            matches!(r, Err(JournalError::NotPrimary { .. })),
            "the add ends as not primary: {r:?}"
        );
        g.close_all().await;
    })
    .await
    .expect("test finishes in 2 minutes");
}

/// `quorum add` right after starting the new member: the member is opened
/// a moment after the add is asked for (it does not listen yet), and the
/// add waits for it instead of failing with "transport error". An address
/// where nothing ever listens still fails after the wait, saying so, and
/// leaves the membership as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_add_waits_for_a_member_that_starts_a_moment_later() {
    init_tracing();
    tokio::time::timeout(Duration::from_secs(120), async {
        let (mut g, p) = three().await;
        let mut addrs = free_addresses(2);
        let (late, never) = (addrs.remove(0), addrs.remove(0));

        let absent = g.m(p).journal.add_member("", &never).await;
        let err = absent.expect_err("nothing listens there").to_string();
        assert!(
            err.contains("cannot ask the new member for its id")
                && err.contains(&format!("nothing listened at {never}")),
            "{err}"
        );
        assert_eq!(g.m(p).journal.status().members.len(), 3);

        let leader = g.m(p).journal.clone();
        let target = late.clone();
        let add = tokio::spawn(async move { leader.add_member("", &target).await });
        // Long enough for a first attempt to find nothing listening (a
        // connection refused on loopback takes well under this).
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !add.is_finished(),
            "the add gave up before the member started"
        );
        let dir = g.root.path().join("member-late");
        let fourth = Member::open(test_config(&late, &g.addresses, &dir))
            .await
            .expect("open the late member");
        add.await
            .expect("add task")
            .expect("the add reaches the member once it listens");
        let status = g.m(p).journal.status();
        assert_eq!(status.members.len(), 4, "{:?}", status.members);
        assert!(status
            .members
            .iter()
            .any(|m| m.id == fourth.journal.id().to_string()));
        fourth.journal.shutdown().await;
        g.close_all().await;
    })
    .await
    .expect("test finishes in 2 minutes");
}
