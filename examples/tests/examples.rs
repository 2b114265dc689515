//! Runs every example as a real process and checks what it prints, how it
//! exits and what it leaves behind; `client` runs against real clusters of
//! `primacy master` processes.
//!
//! This binary is its own child: with `PRIMACY_EXAMPLES_RUN=NAME` in the
//! environment it *is* example NAME (the example files are compiled in as
//! modules) or, for `primacy`, the `primacy` command line. So the examples
//! are tested with exactly the code `cargo run --example` runs, whatever
//! `cargo test` invocation built this binary, without looking for other
//! build outputs. `harness = false`: `main` below runs the tests in order
//! (they start JVMs and clusters; one at a time suits small machines).
//! Arguments that do not start with `-` filter tests by name.

#[path = "../examples/client.rs"]
mod client;
#[path = "../examples/embed_kv.rs"]
mod embed_kv;
#[path = "../examples/embed_kv_zk.rs"]
mod embed_kv_zk;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use election_zk::launcher::LocalZooKeeper;

/// Names the example (or `primacy`) a child run of this binary is.
const RUN_ENV: &str = "PRIMACY_EXAMPLES_RUN";

/// How long one example run may take before it counts as hung.
const BOUND: Duration = Duration::from_secs(120);

fn main() -> ExitCode {
    if let Ok(which) = std::env::var(RUN_ENV) {
        return match which.as_str() {
            "embed_kv" => embed_kv::main(),
            "embed_kv_zk" => embed_kv_zk::main(),
            "client" => client::main(),
            "primacy" => master::cli::main(),
            other => {
                eprintln!("{RUN_ENV}={other} names no example");
                ExitCode::from(2)
            }
        };
    }
    let tests: &[(&str, fn())] = &[
        ("embed_kv_fails_over_on_raft", embed_kv_fails_over_on_raft),
        (
            "embed_kv_zk_starts_and_stops_its_zookeeper",
            embed_kv_zk_starts_and_stops_its_zookeeper,
        ),
        (
            "embed_kv_zk_uses_a_given_zookeeper",
            embed_kv_zk_uses_a_given_zookeeper,
        ),
        (
            "embed_kv_zk_refuses_an_unreachable_zookeeper",
            embed_kv_zk_refuses_an_unreachable_zookeeper,
        ),
        (
            "client_follows_a_failover_of_an_embedded_cluster",
            client_follows_a_failover_of_an_embedded_cluster,
        ),
        (
            "client_finds_the_primary_through_zookeeper",
            client_finds_the_primary_through_zookeeper,
        ),
        (
            "client_reports_an_unreachable_cluster",
            client_reports_an_unreachable_cluster,
        ),
        (
            "bad_arguments_are_usage_errors",
            bad_arguments_are_usage_errors,
        ),
    ];
    let args = Args::parse(std::env::args().skip(1));
    let selected: Vec<_> = tests
        .iter()
        .filter(|(name, _)| args.selects(name))
        .collect();
    if args.list {
        for (name, _) in &selected {
            println!("{name}: test");
        }
        return ExitCode::SUCCESS;
    }
    println!("\nrunning {} tests", selected.len());
    let mut failed = Vec::new();
    for (name, test) in &selected {
        let started = Instant::now();
        let outcome = std::panic::catch_unwind(test);
        let took = started.elapsed().as_secs_f64();
        match outcome {
            Ok(()) => println!("test {name} ... ok ({took:.1}s)"),
            Err(_) => {
                println!("test {name} ... FAILED ({took:.1}s)");
                failed.push(*name);
            }
        }
    }
    let passed = selected.len() - failed.len();
    if failed.is_empty() {
        println!("\ntest result: ok. {passed} passed; 0 failed\n");
        ExitCode::SUCCESS
    } else {
        println!(
            "\ntest result: FAILED. {passed} passed; {} failed: {failed:?}\n",
            failed.len()
        );
        ExitCode::FAILURE
    }
}

/// The libtest arguments this runner understands: name filters, `--skip
/// NAME`, `--exact` and `--list`; other flags (and the values of those that
/// take one) are accepted and ignored, so `cargo test -- --nocapture` or
/// `--test-threads 1` still run the tests.
#[derive(Default)]
struct Args {
    filters: Vec<String>,
    skips: Vec<String>,
    exact: bool,
    list: bool,
}

