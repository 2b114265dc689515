//! Running the real `primacy` binary in tests: child processes that are
//! killed when dropped, free loopback ports, raw tonic clients, and
//! bounded waits (never assertions about speed). [`cluster`] runs whole
//! deployments of masters; [`workload`] drives them through the client;
//! [`failover`] is the kill -9 scenario the `failover_*` tests share;
//! [`stream`] is a steady stream of writes with pause measurements;
//! [`admin`] runs `primacy journal` and parses its JSON.
// Each test binary includes this module and uses a different part of it.
#![allow(dead_code, unused_imports)]

pub mod admin;
pub mod cluster;
pub mod failover;
pub mod http;
pub mod stream;
pub mod workload;

pub use cluster::{retry_pairs, Cluster, Deployment, Member};
pub use failover::{kill_primary_during_writes, Writer};
pub use workload::*;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use journal_raft::auth::{AuthChannel, ClientAuth};
use master::proto::rpc::file_system_master_client::FileSystemMasterClient;
use master::proto::rpc::meta_master_client::MetaMasterClient;
use master::proto::rpc::worker_master_client::WorkerMasterClient;
use master::proto::rpc::{GetMasterInfoRequest, MasterInfo};
use tonic::transport::Channel;

/// The binary under test.
pub const PRIMACY: &str = env!("CARGO_BIN_EXE_primacy");

/// How long anything in these tests may take before it counts as hung.
pub const BOUND: Duration = Duration::from_secs(60);

/// A free TCP port on 127.0.0.1 (free when this returns).
pub fn free_port() -> u16 {
    journal_core::ports::free_loopback_port().expect("a free loopback port")
}

/// `-D key=value` flags as arguments.
pub fn flags(pairs: &[(&str, String)]) -> Vec<String> {
    pairs
        .iter()
        .flat_map(|(k, v)| ["-D".to_string(), format!("{k}={v}")])
        .collect()
}

/// A running `primacy` process, killed (and reaped) when dropped, whose
/// stderr goes to a file for assertions and failure reports.
pub struct Proc {
    child: Option<Child>,
    stderr: PathBuf,
}

impl Proc {
    /// Starts `primacy <args>` with stderr into `log` (stdout discarded).
    pub fn spawn(args: &[String], log: &Path) -> Proc {
        let file = std::fs::File::create(log).expect("log file");
        let child = Command::new(PRIMACY)
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn primacy");
        Proc {
            child: Some(child),
            stderr: log.to_path_buf(),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// What the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Its exit status if it has exited.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Sends SIGTERM.
    pub fn term(&self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "kill -TERM {}", self.pid());
    }

    /// `kill -9`: SIGKILL (what `Child::kill` sends on Unix), so nothing of
    /// the process's shutdown path runs; then reaps it. Returns its status.
    pub fn kill9(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("the process was already reaped");
        child.kill().expect("SIGKILL");
        child.wait().expect("reap")
    }

    /// Waits (bounded) for the process to exit and returns its status.
    pub fn wait_exit(&mut self, bound: Duration) -> ExitStatus {
        let deadline = Instant::now() + bound;
        loop {
            if let Some(s) = self.try_exit() {
                self.child = None;
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "primacy did not exit within {bound:?}; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs `primacy <args>` to completion (bounded); returns the exit code,
/// stdout and stderr.
pub fn run(args: &[String], dir: &Path) -> (i32, String, String) {
    let out = dir.join(format!("run-{}.out", free_port()));
    let err = out.with_extension("err");
    let mut child = Command::new(PRIMACY)
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).expect("stdout file"))
        .stderr(std::fs::File::create(&err).expect("stderr file"))
        .spawn()
        .expect("spawn primacy");
    let deadline = Instant::now() + BOUND;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("primacy {args:?} did not exit within {BOUND:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (
        status.code().unwrap_or(-1),
        std::fs::read_to_string(out).unwrap_or_default(),
        std::fs::read_to_string(err).unwrap_or_default(),
    )
}

/// A gRPC channel to `127.0.0.1:port` (connects lazily).
pub fn channel(port: u16) -> Channel {
    Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .expect("uri")
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(20))
        .connect_lazy()
}

/// The credentials the raw clients below send (none unless a test binary
/// whose masters require authentication set them).
static CREDENTIALS: std::sync::OnceLock<ClientAuth> = std::sync::OnceLock::new();

/// Makes every raw client of this test process ([`fs_client`],
/// [`worker_client`], [`info`], and so the cluster's waits) send
/// `credentials`. Once per process; a second call with other credentials
/// panics.
pub fn use_credentials(credentials: ClientAuth) {
    let set = CREDENTIALS.get_or_init(|| credentials.clone());
    assert!(
        *set == credentials,
        "one set of credentials per test process"
    );
}

/// [`channel`] sending the credentials set by [`use_credentials`].
pub fn authed_channel(port: u16) -> AuthChannel {
    CREDENTIALS
        .get()
        .cloned()
        .unwrap_or_default()
        .wrap(channel(port))
}

/// Raw FileSystemMaster client.
pub fn fs_client(port: u16) -> FileSystemMasterClient<AuthChannel> {
    FileSystemMasterClient::new(authed_channel(port))
}

/// Raw WorkerMaster client.
pub fn worker_client(port: u16) -> WorkerMasterClient<AuthChannel> {
    WorkerMasterClient::new(authed_channel(port))
}

/// GetMasterInfo from the master on `port`, or the error.
pub async fn info(port: u16) -> Result<MasterInfo, tonic::Status> {
    MetaMasterClient::new(authed_channel(port))
        .get_master_info(GetMasterInfoRequest {})
        .await
        .map(tonic::Response::into_inner)
}

/// Polls the master on `port` until `ok(info)` holds; fails (with the
/// master's stderr) if it exits or `bound` passes.
pub async fn wait_info(
    proc: &mut Proc,
    port: u16,
    bound: Duration,
    what: &str,
    ok: impl Fn(&MasterInfo) -> bool,
) -> MasterInfo {
    let deadline = Instant::now() + bound;
    loop {
        if let Some(s) = proc.try_exit() {
            panic!(
                "master exited ({s}) while waiting for {what}; stderr:\n{}",
                proc.stderr()
            );
        }
        if let Ok(i) = info(port).await {
            if ok(&i) {
                return i;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{what} not reached within {bound:?}; stderr:\n{}",
            proc.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether process `pid` runs (a zombie does not).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .and_then(|(_, r)| r.split_whitespace().next().map(|st| st != "Z"))
        })
        .unwrap_or(false)
}

/// The pid a pid file holds, if it holds one.
pub fn pid_in(file: &Path) -> Option<u32> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

/// Runs `primacy <args>` with `env` added, without the caller's
/// `PRIMACY_CONF_DIR` and `PRIMACY_SSH_OPTS`, stdin closed, killed when
/// it outlives `bound` (a panic names the command); prints and returns the
/// exit code, stdout and stderr.
pub async fn primacy_bounded(
    args: &[&str],
    env: &[(&str, String)],
    bound: Duration,
) -> (i32, String, String) {
    let mut cmd = tokio::process::Command::new(PRIMACY);
    cmd.args(args)
        .env_remove("PRIMACY_CONF_DIR")
        .env_remove("PRIMACY_SSH_OPTS")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(bound, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("primacy {args:?} did not finish within {bound:?}"))
        .expect("run primacy");
    let (o, e) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    eprintln!("$ primacy {}\n{o}{e}", args.join(" "));
    (out.status.code().unwrap_or(-1), o, e)
}
