//! `primacy fs`: file system operations against the cluster's primary.
//!
//! ```text
//! primacy fs [--conf DIR] [-D key=value]... leader
//!                                           mkdir [-p] PATH
//!                                           touch PATH
//!                                           ls [--json] PATH
//!                                           stat [--json] PATH
//!                                           rm [-R] PATH
//!                                           mv SRC DST
//! ```
//!
//! PATH is a plain absolute path (the configured cluster) or a
//! `primacy://`/`alluxio://` URI whose authority picks the cluster
//! (`client::ClusterUri`). `mv` needs SRC and DST in one cluster.
//!
//! Exit codes ([`exit`]): 0 success; 1 the operation was refused (not found,
//! exists, not empty, ...) or the master answered an error; 2 usage or
//! configuration error (bad flags, malformed URI or path); 3 no primary
//! answered within `alluxio.user.rpc.retry.max.duration`.
//!
//! Output: `leader` prints the primary's `host:port`. `ls` prints one line
//! per entry, as Alluxio's `fs ls` without permissions and owners:
//! `%-11s%15s  %-23s  %s`: the kind (`DIRECTORY`, `FILE`, or
//! `INCOMPLETE` for a file not yet completed), the size (a file's length, a
//! directory's child count, as Alluxio shows it), the modification time
//! (`MM-dd-yyyy HH:mm:ss:SSS`, UTC) and the path. `stat` prints `key: value`
//! lines.
//!
//! JSON (`--json`): `stat` prints one object, `ls` one array of such objects
//! (in name order), each
//! `{"id": u64, "name": str, "path": str, "type": "directory"|"file",
//! "length": u64, "completed": bool, "child_count": u64,
//! "blocks": [{"id": u64, "length": u64}], "created_ms": u64,
//! "modified_ms": u64}` (times in milliseconds since the Unix epoch).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value};

use crate::client::{Authority, ClientError, ClusterUri, FileInfo, MasterClient};
use crate::config::{LoadOptions, MasterConfig};

/// Exit codes of `primacy fs`: the scheme every `primacy` command uses.
pub use super::exit;

/// `primacy fs` arguments.
#[derive(Debug, Clone, Args)]
pub struct FsArgs {
    /// Configuration directory holding primacy-site.properties (default:
    /// $PRIMACY_CONF_DIR, else ./conf).
    #[arg(long = "conf", value_name = "DIR", global = true)]
    pub conf: Option<PathBuf>,
    /// Set a configuration key, overriding the file and the environment
    /// (repeatable; the last one wins).
    #[arg(short = 'D', value_name = "KEY=VALUE", value_parser = parse_define, global = true)]
    pub defines: Vec<(String, String)>,
    /// The operation.
    #[command(subcommand)]
    pub command: FsCommand,
}

/// The `primacy fs` operations.
#[derive(Debug, Clone, Subcommand)]
pub enum FsCommand {
    /// Print the primary master's host:port.
    Leader,
    /// Create a directory.
    Mkdir {
        /// Create missing parents; an existing directory is success.
        #[arg(short = 'p')]
        parents: bool,
        /// The directory (path or primacy:// URI).
        path: String,
    },
    /// Create an empty file.
    Touch {
        /// The file (path or primacy:// URI).
        path: String,
    },
    /// List a directory (or show a file).
    Ls {
        /// Print JSON (an array of objects; see the documentation).
        #[arg(long)]
        json: bool,
        /// The directory or file (path or primacy:// URI).
        path: String,
    },
    /// Show one file or directory.
    Stat {
        /// Print JSON (one object).
        #[arg(long)]
        json: bool,
        /// The file or directory (path or primacy:// URI).
        path: String,
    },
    /// Delete a file or an empty directory.
    Rm {
        /// Delete a directory with everything under it.
        #[arg(short = 'R')]
        recursive: bool,
        /// The file or directory (path or primacy:// URI).
        path: String,
    },
    /// Move a file or directory.
    Mv {
        /// What to move.
        src: String,
        /// Where to (must not exist; same cluster as SRC).
        dst: String,
    },
}

