//! `primacy process start|stop|restart|status all|masters|workers|master|worker`:
//! the processes of a deployment. `master` and `worker` act on this
//! machine (a detached process, its pid file and log under
//! `alluxio.logs.dir`); the plural forms act on every entry of
//! `conf/masters` / `conf/workers`, over ssh (`localhost` entries run
//! here), running the same `primacy` path with the entry's conf dir.
//! `restart masters --rolling` restarts every master while the cluster
//! serves (see [`rolling`]). See docs/operations.md.
//!
//! Exit codes: 0 done; 1 an action failed on a host (every failure is
//! printed, naming the host), or `status` found a process not running or
//! unhealthy; 2 usage or configuration error (bad hosts file, bad flags).

mod hosts;
mod node;
mod pidfile;
mod probe;
mod remote;
mod report;
mod rolling;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::{exit, init_logging, CommonArgs};
use crate::cli::local_cluster::ui::table;
use crate::client::MasterClient;
use crate::config::{value::parse_duration, LoadOptions, MasterConfig, CONF_DIR_ENV};
pub use hosts::{HostEntry, HostsError};
use node::Node;
use remote::Runner;
pub use report::{NodeKind, NodeReport};

/// The conf dir variable Alluxio's scripts use, read after
/// `PRIMACY_CONF_DIR`.
pub const ALLUXIO_CONF_DIR_ENV: &str = "ALLUXIO_CONF_DIR";

/// What to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Action {
    /// Start (a running process is left as it is).
    Start,
    /// SIGTERM, then SIGKILL after --timeout.
    Stop,
    /// Stop, then start (`--rolling` for masters: one at a time).
    Restart,
    /// Whether it runs, and a master's role and health.
    Status,
}

/// On which processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// Every master, then every worker (stop: workers first).
    All,
    /// Every host of conf/masters.
    Masters,
    /// Every host of conf/workers.
    Workers,
    /// The master on this machine.
    Master,
    /// The worker on this machine.
    Worker,
}

/// `primacy process` arguments.
#[derive(Debug, Clone, Args)]
pub struct ProcessArgs {
    /// Configuration flags (`--conf DIR`: where primacy-site.properties,
    /// masters and workers are; default $PRIMACY_CONF_DIR, else
    /// $ALLUXIO_CONF_DIR, else ./conf).
    #[command(flatten)]
    pub common: CommonArgs,
    /// start, stop, restart or status.
    #[arg(value_enum)]
    pub action: Action,
    /// all, masters, workers (every listed host) or master, worker (this machine).
    #[arg(value_enum)]
    pub target: Target,
    /// With `restart masters`: one master at a time, primacy moved to a
    /// caught-up standby before the primary restarts; clients keep working.
    #[arg(long)]
    pub rolling: bool,
    /// How long a start waits for each process to serve (and a rolling
    /// restart for each master to catch up).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub wait: Duration,
    /// How long a stop waits after SIGTERM before SIGKILL.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// With `status master|worker`: poll until the process serves (a
    /// master reports a role, the primary hears from a worker) or --wait passes;
    /// a readiness check for a service manager (systemd's ExecStartPost).
    #[arg(long)]
    pub ready: bool,
    /// One JSON object per line instead of text (what the plural forms
    /// read back from each host).
    #[arg(long)]
    pub json: bool,
}

/// Runs `primacy process`.
pub fn run(args: ProcessArgs) -> ExitCode {
    init_logging("warn");
    if args.rolling && !(args.action == Action::Restart && args.target == Target::Masters) {
        return fail(
            &args,
            exit::USAGE,
            "--rolling goes with `restart masters` only",
        );
    }
    let conf = match conf_dir(&args.common) {
        Ok(c) => c,
        Err(e) => return fail(&args, exit::USAGE, &e),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            return fail(
                &args,
                exit::REFUSED,
                &format!("cannot start the runtime: {e}"),
            )
        }
    };
    let code = match args.target {
        Target::Master => runtime.block_on(local(&args, &conf, NodeKind::Master)),
        Target::Worker => runtime.block_on(local(&args, &conf, NodeKind::Worker)),
        Target::Masters | Target::Workers | Target::All => runtime.block_on(plural(&args, &conf)),
    };
    ExitCode::from(code)
}

