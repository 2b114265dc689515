//! `primacy process` attacked where a review found it weak: a stale pid
//! file naming another master of the same host (never signalled), a
//! rolling restart of two embedded-journal masters (refused: restarting
//! either loses the Raft majority), primacy moving by itself in the
//! middle of a roll (the roll stops before restarting the new primary),
//! the primary killed with SIGKILL mid-roll (the roll stops, naming the
//! master that is down, and the other two serve), a standby's conf broken
//! mid-roll (refused before that master stops; all three keep running),
//! `status` of a master without pid file or logs dir (systemd, a
//! container), and conf dirs with shell metacharacters sent over ssh.

mod server_support;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use master::client::MasterClient;
use master::config::MasterConfig;
use server_support::*;

/// SIGKILLs every process named in these pid files on drop.
struct KillOnDrop(Vec<PathBuf>);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for f in &self.0 {
            if let Some(pid) = pid_in(f) {
                if alive(pid) {
                    let _ = std::process::Command::new("kill")
                        .args(["-9", &pid.to_string()])
                        .status();
                }
            }
        }
    }
}

fn p(args: &[&str], dir: &Path) -> (i32, String, String) {
    let argv: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let (code, out, err) = run(&argv, dir);
    eprintln!("$ primacy {}\n{out}{err}", args.join(" "));
    (code, out, err)
}

/// A single UFS master's conf dir under `dir`, formatted.
fn single(dir: &Path) -> PathBuf {
    let conf = dir.join("conf");
    std::fs::create_dir_all(&conf).expect("conf");
    let rpc = free_port();
    std::fs::write(
        conf.join("primacy-site.properties"),
        format!(
            "alluxio.master.hostname=127.0.0.1\nalluxio.master.journal.type=UFS\n\
             alluxio.master.rpc.port={rpc}\nalluxio.master.web.port={}\n\
             alluxio.master.rpc.addresses=127.0.0.1:{rpc}\n\
             alluxio.master.journal.folder=file://{}/journal\nalluxio.work.dir={}/work\n",
            free_port(),
            dir.display(),
            dir.display()
        ),
    )
    .expect("site");
    let c = conf.display().to_string();
    assert_eq!(p(&["format", "--conf", &c], dir).0, 0);
    conf
}

#[test]
fn a_stale_pid_file_naming_another_master_of_the_host_is_not_signalled() {
    let a = tempfile::tempdir().expect("tmp");
    let b = tempfile::tempdir().expect("tmp");
    let (ca, cb) = (single(a.path()), single(b.path()));
    let (sa, sb) = (ca.display().to_string(), cb.display().to_string());
    let pid_a = a.path().join("work/logs/master.pid");
    let pid_b = b.path().join("work/logs/master.pid");
    let _guard = KillOnDrop(vec![pid_a.clone(), pid_b.clone()]);
    let (code, out, err) = p(&["process", "start", "master", "--conf", &sb], b.path());
    assert_eq!(code, 0, "{out}{err}");
    let other = pid_in(&pid_b).expect("b's pid file");
    // Master A died long ago; its pid was reused by master B.
    std::fs::create_dir_all(pid_a.parent().expect("logs")).expect("logs");
    std::fs::write(&pid_a, format!("{other}\n")).expect("pid");
    let (code, out, err) = p(
        &[
            "process",
            "stop",
            "master",
            "--timeout",
            "5s",
            "--conf",
            &sa,
        ],
        a.path(),
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("not running"), "{out}");
    assert!(alive(other), "the other conf dir's master was signalled");
    assert!(!pid_a.exists(), "the stale pid file is removed");
    // The same conf dir spelled with a trailing slash is still its own.
    let (code, out, _) = p(
        &["process", "status", "master", "--conf", &format!("{sb}/")],
        b.path(),
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("pid {other}")), "{out}");
    let (code, out, _) = p(&["process", "stop", "master", "--conf", &sb], b.path());
    assert_eq!(code, 0, "{out}");
    assert!(!alive(other));
}

