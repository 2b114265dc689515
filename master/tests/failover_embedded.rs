//! Three `primacy master` processes on the embedded Raft journal: the
//! primary is killed with SIGKILL while clients write; the writes carry on
//! through the client's retries, the new primary has every acknowledged
//! create, the killed master comes back as a caught-up standby, and a
//! request retried across the failover is applied once
//! (`server_support::failover`).

mod server_support;

use master::client::MasterClient;
use server_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_primary_killed_mid_writes_loses_nothing_and_rejoins() {
    let mut cluster = Cluster::embedded(3);
    cluster.format();
    cluster.start_all();
    let client = MasterClient::from_config(&cluster.client_config()).expect("client");
    let writers = [Writer {
        label: "embedded, address list",
        client,
        root: "/tree",
    }];
    kill_primary_during_writes(&mut cluster, &writers, 4, 40).await;
}
