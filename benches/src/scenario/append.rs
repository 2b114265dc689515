//! The journal-append scenario: proposers append entries of a fixed size
//! to the journal as fast as it acknowledges them (durable as in
//! production: UFS chunks fsynced, Raft entries fsynced by a quorum), at
//! each concurrency; throughput and latency percentiles per point.
//!
//! The proposer loop always runs in the primary's own process
//! ([`run_append`]): in the harness for the single UFS master, in a
//! `bench node` child for the groups, so every group member is a real
//! separate process.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use master::embed::Replicated;
use serde::{Deserialize, Serialize};

use crate::harness::load::{closed_loop, Limits};
use crate::harness::node::{open_member, Counter, NodeSpec, PROGRESS, RESULT};
use crate::harness::procs::{self_exe, Proc};
use crate::report::Record;

/// The work of one backend in the append scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppendPlan {
    /// The backend's name in the records.
    pub system: String,
    /// Concurrent proposers, one point each.
    pub concurrency: Vec<usize>,
    /// Entry sizes in bytes, one series each.
    pub sizes: Vec<usize>,
    /// How long each point runs.
    pub duration_ms: u64,
    /// At most this many entries per point (smoke runs).
    pub max_ops: Option<u64>,
}

/// Runs `plan` on `member`, which is primary; returns one record per
/// (size, concurrency). `progress` hears about each point as it starts.
pub async fn run_append(
    member: &Replicated<Counter>,
    plan: &AppendPlan,
    progress: &(dyn Fn(String) + Sync),
) -> Vec<Record> {
    let mut records = Vec::new();
    for &size in &plan.sizes {
        // Not all zeros: a compressing log would flatter itself.
        let payload: Bytes = (0..size).map(|i| (i * 131 % 251) as u8).collect();
        for &concurrency in &plan.concurrency {
            progress(format!("{size} B x {concurrency} proposers"));
            let limits = Limits {
                duration: Duration::from_millis(plan.duration_ms),
                max_ops: plan.max_ops,
            };
            let (m, p) = (member.clone(), payload.clone());
            let sample = closed_loop(concurrency, limits, move |_, _| {
                let (m, p) = (m.clone(), p.clone());
                async move { m.propose(p).await.map(|_| ()).map_err(|e| e.to_string()) }
            })
            .await;
            records.push(Record::from_sample(
                "append",
                &plan.system,
                "in-process",
                "propose",
                concurrency,
                size,
                &sample,
            ));
        }
    }
    records
}

/// Which journal a backend runs, and with how many members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// One UFS master on a local `file://` folder, fsync on, in the
    /// harness's own process.
    UfsSingle,
    /// UFS on a shared local folder, three masters elected by ZooKeeper.
    UfsZooKeeper3,
    /// The embedded Raft journal with one member.
    Raft1,
    /// The embedded Raft journal with three members.
    Raft3,
}

impl Backend {
    /// Every backend, in the order they are run and shown.
    pub const ALL: [Backend; 4] = [
        Backend::UfsSingle,
        Backend::UfsZooKeeper3,
        Backend::Raft1,
        Backend::Raft3,
    ];