/// `n` embedded masters listed as `localhost <conf>` in `<dir>/conf/masters`;
/// returns the operator's conf dir, the masters' conf dirs and RPC addresses.
fn embedded(dir: &Path, n: usize) -> (PathBuf, Vec<PathBuf>, Vec<String>) {
    let peers: Vec<u16> = (0..n).map(|_| free_port()).collect();
    let rpc: Vec<String> = (0..n)
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect();
    let peer_list = peers
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut hosts = String::new();
    let mut masters = Vec::new();
    for i in 0..n {
        let base = dir.join(format!("m{}", i + 1));
        let conf = base.join("conf");
        std::fs::create_dir_all(&conf).expect("conf");
        let port = rpc[i].rsplit_once(':').expect("port").1;
        std::fs::write(
            conf.join("primacy-site.properties"),
            format!(
                "alluxio.master.hostname=127.0.0.1\nalluxio.master.journal.type=EMBEDDED\n\
                 alluxio.master.embedded.journal.addresses={peer_list}\n\
                 alluxio.master.embedded.journal.port={}\nalluxio.master.rpc.port={port}\n\
                 alluxio.master.web.port={}\nalluxio.master.rpc.addresses={}\n\
                 alluxio.work.dir={}\n",
                peers[i],
                free_port(),
                rpc.join(","),
                base.join("work").display()
            ),
        )
        .expect("site");
        let c = conf.display().to_string();
        assert_eq!(p(&["format", "--conf", &c], dir).0, 0);
        hosts.push_str(&format!("localhost {c}\n"));
        masters.push(conf);
    }
    let conf = dir.join("conf");
    std::fs::create_dir_all(&conf).expect("conf");
    let mut site = format!("alluxio.master.rpc.addresses={}\n", rpc.join(","));
    for (k, v) in retry_pairs() {
        site.push_str(&format!("{k}={v}\n"));
    }
    std::fs::write(conf.join("primacy-site.properties"), site).expect("site");
    std::fs::write(conf.join("masters"), hosts).expect("masters");
    (conf, masters, rpc)
}

fn pid_files(masters: &[PathBuf]) -> Vec<PathBuf> {
    masters
        .iter()
        .map(|c| c.parent().expect("base").join("work/logs/master.pid"))
        .collect()
}