/// Parses `key=value` (split at the first `=`; the value may be empty, which
/// resets the key to its default).
pub fn parse_define(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

/// `primacy fs` alone, for running it without the top-level `Cli` (tests,
/// embedding): parses `argv` (whose first item is the program name).
#[derive(Debug, Parser)]
#[command(name = "primacy fs")]
struct FsOnly {
    #[command(flatten)]
    args: FsArgs,
}

/// Parses `argv` as `primacy fs` arguments and runs them, writing to `out`
/// and `err`. Usage errors print clap's message and return 2 (`--help`
/// returns 0), as the top-level command line does.
pub fn main_with<I, T>(argv: I, out: &mut dyn Write, err: &mut dyn Write) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    match FsOnly::try_parse_from(argv) {
        Ok(p) => run_with(&p.args, out, err),
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = write!(err, "{}", e.render());
            code
        }
    }
}

/// Runs `primacy fs` with this process's environment, printing to stdout and
/// stderr.
pub fn run(args: FsArgs) -> ExitCode {
    let code = run_with(
        &args,
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    );
    ExitCode::from(code)
}

/// Runs `primacy fs`, writing results to `out` and messages to `err`;
/// returns the exit code. The configuration comes from `--conf`, `-D` and
/// this process's environment.
pub fn run_with(args: &FsArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let opts = LoadOptions::from_process(args.conf.clone(), args.defines.clone());
    let cfg = match MasterConfig::load(&opts) {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(err, "primacy fs: {e}");
            return exit::USAGE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(err, "primacy fs: cannot start the I/O runtime: {e}");
            return exit::REFUSED;
        }
    };
    let what = describe(&args.command);
    match runtime.block_on(execute(&args.command, &cfg, out)) {
        Ok(()) => exit::OK,
        Err(e) => {
            let _ = writeln!(err, "primacy fs {what}: {e}");
            exit_code(&e)
        }
    }
}

/// The exit code for a client error (see the module documentation).
pub fn exit_code(e: &ClientError) -> u8 {
    match e {
        ClientError::Refused(_) | ClientError::Rpc { .. } | ClientError::Protocol { .. } => {
            exit::REFUSED
        }
        ClientError::InvalidArgument(_) | ClientError::Config(_) | ClientError::Uri(_) => {
            exit::USAGE
        }
        ClientError::Unreachable { .. } => exit::UNREACHABLE,
    }
}

fn describe(cmd: &FsCommand) -> String {
    match cmd {
        FsCommand::Leader => "leader".into(),
        FsCommand::Mkdir { path, .. } => format!("mkdir {path}"),
        FsCommand::Touch { path } => format!("touch {path}"),
        FsCommand::Ls { path, .. } => format!("ls {path}"),
        FsCommand::Stat { path, .. } => format!("stat {path}"),
        FsCommand::Rm { path, .. } => format!("rm {path}"),
        FsCommand::Mv { src, dst } => format!("mv {src} {dst}"),
    }
}

/// A client of the cluster `uri` names, and the path inside it.
fn target(uri: &str, cfg: &MasterConfig) -> Result<(MasterClient, String), ClientError> {
    MasterClient::from_uri(uri, cfg)
}

