//! Three `primacy master` processes on the embedded journal with both
//! authentication switches on (peer port and RPC port) and one cluster
//! secret file. A client, CLI or master without the secret, or with
//! another one, is refused with an error naming what to set and changes
//! nothing; with the secret, everything works, including a kill -9
//! failover; a master holding another secret cannot join the quorum.

mod server_support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use master::client::MasterClient;
use master::config::MasterConfig;
use master::proto::rpc::meta_master_client::MetaMasterClient;
use master::proto::rpc::GetMasterInfoRequest;
use server_support::admin::journal_argv;
use server_support::*;

const SECRET_FILE: &str = "primacy.security.cluster.secret.file";

fn write_secret(path: &Path, text: &str) -> String {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.display().to_string()
}

/// `primacy <args>` with the cluster's client flags plus `extra`.
fn cli(cluster: &Cluster, args: &[&str], extra: &[(&str, String)]) -> (i32, String, String) {
    let mut argv: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    argv.extend(cluster.client_flags());
    argv.extend(flags(extra));
    run(&argv, cluster.dir.path())
}

/// `primacy journal quorum info --json` with the secret.
async fn quorum_info(cluster: &Cluster, secret: &str) -> server_support::admin::CliAnswer {
    let mut argv: Vec<String> = ["journal", "quorum", "info", "--json"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    argv.extend(cluster.client_flags());
    argv.extend(flags(&[(SECRET_FILE, secret.to_string())]));
    journal_argv(cluster, argv).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authenticated_embedded_cluster_refuses_strangers_and_fails_over() {
    let mut cluster = Cluster::embedded(3);

    // `primacy security generate-secret`: a new 0600 file the
    // configuration accepts, never overwritten.
    let generated = cluster.dir.path().join("generated");
    let shown = generated.display().to_string();
    let gen = ["security", "generate-secret", shown.as_str()].map(String::from);
    let (code, out, err) = run(&gen, cluster.dir.path());
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(SECRET_FILE), "{out}");
    let mode = std::fs::metadata(&generated).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let text = std::fs::read_to_string(&generated).unwrap();
    MasterConfig::from_pairs(&[(SECRET_FILE, shown.as_str())]).expect("the generated secret loads");
    let (code, _, err) = run(&gen, cluster.dir.path());
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        std::fs::read_to_string(&generated).unwrap(),
        text,
        "overwritten"
    );

    let right = write_secret(
        &cluster.dir.path().join("secret"),
        "the-right-cluster-secret\n",
    );
    let wrong = write_secret(
        &cluster.dir.path().join("other"),
        "another-cluster-secret-1\n",
    );
    for i in 0..3 {
        cluster.set_flag(i, SECRET_FILE, &right);
        cluster.set_flag(i, "primacy.security.authentication.peer.enabled", "true");
        cluster.set_flag(i, "primacy.security.authentication.rpc.enabled", "true");
    }
    let mut pairs = retry_pairs();
    pairs.push(("alluxio.master.rpc.addresses", cluster.rpc_addresses()));
    pairs.push((SECRET_FILE, right.clone()));
    let client_cfg = MasterConfig::from_pairs(&pairs).expect("client configuration");
    use_credentials(client_cfg.rpc_credentials());
    let p = cluster.start_caught_up().await;
    let epoch = info(cluster.members[p].rpc_port).await.unwrap().epoch;

    let client = MasterClient::from_config(&client_cfg).expect("client");
    client
        .mkdir("/with-secret", false)
        .await
        .expect("mkdir with the secret");

    // A raw call without credentials: UNAUTHENTICATED, naming the keys.
    let raw = MetaMasterClient::new(channel(cluster.members[p].rpc_port))
        .get_master_info(GetMasterInfoRequest {})
        .await
        .unwrap_err();
    assert_eq!(raw.code(), tonic::Code::Unauthenticated, "{raw:?}");
    assert!(raw.message().contains(SECRET_FILE), "{}", raw.message());

    // The CLI without the secret, and with another cluster's: refused at
    // once (not after the retry duration), with what to set.
    let (code, out, err) = cli(&cluster, &["fs", "mkdir", "/no-secret"], &[]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(
        err.contains("requires authentication") && err.contains(SECRET_FILE),
        "the refused side says what to set: {err}"
    );
    let (code, out, err) = cli(
        &cluster,
        &["fs", "mkdir", "/wrong-secret"],
        &[(SECRET_FILE, wrong.clone())],
    );
    assert_ne!(code, 0, "{out}{err}");
    assert!(err.contains("different secret"), "{err}");
    // A secret file others can read is refused before anything is sent.
    let open = cluster.dir.path().join("open");
    std::fs::write(&open, "the-right-cluster-secret\n").unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, _, err) = cli(
        &cluster,
        &["fs", "ls", "/"],
        &[(SECRET_FILE, open.display().to_string())],
    );
    assert_ne!(code, 0);
    assert!(err.contains("chmod 600"), "{err}");

    // With the secret, the CLI works, and the refused calls changed nothing.
    let (code, out, err) = cli(
        &cluster,
        &["fs", "ls", "/"],
        &[(SECRET_FILE, right.clone())],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("with-secret"), "{out}");
    assert!(
        !out.contains("no-secret") && !out.contains("wrong-secret"),
        "{out}"
    );
    let (code, out, err) = cli(
        &cluster,
        &["info", "report"],
        &[(SECRET_FILE, right.clone())],
    );
    assert_eq!(code, 0, "info report with the secret: {out}{err}");
    assert!(
        cluster
            .logs()
            .contains("refused an unauthenticated request"),
        "the refusing master logs the refusal"
    );
    let metrics = server_support::http::get(cluster.members[p].web_port, "/metrics").await;
    assert!(
        metrics.body.contains("code=\"UNAUTHENTICATED\""),
        "refusals are counted in /metrics: {}",
        metrics.body
    );
    assert_eq!(
        info(cluster.members[p].rpc_port).await.unwrap().epoch,
        epoch,
        "the refused calls moved nothing"
    );

    // kill -9 the primary while clients (with the secret) write.
    let writers = [Writer {
        label: "embedded with authentication",
        client,
        root: "/tree",
    }];
    kill_primary_during_writes(&mut cluster, &writers, 2, 20).await;

    // A master holding another cluster's secret asks to join: the quorum
    // add (with the right secret) fails, the quorum and term stay.
    let (p, before) = cluster
        .wait_primary(BOUND, "the primary after the failover")
        .await;
    let q = quorum_info(&cluster, &right).await;
    assert_eq!(q.code, 0, "{}", q.stderr);
    let cluster_id = q.json["cluster_id"]
        .as_str()
        .expect("cluster_id")
        .to_string();
    let members_before = q.json["members"].as_array().map(Vec::len);
    let stranger = cluster.add_embedded_member(&cluster_id);
    cluster.set_flag(stranger, SECRET_FILE, &wrong);
    cluster.set_flag(
        stranger,
        "primacy.security.authentication.peer.enabled",
        "true",
    );
    cluster.set_flag(
        stranger,
        "primacy.security.authentication.rpc.enabled",
        "true",
    );
    cluster.set_flag(stranger, "primacy.embedded.journal.join", "true");
    cluster.start(stranger);
    // Asked before it listens, the add could only say "nothing listens",
    // not what this test is about.
    cluster.wait_peer_listening(stranger, BOUND).await;
    let peer = cluster.members[stranger].peer.clone().unwrap();
    let mut argv: Vec<String> = ["journal", "quorum", "add", "--address", &peer, "--json"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    argv.extend(cluster.client_flags());
    argv.extend(flags(&[(SECRET_FILE, right.clone())]));
    let added = journal_argv(&cluster, argv).await;
    assert_ne!(
        added.code, 0,
        "a member with another secret was added: {}",
        added.json
    );
    assert!(
        added.error().contains("requires authentication"),
        "{}",
        added.json
    );
    let q = quorum_info(&cluster, &right).await;
    assert_eq!(
        q.json["members"].as_array().map(Vec::len),
        members_before,
        "{}",
        q.json
    );
    let after = info(cluster.members[p].rpc_port).await.unwrap();
    assert_eq!(after.role, "PRIMARY");
    assert_eq!(after.epoch, before.epoch, "the stranger changed the term");
    cluster.stop(stranger);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_needs_the_secret_to_register() {
    let mut cluster = Cluster::embedded(1);
    let right = write_secret(
        &cluster.dir.path().join("secret"),
        "the-right-cluster-secret\n",
    );
    cluster.set_flag(0, SECRET_FILE, &right);
    cluster.set_flag(0, "primacy.security.authentication.peer.enabled", "true");
    cluster.set_flag(0, "primacy.security.authentication.rpc.enabled", "true");
    let mut pairs = retry_pairs();
    pairs.push((SECRET_FILE, right.clone()));
    use_credentials(MasterConfig::from_pairs(&pairs).unwrap().rpc_credentials());
    cluster.start_caught_up().await;

    let data = cluster.dir.path().join("worker-data");
    std::fs::create_dir_all(&data).unwrap();
    let port = free_port();
    let address = format!("localhost:{port}");
    let mut worker_pairs = retry_pairs();
    worker_pairs.extend([
        ("alluxio.master.rpc.addresses", cluster.rpc_addresses()),
        ("alluxio.worker.data.folder", data.display().to_string()),
        ("alluxio.worker.block.heartbeat.interval", "100ms".into()),
        ("alluxio.worker.rpc.port", port.to_string()),
    ]);
    let mut args = vec!["worker".to_string()];
    args.extend(flags(&worker_pairs));

    // Without the secret the worker stops with the master's explanation.
    let dir = cluster.dir.path().to_path_buf();
    let bare = args.clone();
    let (code, _, err) = tokio::task::spawn_blocking(move || run(&bare, &dir))
        .await
        .unwrap();
    assert_ne!(code, 0, "{err}");
    assert!(
        err.contains("requires authentication") && err.contains(SECRET_FILE),
        "{err}"
    );
    let listed = info(cluster.members[0].rpc_port).await.unwrap();
    assert!(listed.workers.is_empty(), "{:?}", listed.workers);

    // With it, it registers and stays LIVE.
    args.extend(flags(&[(SECRET_FILE, right)]));
    let mut worker = Proc::spawn(&args, &cluster.dir.path().join("worker.log"));
    let deadline = std::time::Instant::now() + BOUND;
    loop {
        assert!(worker.try_exit().is_none(), "{}", worker.stderr());
        let info = info(cluster.members[0].rpc_port).await.unwrap();
        if info
            .workers
            .iter()
            .any(|w| w.address == address && w.state == "LIVE")
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the worker did not register: {}",
            worker.stderr()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    worker.term();
    worker.wait_exit(BOUND);
}