#[test]
fn a_rolling_restart_of_two_embedded_masters_is_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let (conf, masters, _) = embedded(dir.path(), 2);
    let files = pid_files(&masters);
    let _guard = KillOnDrop(files.clone());
    let c = conf.display().to_string();
    let (code, out, err) = p(&["process", "start", "masters", "--conf", &c], dir.path());
    assert_eq!(code, 0, "{out}{err}");
    let pids: Vec<Option<u32>> = files.iter().map(|f| pid_in(f)).collect();
    // Both started as standbys; wait for the election.
    let deadline = Instant::now() + BOUND;
    while !p(&["process", "status", "masters", "--conf", &c], dir.path())
        .1
        .contains("PRIMARY")
    {
        assert!(Instant::now() < deadline, "no primary elected");
        std::thread::sleep(Duration::from_millis(300));
    }
    let (code, out, err) = p(
        &["process", "restart", "masters", "--rolling", "--conf", &c],
        dir.path(),
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("nothing was restarted") && err.contains("majority"),
        "{err}"
    );
    assert!(!out.contains("[1/"), "no step ran:\n{out}");
    assert_eq!(
        files.iter().map(|f| pid_in(f)).collect::<Vec<_>>(),
        pids,
        "no master was restarted"
    );
    let (code, out, err) = p(&["process", "stop", "masters", "--conf", &c], dir.path());
    assert_eq!(code, 0, "{out}{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primacy_moving_by_itself_mid_roll_stops_the_roll() {
    let dir = tempfile::tempdir().expect("tmp");
    let (conf, masters, rpc) = embedded(dir.path(), 3);
    let files = pid_files(&masters);
    let _guard = KillOnDrop(files.clone());
    let c = conf.display().to_string();
    let (code, out, err) = p(&["process", "start", "masters", "--conf", &c], dir.path());
    assert_eq!(code, 0, "{out}{err}");
    let mut pairs = retry_pairs();
    pairs.push(("alluxio.master.rpc.addresses", rpc.join(",")));
    let client = MasterClient::from_config(&MasterConfig::from_pairs(&pairs).expect("config"))
        .expect("client");
    let (primary, _) = client.leader_info().await.expect("a primary");
    let standbys: Vec<String> = rpc.iter().filter(|a| **a != primary).cloned().collect();
    // The roll restarts the standbys in file order; while it restarts the
    // first, primacy moves (from outside) to the second.
    let mut roll = std::process::Command::new(PRIMACY)
        .args(["process", "restart", "masters", "--rolling", "--conf", &c])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("roll");
    let stdout = roll.stdout.take().expect("stdout");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut out = String::new();
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut moved = false;
    while let Ok(Some(line)) = tokio::time::timeout(
        deadline.saturating_duration_since(Instant::now()),
        rx.recv(),
    )
    .await
    {
        out.push_str(&line);
        out.push('\n');
        if !moved && line.starts_with("[1/") {
            client
                .transfer_leadership(&standbys[1])
                .await
                .expect("primacy moves to the second standby");
            moved = true;
        }
    }
    let status = loop {
        if let Some(s) = roll.try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "the roll never ended:\n{out}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut roll.stderr.take().expect("stderr"), &mut err)
        .expect("stderr");
    eprintln!("{out}{err}");
    assert!(moved, "{out}");
    assert_eq!(status.code(), Some(1), "{out}{err}");
    assert!(
        err.contains("it is now the PRIMARY") && err.contains("moved by itself"),
        "{err}"
    );
    assert!(
        !out.contains("[2/"),
        "the new primary was not restarted:\n{out}"
    );
    // The cluster serves, every master runs.
    let (now, _) = client.leader_info().await.expect("a primary");
    assert_eq!(now, standbys[1]);
    assert!(files.iter().all(|f| pid_in(f).is_some_and(alive)));
    let (code, out, err) = p(&["process", "stop", "masters", "--conf", &c], dir.path());
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn status_of_a_master_run_by_a_service_manager_needs_no_logs_dir() {
    // The systemd unit's ExecStartPost and the image's HEALTHCHECK run
    // `process status master` against a master with no pid file; a site
    // file without alluxio.work.dir or alluxio.logs.dir (a UFS journal
    // needs neither) must not fail that check.
    let dir = tempfile::tempdir().expect("tmp");
    let conf = single(dir.path());
    let site = conf.join("primacy-site.properties");
    let text = std::fs::read_to_string(&site).expect("site");
    let text: String = text
        .lines()
        .filter(|l| !l.starts_with("alluxio.work.dir"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&site, text).expect("site");
    let c = conf.display().to_string();
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
    assert_eq!(code, 0, "{out}{err}\n{}", fg.stderr());
    assert!(out.contains("running (no pid file) PRIMARY"), "{out}");
    assert!(!out.contains(" log "), "no log file to name: {out}");
    // Start and stop still need a place for the pid file.
    let (code, _, err) = p(&["process", "stop", "master", "--conf", &c], dir.path());
    assert_eq!(code, 2);
    assert!(
        err.contains("alluxio.logs.dir or alluxio.work.dir"),
        "{err}"
    );
    fg.term();
    assert!(fg.wait_exit(BOUND).success());
}

#[test]
fn conf_dirs_with_shell_metacharacters_reach_the_host_as_one_word() {
    // A stand-in `ssh` that does what sshd does with the command: hands
    // it to the login shell (`sh -c`). A conf dir that the remote shell
    // splits or expands would run `touch`.
    let dir = tempfile::tempdir().expect("tmp");
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    let ssh = bin.join("ssh");
    std::fs::write(
        &ssh,
        "#!/bin/sh\nfor a; do last=$a; done\necho \"$last\" >> \"$(dirname \"$0\")/commands\"\nexec sh -c \"$last\"\n",
    )
    .expect("ssh");
    std::process::Command::new("chmod")
        .args(["+x", &ssh.display().to_string()])
        .status()
        .expect("chmod");
    let pwned = dir.path().join("pwned");
    let p1 = format!("{}1", pwned.display());
    let p2 = format!("{}2", pwned.display());
    // One conf dir from the hosts file (no spaces possible there), the
    // other the command's own, with spaces and quotes.
    let conf = dir.path().join(format!("x; touch {p2}; echo 'q"));
    std::fs::create_dir_all(&conf).expect("conf");
    std::fs::write(conf.join("primacy-site.properties"), "").expect("site");
    std::fs::write(
        conf.join("masters"),
        format!("127.0.0.1 /c;touch${{IFS}}{p1}\n127.0.0.1\n[::1] /$(touch${{IFS}}{p1})\n"),
    )
    .expect("masters");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new(PRIMACY)
        .args(["process", "status", "masters", "--conf"])
        .arg(&conf)
        .env("PATH", path)
        .env_remove("PRIMACY_SSH_OPTS")
        .output()
        .expect("run");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    let commands = std::fs::read_to_string(bin.join("commands")).unwrap_or_default();
    eprintln!("{stdout}{stderr}\nssh was given:\n{commands}");
    assert_eq!(commands.lines().count(), 3, "every entry went through ssh");
    assert!(!Path::new(&p1).exists() && !Path::new(&p2).exists());
    // Each host's primacy got its conf dir whole (it names it in its
    // error, or, for the command's own, runs and finds no master).
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        commands.contains("'/c;touch${IFS}") && commands.contains("'/$(touch${IFS}"),
        "{commands}"
    );
    for d in [
        format!("/c;touch${{IFS}}{p1}"),
        format!("/$(touch${{IFS}}{p1})"),
    ] {
        assert!(
            stderr.contains(&format!("file {d}/primacy-site.properties does not exist")),
            "the host's primacy got {d:?} whole:\n{stderr}"
        );
    }
    assert!(stdout.contains("not running"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_primary_killed_mid_roll_stops_the_roll_with_the_cluster_serving() {
    let dir = tempfile::tempdir().expect("tmp");
    let (conf, masters, rpc) = embedded(dir.path(), 3);
    let files = pid_files(&masters);
    let _guard = KillOnDrop(files.clone());
    let c = conf.display().to_string();
    let (code, out, err) = p(&["process", "start", "masters", "--conf", &c], dir.path());
    assert_eq!(code, 0, "{out}{err}");
    let mut pairs = retry_pairs();
    pairs.push(("alluxio.master.rpc.addresses", rpc.join(",")));
    let client = MasterClient::from_config(&MasterConfig::from_pairs(&pairs).expect("config"))
        .expect("client");
    let (primary, _) = client.leader_info().await.expect("a primary");
    let at = rpc.iter().position(|a| *a == primary).expect("listed");
    let primary_pid = pid_in(&files[at]).expect("pid");
    let mut roll = std::process::Command::new(PRIMACY)
        .args(["process", "restart", "masters", "--rolling", "--conf", &c])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("roll");
    let stdout = roll.stdout.take().expect("stdout");
    let mut out = String::new();
    let mut killed = false;
    // The roll's output ends when it exits; bounded by its own --wait.
    for line in std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
    {
        out.push_str(&line);
        out.push('\n');
        if !killed && line.starts_with("[1/") {
            std::process::Command::new("kill")
                .args(["-9", &primary_pid.to_string()])
                .status()
                .expect("kill");
            killed = true;
        }
    }
    let status = roll.wait().expect("wait");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut roll.stderr.take().expect("stderr"), &mut err)
        .expect("stderr");
    eprintln!("{out}{err}");
    assert!(killed, "{out}");
    assert_eq!(status.code(), Some(1), "{out}{err}");
    assert!(
        err.contains("stopped before restarting") && err.contains("do not answer"),
        "the message names the master that is down: {err}"
    );
    assert!(
        !out.contains("quorum elect"),
        "the roll went no further:\n{out}"
    );
    // The two others run and one of them is the primary.
    let (now, _) = client.leader_info().await.expect("a primary");
    assert_ne!(now, primary);
    for (i, f) in files.iter().enumerate() {
        if i != at {
            assert!(pid_in(f).is_some_and(alive), "{}", f.display());
        }
    }
    let (code, out, err) = p(&["process", "stop", "masters", "--conf", &c], dir.path());
    assert_eq!(code, 0, "{out}{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conf_broken_mid_roll_stops_the_roll_before_that_master_stops() {
    let dir = tempfile::tempdir().expect("tmp");
    let (conf, masters, rpc) = embedded(dir.path(), 3);
    let files = pid_files(&masters);
    let _guard = KillOnDrop(files.clone());
    let c = conf.display().to_string();
    let (code, out, err) = p(&["process", "start", "masters", "--conf", &c], dir.path());
    assert_eq!(code, 0, "{out}{err}");
    let mut pairs = retry_pairs();
    pairs.push(("alluxio.master.rpc.addresses", rpc.join(",")));
    let client = MasterClient::from_config(&MasterConfig::from_pairs(&pairs).expect("config"))
        .expect("client");
    let (primary, _) = client.leader_info().await.expect("a primary");
    // A broken conf dir is refused before anything restarts, so break
    // the second standby's while the roll restarts the first.
    let second = rpc
        .iter()
        .enumerate()
        .filter(|(_, a)| **a != primary)
        .nth(1)
        .expect("two standbys")
        .0;
    let site = masters[second].join("primacy-site.properties");
    let mut roll = std::process::Command::new(PRIMACY)
        .args(["process", "restart", "masters", "--rolling", "--conf", &c])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("roll");
    let stdout = roll.stdout.take().expect("stdout");
    let mut out = String::new();
    for line in std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
    {
        out.push_str(&line);
        out.push('\n');
        if line.starts_with("[1/") {
            let mut text = std::fs::read_to_string(&site).expect("site");
            text.push_str("alluxio.master.web.port=not-a-port\n");
            std::fs::write(&site, text).expect("site");
        }
    }
    let status = roll.wait().expect("wait");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut roll.stderr.take().expect("stderr"), &mut err)
        .expect("stderr");
    eprintln!("{out}{err}");
    assert_eq!(status.code(), Some(1), "{out}{err}");
    assert!(
        err.contains("restarting") && err.contains("failed") && err.contains("not-a-port"),
        "the message names the master and why: {err}"
    );
    assert!(
        out.contains("[2/") && !out.contains("[3/"),
        "no further step:\n{out}"
    );
    assert!(out.contains(", 0 errors,"), "clients saw no error:\n{out}");
    let (now, _) = client.leader_info().await.expect("the others serve");
    assert_eq!(now, primary);
    // The broken one was refused before it was stopped: all three run.
    assert!(files.iter().all(|f| pid_in(f).is_some_and(alive)));
    // Stopping does not need a valid web port.
    let good = std::fs::read_to_string(&site)
        .expect("site")
        .replace("alluxio.master.web.port=not-a-port\n", "");
    std::fs::write(&site, good).expect("site");
    let (code, out, err) = p(&["process", "stop", "masters", "--conf", &c], dir.path());
    assert_eq!(code, 0, "{out}{err}");
}
