//! Two `primacy master` processes with the UFS journal on `s3://` (a real
//! S3-compatible server, moto, on a loopback port) and a real ZooKeeper
//! election, configured with Alluxio's S3 keys only (`aws.accessKeyId`,
//! `aws.secretKey`, `alluxio.underfs.s3.endpoint`, ...): the primary is
//! killed with SIGKILL while a client writes; the standby takes over with
//! every acknowledged create, and the killed master rejoins as a caught-up
//! standby (`server_support::failover`).

mod server_support;

use election_zk::testkit::ZkServer;
use journal_ufs::testkit::MotoServer;
use master::client::MasterClient;
use server_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ufs_on_s3_primary_killed_mid_writes_loses_nothing() {
    let moto = MotoServer::start("primacy-e2e").expect(
        "a moto server (python3 -m pip install 'moto[server]'; scripts/test-all.sh installs it)",
    );
    let zk = ZkServer::start();
    let mut cluster = Cluster::ufs_zookeeper(2, &zk.address());
    for i in 0..cluster.members.len() {
        cluster.set_flag(i, "alluxio.master.journal.folder", &moto.url("journal"));
        for (key, value) in moto.alluxio_properties() {
            cluster.set_flag(i, &key, &value);
        }
    }
    cluster.format();
    cluster.start_all();
    let client = MasterClient::from_config(&cluster.client_config()).expect("client");
    let writers = [Writer {
        label: "UFS on s3:// + ZooKeeper",
        client,
        root: "/on-s3",
    }];
    kill_primary_during_writes(&mut cluster, &writers, 2, 30).await;
}
