//! Retries: the same (client id, request seq) on every attempt of one
//! mutation, so a mutation whose answer was lost is applied once; redirects
//! after a failover between calls; giving up after the retry duration with
//! what was tried; no retry for errors retrying cannot fix.

mod fake_master;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use fake_master::{dead_address, quick_options, FakeMaster, Role};
use journal_core::testkit::TcpProxy;
use master::client::{ClientError, Discovery, MasterClient, RetryStats};
use master::meta::ErrorCode;

fn client(addrs: Vec<String>, max: Duration) -> MasterClient {
    MasterClient::new(Discovery::Masters(addrs), quick_options(max))
}

#[tokio::test]
async fn a_lost_answer_is_retried_with_the_same_request_id_and_applied_once() {
    let m = FakeMaster::start(Role::Primary).await;
    let c = client(vec![m.address()], Duration::from_secs(20));
    m.state.fail_after_apply.store(1, Ordering::SeqCst);
    // Not recursive: a second application would be refused ALREADY_EXISTS.
    let info = c.mkdir("/once", false).await.unwrap();
    assert_eq!(info.path, "/once");
    let ids = m.state.mutation_ids();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert_eq!(ids[0], ids[1]);
    assert_eq!(ids[0].0, c.client_id().to_vec());
    let one = RetryStats {
        retried_calls: 1,
        retries: 1,
    };
    assert_eq!(c.retry_stats(), one, "the lost answer cost one retry");

    // The next mutation takes the next seq, and needs no retry.
    c.create_file("/once/f").await.unwrap();
    let ids = m.state.mutation_ids();
    assert_eq!(ids[2].0, ids[0].0);
    assert!(ids[2].1 > ids[0].1);
    assert_eq!(c.clone().retry_stats(), one, "clones share the counters");
}

#[tokio::test]
async fn a_connection_cut_after_apply_is_retried_with_the_same_request_id() {
    let m = FakeMaster::start(Role::Primary).await;
    let proxy = TcpProxy::start(m.addr).await.unwrap();
    let c = client(
        vec![proxy.local_addr().to_string()],
        Duration::from_secs(20),
    );
    c.mkdir("/warm", false).await.unwrap();
    m.state.stall_after_apply.store(1, Ordering::SeqCst);
    let call = tokio::spawn({
        let c = c.clone();
        async move { c.create_file("/warm/f").await }
    });
    m.state.stalled.notified().await;
    // The primary applied but its answer is still pending: cut the
    // connection (as a crash of the path between them would), then let new
    // connections through again.
    proxy.block();
    tokio::time::sleep(Duration::from_millis(50)).await;
    proxy.unblock();
    let info = tokio::time::timeout(Duration::from_secs(30), call)
        .await
        .expect("the call finished")
        .unwrap()
        .unwrap();
    assert_eq!(info.path, "/warm/f");
    m.state.release.send_replace(true);
    let ids = m.state.mutation_ids();
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert_eq!(ids[1], ids[2]);
}

#[tokio::test]
async fn a_failover_between_calls_is_followed_through_the_redirect() {
    let a = FakeMaster::start(Role::Primary).await;
    let b = FakeMaster::start(Role::Standby(Some(a.address()))).await;
    let c = client(vec![a.address(), b.address()], Duration::from_secs(20));
    c.mkdir("/one", false).await.unwrap();
    assert_eq!(c.known_primary(), Some(a.address()));
    a.state.set_role(Role::Standby(Some(b.address())));
    b.state.set_role(Role::Primary);
    c.mkdir("/two", false).await.unwrap();
    assert_eq!(c.known_primary(), Some(b.address()));
    assert_eq!(a.state.mutation_ids().len(), 1);
    assert_eq!(b.state.mutation_ids().len(), 1);
}

