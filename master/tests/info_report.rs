//! `primacy info report [--json]` against real `primacy master` processes:
//! three embedded masters (found through the address list), and three UFS
//! masters elected in ZooKeeper (found through ZooKeeper) with one standby
//! held behind, which the report shows as CATCHING_UP; workers live and
//! lost; and bad input, where `--json` output is still JSON with the exit
//! code.

mod server_support;

use std::path::Path;
use std::time::{Duration, Instant};

use election_zk::testkit::ZkServer;
use master::client::MasterClient;
use master::proto::rpc::RegisterWorkerRequest;
use serde_json::Value;
use server_support::http::get;
use server_support::*;

/// `primacy info report [--json] <flags>` run to completion off the async
/// workers; returns (exit code, stdout, stderr).
async fn report(
    dir: &Path,
    pairs: &[(&str, String)],
    json: bool,
    raw: &[&str],
) -> (i32, String, String) {
    let mut args = vec!["info".to_string(), "report".to_string()];
    if json {
        args.push("--json".into());
    }
    args.extend(flags(pairs));
    args.extend(raw.iter().map(|s| s.to_string()));
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || run(&args, &dir))
        .await
        .expect("the report ran")
}

fn parsed(out: &str) -> Value {
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

fn master<'a>(report: &'a Value, address: &str) -> &'a Value {
    report["masters"]
        .as_array()
        .and_then(|ms| ms.iter().find(|m| m["address"] == address))
        .unwrap_or_else(|| panic!("{address} is not listed: {report}"))
}

