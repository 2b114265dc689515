//! Every way a client finds the primary, each against three real
//! `primacy master` processes on UFS + a real ZooKeeper, through the
//! `primacy fs` command line: ZooKeeper's leader path from the
//! configuration, the configured address list (standbys first, so the
//! client must follow a redirect), and the three URI authorities
//! (`zk@`, a master list with commas or semicolons, `ebj@NAME` with a
//! logical name), with `alluxio://` as a synonym. After a kill -9 of the
//! primary the URI forms reach the new primary by themselves.

mod server_support;

use election_zk::testkit::ZkServer;
use master::client::MasterClient;
use server_support::{run, Cluster, BOUND};

/// `primacy fs <args> -D k=v...` with a retry budget long enough to ride out
/// a failover; must exit with `code`. Returns stdout.
fn fs(cluster: &Cluster, args: &[&str], defines: &[(&str, String)], code: i32) -> String {
    let mut argv: Vec<String> = vec!["fs".into()];
    argv.extend(args.iter().map(|a| a.to_string()));
    let budget = [
        ("alluxio.user.rpc.retry.max.duration", "30s".to_string()),
        ("alluxio.user.rpc.retry.max.sleep", "200ms".to_string()),
    ];
    for (k, v) in defines.iter().chain(budget.iter()) {
        argv.push("-D".into());
        argv.push(format!("{k}={v}"));
    }
    let (got, out, err) = run(&argv, cluster.dir.path());
    assert_eq!(
        got,
        code,
        "primacy {argv:?}: exit {got}, expected {code}\nstdout: {out}\nstderr: {err}\nmasters:\n{}",
        cluster.logs()
    );
    out
}

/// The masters' RPC addresses with the primary last, so a client that polls
/// the list in order meets the standbys (and their redirects) first.
fn primary_last(cluster: &Cluster, primary: usize) -> Vec<String> {
    let mut list: Vec<String> = (0..cluster.members.len())
        .filter(|i| *i != primary)
        .map(|i| cluster.members[i].address())
        .collect();
    list.push(cluster.members[primary].address());
    list
}

/// The `-D` pairs that define the logical name `NAME` over `masters`.
fn nameservice(name: &str, masters: &[String]) -> Vec<(String, String)> {
    let ids: Vec<String> = (1..=masters.len()).map(|i| format!("m{i}")).collect();
    let mut pairs = vec![(format!("alluxio.master.nameservices.{name}"), ids.join(","))];
    for (id, addr) in ids.iter().zip(masters) {
        pairs.push((
            format!("alluxio.master.rpc.address.{name}.{id}"),
            addr.clone(),
        ));
    }
    pairs
}

fn borrowed(pairs: &[(String, String)]) -> Vec<(&str, String)> {
    pairs.iter().map(|(k, v)| (k.as_str(), v.clone())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_discovery_form_reaches_the_primary_before_and_after_a_failover() {
    let zk = ZkServer::start();
    let mut cluster = Cluster::ufs_zookeeper(3, &zk.address());
    cluster.format();
    cluster.start_all();
    let (p, _) = cluster
        .wait_primary(BOUND, "a UFS + ZooKeeper primary")
        .await;
    let primary = cluster.members[p].address();
    let list = primary_last(&cluster, p);
    let zk_pairs = [
        ("alluxio.zookeeper.enabled", "true".to_string()),
        ("alluxio.zookeeper.address", zk.address()),
    ];
    let list_pairs = [("alluxio.master.rpc.addresses", list.join(","))];
    let ebj = nameservice("ha-cluster", &list);

    // Configured discovery: `fs leader` names the primary either way.
    assert_eq!(fs(&cluster, &["leader"], &zk_pairs, 0).trim(), primary);
    assert_eq!(fs(&cluster, &["leader"], &list_pairs, 0).trim(), primary);
    fs(&cluster, &["mkdir", "/by-zk-config"], &zk_pairs, 0);
    fs(&cluster, &["mkdir", "/by-list-config"], &list_pairs, 0);

    // URI authorities, with nothing about the cluster in the configuration.
    let uris = |round: &str| {
        vec![
            format!("primacy://zk@{}/{round}-zk", zk.address()),
            format!("alluxio://zk@{}/{round}-zk-alluxio", zk.address()),
            format!("primacy://{}/{round}-commas", list.join(",")),
            format!("alluxio://{}/{round}-semicolons", list.join(";")),
            format!("primacy://ebj@ha-cluster/{round}-logical"),
        ]
    };
    for uri in uris("before") {
        fs(&cluster, &["mkdir", &uri], &borrowed(&ebj), 0);
        let listed = fs(&cluster, &["stat", "--json", &uri], &borrowed(&ebj), 0);
        assert!(listed.contains("\"directory\""), "{uri}: {listed}");
    }

    // A logical name nobody defined is a configuration error naming the key.
    let out = {
        let argv: Vec<String> = ["fs", "ls", "primacy://ebj@nobody/"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        run(&argv, cluster.dir.path())
    };
    assert_eq!(out.0, 2, "undefined logical name: {out:?}");
    assert!(
        out.2.contains("alluxio.master.nameservices.nobody"),
        "the error names the missing key: {}",
        out.2
    );

    // Every form now reaches the new primary by itself.
    cluster.kill(p);
    for uri in uris("after") {
        fs(&cluster, &["mkdir", &uri], &borrowed(&ebj), 0);
    }
    let (q, _) = cluster.wait_primary(BOUND, "the new primary").await;
    assert_ne!(q, p, "the killed master cannot be primary");
    let after = fs(&cluster, &["leader"], &zk_pairs, 0);
    assert_eq!(after.trim(), cluster.members[q].address());

    // The new primary holds every directory made through every form.
    let client = MasterClient::from_config(&cluster.client_config()).expect("client");
    let names: Vec<String> = client
        .list_status("/")
        .await
        .expect("list /")
        .into_iter()
        .map(|f| f.name)
        .collect();
    let mut expected = vec!["by-zk-config".to_string(), "by-list-config".to_string()];
    for round in ["before", "after"] {
        for uri in uris(round) {
            let name = uri.rsplit('/').next().unwrap_or_default().to_string();
            expected.push(name);
        }
    }
    for name in &expected {
        assert!(names.contains(name), "{name} missing from {names:?}");
    }
    assert_eq!(names.len(), expected.len(), "{names:?}");
}
