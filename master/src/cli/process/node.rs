//! The singular forms, `primacy process start|stop|restart|status
//! master|worker`: one process on this machine, detached (its own session,
//! stdin closed, stdout and stderr appended to its log file), with a pid
//! file, found again by that pid file to be stopped.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::config::{registry, MasterConfig};

use super::pidfile::{self, PidState};
use super::probe;
use super::report::{NodeKind, NodeReport};

/// How often waits poll.
const POLL: Duration = Duration::from_millis(100);
/// How long a process may take to disappear after SIGKILL.
const KILL_BOUND: Duration = Duration::from_secs(10);

/// Why a local action failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Neither `alluxio.logs.dir` nor `alluxio.work.dir` is set.
    #[error("set alluxio.logs.dir or alluxio.work.dir: the {0}'s pid and log files go there")]
    NoLogsDir(NodeKind),
    /// A file or directory could not be used.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was done.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The process could not be started.
    #[error("cannot start {program}: {source}")]
    Spawn {
        /// The executable.
        program: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The process exited while the start waited for it.
    #[error("the {kind} exited ({status}) before it served; the end of its log {}:\n{tail}", log.display())]
    Exited {
        /// Master or worker.
        kind: NodeKind,
        /// Its exit status.
        status: String,
        /// Its log file.
        log: PathBuf,
        /// The last lines of the log.
        tail: String,
    },
    /// The process did not serve within the bound.
    #[error("the {kind} (pid {pid}) did not serve within {bound:?} (last: {last}); it keeps running, see {}", log.display())]
    NotServing {
        /// Master or worker.
        kind: NodeKind,
        /// Its pid.
        pid: u32,
        /// The bound.
        bound: Duration,
        /// The last probe's answer.
        last: String,
        /// Its log file.
        log: PathBuf,
    },
    /// SIGKILL did not end the process.
    #[error("pid {0} still runs {KILL_BOUND:?} after SIGKILL")]
    Unkillable(u32),
}

/// One local process: its kind, configuration and files.
pub struct Node {
    /// Master or worker.
    pub kind: NodeKind,
    /// The configuration directory (absolute) the process is started with.
    pub conf: PathBuf,
    /// `-D` flags passed on to the process.
    pub defines: Vec<(String, String)>,
    /// The configuration it runs with.
    pub config: MasterConfig,
    /// `master.pid` / `worker.pid`.
    pub pid_file: PathBuf,
    /// `master.log` / `worker.log`.
    pub log: PathBuf,
    /// Whether a logs dir is configured: without one there is no pid file
    /// (`pid_file` and `log` are empty), which only `status` accepts.
    files: bool,
}

impl Node {
    /// The node of `kind` configured by `config` (loaded from `conf` and
    /// `defines`); its files go under `alluxio.logs.dir`, else
    /// `${alluxio.work.dir}/logs`. Neither set is an error when
    /// `need_files` (start, stop, restart); `status` goes on without a pid
    /// file and asks the process itself (a process run by systemd or as a
    /// container's main process needs neither key).
    pub fn new(
        kind: NodeKind,
        conf: PathBuf,
        defines: Vec<(String, String)>,
        config: MasterConfig,
        need_files: bool,
    ) -> Result<Node, NodeError> {
        let logs = config
            .properties()
            .get(registry::LOGS_DIR)
            .map(|s| PathBuf::from(&s.value))
            .filter(|p| !p.as_os_str().is_empty())
            .or_else(|| config.work_dir.as_ref().map(|w| Path::new(w).join("logs")));
        let (pid_file, log) = match logs {
            Some(logs) => (
                logs.join(format!("{}.pid", kind.word())),
                logs.join(format!("{}.log", kind.word())),
            ),
            None if need_files => return Err(NodeError::NoLogsDir(kind)),
            None => (PathBuf::new(), PathBuf::new()),
        };
        Ok(Node {
            kind,
            conf,
            defines,
            files: !pid_file.as_os_str().is_empty(),
            pid_file,
            log,
            config,
        })
    }

