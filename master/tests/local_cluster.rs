//! `primacy local-cluster`, the way a newcomer runs it: the whole
//! demonstration on each journal (small `--files`, debug build) must pass
//! with exit 0 and leave no child process behind; and the attacks on the
//! launcher itself: SIGKILL while the cluster runs (every child, ZooKeeper
//! included, dies with it), SIGINT with `--keep` (a clean stop, exit 0),
//! SIGTERM in the middle of the failover (exit 1, nothing left), bad flags
//! and a missing ZooKeeper installation (exit 2 with a message).
//!
//! The runs are serialized: each starts several processes, and on a small
//! machine several clusters at once would only make every wait longer.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const PRIMACY: &str = env!("CARGO_BIN_EXE_primacy");

/// The longest one launcher run may take before the test calls it hung.
const RUN_BOUND: Duration = Duration::from_secs(240);

/// How long the children may take to disappear once the launcher is gone.
const GONE_BOUND: Duration = Duration::from_secs(30);

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// A launcher run with stdout and stderr in files of its own directory's
/// parent (the working directory itself must start empty).
struct Launcher {
    child: Option<Child>,
    out: PathBuf,
    err: PathBuf,
    dir: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Launcher {
    fn start(args: &[&str]) -> Launcher {
        Self::start_with(args, &[])
    }

    fn start_with(args: &[&str], env: &[(&str, &str)]) -> Launcher {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("cluster");
        let out = tmp.path().join("stdout");
        let err = tmp.path().join("stderr");
        let child = Command::new(PRIMACY)
            .arg("local-cluster")
            .args(args)
            .arg("--dir")
            .arg(&dir)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).expect("stdout file"))
            .stderr(std::fs::File::create(&err).expect("stderr file"))
            .spawn()
            .expect("spawn primacy local-cluster");
        Launcher {
            child: Some(child),
            out,
            err,
            dir,
            _tmp: tmp,
        }
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    fn output(&self) -> String {
        format!(
            "--- stdout:\n{}\n--- stderr:\n{}",
            self.stdout(),
            std::fs::read_to_string(&self.err).unwrap_or_default()
        )
    }

