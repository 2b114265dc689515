//! A rolling restart of three `primacy master` processes on the embedded
//! Raft journal under a steady stream of client writes: each standby is
//! stopped (SIGTERM) and started again, `quorum elect` moves primacy to a
//! standby, the old primary is restarted; then the primary itself gets
//! SIGTERM and hands primacy over before it exits (graceful handoff), and
//! is started again. No client sees an error, every acknowledged write is
//! present at the end, and the longest client-visible pause of each step
//! is printed, with a kill -9 of the primary at the end for comparison
//! (measured, never asserted: the machine's speed varies). Last, every
//! master gets SIGTERM at once and each still exits 0.

mod server_support;

use std::time::Instant;

use master::client::MasterClient;
use server_support::admin::journal_json;
use server_support::stream::{longest_call, longest_gap, Stream};
use server_support::*;

/// Restarts member `i` (SIGTERM, start, caught up) and returns the window
/// in which it was down or catching up.
async fn restart(cluster: &mut Cluster, i: usize) -> (Instant, Instant, String) {
    let (at, status, log) = cluster.stop(i);
    assert!(
        status.success(),
        "{} exits 0 on SIGTERM: {status}",
        cluster.members[i].name
    );
    cluster.start(i);
    cluster.wait_caught_up(i, BOUND).await;
    (at, Instant::now(), log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_under_writes_costs_no_error() {
    let mut cluster = Cluster::embedded(3);
    let p = cluster.start_caught_up().await;
    let client = MasterClient::from_config(&cluster.client_config()).expect("client");
    let stream = Stream::start(&client, "/rolling", 2);
    stream.wait_more(50, BOUND).await;
    let started = Instant::now();
    let mut steps: Vec<(String, Instant, Instant)> = Vec::new();

    // 1. The standbys, one by one.
    for i in (0..3).filter(|&i| i != p) {
        let (from, to, _) = restart(&mut cluster, i).await;
        steps.push((
            format!("restart standby {}", cluster.members[i].name),
            from,
            to,
        ));
        stream.wait_more(20, BOUND).await;
    }

    // 2. Primacy to a standby (quorum elect), then the old primary.
    let next = (p + 1) % 3;
    let from = Instant::now();
    let moved = journal_json(
        &cluster,
        &[
            "quorum",
            "elect",
            "--address",
            &cluster.members[next].address(),
        ],
    )
    .await;
    assert_eq!(moved.code, 0, "{}", moved.stderr);
    assert_eq!(cluster.wait_primary(BOUND, "after elect").await.0, next);
    steps.push((
        format!("quorum elect {}", cluster.members[next].name),
        from,
        Instant::now(),
    ));
    stream.wait_more(20, BOUND).await;
    let (from, to, _) = restart(&mut cluster, p).await;
    steps.push((
        format!("restart old primary {}", cluster.members[p].name),
        from,
        to,
    ));
    stream.wait_more(20, BOUND).await;

    // 3. SIGTERM to the primary: it hands primacy over before exiting.
    let (from, status, log) = cluster.stop(next);
    assert!(status.success(), "the primary exits 0 on SIGTERM: {status}");
    assert!(
        log.contains("handed primacy to"),
        "the stopping primary handed over; its log:\n{log}"
    );
    let (successor, _) = cluster.wait_primary(BOUND, "after SIGTERM").await;
    assert_ne!(successor, next);
    stream.wait_more(20, BOUND).await;
    steps.push((
        format!("SIGTERM primary {}", cluster.members[next].name),
        from,
        Instant::now(),
    ));
    cluster.start(next);
    cluster.wait_caught_up(next, BOUND).await;
    stream.wait_more(20, BOUND).await;

    // 4. For comparison only: kill -9 of the primary (no handoff), which
    // the others notice only after their election timeout.
    let from = cluster.kill(successor);
    cluster.wait_primary(BOUND, "after kill -9").await;
    stream.wait_more(20, BOUND).await;
    let kill9 = (from, Instant::now());
    cluster.start(successor);
    cluster.wait_caught_up(successor, BOUND).await;
    stream.wait_more(20, BOUND).await;

    let acks = stream.finish(BOUND).await;
    // Everything stopped at once: the primary's handoff finds no one to
    // take over (or gives up when its target stops answering) and every
    // master still exits cleanly.
    let tree = tokio::time::timeout(BOUND, list_tree(&client, "/rolling"))
        .await
        .expect("listing within the bound");
    for (name, took, status, log) in cluster.stop_all_at_once() {
        assert!(
            status.success(),
            "{name} exits 0 when all stop at once: {status}\n{log}"
        );
        eprintln!(
            "all stopped at once: {name} exited 0 after {} ms",
            took.as_millis()
        );
    }
    assert_all_present(&acks, &tree, "rolling restart");
    assert_eq!(tree.len(), acks.len(), "nothing but what was created");
    let end = kill9.0;
    let before_kill: Vec<Ack> = acks.iter().filter(|a| a.at < end).cloned().collect();
    for (what, from, to) in &steps {
        eprintln!(
            "{what}: longest client call {} ms, longest stretch without an acknowledgement {} ms",
            longest_call(&acks, *from, *to).as_millis(),
            longest_gap(&acks, *from, *to).as_millis()
        );
    }
    eprintln!(
        "rolling restart: {} creates acknowledged, none lost, no client error; largest \
         client-visible pause {} ms (longest single call answered before the kill -9)",
        acks.len(),
        longest_call(&before_kill, started, end).as_millis()
    );
    eprintln!(
        "for comparison, kill -9 of the primary {}: longest client call {} ms, longest \
         stretch without an acknowledgement {} ms",
        cluster.members[successor].name,
        longest_call(&acks, kill9.0, kill9.1).as_millis(),
        longest_gap(&acks, kill9.0, kill9.1).as_millis()
    );
}
