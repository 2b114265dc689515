//! `primacy format`: prepares the configured journal
//! ([`crate::backend::format`]).

use std::io::Write;
use std::process::ExitCode;

use journal_core::JournalError;

use super::{exit, init_logging, FormatArgs};
use crate::backend;
use crate::config::{Backend, MasterConfig};

/// Formats the journal the configuration chooses. Prints
/// `Formatting <backend> journal at <location> ... done`.
///
/// Exit 0 when formatted; 1 when refused (a journal or other data is
/// already there and `--force` was not given, or `--force` cannot remove
/// it) or on I/O failure; 2 for configuration errors.
pub fn run(args: FormatArgs) -> ExitCode {
    init_logging("warn");
    let cfg = match MasterConfig::load(&args.common.load_options()) {
        Ok(cfg) => cfg,
        Err(e) => return fail(exit::USAGE, &format!("configuration error: {e}")),
    };
    let (name, location) = match describe(&cfg) {
        Ok(d) => d,
        Err(e) => return fail(exit::USAGE, &format!("configuration error: {e}")),
    };
    print!("Formatting {name} journal at {location} ... ");
    let _ = std::io::stdout().flush();
    let runtime = match tokio::runtime::Builder::new_current_thread()
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
    match runtime.block_on(backend::format_as(&cfg, args.force, args.join)) {
        Ok(()) => {
            println!("done");
            ExitCode::from(exit::OK)
        }
        Err(e) => {
            println!("failed");
            let (code, hint) = match &e {
                JournalError::AlreadyFormatted { .. } if !args.force => (
                    exit::REFUSED,
                    "add --force to remove it and format anew (its data is lost)",
                ),
                JournalError::ForeignJournal { .. } if !args.force => (
                    exit::REFUSED,
                    "point the configuration elsewhere, or add --force (which removes only a \
                     primacy journal's own files)",
                ),
                JournalError::Config { .. } => (exit::USAGE, ""),
                _ => (exit::REFUSED, ""),
            };
            let msg = if hint.is_empty() {
                e.to_string()
            } else {
                format!("{e}: {hint}")
            };
            fail(code, &msg)
        }
    }
}

/// The backend's name for the message, and where its journal lives.
fn describe(cfg: &MasterConfig) -> Result<(&'static str, String), crate::config::ConfigError> {
    Ok(match cfg.backend()? {
        Backend::Embedded => (
            "embedded (Raft)",
            cfg.raft_data_dir()?.display().to_string(),
        ),
        Backend::UfsZooKeeper => ("UFS (ZooKeeper election)", cfg.journal_folder()?),
        Backend::UfsSingle => ("UFS (single master)", cfg.journal_folder()?),
    })
}

fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!("primacy format: {message}");
    ExitCode::from(code)
}
