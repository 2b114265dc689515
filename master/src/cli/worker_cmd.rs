//! `primacy worker [--conf DIR] [-D key=value]...`: runs one worker agent
//! ([`crate::worker`]) in the foreground until SIGTERM or SIGINT (exit 0).
//!
//! Exit codes: 0 stopped by a signal; 1 the worker failed (unreadable block
//! directory, a registration the primary refuses); 2 configuration error
//! (no data folder, malformed value, bad discovery settings).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::fs_cmd::{exit, parse_define};
use crate::client::MasterClient;
use crate::config::{LoadOptions, MasterConfig};
use crate::worker::{WorkerAgent, WorkerError, WorkerOptions};

/// `primacy worker` arguments.
#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// Configuration directory holding primacy-site.properties (default:
    /// $PRIMACY_CONF_DIR, else ./conf).
    #[arg(long = "conf", value_name = "DIR", global = true)]
    pub conf: Option<PathBuf>,
    /// Set a configuration key, overriding the file and the environment
    /// (repeatable; the last one wins).
    #[arg(short = 'D', value_name = "KEY=VALUE", value_parser = parse_define, global = true)]
    pub defines: Vec<(String, String)>,
}

/// Runs the worker until SIGTERM/SIGINT. Logs go to stderr (`RUST_LOG`
/// filters them; `info` by default).
pub fn run(args: WorkerArgs) -> ExitCode {
    init_logging();
    ExitCode::from(run_inner(&args))
}

fn run_inner(args: &WorkerArgs) -> u8 {
    let opts = LoadOptions::from_process(args.conf.clone(), args.defines.clone());
    let cfg = match MasterConfig::load(&opts) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("primacy worker: {e}");
            return exit::USAGE;
        }
    };
    let (options, client) = match WorkerOptions::from_config(&cfg).and_then(|o| {
        Ok((
            o,
            MasterClient::from_config(&cfg).map_err(WorkerError::Client)?,
        ))
    }) {
        Ok(v) => v,
        Err(e) => {
            tracing::error!("primacy worker: {e}");
            return exit::USAGE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("primacy worker: cannot start the I/O runtime: {e}");
            return exit::REFUSED;
        }
    };
    runtime.block_on(async {
        let agent = match WorkerAgent::new(client, options) {
            Ok(a) => a,
            Err(e) => {
                tracing::error!("primacy worker: {e}");
                return exit::REFUSED;
            }
        };
        let stop = match stop_signal() {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("primacy worker: cannot install signal handlers: {e}");
                return exit::REFUSED;
            }
        };
        match agent.run(stop).await {
            Ok(()) => exit::OK,
            Err(e) => {
                tracing::error!("primacy worker: {e}");
                match e {
                    WorkerError::Config(_) => exit::USAGE,
                    _ => exit::REFUSED,
                }
            }
        }
    })
}

/// Completes on the first SIGTERM or SIGINT. Installed before the agent
/// starts, so a signal that arrives early is not lost.
fn stop_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // A subscriber set before (by an embedding program) stays.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
