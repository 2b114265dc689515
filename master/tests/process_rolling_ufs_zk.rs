//! `primacy process` on UFS + ZooKeeper with `localhost` entries (run
//! directly, no ssh): three masters on one shared journal folder, elected
//! through a real ZooKeeper, started, rolled under a stream of client
//! creates (primacy moved by `quorum elect`, or by the old primary's
//! resignation on SIGTERM when the election cannot be steered), refused
//! while one master is down (the others keep serving), and stopped, with
//! nothing lost, no client error and no process left.

mod server_support;

use std::path::PathBuf;
use std::time::Duration;

use election_zk::testkit::ZkServer;
use master::client::MasterClient;
use master::config::MasterConfig;
use server_support::stream::Stream;
use server_support::*;

const COMMAND_BOUND: Duration = Duration::from_secs(300);

/// SIGKILLs every master named in these pid files on drop.
struct KillOnDrop(Vec<PathBuf>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for f in &self.0 {
            if let Some(pid) = std::fs::read_to_string(f)
                .ok()
                .and_then(|t| t.trim().parse::<u32>().ok())
            {
                if alive(pid) {
                    let _ = std::process::Command::new("kill")
                        .args(["-9", &pid.to_string()])
                        .status();
                }
            }
        }
    }
}

async fn primacy(args: &[&str]) -> (i32, String, String) {
    primacy_bounded(args, &[], COMMAND_BOUND).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roll_three_ufs_zookeeper_masters_listed_as_localhost() {
    let zk = ZkServer::start();
    let dir = tempfile::tempdir().expect("tmp");
    let folder = format!("file://{}/journal", dir.path().display());
    let zk_pairs = format!(
        "alluxio.zookeeper.enabled=true\nalluxio.zookeeper.address={}\n",
        zk.address()
    );
    let mut hosts = String::new();
    let mut pid_files = Vec::new();
    let mut confs = Vec::new();
    for i in 1..=3 {
        let base = dir.path().join(format!("m{i}"));
        let conf = base.join("conf");
        std::fs::create_dir_all(&conf).expect("conf");
        std::fs::write(
            conf.join("primacy-site.properties"),
            format!(
                "{zk_pairs}alluxio.zookeeper.session.timeout=2s\n\
                 alluxio.master.hostname=127.0.0.1\nalluxio.master.journal.type=UFS\n\
                 alluxio.master.journal.folder={folder}\n\
                 alluxio.master.rpc.port={}\nalluxio.master.web.port={}\n\
                 alluxio.work.dir={}\n",
                free_port(),
                free_port(),
                base.join("work").display()
            ),
        )
        .expect("site");
        hosts.push_str(&format!("localhost {}\n", conf.display()));
        pid_files.push(base.join("work/logs/master.pid"));
        confs.push(conf);
    }
    let _guard = KillOnDrop(pid_files.clone());
    let conf = dir.path().join("conf");
    std::fs::create_dir_all(&conf).expect("conf");
    let mut site = zk_pairs.clone();
    for (k, v) in retry_pairs() {
        site.push_str(&format!("{k}={v}\n"));
    }
    std::fs::write(conf.join("primacy-site.properties"), &site).expect("site");
    std::fs::write(conf.join("masters"), hosts).expect("masters");
    let c = conf.display().to_string();

    let (code, _, err) = primacy(&["format", "--conf", &confs[0].display().to_string()]).await;
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = primacy(&["process", "start", "masters", "--conf", &c]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.matches("started").count(), 3, "{out}");

    let mut pairs = retry_pairs();
    pairs.push(("alluxio.zookeeper.enabled", "true".into()));
    pairs.push(("alluxio.zookeeper.address", zk.address()));
    let client =
        MasterClient::from_config(&MasterConfig::from_pairs(&pairs).expect("cfg")).expect("client");
    // Every standby must be caught up before the roll (it refuses a
    // master without a role, and the start waited for roles).
    let stream = Stream::start(&client, "/rolling", 2);
    stream.wait_more(50, BOUND).await;
    let (code, out, err) =
        primacy(&["process", "restart", "masters", "--rolling", "--conf", &c]).await;
    assert_eq!(code, 0, "rolling restart\n{out}\n{err}");
    assert!(out.contains(", 0 errors,"), "{out}");
    stream.wait_more(20, BOUND).await;
    let acks = stream.finish(BOUND).await;
    let tree = tokio::time::timeout(BOUND, list_tree(&client, "/rolling"))
        .await
        .expect("listing within the bound");
    assert_all_present(&acks, &tree, "rolling restart on UFS + ZooKeeper");
    eprintln!(
        "UFS + ZooKeeper rolling restart: {} creates acknowledged, none lost, no client error",
        acks.len()
    );

    let pids: Vec<u32> = pid_files
        .iter()
        .map(|f| {
            std::fs::read_to_string(f)
                .expect("pid file")
                .trim()
                .parse()
                .expect("pid")
        })
        .collect();
    // One master down: the roll refuses before touching anything, and the
    // cluster keeps serving.
    let (code, out, err) = primacy(&[
        "process",
        "stop",
        "master",
        "--conf",
        &confs[2].display().to_string(),
    ])
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) =
        primacy(&["process", "restart", "masters", "--rolling", "--conf", &c]).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("nothing was restarted")
            && err.contains("m3/conf")
            && err.contains("not running"),
        "{err}"
    );
    client
        .create_file("/after-refused-roll")
        .await
        .expect("still serving");

    let (code, out, err) = primacy(&["process", "stop", "masters", "--conf", &c]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.matches("not running").count(), 1, "{out}");
    for p in pids {
        assert!(!alive(p), "pid {p} still runs");
    }
    assert!(pid_files.iter().all(|f| !f.exists()));
}
