//! Randomized fault campaigns against real `primacy master` processes.
//!
//! Each run starts three masters of one deployment (plus ZooKeeper for
//! ufs-zk), drives concurrent clients on a few contended paths, injects a
//! fault schedule drawn from the run's seed (kill -9, SIGSTOP past the
//! election timeout, peer and ZooKeeper partitions through TCP proxies,
//! ZooKeeper restarts, failpoints in failpoints builds), heals everything,
//! and checks: the history is linearizable, every acknowledged write is
//! present, every master's state digest is identical, no master reported
//! corruption. A failing run keeps its directory (seed, schedule.json,
//! history.jsonl, verdict.txt, the masters' logs) and names the command
//! that replays it.

pub mod cluster;
mod faults;
pub mod procs;
pub mod schedule;
pub mod verify;
pub mod workload;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::linearizability::{self, namespace::Namespace, Verdict};
use cluster::Cluster;
use workload::Recorder;

/// What can stop a run before its checks (setup, I/O); anomalies are not
/// errors but findings in [`RunResult`].
#[derive(Debug, thiserror::Error)]
pub enum ChaosError {
    /// Starting the deployment failed.
    #[error("setup: {0}")]
    Setup(String),
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was attempted.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

impl ChaosError {
    fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        ChaosError::Io {
            what: what.into(),
            source,
        }
    }
}

/// The deployments a campaign can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Deployment {
    /// Embedded Raft journal, three members.
    Embedded,
    /// Shared UFS folder, ZooKeeper election, three masters.
    UfsZk,
}

impl Deployment {
    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Deployment::Embedded => "embedded",
            Deployment::UfsZk => "ufs-zk",
        }
    }
}

/// A campaign's settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// Which deployment.
    pub deployment: Deployment,
    /// Runs; run `i` uses seed `seed + i`.
    pub runs: u64,
    /// The first run's seed.
    pub seed: u64,
    /// Seconds of load (and faults) per run.
    pub load_secs: u64,
    /// Concurrent clients.
    pub clients: usize,
    /// The `primacy` binary.
    pub primacy: PathBuf,
    /// Where failing runs are kept.
    pub out: PathBuf,
    /// Whether to inject failpoint faults (the binary must be built with
    /// `--features failpoints`).
    pub failpoints: bool,
    /// Checker step budget per history.
    pub budget: u64,
    /// The runner's own test: falsify the final stat of the first path
    /// (an inode id no create returned), which every check must catch.
    pub sabotage: bool,
}

impl Options {
    /// The command that replays the run with `seed`.
    pub fn replay_command(&self, seed: u64) -> String {
        format!(
            "cargo build --release -p master --bin primacy{} && cargo run --release -p benches --bin chaos -- --deployment {} --runs 1 --seed {seed} --load-secs {} --clients {}{}",
            if self.failpoints { " --features failpoints" } else { "" },
            self.deployment.name(),
            self.load_secs,
            self.clients,
            if self.failpoints { " --failpoints" } else { "" },
        )
    }
}

/// What one run found.
#[derive(Debug, Clone, Default)]
pub struct RunResult {
    /// Its seed.
    pub seed: u64,
    /// Faults injected, by kind.
    pub faults: BTreeMap<&'static str, u64>,
    /// Operations in the checked history (final stats included).
    pub ops: usize,
    /// Of those, with an unknown outcome.
    pub unknown: usize,
    /// The checker ran out of budget.
    pub checker_unknown: bool,
    /// Acknowledged writes the final state does not show.
    pub lost_writes: usize,
    /// Everything that failed a check, one line each.
    pub anomalies: Vec<String>,
    /// Masters that exited on their own (not by a fault of the schedule).
    pub self_exits: Vec<String>,
    /// Failpoints that fired (`name=action`), by count.
    pub failpoints_fired: BTreeMap<String, u64>,
    /// Where the run was kept (failing runs only).
    pub kept: Option<PathBuf>,
}

/// The inode id a sabotaged run claims to see (no create returns it: ids
/// are allocated from 1 upwards).
pub const SABOTAGE_ID: u64 = 0x5ab0_7a9e;