#[tokio::test]
async fn no_primary_gives_up_after_the_retry_duration_listing_what_was_tried() {
    let s1 = FakeMaster::start(Role::Standby(None)).await;
    let dead = dead_address();
    let c = client(vec![s1.address(), dead.clone()], Duration::from_millis(400));
    let started = Instant::now();
    match c.mkdir("/x", false).await {
        Err(ClientError::Unreachable { op, tried, elapsed }) => {
            assert_eq!(op, "mkdir /x");
            assert!(elapsed >= Duration::from_millis(400), "{elapsed:?}");
            assert!(
                tried.iter().any(|t| t.starts_with(&s1.address())),
                "{tried:?}"
            );
            assert!(tried.iter().any(|t| t.starts_with(&dead)), "{tried:?}");
        }
        other => panic!("{other:?}"),
    }
    // Bounded: the deadline, plus at most one connect timeout in flight.
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn standbys_redirecting_to_each_other_do_not_loop_forever() {
    let a = FakeMaster::start(Role::Standby(None)).await;
    let b = FakeMaster::start(Role::Standby(Some(a.address()))).await;
    a.state.set_role(Role::Standby(Some(b.address())));
    // GetMasterInfo names the other as primary, Mutate redirects there.
    let c = client(vec![a.address()], Duration::from_millis(500));
    assert!(matches!(
        c.delete("/x", false).await,
        Err(ClientError::Unreachable { .. })
    ));
}

#[tokio::test]
async fn refusals_and_bad_arguments_are_not_retried() {
    let m = FakeMaster::start(Role::Primary).await;
    let c = client(vec![m.address()], Duration::from_secs(20));
    match c.delete("/missing", false).await {
        Err(ClientError::Refused(e)) => {
            assert_eq!(e.code, ErrorCode::NotFound);
            assert!(e.message.contains("/missing"), "{}", e.message);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(m.state.mutation_ids().len(), 1);
    // A malformed path is refused before any I/O.
    assert!(matches!(
        c.mkdir("relative", false).await,
        Err(ClientError::InvalidArgument(_))
    ));
    assert!(matches!(
        c.rename("/a/", "/b").await,
        Err(ClientError::InvalidArgument(_))
    ));
    assert_eq!(m.state.mutation_ids().len(), 1);
}

#[tokio::test]
async fn every_operation_round_trips() {
    let m = FakeMaster::start(Role::Primary).await;
    let c = client(vec![m.address()], Duration::from_secs(20));
    c.mkdir("/d/e", true).await.unwrap();
    c.create_file("/d/f").await.unwrap();
    let blocks = vec![
        master::client::BlockInfo {
            block_id: 7,
            length: 10,
        },
        master::client::BlockInfo {
            block_id: 9,
            length: 5,
        },
    ];
    let f = c.complete_file("/d/f", blocks).await.unwrap();
    assert!(f.completed);
    assert_eq!(f.length, 15);
    let moved = c.rename("/d/f", "/d/g").await.unwrap();
    assert_eq!(moved.path, "/d/g");
    let names: Vec<String> = c
        .list_status("/d")
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(names, ["e", "g"]);
    assert_eq!(c.delete("/d", true).await.unwrap(), 3);
    assert!(matches!(
        c.get_status("/d").await,
        Err(ClientError::Refused(_))
    ));
}

#[tokio::test]
async fn concurrent_mutations_of_clones_never_share_a_client_id() {
    // The state machine keeps one result per client id and refuses a lower
    // seq than the last applied one (STALE_REQUEST), so two mutations in
    // flight under one id could overtake each other and the first would be
    // refused without being applied. Each in-flight mutation needs its own.
    let m = FakeMaster::start(Role::Primary).await;
    let c = client(vec![m.address()], Duration::from_secs(20));
    m.state.stall_after_apply.store(1, Ordering::SeqCst);
    let outstanding = tokio::spawn({
        let c = c.clone();
        async move { c.mkdir("/a", false).await }
    });
    m.state.stalled.notified().await;
    c.mkdir("/b", false).await.unwrap();
    m.state.release.send_replace(true);
    outstanding.await.unwrap().unwrap();
    // Both ended: the next mutations reuse those ids with higher seqs.
    c.mkdir("/c", false).await.unwrap();
    c.mkdir("/d", false).await.unwrap();
    let ids = m.state.mutation_ids();
    assert_eq!(ids.len(), 4, "{ids:?}");
    assert_ne!(ids[0].0, ids[1].0, "in flight together: {ids:?}");
    for later in &ids[2..] {
        let earlier = ids[..2].iter().find(|(id, _)| *id == later.0);
        let (_, seq) = earlier.expect("an id reused once idle");
        assert!(later.1 > *seq, "{ids:?}");
    }
    assert_eq!(ids[2].0, ids[3].0, "sequential use keeps to one id");
    assert!(ids[3].1 > ids[2].1, "{ids:?}");
}
