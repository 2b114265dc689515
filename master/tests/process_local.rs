//! `primacy process` on this machine against bad input and bad timing: a
//! malformed hosts file, a conf dir without a work dir, a master that dies
//! while it starts, stale, garbage and reused pid files (nothing foreign is
//! ever signalled), two starts at once (one master), a master that ignores SIGTERM (stopped with SIGSTOP:
//! SIGKILL after the timeout), a rolling restart that cannot be safe, and
//! a master run without a pid file (systemd, a container) that `status`
//! still checks; a worker started, seen by the primary and stopped.

mod server_support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use server_support::*;

/// A single UFS master's conf dir (`file://` journal, no election).
fn single(dir: &Path, work: bool) -> (PathBuf, u16) {
    let conf = dir.join("conf");
    std::fs::create_dir_all(&conf).expect("conf");
    let web = free_port();
    let rpc = free_port();
    let mut site = format!(
        "alluxio.master.hostname=127.0.0.1\nalluxio.master.journal.type=UFS\n\
         alluxio.master.rpc.port={rpc}\nalluxio.master.web.port={web}\n\
         alluxio.master.rpc.addresses=127.0.0.1:{rpc}\n\
         alluxio.worker.hostname=127.0.0.1\nalluxio.worker.rpc.port={}\n\
         alluxio.master.journal.folder=file://{}/journal\n",
        free_port(),
        dir.display()
    );
    if work {
        site.push_str(&format!("alluxio.work.dir={}/work\n", dir.display()));
    }
    std::fs::write(conf.join("primacy-site.properties"), site).expect("site");
    (conf, web)
}

fn p(args: &[&str], dir: &Path) -> (i32, String, String) {
    let argv: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let (code, out, err) = run(&argv, dir);
    eprintln!("$ primacy {}\n{out}{err}", args.join(" "));
    (code, out, err)
}

/// SIGKILLs the pid in `file` on drop, if it still runs.
struct Guard(PathBuf);
impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(pid) = pid_in(&self.0) {
            if alive(pid) {
                let _ = std::process::Command::new("kill")
                    .args(["-9", &pid.to_string()])
                    .status();
            }
        }
    }
}

#[test]
fn bad_hosts_files_and_flags_are_refused_before_anything_runs() {
    let dir = tempfile::tempdir().expect("tmp");
    let (conf, _) = single(dir.path(), true);
    let c = conf.display().to_string();
    std::fs::write(conf.join("masters"), "m1\nm2 relative/conf\n").expect("masters");
    let (code, _, err) = p(&["process", "start", "masters", "--conf", &c], dir.path());
    assert_eq!(code, 2);
    assert!(
        err.contains(&format!("{c}/masters:2:")) && err.contains("absolute"),
        "{err}"
    );
    std::fs::write(conf.join("masters"), "-oProxyCommand=evil\n").expect("masters");
    let (code, _, err) = p(&["process", "stop", "masters", "--conf", &c], dir.path());
    assert_eq!(code, 2);
    assert!(err.contains("masters:1:"), "{err}");
    std::fs::write(conf.join("masters"), "# nobody\n").expect("masters");
    let (code, _, err) = p(&["process", "status", "masters", "--conf", &c], dir.path());
    assert_eq!(code, 2);
    assert!(err.contains("lists no host"), "{err}");
    std::fs::remove_file(conf.join("masters")).expect("rm");
    let (code, _, err) = p(&["process", "start", "masters", "--conf", &c], dir.path());
    assert_eq!(code, 2);
    assert!(
        err.contains("masters") && err.contains("cannot read"),
        "{err}"
    );
    let (code, _, err) = p(
        &["process", "restart", "workers", "--rolling", "--conf", &c],
        dir.path(),
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("--rolling goes with `restart masters`"),
        "{err}"
    );
    let (code, _, _) = p(&["process", "start", "everything"], dir.path());
    assert_eq!(code, 2);
    let (code, _, _) = p(
        &[
            "process",
            "stop",
            "master",
            "--timeout",
            "soon",
            "--conf",
            &c,
        ],
        dir.path(),
    );
    assert_eq!(code, 2);
    // Unbalanced quotes in the ssh options.
    std::fs::write(conf.join("masters"), "m1\n").expect("masters");
    let out = std::process::Command::new(PRIMACY)
        .args(["process", "status", "masters", "--conf", &c])
        .env("PRIMACY_SSH_OPTS", "-o 'broken")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unbalanced quotes"));
    // One master: a rolling restart cannot keep the cluster serving.
    std::fs::write(conf.join("masters"), format!("localhost {c}\n")).expect("masters");
    let (code, _, err) = p(
        &["process", "restart", "masters", "--rolling", "--conf", &c],
        dir.path(),
    );
    assert_eq!(code, 1);
    assert!(err.contains("at least 2 masters"), "{err}");
    // No work dir and no logs dir: nowhere for the pid file.
    let bare = tempfile::tempdir().expect("tmp");
    let (bare_conf, _) = single(bare.path(), false);
    let (code, _, err) = p(
        &[
            "process",
            "start",
            "master",
            "--conf",
            &bare_conf.display().to_string(),
        ],
        bare.path(),
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("alluxio.logs.dir or alluxio.work.dir"),
        "{err}"
    );
}

