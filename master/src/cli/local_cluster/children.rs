//! The launcher's child processes (masters, the worker, ZooKeeper, format
//! runs): started so that none outlives the launcher, recorded in a `pids`
//! file, stopped on every exit path.
//!
//! Three mechanisms, because each covers what the others cannot:
//!
//! - **PR_SET_PDEATHSIG (SIGKILL)**, set in the child between fork and
//!   exec: the kernel kills the child when the launcher dies in a way no
//!   code of ours runs (SIGKILL, abort). The signal fires when the *thread*
//!   that forked the child exits, not the process, so every child is forked
//!   by one dedicated spawner thread that is never stopped: it ends only
//!   with the process. A tokio worker or blocking thread could exit earlier
//!   and take its children with it.
//! - **A process group per child**: a Ctrl-C in the terminal reaches only
//!   the launcher, which then stops the children in order (SIGTERM, then
//!   SIGKILL after a bound) instead of every process racing its own
//!   shutdown; killing the group also reaches anything a child forked.
//! - **[`Children`]'s `Drop`**: on a normal return, an error or a panic
//!   (which unwinds), every child still running is stopped and reaped.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a child may take to exit after SIGTERM before it gets SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Why a child could not be started or waited for.
#[derive(Debug, thiserror::Error)]
pub enum ChildError {
    /// Spawning failed (the executable is missing, a log file cannot be
    /// created, ...).
    #[error("cannot start {name}: {source}")]
    Spawn {
        /// The child's name (`m1`, `worker`, `zookeeper`, ...).
        name: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The spawner thread is gone (it only ends with the process).
    #[error("the spawner thread is gone")]
    SpawnerGone,
    /// Writing the pids file failed.
    #[error("cannot write {}: {source}", path.display())]
    PidsFile {
        /// The pids file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// One request to the spawner thread: a command and where to send the
/// result.
type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

/// Forks children from one thread that lives as long as the process (see
/// the module doc for why).
struct Spawner {
    requests: mpsc::Sender<SpawnRequest>,
}

impl Spawner {
    fn start() -> std::io::Result<Spawner> {
        let (requests, incoming) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("child-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in incoming {
                    let _ = reply.send(cmd.spawn());
                }
                // Every sender is gone: keep this thread (the children's
                // parent thread) alive until the process exits, so their
                // PR_SET_PDEATHSIG does not fire early.
                loop {
                    std::thread::park();
                }
            })?;
        Ok(Spawner { requests })
    }

    fn spawn(&self, cmd: Command) -> Result<std::io::Result<Child>, ChildError> {
        let (reply, answer) = mpsc::channel();
        self.requests
            .send((cmd, reply))
            .map_err(|_| ChildError::SpawnerGone)?;
        answer.recv().map_err(|_| ChildError::SpawnerGone)
    }
}

/// One child process the launcher started.
struct Tracked {
    name: String,
    child: Child,
    stop_last: bool,
}

/// What to start: `program args` with `env` added, stdout and stderr
/// appended to `log`.
pub struct ChildSpec<'a> {
    /// Names the child in the pids file and in messages.
    pub name: &'a str,
    /// The executable.
    pub program: &'a Path,
    /// Its arguments.
    pub args: &'a [String],
    /// Added to the launcher's environment.
    pub env: &'a [(&'a str, &'a str)],
    /// Receives its stdout and stderr (appended: a restart keeps the
    /// earlier run's lines).
    pub log: &'a Path,
    /// Stopped only after every other child has exited (a service the
    /// others need while they shut down, such as ZooKeeper).
    pub stop_last: bool,
}

/// Every child the launcher started and has not yet reaped; stopped when
/// dropped.
pub struct Children {
    spawner: Spawner,
    running: Vec<Tracked>,
    /// The children's working directory.
    dir: PathBuf,
    pids_file: PathBuf,
    /// Every child ever started, in order: `name pid` lines of the pids file.
    started: Vec<(String, u32)>,
}

impl Children {
    /// A child set whose children run in `dir` (so whatever a child writes
    /// to its current directory lands there) and whose pids are written to
    /// `dir/pids` (one `name pid` line per child ever started, rewritten at
    /// each start).
    pub fn new(dir: &Path) -> std::io::Result<Children> {
        Ok(Children {
            spawner: Spawner::start()?,
            running: Vec::new(),
            dir: dir.to_path_buf(),
            pids_file: dir.join("pids"),
            started: Vec::new(),
        })
    }

