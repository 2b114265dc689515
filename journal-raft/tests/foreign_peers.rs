//! Two groups that can reach each other's ports never exchange steps: a
//! group whose address list names a member of another group is refused by
//! that member, whose term, role and log stay its own.

mod common;

use std::time::{Duration, Instant};

use common::{entry, free_addresses, init_tracing, test_config, Group, Member};
use journal_core::JournalSystem;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_of_another_group_is_refused() {
    init_tracing();
    tokio::time::timeout(Duration::from_secs(120), async {
        // Group Y: one member.
        let mut y = Group::new(1);
        y.open(0).await;
        y.primary(Duration::from_secs(30)).await;
        for i in 0..5 {
            y.m(0).journal.propose(entry("y", i, 10)).await.unwrap();
        }
        let y_epoch = y.m(0).journal.status().epoch;
        let y_entries = y.m(0).entries();

        // Group X lists Y's member among its own (a mistyped address list).
        let mut list = free_addresses(3);
        list.push(y.addresses[0].clone());
        let root = tempfile::tempdir().unwrap();
        let mut xs = Vec::new();
        for i in 0..3 {
            let mut cfg = test_config(&list[i], &list, &root.path().join(format!("x{i}")));
            // Another group: its own cluster id (derived ids differ for
            // different lists; the test groups set theirs explicitly).
            cfg.cluster_id = Some("raft-test-x".into());
            xs.push(Member::open(cfg).await.unwrap());
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut leader = loop {
            if let Some(i) = (0..3).find(|i| xs[*i].is_primary()) {
                break i;
            }
            assert!(Instant::now() < deadline, "group X elected no primary");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        // Push X's term above Y's, so a stepped X message would depose Y.
        while xs[leader].journal.status().epoch <= y_epoch + 1 {
            let next = (leader + 1) % 3;
            xs[leader]
                .journal
                .transfer_leadership(&list[next])
                .await
                .unwrap();
            journal_core::wait_for_primary(&mut xs[next].journal.role(), Duration::from_secs(30))
                .await
                .unwrap();
            leader = next;
        }
        let x_epoch = xs[leader].journal.status().epoch;
        assert!(
            x_epoch > y_epoch,
            "X term {x_epoch} must exceed Y term {y_epoch}"
        );
        xs[leader].journal.propose(entry("x", 0, 10)).await.unwrap();

        // X's leader keeps sending to Y's member; Y refuses every batch.
        tokio::time::sleep(common::ELECTION_MAX * 3).await;
        let status = y.m(0).journal.status();
        assert!(
            y.m(0).is_primary(),
            "Y's member was deposed by a foreign leader"
        );
        assert_eq!(status.epoch, y_epoch, "Y's term moved");
        assert_eq!(status.members.len(), 1, "{:?}", status.members);
        assert_eq!(y.m(0).entries(), y_entries, "Y's log changed");
        assert!(
            y.m(0).journal.foreign_peers_refused() > 0,
            "nothing was refused"
        );
        y.m(0).journal.propose(entry("y", 99, 10)).await.unwrap();
        eprintln!(
            "foreign peers: Y (term {y_epoch}) refused {} calls from X (term {x_epoch})",
            y.m(0).journal.foreign_peers_refused()
        );
        for m in xs {
            m.journal.shutdown().await;
        }
        y.close_all().await;
    })
    .await
    .expect("the test finishes in 2 minutes");
}
