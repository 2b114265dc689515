//! `primacy local-cluster`: a whole cluster on this machine (N masters as
//! child `primacy master` processes on loopback ports, one worker, and
//! ZooKeeper for `--journal ufs-zk`) in a fresh working directory, then a
//! walk through a failover: a basic IO test, SIGKILL of the primary while
//! clients write, verification of every acknowledged write, the killed
//! master's rejoin, and a summary. See docs/local-cluster.md.
//!
//! Exit codes: 0 every check passed (and, with `--keep`, the cluster was
//! stopped by Ctrl-C or SIGTERM); 1 a check failed, the run was
//! interrupted, or a child could not be started; 2 usage or configuration
//! error (bad flags, a working directory that is not empty, ZooKeeper not
//! installed for `ufs-zk`). No child outlives the launcher on any path
//! (`children`).

mod children;
mod demo;
mod observe;
mod plan;
mod report;
pub(crate) mod ui;
mod workload;
mod zookeeper;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use super::{exit, init_logging};
use children::Children;
use demo::Demo;
pub use plan::JournalKind;
use plan::Plan;
use ui::{say, Ui};

/// Most masters the launcher starts on one machine.
const MAX_MASTERS: u32 = 9;

/// `primacy local-cluster` arguments.
#[derive(Debug, Clone, Args)]
pub struct LocalClusterArgs {
    /// Masters to start (default 3; 1 with --journal ufs, which has no
    /// election).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_MASTERS)))]
    pub masters: Option<u32>,
    /// The journal: embedded (Raft among the masters), ufs-zk (one shared
    /// journal folder, ZooKeeper elects; needs the Debian package
    /// zookeeper), ufs (a journal folder, one master).
    #[arg(long, value_enum, default_value = "embedded")]
    pub journal: JournalKind,
    /// Files written in the basic IO test, and again during the failover.
    #[arg(long, value_name = "N", default_value_t = 200,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub files: u32,
    /// Concurrent clients, each with its own connection.
    #[arg(long, value_name = "N", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    pub clients: u32,
    /// Working directory (created; must be empty). Default: a fresh
    /// directory under the system's temporary directory, kept afterwards.
    #[arg(long, value_name = "PATH")]
    pub dir: Option<PathBuf>,
    /// After the demonstration, leave the cluster running (its addresses
    /// printed) until Ctrl-C, then stop every child.
    #[arg(long)]
    pub keep: bool,
}

/// The choices, checked.
struct Choices {
    masters: usize,
    files: usize,
    clients: usize,
}

/// Checks what clap cannot: combinations of flags.
fn choose(args: &LocalClusterArgs) -> Result<Choices, String> {
    let masters = match (args.journal, args.masters) {
        (JournalKind::Ufs, None) => 1,
        (JournalKind::Ufs, Some(n)) if n > 1 => {
            return Err(format!(
                "--journal ufs runs one master (it has no election); got --masters {n}: \
                 use --journal ufs-zk or embedded for several"
            ))
        }
        (JournalKind::Embedded, Some(2)) => {
            return Err(
                "--masters 2 with the embedded journal: a Raft group of two loses its \
                 majority when one is killed, so there would be no failover; use 1, 3 or more"
                    .into(),
            )
        }
        (_, n) => n.unwrap_or(3),
    };
    if args.files < args.clients {
        return Err(format!(
            "--files {} is fewer than --clients {}: every client writes at least one file",
            args.files, args.clients
        ));
    }
    Ok(Choices {
        masters: masters as usize,
        files: args.files as usize,
        clients: args.clients as usize,
    })
}

/// Creates the working directory: `dir` (which must be empty or absent),
/// else a fresh one under the temporary directory, kept.
fn working_dir(dir: Option<&Path>) -> Result<PathBuf, String> {
    let dir = match dir {
        Some(d) => {
            std::fs::create_dir_all(d)
                .map_err(|e| format!("cannot create {}: {e}", d.display()))?;
            let mut entries =
                std::fs::read_dir(d).map_err(|e| format!("cannot read {}: {e}", d.display()))?;
            if entries.next().is_some() {
                return Err(format!(
                    "{} is not empty: choose a new directory for --dir",
                    d.display()
                ));
            }
            d.to_path_buf()
        }
        None => tempfile::Builder::new()
            .prefix("primacy-local-")
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory: {e}"))?
            .keep(),
    };
    let dir = std::path::absolute(&dir).unwrap_or(dir);
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| format!("cannot create {}: {e}", logs.display()))?;
    Ok(dir)
}

