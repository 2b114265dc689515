//! Every member advertises its RPC address (where clients reach it) to the
//! group; it is replicated with the membership, so a standby's
//! `NotPrimary.leader_hint` and `status().leader_address` name the leader's
//! RPC address (never its peer address), follow leadership transfers, name
//! a member added with `add_member` once it leads, survive restarts, and
//! are `None` while the leader's RPC address is not known.

mod common;

use std::time::{Duration, Instant};

use common::{free_addresses, init_tracing, test_config, Group, Member};
use journal_core::{JournalError, JournalSystem};
use journal_raft::RaftJournalConfig;

const WAIT: Duration = Duration::from_secs(30);

fn with_rpc(mut cfg: RaftJournalConfig, rpc: Option<&str>) -> RaftJournalConfig {
    cfg.rpc_address = rpc.map(str::to_string);
    cfg
}

/// What a standby tells a client about the leader: the `read_barrier` hint
/// and `status().leader_address`.
async fn hints(j: &dyn JournalSystem) -> (Option<String>, Option<String>) {
    let hint = match j.read_barrier().await {
        Err(JournalError::NotPrimary { leader_hint }) => leader_hint,
        other => panic!("a standby's read_barrier returned {other:?}"),
    };
    (hint, j.status().leader_address)
}

/// Waits until every given standby names `want` in both places; panics
/// with what they said otherwise.
async fn expect_hints(standbys: &[&dyn JournalSystem], want: Option<&str>) {
    let deadline = Instant::now() + WAIT;
    loop {
        let mut seen = Vec::new();
        for j in standbys {
            seen.push(hints(*j).await);
        }
        let want = (want.map(str::to_string), want.map(str::to_string));
        if seen.iter().all(|s| *s == want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "standbys name {seen:?}, expected {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn standbys(g: &Group, leader: usize) -> Vec<&dyn JournalSystem> {
    (0..g.members.len())
        .filter(|i| *i != leader && g.members[*i].is_some())
        .map(|i| &*g.m(i).journal as &dyn JournalSystem)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn standbys_name_the_leaders_rpc_address_and_follow_transfers() {
    init_tracing();
    tokio::time::timeout(Duration::from_secs(120), async {
        let mut g = Group::new(3);
        let rpc = free_addresses(3);
        for (i, r) in rpc.iter().enumerate().take(3) {
            let cfg = with_rpc(g.config(i), Some(r));
            g.open_with(i, cfg).await;
        }
        let p = g.primary(WAIT).await;
        expect_hints(&standbys(&g, p), Some(&rpc[p])).await;
        // The leader points nobody back at itself.
        assert_eq!(g.m(p).journal.status().leader_address, None);
        // Every member lists every member's peer and RPC address.
        for i in 0..3 {
            let status = g.m(i).journal.status();
            for (k, r) in rpc.iter().enumerate() {
                let row = status
                    .members
                    .iter()
                    .find(|m| m.address == g.addresses[k])
                    .unwrap_or_else(|| panic!("member {k} missing on {i}: {:?}", status.members));
                assert_eq!(row.rpc_address.as_deref(), Some(r.as_str()), "on {i}");
            }
        }

        // Leadership moves: the hints follow it.
        let q = (p + 1) % 3;
        g.m(p)
            .journal
            .transfer_leadership(&g.addresses[q])
            .await
            .expect("transfer");
        assert_eq!(g.primary(WAIT).await, q);
        expect_hints(&standbys(&g, q), Some(&rpc[q])).await;

        // Restarts keep the map: every member down, then up again.
        g.close_all().await;
        for (i, r) in rpc.iter().enumerate().take(3) {
            let cfg = with_rpc(g.config(i), Some(r));
            g.open_with(i, cfg).await;
        }
        let r = g.primary(WAIT).await;
        expect_hints(&standbys(&g, r), Some(&rpc[r])).await;
        g.close_all().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_added_member_is_named_by_its_rpc_address_once_it_leads() {
    init_tracing();
    tokio::time::timeout(Duration::from_secs(120), async {
        let mut g = Group::new(3);
        let rpc = free_addresses(4);
        for (i, r) in rpc.iter().enumerate().take(3) {
            let cfg = with_rpc(g.config(i), Some(r));
            g.open_with(i, cfg).await;
        }
        let p = g.primary(WAIT).await;
        let new_addr = free_addresses(1).remove(0);
        let cfg = with_rpc(
            test_config(&new_addr, &g.addresses, &g.root.path().join("member-new")),
            Some(&rpc[3]),
        );
        let fourth = Member::open(cfg).await.expect("open the new member");
        g.m(p)
            .journal
            .add_member("", &new_addr)
            .await
            .expect("add member");
        let row = g
            .m(p)
            .journal
            .status()
            .members
            .into_iter()
            .find(|m| m.address == new_addr)
            .expect("new member listed");
        assert_eq!(row.rpc_address.as_deref(), Some(rpc[3].as_str()));

        g.m(p)
            .journal
            .transfer_leadership(&new_addr)
            .await
            .expect("transfer to the new member");
        journal_core::wait_for_primary(&mut fourth.journal.role(), WAIT)
            .await
            .expect("the new member serves");
        let all: Vec<&dyn JournalSystem> = (0..3)
            .map(|i| &*g.m(i).journal as &dyn JournalSystem)
            .collect();
        expect_hints(&all, Some(&rpc[3])).await;
        fourth.journal.shutdown().await;
        g.close_all().await;
    })
    .await
    .expect("test timed out");
}

/// A leader whose RPC address the group does not know (here: it advertises
/// none) is named by no hint on members that use RPC addresses, rather than
/// by its peer address; members without `rpc_address` keep naming peer
/// addresses. A leader that comes back with another RPC address replaces
/// its entry once it leads.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_rpc_address_is_no_hint_and_a_changed_one_is_replaced() {
    init_tracing();
    tokio::time::timeout(Duration::from_secs(120), async {
        let mut g = Group::new(3);
        let rpc = free_addresses(3);
        // Member 2 advertises nothing (peer-address hints, as before).
        for (i, r) in rpc.iter().enumerate() {
            let r = (i < 2).then_some(r.as_str());
            let cfg = with_rpc(g.config(i), r);
            g.open_with(i, cfg).await;
        }
        let p = g.primary(WAIT).await;
        if p != 2 {
            g.m(p)
                .journal
                .transfer_leadership(&g.addresses[2])
                .await
                .expect("transfer to member 2");
        }
        assert_eq!(g.primary(WAIT).await, 2);
        expect_hints(&[&*g.m(0).journal, &*g.m(1).journal], None).await;
        let row = g
            .m(0)
            .journal
            .status()
            .members
            .into_iter()
            .find(|m| m.address == g.addresses[2])
            .expect("member 2 listed");
        assert_eq!(row.rpc_address, None);

        // Member 0 as leader: member 1 names its RPC address, member 2 (no
        // rpc_address of its own) its peer address.
        g.m(2)
            .journal
            .transfer_leadership(&g.addresses[0])
            .await
            .expect("transfer to member 0");
        assert_eq!(g.primary(WAIT).await, 0);
        expect_hints(&[&*g.m(1).journal], Some(&rpc[0])).await;
        expect_hints(&[&*g.m(2).journal], Some(&g.addresses[0])).await;

        // Member 2 restarts advertising an RPC address and leads: the group
        // learns it from its announcement.
        g.close(2).await;
        let new_rpc = free_addresses(1).remove(0);
        let cfg = with_rpc(g.config(2), Some(&new_rpc));
        g.open_with(2, cfg).await;
        g.wait_applied(2, g.m(0).journal.status().last_applied, WAIT)
            .await;
        let deadline = Instant::now() + WAIT;
        loop {
            match g.m(0).journal.transfer_leadership(&g.addresses[2]).await {
                Ok(()) => break,
                Err(e) => {
                    assert!(Instant::now() < deadline, "transfer to member 2: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        assert_eq!(g.primary(WAIT).await, 2);
        expect_hints(&[&*g.m(0).journal, &*g.m(1).journal], Some(&new_rpc)).await;
        g.close_all().await;
    })
    .await
    .expect("test timed out");
}
