//! The `primacy` command line (clap derive): `format`, `master`, `fs`,
//! `worker`, `journal`, `info`, `local-cluster`, `process`, `security`.
//!
//! Every subcommand takes `--conf DIR` and repeated `-D key=value` (they
//! may also follow a nested subcommand: `primacy fs ls / -D k=v`). Exit
//! codes: [`exit::OK`] 0, [`exit::REFUSED`] 1, [`exit::USAGE`] 2 (usage or
//! configuration error; clap's own usage errors exit 2 as well),
//! [`exit::UNREACHABLE`] 3 (cluster unreachable).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::LoadOptions;

mod format_cmd;
pub mod fs_cmd;
pub mod info_cmd;
pub mod journal_cmd;
pub mod local_cluster;
mod master_cmd;
pub mod process;
pub mod security_cmd;
pub mod worker_cmd;

pub use fs_cmd::{FsArgs, FsCommand};
pub use info_cmd::{InfoArgs, InfoCommand};
pub use local_cluster::LocalClusterArgs;
pub use worker_cmd::WorkerArgs;

/// Exit codes shared by every subcommand.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// The request was refused (e.g. a formatted journal without `--force`,
    /// a corrupt journal, an operation the file system refused).
    pub const REFUSED: u8 = 1;
    /// Usage or configuration error (malformed `-D`, bad value, unformatted
    /// or foreign journal, port in use).
    pub const USAGE: u8 = 2;
    /// The cluster could not be reached.
    pub const UNREACHABLE: u8 = 3;
}

/// `primacy`: a highly available metadata service in the way of Alluxio's
/// master.
#[derive(Debug, Parser)]
#[command(name = "primacy", version, about, propagate_version = true)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Format the configured journal (refuses one that holds data unless --force).
    Format(FormatArgs),
    /// Run one master in the foreground until SIGTERM or SIGINT.
    Master(MasterArgs),
    /// File system operations against the cluster's primary.
    Fs(FsArgs),
    /// Run one worker in the foreground.
    Worker(WorkerArgs),
    /// Journal administration: checkpoint, quorum info|elect|add|remove.
    Journal(journal_cmd::JournalArgs),
    /// Start a whole cluster on this machine and walk through a failover
    /// (see docs/local-cluster.md).
    LocalCluster(LocalClusterArgs),
    /// Reports about the cluster (`info report`).
    Info(InfoArgs),
    /// Start, stop, restart (also rolling) and check masters and workers,
    /// here or on the hosts of conf/masters and conf/workers over ssh.
    Process(process::ProcessArgs),
    /// Security helpers: `generate-secret FILE` (docs/security.md).
    Security(security_cmd::SecurityArgs),
}

/// Flags every subcommand accepts.
#[derive(Debug, Clone, Default, Args)]
pub struct CommonArgs {
    /// Configuration directory holding primacy-site.properties (default:
    /// $PRIMACY_CONF_DIR, else ./conf).
    #[arg(long = "conf", value_name = "DIR", global = true)]
    pub conf: Option<PathBuf>,
    /// Set a configuration key, overriding the file and the environment
    /// (repeatable; the last one wins).
    #[arg(short = 'D', value_name = "KEY=VALUE", value_parser = parse_define, global = true)]
    pub defines: Vec<(String, String)>,
}

impl CommonArgs {
    /// The configuration sources these flags choose, with this process's
    /// environment.
    pub fn load_options(&self) -> LoadOptions {
        LoadOptions::from_process(self.conf.clone(), self.defines.clone())
    }

    /// The same flags as command-line text (`--conf DIR -D k=v ...`), for
    /// messages that tell the operator which command to run next.
    pub fn to_flags(&self) -> String {
        let mut out = String::new();
        if let Some(dir) = &self.conf {
            out.push_str(&format!(
                " --conf {}",
                shell_word(&dir.display().to_string())
            ));
        }
        for (k, v) in &self.defines {
            out.push_str(&format!(" -D {}", shell_word(&format!("{k}={v}"))));
        }
        out
    }
}

