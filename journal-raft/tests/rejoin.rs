//! A member whose data was lost rejoins as a NEW member (format JOIN, new
//! id), never by inferring "fresh" from an empty directory.
//!
//! - A grown group (created from a one-address list, B and C added later,
//!   lists then updated) with A wiped: re-formatted NEW_CLUSTER it is refused
//!   at open (no second group of one, no split brain); re-formatted JOIN it
//!   starts with a new id, does not serve or vote, and after
//!   `remove_member(old A)` + `add_member(A)` holds every acknowledged entry.
//! - A follower's disk replaced while the leader stays up: no panic, the
//!   member stays out until re-added, then catches up.
//! - Three fresh founders started one after another all end up in the group.

mod common;

use std::time::{Duration, Instant};

use common::{assert_acked_present, entry, init_tracing, test_config, Group, Member};
use journal_core::JournalSystem;
use journal_raft::{member_id_for, FormatMode, RaftJournal};

/// Asserts for `window` that member `i` is not primary and knows no membership.
async fn stays_out(g: &Group, i: usize, window: Duration) {
    let until = Instant::now() + window;
    while Instant::now() < until {
        assert!(
            !g.m(i).is_primary(),
            "member {i} serves without being added"
        );
        assert!(
            g.m(i).journal.status().members.is_empty(),
            "member {i} took a membership before it was added: {:?}",
            g.m(i).journal.status().members
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grown_group_wiped_founder_is_refused_then_rejoins_as_join() {
    init_tracing();
    tokio::time::timeout(Duration::from_secs(240), async {
        let mut g = Group::new(3);
        let (a, b, c) = (0, 1, 2);
        let only_a = vec![g.addresses[a].clone()];
        // A group of one, grown with B and C (formatted JOIN with A's list).
        for i in [a, b, c] {
            let cfg = test_config(&g.addresses[i], &only_a, &g.dir(i));
            g.open_with(i, cfg).await;
        }
        g.primary(Duration::from_secs(30)).await;
        for i in [b, c] {
            g.m(a)
                .journal
                .add_member("", &g.addresses[i])
                .await
                .unwrap();
        }
        let mut acked = Vec::new();
        for i in 0..30 {
            let e = entry("grown", i, 100);
            acked.push((e.clone(), g.m(a).journal.propose(e).await.unwrap()));
        }
        let old_a = g.m(a).journal.id();
        assert_eq!(old_a, member_id_for(&g.addresses[a]));

        // The operator updates the list on every member (they have state: it
        // is only a contact list for them now) ...
        for i in [b, c] {
            g.close(i).await;
            g.open(i).await;
        }
        // ... then A's disk is lost and A is re-formatted as a founder.
        g.close(a).await;
        std::fs::remove_dir_all(g.dir(a)).unwrap();
        RaftJournal::format(&g.config(a), FormatMode::NewCluster).unwrap();
        match Member::open(g.config(a)).await {
            Err(e) => {
                let text = e.to_string();
                assert!(
                    text.contains("was wiped or replaced") && text.contains("JOIN"),
                    "{text}"
                );
            }
            Ok(m) => {
                tokio::time::sleep(common::ELECTION_MAX * 3).await;
                panic!(
                    "a wiped founder of a grown group opened as NEW_CLUSTER (primary: {})",
                    m.is_primary()
                );
            }
        }
        // B and C carry on (2 of the 3 voters).
        let p = g.primary(Duration::from_secs(30)).await;
        for i in 0..5 {
            let e = entry("without-a", i, 100);
            acked.push((e.clone(), g.m(p).journal.propose(e).await.unwrap()));
        }

        // Re-formatted JOIN: a new id, out of the group until added.
        std::fs::remove_dir_all(g.dir(a)).unwrap();
        RaftJournal::format(&g.config(a), FormatMode::Join).unwrap();
        g.open(a).await;
        let new_a = g.m(a).journal.id();
        assert_ne!(new_a, old_a, "a JOIN member gets a fresh id");
        stays_out(&g, a, common::ELECTION_MAX * 3).await;

        let p = g.primary(Duration::from_secs(30)).await;
        // By address: the replicated map says which id lives there.
        g.m(p).journal.remove_member(&g.addresses[a]).await.unwrap();
        g.m(p)
            .journal
            .add_member("", &g.addresses[a])
            .await
            .unwrap();
        let voters: Vec<String> = g
            .m(p)
            .journal
            .status()
            .members
            .iter()
            .map(|m| m.id.clone())
            .collect();
        assert!(
            voters.contains(&new_a.to_string()) && !voters.contains(&old_a.to_string()),
            "{voters:?}"
        );
        for i in 0..5 {
            let e = entry("rejoined", i, 100);
            acked.push((e.clone(), g.m(p).journal.propose(e).await.unwrap()));
        }
        g.m(p).journal.read_barrier().await.unwrap();
        let target = g.m(p).journal.status().last_applied;
        for i in [a, b, c] {
            g.wait_applied(i, target, Duration::from_secs(30)).await;
            assert_acked_present(&g.m(i).entries(), &acked, &format!("member {i}"));
        }
        // Leadership can move to the rejoined member by address.
        g.m(p)
            .journal
            .transfer_leadership(&g.addresses[a])
            .await
            .unwrap();
        g.close_all().await;
    })
    .await
    .expect("the test finishes in 4 minutes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn follower_disk_replaced_while_the_leader_stays_up() {
    init_tracing();
    tokio::time::timeout(Duration::from_secs(180), async {
        let mut g = Group::new(3);
        for i in 0..3 {
            g.open(i).await;
        }
        let p = g.primary(Duration::from_secs(30)).await;
        let f = (p + 1) % 3;
        let mut acked = Vec::new();
        for i in 0..20 {
            let e = entry("before", i, 100);
            acked.push((e.clone(), g.m(p).journal.propose(e).await.unwrap()));
        }
        let old_f = g.m(f).journal.id();
        g.close(f).await;
        std::fs::remove_dir_all(g.dir(f)).unwrap();
        RaftJournal::format(&g.config(f), FormatMode::Join).unwrap();
        g.open(f).await;
        // The leader's heartbeats go to the old id; the new member drops
        // them (wrong recipient) and never reaches raft-rs's fatal path.
        stays_out(&g, f, common::ELECTION_MAX * 3).await;
        for i in 0..5 {
            let e = entry("meanwhile", i, 100);
            acked.push((e.clone(), g.m(p).journal.propose(e).await.unwrap()));
        }
        assert!(g.m(f).journal.status().members.is_empty());
        g.m(p)
            .journal
            .remove_member(&old_f.to_string())
            .await
            .unwrap();
        g.m(p)
            .journal
            .add_member("", &g.addresses[f])
            .await
            .unwrap();
        for i in 0..5 {
            let e = entry("after", i, 100);
            acked.push((e.clone(), g.m(p).journal.propose(e).await.unwrap()));
        }
        g.m(p).journal.read_barrier().await.unwrap();
        let target = g.m(p).journal.status().last_applied;
        for i in 0..3 {
            g.wait_applied(i, target, Duration::from_secs(30)).await;
            assert_acked_present(&g.m(i).entries(), &acked, &format!("member {i}"));
        }
        assert_eq!(g.m(f).journal.counters().step_panics, 0);
        g.close_all().await;
    })
    .await
    .expect("the test finishes in 3 minutes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn staggered_fresh_founders_all_join() {
    init_tracing();
    tokio::time::timeout(Duration::from_secs(120), async {
        let mut g = Group::new(3);
        // 0 and 1 start first and find too few peers; 2 finds both empty and
        // bootstraps; 0 and 1 then find 2 with state, but 2 saw them empty.
        g.open(0).await;
        tokio::time::sleep(common::ELECTION_MAX * 2).await;
        g.open(1).await;
        tokio::time::sleep(common::ELECTION_MAX * 2).await;
        g.open(2).await;
        let p = g.primary(Duration::from_secs(30)).await;
        let e = entry("all", 0, 10);
        let out = g.m(p).journal.propose(e.clone()).await.unwrap();
        let seq = journal_core::testkit::TestMachine::output_seq(&out).unwrap();
        for i in 0..3 {
            g.wait_applied(i, seq, Duration::from_secs(30)).await;
            assert!(g.m(i).journal.status().members.len() == 3);
        }
        g.close_all().await;
    })
    .await
    .expect("the test finishes in 2 minutes");
}
