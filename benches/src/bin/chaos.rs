//! `chaos`: randomized fault campaigns against real `primacy master`
//! processes, every history checked for linearizability. See
//! docs/reliability.md.

use std::path::PathBuf;
use std::process::ExitCode;

use benches::chaos::{campaign, Deployment, Options};
use clap::Parser;

#[derive(Parser)]
#[command(about = "Randomized fault campaigns against real primacy masters")]
struct Args {
    /// The deployment under test.
    #[arg(long, value_enum)]
    deployment: Deployment,
    /// Number of runs (run i uses seed + i).
    #[arg(long, default_value_t = 1)]
    runs: u64,
    /// The first run's seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Seconds of load and faults per run.
    #[arg(long, default_value_t = 8)]
    load_secs: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// The primacy binary (default: next to this one).
    #[arg(long)]
    primacy: Option<PathBuf>,
    /// Where failing runs are kept.
    #[arg(long, default_value = "chaos-runs")]
    out: PathBuf,
    /// Inject failpoint faults (primacy built with --features failpoints).
    #[arg(long)]
    failpoints: bool,
    /// Checker step budget per history.
    #[arg(long, default_value_t = 20_000_000)]
    budget: u64,
    /// Falsify one recorded answer (to see the checks catch it).
    #[arg(long, hide = true)]
    sabotage: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let primacy = args.primacy.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.join("primacy")))
            .unwrap_or_else(|| PathBuf::from("primacy"))
    });
    if !primacy.exists() {
        eprintln!(
            "{} does not exist: build it first (cargo build --release -p master --bin primacy)",
            primacy.display()
        );
        return ExitCode::from(2);
    }
    let opts = Options {
        deployment: args.deployment,
        runs: args.runs,
        seed: args.seed,
        load_secs: args.load_secs,
        clients: args.clients,
        primacy,
        out: args.out,
        failpoints: args.failpoints,
        budget: args.budget,
        sabotage: args.sabotage,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let summary = runtime.block_on(campaign(&opts));
    println!("\n{}", summary.table(opts.deployment));
    for f in &summary.failing {
        println!("failing run: {f}");
    }
    if summary.anomalous_runs > 0 || summary.setup_failures > 0 || summary.checker_unknown > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
