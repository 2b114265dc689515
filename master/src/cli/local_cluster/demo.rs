//! The demonstration's steps, in order: start the cluster, a basic IO
//! test, SIGKILL of the primary while clients write, verification, the
//! killed master's rejoin, the summary. Each step prints as it happens and
//! records its checks in the [`Report`]; a step that cannot go on (no
//! primary, a master that will not start) ends the run with that check
//! failed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::client::ClientError;
use crate::config::ConfigError;
use crate::proto::rpc::MasterInfo;

mod scenario;

use super::children::{ChildError, ChildSpec, Children};
use super::observe::{masters_table, Observer, WaitError};
use super::plan::Plan;
use super::report::Report;
use super::ui::{ms, Ui};
use super::zookeeper::{self, ZkError, ZkServer};

/// How long any one wait may take before the launcher calls it a failure
/// (a primary, the worker, a restarted master catching up, a format).
pub const BOUND: Duration = Duration::from_secs(60);

/// The number of steps, for the headings.
const STEPS: usize = 6;

/// Why a step could not go on.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// A child could not be started.
    #[error(transparent)]
    Child(#[from] ChildError),
    /// ZooKeeper could not be started.
    #[error(transparent)]
    Zk(#[from] ZkError),
    /// A wait ended without what it waited for.
    #[error(transparent)]
    Wait(#[from] WaitError),
    /// A client call failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The clients' configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Anything else, said in words.
    #[error("{0}")]
    Other(String),
}

/// The demonstration's state: the plan, the children, what was measured.
pub struct Demo<'a> {
    ui: &'a Ui,
    plan: &'a Plan,
    children: &'a mut Children,
    exe: PathBuf,
    java: Option<PathBuf>,
    files: usize,
    clients: usize,
    observer: Observer,
    /// Each master's current pid (`None` while it is down).
    pids: Vec<Option<u32>>,
    zk: Option<ZkServer>,
    /// The checks and figures so far.
    pub report: Report,
}

impl<'a> Demo<'a> {
    /// A demonstration of `plan` whose children run `exe` (and `java` for
    /// ZooKeeper); the clients write `files` files in each of the two
    /// writing steps, `clients` clients at a time.
    pub fn new(
        ui: &'a Ui,
        plan: &'a Plan,
        children: &'a mut Children,
        exe: PathBuf,
        java: Option<PathBuf>,
        files: usize,
        clients: usize,
    ) -> Demo<'a> {
        let pids = vec![None; plan.masters.len()];
        Demo {
            ui,
            plan,
            children,
            exe,
            java,
            files,
            clients,
            observer: Observer::new(),
            pids,
            zk: None,
            report: Report::default(),
        }
    }

    /// Runs every step; a step that cannot go on is recorded as a failed
    /// check and ends the run.
    pub async fn run(&mut self) {
        if let Err(e) = self.steps().await {
            self.ui.line(format!("cannot go on: {e}"));
            self.report.check("run", e.to_string(), false);
        }
    }

    async fn steps(&mut self) -> Result<(), StepError> {
        let cfg = self.plan.client_config()?;
        self.ui.step(1, STEPS, "Start the cluster");
        self.start_cluster().await?;
        self.ui.step(2, STEPS, "Basic IO test");
        let basic = self.basic_io(&cfg).await?;
        self.ui.step(
            3,
            STEPS,
            "Failover: SIGKILL the primary while clients write",
        );
        let (victim, during) = self.failover(&cfg).await?;
        self.ui.step(4, STEPS, "Verify every acknowledged write");
        self.verify_all(&cfg, &[("/basic-io", &basic), ("/failover", &during)])
            .await?;
        self.ui.step(5, STEPS, "Restart the killed master");
        self.rejoin(victim).await?;
        Ok(())
    }

    /// Prints the summary table (step 6).
    pub fn summary(&self) {
        self.ui.step(STEPS, STEPS, "Summary");
        self.report.print(self.ui);
    }

    /// Starts ZooKeeper (`ufs-zk`), formats, starts the masters, waits for
    /// a primary, starts the worker and waits until the primary lists it.
    async fn start_cluster(&mut self) -> Result<(), StepError> {
        let logs = self.plan.dir.join("logs");
        if let Some(java) = self.java.clone() {
            let port = self.plan.zk_port.unwrap_or_default();
            let log = self.plan.log("zookeeper");
            let wait = self.ui.wait("starting ZooKeeper");
            let zk = zookeeper::start(
                self.children,
                &java,
                &self.plan.dir.join("zookeeper"),
                &log,
                port,
                BOUND,
            )
            .await?;
            wait.done(format!(
                "ZooKeeper  {}  log {}",
                zk.address(),
                rel(&self.plan.dir, &log)
            ));
            self.zk = Some(zk);
        }
        let formatted: Vec<String> = self
            .plan
            .formatted()
            .iter()
            .map(|m| m.name.clone())
            .collect();
        for name in &formatted {
            self.format(name).await?;
        }
        self.ui.line(format!(
            "formatted  {} ({})",
            formatted.join(" "),
            self.plan.journal.describe()
        ));
        let started = Instant::now();
        for i in 0..self.plan.masters.len() {
            self.start_master(i)?;
        }
        self.ui.line(format!(
            "started    {} (logs: {}/<name>.log)",
            self.names(),
            rel(&self.plan.dir, &logs)
        ));
        let wait = self.ui.wait("waiting for a primary");
        let (p, view) = self
            .observer
            .wait_primary(self.plan, self.children, 0, BOUND, &wait)
            .await?;
        let elected = started.elapsed();
        wait.done(format!(
            "primary    {} ({}) {} after the start",
            self.plan.masters[p].name,
            self.plan.masters[p].address(),
            ms(elected)
        ));
        self.print_masters(&view);
        self.report.check(
            "primary elected",
            format!("{} in {}", self.plan.masters[p].name, ms(elected)),
            true,
        );
        self.start_worker()?;
        let (w, _) = self.wait_worker("the worker to register").await?;
        self.report.check(
            "worker registered",
            format!("with {}", self.plan.masters[w].name),
            true,
        );
        Ok(())
    }

    /// `primacy format` for master `name`, bounded by [`BOUND`].
    async fn format(&mut self, name: &str) -> Result<(), StepError> {
        let Some(m) = self.plan.masters.iter().find(|m| m.name == name) else {
            return Err(StepError::Other(format!("no master {name}")));
        };
        let child = format!("format-{name}");
        let log = self.plan.log(&child);
        let mut args = vec!["format".to_string()];
        args.extend(m.flags.iter().cloned());
        self.children.start(&ChildSpec {
            name: &child,
            program: &self.exe,
            args: &args,
            env: &[],
            log: &log,
            stop_last: false,
        })?;
        match self.children.wait(&child, BOUND).await {
            Some(s) if s.success() => Ok(()),
            other => Err(StepError::Other(format!(
                "primacy format for {name} failed ({}); see {}",
                other.map_or("did not finish".to_string(), |s| s.to_string()),
                log.display()
            ))),
        }
    }

    /// Starts master `i` with its flags (the same at every start).
    fn start_master(&mut self, i: usize) -> Result<(), StepError> {
        let m = &self.plan.masters[i];
        let mut args = vec!["master".to_string()];
        args.extend(m.flags.iter().cloned());
        let log = self.plan.log(&m.name);
        let pid = self.children.start(&ChildSpec {
            name: &m.name,
            program: &self.exe,
            args: &args,
            env: &child_env(),
            log: &log,
            stop_last: false,
        })?;
        self.pids[i] = Some(pid);
        Ok(())
    }

    fn start_worker(&mut self) -> Result<(), StepError> {
        let data = self.plan.dir.join("worker");
        std::fs::create_dir_all(&data)
            .map_err(|e| StepError::Other(format!("cannot create {}: {e}", data.display())))?;
        let mut args = vec!["worker".to_string()];
        args.extend(self.plan.worker_flags.iter().cloned());
        let log = self.plan.log("worker");
        self.children.start(&ChildSpec {
            name: "worker",
            program: &self.exe,
            args: &args,
            env: &child_env(),
            log: &log,
            stop_last: false,
        })?;
        Ok(())
    }

    /// Waits until the primary lists the worker LIVE; prints it.
    async fn wait_worker(
        &mut self,
        what: &str,
    ) -> Result<(usize, Vec<Option<MasterInfo>>), StepError> {
        let address = self.plan.worker_address.clone();
        let wait = self.ui.wait(format!("waiting for {what}"));
        let mut at = 0;
        let view = self
            .observer
            .wait_until(self.plan, self.children, what, BOUND, &wait, |view| {
                let Some((i, p)) = Observer::primary(view) else {
                    return Err("no primary".into());
                };
                at = i;
                match p.workers.iter().find(|w| w.address == address) {
                    Some(w) if w.state == "LIVE" => Ok(()),
                    Some(w) => Err(format!("the primary lists it {}", w.state)),
                    None => Err("the primary does not list it yet".into()),
                }
            })
            .await?;
        wait.done(format!(
            "worker     {address} LIVE on {} (log {})",
            self.plan.masters[at].name,
            rel(&self.plan.dir, &self.plan.log("worker"))
        ));
        Ok((at, view))
    }

    /// Prints what runs and how to reach it, for `--keep`.
    pub async fn print_running(&mut self) {
        let view = self.observer.poll(self.plan).await;
        self.print_masters(&view);
        self.ui.line(format!(
            "worker     {} (log {})",
            self.plan.worker_address,
            rel(&self.plan.dir, &self.plan.log("worker"))
        ));
        if let Some(zk) = &self.zk {
            self.ui.line(format!("ZooKeeper  {}", zk.address()));
        }
        self.ui.line(format!(
            "try        primacy fs ls /failover {}",
            self.plan.shell_flags()
        ));
    }

    fn print_masters(&self, view: &[Option<MasterInfo>]) {
        for line in masters_table(self.plan, view, &self.pids) {
            self.ui.line(line);
        }
    }

    fn names(&self) -> String {
        self.plan
            .masters
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The environment of masters and the worker: their own `info` logs
/// unless the user chose a `RUST_LOG`.
fn child_env() -> Vec<(&'static str, &'static str)> {
    if std::env::var_os("RUST_LOG").is_some() {
        Vec::new()
    } else {
        vec![("RUST_LOG", "info")]
    }
}

/// `path` relative to `dir` when inside it (short lines), else in full.
fn rel(dir: &Path, path: &Path) -> String {
    path.strip_prefix(dir)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| path.display().to_string())
}