/// Runs one run with `seed`.
pub async fn run_one(opts: &Options, seed: u64) -> Result<RunResult, ChaosError> {
    let dir = opts
        .out
        .join(format!("{}-seed-{seed}", opts.deployment.name()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)
        .map_err(|e| ChaosError::io(format!("create {}", dir.display()), e))?;
    let mut cluster = Cluster::create(opts.deployment, 3, &dir, &opts.primacy).await?;
    cluster.format_and_start(&dir)?;
    let mut result = RunResult {
        seed,
        ..RunResult::default()
    };
    let setup = cluster.client(Duration::from_secs(60));
    if cluster
        .wait_primary(Duration::from_secs(90))
        .await
        .is_none()
    {
        return Err(ChaosError::Setup(format!(
            "no primary within 90 s; logs in {}",
            dir.display()
        )));
    }
    setup
        .mkdir(workload::DIR, true)
        .await
        .map_err(|e| ChaosError::Setup(format!("mkdir {}: {e}", workload::DIR)))?;

    let election_ms = match opts.deployment {
        Deployment::Embedded => cluster::ELECTION_MAX,
        Deployment::UfsZk => cluster::ZK_SESSION,
    }
    .as_millis() as u64;
    let load_ms = opts.load_secs * 1000;
    let schedule = schedule::draw(
        seed,
        opts.deployment,
        cluster.masters.len(),
        load_ms,
        election_ms,
        opts.failpoints,
    );
    write(
        &dir.join("schedule.json"),
        &schedule::to_json(&schedule).to_string(),
    )?;

    let rec = Recorder::new();
    let started = Instant::now();
    let until = started + Duration::from_millis(load_ms);
    let bound = Duration::from_secs(10);
    let mut tasks = Vec::new();
    for who in 0..opts.clients {
        // Even clients retry past any single fault; odd ones give up
        // quickly, so some operations end with an unknown outcome (which
        // may still take effect later) and the checker must allow for it.
        let (retry, bound) = if who % 2 == 0 {
            (Duration::from_secs(8), bound)
        } else {
            (Duration::from_millis(1500), Duration::from_secs(3))
        };
        let client = cluster.client(retry);
        tasks.push(tokio::spawn(workload::client_loop(
            who,
            seed,
            client,
            rec.clone(),
            until,
            bound,
        )));
    }
    let mut events = Vec::new();
    faults::inject(&mut cluster, &schedule, started, &mut result, &mut events).await?;
    for t in tasks {
        let _ = t.await;
    }
    cluster.heal()?;
    for m in cluster.masters.iter_mut() {
        if let Some(status) = m.reap_exited() {
            result.self_exits.push(format!(
                "{} exited by itself after the load: {status}",
                m.name
            ));
        }
    }
    cluster.heal()?;

    // Final reads, after every fault is healed: part of the history, so a
    // lost write makes it non-linearizable too.
    let final_client = opts.clients;
    let reader = cluster.client(Duration::from_secs(30));
    for p in 0..workload::PATHS as u8 {
        let input = crate::linearizability::namespace::NsInput::Stat(p);
        if let Err(e) = rec
            .run(final_client, &reader, input, Duration::from_secs(40))
            .await
        {
            result.anomalies.push(format!(
                "the final stat of {} failed after healing: {e}",
                workload::path(p)
            ));
        }
    }
    let mut recorded = rec.take();
    if opts.sabotage {
        if let Some((op, _)) = recorded
            .iter_mut()
            .rev()
            .find(|(o, _)| o.client == final_client && o.output.is_some())
        {
            op.output = Some(crate::linearizability::namespace::NsOutput::Ok(SABOTAGE_ID));
        }
    }
    let history: Vec<workload::Op> = recorded.iter().map(|(o, _)| o.clone()).collect();
    let lines: Vec<String> = recorded
        .iter()
        .map(|(o, why)| workload::to_json(o, why.as_deref()).to_string())
        .collect();
    write(&dir.join("history.jsonl"), &(lines.join("\n") + "\n"))?;
    result.ops = history.len();
    result.unknown = history.iter().filter(|o| o.ret.is_none()).count();

    let verdict = linearizability::check(
        &Namespace {
            paths: workload::PATHS,
        },
        &history,
        opts.budget,
    );
    match &verdict {
        Verdict::Linearizable => {}
        Verdict::Violation { deepest, stuck_at } => result.anomalies.push(format!(
            "not linearizable: at most {deepest} of {} operations could be ordered; stuck at history line {}: {}",
            history.len(),
            stuck_at + 1,
            lines.get(*stuck_at).map_or("", String::as_str)
        )),
        Verdict::Unknown { steps } => result.checker_unknown = steps > &0,
    }
    let lost = verify::lost_writes(&history, final_client);
    result.lost_writes = lost.len();
    result
        .anomalies
        .extend(lost.into_iter().map(|l| format!("lost write: {l}")));
    match verify::converged_digest(&cluster, Duration::from_secs(60)).await {
        Ok(_) => {}
        Err(reports) => result
            .anomalies
            .push(format!("the masters' states did not converge:\n{reports}")),
    }
    result.anomalies.extend(
        verify::corruption_reports(&cluster)
            .into_iter()
            .map(|l| format!("corruption reported: {l}")),
    );
    result.anomalies.extend(
        verify::stalled_links(&cluster)
            .into_iter()
            .map(|l| format!("peer link stalled (liveness): {l}")),
    );
    result.anomalies.extend(
        verify::proxy_faults(&cluster)
            .into_iter()
            .map(|l| format!("harness proxy fault (not primacy's): {l}")),
    );
    drop(cluster);

    let verdict_text = format!(
        "seed {seed}\nverdict {verdict:?}\nops {} (unknown outcome {})\nfaults {:?}\nself exits {:?}\nanomalies:\n{}\n\nreplay: {}\n",
        result.ops,
        result.unknown,
        result.faults,
        result.self_exits,
        result.anomalies.join("\n"),
        opts.replay_command(seed)
    );
    write(&dir.join("verdict.txt"), &verdict_text)?;
    write(&dir.join("events.txt"), &events.join("\n"))?;
    // A master that exited by itself is kept for its logs too: the checks
    // may all pass and the exit still be a bug.
    if result.anomalies.is_empty() && !result.checker_unknown && result.self_exits.is_empty() {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        result.kept = Some(dir);
    }
    Ok(result)
}

fn write(path: &std::path::Path, text: &str) -> Result<(), ChaosError> {
    std::fs::write(path, text).map_err(|e| ChaosError::io(format!("write {}", path.display()), e))
}

/// A campaign's totals.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Runs completed (checked).
    pub runs: u64,
    /// Runs that could not be set up.
    pub setup_failures: u64,
    /// Faults by kind.
    pub faults: BTreeMap<&'static str, u64>,
    /// Operations checked.
    pub ops: u64,
    /// Of which with unknown outcome.
    pub unknown: u64,
    /// Runs with an anomaly.
    pub anomalous_runs: u64,
    /// Runs the checker could not decide.
    pub checker_unknown: u64,
    /// Lost writes.
    pub lost_writes: u64,
    /// Masters that exited by themselves.
    pub self_exits: u64,
    /// Failpoints that fired, by `name=action`.
    pub failpoints_fired: BTreeMap<String, u64>,
    /// Replay commands of the failing runs.
    pub failing: Vec<String>,
}

