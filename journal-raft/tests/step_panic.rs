//! Defence in depth behind the inbound checks: if raft-rs panics inside
//! `step` anyway, the member drops that message, rebuilds its Raft node from
//! storage and keeps serving. The checks are turned off (process-wide, which
//! is why this test has its own binary) to reach raft-rs's panic.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{assert_acked_present, entry, init_tracing, Group};
use journal_core::testkit::TestMachine;
use journal_core::JournalSystem;
use journal_raft::member_id_for;
use journal_raft::proto::raft_peer_client::RaftPeerClient;
use journal_raft::proto::MessageBatch;
use protobuf::Message as _;
use raft::eraftpb::{Message, MessageType};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_panic_inside_raft_step_does_not_stop_the_member() {
    init_tracing();
    journal_raft::validate::set_inbound_checks(false);
    tokio::time::timeout(Duration::from_secs(120), async {
        let mut g = Group::new(3);
        for i in 0..3 {
            g.open(i).await;
        }
        let p = g.primary(Duration::from_secs(30)).await;
        let mut acked = Vec::new();
        for i in 0..10 {
            let e = entry("before", i, 50);
            acked.push((e.clone(), g.m(p).journal.propose(e).await.unwrap()));
        }
        let leader = member_id_for(&g.addresses[p]);
        let term = g.m(p).journal.status().epoch;
        let f = (p + 1) % 3;
        // The target must be a member with the log first: a founder still
        // deciding drops every message without stepping it (no panic to
        // catch), and a quorum of two acknowledges without it.
        let before = TestMachine::output_seq(&acked.last().unwrap().1).unwrap();
        g.wait_applied(f, before, Duration::from_secs(30)).await;
        let mut hb = Message::default();
        hb.set_msg_type(MessageType::MsgHeartbeat);
        hb.from = leader;
        hb.to = member_id_for(&g.addresses[f]);
        hb.term = term;
        hb.commit = 1 << 40;
        let batch = MessageBatch {
            from: leader,
            messages: vec![Bytes::from(hb.write_to_bytes().unwrap())],
            cluster_id: "raft-test".into(),
            membership: g.membership(),
            address: String::new(),
        };
        RaftPeerClient::connect(format!("http://{}", g.addresses[f]))
            .await
            .unwrap()
            .send(futures::stream::iter(vec![batch]))
            .await
            .unwrap();
        journal_core::testkit::wait_until(
            "the panic to be caught",
            Duration::from_secs(10),
            || g.m(f).journal.counters().step_panics >= 1,
        )
        .await;
        for i in 0..5 {
            let e = entry("after", i, 50);
            acked.push((e.clone(), g.m(p).journal.propose(e).await.unwrap()));
        }
        let last = TestMachine::output_seq(&acked.last().unwrap().1).unwrap();
        g.wait_applied(f, last, Duration::from_secs(30)).await;
        assert_acked_present(&g.m(f).entries(), &acked, "the member that panicked");
        assert_eq!(g.m(f).journal.counters().step_panics, 1);
        g.close_all().await;
    })
    .await
    .expect("test finishes in 2 minutes");
}
