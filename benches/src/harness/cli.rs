//! The harness's command line and the run that follows it: every chosen
//! scenario on every chosen backend and installed peer, then the table,
//! the CSV and JSON files and the charts.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};

use crate::harness::load::Limits;
use crate::peers::Peer;
use crate::report::{self, Record, RunFile};
use crate::scenario::append::{self, AppendPlan, Backend};
use crate::scenario::{failover, metadata, state};

/// `bench [SCENARIO...] [OPTIONS]`: measures primacy's backends and its
/// peers side by side on the same work.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "bench",
    about = "primacy's benchmark harness: backends and peers side by side"
)]
pub struct BenchArgs {
    /// Scenarios to run: append, metadata, failover, state (default: append).
    #[arg(default_value = "append")]
    pub scenarios: Vec<String>,
    /// Backends, comma-separated: ufs-1, ufs-zk-3, raft-1, raft-3; `none`
    /// for none (a run of the peers only).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "ufs-1,ufs-zk-3,raft-1,raft-3"
    )]
    pub backends: Vec<String>,
    /// Peers, comma-separated: zookeeper-1, zookeeper-3, etcd-1, etcd-3
    /// (each skipped with a notice when not installed); `none` for none.
    /// The failover scenario runs on the 3-member ones only.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "zookeeper-1,zookeeper-3,etcd-1,etcd-3"
    )]
    pub peers: Vec<String>,
    /// Concurrent callers, one point each.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64,256")]
    pub concurrency: Vec<usize>,
    /// Operations of the metadata scenario on primacy's masters,
    /// comma-separated: create-file, get-status, list-status (one alone
    /// keeps a profile of the master to that operation).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "create-file,get-status,list-status"
    )]
    pub ops: Vec<String>,
    /// Entry sizes in bytes (append scenario).
    #[arg(long, value_delimiter = ',', default_value = "128,4096")]
    pub sizes: Vec<usize>,
    /// Seconds per point.
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// At most this many operations per point (tiny smoke runs).
    #[arg(long)]
    pub max_ops: Option<u64>,
    /// Failover repeats per backend and kind (kill -9, SIGTERM handoff).
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Inodes of the state scenario (apply, memory, snapshot, replay,
    /// cold restart); 10000000 for the 10M figures (needs several GiB).
    #[arg(long, default_value_t = 1_000_000)]
    pub inodes: u64,
    /// Where results.csv, results.json and the SVG charts go.
    #[arg(long, default_value = "target/bench")]
    pub out: PathBuf,
}

impl BenchArgs {
    fn limits(&self) -> Limits {
        Limits {
            duration: Duration::from_secs_f64(self.seconds.max(0.01)),
            max_ops: self.max_ops,
        }
    }
}

/// Why a run failed as a whole (a backend or peer that fails is reported
/// in the table and the run goes on).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A name on the command line is not a known scenario, backend or peer.
    #[error("{0}")]
    Usage(String),
    /// The results could not be written.
    #[error("writing the results: {0}")]
    Io(#[from] std::io::Error),
}

/// The scenarios this harness runs.
pub const SCENARIOS: [&str; 4] = ["append", "metadata", "failover", "state"];

/// The ZooKeeper server `backend` elects with (`Some(None)` for backends
/// that need none); `None` when it could not start: the backend is skipped
/// with a notice and a failed row for `scenario`.
fn zookeeper_for(
    backend: Backend,
    dir: &std::path::Path,
    scenario: &str,
    bar: &ProgressBar,
    records: &mut Vec<Record>,
) -> Option<Option<crate::peers::zookeeper::ZkServers>> {
    if !backend.needs_zookeeper() {
        return Some(None);
    }
    match crate::peers::zookeeper::ZkServers::start(1, dir) {
        Ok(z) => Some(Some(z)),
        Err(e) => {
            bar.println(format!("skipping {}: {e}", backend.name()));
            records.push(failed(scenario, backend.name(), &e.to_string()));
            None
        }
    }
}

/// Keeps a backend's rows, or says it failed and keeps a failed row.
fn take(
    scenario: &str,
    system: &str,
    result: Result<Vec<Record>, String>,
    bar: &ProgressBar,
    records: &mut Vec<Record>,
) {
    match result {
        Ok(r) => records.extend(r),
        Err(e) => {
            bar.println(format!("{system} failed: {e}"));
            records.push(failed(scenario, system, &e));
        }
    }
}