/// The configuration directory, absolute (the same path is used on every
/// host and given to the started process).
fn conf_dir(common: &CommonArgs) -> Result<PathBuf, String> {
    let dir = common
        .conf
        .clone()
        .or_else(|| {
            std::env::var_os(CONF_DIR_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .or_else(|| {
            std::env::var_os(ALLUXIO_CONF_DIR_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from(crate::config::DEFAULT_CONF_DIR));
    std::path::absolute(&dir).map_err(|e| format!("conf dir {}: {e}", dir.display()))
}

/// Prints an error (as JSON with `--json`) and returns `code`.
fn fail(args: &ProcessArgs, code: u8, message: &str) -> ExitCode {
    ExitCode::from(report_error(args, code, message))
}

fn report_error(args: &ProcessArgs, code: u8, message: &str) -> u8 {
    if args.json {
        println!(
            "{}",
            serde_json::json!({"error": message, "exit_code": code})
        );
    }
    eprintln!("primacy process: {message}");
    code
}

/// A singular action on this machine.
async fn local(args: &ProcessArgs, conf: &Path, kind: NodeKind) -> u8 {
    let opts = LoadOptions::from_process(Some(conf.to_path_buf()), args.common.defines.clone());
    let config = match MasterConfig::load(&opts) {
        Ok(c) => c,
        Err(e) => return report_error(args, exit::USAGE, &format!("configuration error: {e}")),
    };
    let node = match Node::new(
        kind,
        conf.to_path_buf(),
        args.common.defines.clone(),
        config,
        args.action != Action::Status,
    ) {
        Ok(n) => n,
        Err(e) => return report_error(args, exit::USAGE, &e.to_string()),
    };
    let json = args.json;
    let mut announce = |line: &str| {
        if json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    };
    let _lock = match args.action {
        Action::Status => None,
        _ => match node.lock() {
            Ok(l) => Some(l),
            Err(e) => return report_error(args, exit::REFUSED, &e.to_string()),
        },
    };
    // `status` succeeds when healthy, `status --ready` when ready.
    let mut ready = None;
    let result = match args.action {
        Action::Start => node.start(args.wait).await,
        Action::Stop => node.stop(args.timeout, &mut announce).await,
        Action::Restart => match node.stop(args.timeout, &mut announce).await {
            Ok(stopped) => {
                if stopped.pid.is_some() {
                    announce(&stopped.line());
                }
                node.start(args.wait).await
            }
            Err(e) => Err(e),
        },
        Action::Status if args.ready => node.wait_ready(args.wait).await.map(|(r, ok)| {
            ready = Some(ok);
            r
        }),
        Action::Status => node.status().await,
    };
    match result {
        Ok(r) => {
            if json {
                println!("{}", r.to_json());
            } else {
                println!("{}", r.line());
            }
            if args.action == Action::Status && !ready.unwrap_or(r.healthy) {
                exit::REFUSED
            } else {
                exit::OK
            }
        }
        Err(e) => report_error(args, exit::REFUSED, &e.to_string()),
    }
}

/// A plural action: every listed host, concurrently.
async fn plural(args: &ProcessArgs, conf: &Path) -> u8 {
    let runner = match Runner::from_env(args.common.defines.clone(), args.wait, args.timeout) {
        Ok(r) => r,
        Err(e) => return report_error(args, exit::USAGE, &e),
    };
    let kinds: Vec<NodeKind> = match (args.target, args.action) {
        (Target::Masters, _) => vec![NodeKind::Master],
        (Target::Workers, _) => vec![NodeKind::Worker],
        (_, Action::Stop) => vec![NodeKind::Worker, NodeKind::Master],
        _ => vec![NodeKind::Master, NodeKind::Worker],
    };
    let mut lists = Vec::new();
    for kind in &kinds {
        let file = conf.join(format!("{}s", kind.word()));
        match hosts::read(&file, conf) {
            Ok(entries) => lists.push((*kind, entries)),
            // `all` without a workers file: masters only.
            Err(HostsError::Read { source, .. })
                if args.target == Target::All
                    && *kind == NodeKind::Worker
                    && source.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return report_error(args, exit::USAGE, &e.to_string()),
        }
    }
    if args.rolling {
        return rolling_restart(args, conf, &runner, &lists[0].1).await;
    }
    let mut code = exit::OK;
    let actions: Vec<&str> = match args.action {
        Action::Start => vec!["start"],
        Action::Stop => vec!["stop"],
        Action::Restart => vec!["stop", "start"],
        Action::Status => vec!["status"],
    };
    for action in actions {
        // A restart stops everything first (workers before masters), then
        // starts everything (masters before workers).
        let order: Vec<&(NodeKind, Vec<HostEntry>)> = if action == "stop" {
            let mut v: Vec<_> = lists.iter().collect();
            v.sort_by_key(|(k, _)| *k == NodeKind::Master);
            v
        } else {
            let mut v: Vec<_> = lists.iter().collect();
            v.sort_by_key(|(k, _)| *k == NodeKind::Worker);
            v
        };
        for (kind, entries) in order {
            let c = act_on_all(args, conf, &runner, action, *kind, entries).await;
            code = code.max(c);
        }
    }
    code
}

/// `action` on every entry at once; prints a table and every failure.
async fn act_on_all(
    args: &ProcessArgs,
    conf: &Path,
    runner: &Runner,
    action: &str,
    kind: NodeKind,
    entries: &[HostEntry],
) -> u8 {
    if !args.json {
        let plan = match action {
            "start" => format!(
                "starting {} {kind}(s); waiting up to {} s for each to serve",
                entries.len(),
                args.wait.as_secs()
            ),
            "stop" => format!(
                "stopping {} {kind}(s): SIGTERM, then SIGKILL after {} s",
                entries.len(),
                args.timeout.as_secs()
            ),
            _ => format!("{kind}s:"),
        };
        println!("{plan}");
    }
    let results =
        futures::future::join_all(entries.iter().map(|e| runner.run(e, action, kind))).await;
    let mut rows = vec![vec![
        "host".to_string(),
        "role".into(),
        "address".into(),
        "pid".into(),
        "state".into(),
    ]];
    let mut failures = Vec::new();
    let mut code = exit::OK;
    for (entry, r) in entries.iter().zip(results) {
        match r {
            Ok(r) => {
                if args.json {
                    let mut v = r.to_json();
                    v["host"] = serde_json::Value::from(entry.host.clone());
                    println!("{v}");
                }
                if action == "status" && !r.healthy {
                    code = exit::REFUSED;
                }
                let mut state = r.state.clone();
                if !r.detail.is_empty() && action != "status" {
                    state.push_str(&format!(" {}", r.detail));
                }
                rows.push(vec![
                    entry.label(conf),
                    r.role_cell(),
                    r.address.clone(),
                    r.pid.map_or("-".into(), |p| p.to_string()),
                    state,
                ]);
            }
            Err(e) => {
                code = exit::REFUSED;
                rows.push(vec![
                    entry.label(conf),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "FAILED".into(),
                ]);
                failures.push(e.to_string());
            }
        }
    }
    if !args.json {
        for line in table(&rows) {
            println!("  {line}");
        }
    }
    for f in failures {
        eprintln!("primacy process: {f}");
        if args.json {
            println!(
                "{}",
                serde_json::json!({"error": f, "exit_code": exit::REFUSED})
            );
        }
    }
    code
}

/// `restart masters --rolling`.
async fn rolling_restart(
    args: &ProcessArgs,
    conf: &Path,
    runner: &Runner,
    entries: &[HostEntry],
) -> u8 {
    let opts = LoadOptions::from_process(Some(conf.to_path_buf()), args.common.defines.clone());
    let client = match MasterConfig::load(&opts)
        .map_err(|e| format!("configuration error: {e}"))
        .and_then(|c| MasterClient::from_config(&c).map_err(|e| e.to_string()))
    {
        Ok(c) => c,
        Err(e) => return report_error(args, exit::USAGE, &e),
    };
    let mut out = |line: &str| println!("{line}");
    match rolling::roll(entries, conf, runner, &client, args.wait, &mut out).await {
        Ok(()) => exit::OK,
        Err(e) => report_error(args, exit::REFUSED, &e.to_string()),
    }
}
