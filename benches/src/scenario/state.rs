//! The state scenarios on the real metadata state machine
//! (`master::meta::MetaMachine`): apply rate and memory per inode,
//! snapshot write and restore (time, size), and through a real UFS
//! journal a standby's replay of every entry and a cold restart from a
//! checkpoint plus a journal tail, each in a fresh child process (time to
//! serve, peak RSS).

use std::io::{BufReader, BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use master::embed::Replicated;
use master::meta::{encode_entry, Entry, MetaMachine};
use serde::{Deserialize, Serialize};

use crate::harness::load::{closed_loop, Limits};
use crate::harness::procs::{self_exe, Proc};
use crate::report::Record;

/// Files per directory of the generated namespace.
const FANOUT: u64 = 1000;

/// A process's resident set (`VmRSS`) or its peak (`VmHWM`) in bytes.
pub fn status_bytes(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with(field)).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<u64>().ok())
            })
        })
        .map_or(0, |kb| kb * 1024)
}

fn entry(client: u64, seq: u64, n: u64) -> journal_core::Bytes {
    let op = if n % (FANOUT + 1) == 0 {
        Entry::mkdir(format!("/d{}", n / (FANOUT + 1)), true)
    } else {
        Entry::create_file(format!("/d{}/f{}", n / (FANOUT + 1), n % (FANOUT + 1)))
    };
    encode_entry(&client.to_le_bytes(), seq, 1_700_000_000_000, op)
}

fn record(operation: &str, inodes: u64, seconds: f64, rate: f64, note: String) -> Record {
    Record {
        scenario: "state".into(),
        system: "meta".into(),
        path: "in-process".into(),
        operation: operation.into(),
        concurrency: 1,
        bytes: 0,
        ops: inodes,
        errors: 0,
        seconds,
        ops_per_sec: rate,
        p50_ms: 0.0,
        p99_ms: 0.0,
        p999_ms: 0.0,
        max_ms: 0.0,
        note,
    }
}

/// Apply rate, memory per inode, snapshot write and restore for a
/// namespace of `inodes` inodes (one directory per 1,000 files).
pub fn in_memory(
    inodes: u64,
    dir: &Path,
    progress: &dyn Fn(String),
) -> std::io::Result<Vec<Record>> {
    use journal_core::StateMachine;
    let mut out = Vec::new();
    progress(format!("applying {inodes} entries"));
    let before = status_bytes("VmRSS:");
    let mut m = MetaMachine::default();
    let started = Instant::now();
    for n in 0..inodes {
        // Encoding is part of the loop but tiny next to apply; measured apart
        // by the micro benchmarks.
        let e = entry(1, n + 1, n);
        let _ = m.apply(n + 1, &e);
    }
    let took = started.elapsed().as_secs_f64();
    let grown = status_bytes("VmRSS:").saturating_sub(before);
    out.push(record(
        "apply",
        inodes,
        took,
        inodes as f64 / took.max(1e-9),
        format!(
            "encode+apply, one thread; RSS grew {grown} B = {:.0} B/inode",
            grown as f64 / inodes.max(1) as f64
        ),
    ));
    progress("writing the snapshot".into());
    let path = dir.join("meta.snapshot");
    let started = Instant::now();
    {
        let file = std::fs::File::create(&path)?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        m.snapshot(&mut w)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
    }
    let took = started.elapsed().as_secs_f64();
    let size = std::fs::metadata(&path)?.len();
    out.push(record(
        "snapshot-write",
        inodes,
        took,
        inodes as f64 / took.max(1e-9),
        format!(
            "{size} B ({:.0} B/inode), fsynced",
            size as f64 / inodes.max(1) as f64
        ),
    ));
    drop(m);
    progress("restoring the snapshot".into());
    let started = Instant::now();
    let mut fresh = MetaMachine::default();
    fresh.restore(&mut BufReader::with_capacity(
        1 << 20,
        std::fs::File::open(&path)?,
    ))?;
    let took = started.elapsed().as_secs_f64();
    out.push(record(
        "snapshot-restore",
        inodes,
        took,
        inodes as f64 / took.max(1e-9),
        format!("from {size} B"),
    ));
    drop(fresh);
    let _ = std::fs::remove_file(&path);
    Ok(out)
}

/// What a restart child reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestartReport {
    /// From open to serving as primary.
    pub seconds: f64,
    /// Peak RSS of the child.
    pub peak_rss_bytes: u64,
    /// The last applied sequence number when it served.
    pub applied: u64,
}

