//! Pid files of detached processes, and the checks that keep a stale pid
//! file (its process gone, its pid reused by another program) from ever
//! getting a signal sent to the wrong process.

use std::path::Path;

/// What a pid file says about its process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PidState {
    /// No pid file.
    Absent,
    /// The file does not hold a pid; the text it holds.
    Garbage(String),
    /// The pid is not running (or is a zombie nobody reaped yet).
    Gone(u32),
    /// The pid runs another program (the pid was reused); its command line.
    Foreign(u32, String),
    /// The pid runs `primacy <kind>`.
    Running(u32),
}

/// Reads `path` and checks that its pid runs `primacy <kind> --conf
/// <conf>`: the second word of its command line is `kind`, the first names
/// an executable called like this one, and its `--conf` is `conf` (several
/// masters may share a host, one conf dir each: a stale pid file of one
/// may name a pid reused by another).
pub fn inspect(path: &Path, kind: &str, conf: &Path) -> std::io::Result<PidState> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(PidState::Absent),
        Err(e) => return Err(e),
    };
    let pid = match text.trim().parse::<u32>() {
        Ok(p) if p > 1 && p <= i32::MAX as u32 => p,
        _ => return Ok(PidState::Garbage(text.trim().chars().take(40).collect())),
    };
    if !alive(pid) {
        return Ok(PidState::Gone(pid));
    }
    let args = cmdline(pid);
    if is_primacy(&args, kind) && runs_with_conf(&args, conf) {
        Ok(PidState::Running(pid))
    } else {
        Ok(PidState::Foreign(pid, args.join(" ")))
    }
}

/// Whether `args` (a command line) is `primacy <kind> ...` run from an
/// executable with this process's file name.
fn is_primacy(args: &[String], kind: &str) -> bool {
    let own = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "primacy".into());
    let program = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned());
    program.as_deref() == Some(own.as_str()) && args.get(1).map(String::as_str) == Some(kind)
}

/// Whether the command line `args` names `conf` with `--conf DIR` or
/// `--conf=DIR` (the form a started process gets). Both sides are
/// resolved, so two spellings of one directory (a symlink, a trailing
/// slash) are the same conf dir.
fn runs_with_conf(args: &[String], conf: &Path) -> bool {
    let given = args.iter().enumerate().skip(2).find_map(|(i, a)| {
        if a == "--conf" {
            args.get(i + 1).map(String::as_str)
        } else {
            a.strip_prefix("--conf=")
        }
    });
    let resolve = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    given.is_some_and(|g| resolve(Path::new(g)) == resolve(conf))
}

/// The command line of `pid` (empty if it cannot be read).
fn cmdline(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|w| !w.is_empty())
                .map(|w| String::from_utf8_lossy(w).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `pid` runs: it exists and is not a zombie. A detached master's
/// parent is whatever adopted it, which may never reap it; a zombie has
/// exited all the same.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the parenthesised name, which
        // may itself hold spaces or parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Writes `pid` to `path` atomically (a temporary file renamed over it),
/// so a reader never sees half a pid.
pub fn write(path: &Path, pid: u32) -> std::io::Result<()> {
    let tmp = path.with_extension("pid.tmp");
    std::fs::write(&tmp, format!("{pid}\n"))?;
    std::fs::rename(&tmp, path)
}

/// Removes `path`; a missing file is fine.
pub fn remove(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Sends `signal` to `pid`. Callers check [`inspect`] first.
pub fn signal(pid: u32, signal: libc::c_int) -> std::io::Result<()> {
    let pid = libc::pid_t::try_from(pid)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "pid out of range"))?;
    // SAFETY: kill(2) has no memory-safety preconditions.
    if unsafe { libc::kill(pid, signal) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_garbage_and_foreign_pid_files_are_told_apart() {
        let dir = tempfile::tempdir().expect("tmp");
        let f = dir.path().join("master.pid");
        assert_eq!(
            inspect(&f, "master", Path::new("/c")).expect("read"),
            PidState::Absent
        );
        std::fs::write(&f, "not a pid\n").expect("write");
        assert!(matches!(
            inspect(&f, "master", Path::new("/c")).expect("read"),
            PidState::Garbage(_)
        ));
        std::fs::write(&f, "1\n").expect("write");
        assert!(matches!(
            inspect(&f, "master", Path::new("/c")).expect("read"),
            PidState::Garbage(_)
        ));
        // This test process is alive but is not `primacy master`.
        write(&f, std::process::id()).expect("write");
        assert!(matches!(
            inspect(&f, "master", Path::new("/c")).expect("read"),
            PidState::Foreign(..)
        ));
        // A child that exited and was reaped is gone.
        let mut child = std::process::Command::new("true").spawn().expect("true");
        let pid = child.id();
        child.wait().expect("reap");
        write(&f, pid).expect("write");
        assert_eq!(
            inspect(&f, "master", Path::new("/c")).expect("read"),
            PidState::Gone(pid)
        );
        remove(&f).expect("remove");
        remove(&f).expect("removing twice is fine");
    }

    #[test]
    fn a_zombie_is_not_alive() {
        let child = std::process::Command::new("true").spawn().expect("true");
        let pid = child.id();
        // Not reaped yet: a zombie once it exits.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while alive(pid) {
            assert!(std::time::Instant::now() < deadline, "true never exited");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        drop(child);
    }

    #[test]
    fn command_lines_are_matched_on_kind_and_program() {
        let own = std::env::current_exe().expect("exe");
        let own = own.display().to_string();
        let cl = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(is_primacy(&cl(&[&own, "master", "--conf", "/c"]), "master"));
        assert!(!is_primacy(&cl(&[&own, "worker"]), "master"));
        assert!(!is_primacy(&cl(&["/bin/sleep", "master"]), "master"));
        assert!(!is_primacy(&cl(&[]), "master"));
        let dir = tempfile::tempdir().expect("tmp");
        let conf = dir.path().join("conf");
        std::fs::create_dir_all(&conf).expect("conf");
        let c = conf.display().to_string();
        assert!(runs_with_conf(&cl(&[&own, "master", "--conf", &c]), &conf));
        assert!(runs_with_conf(
            &cl(&[&own, "master", &format!("--conf={c}/")]),
            &conf
        ));
        // Another master of the same host: its pid is not this one's.
        assert!(!runs_with_conf(
            &cl(&[&own, "master", "--conf", "/other/conf"]),
            &conf
        ));
        assert!(!runs_with_conf(&cl(&[&own, "master"]), &conf));
        assert!(!runs_with_conf(&cl(&[&own, "master", "--conf"]), &conf));
    }
}
