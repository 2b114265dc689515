//! The harness end to end with a tiny configuration: one scenario, one
//! proposer, a few hundred entries on each backend (and the ZooKeeper and
//! etcd peers when installed); the CSV, JSON and SVG files must be written
//! and parse, and no child process may be left. Bounded in time; nothing
//! here asserts a speed.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{processes_mentioning, run, BENCH};

fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) {
            // pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
            if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
                let ppid = rest
                    .split_whitespace()
                    .nth(1)
                    .and_then(|p| p.parse::<u32>().ok());
                if ppid == Some(pid) {
                    if let Ok(child) = entry.file_name().to_string_lossy().parse() {
                        out.push(child);
                    }
                }
            }
        }
    }
    out
}

#[test]
fn a_tiny_append_run_writes_parseable_results_for_every_backend() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let (code, stdout, stderr) = run(
        &[
            "append",
            "--concurrency",
            "1",
            "--sizes",
            "128",
            "--max-ops",
            "200",
            "--seconds",
            "20",
            "--peers",
            "zookeeper-1,etcd-1",
            "--out",
            out.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "bench failed:\n{stdout}\n{stderr}");
    for system in ["ufs-1", "ufs-zk-3", "raft-1", "raft-3"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.contains(system) && l.contains("propose")),
            "no line for {system}:\n{stdout}\n{stderr}"
        );
    }
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some(benches::report::CSV_HEADER));
    let rows: Vec<&str> = lines.collect();
    assert!(rows.len() >= 4, "{csv}");
    for row in &rows {
        assert!(row.split(',').count() >= 15, "short row {row}");
    }
    let json: benches::report::RunFile =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let primacy: Vec<_> = json
        .records
        .iter()
        .filter(|r| r.operation == "propose")
        .collect();
    assert_eq!(primacy.len(), 4, "{:?}", json.records);
    for r in &primacy {
        assert_eq!(r.errors, 0, "{r:?}");
        assert_eq!(r.ops, 200, "{r:?}");
        assert!(
            r.p50_ms > 0.0 && r.p50_ms <= r.p99_ms && r.p99_ms <= r.max_ms,
            "{r:?}"
        );
    }
    let svgs: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "svg"))
        .collect();
    assert!(svgs.len() >= 2, "charts: {svgs:?}");
    for svg in svgs {
        let text = std::fs::read_to_string(svg.path()).unwrap();
        assert!(
            text.starts_with("<svg") && text.trim_end().ends_with("</svg>"),
            "{:?}",
            svg.path()
        );
        assert!(
            text.contains("raft-3"),
            "legend missing in {:?}",
            svg.path()
        );
    }
    let left = processes_mentioning(BENCH);
    assert!(left.is_empty(), "children left behind: {left:?}");
}

#[test]
fn bad_input_is_refused_without_results_or_children() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let (code, _, stderr) = run(
        &[
            "append",
            "--backends",
            "raft-7",
            "--out",
            out.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_ne!(code, 0);
    assert!(stderr.contains("unknown backend raft-7"), "{stderr}");
    assert!(!out.exists());
    let (code, _, stderr) = run(&["fly", "--out", out.to_str().unwrap()], dir.path());
    assert_ne!(code, 0);
    assert!(stderr.contains("unknown scenario fly"), "{stderr}");
    let (code, _, stderr) = run(
        &[
            "metadata",
            "--ops",
            "get-status,stat",
            "--out",
            out.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_ne!(code, 0);
    assert!(
        stderr.contains("unknown metadata operation stat"),
        "{stderr}"
    );
    assert!(!out.exists());
    // The hidden member subcommand with a spec that is not JSON.
    let (code, _, stderr) = run(&["node", "{not json"], dir.path());
    assert_ne!(code, 0);
    assert!(stderr.contains("bad node spec"), "{stderr}");
}

#[test]
fn killing_the_harness_takes_its_children_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut harness = Command::new(BENCH)
        .args([
            "append",
            "--backends",
            "raft-3",
            "--peers",
            "none",
            "--concurrency",
            "1",
            "--sizes",
            "128",
            "--seconds",
            "120",
            "--out",
            out.to_str().unwrap(),
        ])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut children = Vec::new();
    while children.len() < 3 {
        assert!(
            Instant::now() < deadline,
            "the harness never started its three members"
        );
        children = children_of(harness.id());
        std::thread::sleep(Duration::from_millis(100));
    }
    // SIGKILL: no handler of the harness runs; the kernel must take them.
    harness.kill().unwrap();
    harness.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let alive: Vec<u32> = children
            .iter()
            .copied()
            .filter(|p| {
                Path::new(&format!("/proc/{p}")).exists()
                    && !std::fs::read_to_string(format!("/proc/{p}/stat"))
                        .unwrap_or_default()
                        .contains(") Z")
            })
            .collect();
        if alive.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "members outlived the harness: {alive:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!out.join("results.csv").exists());
}
