//! `primacy journal` against three real `primacy master` processes on one
//! UFS folder with a real ZooKeeper election: `quorum info` lists the
//! election's queue (JSON parsed), `checkpoint` is written by a standby,
//! `quorum add|remove` answer "embedded journal only", `quorum elect` hands
//! primacy to the next contender in line and refuses (naming the queue) one
//! further back; then SIGTERM on the primary under a stream of writes hands
//! primacy to the next in line with no client error, every acknowledged
//! write present, and the longest client-visible pause printed.

mod server_support;

use std::time::Instant;

use election_zk::testkit::ZkServer;
use master::client::MasterClient;
use serde_json::Value;
use server_support::admin::journal_json;
use server_support::stream::{longest_call, longest_gap, Stream};
use server_support::*;

fn queue(json: &Value) -> Vec<String> {
    json["members"]
        .as_array()
        .unwrap_or_else(|| panic!("no members in {json}"))
        .iter()
        .map(|m| m["rpc_address"].as_str().expect("rpc_address").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ufs_zk_quorum_commands_and_graceful_handoff() {
    let zk = ZkServer::start();
    let mut cluster = Cluster::ufs_zookeeper(3, &zk.address());
    let p = cluster.start_caught_up().await;
    let client = MasterClient::from_config(&cluster.client_config()).expect("client");
    let stream = Stream::start(&client, "/flow", 2);
    stream.wait_more(20, BOUND).await;

    // quorum info: the election's queue, the primary first.
    let info = journal_json(&cluster, &["quorum", "info"]).await;
    assert_eq!(info.code, 0, "{}", info.stderr);
    assert_eq!(info.json["backend"], "UFS");
    assert_eq!(info.json["kind"], "election");
    let order = queue(&info.json);
    assert_eq!(order.len(), 3, "{}", info.json);
    assert_eq!(
        order[0],
        cluster.members[p].address(),
        "the primary leads the queue"
    );
    let first = &info.json["members"][0];
    assert_eq!(first["leader"], true, "{first}");
    assert_eq!(first["role"], "CONTENDER", "{first}");
    for m in info.json["members"].as_array().expect("members") {
        assert_eq!(m["reachable"], true, "{m}");
        assert!(m["applied"].as_u64().is_some(), "{m}");
    }

    // checkpoint: a standby writes it.
    let cp = journal_json(&cluster, &["checkpoint"]).await;
    assert_eq!(cp.code, 0, "{}", cp.stderr);
    assert_eq!(cp.json["role"], "STANDBY", "{}", cp.json);
    assert!(
        cp.json["seq"].as_u64().is_some_and(|s| s > 1),
        "{}",
        cp.json
    );

    // add / remove: embedded journal only.
    for op in ["add", "remove"] {
        let r = journal_json(&cluster, &["quorum", op, "--address", &order[1]]).await;
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert!(r.error().contains("embedded journal only"), "{}", r.error());
    }

    // elect: the one further back is refused, naming the queue; the next
    // in line takes over.
    let refused = journal_json(&cluster, &["quorum", "elect", "--address", &order[2]]).await;
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.error().contains("not next in line"),
        "{}",
        refused.error()
    );
    assert!(
        refused.error().contains(&order[1]),
        "names who would win: {}",
        refused.error()
    );
    assert_eq!(
        cluster.wait_primary(BOUND, "after a refused elect").await.0,
        p
    );
    let from = Instant::now();
    let moved = journal_json(&cluster, &["quorum", "elect", "--address", &order[1]]).await;
    assert_eq!(moved.code, 0, "{}", moved.stderr);
    assert_eq!(moved.json["primary_address"], order[1].as_str());
    let (now, _) = cluster.wait_primary(BOUND, "after elect").await;
    assert_eq!(cluster.members[now].address(), order[1]);
    let elect_window = (from, Instant::now());
    stream.wait_more(20, BOUND).await;
    let info = journal_json(&cluster, &["quorum", "info"]).await;
    assert_eq!(
        queue(&info.json),
        vec![order[1].clone(), order[2].clone(), order[0].clone()],
        "the old primary went to the back of the queue"
    );

    // SIGTERM on the primary: it hands primacy to the next in line.
    let (from, status, log) = cluster.stop(now);
    assert!(status.success(), "exit 0 on SIGTERM: {status}");
    assert!(log.contains("handed primacy to"), "its log:\n{log}");
    let (successor, _) = cluster.wait_primary(BOUND, "after SIGTERM").await;
    assert_eq!(cluster.members[successor].address(), order[2]);
    stream.wait_more(20, BOUND).await;
    let term_window = (from, Instant::now());
    cluster.start(now);
    cluster.wait_caught_up(now, BOUND).await;
    stream.wait_more(20, BOUND).await;

    let acks = stream.finish(BOUND).await;
    let tree = tokio::time::timeout(BOUND, list_tree(&client, "/flow"))
        .await
        .expect("listing within the bound");
    assert_all_present(&acks, &tree, "UFS+ZK elect and SIGTERM handoff");
    assert_eq!(tree.len(), acks.len(), "nothing but what was created");
    for (what, (a, b)) in [
        ("quorum elect", elect_window),
        ("SIGTERM primary", term_window),
    ] {
        eprintln!(
            "UFS+ZK {what}: longest client call {} ms, longest stretch without an \
             acknowledgement {} ms",
            longest_call(&acks, a, b).as_millis(),
            longest_gap(&acks, a, b).as_millis()
        );
    }
    eprintln!(
        "{} creates acknowledged, none lost, no client error",
        acks.len()
    );
}

/// On UFS + ZooKeeper a primary that resigned (`quorum elect`) rejoins as a
/// standby that keeps up and can be elected back, more than once, with
/// writes flowing and none lost. Then ZooKeeper stops: `quorum elect`
/// fails with a JSON error within the client's retry bound and changes
/// nothing; once ZooKeeper is back a primary serves again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resigned_primary_is_elected_back_and_zookeeper_down_is_refused() {
    let mut zk = ZkServer::start();
    let mut cluster = Cluster::ufs_zookeeper(2, &zk.address());
    cluster.format();
    cluster.start_all();
    let (p, _) = cluster.wait_primary(BOUND, "the first primary").await;
    let s = 1 - p;
    cluster.wait_caught_up(s, BOUND).await;
    let client = MasterClient::from_config(&cluster.client_config()).expect("client");
    let stream = Stream::start(&client, "/flow", 2);
    stream.wait_more(20, BOUND).await;
    for (round, to) in [s, p, s].into_iter().enumerate() {
        let address = cluster.members[to].address();
        let moved = journal_json(&cluster, &["quorum", "elect", "--address", &address]).await;
        assert_eq!(moved.code, 0, "round {round}: {}", moved.stderr);
        assert_eq!(moved.json["primary_address"], address.as_str());
        assert_eq!(cluster.wait_primary(BOUND, "after elect").await.0, to);
        let other = 1 - to;
        cluster.wait_caught_up(other, BOUND).await;
        let info = journal_json(&cluster, &["quorum", "info"]).await;
        assert_eq!(
            queue(&info.json),
            vec![address.clone(), cluster.members[other].address()],
            "round {round}: the resigned primary is next in line, listed once"
        );
        stream.wait_more(20, BOUND).await;
    }
    let acks = stream.finish(BOUND).await;
    let tree = tokio::time::timeout(BOUND, list_tree(&client, "/flow"))
        .await
        .expect("listing within the bound");
    assert_all_present(&acks, &tree, "elected back and forth");
    assert_eq!(tree.len(), acks.len(), "nothing but what was created");

    // ZooKeeper down: elect is refused (JSON), nobody serves meanwhile.
    zk.stop();
    let mut argv: Vec<String> = [
        "journal",
        "quorum",
        "elect",
        "--address",
        &cluster.members[p].address(),
        "--json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    argv.extend(cluster.client_flags());
    argv.extend(flags(&[(
        "alluxio.user.rpc.retry.max.duration",
        "5s".into(),
    )]));
    let refused = server_support::admin::journal_argv(&cluster, argv).await;
    assert!(
        refused.code == 1 || refused.code == 3,
        "refused or no primary: {}",
        refused.stderr
    );
    assert!(!refused.error().is_empty());
    zk.restart();
    let (now, _) = cluster.wait_primary(BOUND, "after ZooKeeper is back").await;
    client
        .mkdir("/after-zookeeper", false)
        .await
        .expect("a write once ZooKeeper is back");
    cluster.wait_caught_up(1 - now, BOUND).await;
}
