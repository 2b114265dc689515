//! With `require_auth`, the peer port refuses every request that does not
//! carry a token made with the cluster secret, before any handler runs: a
//! foreign process (no secret, a wrong secret, a replayed token) cannot
//! vote, append or join, and changes nothing (term, leader, log, counters).

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{entry, free_addresses, init_tracing, test_config, Group, Member};
use journal_core::JournalSystem;
use journal_raft::auth::{token, ClientAuth, ClusterSecret, Realm, METADATA_KEY};
use journal_raft::member_id_for;
use journal_raft::proto::raft_peer_client::RaftPeerClient;
use journal_raft::proto::{HelloRequest, MessageBatch};
use protobuf::Message as _;
use raft::eraftpb::{Entry, Message, MessageType};
use tonic::Code;

fn secret(text: &str) -> Arc<ClusterSecret> {
    Arc::new(ClusterSecret::from_bytes(text.as_bytes(), "test").unwrap())
}

const RIGHT: &str = "the-right-cluster-secret";
const WRONG: &str = "some-other-clusters-secret";

fn msg(t: MessageType, from: u64, to: u64, term: u64) -> Message {
    let mut m = Message::default();
    m.set_msg_type(t);
    m.from = from;
    m.to = to;
    m.term = term;
    m
}

/// Sends `m` as one batch of this group, with `token` (if any) as credentials.
async fn send(
    g: &Group,
    addr: &str,
    m: &Message,
    token: Option<String>,
) -> Result<(), tonic::Status> {
    let mut client = RaftPeerClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let batch = MessageBatch {
        from: m.from,
        messages: vec![Bytes::from(m.write_to_bytes().unwrap())],
        cluster_id: "raft-test".into(),
        membership: g.membership(),
        address: String::new(),
    };
    let mut request = tonic::Request::new(futures::stream::iter(vec![batch]));
    if let Some(t) = token {
        request
            .metadata_mut()
            .insert(METADATA_KEY, t.parse().unwrap());
    }
    client.send(request).await.map(|_| ())
}

