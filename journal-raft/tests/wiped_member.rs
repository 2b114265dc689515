//! A wiped and re-formatted member must not bootstrap a fresh voter set and
//! vote: with one follower down and the other wiped, an acknowledged entry
//! survives (the original failure lost it on all three members).

mod common;

use std::time::{Duration, Instant};

use common::{assert_acked_present, entry, init_tracing, Group};
use journal_core::JournalSystem;
use journal_raft::RaftJournal;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wiped_member_does_not_vote_away_an_acknowledged_entry() {
    init_tracing();
    tokio::time::timeout(Duration::from_secs(180), async {
        let mut g = Group::new(3);
        for i in 0..3 {
            g.open(i).await;
        }
        let a = g.primary(Duration::from_secs(30)).await;
        let (b, c) = ((a + 1) % 3, (a + 2) % 3);
        let mut acked = Vec::new();
        for i in 0..20 {
            let e = entry("all-up", i, 100);
            acked.push((e.clone(), g.m(a).journal.propose(e).await.unwrap()));
        }
        // B misses X; A and C acknowledge it.
        g.close(b).await;
        let x = entry("X", 0, 100);
        acked.push((x.clone(), g.m(a).journal.propose(x).await.unwrap()));

        // A (the leader) and C stop; C's directory is wiped and re-formatted.
        g.close(a).await;
        g.close(c).await;
        std::fs::remove_dir_all(g.dir(c)).unwrap();
        RaftJournal::format(&g.config(c)).unwrap();

        // B (without X) and the wiped C must not form a quorum.
        g.open(b).await;
        g.open(c).await;
        let window = common::ELECTION_MAX * 5;
        let until = Instant::now() + window;
        while Instant::now() < until {
            for i in [b, c] {
                assert!(
                    !g.m(i).is_primary(),
                    "member {i} became primary without the acknowledged entry X \
                     (B lacks it, C was wiped)"
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        // A returns: the group recovers with X on every member.
        g.open(a).await;
        let p = g.primary(Duration::from_secs(30)).await;
        assert_eq!(p, a, "only A holds X, so only A can win");
        g.m(p).journal.read_barrier().await.unwrap();
        let target = g.m(p).journal.status().last_applied;
        for i in 0..3 {
            g.wait_applied(i, target, Duration::from_secs(30)).await;
            assert_acked_present(&g.m(i).entries(), &acked, &format!("member {i}"));
        }
        // And it keeps working with all three.
        let e = entry("after", 0, 10);
        g.m(p).journal.propose(e).await.unwrap();
        eprintln!(
            "wiped member: no primary among B and the wiped C for {window:?}; A recovered with X on all three"
        );
        g.close_all().await;
    })
    .await
    .expect("the test finishes in 3 minutes");
}
