//! A leader cut off from both followers (fault-injecting TCP proxies on
//! every peer link) acknowledges nothing once it lost its quorum and steps
//! down by itself; the majority elects a new leader; after the partition
//! heals the old leader follows without disrupting it (pre-vote: the new
//! leader's term does not change).

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{entry, init_tracing, Group, ELECTION_MAX};
use journal_core::testkit::{TcpProxy, TestMachine};
use journal_core::{JournalError, JournalSystem};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn isolated_leader_acknowledges_nothing_and_rejoins_quietly() {
    init_tracing();
    tokio::time::timeout(Duration::from_secs(120), async {
        let mut g = Group::new(3);
        // proxies[x][y]: the link member x uses to reach member y.
        let mut proxies: HashMap<(usize, usize), TcpProxy> = HashMap::new();
        for x in 0..3 {
            for y in 0..3 {
                if x != y {
                    let target = g.addresses[y].parse().unwrap();
                    proxies.insert((x, y), TcpProxy::start(target).await.unwrap());
                }
            }
        }
        for x in 0..3 {
            let mut cfg = g.config(x);
            for y in 0..3 {
                if x != y {
                    cfg.connect_via.insert(g.addresses[y].clone(), proxies[&(x, y)].local_addr().to_string());
                }
            }
            g.open_with(x, cfg).await;
        }
        let old = g.primary(Duration::from_secs(30)).await;
        for i in 0..20 {
            g.m(old).journal.propose(entry("before", i, 50)).await.unwrap();
        }

        // Cut the leader off in both directions.
        for ((x, y), p) in &proxies {
            if *x == old || *y == old {
                p.block();
            }
        }
        let cut_at = Instant::now();
        let stale_read = {
            let j = g.m(old).journal.clone();
            tokio::spawn(async move { j.read_barrier().await })
        };
        let stale: Vec<_> = (0..30)
            .map(|i| {
                let j = g.m(old).journal.clone();
                tokio::spawn(async move {
                    let e = entry("isolated", i, 50);
                    (e.clone(), j.propose(e).await)
                })
            })
            .collect();

        // The majority elects a new leader.
        let new = loop {
            let p: Vec<usize> = (0..3).filter(|i| *i != old && g.m(*i).is_primary()).collect();
            if let [p] = p[..] {
                break p;
            }
            assert!(cut_at.elapsed() < Duration::from_secs(20), "the majority elected nobody");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let elected_after = cut_at.elapsed();
        let new_term = g.m(new).journal.status().epoch;

        // The old leader steps down by itself (check_quorum) and acknowledged nothing.
        let mut role = g.m(old).journal.role();
        tokio::time::timeout(Duration::from_secs(10), role.wait_for(|r| !r.is_primary()))
            .await
            .expect("the isolated leader stepped down")
            .unwrap();
        let stepped_down_after = cut_at.elapsed();
        let mut stale_entries = Vec::new();
        for h in stale {
            let (e, r) = tokio::time::timeout(Duration::from_secs(10), h).await.expect("stale proposal finished").unwrap();
            match r {
                Err(JournalError::NotPrimary { .. }) | Err(JournalError::Fenced { .. }) => {}
                other => panic!("the isolated leader answered {other:?}"),
            }
            stale_entries.push(e);
        }
        match tokio::time::timeout(Duration::from_secs(10), stale_read).await {
            Ok(Ok(Err(_))) => {}
            other => panic!("the isolated leader passed a read barrier: {other:?}"),
        }
        eprintln!(
            "partition: new leader serving after {elected_after:?}, old leader stepped down after {stepped_down_after:?}"
        );

        // The majority keeps serving.
        let mut acked = Vec::new();
        for i in 0..20 {
            let e = entry("majority", i, 50);
            let out = g.m(new).journal.propose(e.clone()).await.unwrap();
            acked.push((e, out));
        }

        // Heal; the old leader follows without a new election.
        for p in proxies.values() {
            p.unblock();
        }
        let target = g.m(new).journal.status().last_applied;
        g.wait_applied(old, target, Duration::from_secs(30)).await;
        tokio::time::sleep(ELECTION_MAX * 3).await;
        assert!(g.m(new).is_primary(), "the healed partition disrupted the new leader");
        assert_eq!(g.m(new).journal.status().epoch, new_term, "term changed after heal: pre-vote failed");
        assert!(!g.m(old).is_primary());
        let entries = g.m(new).entries();
        common::assert_acked_present(&entries, &acked, "partition");
        for e in &stale_entries {
            assert_eq!(g.m(new).machine.read().occurrences(e), 0, "a refused entry reached the log");
        }
        let target = g.m(new).journal.status().last_applied;
        g.wait_applied(old, target, Duration::from_secs(30)).await;
        assert_eq!(g.m(old).entries(), entries, "the old leader diverged");
        let _ = TestMachine::new();
        g.close_all().await;
    })
    .await
    .expect("test finishes in 2 minutes");
}