impl Args {
    fn parse(args: impl Iterator<Item = String>) -> Args {
        let mut out = Args::default();
        let mut args = args.peekable();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--skip" => out.skips.extend(args.next()),
                "--exact" => out.exact = true,
                "--list" => out.list = true,
                "--test-threads" | "--format" | "--color" | "--logfile" | "-Z"
                | "--shuffle-seed" | "--report-time" => {
                    args.next_if(|v| !v.starts_with('-'));
                }
                flag if flag.starts_with('-') => {}
                filter => out.filters.push(filter.to_string()),
            }
        }
        out
    }

    fn selects(&self, name: &str) -> bool {
        let matches = |f: &String| {
            if self.exact {
                name == f
            } else {
                name.contains(f.as_str())
            }
        };
        (self.filters.is_empty() || self.filters.iter().any(matches))
            && !self.skips.iter().any(matches)
    }
}

/// What a finished child printed and how it exited.
struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Output {
    fn succeeded(&self, what: &str) -> &Self {
        assert_eq!(
            self.code, 0,
            "{what} failed\n--- stdout:\n{}\n--- stderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// The rest of the first stdout line starting with `prefix`.
    fn line(&self, prefix: &str) -> String {
        self.stdout
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no line starting {prefix:?} in:\n{}", self.stdout))
            .to_string()
    }
}

/// This binary as `which` (an example or `primacy`), with `args`.
fn child(which: &str, args: &[String]) -> Command {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut cmd = Command::new(exe);
    cmd.args(args)
        .env(RUN_ENV, which)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    cmd
}

/// Runs `which` to completion (at most [`BOUND`], then it is killed and
/// the test fails) with output in files under `dir`.
fn run(which: &str, args: &[&str], dir: &Path) -> Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let tag = format!("{which}-{}", unique());
    let out = dir.join(format!("{tag}.out"));
    let err = dir.join(format!("{tag}.err"));
    let mut proc = Proc(Some(
        child(which, &args)
            .stdout(std::fs::File::create(&out).expect("stdout file"))
            .stderr(std::fs::File::create(&err).expect("stderr file"))
            .spawn()
            .expect("spawn the test binary"),
    ));
    let deadline = Instant::now() + BOUND;
    let status = loop {
        let c = proc.0.as_mut().expect("running");
        if let Some(s) = c.try_wait().expect("wait") {
            proc.0 = None;
            break s;
        }
        if Instant::now() > deadline {
            drop(proc);
            panic!(
                "{which} {args:?} did not exit within {BOUND:?}; stdout:\n{}",
                std::fs::read_to_string(&out).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = Output {
        code: status.code().unwrap_or(-1),
        stdout: std::fs::read_to_string(out).unwrap_or_default(),
        stderr: std::fs::read_to_string(err).unwrap_or_default(),
    };
    println!(
        "--- {which} {args:?} exited {}:\n{}",
        output.code, output.stdout
    );
    output
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A child killed (SIGKILL) and reaped when dropped, also during a panic.
struct Proc(Option<Child>);

impl Proc {
    fn kill9(&mut self) {
        if let Some(mut c) = self.0.take() {
            c.kill().expect("SIGKILL");
            c.wait().expect("reap");
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn free_port() -> u16 {
    election_zk::launcher::free_port().expect("a free loopback port")
}

/// True while process `pid` exists and is not a zombie.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn embed_kv_fails_over_on_raft() {
    let dir = tempfile::tempdir().unwrap();
    let out = run("embed_kv", &[], dir.path());
    out.succeeded("embed_kv");
    assert_eq!(out.line("backend: "), "embedded journal (Raft)");
    check_demo(&out);
}

/// The story every run of the demo tells, whatever the backend.
fn check_demo(out: &Output) {
    let first = out.line("primary: ");
    let next = out.line("new primary: ");
    let name = |s: &str| s.split_whitespace().next().unwrap_or_default().to_string();
    assert_ne!(name(&first), name(&next), "the primary changed");
    assert!(out
        .stdout
        .contains(&format!("stopping the primary {}", name(&first))));
    assert!(out
        .stdout
        .contains("(standby) refuses a write: this master is not the primary"));
    assert_eq!(
        out.line(&format!("{} reads after the failover: ", name(&next))),
        "color=blue shape=circle"
    );
    assert!(out.stdout.contains(&format!(
        "{}: set color=green (previous: blue)",
        name(&next)
    )));
    assert!(out
        .stdout
        .contains("(standby) applied it too: color=green, 2 keys"));
    assert!(out.stdout.lines().any(|l| l == "done"), "{}", out.stdout);
}

fn embed_kv_zk_starts_and_stops_its_zookeeper() {
    let dir = tempfile::tempdir().unwrap();
    let out = run("embed_kv_zk", &[], dir.path());
    out.succeeded("embed_kv_zk");
    assert_eq!(out.line("backend: "), "UFS journal with ZooKeeper");
    check_demo(&out);
    let started = out.line("started ZooKeeper at ");
    let pid: u32 = started
        .rsplit_once("(pid ")
        .and_then(|(_, p)| p.trim_end_matches(')').parse().ok())
        .unwrap_or_else(|| panic!("no pid in {started:?}"));
    assert!(out.stdout.trim_end().ends_with("stopped ZooKeeper"));
    assert!(!alive(pid), "ZooKeeper (pid {pid}) outlived the example");
}

fn embed_kv_zk_uses_a_given_zookeeper() {
    let dir = tempfile::tempdir().unwrap();
    let zk = LocalZooKeeper::start().expect("a local ZooKeeper");
    let address = zk.address();
    // Twice on one server: each run keeps to its own znodes.
    for _ in 0..2 {
        let out = run("embed_kv_zk", &["--zk", &address], dir.path());
        out.succeeded("embed_kv_zk --zk");
        assert!(!out.stdout.contains("started ZooKeeper"), "{}", out.stdout);
        check_demo(&out);
    }
}

fn embed_kv_zk_refuses_an_unreachable_zookeeper() {
    let dir = tempfile::tempdir().unwrap();
    let nobody = format!("127.0.0.1:{}", free_port());
    let out = run("embed_kv_zk", &["--zk", &nobody, "--wait", "3"], dir.path());
    assert_eq!(
        out.code, 1,
        "stdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );
    assert!(
        out.stderr
            .contains("error: waiting for a primary: timed out after 3s"),
        "{}",
        out.stderr
    );
    assert!(!out.stdout.contains("primary: "), "{}", out.stdout);
}

/// `primacy master` processes of one deployment, killed when dropped.
struct Masters {
    dir: tempfile::TempDir,
    rpc_ports: Vec<u16>,
    flags: Vec<Vec<String>>,
    procs: Vec<Proc>,
}

impl Masters {
    /// Three masters on the embedded journal, formatted and started.
    fn embedded() -> Masters {
        let dir = tempfile::tempdir().unwrap();
        let peers: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let group = peers
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        let rpc_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let flags = (0..3)
            .map(|i| {
                defines(&[
                    ("alluxio.master.journal.type", "EMBEDDED".into()),
                    ("alluxio.master.embedded.journal.addresses", group.clone()),
                    ("alluxio.master.hostname", "127.0.0.1".into()),
                    ("alluxio.master.embedded.journal.port", peers[i].to_string()),
                    ("alluxio.master.rpc.port", rpc_ports[i].to_string()),
                    // Each master serves a status page; the default 19999
                    // would be taken by the first.
                    ("alluxio.master.web.port", free_port().to_string()),
                    (
                        "alluxio.master.journal.folder",
                        dir.path().join(format!("m{i}")).display().to_string(),
                    ),
                ])
            })
            .collect();
        Masters::start(dir, rpc_ports, flags, 3)
    }

    /// Three masters on one UFS folder, elected in ZooKeeper at `zk`.
    fn ufs_zookeeper(zk: &str) -> Masters {
        let dir = tempfile::tempdir().unwrap();
        let folder = format!("file://{}/journal", dir.path().display());
        let rpc_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let flags = rpc_ports
            .iter()
            .map(|port| {
                defines(&[
                    ("alluxio.master.journal.type", "UFS".into()),
                    ("alluxio.master.journal.folder", folder.clone()),
                    ("alluxio.zookeeper.enabled", "true".into()),
                    ("alluxio.zookeeper.address", zk.to_string()),
                    ("alluxio.zookeeper.session.timeout", "2s".into()),
                    ("alluxio.master.hostname", "127.0.0.1".into()),
                    ("alluxio.master.rpc.port", port.to_string()),
                    ("alluxio.master.web.port", free_port().to_string()),
                ])
            })
            .collect();
        // One shared folder: formatted once.
        Masters::start(dir, rpc_ports, flags, 1)
    }

    fn start(
        dir: tempfile::TempDir,
        rpc_ports: Vec<u16>,
        flags: Vec<Vec<String>>,
        formats: usize,
    ) -> Masters {
        for f in &flags[..formats] {
            let mut args = vec!["format".to_string()];
            args.extend(f.iter().cloned());
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run("primacy", &args, dir.path()).succeeded("primacy format");
        }
        let procs = flags
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let log = std::fs::File::create(log_path(dir.path(), i)).unwrap();
                let mut args = vec!["master".to_string()];
                args.extend(f.iter().cloned());
                Proc(Some(
                    child("primacy", &args)
                        .env("RUST_LOG", "info")
                        .stdout(Stdio::null())
                        .stderr(log)
                        .spawn()
                        .expect("spawn primacy master"),
                ))
            })
            .collect();
        Masters {
            dir,
            rpc_ports,
            flags,
            procs,
        }
    }

    fn addresses(&self) -> String {
        self.rpc_ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn index_of(&self, address: &str) -> usize {
        self.rpc_ports
            .iter()
            .position(|p| address == format!("127.0.0.1:{p}"))
            .unwrap_or_else(|| panic!("{address} is none of {}", self.addresses()))
    }

    /// Every master's log, for failure messages.
    fn logs(&self) -> String {
        (0..self.flags.len())
            .map(|i| {
                let log = std::fs::read_to_string(log_path(self.dir.path(), i)).unwrap_or_default();
                let lines: Vec<&str> = log.lines().collect();
                format!(
                    "--- master {i}:\n{}\n",
                    lines[lines.len().saturating_sub(15)..].join("\n")
                )
            })
            .collect()
    }
}

fn log_path(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("master-{i}.log"))
}

fn defines(pairs: &[(&str, String)]) -> Vec<String> {
    pairs
        .iter()
        .flat_map(|(k, v)| ["-D".to_string(), format!("{k}={v}")])
        .collect()
}

/// The client gives up after this long without a primary, well inside [`BOUND`].
const CLIENT_RETRY: &str = "-Dalluxio.user.rpc.retry.max.duration=60s";

fn client_follows_a_failover_of_an_embedded_cluster() {
    let mut masters = Masters::embedded();
    let addresses = masters.addresses();
    let dir = masters.dir.path().to_path_buf();
    let first = run(
        "client",
        &["--addresses", &addresses, "--file", "first", CLIENT_RETRY],
        &dir,
    );
    if first.code != 0 {
        panic!("client failed:\n{}\n{}", first.stderr, masters.logs());
    }
    let primary = first.line("primary: ");
    let primary = primary
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(first.stdout.contains("created /examples/first"));
    assert!(first
        .stdout
        .contains("  /examples/first (0 bytes, complete)"));
    assert_eq!(first.line("served by: "), primary);

    // kill -9 the primary: no goodbye to the group. The next run lists the
    // dead master first; the client must still find the new primary.
    let victim = masters.index_of(&primary);
    masters.procs[victim].kill9();
    let second = run(
        "client",
        &["--addresses", &addresses, "--file", "second", CLIENT_RETRY],
        &dir,
    );
    if second.code != 0 {
        panic!(
            "client failed after the kill:\n{}\n{}",
            second.stderr,
            masters.logs()
        );
    }
    let new_primary = second.line("primary: ");
    assert!(!new_primary.starts_with(&primary), "{new_primary}");
    // The write acknowledged by the killed primary is on the new one.
    assert!(second
        .stdout
        .contains("  /examples/first (0 bytes, complete)"));
    assert!(second
        .stdout
        .contains("  /examples/second (0 bytes, complete)"));
}

fn client_finds_the_primary_through_zookeeper() {
    let zk = LocalZooKeeper::start().expect("a local ZooKeeper");
    let masters = Masters::ufs_zookeeper(&zk.address());
    let dir = masters.dir.path().to_path_buf();
    let out = run("client", &["--zk", &zk.address(), CLIENT_RETRY], &dir);
    if out.code != 0 {
        panic!("client failed:\n{}\n{}", out.stderr, masters.logs());
    }
    let primary = out.line("primary: ");
    let primary = primary.split_whitespace().next().unwrap_or_default();
    masters.index_of(primary);
    assert!(out.stdout.contains("  /examples/hello (0 bytes, complete)"));
}

fn client_reports_an_unreachable_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let nobody = format!("127.0.0.1:{}", free_port());
    let out = run(
        "client",
        &[
            "--addresses",
            &nobody,
            "-D",
            "alluxio.user.rpc.retry.max.duration=2s",
        ],
        dir.path(),
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains(&nobody),
        "names what it tried: {}",
        out.stderr
    );
}

fn bad_arguments_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &[][..],
        &["--addresses", "127.0.0.1:1", "--zk", "127.0.0.1:2"][..],
        &["--addresses"][..],
    ] {
        let out = run("client", args, dir.path());
        assert_eq!(out.code, 2, "client {args:?}: {}", out.stderr);
    }
    let out = run("embed_kv_zk", &["--zk"], dir.path());
    assert_eq!(out.code, 2, "{}", out.stderr);
    // A malformed setting is named, with its value, before anything starts.
    let out = run(
        "client",
        &[
            "--addresses",
            "127.0.0.1:1",
            "-D",
            "alluxio.user.rpc.retry.max.duration=soon",
        ],
        dir.path(),
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("alluxio.user.rpc.retry.max.duration") && out.stderr.contains("soon"),
        "{}",
        out.stderr
    );
}