#[test]
fn a_master_that_dies_at_start_is_reported_with_its_log() {
    let dir = tempfile::tempdir().expect("tmp");
    let (conf, _) = single(dir.path(), true);
    let c = conf.display().to_string();
    let _guard = Guard(dir.path().join("work/logs/master.pid"));
    // Not formatted: the master exits 2 at once.
    let (code, _, err) = p(&["process", "start", "master", "--conf", &c], dir.path());
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("exited (exit status: 2)") && err.contains("primacy format"),
        "the error shows the master's own explanation from its log:\n{err}"
    );
    assert!(
        !dir.path().join("work/logs/master.pid").exists(),
        "no pid file for a process that is gone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_and_reused_pid_files_and_a_master_deaf_to_sigterm() {
    let dir = tempfile::tempdir().expect("tmp");
    let (conf, web) = single(dir.path(), true);
    let c = conf.display().to_string();
    let logs = dir.path().join("work/logs");
    let pid_file = logs.join("master.pid");
    let _guard = Guard(pid_file.clone());
    assert_eq!(p(&["format", "--conf", &c], dir.path()).0, 0);

    // A pid file naming a live process that is not `primacy master` (pid
    // reuse): never signalled, the file is dropped and a master starts.
    std::fs::create_dir_all(&logs).expect("logs");
    let mut bystander = std::process::Command::new("sleep")
        .arg("600")
        .spawn()
        .expect("sleep");
    std::fs::write(&pid_file, format!("{}\n", bystander.id())).expect("pid");
    let (code, out, _) = p(&["process", "stop", "master", "--conf", &c], dir.path());
    assert_eq!(code, 0);
    assert!(out.contains("not running"), "{out}");
    assert!(alive(bystander.id()), "the bystander was not signalled");
    assert!(!pid_file.exists(), "the stale pid file is removed");
    std::fs::write(&pid_file, "garbage").expect("pid");
    let (code, out, err) = p(&["process", "start", "master", "--conf", &c], dir.path());
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("started PRIMARY"), "{out}");
    let pid = pid_in(&pid_file).expect("pid file");
    assert!(alive(pid) && alive(bystander.id()));
    let _ = bystander.kill();
    let _ = bystander.wait();

    // status answers 0 and says the role.
    let (code, out, _) = p(&["process", "status", "master", "--conf", &c], dir.path());
    assert_eq!(code, 0);
    assert!(out.contains("running PRIMARY"), "{out}");

    // A master that cannot act on SIGTERM (stopped): SIGKILL after the
    // timeout, announced before the wait.
    assert!(std::process::Command::new("kill")
        .args(["-STOP", &pid.to_string()])
        .status()
        .expect("kill")
        .success());
    let (code, out, err) = p(
        &["process", "stop", "master", "--timeout", "2s", "--conf", &c],
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("SIGKILL if it still runs after 2 s"), "{out}");
    assert!(out.contains("still runs after 2 s: SIGKILL"), "{out}");
    assert!(out.contains(" killed pid"), "{out}");
    assert!(!alive(pid) && !pid_file.exists());

    // Two starts at once: one master starts, the other start finds it.
    let spawn = || {
        std::process::Command::new(PRIMACY)
            .args(["process", "start", "master", "--conf", &c])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn")
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (
        a.wait_with_output().expect("a"),
        b.wait_with_output().expect("b"),
    );
    let both = format!(
        "{}{}",
        String::from_utf8_lossy(&a.stdout),
        String::from_utf8_lossy(&b.stdout)
    );
    assert!(a.status.success() && b.status.success(), "{both}");
    assert_eq!(both.matches("started PRIMARY").count(), 1, "{both}");
    assert_eq!(both.matches("already running PRIMARY").count(), 1, "{both}");
    let pid = pid_in(&pid_file).expect("pid file");
    assert!(both.contains(&format!("pid {pid} ")), "{both}");
    let (code, out, _) = p(&["process", "stop", "master", "--conf", &c], dir.path());
    assert_eq!(code, 0, "{out}");
    assert!(!alive(pid));

    // Run in the foreground (as systemd or a container runs it): no pid
    // file, and status still asks the health endpoint.
    let mut fg = Proc::spawn(
        &["master".to_string(), "--conf".to_string(), c.clone()],
        &dir.path().join("fg.log"),
    );
    let (code, out, err) = p(
        &[
            "process", "status", "master", "--ready", "--wait", "60s", "--conf", &c,
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "ready as systemd's ExecStartPost asks: {out}{err}");
    assert!(out.contains("running (no pid file) PRIMARY"), "{out}");
    // Nothing listens on the worker's port: not ready within the bound.
    let (code, out, _) = p(
        &[
            "process",
            "status",
            "worker",
            "--ready",
            "--wait",
            "1s",
            "--conf",
            &c,
            "-D",
            &format!("alluxio.worker.rpc.port={}", free_port()),
        ],
        dir.path(),
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("worker") && out.contains("not running"),
        "{out}"
    );
    let (code, _, err) = p(&["process", "start", "masters", "--ready"], dir.path());
    assert_eq!(code, 2, "{err}");

    // A worker: started detached, seen by the primary, stopped.
    let worker_pid = dir.path().join("work/logs/worker.pid");
    let _worker_guard = Guard(worker_pid.clone());
    let (code, out, err) = p(&["process", "start", "worker", "--conf", &c], dir.path());
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("started LIVE"), "{out}");
    let wpid = pid_in(&worker_pid).expect("worker pid file");
    let (code, out, _) = p(&["process", "status", "worker", "--conf", &c], dir.path());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("running LIVE"), "{out}");
    let (code, out, _) = p(&["process", "stop", "worker", "--conf", &c], dir.path());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("stopped pid"), "{out}");
    assert!(!alive(wpid) && !worker_pid.exists());
    let deadline = std::time::Instant::now() + BOUND;
    loop {
        let (code, out, _) = p(&["process", "status", "master", "--conf", &c], dir.path());
        if code == 0 {
            assert!(out.contains("running (no pid file) PRIMARY"), "{out}");
            break;
        }
        assert!(fg.try_exit().is_none(), "{}", fg.stderr());
        assert!(
            std::time::Instant::now() < deadline,
            "status never healthy: {out}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = web;
    fg.term();
    assert!(fg.wait_exit(BOUND).success());
}
