//! Three `primacy master` processes on one UFS folder with a real ZooKeeper
//! election: the primary is killed with SIGKILL while two clients write,
//! one finding the primary through the address list, one through
//! ZooKeeper's leader path; both carry on by themselves, the new primary
//! has every acknowledged create, the killed master comes back as a
//! caught-up standby, and a request retried across the failover is applied
//! once (`server_support::failover`).

mod server_support;

use election_zk::testkit::ZkServer;
use master::client::{Discovery, MasterClient};
use server_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ufs_zk_primary_killed_mid_writes_loses_nothing_and_rejoins() {
    let zk = ZkServer::start();
    let mut cluster = Cluster::ufs_zookeeper(3, &zk.address());
    cluster.format();
    cluster.start_all();
    let by_list = MasterClient::from_config(&cluster.client_config()).expect("client");
    let by_zk = MasterClient::from_config(&cluster.zk_client_config()).expect("client");
    assert!(matches!(by_zk.discovery(), Discovery::ZooKeeper { .. }));
    let writers = [
        Writer {
            label: "UFS+ZK, address list",
            client: by_list,
            root: "/by-list",
        },
        Writer {
            label: "UFS+ZK, ZooKeeper discovery",
            client: by_zk,
            root: "/by-zk",
        },
    ];
    kill_primary_during_writes(&mut cluster, &writers, 2, 40).await;
}
