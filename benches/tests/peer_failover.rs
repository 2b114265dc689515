//! The peers' failover end to end (a test binary of its own: the other
//! smoke tests look for any `bench` process left behind, and this run's
//! would be one). Bounded in time; nothing here asserts a speed.

mod support;

use std::path::Path;

use support::{processes_mentioning, run};

/// The peers' failover: one kill -9 and one SIGTERM of the leader of
/// etcd-3 and of zookeeper-3 (whichever is installed), with no primacy
/// backend; each gets a row per kind with a positive time, the chart
/// shows them, and no member is left running.
#[test]
fn the_peers_fail_over_once_each_with_a_row_per_peer() {
    let installed: Vec<&str> = [
        ("etcd-3", "/usr/bin/etcd", "apt-get install -y etcd-server"),
        (
            "zookeeper-3",
            "/usr/share/java/zookeeper.jar",
            "apt-get install -y zookeeper",
        ),
    ]
    .into_iter()
    .filter_map(|(peer, file, how)| {
        if Path::new(file).exists() {
            Some(peer)
        } else {
            println!("skipping the failover of {peer}: not installed ({how})");
            None
        }
    })
    .collect();
    if installed.is_empty() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let peers = installed.join(",");
    let (code, stdout, stderr) = run(
        &[
            "failover",
            "--backends",
            "none",
            "--peers",
            &peers,
            "--repeats",
            "1",
            "--out",
            out.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "bench failed:\n{stdout}\n{stderr}");
    let json: benches::report::RunFile =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    for peer in &installed {
        for op in ["kill9-to-write", "sigterm-to-write"] {
            let rows: Vec<_> = json
                .records
                .iter()
                .filter(|r| r.scenario == "failover" && r.system == *peer && r.operation == op)
                .collect();
            assert_eq!(rows.len(), 1, "{peer} {op}:\n{stdout}\n{stderr}");
            let r = rows[0];
            assert_eq!((r.ops, r.errors), (1, 0), "{r:?}");
            assert!(r.p50_ms > 0.0, "{r:?}");
            assert!(
                stdout.lines().any(|l| l.contains(peer) && l.contains(op)),
                "no table row for {peer} {op}:\n{stdout}"
            );
        }
    }
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 2 * installed.len(), "{csv}");
    let chart = std::fs::read_to_string(out.join("failover.svg")).unwrap();
    for peer in &installed {
        assert!(chart.contains(peer), "{peer} missing from the chart");
    }
    let left = processes_mentioning(dir.path().to_str().unwrap());
    assert!(left.is_empty(), "members left behind: {left:?}");
}