/// Runs the launcher (see the module doc for exit codes).
pub fn run(args: LocalClusterArgs) -> ExitCode {
    init_logging("warn");
    let choices = match choose(&args) {
        Ok(c) => c,
        Err(msg) => return fail(exit::USAGE, &msg),
    };
    let java = match args.journal {
        JournalKind::UfsZk => match zookeeper::find_installation() {
            Ok(java) => Some(java),
            Err(e) => return fail(exit::USAGE, &e.to_string()),
        },
        _ => None,
    };
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return fail(exit::USAGE, &format!("cannot find the primacy binary: {e}")),
    };
    let dir = match working_dir(args.dir.as_deref()) {
        Ok(d) => d,
        Err(msg) => return fail(exit::USAGE, &msg),
    };
    let plan = match Plan::new(&dir, args.journal, choices.masters) {
        Ok(p) => p,
        Err(e) => return fail(exit::REFUSED, &format!("cannot pick free ports: {e}")),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
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
    // Installed before any child starts, so a Ctrl-C is never lost and
    // never kills the launcher before it stopped its children.
    let mut stop = match runtime.block_on(async { Stop::install() }) {
        Ok(s) => s,
        Err(e) => {
            return fail(
                exit::REFUSED,
                &format!("cannot install signal handlers: {e}"),
            )
        }
    };
    let mut children = match Children::new(&dir) {
        Ok(c) => c,
        Err(e) => {
            return fail(
                exit::REFUSED,
                &format!("cannot start the spawner thread: {e}"),
            )
        }
    };
    let ui = Ui::new();
    print_header(&plan, &dir);
    let mut demo = Demo::new(
        &ui,
        &plan,
        &mut children,
        exe,
        java,
        choices.files,
        choices.clients,
    );
    let interrupted = runtime.block_on(async {
        tokio::select! {
            () = demo.run() => None,
            signal = stop.next() => Some(signal),
        }
    });
    let code = if let Some(signal) = interrupted {
        say("");
        ui.line(format!("{signal}: stopping the cluster"));
        exit::REFUSED
    } else {
        demo.summary();
        let code = if demo.report.passed() {
            exit::OK
        } else {
            exit::REFUSED
        };
        if args.keep {
            say("");
            say("The cluster keeps running (--keep):");
            runtime.block_on(demo.print_running());
            say("Press Ctrl-C to stop it.");
            let signal = runtime.block_on(stop.next());
            ui.line(format!("{signal}: stopping the cluster"));
        }
        code
    };
    drop(demo);
    children.stop_all();
    ui.line(format!(
        "stopped every child process; the working directory {} is kept",
        dir.display()
    ));
    ExitCode::from(code)
}

/// What runs where: the first lines of the output.
fn print_header(plan: &Plan, dir: &Path) {
    say(format!(
        "primacy local-cluster: {} master{} on the {}, one worker",
        plan.masters.len(),
        if plan.masters.len() == 1 { "" } else { "s" },
        plan.journal.describe()
    ));
    say(format!("  working directory  {}", dir.display()));
    say(format!(
        "  logs               {}",
        dir.join("logs").display()
    ));
    say(format!(
        "  pids               {}",
        dir.join("pids").display()
    ));
    if plan.journal == JournalKind::UfsZk {
        say(format!(
            "  ZooKeeper session timeout {} (shortened: it bounds the failover)",
            plan::ZK_SESSION_TIMEOUT
        ));
    }
}

/// SIGINT, SIGTERM and SIGHUP, caught for the launcher's whole life.
struct Stop {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Stop {
    /// Must run inside the runtime.
    fn install() -> std::io::Result<Stop> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Stop {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// Completes at the next of the three signals; returns its name.
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
            _ = self.hup.recv() => "SIGHUP",
        }
    }
}

/// Says why the launcher stops before starting anything, on stderr.
fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!("primacy local-cluster: {message}");
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<LocalClusterArgs, clap::Error> {
        #[derive(Debug, Parser)]
        struct T {
            #[command(flatten)]
            a: LocalClusterArgs,
        }
        let mut all = vec!["t"];
        all.extend(args);
        T::try_parse_from(all).map(|t| t.a)
    }

    #[test]
    fn defaults_and_combinations() {
        let a = parse(&[]).expect("defaults");
        let c = choose(&a).expect("valid");
        assert_eq!((c.masters, c.files, c.clients), (3, 200, 4));
        let a = parse(&["--journal", "ufs"]).expect("ufs");
        assert_eq!(choose(&a).expect("valid").masters, 1);
        for bad in [
            &["--journal", "ufs", "--masters", "3"][..],
            &["--masters", "2"],
            &["--files", "2", "--clients", "3"],
        ] {
            let a = parse(bad).expect("parses");
            assert!(choose(&a).is_err(), "{bad:?}");
        }
        assert!(choose(&parse(&["--journal", "ufs-zk", "--masters", "2"]).expect("p")).is_ok());
        for bad in [
            &["--masters", "0"][..],
            &["--masters", "10"],
            &["--journal", "nope"],
            &["--files", "0"],
        ] {
            let e = parse(bad).expect_err("refused");
            assert_eq!(e.exit_code(), 2, "{bad:?}");
        }
    }
}