impl Summary {
    /// Adds one run.
    pub fn add(&mut self, opts: &Options, r: &RunResult) {
        self.runs += 1;
        for (k, v) in &r.faults {
            *self.faults.entry(k).or_default() += v;
        }
        self.ops += r.ops as u64;
        self.unknown += r.unknown as u64;
        self.lost_writes += r.lost_writes as u64;
        self.self_exits += r.self_exits.len() as u64;
        for (k, v) in &r.failpoints_fired {
            *self.failpoints_fired.entry(k.clone()).or_default() += v;
        }
        self.checker_unknown += u64::from(r.checker_unknown);
        if !r.anomalies.is_empty() {
            self.anomalous_runs += 1;
        }
        if let Some(dir) = &r.kept {
            self.failing.push(format!(
                "{} (kept in {})",
                opts.replay_command(r.seed),
                dir.display()
            ));
        }
    }

    /// The table of docs/reliability.md.
    pub fn table(&self, deployment: Deployment) -> String {
        let fired: Vec<String> = self
            .failpoints_fired
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        let fired = if fired.is_empty() {
            String::new()
        } else {
            format!("\n\nfailpoints that fired: {}", fired.join(", "))
        };
        let faults: Vec<String> = self
            .faults
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        format!(
            "| deployment | runs | setup failures | faults injected | operations checked (unknown outcome) | anomalous runs | checker undecided | lost writes | masters exiting by themselves |\n|---|---|---|---|---|---|---|---|---|\n| {} | {} | {} | {} | {} ({}) | {} | {} | {} | {} |{fired}",
            deployment.name(),
            self.runs,
            self.setup_failures,
            faults.join(", "),
            self.ops,
            self.unknown,
            self.anomalous_runs,
            self.checker_unknown,
            self.lost_writes,
            self.self_exits
        )
    }
}

/// Runs the campaign, printing one line per run.
pub async fn campaign(opts: &Options) -> Summary {
    let mut summary = Summary::default();
    for i in 0..opts.runs {
        let seed = opts.seed.wrapping_add(i);
        match run_one(opts, seed).await {
            Ok(r) => {
                println!(
                    "run {} seed {seed}: {} ops ({} unknown), faults {:?}, fired {:?}, {}",
                    i + 1,
                    r.ops,
                    r.unknown,
                    r.faults,
                    r.failpoints_fired,
                    if r.anomalies.is_empty() {
                        "ok".to_string()
                    } else {
                        format!("ANOMALY: {}", r.anomalies.join("; "))
                    }
                );
                for exit in &r.self_exits {
                    println!("  {exit}");
                }
                if let Some(dir) = &r.kept {
                    println!(
                        "  kept in {}; replay: {}",
                        dir.display(),
                        opts.replay_command(seed)
                    );
                }
                summary.add(opts, &r);
            }
            Err(e) => {
                println!("run {} seed {seed}: setup failed: {e}", i + 1);
                summary.setup_failures += 1;
            }
        }
    }
    summary
}
