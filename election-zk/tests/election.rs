//! ZkElection and LeaderDiscovery against a real ZooKeeper (Debian package).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{expire_session, init_tracing, leaders, wait_states, zk_config, SESSION};
use election_zk::testkit::{free_port, ZkEnsemble, ZkServer};
use election_zk::{ConnectionErrorPolicy, LeaderDiscovery, ZkElection};
use journal_core::testkit::TcpProxy;
use journal_core::{ElectionState, LeaderElection};

const BOUND: Duration = Duration::from_secs(20);

async fn contenders(address: &str, root: &str, n: usize) -> Vec<Arc<ZkElection>> {
    let mut out = Vec::new();
    for i in 0..n {
        let e = Arc::new(ZkElection::new(zk_config(address, root)).unwrap());
        e.campaign(&format!("master-{i}:19998")).await.unwrap();
        // Join in order so the queue is deterministic.
        wait_states("join", std::slice::from_ref(&e), BOUND, |s| {
            !matches!(s[0], ElectionState::Follower { leader: None }) || i > 0
        })
        .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        out.push(e);
    }
    out
}

fn epoch_of(s: &ElectionState) -> u64 {
    match s {
        ElectionState::Leader { epoch } | ElectionState::Suspended { epoch } => *epoch,
        _ => 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_at_a_time_and_failover_on_close() {
    init_tracing();
    let zk = ZkServer::start();
    let elections = contenders(&zk.address(), "/t1", 3).await;
    // A watcher task samples the states and fails if two lead at once.
    let sampler = {
        let elections = elections.clone();
        tokio::spawn(async move {
            let mut max = 0;
            for _ in 0..300 {
                let states: Vec<_> = elections
                    .iter()
                    .map(|e| e.watch().borrow().clone())
                    .collect();
                max = max.max(leaders(&states).len());
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            max
        })
    };
    wait_states("a leader", &elections, BOUND, |s| leaders(s).len() == 1).await;
    let first = leaders(
        &elections
            .iter()
            .map(|e| e.watch().borrow().clone())
            .collect::<Vec<_>>(),
    )[0];
    assert_eq!(first, 0, "the first to join leads");
    let epoch1 = epoch_of(&elections[0].watch().borrow());
    elections[0].announce_serving(epoch1).await.unwrap();
    assert_eq!(
        elections[1].leader_address().await.unwrap().as_deref(),
        Some("master-0:19998")
    );

    let started = Instant::now();
    elections[0].close().await;
    let took = wait_states(
        "failover",
        &elections[1..],
        SESSION + Duration::from_secs(1),
        |s| leaders(s).len() == 1,
    )
    .await;
    println!(
        "failover after close: new leader in {:?}",
        started.elapsed().max(took)
    );
    let epoch2 = epoch_of(&elections[1].watch().borrow());
    assert!(epoch2 > epoch1, "epochs grow: {epoch1} then {epoch2}");
    assert_eq!(*elections[0].watch().borrow(), ElectionState::Closed);
    // The closed leader's published address is gone with its session.
    assert_eq!(elections[1].leader_address().await.unwrap(), None);
    elections[1].announce_serving(epoch2).await.unwrap();
    assert_eq!(
        elections[2].leader_address().await.unwrap().as_deref(),
        Some("master-1:19998")
    );
    assert!(sampler.await.unwrap() <= 1, "two contenders led at once");
    for e in &elections[1..] {
        e.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_session_ends_leadership_and_rejoins_as_follower() {
    init_tracing();
    let zk = ZkServer::start();
    let elections = contenders(&zk.address(), "/t2", 2).await;
    wait_states("leader 0", &elections, BOUND, |s| leaders(s) == vec![0]).await;
    let old_epoch = epoch_of(&elections[0].watch().borrow());
    let mut watch0 = elections[0].watch();
    let started = Instant::now();
    expire_session(&zk.address(), &elections[0]).await;
    // The old leader leaves Leader, the other one takes over.
    let took = wait_states(
        "takeover",
        &elections,
        SESSION + Duration::from_secs(1),
        |s| leaders(s) == vec![1],
    )
    .await;
    println!(
        "takeover after forced expiry: {:?}",
        started.elapsed().max(took)
    );
    assert!(epoch_of(&elections[1].watch().borrow()) > old_epoch);
    // The old leader rejoined with a new session, as a follower.
    tokio::time::timeout(
        BOUND,
        watch0.wait_for(|s| matches!(s, ElectionState::Follower { .. })),
    )
    .await
    .unwrap()
    .unwrap();
    elections[1].close().await;
    wait_states("old leader back", &elections[..1], BOUND, |s| {
        leaders(s) == vec![0]
    })
    .await;
    assert!(epoch_of(&elections[0].watch().borrow()) > old_epoch);
    elections[0].close().await;
}

async fn cut_off_leader(
    policy: ConnectionErrorPolicy,
    heal_before_expiry: bool,
) -> Vec<ElectionState> {
    let zk = ZkServer::start();
    let proxy = TcpProxy::start(format!("127.0.0.1:{}", zk.port()).parse().unwrap())
        .await
        .unwrap();
    let root = format!("/policy-{policy:?}-{heal_before_expiry}");
    let mut cfg = zk_config(&proxy.local_addr().to_string(), &root);
    cfg.policy = policy;
    let leader = Arc::new(ZkElection::new(cfg).unwrap());
    leader.campaign("cut:19998").await.unwrap();
    let follower = Arc::new(ZkElection::new(zk_config(&zk.address(), &root)).unwrap());
    wait_states("leader", std::slice::from_ref(&leader), BOUND, |s| {
        leaders(s) == vec![0]
    })
    .await;
    follower.campaign("other:19998").await.unwrap();
    let mut seen = vec![leader.watch().borrow().clone()];
    let mut w = leader.watch();
    proxy.block();
    let first = tokio::time::timeout(BOUND, w.changed()).await;
    assert!(first.is_ok(), "the cut-off leader did not react");
    seen.push(w.borrow_and_update().clone());
    if heal_before_expiry {
        proxy.unblock();
        let back = tokio::time::timeout(
            BOUND,
            w.wait_for(|s| matches!(s, ElectionState::Leader { .. })),
        )
        .await
        .is_ok();
        assert!(back, "leadership did not resume on the same session");
        seen.push(w.borrow_and_update().clone());
        assert!(!matches!(
            *follower.watch().borrow(),
            ElectionState::Leader { .. }
        ));
    } else {
        let pair = [leader.clone(), follower.clone()];
        wait_states("the other takes over", &pair, BOUND, |s| {
            leaders(s) == vec![1]
        })
        .await;
        seen.push(leader.watch().borrow().clone());
        proxy.unblock();
    }
    leader.close().await;
    follower.close().await;
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_loss_policies() {
    init_tracing();
    // STANDARD: leadership ends at the disconnect.
    let seen = cut_off_leader(ConnectionErrorPolicy::Standard, false).await;
    assert!(
        matches!(seen[1], ElectionState::Follower { .. }),
        "{seen:?}"
    );
    // SESSION: suspended at the disconnect, ended at expiry.
    let seen = cut_off_leader(ConnectionErrorPolicy::Session, false).await;
    assert!(
        matches!(seen[1], ElectionState::Suspended { .. }),
        "{seen:?}"
    );
    assert!(!matches!(seen[2], ElectionState::Leader { .. }), "{seen:?}");
    // SESSION, healed before the session expires: same epoch again.
    let seen = cut_off_leader(ConnectionErrorPolicy::Session, true).await;
    assert!(
        matches!(seen[1], ElectionState::Suspended { .. }),
        "{seen:?}"
    );
    assert_eq!(epoch_of(&seen[2]), epoch_of(&seen[0]), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zookeeper_down_at_start_is_waited_for() {
    init_tracing();
    let port = free_port();
    let e = Arc::new(ZkElection::new(zk_config(&format!("127.0.0.1:{port}"), "/late")).unwrap());
    e.campaign("late:19998").await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        *e.watch().borrow(),
        ElectionState::Follower { leader: None }
    );
    assert!(e.leader_address().await.is_err(), "no session yet");
    // Start a server on exactly that port: the election proceeds by itself.
    let zk = ZkServer::start_on(port);
    wait_states(
        "leader once ZooKeeper is up",
        std::slice::from_ref(&e),
        BOUND,
        |s| leaders(s) == vec![0],
    )
    .await;
    e.close().await;
    drop(zk);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_restart_keeps_a_single_leader() {
    init_tracing();
    let mut zk = ZkServer::start();
    let elections = contenders(&zk.address(), "/restart", 3).await;
    wait_states("leader", &elections, BOUND, |s| leaders(s).len() == 1).await;
    zk.stop();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let states: Vec<_> = elections
        .iter()
        .map(|e| e.watch().borrow().clone())
        .collect();
    assert!(
        leaders(&states).is_empty(),
        "someone still leads without ZooKeeper: {states:?}"
    );
    zk.restart();
    wait_states("one leader after the restart", &elections, BOUND, |s| {
        leaders(s).len() == 1
    })
    .await;
    for e in &elections {
        e.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensemble_member_restart_keeps_a_single_leader() {
    init_tracing();
    let mut zk = ZkEnsemble::start(3);
    let elections = contenders(&zk.address(), "/ens", 3).await;
    wait_states("leader", &elections, BOUND, |s| leaders(s).len() == 1).await;
    let before: Vec<_> = elections
        .iter()
        .map(|e| e.watch().borrow().clone())
        .collect();
    for i in 0..3 {
        zk.stop(i);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let states: Vec<_> = elections
            .iter()
            .map(|e| e.watch().borrow().clone())
            .collect();
        assert!(leaders(&states).len() <= 1, "split brain: {states:?}");
        zk.restart(i);
        wait_states("one leader", &elections, BOUND, |s| leaders(s).len() == 1).await;
    }
    let after: Vec<_> = elections
        .iter()
        .map(|e| e.watch().borrow().clone())
        .collect();
    println!("ensemble restarts: before {before:?}, after {after:?}");
    for e in &elections {
        e.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_follows_two_failovers() {
    init_tracing();
    let zk = ZkServer::start();
    let elections = contenders(&zk.address(), "/disc", 3).await;
    let discovery = LeaderDiscovery::start(&zk.address(), "/disc/leader", SESSION).unwrap();
    let mut previous: Option<String> = None;
    for round in 0..3 {
        wait_states("a leader", &elections[round..], BOUND, |s| {
            leaders(s).len() == 1
        })
        .await;
        let e = &elections[round];
        let epoch = epoch_of(&e.watch().borrow());
        assert!(epoch > 0, "round {round}: contender {round} should lead");
        e.announce_serving(epoch).await.unwrap();
        let seen = discovery
            .wait_for_leader(previous.as_deref(), BOUND)
            .await
            .unwrap();
        assert_eq!(seen, format!("master-{round}:19998"));
        previous = Some(seen);
        e.close().await;
    }
    discovery.close().await;
}

/// A follower that joined before the leader announced itself learns the
/// serving primary's address when it is published, without waiting for its
/// own position to change (its redirects would otherwise name nobody).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_learns_a_primary_that_announces_after_it_joined() {
    init_tracing();
    let zk = ZkServer::start();
    let elections = contenders(&zk.address(), "/late-announce", 3).await;
    wait_states("a leader", &elections, BOUND, |s| leaders(s).len() == 1).await;
    let states: Vec<_> = elections
        .iter()
        .map(|e| e.watch().borrow().clone())
        .collect();
    let leader = leaders(&states)[0];
    // Nobody serves yet: every follower knows no primary.
    for (i, s) in states.iter().enumerate() {
        if i != leader {
            assert_eq!(*s, ElectionState::Follower { leader: None }, "follower {i}");
        }
    }
    let epoch = epoch_of(&states[leader]);
    elections[leader].announce_serving(epoch).await.unwrap();
    let address = format!("master-{leader}:19998");
    wait_states("followers learn the primary", &elections, BOUND, |s| {
        s.iter().enumerate().all(|(i, st)| {
            i == leader
                || *st
                    == ElectionState::Follower {
                        leader: Some(address.clone()),
                    }
        })
    })
    .await;
    // Withdrawn: they forget it again.
    elections[leader].withdraw_serving().await.unwrap();
    wait_states("followers forget the primary", &elections, BOUND, |s| {
        s.iter()
            .enumerate()
            .all(|(i, st)| i == leader || *st == ElectionState::Follower { leader: None })
    })
    .await;
    for e in &elections {
        e.close().await;
    }
}

/// A leader resigns (`quorum elect` on the UFS journal) while it is cut
/// off from ZooKeeper, and the connection heals before its session expires:
/// the resignation's deletes must still happen (the old node left at the
/// head of the queue would keep everyone from leading while that session
/// lives), so some contender leads and the resigned one is listed at most
/// once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resignation_cut_off_from_zookeeper_leaves_no_stale_node() {
    init_tracing();
    let zk = ZkServer::start();
    let proxy = TcpProxy::start(format!("127.0.0.1:{}", zk.port()).parse().unwrap())
        .await
        .unwrap();
    let root = "/resign-cut";
    let mut cfg = zk_config(&proxy.local_addr().to_string(), root);
    // Long enough that the session surely outlives the cut.
    cfg.session_timeout = Duration::from_secs(6);
    let first = Arc::new(ZkElection::new(cfg).unwrap());
    first.campaign("cut:19998").await.unwrap();
    wait_states("first leads", std::slice::from_ref(&first), BOUND, |s| {
        leaders(s) == vec![0]
    })
    .await;
    let second = Arc::new(ZkElection::new(zk_config(&zk.address(), root)).unwrap());
    second.campaign("other:19998").await.unwrap();
    let pair = [first.clone(), second.clone()];
    let mut w = first.watch();
    proxy.block();
    let reacted = tokio::time::timeout(BOUND, w.wait_for(|s| s.leader_epoch().is_none()))
        .await
        .map(|_| ());
    assert!(reacted.is_ok(), "the cut-off leader did not react");
    let resigning = {
        let first = first.clone();
        tokio::spawn(async move { first.resign().await })
    };
    // Heal while the resignation is still trying to delete its nodes (the
    // session lives on).
    tokio::time::sleep(Duration::from_millis(700)).await;
    proxy.unblock();
    let resigned = tokio::time::timeout(BOUND, resigning).await;
    assert!(resigned.is_ok(), "resign is answered");
    wait_states("a leader after the cut", &pair, BOUND, |s| {
        leaders(s).len() == 1
    })
    .await;
    let queue = second.contenders().await.expect("contenders");
    let own = queue.iter().filter(|c| c.address == "cut:19998").count();
    assert!(own <= 1, "the resigned contender is listed once: {queue:?}");
    first.close().await;
    second.close().await;
}
