//! `primacy journal` against three (then four) real `primacy master`
//! processes on the embedded Raft journal, with client writes flowing the
//! whole time: `quorum info` (JSON parsed), `checkpoint`, `quorum elect`
//! by embedded journal address and by RPC address, `quorum add` of a fourth
//! master formatted with `--join` that catches up, votes and can lead,
//! `quorum remove` of another; every acknowledged write is present at the
//! end. Then the bad input: an unknown address, the primary removing
//! itself, a master that is down, a malformed address, an address nobody
//! answers on, an unreachable cluster; each `--json` error is still one
//! JSON object.

mod server_support;

use master::client::MasterClient;
use serde_json::Value;
use server_support::admin::{journal_argv, journal_json, journal_text};
use server_support::stream::Stream;
use server_support::*;

fn members(json: &Value) -> Vec<Value> {
    json["members"]
        .as_array()
        .unwrap_or_else(|| panic!("no members in {json}"))
        .clone()
}

fn leader_rpc(json: &Value) -> String {
    let leaders: Vec<Value> = members(json)
        .into_iter()
        .filter(|m| m["leader"] == Value::Bool(true))
        .collect();
    assert_eq!(leaders.len(), 1, "exactly one leader: {json}");
    leaders[0]["rpc_address"].as_str().expect("rpc").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_info_elect_add_remove_with_writes_flowing() {
    let mut cluster = Cluster::embedded(3);
    let p0 = cluster.start_caught_up().await;
    let client = MasterClient::from_config(&cluster.client_config()).expect("client");
    let stream = Stream::start(&client, "/flow", 2);
    stream.wait_more(20, BOUND).await;

    // quorum info: three voters, one leader (the primary), each reachable
    // with its own applied index and a lag.
    let info = journal_json(&cluster, &["quorum", "info"]).await;
    assert_eq!(info.code, 0, "{}", info.stderr);
    assert_eq!(info.json["backend"], "EMBEDDED");
    assert_eq!(info.json["kind"], "raft");
    assert_eq!(leader_rpc(&info.json), cluster.members[p0].address());
    let listed = members(&info.json);
    assert_eq!(listed.len(), 3, "{}", info.json);
    for m in &listed {
        assert_eq!(m["role"], "VOTER", "{m}");
        assert_eq!(m["reachable"], true, "{m}");
        assert!(m["applied"].as_u64().is_some_and(|a| a > 0), "{m}");
        assert!(m["lag"].as_u64().is_some(), "{m}");
        let peer = m["address"].as_str().expect("address");
        assert!(
            cluster
                .members
                .iter()
                .any(|c| c.peer.as_deref() == Some(peer)),
            "{peer} is a member's embedded journal address"
        );
    }
    let (code, text, err) = journal_text(&cluster, &["quorum", "info"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("VOTER") && text.contains("LAG"), "{text}");
    eprintln!("quorum info:\n{text}");

    // checkpoint: the embedded journal's primary writes it.
    let cp = journal_json(&cluster, &["checkpoint"]).await;
    assert_eq!(cp.code, 0, "{}", cp.stderr);
    assert!(
        cp.json["seq"].as_u64().is_some_and(|s| s > 1),
        "{}",
        cp.json
    );
    assert_eq!(cp.json["address"], cluster.members[p0].address().as_str());

    // elect by embedded journal (peer) address.
    let a = (p0 + 1) % 3;
    let peer_a = cluster.members[a].peer.clone().expect("peer");
    let moved = journal_json(&cluster, &["quorum", "elect", "--address", &peer_a]).await;
    assert_eq!(moved.code, 0, "{}", moved.stderr);
    assert_eq!(
        moved.json["primary_address"],
        cluster.members[a].address().as_str()
    );
    let (now, _) = cluster.wait_primary(BOUND, "after elect").await;
    assert_eq!(now, a, "the named master is the primary");
    stream.wait_more(20, BOUND).await;

    // elect by RPC address.
    let b = (p0 + 2) % 3;
    let rpc_b = cluster.members[b].address();
    let moved = journal_json(&cluster, &["quorum", "elect", "--address", &rpc_b]).await;
    assert_eq!(moved.code, 0, "{}", moved.stderr);
    assert_eq!(moved.json["primary_address"], rpc_b.as_str());
    assert_eq!(cluster.wait_primary(BOUND, "after elect").await.0, b);
    // Electing the primary itself changes nothing and succeeds.
    let same = journal_json(&cluster, &["quorum", "elect", "--address", &rpc_b]).await;
    assert_eq!(same.code, 0, "{}", same.stderr);
    stream.wait_more(20, BOUND).await;

    // add a fourth master: formatted --join, started, added; it catches up
    // and votes.
    let cluster_id = info.json["cluster_id"]
        .as_str()
        .expect("cluster_id")
        .to_string();
    assert!(cluster_id.starts_with("raft-"), "{}", info.json);
    let d = cluster.add_embedded_member(&cluster_id);
    cluster.start(d);
    cluster.wait_peer_listening(d, BOUND).await;
    let peer_d = cluster.members[d].peer.clone().expect("peer");
    let added = journal_json(&cluster, &["quorum", "add", "--address", &peer_d]).await;
    assert_eq!(added.code, 0, "{}", added.stderr);
    let after_add = members(&added.json);
    assert_eq!(after_add.len(), 4, "{}", added.json);
    let new = after_add
        .iter()
        .find(|m| m["address"] == peer_d.as_str())
        .unwrap_or_else(|| panic!("{peer_d} listed: {}", added.json));
    assert_eq!(new["role"], "VOTER", "{new}");
    assert_eq!(new["rpc_address"], cluster.members[d].address().as_str());
    assert_eq!(added.json["changed"], true, "{}", added.json);
    // Adding it again is accepted, changes nothing, and says so.
    let again = journal_json(&cluster, &["quorum", "add", "--address", &peer_d]).await;
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(again.json["changed"], false, "{}", again.json);
    assert_eq!(members(&again.json).len(), 4, "{}", again.json);
    cluster.wait_caught_up(d, BOUND).await;
    // A voter that caught up can lead: elect it.
    let moved = journal_json(&cluster, &["quorum", "elect", "--address", &peer_d]).await;
    assert_eq!(moved.code, 0, "{}", moved.stderr);
    assert_eq!(
        cluster.wait_primary(BOUND, "the new member leads").await.0,
        d
    );
    stream.wait_more(20, BOUND).await;

    // remove one of the first three (not the primary) by its peer address.
    let gone = p0;
    let peer_gone = cluster.members[gone].peer.clone().expect("peer");
    let removed = journal_json(&cluster, &["quorum", "remove", "--address", &peer_gone]).await;
    assert_eq!(removed.code, 0, "{}", removed.stderr);
    let after_remove = members(&removed.json);
    assert_eq!(after_remove.len(), 3, "{}", removed.json);
    assert!(
        after_remove
            .iter()
            .all(|m| m["address"] != peer_gone.as_str()),
        "{}",
        removed.json
    );
    let (_, status, _) = cluster.stop(gone);
    assert!(
        status.success(),
        "the removed master stops cleanly: {status}"
    );
    stream.wait_more(20, BOUND).await;

    // Nothing acknowledged was lost.
    let acks = stream.finish(BOUND).await;
    let tree = tokio::time::timeout(BOUND, list_tree(&client, "/flow"))
        .await
        .expect("listing within the bound");
    assert_all_present(&acks, &tree, "writes during elect/add/remove");
    eprintln!(
        "{} creates acknowledged during the test, all present",
        acks.len()
    );

    // --- bad input ---
    // An address no member has: NOT_FOUND naming the members, exit 1.
    let unknown = journal_json(&cluster, &["quorum", "remove", "--address", "127.0.0.1:1"]).await;
    assert_eq!(unknown.code, 1, "{}", unknown.stderr);
    assert!(unknown.error().contains("no member"), "{}", unknown.error());
    // The removed master is no member any more.
    let removed_again = journal_json(&cluster, &["quorum", "elect", "--address", &peer_gone]).await;
    assert_eq!(removed_again.code, 1, "{}", removed_again.stderr);
    // A master that is down: refused before anything changes.
    let (primary, _) = cluster
        .wait_primary(BOUND, "before elect to a dead master")
        .await;
    // The primary cannot remove itself: it must hand primacy on first.
    let own = journal_json(
        &cluster,
        &[
            "quorum",
            "remove",
            "--address",
            &cluster.members[primary].address(),
        ],
    )
    .await;
    assert_eq!(own.code, 1, "{}", own.stderr);
    assert!(own.error().contains("quorum elect"), "{}", own.error());
    let down = (0..cluster.members.len())
        .find(|&i| i != primary && cluster.members[i].running())
        .expect("a running standby");
    cluster.kill(down);
    let dead = journal_json(
        &cluster,
        &[
            "quorum",
            "elect",
            "--address",
            &cluster.members[down].address(),
        ],
    )
    .await;
    assert_eq!(dead.code, 1, "{}", dead.stderr);
    assert!(dead.error().contains("unreachable"), "{}", dead.error());
    assert_eq!(
        cluster.wait_primary(BOUND, "after a refused elect").await.0,
        primary,
        "primacy stayed"
    );
    cluster.start(down);
    cluster.wait_caught_up(down, BOUND).await;
    // Malformed addresses: usage errors, exit 2, still JSON.
    for bad in ["nonsense", "h:0", "host:port"] {
        let r = journal_json(&cluster, &["quorum", "elect", "--address", bad]).await;
        assert_eq!(r.code, 2, "{bad}: {}", r.stderr);
        assert!(r.error().contains("host:port"), "{}", r.error());
    }
    // Nobody answers at the address to add.
    let port = free_port();
    let nobody = journal_json(
        &cluster,
        &["quorum", "add", "--address", &format!("127.0.0.1:{port}")],
    )
    .await;
    assert_eq!(nobody.code, 1, "{}", nobody.stderr);
    assert!(nobody.error().contains("cannot ask"), "{}", nobody.error());
    // No cluster at all: exit 3, JSON.
    let mut argv: Vec<String> = ["journal", "quorum", "info", "--json"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    argv.extend(flags(&[
        (
            "alluxio.master.rpc.addresses",
            format!("127.0.0.1:{}", free_port()),
        ),
        ("alluxio.user.rpc.retry.max.duration", "1s".into()),
    ]));
    let unreachable = journal_argv(&cluster, argv).await;
    assert_eq!(unreachable.code, 3, "{}", unreachable.stderr);
    assert!(
        unreachable.error().contains("no primary"),
        "{}",
        unreachable.error()
    );
    // The membership is as it was.
    let info = journal_json(&cluster, &["quorum", "info"]).await;
    assert_eq!(members(&info.json).len(), 3, "{}", info.json);
}