async fn register_worker(port: u16, address: &str) {
    worker_client(port)
        .register_worker(RegisterWorkerRequest {
            address: address.to_string(),
            capacity_bytes: 1 << 30,
            used_bytes: 3,
            block_ids: vec![1, 2, 3],
        })
        .await
        .expect("RegisterWorker");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_on_three_embedded_masters() {
    let mut cluster = Cluster::embedded(3);
    cluster.format();
    cluster.start_all();
    let (p, _) = cluster.wait_primary(BOUND, "the first primary").await;
    for i in (0..3).filter(|i| *i != p) {
        cluster.wait_caught_up(i, BOUND).await;
    }
    let primary = cluster.members[p].address();
    register_worker(cluster.members[p].rpc_port, "127.0.0.1:1").await;
    let mut pairs = retry_pairs();
    pairs.push(("alluxio.master.rpc.addresses", cluster.rpc_addresses()));

    let (code, out, err) = report(cluster.dir.path(), &pairs, true, &[]).await;
    assert_eq!(code, 0, "{out}{err}");
    let r = parsed(&out);
    assert_eq!(r["primary"]["address"], primary.as_str(), "{r}");
    assert_eq!(r["address"], primary.as_str(), "the primary answered: {r}");
    assert_eq!(r["journal"]["type"], "EMBEDDED", "{r}");
    assert_eq!(r["journal"]["election"], "RAFT", "{r}");
    assert!(r["primary"]["epoch"].as_u64().is_some_and(|e| e > 0), "{r}");
    assert!(
        r["primary"]["since_ms"].as_u64().is_some_and(|t| t > 0),
        "{r}"
    );
    assert_eq!(r["masters"].as_array().map(Vec::len), Some(3), "{r}");
    for m in &cluster.members {
        let listed = master(&r, &m.address());
        let want = if m.address() == primary {
            "PRIMARY"
        } else {
            "STANDBY"
        };
        assert_eq!(listed["state"], want, "{r}");
        assert!(listed["applied"].is_u64(), "{r}");
        assert!(listed["lag"].is_u64(), "{r}");
        assert!(listed["journal_role"].is_string(), "{r}");
    }
    assert_eq!(r["workers"]["live"], 1, "{r}");
    assert_eq!(r["workers"]["lost"], 0, "{r}");

    let (code, out, err) = report(cluster.dir.path(), &pairs, false, &[]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("Primary Address:  {primary}")),
        "{out}"
    );
    assert!(out.contains("Journal Type:     EMBEDDED"), "{out}");
    assert!(out.contains("Live Workers:     1"), "{out}");
    assert!(out.contains("Lost Workers:     0"), "{out}");
    for m in &cluster.members {
        assert!(out.contains(&m.address()), "{out}");
    }
    eprintln!("{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_on_ufs_zookeeper_shows_a_standby_catching_up_and_lost_workers() {
    let zk = ZkServer::start();
    let mut cluster = Cluster::ufs_zookeeper(3, &zk.address());
    for i in 0..3 {
        cluster.set_flag(i, "primacy.master.standby.max.lag", "5");
        cluster.set_flag(i, "alluxio.master.worker.timeout", "3s");
    }
    // m3 reads new chunks only after a long sleep once it has read
    // everything: it stays behind while the others write.
    cluster.set_flag(2, "alluxio.master.journal.tailer.sleep.time", "600s");
    cluster.format();
    cluster.start(0);
    let (p, _) = cluster.wait_primary(BOUND, "m1 as the primary").await;
    assert_eq!(p, 0);
    cluster.start(1);
    cluster.start(2);
    cluster.wait_caught_up(1, BOUND).await;
    cluster.wait_caught_up(2, BOUND).await;
    let primary = cluster.members[0].address();

    let client = MasterClient::from_config(&cluster.client_config()).expect("client");
    for i in 0..20 {
        client
            .create_file(&format!("/behind-{i}"))
            .await
            .expect("create");
    }
    // One worker goes silent (LOST after the 3 s timeout), one is fresh.
    register_worker(cluster.members[0].rpc_port, "127.0.0.1:1").await;
    let silent_since = Instant::now();
    loop {
        let info = info(cluster.members[0].rpc_port).await.expect("info");
        if info.workers.iter().any(|w| w.state == "LOST") {
            break;
        }
        assert!(
            silent_since.elapsed() < BOUND,
            "the silent worker was never LOST"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    register_worker(cluster.members[0].rpc_port, "127.0.0.1:2").await;

    let mut pairs = retry_pairs();
    pairs.push(("alluxio.zookeeper.enabled", "true".into()));
    pairs.push(("alluxio.zookeeper.address", zk.address()));
    let (m2, m3) = (cluster.members[1].address(), cluster.members[2].address());
    let deadline = Instant::now() + BOUND;
    let r = loop {
        let (code, out, err) = report(cluster.dir.path(), &pairs, true, &[]).await;
        assert_eq!(code, 0, "{out}{err}");
        let r = parsed(&out);
        if master(&r, &m2)["state"] == "STANDBY" {
            break r;
        }
        assert!(Instant::now() < deadline, "m2 never caught up: {r}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(r["primary"]["address"], primary.as_str(), "{r}");
    assert_eq!(r["journal"]["type"], "UFS", "{r}");
    assert_eq!(r["journal"]["election"], "ZOOKEEPER", "{r}");
    assert_eq!(r["masters"].as_array().map(Vec::len), Some(3), "{r}");
    assert_eq!(master(&r, &primary)["state"], "PRIMARY", "{r}");
    let behind = master(&r, &m3);
    assert_eq!(behind["state"], "CATCHING_UP", "{r}");
    // m3 may have read a chunk or two after it caught up and before its
    // long sleep began: what matters is that it is past the standby lag
    // bound (5) and that the lag is counted against the primary.
    let lag = behind["lag"].as_u64();
    let counted = master(&r, &primary)["applied"]
        .as_u64()
        .zip(behind["applied"].as_u64())
        .map(|(p, b)| p.saturating_sub(b));
    assert!(lag.is_some_and(|l| l > 5) && lag == counted, "{r}");
    assert_eq!(r["workers"]["live"], 1, "{r}");
    assert_eq!(r["workers"]["lost"], 1, "{r}");

    let (code, out, err) = report(cluster.dir.path(), &pairs, false, &[]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("CATCHING_UP"), "{out}");
    assert!(out.contains("Election:         ZOOKEEPER"), "{out}");
    assert!(out.contains("Lost Workers:     1"), "{out}");
    eprintln!("{out}");

    // The held-back standby is not healthy; the one that follows is.
    let h = get(cluster.members[2].web_port, "/api/v1/master/health").await;
    assert_eq!(h.status, 503, "{}", h.body);
    assert!(h.body.contains("catching up"), "{}", h.body);
    let h = get(cluster.members[1].web_port, "/api/v1/master/health").await;
    assert_eq!(h.status, 200, "{}", h.body);
}

/// An error with `--json`: the exit code, and one JSON object on stdout
/// naming the error and the same code.
fn json_error(code: i32, out: &str, err: &str, want: i32) -> Value {
    assert_eq!(code, want, "stdout: {out}\nstderr: {err}");
    let v = parsed(out);
    assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
    assert_eq!(v["exit_code"], want, "{v}");
    assert!(!err.is_empty(), "the message goes to stderr too");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_still_answers_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let nobody = format!("127.0.0.1:{}", free_port());
    let unreachable = [
        ("alluxio.master.rpc.addresses", nobody.clone()),
        ("alluxio.user.rpc.retry.max.duration", "1s".to_string()),
        ("alluxio.user.rpc.retry.base.sleep", "50ms".to_string()),
    ];

    // No master answers: 3.
    let (code, out, err) = report(d, &unreachable, true, &[]).await;
    let v = json_error(code, &out, &err, 3);
    assert!(
        v["error"].as_str().is_some_and(|e| e.contains(&nobody)),
        "{v}"
    );
    // Without --json nothing goes to stdout.
    let (code, out, _) = report(d, &unreachable, false, &[]).await;
    assert_eq!((code, out.as_str()), (3, ""));

    // A malformed value: 2, naming the key.
    let (code, out, err) = report(d, &[("alluxio.master.rpc.port", "abc".into())], true, &[]).await;
    let v = json_error(code, &out, &err, 2);
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.contains("alluxio.master.rpc.port")),
        "{v}"
    );
    // ZooKeeper enabled without an ensemble: 2.
    let (code, out, err) = report(
        d,
        &[("alluxio.zookeeper.enabled", "true".into())],
        true,
        &[],
    )
    .await;
    json_error(code, &out, &err, 2);
    // Usage errors clap finds: 2, still JSON with --json.
    let (code, out, err) = report(d, &[], true, &["--bogus"]).await;
    json_error(code, &out, &err, 2);
    let (code, out, err) = report(d, &[], true, &["-D", "novalue"]).await;
    json_error(code, &out, &err, 2);
    let (code, _, err) = tokio::task::spawn_blocking({
        let d = d.to_path_buf();
        move || run(&["info".to_string()], &d)
    })
    .await
    .expect("ran");
    assert_eq!(code, 2, "{err}");
}
