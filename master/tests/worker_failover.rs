//! A real `primacy worker` process follows a failover: three `primacy
//! master` processes on one UFS folder with a real ZooKeeper election, the
//! worker registered with the primary and heartbeating a block report of
//! its data folder; the primary is killed with SIGKILL and the new primary
//! lists the worker LIVE with its blocks (a new primary starts without
//! workers, so the worker registered again); a block added afterwards shows
//! up in the report; SIGTERM stops the worker with exit 0.

mod server_support;

use std::time::{Duration, Instant};

use election_zk::testkit::ZkServer;
use master::proto::rpc::{MasterInfo, WorkerInfo};
use server_support::*;

/// The worker as the primary lists it, if it does.
fn listed<'a>(info: &'a MasterInfo, address: &str) -> Option<&'a WorkerInfo> {
    info.workers.iter().find(|w| w.address == address)
}

/// Polls the primary (whichever member it is) until it lists the worker
/// LIVE with `blocks` blocks; panics after `bound`, or if the worker or a
/// master exits. Returns the primary's index and answer.
async fn wait_worker_live(
    cluster: &mut Cluster,
    worker: &mut Proc,
    address: &str,
    blocks: u64,
    bound: Duration,
) -> (usize, MasterInfo) {
    let what = format!("the worker {address} LIVE with {blocks} blocks");
    let deadline = Instant::now() + bound;
    loop {
        if let Some(s) = worker.try_exit() {
            panic!(
                "the worker exited ({s}) while waiting for {what}; stderr:\n{}",
                worker.stderr()
            );
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let (i, info) = cluster.wait_primary(left, &what).await;
        let last = match listed(&info, address) {
            Some(w) if w.state == "LIVE" && w.block_count == blocks => return (i, info),
            Some(w) => format!(
                "{} lists it {} with {} blocks",
                cluster.members[i].name, w.state, w.block_count
            ),
            None => format!("{} does not list it", cluster.members[i].name),
        };
        assert!(
            Instant::now() < deadline,
            "{what}: not within {bound:?} (last: {last}); worker stderr:\n{}\nmaster logs:\n{}",
            worker.stderr(),
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_follows_failover() {
    let zk = ZkServer::start();
    let mut cluster = Cluster::ufs_zookeeper(3, &zk.address());
    cluster.format();
    cluster.start_all();

    let data = cluster.dir.path().join("worker-data");
    std::fs::create_dir_all(&data).expect("worker data folder");
    for id in ["1", "2", "3"] {
        std::fs::write(data.join(id), format!("block {id}")).expect("block file");
    }
    let port = free_port();
    let address = format!("localhost:{port}");
    let mut pairs = retry_pairs();
    pairs.extend([
        ("alluxio.master.rpc.addresses", cluster.rpc_addresses()),
        ("alluxio.worker.data.folder", data.display().to_string()),
        ("alluxio.worker.block.heartbeat.interval", "100ms".into()),
        ("alluxio.worker.rpc.port", port.to_string()),
    ]);
    let mut args = vec!["worker".to_string()];
    args.extend(flags(&pairs));
    let mut worker = Proc::spawn(&args, &cluster.dir.path().join("worker.log"));

    let (first, info) = wait_worker_live(&mut cluster, &mut worker, &address, 3, BOUND).await;
    let old_id = listed(&info, &address).expect("listed").id;
    eprintln!(
        "worker registered with {} ({}) as id {old_id}",
        cluster.members[first].name,
        cluster.members[first].address()
    );

    let killed_at = cluster.kill(first);
    let (second, info) = wait_worker_live(&mut cluster, &mut worker, &address, 3, BOUND).await;
    let elapsed = killed_at.elapsed();
    assert_ne!(second, first, "the killed master cannot be the primary");
    let new_primary = cluster.members[second].address();
    let w = listed(&info, &address).expect("listed");
    eprintln!(
        "kill -9 of {} -> worker LIVE with 3 blocks on the new primary {} ({new_primary}) \
         as id {}: {} ms",
        cluster.members[first].name,
        cluster.members[second].name,
        w.id,
        elapsed.as_millis()
    );
    let log = worker.stderr();
    assert!(
        log.contains(&format!(
            "registered with the primary master at {new_primary}"
        )),
        "the worker's log names no registration with {new_primary}:\n{log}"
    );

    // The next heartbeats carry the new block.
    std::fs::write(data.join("4"), "block 4").expect("block file");
    let added_at = Instant::now();
    wait_worker_live(&mut cluster, &mut worker, &address, 4, BOUND).await;
    eprintln!(
        "block 4 added -> reported by the new primary: {} ms",
        added_at.elapsed().as_millis()
    );

    worker.term();
    let status = worker.wait_exit(BOUND);
    assert_eq!(
        status.code(),
        Some(0),
        "worker stderr:\n{}",
        worker.stderr()
    );
}