    /// Starts a child with stdin closed, in its own process group, killed
    /// by the kernel if the launcher dies. Returns its pid.
    pub fn start(&mut self, spec: &ChildSpec<'_>) -> Result<u32, ChildError> {
        let name = spec.name;
        let spawn_err = |source| ChildError::Spawn {
            name: name.to_string(),
            source,
        };
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(spec.log)
            .map_err(spawn_err)?;
        let err = out.try_clone().map_err(spawn_err)?;
        let mut cmd = Command::new(spec.program);
        cmd.args(spec.args)
            .envs(spec.env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .current_dir(&self.dir)
            .process_group(0);
        let launcher = std::process::id();
        // SAFETY: the closure runs in the forked child before exec and only
        // calls async-signal-safe functions (prctl, getppid, _exit).
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The launcher died between fork and prctl: the signal will
                // never come, so do not run at all.
                if libc::getppid() as u32 != launcher {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
        let child = self.spawner.spawn(cmd)?.map_err(spawn_err)?;
        let pid = child.id();
        tracing::debug!(name, pid, "child started");
        self.running.push(Tracked {
            name: name.to_string(),
            child,
            stop_last: spec.stop_last,
        });
        self.started.push((name.to_string(), pid));
        self.write_pids()?;
        Ok(pid)
    }

    fn write_pids(&self) -> Result<(), ChildError> {
        let text: String = self
            .started
            .iter()
            .map(|(n, p)| format!("{n} {p}\n"))
            .collect();
        let tmp = self.pids_file.with_extension("tmp");
        let err = |source| ChildError::PidsFile {
            path: self.pids_file.clone(),
            source,
        };
        let mut f = File::create(&tmp).map_err(err)?;
        f.write_all(text.as_bytes()).map_err(err)?;
        std::fs::rename(&tmp, &self.pids_file).map_err(err)
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.running.iter().position(|t| t.name == name)
    }

    /// Whether child `name` is running (started and not reaped). Reaps it
    /// if it has exited, and then returns its status.
    pub fn exited(&mut self, name: &str) -> Option<ExitStatus> {
        let i = self.position(name)?;
        match self.running[i].child.try_wait() {
            Ok(Some(status)) => {
                self.running.remove(i);
                Some(status)
            }
            _ => None,
        }
    }

    /// SIGKILL to child `name` (nothing of its shutdown path runs), then
    /// reaps it. Returns when the signal was sent, or `None` if no such
    /// child runs.
    pub fn kill(&mut self, name: &str) -> Option<Instant> {
        let i = self.position(name)?;
        let mut t = self.running.remove(i);
        let at = Instant::now();
        signal_group(t.child.id(), libc::SIGKILL);
        let _ = t.child.kill();
        let _ = t.child.wait();
        Some(at)
    }

    /// Waits up to `bound` for child `name` to exit by itself; kills it
    /// after that. Returns its status, or `None` if it had to be killed
    /// (or was not running).
    pub async fn wait(&mut self, name: &str, bound: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + bound;
        loop {
            if let Some(status) = self.exited(name) {
                return Some(status);
            }
            self.position(name)?;
            if Instant::now() >= deadline {
                self.kill(name);
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops every running child: SIGTERM (so masters leave their election
    /// and close their journals), then SIGKILL to any still running after
    /// [`STOP_GRACE`]; the `stop_last` children only once the others are
    /// gone. Reaps all. Blocking, so it also works from `Drop` and after
    /// the async runtime is gone.
    pub fn stop_all(&mut self) {
        let (last, first): (Vec<Tracked>, Vec<Tracked>) =
            self.running.drain(..).partition(|t| t.stop_last);
        stop_group(first);
        stop_group(last);
    }
}

/// SIGTERM to each of `children`, SIGKILL to those still running after
/// [`STOP_GRACE`]; reaps all.
fn stop_group(mut children: Vec<Tracked>) {
    for t in &children {
        signal_group(t.child.id(), libc::SIGTERM);
    }
    let deadline = Instant::now() + STOP_GRACE;
    while !children.is_empty() {
        children.retain_mut(|t| matches!(t.child.try_wait(), Ok(None)));
        if Instant::now() >= deadline {
            for mut t in children.drain(..) {
                tracing::warn!(name = %t.name, "still running after SIGTERM: SIGKILL");
                signal_group(t.child.id(), libc::SIGKILL);
                let _ = t.child.kill();
                let _ = t.child.wait();
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// Sends `sig` to the process group led by `pid` (each child leads its
/// own), reaching anything the child forked as well.
fn signal_group(pid: u32, sig: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) with a negative pid signals that process group;
        // it has no memory effects. An error (the group is gone) is fine.
        unsafe {
            libc::kill(-pid, sig);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alive(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit_once(") ").and_then(|(_, r)| r.chars().next()))
            .is_some_and(|state| state != 'Z' && state != 'X')
    }

    fn sleeper<'a>(name: &'a str, log: &'a Path, stop_last: bool) -> ChildSpec<'a> {
        static ARGS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        ChildSpec {
            name,
            program: Path::new("sleep"),
            args: ARGS.get_or_init(|| vec!["1000".to_string()]),
            env: &[],
            log,
            stop_last,
        }
    }

    #[test]
    fn children_are_recorded_killed_and_stopped_when_dropped_by_a_panic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("log");
        let pids_file = dir.path().join("pids");
        let mut children = Children::new(dir.path()).expect("children");
        let a = children.start(&sleeper("a", &log, false)).expect("a");
        let b = children.start(&sleeper("b", &log, true)).expect("b");
        let c = children.start(&sleeper("c", &log, false)).expect("c");
        let text = std::fs::read_to_string(&pids_file).expect("pids");
        assert_eq!(text, format!("a {a}\nb {b}\nc {c}\n"));
        assert!(children.kill("a").is_some());
        assert!(!alive(a), "a was killed and reaped");
        assert!(children.kill("a").is_none(), "a is no longer running");
        assert!(children.exited("b").is_none(), "b still runs");

        // A panic with children running: unwinding drops the set, which
        // stops them (the stop_last one after the others).
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _owned = children;
            panic!("boom");
        }));
        assert!(panicked.is_err());
        assert!(!alive(b) && !alive(c), "every child stopped");
    }

    #[test]
    fn a_missing_program_is_an_error_naming_the_child() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut children = Children::new(dir.path()).expect("children");
        let log = dir.path().join("log");
        let e = children
            .start(&ChildSpec {
                name: "ghost",
                program: Path::new("/nonexistent/primacy"),
                args: &[],
                env: &[],
                log: &log,
                stop_last: false,
            })
            .expect_err("refused");
        assert!(e.to_string().contains("ghost"), "{e}");
    }
}
