//! What the harness's end-to-end tests share: running `bench` with a
//! bound and finding the processes a run left behind.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The harness binary under test.
pub const BENCH: &str = env!("CARGO_BIN_EXE_bench");
/// The longest one run may take.
pub const BOUND: Duration = Duration::from_secs(300);

/// Runs `bench args` in `dir` (its work directory under `dir` too) within
/// [`BOUND`]; its exit code, stdout and stderr.
pub fn run(args: &[&str], dir: &Path) -> (i32, String, String) {
    let out = dir.join("stdout.txt");
    let err = dir.join("stderr.txt");
    let mut child = Command::new(BENCH)
        .args(args)
        .current_dir(dir)
        // The harness's work directory (and so its children's command
        // lines) under `dir`, where a leftover can be found.
        .env("TMPDIR", dir)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let status = wait(&mut child, BOUND);
    (
        status,
        std::fs::read_to_string(out).unwrap(),
        std::fs::read_to_string(err).unwrap(),
    )
}

/// Waits for `child` at most `bound`, then kills it and fails the test.
pub fn wait(child: &mut Child, bound: Duration) -> i32 {
    let deadline = Instant::now() + bound;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("bench did not finish within {bound:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Processes whose command line mentions `needle` (our children carry the
/// harness's path or their temporary directories).
pub fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = entry.file_name().to_string_lossy().to_string();
        if !pid.chars().all(|c| c.is_ascii_digit()) || pid == std::process::id().to_string() {
            continue;
        }
        if let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(needle) {
                found.push(format!("{pid}: {cmd}"));
            }
        }
    }
    found
}
