//! Child processes of the harness (journal members, `primacy master`,
//! ZooKeeper and etcd servers): every one is killed when its handle is
//! dropped, when the harness gets Ctrl-C, and when the harness dies
//! (the kernel sends SIGKILL to a child whose parent thread exits).

use std::collections::BTreeSet;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

/// Process ids of every child still running, for the Ctrl-C handler.
static LIVE: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

/// A child process that is SIGKILLed and reaped when dropped.
#[derive(Debug)]
pub struct Proc {
    /// What it is, for messages (`raft-3/m2`, `zookeeper-1/s1`).
    pub name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Proc {
    /// Starts `program args` with stdin closed, stdout piped when
    /// `pipe_stdout` (else into the log) and stderr appended to `log`.
    /// The child gets SIGKILL when the spawning thread exits, so a crashed
    /// harness leaves nothing behind.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        log: &Path,
        pipe_stdout: bool,
    ) -> std::io::Result<Proc> {
        let err = std::fs::File::create(log)?;
        let out = if pipe_stdout {
            Stdio::piped()
        } else {
            Stdio::from(err.try_clone()?)
        };
        let mut cmd = Command::new(program);
        cmd.args(args).stdin(Stdio::null()).stdout(out).stderr(err);
        // SAFETY: prctl is async-signal-safe; it only asks the kernel to
        // SIGKILL this child when the thread that spawned it exits.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn()?;
        if let Ok(mut live) = LIVE.lock() {
            live.insert(child.id());
        }
        Ok(Proc {
            name: name.to_string(),
            child: Some(child),
            log: log.to_path_buf(),
        })
    }

    /// Its process id (0 once killed).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The child's piped stdout, taken once.
    pub fn take_stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.child.as_mut().and_then(|c| c.stdout.take())
    }

    /// Whether the process has exited by itself.
    pub fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_none_or(|c| c.try_wait().ok().flatten().is_some())
    }

    /// The last `lines` lines of its log, for error reports.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// SIGKILL (nothing of the child's shutdown path runs) and reap.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            if let Ok(mut live) = LIVE.lock() {
                live.remove(&c.id());
            }
        }
    }

    /// SIGTERM (the child's graceful shutdown runs); does not wait.
    pub fn term(&self) {
        if let Some(c) = &self.child {
            if let Ok(pid) = i32::try_from(c.id()) {
                // SAFETY: kill(2) on a child we have not reaped yet.
                unsafe {
                    libc::kill(pid, libc::SIGTERM);
                }
            }
        }
    }

    /// Waits for the child to exit at most `bound`; true when it did.
    pub fn wait_exit(&mut self, bound: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + bound;
        while std::time::Instant::now() < deadline {
            if self.exited() {
                if let Some(c) = self.child.take() {
                    if let Ok(mut live) = LIVE.lock() {
                        live.remove(&c.id());
                    }
                }
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        false
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// SIGKILLs every child still running (the Ctrl-C path: the handles may
/// live on other threads that never get to drop them).
pub fn kill_all() {
    let pids: Vec<u32> = LIVE
        .lock()
        .map(|mut live| std::mem::take(&mut *live).into_iter().collect())
        .unwrap_or_default();
    for pid in pids {
        if let Ok(pid) = i32::try_from(pid) {
            // SAFETY: kill(2) with a pid we spawned; at worst it is gone.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

/// The harness binary itself, which re-executes as a journal member
/// (`node`) or as `primacy`.
pub fn self_exe() -> std::io::Result<PathBuf> {
    std::env::current_exe()
}