/// Quotes `s` for a POSIX shell when it holds anything but plain characters.
fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Parses `key=value` (split at the first `=`; the value may be empty,
/// which resets the key to its default).
fn parse_define(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

/// `primacy format`.
#[derive(Debug, Clone, Args)]
pub struct FormatArgs {
    /// Configuration flags.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Remove an existing primacy journal on local disk first (destroys its data).
    #[arg(long)]
    pub force: bool,
    /// Embedded journal only: format a member that joins an existing group
    /// (a replaced disk, or a master added later) instead of a founder of a
    /// new group. It gets a fresh member id and serves once added to the
    /// group (see docs/raft-journal.md).
    #[arg(long)]
    pub join: bool,
}

/// `primacy master`.
#[derive(Debug, Clone, Args)]
pub struct MasterArgs {
    /// Configuration flags.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `primacy fs`.
/// Parses the process's arguments and runs the subcommand. Usage errors
/// print clap's message and exit 2 (with `--json` among the arguments,
/// stdout also gets `{"error": "...", "exit_code": 2}`, as for every other
/// error of a `--json` command); `--help`/`--version` exit 0.
pub fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    match Cli::try_parse_from(&args) {
        Ok(cli) => run(cli),
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            if e.use_stderr() && wants_json(&args) {
                println!(
                    "{}",
                    serde_json::json!({
                        "error": usage_message(&e.render().to_string()),
                        "exit_code": code,
                    })
                );
            }
            let _ = e.print();
            ExitCode::from(code)
        }
    }
}

/// Whether `--json` is one of the arguments (before a `--` separator).
fn wants_json(args: &[std::ffi::OsString]) -> bool {
    args.iter()
        .skip(1)
        .take_while(|a| a.as_os_str() != "--")
        .any(|a| a.as_os_str() == "--json")
}

/// Clap's rendered usage error without its `error: ` prefix, usage block
/// and help hint: what went wrong, for the JSON answer.
fn usage_message(rendered: &str) -> String {
    let text = rendered.trim_start();
    let text = text.strip_prefix("error: ").unwrap_or(text);
    let end = ["\n\nUsage:", "\n\nFor more information"]
        .iter()
        .filter_map(|m| text.find(m))
        .min()
        .unwrap_or(text.len());
    text[..end].trim().to_string()
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Format(args) => format_cmd::run(args),
        Command::Master(args) => master_cmd::run(args),
        Command::Fs(args) => fs_cmd::run(args),
        Command::Worker(args) => worker_cmd::run(args),
        Command::Journal(args) => journal_cmd::run(args),
        Command::LocalCluster(args) => local_cluster::run(args),
        Command::Info(args) => info_cmd::run(args),
        Command::Process(args) => process::run(args),
        Command::Security(args) => security_cmd::run(args),
    }
}

/// Sends `tracing` output to stderr, filtered by `RUST_LOG` when set, else
/// at `default` level. Safe to call more than once (later calls do nothing).
pub fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_flags_parse_on_every_subcommand() {
        let cli = Cli::try_parse_from([
            "primacy",
            "master",
            "--conf",
            "/etc/p",
            "-D",
            "a.b=1",
            "-Dc.d=x=y",
        ])
        .expect("parses");
        let Command::Master(m) = cli.command else {
            panic!("master")
        };
        assert_eq!(
            m.common.conf.as_deref(),
            Some(std::path::Path::new("/etc/p"))
        );
        assert_eq!(
            m.common.defines,
            vec![("a.b".into(), "1".into()), ("c.d".into(), "x=y".into())]
        );
        let cli = Cli::try_parse_from(["primacy", "fs", "ls", "--json", "/", "-D", "k=v"])
            .expect("parses");
        let Command::Fs(f) = cli.command else {
            panic!("fs")
        };
        assert_eq!(f.defines, vec![("k".into(), "v".into())]);
        assert!(matches!(f.command, FsCommand::Ls { json: true, .. }));
        let cli = Cli::try_parse_from(["primacy", "format", "--force"]).expect("parses");
        assert!(matches!(
            cli.command,
            Command::Format(FormatArgs { force: true, .. })
        ));
    }

    #[test]
    fn info_report_parses_with_json_and_flags() {
        let cli = Cli::try_parse_from(["primacy", "info", "report", "--json", "-D", "k=v"])
            .expect("parses");
        let Command::Info(i) = cli.command else {
            panic!("info")
        };
        assert!(matches!(i.command, InfoCommand::Report { json: true }));
        assert_eq!(i.common.defines, vec![("k".into(), "v".into())]);
    }

    #[test]
    fn usage_errors_keep_what_went_wrong_for_json() {
        let e = Cli::try_parse_from(["primacy", "journal", "quorum", "elect", "--json"])
            .expect_err("no --address");
        let m = usage_message(&e.render().to_string());
        assert!(m.contains("--address"), "{m}");
        assert!(!m.contains("Usage") && !m.starts_with("error"), "{m}");
        let args = |v: &[&str]| v.iter().map(std::ffi::OsString::from).collect::<Vec<_>>();
        assert!(wants_json(&args(&["primacy", "fs", "ls", "--json"])));
        assert!(!wants_json(&args(&["primacy", "fs", "ls", "--", "--json"])));
        assert!(!wants_json(&args(&["--json"])));
    }

    #[test]
    fn a_malformed_define_is_a_usage_error() {
        let e = Cli::try_parse_from(["primacy", "master", "-D", "novalue"]).expect_err("refused");
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn flags_are_echoed_for_hints() {
        let c = CommonArgs {
            conf: Some("/etc/p".into()),
            defines: vec![("k".into(), "a b".into())],
        };
        assert_eq!(c.to_flags(), " --conf /etc/p -D 'k=a b'");
    }
}
