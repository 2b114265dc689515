//! The processes of one run: `primacy master`s and a ZooKeeper server,
//! each killed (SIGKILL, then reaped) when dropped, and each started with
//! PR_SET_PDEATHSIG so that a runner that dies leaves nothing behind.

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::ChaosError;

/// Spawns `program args` with stdout and stderr appended to `log`, killed
/// by the kernel if the runner's thread dies.
fn spawn(
    program: &Path,
    args: &[String],
    log: &Path,
    env: &[(String, String)],
) -> Result<Child, ChaosError> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| ChaosError::io(format!("open {}", log.display()), e))?;
    let err = file
        .try_clone()
        .map_err(|e| ChaosError::io(format!("open {}", log.display()), e))?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err);
    // SAFETY: prctl is async-signal-safe and touches only this child.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd.spawn()
        .map_err(|e| ChaosError::io(format!("spawn {}", program.display()), e))
}

/// Sends `signal` to `pid`; false if it could not be delivered.
pub fn signal(pid: u32, signal: libc::c_int) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill(2) with a pid we spawned and still own (not reaped).
    unsafe { libc::kill(pid, signal) == 0 }
}

/// One master: fixed arguments, so a restart runs exactly as before.
pub struct MasterProc {
    /// `m1`, `m2`, ...
    pub name: String,
    /// Its RPC port.
    pub rpc_port: u16,
    /// Its web port (state digest endpoint).
    pub web_port: u16,
    /// `primacy master` flags.
    pub args: Vec<String>,
    /// Appended across restarts.
    pub log: PathBuf,
    /// The `FAILPOINTS` value of its next start (empty: none).
    pub failpoints: String,
    child: Option<Child>,
    paused: bool,
    /// How often it was started.
    pub starts: u32,
}

impl MasterProc {
    /// A master not started yet.
    pub fn new(
        name: String,
        rpc_port: u16,
        web_port: u16,
        args: Vec<String>,
        log: PathBuf,
    ) -> Self {
        MasterProc {
            name,
            rpc_port,
            web_port,
            args,
            log,
            failpoints: String::new(),
            child: None,
            paused: false,
            starts: 0,
        }
    }

    /// `127.0.0.1:rpc_port`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.rpc_port)
    }

    /// Starts `primacy master` unless it runs.
    pub fn start(&mut self, primacy: &Path) -> Result<(), ChaosError> {
        if self.child.is_some() {
            return Ok(());
        }
        self.starts += 1;
        let mut args = vec!["master".to_string()];
        args.extend(self.args.iter().cloned());
        // CHAOS_RUST_LOG raises the masters' log level for a replay.
        let level = std::env::var("CHAOS_RUST_LOG").unwrap_or_else(|_| "info".to_string());
        let mut env = vec![("RUST_LOG".to_string(), level)];
        if !self.failpoints.is_empty() {
            env.push(("FAILPOINTS".to_string(), self.failpoints.clone()));
        }
        self.child = Some(spawn(primacy, &args, &self.log, &env)?);
        self.paused = false;
        Ok(())
    }

    /// Whether a process was started and not killed or reaped since.
    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    /// Whether it is stopped by SIGSTOP.
    pub fn paused(&self) -> bool {
        self.paused
    }

    /// `kill -9` and reap (continuing a paused process is not needed:
    /// SIGKILL ends a stopped process too).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.paused = false;
    }

    /// SIGSTOP (true if sent).
    pub fn pause(&mut self) -> bool {
        let sent = self
            .child
            .as_ref()
            .is_some_and(|c| signal(c.id(), libc::SIGSTOP));
        self.paused |= sent;
        sent
    }

    /// SIGCONT.
    pub fn resume(&mut self) {
        if let Some(c) = self.child.as_ref() {
            signal(c.id(), libc::SIGCONT);
        }
        self.paused = false;
    }

    /// If the process exited on its own, reaps it and returns its status.
    pub fn reap_exited(&mut self) -> Option<String> {
        let c = self.child.as_mut()?;
        match c.try_wait() {
            Ok(Some(status)) => {
                self.child = None;
                self.paused = false;
                Some(status.to_string())
            }
            _ => None,
        }
    }
}

impl Drop for MasterProc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A standalone ZooKeeper on a fixed loopback port and data directory, so
/// a restart keeps its sessions' data and its address.
pub struct ZooKeeperProc {
    /// Its client port.
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl ZooKeeperProc {
    /// Prepares a server in `dir` on a free port (not started).
    pub fn new(dir: PathBuf) -> Result<Self, ChaosError> {
        let port = journal_core::ports::free_loopback_port()
            .map_err(|e| ChaosError::io("find a free port", e))?;
        Ok(ZooKeeperProc {
            port,
            dir,
            child: None,
        })
    }

    /// `127.0.0.1:port`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts the JVM and waits (bounded) until it serves.
    pub fn start(&mut self) -> Result<(), ChaosError> {
        if self.child.is_some() {
            return Ok(());
        }
        let args = election_zk::launcher::prepare_standalone(&self.dir, self.port)
            .map_err(|e| ChaosError::Setup(e.to_string()))?;
        let log = self.dir.join("zookeeper.log");
        self.child = Some(spawn(Path::new("java"), &args, &log, &[])?);
        let deadline = std::time::Instant::now() + election_zk::launcher::START_TIMEOUT;
        while !election_zk::launcher::is_serving(self.port) {
            if std::time::Instant::now() > deadline {
                return Err(ChaosError::Setup(format!(
                    "ZooKeeper on port {} did not serve within {:?}",
                    self.port,
                    election_zk::launcher::START_TIMEOUT
                )));
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Ok(())
    }

    /// Kills the server (SIGKILL) and reaps it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for ZooKeeperProc {
    fn drop(&mut self) {
        self.stop();
    }
}
