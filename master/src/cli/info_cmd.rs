//! `primacy info report [--json]`: the cluster summary of Alluxio's
//! `info report`, from the primary's view (`GetClusterInfo`).
//!
//! The cluster is found like `primacy fs` finds it (`--conf`, `-D`,
//! environment: ZooKeeper, `alluxio.master.rpc.addresses`, or the single
//! `hostname:rpc.port`), and the call is retried across a failover up to
//! `alluxio.user.rpc.retry.max.duration`.
//!
//! Text output: a summary block (primary address, its epoch and the start
//! of its primacy, journal type and election, start time, uptime and
//! version of the primary, live and lost workers), then one line per master
//! (address, state, epoch, last applied sequence, lag behind the primary,
//! journal role), then notes. A standby further behind than
//! `primacy.master.standby.max.lag` is CATCHING_UP; one that did not answer
//! is UNREACHABLE with the reason.
//!
//! `--json` prints the object of `/api/v1/master/info` (docs/operations.md).
//! On any error it prints `{"error": "...", "exit_code": N}` on stdout (and
//! the message on stderr) and exits with N: 2 usage or configuration, 3 no
//! primary answered, 1 anything else.

use std::io::Write;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::json;

use super::{exit, fs_cmd, CommonArgs};
use crate::client::MasterClient;
use crate::config::MasterConfig;
use crate::proto::rpc::ClusterInfo;
use crate::rpc::wall_clock_ms;
use crate::status::json::cluster_json;
use crate::web::page::span;

/// `primacy info` arguments.
#[derive(Debug, Clone, Args)]
pub struct InfoArgs {
    /// Configuration flags.
    #[command(flatten)]
    pub common: CommonArgs,
    /// The report.
    #[command(subcommand)]
    pub command: InfoCommand,
}

