//! The short fault campaign CI runs: a few runs per deployment against
//! real masters (and a real ZooKeeper), each history checked. A failing
//! run fails the test with its replay command. Plus the runner's own
//! attacker test: a falsified answer must be caught and the run kept.
//!
//! Needs the `primacy` binary next to this test's directory
//! (`cargo test --workspace --all-targets` builds it; alone:
//! `cargo build -p master --bin primacy` first).

use std::path::PathBuf;

use benches::chaos::{campaign, run_one, Deployment, Options};

fn primacy() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    // target/<profile>/deps/chaos_short-<hash> -> target/<profile>/primacy
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join("primacy"))
        .expect("target directory");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p master --bin primacy` first",
        bin.display()
    );
    bin
}

fn options(deployment: Deployment, seed: u64, runs: u64, out: &tempfile::TempDir) -> Options {
    Options {
        deployment,
        runs,
        seed,
        load_secs: 5,
        clients: 3,
        primacy: primacy(),
        out: out.path().to_path_buf(),
        failpoints: false,
        budget: 20_000_000,
        sabotage: false,
    }
}

async fn short_campaign(deployment: Deployment, seed: u64) {
    let out = tempfile::tempdir().expect("tempdir");
    let opts = options(deployment, seed, 2, &out);
    let summary = campaign(&opts).await;
    println!("{}", summary.table(deployment));
    assert_eq!(summary.setup_failures, 0, "a run could not be set up");
    assert!(
        summary.anomalous_runs == 0 && summary.checker_unknown == 0,
        "{} of {} runs failed a check; replay:\n{}",
        summary.anomalous_runs + summary.checker_unknown,
        summary.runs,
        summary.failing.join("\n")
    );
    assert!(summary.ops > 0, "no operation was checked");
    assert_nothing_left(&out);
}

/// No process (master, ZooKeeper) still runs with a path under `out` on its
/// command line.
fn assert_nothing_left(out: &tempfile::TempDir) {
    let left = std::process::Command::new("pgrep")
        .args(["-f", &out.path().display().to_string()])
        .output()
        .expect("pgrep");
    assert!(
        left.stdout.is_empty(),
        "processes left behind: {}",
        String::from_utf8_lossy(&left.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_short_campaign() {
    short_campaign(Deployment::Embedded, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ufs_zk_short_campaign() {
    short_campaign(Deployment::UfsZk, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_falsified_answer_is_caught_and_the_run_kept() {
    let out = tempfile::tempdir().expect("tempdir");
    let mut opts = options(Deployment::Embedded, 3, 1, &out);
    opts.load_secs = 3;
    opts.sabotage = true;
    let r = run_one(&opts, 3).await.expect("the run was set up");
    assert!(
        r.anomalies
            .iter()
            .any(|a| a.starts_with("not linearizable")),
        "{:?}",
        r.anomalies
    );
    let kept = r.kept.expect("a failing run is kept");
    for f in [
        "schedule.json",
        "history.jsonl",
        "verdict.txt",
        "events.txt",
        "m1.log",
        "m2.log",
        "m3.log",
    ] {
        assert!(kept.join(f).exists(), "{f} missing in {}", kept.display());
    }
    let verdict = std::fs::read_to_string(kept.join("verdict.txt")).unwrap();
    assert!(verdict.contains("--seed 3 "), "{verdict}");
    let schedule: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(kept.join("schedule.json")).unwrap())
            .unwrap();
    assert!(schedule.is_array());
    let history = std::fs::read_to_string(kept.join("history.jsonl")).unwrap();
    for line in history.lines() {
        serde_json::from_str::<serde_json::Value>(line).expect("one JSON object per line");
    }
    assert_nothing_left(&out);
}