async fn open_group(s: &Arc<ClusterSecret>) -> Group {
    let mut g = Group::new(3);
    for i in 0..3 {
        let mut cfg = g.config(i);
        cfg.secret = Some(s.clone());
        cfg.require_auth = true;
        g.open_with(i, cfg).await;
    }
    g
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_foreign_process_cannot_vote_or_append() {
    init_tracing();
    tokio::time::timeout(Duration::from_secs(120), async {
        let right = secret(RIGHT);
        let g = open_group(&right).await;
        let p = g.primary(Duration::from_secs(30)).await;
        for i in 0..5 {
            g.m(p)
                .journal
                .propose(entry("before", i, 20))
                .await
                .unwrap();
        }
        let leader = member_id_for(&g.addresses[p]);
        let f = (p + 1) % 3;
        let fid = member_id_for(&g.addresses[f]);
        let faddr = g.addresses[f].clone();
        let term = g.m(p).journal.status().epoch;
        let applied = g.m(p).journal.status().last_applied;
        g.wait_applied(f, applied, Duration::from_secs(30)).await;
        let entries_before = g.m(f).entries();
        let rejected_before = g.m(f).journal.counters().rejected_messages;

        // A vote request at a much higher term, as the other follower.
        let other = member_id_for(&g.addresses[(p + 2) % 3]);
        let mut vote = msg(MessageType::MsgRequestVote, other, fid, term + 10);
        vote.index = 1 << 30;
        vote.log_term = term + 9;
        // An append from the leader's id, at a higher term, with a forged entry.
        let mut app = msg(MessageType::MsgAppend, leader, fid, term + 5);
        app.index = applied;
        app.log_term = term;
        app.entries = vec![Entry {
            index: applied + 1,
            term: term + 5,
            data: Bytes::from_static(b"forged"),
            ..Default::default()
        }]
        .into();
        app.commit = applied + 1;
        // A heartbeat from an unknown id: harmless, but validation would count it.
        let unknown = msg(MessageType::MsgHeartbeat, 0xdead_beef, fid, term);

        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let wrong = secret(WRONG);
        let attempts: Vec<(&str, Option<String>)> = vec![
            ("no credentials", None),
            ("a wrong secret", Some(token::make(&wrong, Realm::Peer))),
            ("an RPC-port token", Some(token::make(&right, Realm::Rpc))),
            ("garbage", Some("v1.peer.1.2.3".into())),
            (
                "a token ten minutes old",
                Some(token::make_at(
                    &right,
                    Realm::Peer,
                    now - 600_000,
                    "00112233445566778899aabbccddeeff",
                )),
            ),
        ];
        for (what, tok) in &attempts {
            for m in [&vote, &app, &unknown] {
                let r = send(&g, &faddr, m, tok.clone()).await;
                let status = r.expect_err(what);
                assert_eq!(status.code(), Code::Unauthenticated, "{what}: {status:?}");
                assert!(
                    status
                        .message()
                        .contains("primacy.security.cluster.secret.file"),
                    "{what}: the refusal says what to set: {}",
                    status.message()
                );
            }
            // The handshake too (a joining member's first call).
            let mut c = RaftPeerClient::connect(format!("http://{faddr}"))
                .await
                .unwrap();
            let mut hello = tonic::Request::new(HelloRequest {
                cluster_id: "raft-test".into(),
                membership: g.membership(),
                from: 4242,
                address: "127.0.0.1:1".into(),
                incarnation: 1,
                founding: false,
            });
            if let Some(t) = tok {
                hello
                    .metadata_mut()
                    .insert(METADATA_KEY, t.parse().unwrap());
            }
            assert_eq!(
                c.hello(hello).await.unwrap_err().code(),
                Code::Unauthenticated,
                "{what}"
            );
        }

        // A token made with the right secret is accepted once; its replay is refused.
        let good = token::make(&right, Realm::Peer);
        send(&g, &faddr, &unknown, Some(good.clone()))
            .await
            .expect("a valid token opens the peer port");
        let replay = send(&g, &faddr, &unknown, Some(good)).await.unwrap_err();
        assert_eq!(replay.code(), Code::Unauthenticated);
        assert!(replay.message().contains("replay"), "{}", replay.message());

        // Nothing changed: the refused messages never reached validation
        // (only the one authenticated heartbeat was counted), and term,
        // leader and log are as they were.
        assert_eq!(
            g.m(f).journal.counters().rejected_messages,
            rejected_before + 1,
            "only the authenticated message reached the member"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        for i in 0..3 {
            let st = g.m(i).journal.status();
            assert_eq!(st.epoch, term, "member {i}: term changed");
            assert_eq!(
                g.m(i).journal.leader_id(),
                leader,
                "member {i}: leader changed"
            );
        }
        assert_eq!(
            g.m(f).entries(),
            entries_before,
            "the follower's state changed"
        );
        assert!(!g
            .m(f)
            .entries()
            .iter()
            .any(|(_, e)| e.as_ref() == b"forged"));

        // The group still serves.
        g.m(p).journal.propose(entry("after", 0, 20)).await.unwrap();
        let mut g = g;
        g.close_all().await;
    })
    .await
    .expect("test finishes in 2 minutes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_with_another_secret_cannot_join() {
    init_tracing();
    tokio::time::timeout(Duration::from_secs(120), async {
        let right = secret(RIGHT);
        let mut g = open_group(&right).await;
        let p = g.primary(Duration::from_secs(30)).await;
        g.m(p)
            .journal
            .propose(entry("before", 0, 20))
            .await
            .unwrap();
        let term = g.m(p).journal.status().epoch;
        let leader = g.m(p).journal.leader_id();
        let members_before = g.m(p).journal.status().members.len();

        // A stranger, formatted JOIN, holding another cluster's secret.
        let addr = free_addresses(1).remove(0);
        let mut cfg = test_config(&addr, &g.addresses, &g.root.path().join("stranger"));
        cfg.secret = Some(secret(WRONG));
        cfg.require_auth = true;
        let stranger = Member::open(cfg).await.unwrap();

        let err = g.m(p).journal.add_member("", &addr).await.unwrap_err();
        assert!(
            err.to_string().contains("requires authentication"),
            "the refusal names the cause: {err}"
        );
        // Even with an explicit id (no handshake), the stranger never
        // catches up or votes: the group's term and leader stay.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let st = g.m(p).journal.status();
        assert_eq!(st.members.len(), members_before, "{:?}", st.members);
        for i in 0..3 {
            assert_eq!(
                g.m(i).journal.status().epoch,
                term,
                "member {i}: term changed"
            );
            assert_eq!(g.m(i).journal.leader_id(), leader);
        }
        assert!(
            stranger.entries().is_empty(),
            "the stranger received entries"
        );
        g.m(p).journal.propose(entry("after", 0, 20)).await.unwrap();
        stranger.journal.shutdown().await;

        // The same member with the right secret joins.
        let addr2 = free_addresses(1).remove(0);
        let mut cfg = test_config(&addr2, &g.addresses, &g.root.path().join("friend"));
        cfg.secret = Some(right.clone());
        cfg.require_auth = true;
        let friend = Member::open(cfg).await.unwrap();
        g.m(p)
            .journal
            .add_member("", &addr2)
            .await
            .expect("the right secret joins");
        let applied = g.m(p).journal.status().last_applied;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while friend.journal.status().last_applied < applied {
            assert!(
                std::time::Instant::now() < deadline,
                "the new member did not catch up"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        friend.journal.shutdown().await;
        g.close_all().await;
    })
    .await
    .expect("test finishes in 2 minutes");
}

#[tokio::test]
async fn require_auth_without_a_secret_is_a_config_error() {
    let mut cfg = test_config(
        "127.0.0.1:1",
        &["127.0.0.1:1".into()],
        std::path::Path::new("/tmp/x"),
    );
    cfg.require_auth = true;
    let e = cfg.validate().unwrap_err().to_string();
    assert!(
        e.contains("primacy.security.authentication.peer.enabled"),
        "{e}"
    );
    // Credentials are sent whenever a secret is set, even if this member
    // does not require them itself (rolling enablement).
    assert!(ClientAuth::new(Some(secret(RIGHT)), Realm::Peer).is_set());
}
