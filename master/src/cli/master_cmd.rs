//! `primacy master`: one master in the foreground ([`crate::server::run`])
//! until SIGTERM or SIGINT.

use std::process::ExitCode;

use journal_core::JournalError;

use super::{exit, init_logging, CommonArgs, MasterArgs};
use crate::config::MasterConfig;
use crate::server::{self, ServerError};

/// Runs a master. Exit 0 after a clean shutdown on SIGTERM/SIGINT; 2 for a
/// configuration error, a port in use, or an unformatted or foreign journal
/// (with the command that fixes it); 1 for corruption and other failures.
pub fn run(args: MasterArgs) -> ExitCode {
    init_logging("info");
    let cfg = match MasterConfig::load(&args.common.load_options()) {
        Ok(cfg) => cfg,
        Err(e) => return fail(exit::USAGE, &format!("configuration error: {e}")),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return fail(
                exit::REFUSED,
                &format!("cannot start the async runtime: {e}"),
            )
        }
    };
    match runtime.block_on(server::run(cfg, termination())) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => fail(e.exit_code(), &explain(&e, &args.common)),
    }
}

/// The error, plus what to do about it where that is known.
fn explain(e: &ServerError, common: &CommonArgs) -> String {
    let flags = common.to_flags();
    match e {
        ServerError::Journal(JournalError::Unformatted { .. }) => {
            format!("{e}\nto format it, run: primacy format{flags}")
        }
        ServerError::Journal(JournalError::ForeignJournal { .. }) => format!(
            "{e}\ncheck alluxio.master.journal.folder and alluxio.master.cluster.id; to discard \
             that journal and start a new cluster there, run: primacy format --force{flags}"
        ),
        _ => e.to_string(),
    }
}

/// Completes on the first SIGTERM or SIGINT. If the handlers cannot be
/// installed, the master runs until killed (logged).
async fn termination() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received"),
                _ = int.recv() => tracing::info!("SIGINT received"),
            }
        }
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!("cannot install signal handlers ({e}); stop this master with SIGKILL");
            std::future::pending::<()>().await;
        }
    }
}

fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!("primacy master: {message}");
    ExitCode::from(code)
}