async fn execute(
    cmd: &FsCommand,
    cfg: &MasterConfig,
    out: &mut dyn Write,
) -> Result<(), ClientError> {
    // Output errors (a closed pipe) are not the cluster's fault; they are
    // ignored, as `ls | head` must not turn into a failure.
    match cmd {
        FsCommand::Leader => {
            let addr = MasterClient::from_config(cfg)?.leader().await?;
            let _ = writeln!(out, "{addr}");
        }
        FsCommand::Mkdir { parents, path } => {
            let (client, p) = target(path, cfg)?;
            let info = client.mkdir(&p, *parents).await?;
            let _ = writeln!(out, "Successfully created directory {}", info.path);
        }
        FsCommand::Touch { path } => {
            let (client, p) = target(path, cfg)?;
            let info = client.create_file(&p).await?;
            let _ = writeln!(out, "{} has been created", info.path);
        }
        FsCommand::Ls { json, path } => {
            let (client, p) = target(path, cfg)?;
            let entries = client.list_status(&p).await?;
            if *json {
                let all: Vec<Value> = entries.iter().map(info_json).collect();
                let _ = writeln!(out, "{}", Value::Array(all));
            } else {
                for e in &entries {
                    let _ = writeln!(out, "{}", ls_line(e));
                }
            }
        }
        FsCommand::Stat { json, path } => {
            let (client, p) = target(path, cfg)?;
            let info = client.get_status(&p).await?;
            if *json {
                let _ = writeln!(out, "{}", info_json(&info));
            } else {
                let _ = write!(out, "{}", stat_text(&info));
            }
        }
        FsCommand::Rm { recursive, path } => {
            let (client, p) = target(path, cfg)?;
            client.delete(&p, *recursive).await?;
            let _ = writeln!(out, "{p} has been removed");
        }
        FsCommand::Mv { src, dst } => {
            let s = ClusterUri::parse(src)?;
            let d = ClusterUri::parse(dst)?;
            // A plain DST stays in SRC's cluster; two authorities must agree,
            // since a rename cannot move metadata between clusters.
            let authority = match (&s.authority, &d.authority) {
                (a, Authority::Configured) => a.clone(),
                (Authority::Configured, b) => b.clone(),
                (a, b) if a == b => a.clone(),
                (a, b) => {
                    return Err(ClientError::InvalidArgument(format!(
                    "SRC ({a}) and DST ({b}) name different clusters; mv works inside one cluster"
                )))
                }
            };
            let client = MasterClient::for_uri(
                &ClusterUri {
                    authority,
                    path: s.path.clone(),
                },
                cfg,
            )?;
            let info = client.rename(&s.path, &d.path).await?;
            let _ = writeln!(out, "Renamed {} to {}", s.path, info.path);
        }
    }
    Ok(())
}

fn kind(info: &FileInfo) -> &'static str {
    if info.is_directory {
        "DIRECTORY"
    } else if info.completed {
        "FILE"
    } else {
        "INCOMPLETE"
    }
}

/// One `ls` line: kind, size (directories: child count), modified, path.
pub fn ls_line(info: &FileInfo) -> String {
    let size = if info.is_directory {
        info.child_count
    } else {
        info.length
    };
    format!(
        "{:<11}{:>15}  {:<23}  {}",
        kind(info),
        size,
        format_time(info.modified_ms),
        info.path
    )
}

fn stat_text(info: &FileInfo) -> String {
    let blocks: Vec<String> = info
        .blocks
        .iter()
        .map(|b| format!("{}:{}", b.block_id, b.length))
        .collect();
    format!(
        "path: {}\ntype: {}\nid: {}\nlength: {}\ncompleted: {}\nchildren: {}\nblocks: [{}]\ncreated: {}\nmodified: {}\n",
        info.path,
        if info.is_directory { "directory" } else { "file" },
        info.id,
        info.length,
        info.completed,
        info.child_count,
        blocks.join(", "),
        format_time(info.created_ms),
        format_time(info.modified_ms),
    )
}

/// The JSON object of one inode (schema in the module documentation).
pub fn info_json(info: &FileInfo) -> Value {
    let blocks: Vec<Value> = info
        .blocks
        .iter()
        .map(|b| json!({"id": b.block_id, "length": b.length}))
        .collect();
    json!({
        "id": info.id,
        "name": info.name,
        "path": info.path,
        "type": if info.is_directory { "directory" } else { "file" },
        "length": info.length,
        "completed": info.completed,
        "child_count": info.child_count,
        "blocks": blocks,
        "created_ms": info.created_ms,
        "modified_ms": info.modified_ms,
    })
}

/// `MM-dd-yyyy HH:mm:ss:SSS` in UTC (Alluxio's `ls` layout; UTC so that the
/// output does not depend on the machine's time zone).
pub fn format_time(ms: u64) -> String {
    let days = (ms / 86_400_000) as i64;
    let rem = ms % 86_400_000;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{m:02}-{d:02}-{y:04} {:02}:{:02}:{:02}:{:03}",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_formatted_in_utc() {
        assert_eq!(format_time(0), "01-01-1970 00:00:00:000");
        // 2024-02-29T12:34:56.789Z
        assert_eq!(format_time(1_709_210_096_789), "02-29-2024 12:34:56:789");
        // 2000-12-31T23:59:59.999Z
        assert_eq!(format_time(978_307_199_999), "12-31-2000 23:59:59:999");
    }

    #[test]
    fn defines_split_at_the_first_equals() {
        assert_eq!(parse_define("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert_eq!(parse_define("a="), Ok(("a".into(), String::new())));
        assert!(parse_define("=x").is_err());
        assert!(parse_define("novalue").is_err());
    }
}