/// Keeps a peer's rows; a peer that is not installed is skipped with the
/// install notice, any other failure keeps a failed row.
fn take_peer(
    scenario: &str,
    system: &str,
    result: Result<Vec<Record>, crate::peers::PeerError>,
    bar: &ProgressBar,
    records: &mut Vec<Record>,
) {
    match result {
        Ok(r) => records.extend(r),
        Err(crate::peers::PeerError::Missing(how)) => {
            bar.println(format!("skipping {system}: not installed ({how})"));
        }
        Err(e) => {
            bar.println(format!("{system} failed: {e}"));
            records.push(failed(scenario, system, &e.to_string()));
        }
    }
}

/// A record saying a system could not be measured, so the table shows it.
fn failed(scenario: &str, system: &str, why: &str) -> Record {
    Record {
        scenario: scenario.into(),
        system: system.into(),
        path: String::new(),
        operation: "(failed)".into(),
        concurrency: 0,
        bytes: 0,
        ops: 0,
        errors: 1,
        seconds: 0.0,
        ops_per_sec: 0.0,
        p50_ms: 0.0,
        p99_ms: 0.0,
        p999_ms: 0.0,
        max_ms: 0.0,
        note: why.lines().next().unwrap_or("").to_string(),
    }
}

fn bar() -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}") {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Runs what `args` asks for and writes the results; returns the records.
/// Must run on the thread that lives as long as the run (the children it
/// starts are tied to it), i.e. inside `Runtime::block_on` on `main`.
pub async fn run(args: BenchArgs) -> Result<Vec<Record>, RunError> {
    let backends: Vec<Backend> = args
        .backends
        .iter()
        .filter(|b| b.as_str() != "none")
        .map(|b| Backend::parse(b).ok_or_else(|| RunError::Usage(format!("unknown backend {b}"))))
        .collect::<Result<_, _>>()?;
    let peers: Vec<Peer> = args
        .peers
        .iter()
        .filter(|p| p.as_str() != "none")
        .map(|p| Peer::parse(p).ok_or_else(|| RunError::Usage(format!("unknown peer {p}"))))
        .collect::<Result<_, _>>()?;
    for op in &args.ops {
        if !metadata::OPERATIONS.contains(&op.as_str()) {
            return Err(RunError::Usage(format!(
                "unknown metadata operation {op} ({})",
                metadata::OPERATIONS.join(", ")
            )));
        }
    }
    for s in &args.scenarios {
        if !SCENARIOS.contains(&s.as_str()) {
            return Err(RunError::Usage(format!(
                "unknown scenario {s} ({})",
                SCENARIOS.join(", ")
            )));
        }
    }
    let load_at_start = report::load_average();
    let work = tempfile::tempdir()?;
    let bar = bar();
    let mut records = Vec::new();
    for scenario in &args.scenarios {
        match scenario.as_str() {
            "append" => {
                for backend in &backends {
                    let system = backend.name();
                    bar.set_message(format!("append on {system}: starting"));
                    let dir = work.path().join(format!("append-{system}"));
                    std::fs::create_dir_all(&dir)?;
                    let Some(zk) = zookeeper_for(*backend, &dir, "append", &bar, &mut records)
                    else {
                        continue;
                    };
                    let plan = AppendPlan {
                        system: system.into(),
                        concurrency: args.concurrency.clone(),
                        sizes: args.sizes.clone(),
                        duration_ms: args.limits().duration.as_millis() as u64,
                        max_ops: args.max_ops,
                    };
                    let address = zk.as_ref().map(|z| z.address());
                    let progress =
                        |text: String| bar.set_message(format!("append on {system}: {text}"));
                    let result =
                        append::run_backend(*backend, &plan, &dir, address.as_deref(), &progress)
                            .await;
                    take("append", system, result, &bar, &mut records);
                    drop(zk);
                }
                for peer in &peers {
                    let system = peer.name();
                    bar.set_message(format!("append on {system}: starting"));
                    let dir = work.path().join(format!("append-{system}"));
                    std::fs::create_dir_all(&dir)?;
                    let result = peer
                        .append(&dir, &args.concurrency, &args.sizes, args.limits(), &|t| {
                            bar.set_message(format!("append on {system}: {t}"))
                        })
                        .await;
                    take_peer("append", system, result, &bar, &mut records);
                }
            }
            "metadata" => {
                for backend in &backends {
                    let system = backend.name();
                    let dir = work.path().join(format!("metadata-{system}"));
                    std::fs::create_dir_all(&dir)?;
                    let Some(zk) = zookeeper_for(*backend, &dir, "metadata", &bar, &mut records)
                    else {
                        continue;
                    };
                    let address = zk.as_ref().map(|z| z.address());
                    let progress =
                        |t: String| bar.set_message(format!("metadata on {system}: {t}"));
                    let result = metadata::run_backend(
                        *backend,
                        &dir,
                        address.as_deref(),
                        &args.concurrency,
                        &args.ops,
                        args.limits(),
                        &progress,
                    )
                    .await;
                    take("metadata", system, result, &bar, &mut records);
                    drop(zk);
                }
                for peer in &peers {
                    let system = peer.name();
                    let dir = work.path().join(format!("metadata-{system}"));
                    std::fs::create_dir_all(&dir)?;
                    let progress =
                        |t: String| bar.set_message(format!("metadata on {system}: {t}"));
                    let result = metadata::run_peer(
                        *peer,
                        &dir,
                        &args.concurrency,
                        args.limits(),
                        &progress,
                    )
                    .await;
                    take_peer("metadata", system, result, &bar, &mut records);
                }
            }
            "failover" => {
                for backend in backends.iter().filter(|b| **b != Backend::UfsSingle) {
                    let system = backend.name();
                    let dir = work.path().join(format!("failover-{system}"));
                    std::fs::create_dir_all(&dir)?;
                    let Some(zk) = zookeeper_for(*backend, &dir, "failover", &bar, &mut records)
                    else {
                        continue;
                    };
                    let address = zk.as_ref().map(|z| z.address());
                    let progress =
                        |t: String| bar.set_message(format!("failover on {system}: {t}"));
                    let stops = [failover::Stop::Kill, failover::Stop::Term];
                    let result = failover::run_backend(
                        *backend,
                        &dir,
                        address.as_deref(),
                        &stops,
                        args.repeats,
                        &progress,
                    )
                    .await;
                    take("failover", system, result, &bar, &mut records);
                    drop(zk);
                }
                for peer in peers
                    .iter()
                    .filter(|p| crate::peers::failover::applies(**p))
                {
                    let system = peer.name();
                    let dir = work.path().join(format!("failover-{system}"));
                    std::fs::create_dir_all(&dir)?;
                    let progress =
                        |t: String| bar.set_message(format!("failover on {system}: {t}"));
                    let stops = [failover::Stop::Kill, failover::Stop::Term];
                    let result = crate::peers::failover::run_peer(
                        *peer,
                        &dir,
                        &stops,
                        args.repeats,
                        &progress,
                    )
                    .await;
                    take_peer("failover", system, result, &bar, &mut records);
                }
            }
            "state" => {
                let dir = work.path().join("state");
                std::fs::create_dir_all(&dir)?;
                let progress = |t: String| bar.set_message(format!("state: {t}"));
                match state::in_memory(args.inodes, &dir, &progress) {
                    Ok(r) => records.extend(r),
                    Err(e) => records.push(failed("state", "meta", &e.to_string())),
                }
                match state::through_journal(args.inodes, &dir, &progress).await {
                    Ok(r) => records.extend(r),
                    Err(e) => {
                        bar.println(format!("state through the journal failed: {e}"));
                        records.push(failed("state", "ufs-1", &e));
                    }
                }
            }
            _ => {}
        }
    }
    bar.finish_and_clear();
    let run = RunFile {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_at_start,
        records: records.clone(),
    };
    print!("{}", report::table(&records));
    for line in failover::summary(&records) {
        println!("{line}");
    }
    let written = report::write_all(&args.out, &run)?;
    println!(
        "\nwrote {} and {} and {} charts in {}",
        written.csv.display(),
        written.json.display(),
        written.charts.len(),
        args.out.display()
    );
    Ok(records)
}