    /// Waits for the launcher to exit; returns its exit code (`None` when
    /// killed by a signal). Kills it (and its children) after the bound.
    fn wait(&mut self, bound: Duration) -> Option<i32> {
        let deadline = Instant::now() + bound;
        let child = self.child.as_mut().expect("running");
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                self.child = None;
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                self.child = None;
                kill_all(&self.dir);
                panic!(
                    "the launcher did not exit within {bound:?}\n{}",
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until stdout holds `text`; panics if the launcher exits first
    /// or the bound passes.
    fn wait_for(&mut self, text: &str, bound: Duration) {
        let deadline = Instant::now() + bound;
        while !self.stdout().contains(text) {
            let child = self.child.as_mut().expect("running");
            if let Some(status) = child.try_wait().expect("wait") {
                self.child = None;
                panic!(
                    "the launcher exited ({status}) before printing {text:?}\n{}",
                    self.output()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no {text:?} within {bound:?}\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(rc, 0, "kill({}, {sig})", self.pid());
    }
}

impl Drop for Launcher {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        kill_all(&self.dir);
    }
}

/// `(name, pid)` of every child the launcher recorded in `<dir>/pids`.
fn recorded(dir: &Path) -> Vec<(String, i32)> {
    std::fs::read_to_string(dir.join("pids"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (name, pid) = l.split_once(' ')?;
            Some((name.to_string(), pid.trim().parse().ok()?))
        })
        .collect()
}

/// Whether `pid` is a live (not zombie) primacy or java process: a pid
/// reused by something else since does not count.
fn alive(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next());
    if matches!(state, Some('Z' | 'X') | None) {
        return false;
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmdline = String::from_utf8_lossy(&cmdline);
    cmdline.contains("primacy") || cmdline.contains("java")
}

/// Clean-up after a failed test: SIGKILL every recorded child still alive.
fn kill_all(dir: &Path) {
    for (_, pid) in recorded(dir) {
        if alive(pid) {
            // SAFETY: kill(2) on a pid the launcher recorded and that is
            // still a primacy or java process.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

/// Waits (bounded) until no recorded child is alive; panics naming the
/// survivors.
fn assert_all_gone(dir: &Path, ctx: &str) {
    let children = recorded(dir);
    assert!(
        !children.is_empty(),
        "{ctx}: no pids recorded in {}",
        dir.display()
    );
    let deadline = Instant::now() + GONE_BOUND;
    loop {
        let left: Vec<&(String, i32)> = children.iter().filter(|(_, p)| alive(*p)).collect();
        if left.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            let names = format!("{left:?}");
            kill_all(dir);
            panic!("{ctx}: children still alive {GONE_BOUND:?} after the launcher: {names}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs the whole demonstration and checks its summary.
fn demo_passes(args: &[&str], expect_masters: usize) {
    let _one = serial();
    let mut run = Launcher::start(args);
    let code = run.wait(RUN_BOUND);
    let out = run.stdout();
    eprintln!("{out}");
    assert_eq!(code, Some(0), "{}", run.output());
    for needle in [
        "[1/6] Start the cluster",
        "[2/6] Basic IO test",
        "[3/6] Failover: SIGKILL the primary while clients write",
        "[4/6] Verify every acknowledged write",
        "[5/6] Restart the killed master",
        "[6/6] Summary",
        "as a client saw it",
        "every check passed",
        "stopped every child process",
    ] {
        assert!(out.contains(needle), "no {needle:?} in the output:\n{out}");
    }
    let summary = out.split("[6/6] Summary").nth(1).unwrap_or_default();
    let row = |name: &str| -> String {
        summary
            .lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("no summary row {name:?}:\n{out}"))
            .trim_end()
            .to_string()
    };
    for name in [
        "primary elected",
        "basic IO",
        "failover ",
        "files verified",
        "errors",
        "worker re-registered",
    ] {
        assert!(row(name).ends_with("ok"), "{}", row(name));
    }
    assert!(
        row("files verified").contains("40 of 40"),
        "{}",
        row("files verified")
    );
    assert!(row("retried requests").contains("extra attempts"));
    let masters = recorded(&run.dir)
        .iter()
        .filter(|(n, _)| n.starts_with('m'))
        .map(|(n, _)| n.clone())
        .collect::<std::collections::BTreeSet<_>>();
    assert_eq!(masters.len(), expect_masters, "{masters:?}");
    assert!(recorded(&run.dir).iter().any(|(n, _)| n == "worker"));
    assert_all_gone(&run.dir, "after a passing run");
}

#[test]
fn embedded_demo_passes_and_leaves_no_child() {
    demo_passes(&["--files", "20"], 3);
}

#[test]
fn ufs_single_demo_passes_and_leaves_no_child() {
    demo_passes(&["--files", "20", "--journal", "ufs"], 1);
}

#[test]
fn ufs_zookeeper_demo_passes_and_leaves_no_child() {
    demo_passes(&["--files", "20", "--journal", "ufs-zk"], 3);
}

#[test]
fn sigkill_of_the_launcher_kills_every_child_zookeeper_included() {
    let _one = serial();
    let mut run = Launcher::start(&["--files", "20", "--journal", "ufs-zk", "--keep"]);
    run.wait_for("Press Ctrl-C", RUN_BOUND);
    let children = recorded(&run.dir);
    for name in ["zookeeper", "m1", "m2", "m3", "worker"] {
        assert!(
            children.iter().any(|(n, p)| n == name && alive(*p)),
            "{name} is not running: {children:?}"
        );
    }
    run.signal(libc::SIGKILL);
    assert_eq!(
        run.wait(Duration::from_secs(10)),
        None,
        "killed by a signal"
    );
    assert_all_gone(&run.dir, "after SIGKILL of the launcher");
}

#[test]
fn sigint_with_keep_stops_every_child_and_exits_0() {
    let _one = serial();
    let mut run = Launcher::start(&["--files", "20", "--keep"]);
    run.wait_for("Press Ctrl-C", RUN_BOUND);
    let out = run.stdout();
    assert!(out.contains("every check passed"), "{out}");
    assert!(
        out.contains("http://127.0.0.1:"),
        "status URLs printed:\n{out}"
    );
    assert!(out.contains("try        primacy fs ls"), "{out}");
    run.signal(libc::SIGINT);
    let code = run.wait(Duration::from_secs(60));
    assert_eq!(code, Some(0), "{}", run.output());
    assert!(run.stdout().contains("SIGINT: stopping the cluster"));
    assert_all_gone(&run.dir, "after SIGINT with --keep");
}

#[test]
fn sigterm_during_the_failover_stops_every_child_and_exits_1() {
    let _one = serial();
    // Many files, so the run is still writing when the signal comes.
    let mut run = Launcher::start(&["--files", "2000"]);
    run.wait_for("[3/6] Failover", RUN_BOUND);
    run.signal(libc::SIGTERM);
    let code = run.wait(Duration::from_secs(60));
    assert_eq!(code, Some(1), "{}", run.output());
    let out = run.stdout();
    assert!(out.contains("SIGTERM: stopping the cluster"), "{out}");
    assert!(!out.contains("every check passed"), "{out}");
    assert_all_gone(&run.dir, "after SIGTERM mid-run");
}

#[test]
fn bad_flags_exit_2_with_a_message() {
    let cases: &[(&[&str], &str)] = &[
        (&["--masters", "0"], "--masters"),
        (&["--journal", "nope"], "nope"),
        (&["--journal", "ufs", "--masters", "3"], "one master"),
        (&["--masters", "2"], "majority"),
        (&["--files", "1", "--clients", "2"], "--clients"),
    ];
    for (args, needle) in cases {
        let mut run = Launcher::start(args);
        let code = run.wait(Duration::from_secs(30));
        let err = std::fs::read_to_string(&run.err).unwrap_or_default();
        assert_eq!(code, Some(2), "{args:?}: {}", run.output());
        assert!(err.contains(needle), "{args:?}: no {needle:?} in {err}");
        assert!(recorded(&run.dir).is_empty(), "{args:?} started something");
    }
}

#[test]
fn a_working_directory_that_is_not_empty_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(tmp.path().join("precious"), "data").expect("write");
    let out = Command::new(PRIMACY)
        .args(["local-cluster", "--dir"])
        .arg(tmp.path())
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not empty"), "{err}");
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("precious")).expect("kept"),
        "data"
    );
}

#[test]
fn ufs_zk_without_java_names_the_debian_package() {
    let mut run = Launcher::start_with(&["--journal", "ufs-zk"], &[("PATH", "/nonexistent")]);
    let code = run.wait(Duration::from_secs(30));
    let err = std::fs::read_to_string(&run.err).unwrap_or_default();
    assert_eq!(code, Some(2), "{}", run.output());
    assert!(
        err.contains("install the Debian package zookeeper (sudo apt-get install zookeeper)"),
        "{err}"
    );
}