/// The `restart` child: opens the UFS journal in `properties` with a
/// fresh metadata machine, waits until it serves, and prints the
/// [`RestartReport`] as JSON.
pub async fn restart_child(properties: &[(String, String)]) -> Result<RestartReport, String> {
    let config = master::config::MasterConfig::from_pairs(properties).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let member = Replicated::open(&config, MetaMachine::default())
        .await
        .map_err(|e| e.to_string())?;
    member
        .wait_primary(Duration::from_secs(3600))
        .await
        .map_err(|e| e.to_string())?;
    let report = RestartReport {
        seconds: started.elapsed().as_secs_f64(),
        peak_rss_bytes: status_bytes("VmHWM:"),
        applied: member.status().last_applied,
    };
    member.shutdown().await;
    Ok(report)
}

fn ufs_properties(dir: &Path) -> Vec<(String, String)> {
    vec![
        ("alluxio.master.journal.type".into(), "UFS".into()),
        (
            "alluxio.master.journal.folder".into(),
            format!("file://{}/journal", dir.display()),
        ),
        // Checkpoints only when this scenario asks for one.
        (
            "alluxio.master.journal.checkpoint.period.entries".into(),
            "1000000000".into(),
        ),
    ]
}

async fn propose_range(member: &Replicated<MetaMachine>, from: u64, to: u64) -> Result<(), String> {
    let m = member.clone();
    let limits = Limits {
        duration: Duration::from_secs(24 * 3600),
        max_ops: Some(to - from),
    };
    let s = closed_loop(256, limits, move |caller, i| {
        let m = m.clone();
        let n = from + i;
        async move {
            // Directories come first in each run of FANOUT + 1.
            m.propose(entry(caller as u64 + 1000, n + 1, n))
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    })
    .await;
    match s.first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn run_restart_child(
    dir: &Path,
    props: &[(String, String)],
    name: &str,
) -> Result<RestartReport, String> {
    let exe = self_exe().map_err(|e| e.to_string())?;
    let spec = serde_json::to_string(props).map_err(|e| e.to_string())?;
    let log = dir.join(format!("{name}.log"));
    let mut p = Proc::spawn(name, &exe, &["restart".into(), spec], &log, true)
        .map_err(|e| e.to_string())?;
    let out = p.take_stdout().ok_or("no stdout")?;
    let mut line = String::new();
    std::io::BufRead::read_line(&mut BufReader::new(out), &mut line).map_err(|e| e.to_string())?;
    p.kill9();
    serde_json::from_str(line.trim()).map_err(|e| format!("{name}: {e}: {line}{}", p.log_tail(10)))
}

/// Through a real single UFS master journal: writes `inodes` metadata
/// entries, restarts a fresh process that replays them all (the standby
/// replay rate), then checkpoints, appends a tail of a tenth more, and
/// restarts again (the cold restart: checkpoint load + tail).
pub async fn through_journal(
    inodes: u64,
    dir: &Path,
    progress: &(dyn Fn(String) + Sync),
) -> Result<Vec<Record>, String> {
    let props = ufs_properties(dir);
    let config = master::config::MasterConfig::from_pairs(&props).map_err(|e| e.to_string())?;
    master::embed::format(&config)
        .await
        .map_err(|e| e.to_string())?;
    let member = Arc::new(
        Replicated::open(&config, MetaMachine::default())
            .await
            .map_err(|e| e.to_string())?,
    );
    member
        .wait_primary(Duration::from_secs(60))
        .await
        .map_err(|e| e.to_string())?;
    progress(format!("journaling {inodes} metadata entries"));
    propose_range(&member, 0, inodes).await?;
    member.shutdown().await;
    drop(member);
    progress(format!("replaying {inodes} entries in a fresh process"));
    let replay = tokio::task::block_in_place(|| run_restart_child(dir, &props, "replay"))?;
    let mut out = vec![record(
        "standby-replay",
        replay.applied,
        replay.seconds,
        replay.applied as f64 / replay.seconds.max(1e-9),
        format!(
            "open to serving, no checkpoint; peak RSS {} MB",
            replay.peak_rss_bytes >> 20
        ),
    )];
    progress("checkpointing and appending the tail".into());
    let member = Replicated::open(&config, MetaMachine::default())
        .await
        .map_err(|e| e.to_string())?;
    member
        .wait_primary(Duration::from_secs(3600))
        .await
        .map_err(|e| e.to_string())?;
    member
        .journal()
        .checkpoint()
        .await
        .map_err(|e| e.to_string())?;
    let tail = (inodes / 10).max(1);
    propose_range(&member, inodes, inodes + tail).await?;
    member.shutdown().await;
    drop(member);
    progress("cold restart from the checkpoint".into());
    let cold = tokio::task::block_in_place(|| run_restart_child(dir, &props, "cold"))?;
    out.push(record(
        "cold-restart",
        cold.applied,
        cold.seconds,
        0.0,
        format!(
            "checkpoint of {inodes} entries + tail of {tail}; serving after {:.2} s; peak RSS {} MB",
            cold.seconds,
            cold.peak_rss_bytes >> 20
        ),
    ));
    Ok(out)
}

/// Flushes stdout after a line, for the child protocol.
pub fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
