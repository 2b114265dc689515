//! One `primacy master` on a UFS folder, killed with SIGKILL while clients
//! write and restarted at once with the same configuration: the writes
//! carry on through the client's retries, the restarted master is the
//! primary with every acknowledged create, and a request retried across
//! the restart is applied once (`server_support::failover`).

mod server_support;

use master::client::MasterClient;
use server_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_ufs_master_killed_mid_writes_restarts_with_everything() {
    let mut cluster = Cluster::ufs_single();
    cluster.format();
    cluster.start_all();
    let client = MasterClient::from_config(&cluster.client_config()).expect("client");
    let writers = [Writer {
        label: "UFS single, address list",
        client,
        root: "/tree",
    }];
    kill_primary_during_writes(&mut cluster, &writers, 4, 40).await;
}
