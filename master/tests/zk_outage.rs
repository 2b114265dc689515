//! ZooKeeper away for longer than the session timeout, then back on the
//! same port and data: two real `primacy master` processes on one UFS
//! folder stop acknowledging writes (clients get a retryable error, not a
//! hang), stay up, rejoin the election by themselves once ZooKeeper
//! returns, and a primary serves again with every acknowledged create.

mod server_support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use election_zk::testkit::ZkServer;
use master::client::MasterClient;
use master::config::MasterConfig;
use server_support::*;

/// A client that gives up after `budget`, so a refused write is seen as an
/// error instead of being retried until ZooKeeper returns.
fn impatient_client(cluster: &Cluster, budget: &str) -> MasterClient {
    let pairs = vec![
        ("alluxio.user.rpc.retry.max.duration", budget.to_string()),
        ("alluxio.user.rpc.retry.base.sleep", "20ms".to_string()),
        ("alluxio.user.rpc.retry.max.sleep", "200ms".to_string()),
        ("alluxio.master.rpc.addresses", cluster.rpc_addresses()),
    ];
    MasterClient::from_config(&MasterConfig::from_pairs(&pairs).expect("client configuration"))
        .expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zookeeper_away_past_the_session_timeout_then_back_loses_nothing() {
    let mut zk = ZkServer::start();
    let mut cluster = Cluster::ufs_zookeeper(2, &zk.address());
    cluster.start_caught_up().await;
    let client = MasterClient::from_config(&cluster.client_config()).expect("client");
    let mut acked: BTreeSet<String> = BTreeSet::new();
    for i in 0..10 {
        let path = format!("/before-{i}");
        client.create_file(&path).await.expect("create before");
        acked.insert(path);
    }

    zk.stop();
    // Four session timeouts (2 s each in these clusters): every session
    // expires while ZooKeeper is away.
    let short = impatient_client(&cluster, "1s");
    let outage = Duration::from_secs(8);
    let started = Instant::now();
    let mut refused = 0;
    let mut last_error = String::new();
    let mut n = 0;
    while started.elapsed() < outage {
        let path = format!("/during-{n}");
        n += 1;
        let attempt = tokio::time::timeout(Duration::from_secs(20), short.create_file(&path))
            .await
            .expect("a write during the outage is answered, not left hanging");
        match attempt {
            Ok(_) => {
                acked.insert(path);
            }
            Err(e) => {
                refused += 1;
                last_error = e.to_string();
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        refused > 0,
        "no write was refused while ZooKeeper was away for {outage:?}; logs:\n{}",
        cluster.logs()
    );
    println!("{refused} writes refused during the outage; last error: {last_error}");

    zk.restart();
    let (p, _) = cluster
        .wait_primary(BOUND, "a primary after ZooKeeper returned")
        .await;
    println!("primary after the outage: master {p}");
    for i in 0..10 {
        let path = format!("/after-{i}");
        client
            .create_file(&path)
            .await
            .unwrap_or_else(|e| panic!("create {path} after the outage: {e}\n{}", cluster.logs()));
        acked.insert(path);
    }
    let tree = list_tree(&client, "/").await;
    let missing: Vec<&String> = acked.iter().filter(|p| !tree.contains(*p)).collect();
    assert!(missing.is_empty(), "acknowledged creates lost: {missing:?}");
    // `wait_primary` panics if a master exited: none did during the outage.
}
