//! `primacy process` over a real OpenSSH server on a loopback port: three
//! embedded masters listed as `127.0.0.1 <conf dir>` entries of
//! `conf/masters` are started through ssh (a table of hosts and roles),
//! rolled (`restart masters --rolling`) under a stream of client creates
//! with no client error and nothing lost, and stopped with no process
//! left. A host that refuses ssh gets an error naming it.

mod server_support;
mod sshd;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use master::client::MasterClient;
use master::config::MasterConfig;
use server_support::stream::{longest_call, Stream};
use server_support::*;
use sshd::Sshd;

/// Bound on one `primacy process` command (a rolling restart waits for
/// three restarts and catch-ups on a loaded machine).
const COMMAND_BOUND: Duration = Duration::from_secs(300);

/// Three masters' conf dirs and the operator's conf dir (with `masters`).
struct Deployment {
    dir: tempfile::TempDir,
    conf: PathBuf,
    masters: Vec<PathBuf>,
    rpc: Vec<String>,
}

impl Deployment {
    fn new() -> Deployment {
        let dir = tempfile::tempdir().expect("tempdir");
        let peers: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let rpc: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let peer_list = peers
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        let rpc_list = rpc
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut masters = Vec::new();
        let mut hosts = String::from("# three masters on this machine, one conf dir each\n");
        for i in 0..3 {
            let base = dir.path().join(format!("m{}", i + 1));
            let conf = base.join("conf");
            std::fs::create_dir_all(&conf).expect("conf dir");
            std::fs::write(
                conf.join("primacy-site.properties"),
                format!(
                    "alluxio.master.hostname=127.0.0.1\n\
                     alluxio.master.journal.type=EMBEDDED\n\
                     alluxio.master.embedded.journal.addresses={peer_list}\n\
                     alluxio.master.embedded.journal.port={}\n\
                     alluxio.master.rpc.port={}\n\
                     alluxio.master.web.port={}\n\
                     alluxio.master.rpc.addresses={rpc_list}\n\
                     alluxio.work.dir={}\n",
                    peers[i],
                    rpc[i],
                    free_port(),
                    base.join("work").display()
                ),
            )
            .expect("site file");
            hosts.push_str(&format!("127.0.0.1   {}\n", conf.display()));
            masters.push(conf);
        }
        let conf = dir.path().join("conf");
        std::fs::create_dir_all(&conf).expect("conf");
        let mut site = format!("alluxio.master.rpc.addresses={rpc_list}\n");
        for (k, v) in retry_pairs() {
            site.push_str(&format!("{k}={v}\n"));
        }
        std::fs::write(conf.join("primacy-site.properties"), site).expect("site");
        std::fs::write(conf.join("masters"), hosts).expect("masters");
        Deployment {
            dir,
            conf,
            masters,
            rpc: rpc.iter().map(|p| format!("127.0.0.1:{p}")).collect(),
        }
    }

    fn pid_file(&self, i: usize) -> PathBuf {
        self.masters[i]
            .parent()
            .expect("base")
            .join("work/logs/master.pid")
    }

    fn pids(&self) -> Vec<Option<u32>> {
        (0..3)
            .map(|i| {
                std::fs::read_to_string(self.pid_file(i))
                    .ok()
                    .and_then(|t| t.trim().parse().ok())
            })
            .collect()
    }

    fn client_config(&self) -> MasterConfig {
        let mut pairs = retry_pairs();
        pairs.push(("alluxio.master.rpc.addresses", self.rpc.join(",")));
        MasterConfig::from_pairs(&pairs).expect("client config")
    }
}

/// SIGKILLs every master still recorded in a pid file: nothing outlives a
/// failed test.
struct KillOnDrop<'a>(&'a Deployment);

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        for pid in self.0.pids().into_iter().flatten() {
            if alive(pid) {
                let _ = std::process::Command::new("kill")
                    .args(["-9", &pid.to_string()])
                    .status();
            }
        }
    }
}

/// Runs `primacy <args>` with `env` added (bounded); exit code, stdout,
/// stderr.
async fn primacy(args: &[&str], env: &[(&str, String)]) -> (i32, String, String) {
    primacy_bounded(args, env, COMMAND_BOUND).await
}