    /// The name in records and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Backend::UfsSingle => "ufs-1",
            Backend::UfsZooKeeper3 => "ufs-zk-3",
            Backend::Raft1 => "raft-1",
            Backend::Raft3 => "raft-3",
        }
    }

    /// The backend called `name`, if any.
    pub fn parse(name: &str) -> Option<Backend> {
        Backend::ALL.into_iter().find(|b| b.name() == name)
    }

    /// Whether it needs a ZooKeeper server.
    pub fn needs_zookeeper(self) -> bool {
        self == Backend::UfsZooKeeper3
    }

    /// The properties of each member, with journals under `dir`.
    pub fn members(
        self,
        dir: &Path,
        zookeeper: Option<&str>,
    ) -> std::io::Result<Vec<Vec<(String, String)>>> {
        let free = journal_core::ports::free_loopback_port;
        let kv = |k: &str, v: String| (k.to_string(), v);
        match self {
            Backend::UfsSingle => Ok(vec![vec![
                kv("alluxio.master.journal.type", "UFS".into()),
                kv(
                    "alluxio.master.journal.folder",
                    format!("file://{}/journal", dir.display()),
                ),
            ]]),
            Backend::UfsZooKeeper3 => (0..3)
                .map(|_| {
                    Ok(vec![
                        kv("alluxio.master.journal.type", "UFS".into()),
                        kv(
                            "alluxio.master.journal.folder",
                            format!("file://{}/journal", dir.display()),
                        ),
                        kv("alluxio.zookeeper.enabled", "true".into()),
                        kv("alluxio.zookeeper.address", zookeeper.unwrap_or("").into()),
                        kv("alluxio.master.hostname", "127.0.0.1".into()),
                        kv("alluxio.master.rpc.port", free()?.to_string()),
                    ])
                })
                .collect(),
            Backend::Raft1 | Backend::Raft3 => {
                let n = if self == Backend::Raft1 { 1 } else { 3 };
                let peers = journal_core::ports::free_loopback_ports(n)?;
                let addresses = peers
                    .iter()
                    .map(|p| format!("127.0.0.1:{p}"))
                    .collect::<Vec<_>>()
                    .join(",");
                peers
                    .iter()
                    .enumerate()
                    .map(|(i, peer)| {
                        Ok(vec![
                            kv("alluxio.master.journal.type", "EMBEDDED".into()),
                            kv(
                                "alluxio.master.embedded.journal.addresses",
                                addresses.clone(),
                            ),
                            kv("alluxio.master.hostname", "127.0.0.1".into()),
                            kv("alluxio.master.rpc.port", free()?.to_string()),
                            kv("alluxio.master.embedded.journal.port", peer.to_string()),
                            kv(
                                "alluxio.master.journal.folder",
                                dir.join(format!("m{}", i + 1)).display().to_string(),
                            ),
                        ])
                    })
                    .collect()
            }
        }
    }
}

/// Runs the append plan on `backend` with its journals under `dir`:
/// in-process for the single UFS master, else in `bench node` children
/// (killed before this returns). `progress` hears what is running.
pub async fn run_backend(
    backend: Backend,
    plan: &AppendPlan,
    dir: &Path,
    zookeeper: Option<&str>,
    progress: &(dyn Fn(String) + Sync),
) -> Result<Vec<Record>, String> {
    let members = backend.members(dir, zookeeper).map_err(|e| e.to_string())?;
    if backend == Backend::UfsSingle {
        let props = &members[0];
        let member = open_member(props, Duration::from_secs(60))
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the single UFS master did not become primary within 60 s")?;
        let records = run_append(&member, plan, progress).await;
        member.shutdown().await;
        return Ok(records);
    }
    let exe = self_exe().map_err(|e| e.to_string())?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let mut procs = Vec::new();
    for (i, props) in members.into_iter().enumerate() {
        let spec = NodeSpec {
            properties: props,
            plan: plan.clone(),
        };
        let spec = serde_json::to_string(&spec).map_err(|e| e.to_string())?;
        let name = format!("{}-m{}", backend.name(), i + 1);
        let log = dir.join(format!("{name}.log"));
        let mut p = Proc::spawn(&name, &exe, &["node".into(), spec], &log, true)
            .map_err(|e| format!("start {name}: {e}"))?;
        if let Some(out) = p.take_stdout() {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        procs.push(p);
    }
    drop(tx);
    let points = (plan.sizes.len() * plan.concurrency.len()) as u64;
    let bound = Duration::from_secs(120) + Duration::from_millis(plan.duration_ms * points * 3);
    let started = Instant::now();
    let result = loop {
        let left = bound.saturating_sub(started.elapsed());
        if left.is_zero() {
            break Err(format!("no result within {bound:?}{}", tails(&procs)));
        }
        match tokio::time::timeout(left.min(Duration::from_secs(1)), rx.recv()).await {
            Ok(Some(line)) => {
                if let Some(json) = line.strip_prefix(RESULT) {
                    break serde_json::from_str::<Vec<Record>>(json)
                        .map_err(|e| format!("unreadable result: {e}"));
                }
                if let Some(text) = line.strip_prefix(PROGRESS) {
                    progress(text.to_string());
                }
            }
            Ok(None) => break Err(format!("every member exited{}", tails(&procs))),
            Err(_) => {
                if procs.iter_mut().all(Proc::exited) {
                    break Err(format!("every member exited{}", tails(&procs)));
                }
            }
        }
    };
    for p in &mut procs {
        p.kill9();
    }
    result
}

/// The end of each member's log, for an error message.
fn tails(procs: &[Proc]) -> String {
    procs
        .iter()
        .map(|p| format!("\n--- {}:\n{}", p.name, p.log_tail(15)))
        .collect()
}