/// The `primacy info` reports.
#[derive(Debug, Clone, Subcommand)]
pub enum InfoCommand {
    /// Summarize the cluster: primary, every master with its state and lag,
    /// journal, workers.
    Report {
        /// Print JSON (the object of /api/v1/master/info), also on error.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `primacy info` with this process's environment, printing to stdout
/// and stderr.
pub fn run(args: InfoArgs) -> ExitCode {
    let code = run_with(
        &args,
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    );
    ExitCode::from(code)
}

/// Runs `primacy info`, writing the report to `out` and messages to `err`;
/// returns the exit code.
pub fn run_with(args: &InfoArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let InfoCommand::Report { json } = args.command;
    let fail = |out: &mut dyn Write, err: &mut dyn Write, code: u8, message: String| {
        let _ = writeln!(err, "primacy info report: {message}");
        if json {
            let _ = writeln!(out, "{}", json!({ "error": message, "exit_code": code }));
        }
        code
    };
    let cfg = match MasterConfig::load(&args.common.load_options()) {
        Ok(c) => c,
        Err(e) => return fail(out, err, exit::USAGE, e.to_string()),
    };
    let client = match MasterClient::from_config(&cfg) {
        Ok(c) => c,
        Err(e) => return fail(out, err, fs_cmd::exit_code(&e), e.to_string()),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            return fail(
                out,
                err,
                exit::REFUSED,
                format!("cannot start the I/O runtime: {e}"),
            )
        }
    };
    match runtime.block_on(client.cluster_info()) {
        Ok((_, info)) => {
            if json {
                let _ = writeln!(out, "{}", cluster_json(&info));
            } else {
                let _ = write!(out, "{}", report_text(&info, wall_clock_ms()));
            }
            exit::OK
        }
        Err(e) => fail(out, err, fs_cmd::exit_code(&e), e.to_string()),
    }
}

/// The text report of `c` (see the module documentation).
pub fn report_text(c: &ClusterInfo, now_ms: u64) -> String {
    let me = c.answered_by.clone().unwrap_or_default();
    let primary = c.masters.iter().find(|m| m.address == c.primary_address);
    let live = c.workers.iter().filter(|w| w.state == "LIVE").count();
    let time = |ms: u64| {
        if ms == 0 {
            "unknown".to_string()
        } else {
            fs_cmd::format_time(ms)
        }
    };
    let mut out = String::from("primacy cluster summary:\n");
    let mut line = |k: &str, v: String| out.push_str(&format!("    {k:<18}{v}\n"));
    line(
        "Primary Address:",
        if c.primary_address.is_empty() {
            "none known".into()
        } else {
            c.primary_address.clone()
        },
    );
    line(
        "Web Port:",
        primary
            .filter(|p| p.web_port > 0)
            .map_or("unknown".into(), |p| p.web_port.to_string()),
    );
    line("Epoch:", c.epoch.to_string());
    line("Primary Since:", time(c.primacy_since_ms));
    line(
        "Started:",
        time(primary.map_or(me.start_time_ms, |p| p.start_time_ms)),
    );
    line(
        "Uptime:",
        primary
            .filter(|p| p.start_time_ms > 0)
            .map_or("unknown".into(), |p| {
                span(now_ms.saturating_sub(p.start_time_ms))
            }),
    );
    line(
        "Version:",
        primary.map_or(me.version.clone(), |p| p.version.clone()),
    );
    line("Journal Type:", c.journal_type.clone());
    line("Election:", c.election.clone());
    line("Live Workers:", live.to_string());
    line("Lost Workers:", (c.workers.len() - live).to_string());
    out.push_str(&format!("Masters ({}):\n", c.masters.len()));
    out.push_str(&format!(
        "    {:<24} {:<12} {:>6} {:>12} {:>8}  {}\n",
        "ADDRESS", "STATE", "EPOCH", "APPLIED", "LAG", "JOURNAL ROLE"
    ));
    for m in &c.masters {
        let or_dash = |has: bool, v: u64| if has { v.to_string() } else { "-".into() };
        out.push_str(&format!(
            "    {:<24} {:<12} {:>6} {:>12} {:>8}  {}\n",
            m.address,
            m.state,
            or_dash(m.epoch > 0, m.epoch),
            or_dash(m.has_applied, m.applied),
            or_dash(m.has_lag, m.lag),
            if m.journal_role.is_empty() {
                "-"
            } else {
                &m.journal_role
            },
        ));
        if !m.error.is_empty() {
            out.push_str(&format!("        ({})\n", m.error));
        }
    }
    for n in &c.notes {
        out.push_str(&format!("Note: {n}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::rpc::{ClusterMaster, WorkerInfo};

    #[test]
    fn the_report_lists_every_master_and_counts_workers() {
        let c = ClusterInfo {
            primary_address: "h:1".into(),
            epoch: 4,
            journal_type: "EMBEDDED".into(),
            election: "RAFT".into(),
            masters: vec![
                ClusterMaster {
                    address: "h:1".into(),
                    state: "PRIMARY".into(),
                    epoch: 4,
                    has_applied: true,
                    applied: 100,
                    has_lag: true,
                    web_port: 2,
                    ..ClusterMaster::default()
                },
                ClusterMaster {
                    address: "h:3".into(),
                    state: "CATCHING_UP".into(),
                    has_applied: true,
                    applied: 10,
                    has_lag: true,
                    lag: 90,
                    ..ClusterMaster::default()
                },
                ClusterMaster {
                    address: "h:5".into(),
                    state: "UNREACHABLE".into(),
                    error: "connection refused".into(),
                    ..ClusterMaster::default()
                },
            ],
            workers: vec![
                WorkerInfo {
                    state: "LIVE".into(),
                    ..WorkerInfo::default()
                },
                WorkerInfo {
                    state: "LOST".into(),
                    ..WorkerInfo::default()
                },
            ],
            ..ClusterInfo::default()
        };
        let text = report_text(&c, 0);
        assert!(text.contains("Primary Address:  h:1"), "{text}");
        assert!(text.contains("Web Port:         2"), "{text}");
        assert!(text.contains("Live Workers:     1"), "{text}");
        assert!(text.contains("Lost Workers:     1"), "{text}");
        assert!(text.contains("CATCHING_UP"), "{text}");
        assert!(text.contains("(connection refused)"), "{text}");
    }
}