fn conf_str(p: &Path) -> String {
    p.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_roll_and_stop_three_masters_over_ssh() {
    let d = Deployment::new();
    let _guard = KillOnDrop(&d);
    let sshd = Sshd::start(&d.dir.path().join("sshd"), free_port());
    let env = [("PRIMACY_SSH_OPTS", sshd.client_opts())];
    let conf = conf_str(&d.conf);
    for m in &d.masters {
        let (code, _, err) = primacy(&["format", "--conf", &conf_str(m)], &[]).await;
        assert_eq!(code, 0, "format: {err}");
    }

    // Start: every master through ssh, a table with one PRIMARY.
    let (code, out, err) = primacy(&["process", "start", "masters", "--conf", &conf], &env).await;
    assert_eq!(
        code,
        0,
        "start masters\n{out}\n{err}\nsshd log:\n{}",
        sshd.log()
    );
    assert!(out.contains("host") && out.contains("role"), "{out}");
    let rows: Vec<&str> = out.lines().filter(|l| l.contains("127.0.0.1 /")).collect();
    assert_eq!(rows.len(), 3, "one row per master:\n{out}");
    assert_eq!(
        rows.iter().filter(|r| r.contains("PRIMARY")).count()
            + rows.iter().filter(|r| r.contains("STANDBY")).count(),
        3,
        "each master reports a role:\n{out}"
    );
    assert!(sshd.log().contains("Accepted publickey"), "{}", sshd.log());
    let pids: Vec<u32> = d.pids().into_iter().map(|p| p.expect("pid file")).collect();
    assert!(pids.iter().all(|&p| alive(p)), "{pids:?}");

    // Starting again changes nothing.
    let (code, out, _) = primacy(&["process", "start", "masters", "--conf", &conf], &env).await;
    assert_eq!(code, 0);
    assert_eq!(out.matches("already running").count(), 3, "{out}");
    assert_eq!(d.pids().into_iter().flatten().collect::<Vec<_>>(), pids);

    // The rolling restart under a stream of creates.
    let client = MasterClient::from_config(&d.client_config()).expect("client");
    let stream = Stream::start(&client, "/rolling", 2);
    stream.wait_more(50, BOUND).await;
    let from = Instant::now();
    let (code, out, err) = primacy(
        &[
            "process",
            "restart",
            "masters",
            "--rolling",
            "--conf",
            &conf,
        ],
        &env,
    )
    .await;
    let to = Instant::now();
    assert_eq!(code, 0, "rolling restart\n{out}\n{err}");
    assert!(
        out.contains(", 0 errors,"),
        "the probe client saw no error:\n{out}"
    );
    assert!(out.contains("quorum elect"), "{out}");
    stream.wait_more(20, BOUND).await;
    let acks = stream.finish(BOUND).await;
    let tree = tokio::time::timeout(BOUND, list_tree(&client, "/rolling"))
        .await
        .expect("listing within the bound");
    assert_all_present(&acks, &tree, "rolling restart over ssh");
    let new_pids: Vec<u32> = d.pids().into_iter().map(|p| p.expect("pid file")).collect();
    for (old, new) in pids.iter().zip(&new_pids) {
        assert_ne!(old, new, "every master was restarted");
        assert!(!alive(*old));
    }
    eprintln!(
        "rolling restart over ssh: {} creates acknowledged, none lost, no client error; \
         longest client call during the roll {} ms",
        acks.len(),
        longest_call(&acks, from, to).as_millis()
    );

    // Stop: nothing left.
    let (code, out, err) = primacy(&["process", "stop", "masters", "--conf", &conf], &env).await;
    assert_eq!(code, 0, "stop masters\n{out}\n{err}");
    assert!(out.contains("SIGKILL after 30 s"), "{out}");
    assert_eq!(out.matches(" stopped").count(), 3, "{out}");
    for p in &new_pids {
        assert!(!alive(*p), "pid {p} still runs after stop masters");
    }
    assert!(d.pids().iter().all(Option::is_none), "pid files removed");
    let (code, out, _) = primacy(&["process", "status", "masters", "--conf", &conf], &env).await;
    assert_eq!(code, 1, "status of stopped masters is not healthy: {out}");
    assert_eq!(out.matches("not running").count(), 3, "{out}");

    // A host that refuses ssh (sshd listens on 127.0.0.1 only).
    std::fs::write(
        d.conf.join("masters"),
        format!(
            "127.0.0.1 {}\n127.0.0.2 {}\n",
            d.masters[0].display(),
            d.masters[1].display()
        ),
    )
    .expect("masters");
    let (code, out, err) = primacy(&["process", "status", "masters", "--conf", &conf], &env).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("127.0.0.2: ssh failed")
            && err.contains("ssh -o BatchMode=yes")
            && err.contains("127.0.0.2 true"),
        "the error names the host and what to check:\n{err}"
    );
    assert!(!err.contains("127.0.0.1: ssh failed"), "{err}");
}
