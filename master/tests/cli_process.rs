//! `primacy fs` as an operator runs it, against real `primacy master`
//! processes: every command, its `--json` output, and the exit code of each
//! kind of bad input (0 ok, 1 refused, 2 usage/config, 3 unreachable); and a
//! standby that redirects to the primary's RPC address on the embedded
//! journal, so a client that knows only a standby still reaches the primary.

mod server_support;

use std::time::Duration;

use master::client::MasterClient;
use master::config::MasterConfig;
use master::proto::meta::Mkdir;
use master::proto::rpc::mutate_request::Op;
use master::proto::rpc::MutateRequest;
use master::rpc::PRIMARY_METADATA_KEY;
use server_support::{free_port, fs_client, run, Cluster, BOUND};

/// Runs `primacy fs <args>` against `addresses` with a short retry budget.
fn fs(cluster: &Cluster, addresses: &str, args: &[&str]) -> (i32, String, String) {
    let mut argv: Vec<String> = vec!["fs".into()];
    argv.extend(args.iter().map(|a| a.to_string()));
    for (k, v) in [
        ("alluxio.master.rpc.addresses", addresses.to_string()),
        ("alluxio.user.rpc.retry.max.duration", "3s".to_string()),
        ("alluxio.user.rpc.retry.max.sleep", "200ms".to_string()),
    ] {
        argv.push("-D".into());
        argv.push(format!("{k}={v}"));
    }
    run(&argv, cluster.dir.path())
}

/// `fs` must exit with `code`; returns stdout.
fn expect(cluster: &Cluster, addresses: &str, args: &[&str], code: i32) -> String {
    let (got, out, err) = fs(cluster, addresses, args);
    assert_eq!(
        got, code,
        "primacy fs {args:?}: exit {got}, expected {code}\nstdout: {out}\nstderr: {err}"
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fs_command_and_bad_input_against_a_real_master() {
    let mut cluster = Cluster::ufs_single();
    cluster.format();
    cluster.start_all();
    let (_, primary) = cluster.wait_primary(BOUND, "the single master").await;
    let at = cluster.rpc_addresses();

    assert_eq!(
        expect(&cluster, &at, &["leader"], 0).trim(),
        primary.address
    );
    expect(&cluster, &at, &["mkdir", "-p", "/a/b/c"], 0);
    expect(&cluster, &at, &["touch", "/a/b/f"], 0);

    let listing: serde_json::Value =
        serde_json::from_str(&expect(&cluster, &at, &["ls", "--json", "/a/b"], 0))
            .expect("ls --json prints JSON");
    let names: Vec<&str> = listing
        .as_array()
        .expect("ls --json prints an array")
        .iter()
        .filter_map(|e| e.get("name").and_then(|n| n.as_str()))
        .collect();
    assert_eq!(names, ["c", "f"], "ls --json /a/b: {listing}");
    let human = expect(&cluster, &at, &["ls", "/a/b"], 0);
    assert!(
        human.contains("/a/b/c") && human.contains("/a/b/f"),
        "{human}"
    );
    let stat: serde_json::Value =
        serde_json::from_str(&expect(&cluster, &at, &["stat", "--json", "/a/b/f"], 0))
            .expect("stat --json prints JSON");
    assert_eq!(stat.get("path").and_then(|p| p.as_str()), Some("/a/b/f"));

    // Refused by the file system: exit 1, and nothing changes.
    expect(&cluster, &at, &["touch", "/missing/f"], 1); // missing parent
    expect(&cluster, &at, &["mkdir", "/a"], 1); // exists
    expect(&cluster, &at, &["rm", "/a"], 1); // not empty without -R
    expect(&cluster, &at, &["mv", "/a", "/a/b/x"], 1); // into its own subtree
    expect(&cluster, &at, &["mv", "/a/b/f", "/a/b/c"], 1); // onto an existing path
    expect(&cluster, &at, &["stat", "/nope"], 1); // not found
                                                  // Bad input: exit 2 before anything is sent.
    expect(&cluster, &at, &["mkdir", "/bad//path"], 2);
    expect(&cluster, &at, &["touch", "relative/path"], 2);
    expect(&cluster, &at, &["mkdir", "/a/./b"], 2);
    expect(&cluster, &at, &["frobnicate"], 2);
    expect(
        &cluster,
        &at,
        &["leader", "-D", "alluxio.user.rpc.retry.base.sleep=soon"],
        2,
    );
    let listing = expect(&cluster, &at, &["ls", "--json", "/a/b"], 0);
    assert!(
        !listing.contains("\"x\""),
        "a refused mv changed the tree: {listing}"
    );

    expect(&cluster, &at, &["mv", "/a/b/f", "/a/g"], 0);
    expect(&cluster, &at, &["rm", "-R", "/a"], 0);
    expect(&cluster, &at, &["ls", "/a"], 1);

    // Nobody there: exit 3 (a free port, and a host that does not resolve).
    let dead = format!("127.0.0.1:{}", free_port());
    let (code, _, err) = fs(&cluster, &dead, &["leader"]);
    assert_eq!(code, 3, "leader with nobody listening: {err}");
    let (code, _, err) = fs(&cluster, "no-such-host.invalid:19998", &["mkdir", "/z"]);
    assert_eq!(code, 3, "an unknown host: {err}");
}

/// On the embedded journal a standby's refusal names the primary's RPC
/// address (not its Raft peer address), and a client configured with only
/// that standby's address reaches the primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_standby_redirects_to_the_primarys_rpc_address() {
    let mut cluster = Cluster::embedded(3);
    cluster.format();
    cluster.start_all();
    let (p, _) = cluster.wait_primary(BOUND, "an embedded primary").await;
    let standby = (p + 1) % 3;
    let primary_address = cluster.members[p].address();

    // The redirect may name nobody for a moment after an election (the new
    // leader announces its RPC address through the log); it must never name
    // anything but the primary's RPC address.
    let deadline = std::time::Instant::now() + BOUND;
    loop {
        let mut client = fs_client(cluster.members[standby].rpc_port);
        let refused = client
            .mutate(MutateRequest {
                client_id: vec![7u8; 16].into(),
                request_seq: 1,
                op: Some(Op::Mkdir(Mkdir {
                    path: "/from-a-standby".into(),
                    recursive: false,
                })),
            })
            .await
            .expect_err("a standby must refuse a mutation");
        assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
        match refused.metadata().get(PRIMARY_METADATA_KEY) {
            Some(named) => {
                assert_eq!(named.to_str().ok(), Some(primary_address.as_str()));
                break;
            }
            None => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the standby never named the primary; logs:\n{}",
                    cluster.logs()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    let only_standby = cluster.members[standby].address();
    let config = MasterConfig::from_pairs(&[
        ("alluxio.master.rpc.addresses", only_standby.clone()),
        ("alluxio.user.rpc.retry.max.duration", "30s".to_string()),
    ])
    .expect("client configuration");
    let client = MasterClient::from_config(&config).expect("client");
    client
        .mkdir("/through-a-standby", false)
        .await
        .expect("a client that knows only a standby reaches the primary");
    assert_eq!(client.leader().await.expect("leader"), primary_address);
    let out = expect(&cluster, &only_standby, &["leader"], 0);
    assert_eq!(out.trim(), primary_address);
    expect(&cluster, &only_standby, &["stat", "/through-a-standby"], 0);
}
