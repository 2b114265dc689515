//! A wiped and re-formatted member must not bootstrap a fresh voter set and
//! vote: with one follower down and the other wiped, an acknowledged entry
//! survives (the original failure lost it on all three members). Re-formatted
//! NEW_CLUSTER it is refused at open; re-formatted JOIN it is a new member
//! the operator adds after removing the old id.

mod common;

use std::time::{Duration, Instant};

use common::{assert_acked_present, entry, init_tracing, Group};
use journal_core::JournalSystem;
use journal_raft::{member_id_for, FormatMode, RaftJournal};

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

        // A (the leader) and C stop; C's directory is wiped and re-formatted
        // NEW_CLUSTER, as if it were a brand-new founder.
        g.close(a).await;
        g.close(c).await;
        std::fs::remove_dir_all(g.dir(c)).unwrap();
        RaftJournal::format(&g.config(c), FormatMode::NewCluster).unwrap();

        // B (without X) is up and holds state: the wiped C is refused at open,
        // with the way out in the message.
        g.open(b).await;
        match common::Member::open(g.config(c)).await {
            Err(e) => {
                let text = e.to_string();
                assert!(
                    text.contains("was wiped or replaced") && text.contains("JOIN"),
                    "{text}"
                );
            }
            // The first handshake round inside `open` may miss B's answer on a
            // loaded machine; the handshake then goes on in the background.
            // Whatever it concludes, the wiped member must serve and vote for
            // nobody; once the handshake hears B it stops the member with the
            // same error. (Seen once under a full parallel test run: the
            // member was still waiting, without membership, after 20 s; the
            // safety checks held. Printed, not asserted: see
            // docs/raft-journal.md, known limits.)
            Ok(wiped) => {
                let until = Instant::now() + Duration::from_secs(20);
                let mut stopped = false;
                while Instant::now() < until {
                    assert!(!wiped.is_primary(), "a wiped NEW_CLUSTER member became primary");
                    if let Err(e) = wiped.journal.propose(entry("probe", 0, 10)).await {
                        if e.to_string().contains("was wiped or replaced") {
                            stopped = true;
                            break;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                eprintln!("wiped NEW_CLUSTER member opened; stopped by the background handshake: {stopped}");
                wiped.journal.shutdown().await;
            }
        }
        // Re-formatted JOIN, it opens as a new member that votes for nobody.
        std::fs::remove_dir_all(g.dir(c)).unwrap();
        RaftJournal::format(&g.config(c), FormatMode::Join).unwrap();
        g.open(c).await;
        let old_c = member_id_for(&g.addresses[c]);
        assert_ne!(g.m(c).journal.id(), old_c, "a JOIN member gets a fresh id");
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

        // A returns: only A holds X, so only A can win.
        g.open(a).await;
        let p = g.primary(Duration::from_secs(30)).await;
        assert_eq!(p, a, "only A holds X, so only A can win");
        // The operator replaces C: remove its old id, add the new member.
        g.m(p).journal.remove_member(&g.addresses[c]).await.unwrap();
        g.m(p).journal.add_member("", &g.addresses[c]).await.unwrap();
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