    /// The address the process serves on, as clients reach it.
    fn address(&self) -> String {
        match self.kind {
            NodeKind::Master => self.config.rpc_address(),
            NodeKind::Worker => format!(
                "{}:{}",
                self.config
                    .worker
                    .hostname
                    .as_deref()
                    .unwrap_or("localhost"),
                self.config.worker.rpc_port
            ),
        }
    }

    /// Where this machine reaches the process (it listens on every
    /// interface, so loopback works whatever the advertised name).
    fn probe_host(&self) -> &'static str {
        "127.0.0.1"
    }

    fn report(&self, state: &str, pid: Option<u32>) -> NodeReport {
        NodeReport {
            kind: self.kind,
            address: self.address(),
            state: state.to_string(),
            pid,
            role: None,
            healthy: false,
            lag: None,
            log: self.log.display().to_string(),
            detail: String::new(),
        }
    }

    /// Takes `<kind>.lock` next to the pid file (waiting for another
    /// `primacy process` acting on the same process): two starts at once
    /// would otherwise both spawn, and the loser's cleanup could drop the
    /// winner's pid file. Held until the returned file is dropped.
    pub fn lock(&self) -> Result<std::fs::File, NodeError> {
        let dir = self.pid_file.parent().unwrap_or(Path::new("."));
        let io = |what, path: &Path, source| NodeError::Io {
            what,
            path: path.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(|e| io("cannot create", dir, e))?;
        let path = dir.join(format!("{}.lock", self.kind.word()));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| io("cannot open", &path, e))?;
        file.lock().map_err(|e| io("cannot lock", &path, e))?;
        Ok(file)
    }

    fn inspect(&self) -> Result<PidState, NodeError> {
        pidfile::inspect(&self.pid_file, self.kind.word(), &self.conf).map_err(|source| {
            NodeError::Io {
                what: "cannot read",
                path: self.pid_file.clone(),
                source,
            }
        })
    }

    /// Removes a pid file that names no running `primacy <kind>`; returns
    /// the pid when one runs.
    fn running_pid(&self) -> Result<Option<u32>, NodeError> {
        if !self.files {
            return Ok(None);
        }
        match self.inspect()? {
            PidState::Running(pid) => Ok(Some(pid)),
            PidState::Absent => Ok(None),
            stale => {
                tracing::info!(file = %self.pid_file.display(), ?stale, "removing a stale pid file");
                pidfile::remove(&self.pid_file).map_err(|source| NodeError::Io {
                    what: "cannot remove",
                    path: self.pid_file.clone(),
                    source,
                })?;
                Ok(None)
            }
        }
    }

    /// Starts the process detached unless one already runs, then waits
    /// (bounded by `wait`) until it serves: a master until its health
    /// endpoint reports a role, a worker until the primary hears from it.
    pub async fn start(&self, wait: Duration) -> Result<NodeReport, NodeError> {
        if let Some(pid) = self.running_pid()? {
            let mut r = self.report("already running", Some(pid));
            self.fill_health(&mut r).await;
            return Ok(r);
        }
        let dir = self.pid_file.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|source| NodeError::Io {
            what: "cannot create",
            path: dir.to_path_buf(),
            source,
        })?;
        let mut child = self.spawn()?;
        let pid = child.id();
        let mut r = self.report("started", Some(pid));
        let deadline = Instant::now() + wait;
        let mut last;
        loop {
            // This command is the process's parent until it exits, so it
            // can reap it and tell its exit status.
            if let Ok(Some(status)) = child.try_wait() {
                let _ = pidfile::remove(&self.pid_file);
                return Err(NodeError::Exited {
                    kind: self.kind,
                    status: status.to_string(),
                    log: self.log.clone(),
                    tail: tail(&self.log, 15),
                });
            }
            match self.kind {
                NodeKind::Master => {
                    match probe::master_health(self.probe_host(), self.config.web_port).await {
                        Ok(h) if h.role == "PRIMARY" || h.role == "STANDBY" => {
                            r.role = Some(h.role);
                            r.healthy = h.healthy;
                            r.lag = h.lag;
                            return Ok(r);
                        }
                        Ok(h) => last = format!("{}: {}", h.role, h.reason),
                        Err(e) => last = e,
                    }
                }
                NodeKind::Worker => match self.worker_fresh().await {
                    Ok(state) => {
                        r.role = Some(state);
                        r.healthy = true;
                        return Ok(r);
                    }
                    Err(e) => last = e,
                },
            }
            if Instant::now() >= deadline {
                return Err(NodeError::NotServing {
                    kind: self.kind,
                    pid,
                    bound: wait,
                    last,
                    log: self.log.clone(),
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// `primacy <kind> --conf DIR [-D k=v]...` in a new session, stdin
    /// closed, output appended to the log; writes the pid file.
    fn spawn(&self) -> Result<std::process::Child, NodeError> {
        let program = std::env::current_exe().map_err(|source| NodeError::Spawn {
            program: "primacy (this executable)".into(),
            source,
        })?;
        let io = |what, source| NodeError::Io {
            what,
            path: self.log.clone(),
            source,
        };
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| io("cannot open", e))?;
        let err = out.try_clone().map_err(|e| io("cannot open", e))?;
        let mut cmd = Command::new(&program);
        cmd.arg(self.kind.word()).arg("--conf").arg(&self.conf);
        for (k, v) in &self.defines {
            cmd.arg("-D").arg(format!("{k}={v}"));
        }
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        // SAFETY: setsid is async-signal-safe; the closure runs between
        // fork and exec. A new session: no terminal, no SIGHUP when the
        // ssh session or shell that started it ends.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|source| NodeError::Spawn {
            program: program.display().to_string(),
            source,
        })?;
        // Never killed by this command: the process outlives it (and is
        // adopted when this command exits).
        pidfile::write(&self.pid_file, child.id()).map_err(|source| NodeError::Io {
            what: "cannot write",
            path: self.pid_file.clone(),
            source,
        })?;
        Ok(child)
    }

    /// Stops the process: SIGTERM (a primary hands primacy over first),
    /// SIGKILL if it still runs after `grace`; `announce` is told the
    /// signal plan before the wait starts.
    pub async fn stop(
        &self,
        grace: Duration,
        announce: &mut dyn FnMut(&str),
    ) -> Result<NodeReport, NodeError> {
        let Some(pid) = self.running_pid()? else {
            return Ok(self.report("not running", None));
        };
        announce(&format!(
            "SIGTERM {} pid {pid}; SIGKILL if it still runs after {} s",
            self.kind,
            grace.as_secs()
        ));
        let started = Instant::now();
        if let Err(e) = pidfile::signal(pid, libc::SIGTERM) {
            tracing::warn!(pid, "SIGTERM failed: {e}");
        }
        let mut state = "stopped";
        if !wait_gone(pid, grace).await {
            announce(&format!(
                "{} pid {pid} still runs after {} s: SIGKILL",
                self.kind,
                grace.as_secs()
            ));
            if let Err(e) = pidfile::signal(pid, libc::SIGKILL) {
                tracing::warn!(pid, "SIGKILL failed: {e}");
            }
            state = "killed";
            if !wait_gone(pid, KILL_BOUND).await {
                return Err(NodeError::Unkillable(pid));
            }
        }
        pidfile::remove(&self.pid_file).map_err(|source| NodeError::Io {
            what: "cannot remove",
            path: self.pid_file.clone(),
            source,
        })?;
        let mut r = self.report(state, Some(pid));
        r.detail = format!("after {} ms", started.elapsed().as_millis());
        Ok(r)
    }

    /// Whether the process runs and, for a master, what its health
    /// endpoint says. A process without a pid file (run by systemd or as
    /// a container's main process) is still asked: a master on its health
    /// endpoint, a worker by asking the primary.
    pub async fn status(&self) -> Result<NodeReport, NodeError> {
        let Some(pid) = self.running_pid()? else {
            let mut r = self.report("not running", None);
            match self.kind {
                NodeKind::Master => {
                    if let Ok(h) =
                        probe::master_health(self.probe_host(), self.config.web_port).await
                    {
                        r.state = "running (no pid file)".into();
                        r.role = Some(h.role);
                        r.healthy = h.healthy;
                        r.lag = h.lag;
                        r.detail = h.reason;
                    }
                }
                NodeKind::Worker => {
                    if let Ok(state) = self.worker_fresh().await {
                        r.state = "running (no pid file)".into();
                        r.role = Some(state);
                        r.healthy = true;
                    }
                }
            }
            return Ok(r);
        };
        let mut r = self.report("running", Some(pid));
        self.fill_health(&mut r).await;
        Ok(r)
    }

    /// Polls [`Node::status`] until the process serves (a master reports
    /// PRIMARY or STANDBY, healthy or not: a standby of a group not yet
    /// complete is ready; the primary hears from the worker), or `wait`
    /// passes.
    /// Returns the last report and whether the process was ready.
    pub async fn wait_ready(&self, wait: Duration) -> Result<(NodeReport, bool), NodeError> {
        let deadline = Instant::now() + wait;
        loop {
            let r = self.status().await?;
            let ready = match self.kind {
                NodeKind::Master => matches!(r.role.as_deref(), Some("PRIMARY" | "STANDBY")),
                NodeKind::Worker => r.healthy,
            };
            if ready || Instant::now() >= deadline {
                return Ok((r, ready));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// `LIVE` when the primary heard from this worker within three
    /// heartbeat intervals and two seconds (its LIVE state alone lasts
    /// until `alluxio.master.worker.timeout`, minutes after the worker
    /// died); else why not.
    async fn worker_fresh(&self) -> Result<String, String> {
        let a = probe::worker_registration(&self.config, &self.address()).await?;
        let fresh =
            self.config.worker.heartbeat_interval.saturating_mul(3) + Duration::from_secs(2);
        if a.state == "LIVE" && u128::from(a.ms_since_heartbeat) <= fresh.as_millis() {
            Ok(a.state)
        } else {
            Err(format!(
                "the primary lists it {} with its last heartbeat {} ms ago",
                a.state, a.ms_since_heartbeat
            ))
        }
    }

    async fn fill_health(&self, r: &mut NodeReport) {
        match self.kind {
            NodeKind::Master => {
                match probe::master_health(self.probe_host(), self.config.web_port).await {
                    Ok(h) => {
                        r.role = Some(h.role);
                        r.healthy = h.healthy;
                        r.lag = h.lag;
                        r.detail = h.reason;
                    }
                    Err(e) => r.detail = e,
                }
            }
            NodeKind::Worker => match self.worker_fresh().await {
                Ok(state) => {
                    r.role = Some(state);
                    r.healthy = true;
                }
                Err(e) => r.detail = e,
            },
        }
    }
}

/// Polls until `pid` no longer runs; false if it still does after `bound`.
async fn wait_gone(pid: u32, bound: Duration) -> bool {
    let deadline = Instant::now() + bound;
    while pidfile::alive(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
    true
}

/// The last `n` lines of `path`, read from its last 64 KiB only (a log
/// appended to for months can be large); empty if unreadable.
fn tail(path: &Path, n: usize) -> String {
    use std::io::{Read, Seek, SeekFrom};
    const WINDOW: u64 = 64 * 1024;
    let mut bytes = Vec::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        if f.seek(SeekFrom::Start(len.saturating_sub(WINDOW))).is_ok() {
            let _ = f.take(WINDOW).read_to_end(&mut bytes);
        }
    }
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
