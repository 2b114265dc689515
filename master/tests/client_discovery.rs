//! Finding the primary: through an address list (a standby first, a dead
//! address first, a deposed primary that still claims primacy), and through
//! ZooKeeper's leader path (a real ZooKeeper, the node written the way
//! election-zk's election publishes it).

mod fake_master;

use std::time::Duration;

use fake_master::{dead_address, quick_options, FakeMaster, Role};
use master::client::{ClientError, Discovery, MasterClient};
use zookeeper_client as zk;

fn client(addrs: Vec<String>) -> MasterClient {
    MasterClient::new(
        Discovery::Masters(addrs),
        quick_options(Duration::from_secs(20)),
    )
}

#[tokio::test]
async fn a_standby_first_in_the_list_leads_to_the_primary() {
    let primary = FakeMaster::start(Role::Primary).await;
    let standby = FakeMaster::start(Role::Standby(Some(primary.address()))).await;
    let c = client(vec![standby.address(), primary.address()]);
    assert_eq!(c.leader().await.unwrap(), primary.address());
    c.mkdir("/a", false).await.unwrap();
    assert_eq!(c.get_status("/a").await.unwrap().path, "/a");
    assert_eq!(primary.state.mutation_ids().len(), 1);
    assert!(standby.state.mutation_ids().is_empty());
}

#[tokio::test]
async fn a_standby_listed_alone_redirects_to_the_primary() {
    // The client knows only the standby; the primary is found through its
    // GetMasterInfo answer and its UNAVAILABLE redirect.
    let primary = FakeMaster::start(Role::Primary).await;
    let standby = FakeMaster::start(Role::Standby(Some(primary.address()))).await;
    let c = client(vec![standby.address()]);
    c.create_file("/f").await.unwrap();
    assert_eq!(c.known_primary(), Some(primary.address()));
}

#[tokio::test]
async fn a_deposed_primary_that_still_claims_primacy_redirects_the_call() {
    // GetMasterInfo says PRIMARY (it has not noticed), Mutate says
    // UNAVAILABLE naming the new primary: the client follows the redirect.
    let new_primary = FakeMaster::start(Role::Primary).await;
    let old = FakeMaster::start(Role::Standby(Some(new_primary.address()))).await;
    old.state
        .claims_primary
        .store(true, std::sync::atomic::Ordering::SeqCst);
    new_primary
        .state
        .epoch
        .store(0, std::sync::atomic::Ordering::SeqCst);
    let c = client(vec![old.address()]);
    c.mkdir("/x", true).await.unwrap();
    assert_eq!(new_primary.state.mutation_ids().len(), 1);
    assert!(old.state.mutation_ids().is_empty());
    assert!(old.state.calls.load(std::sync::atomic::Ordering::SeqCst) >= 1);
}

#[tokio::test]
async fn a_dead_first_address_is_skipped() {
    let primary = FakeMaster::start(Role::Primary).await;
    let c = client(vec![dead_address(), primary.address()]);
    assert_eq!(c.leader().await.unwrap(), primary.address());
    c.mkdir("/d", false).await.unwrap();
    let listing = c.list_status("/").await.unwrap();
    assert_eq!(listing.len(), 1);
    assert_eq!(listing[0].path, "/d");
}

#[tokio::test]
async fn master_info_answers_for_any_master_and_fails_fast_for_a_dead_one() {
    let primary = FakeMaster::start(Role::Primary).await;
    let standby = FakeMaster::start(Role::Standby(Some(primary.address()))).await;
    let c = client(vec![primary.address()]);
    let info = c.master_info(&standby.address()).await.unwrap();
    assert_eq!(info.role, "STANDBY");
    assert_eq!(info.primary_address, primary.address());
    let dead = dead_address();
    match c.master_info(&dead).await {
        Err(ClientError::Unreachable { tried, .. }) => {
            assert!(tried[0].starts_with(&dead), "{tried:?}")
        }
        other => panic!("{other:?}"),
    }
}

/// Publishes `<leader path>/<address>` with the epoch as data, as
/// `election_zk::ZkElection` does once its primary serves.
async fn publish_leader(zk_addr: &str, leader_path: &str, address: &str, epoch: u64) -> zk::Client {
    let client = zk::Client::connect(zk_addr).await.unwrap();
    let acl = zk::Acls::anyone_all();
    client
        .mkdir(leader_path, &zk::CreateMode::Persistent.with_acls(acl))
        .await
        .unwrap();
    client
        .create(
            &format!("{leader_path}/{address}"),
            epoch.to_string().as_bytes(),
            &zk::CreateMode::Ephemeral.with_acls(acl),
        )
        .await
        .unwrap();
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zookeeper_leader_path_names_the_primary_and_follows_a_change() {
    let server = tokio::task::spawn_blocking(election_zk::testkit::ZkServer::start)
        .await
        .unwrap();
    let a = FakeMaster::start(Role::Primary).await;
    let b = FakeMaster::start(Role::Standby(Some(a.address()))).await;
    let leader_path = "/primacy-test/leader";
    let cfg = master::config::MasterConfig::from_pairs(&[
        ("alluxio.zookeeper.enabled", "true"),
        ("alluxio.zookeeper.address", server.address().as_str()),
        ("alluxio.zookeeper.leader.path", leader_path),
        ("alluxio.user.rpc.retry.max.duration", "20s"),
        ("alluxio.user.rpc.retry.max.sleep", "100ms"),
    ])
    .unwrap();
    let c = MasterClient::from_config(&cfg).unwrap();

    // No node yet: a short-lived client gives up with the ZooKeeper lookup
    // in its report.
    let impatient = MasterClient::new(
        c.discovery().clone(),
        fake_master::quick_options(Duration::from_millis(300)),
    );
    match impatient.leader().await {
        Err(ClientError::Unreachable { tried, .. }) => {
            assert!(tried.iter().any(|t| t.contains("ZooKeeper")), "{tried:?}")
        }
        other => panic!("{other:?}"),
    }

    let session_a = publish_leader(&server.address(), leader_path, &a.address(), 1).await;
    assert_eq!(c.leader().await.unwrap(), a.address());
    c.mkdir("/z", false).await.unwrap();
    assert_eq!(a.state.mutation_ids().len(), 1);

    // Failover: a's node goes (its session closes), b serves with a higher
    // epoch, a redirects to b.
    a.state.set_role(Role::Standby(None));
    drop(session_a);
    b.state.set_role(Role::Primary);
    let _session_b = publish_leader(&server.address(), leader_path, &b.address(), 2).await;
    c.mkdir("/z2", false).await.unwrap();
    assert_eq!(b.state.mutation_ids().len(), 1);
    assert_eq!(c.leader().await.unwrap(), b.address());
    drop(server);
}
