//! The kill -9 scenario every deployment runs (`failover_*.rs`): clients
//! write a tree concurrently, the primary is killed with SIGKILL mid-run,
//! the writers carry on by themselves through the client's retries, and
//! afterwards every acknowledged create is on the new primary, the killed
//! master is back (a caught-up standby, or the primary again when it is
//! the only one), and a mutation retried across the failover was applied
//! once.

use std::time::Instant;

use master::client::MasterClient;
use master::meta::ErrorCode;

use super::cluster::{Cluster, Deployment};
use super::workload::{
    assert_all_present, fixed_create, list_tree, mutate_on, report_failover, Workload,
};
use super::BOUND;

/// One writer of the scenario: a client (address list or ZooKeeper) and
/// the directory its tasks write under.
pub struct Writer {
    /// Names it in messages and figures.
    pub label: &'static str,
    /// The client its tasks share.
    pub client: MasterClient,
    /// `/<something>`: its tasks write `<root>/t<i>/...`.
    pub root: &'static str,
}

/// The client id of the raw request that is sent once before and once
/// after the failover.
const RETRY_CLIENT: &[u8] = b"failover-retried-request";

/// Runs the scenario on a started `cluster` (formatted, masters running):
/// `tasks` tasks of `files` files per writer. Returns the killed member.
pub async fn kill_primary_during_writes(
    cluster: &mut Cluster,
    writers: &[Writer],
    tasks: usize,
    files: usize,
) -> usize {
    let (primary, before) = cluster.wait_primary(BOUND, "the first primary").await;
    eprintln!(
        "primary before the kill: {} at epoch {}",
        cluster.members[primary].name, before.epoch
    );

    // A mutation acknowledged by the first primary, with a fixed id, sent
    // again after the failover: it must come back with this result.
    let retried = fixed_create(RETRY_CLIENT, 1, "/retried-once");
    let first = mutate_on(cluster.members[primary].rpc_port, retried.clone()).await;
    assert!(first.is_ok(), "create /retried-once: {first:?}");

    let workloads: Vec<Workload> = writers
        .iter()
        .map(|w| Workload::spawn(&w.client, w.root, tasks, files))
        .collect();
    // Kill once every writer is well under way, but early enough that
    // most of its creates come after the kill.
    for (w, load) in writers.iter().zip(&workloads) {
        load.wait_acked(load.expected / 8 + 1, BOUND).await;
        eprintln!(
            "{}: {} creates acknowledged before the kill",
            w.label,
            load.acked()
        );
    }
    let leader = tokio::time::timeout(BOUND, writers[0].client.leader())
        .await
        .expect("client.leader() within the bound")
        .expect("client.leader()");
    let victim = cluster.index_of(&leader);
    assert_eq!(
        victim, primary,
        "the client and GetMasterInfo agree on the primary"
    );
    let killed_at = cluster.kill(victim);
    if cluster.deployment == Deployment::UfsSingle {
        // The only master: restart it at once, with the same configuration;
        // the writers' retries must reach it.
        cluster.start(victim);
    }

    let (next, after) = cluster
        .wait_primary(BOUND, "a primary after the kill")
        .await;
    eprintln!(
        "primary after the kill: {} at epoch {} ({} ms after the kill, seen by GetMasterInfo polling)",
        cluster.members[next].name,
        after.epoch,
        killed_at.elapsed().as_millis()
    );
    assert!(after.epoch > before.epoch, "a new epoch: {after:?}");
    if cluster.deployment == Deployment::UfsSingle {
        assert_eq!(next, victim, "the restarted master is the primary again");
    } else {
        assert_ne!(next, victim, "a survivor took over");
    }

    // The retry of the acknowledged request: its first result, not
    // ALREADY_EXISTS; a new request for the same path is refused.
    let again = mutate_on(cluster.members[next].rpc_port, retried).await;
    assert_eq!(again, first, "a retried request gets its first result");
    let fresh = mutate_on(
        cluster.members[next].rpc_port,
        fixed_create(RETRY_CLIENT, 2, "/retried-once"),
    )
    .await;
    assert_eq!(fresh.code(), Some(ErrorCode::AlreadyExists), "{fresh:?}");

    for (w, load) in writers.iter().zip(workloads) {
        let acks = load.finish(BOUND * 2).await;
        report_failover(w.label, &acks, killed_at);
        let tree = tokio::time::timeout(BOUND, list_tree(&w.client, w.root))
            .await
            .expect("listing the tree within the bound");
        assert_all_present(&acks, &tree, w.label);
        assert_eq!(
            tree.len(),
            acks.len(),
            "{}: nothing but what was created",
            w.label
        );
    }

    if cluster.deployment != Deployment::UfsSingle {
        let restarted = Instant::now();
        cluster.start(victim);
        let (standby, primary) = cluster.wait_caught_up(victim, BOUND).await;
        let seq =
            |i: &master::proto::rpc::MasterInfo| i.journal.as_ref().map_or(0, |j| j.last_applied);
        eprintln!(
            "{} restarted as STANDBY and caught up to seq {} (primary at {}) in {} ms",
            cluster.members[victim].name,
            seq(&standby),
            seq(&primary),
            restarted.elapsed().as_millis()
        );
    }
    victim
}
