//! The demonstration's steps, in order: start the cluster, a basic IO
//! test, SIGKILL of the primary while clients write, verification, the
//! killed master's rejoin, the summary. Each step prints as it happens and
//! records its checks in the [`Report`]; a step that cannot go on (no
//! primary, a master that will not start) ends the run with that check
//! failed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::client::{ClientError, MasterClient};
use crate::config::{ConfigError, MasterConfig};
use crate::proto::rpc::MasterInfo;

use super::children::{ChildError, ChildSpec, Children};
use super::observe::{applied, masters_table, Observer, WaitError};
use super::plan::Plan;
use super::report::Report;
use super::ui::{ms, Ui};
use super::workload::{list_tree, verify, Outcome, Writers};
use super::zookeeper::{self, ZkError, ZkServer};

/// How long any one wait may take before the launcher calls it a failure
/// (a primary, the worker, a restarted master catching up, a format).
pub const BOUND: Duration = Duration::from_secs(60);

/// Pause of each writer after each file during the failover, so the kill
/// lands while they are still writing.
const FAILOVER_PACE: Duration = Duration::from_millis(10);

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
        let (w, _) = self.wait_worker("the worker registered").await?;
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

    /// Step 2: the clients write `files` files under `/basic-io` as fast
    /// as they can; the tree is listed back.
    async fn basic_io(&mut self, cfg: &MasterConfig) -> Result<Outcome, StepError> {
        let started = Instant::now();
        let writers = Writers::start(cfg, "/basic-io", self.clients, self.files, Duration::ZERO)?;
        let wait = self.ui.wait("writing");
        while !writers.finished() {
            wait.set(format!(
                "writing: {} of {} files",
                writers.files_acked(),
                writers.files
            ));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let outcome = writers.finish().await;
        let took = started.elapsed();
        wait.done(format!(
            "{} clients wrote {} files in {} directories in {}",
            self.clients,
            outcome.files.len(),
            outcome.dirs.len(),
            ms(took)
        ));
        for e in &outcome.errors {
            self.ui.line(format!("error: {e}"));
        }
        let tree = list_tree(&MasterClient::from_config(cfg)?, "/basic-io").await?;
        let v = verify(&outcome, &tree);
        self.ui.line(format!(
            "listed     {} entries back: {} files complete with their length, {} directories",
            tree.len(),
            v.files_ok,
            v.dirs_ok
        ));
        let ok = outcome.errors.is_empty()
            && v.files_ok == self.files
            && v.bad_count == 0
            && v.unacknowledged == 0;
        for b in &v.bad {
            self.ui.line(format!("wrong: {b}"));
        }
        self.report.check(
            "basic IO",
            format!(
                "{} files by {} clients, {} listed back",
                outcome.files.len(),
                self.clients,
                v.files_ok
            ),
            ok,
        );
        Ok(outcome)
    }

    /// Step 3: writers start, the primary is killed with SIGKILL once a
    /// quarter of their files are acknowledged, a new primary takes over
    /// (the only master is restarted at once instead), the writers carry on
    /// through their clients' retries. Returns the killed master.
    async fn failover(&mut self, cfg: &MasterConfig) -> Result<(usize, Outcome), StepError> {
        let view = self.observer.poll(self.plan).await;
        let Some((victim, before)) = Observer::primary(&view).map(|(i, a)| (i, a.clone())) else {
            return Err(StepError::Other("no primary before the kill".into()));
        };
        let name = self.plan.masters[victim].name.clone();
        let writers = Writers::start(cfg, "/failover", self.clients, self.files, FAILOVER_PACE)?;
        self.ui.line(format!(
            "writing    {} files from {} clients under /failover",
            self.files, self.clients
        ));
        let threshold = (self.files / 4).max(1);
        let wait = self.ui.wait("writing");
        while writers.files_acked() < threshold && !writers.finished() {
            wait.set(format!(
                "writing: {} of {} files",
                writers.files_acked(),
                self.files
            ));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let acked = writers.files_acked();
        let pid = self.pids[victim].unwrap_or_default();
        let Some(killed_at) = self.children.kill(&name) else {
            return Err(StepError::Other(format!("{name} is not running")));
        };
        self.pids[victim] = None;
        wait.done(format!(
            "SIGKILL    {name} (pid {pid}), the primary, after {acked} of {} files",
            self.files
        ));
        let single = self.plan.masters.len() == 1;
        if single {
            self.start_master(victim)?;
            self.ui.line(format!(
                "restarted  {name}: the only master, at once, with the same journal"
            ));
        }
        let wait = self.ui.wait("waiting for a new primary");
        let (next, _) = self
            .observer
            .wait_primary(self.plan, self.children, before.epoch, BOUND, &wait)
            .await?;
        let seen = killed_at.elapsed();
        let next_name = self.plan.masters[next].name.clone();
        wait.done(format!(
            "primary    {next_name} ({}), answering as PRIMARY {} after the kill",
            self.plan.masters[next].address(),
            ms(seen)
        ));
        let wait = self.ui.wait("clients writing through the failover");
        while !writers.finished() {
            wait.set(format!(
                "clients writing through the failover: {} of {} files",
                writers.files_acked(),
                self.files
            ));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let outcome = writers.finish().await;
        wait.done(format!(
            "written    {} of {} files",
            outcome.files.len(),
            self.files
        ));
        for e in &outcome.errors {
            self.ui.line(format!("error: {e}"));
        }
        let after = outcome.writes.iter().filter(|w| w.at > killed_at).count();
        // A write sent before the kill may have been answered just before
        // it and read afterwards: only one sent after the kill proves the
        // new primary serves.
        let first_write = outcome
            .writes
            .iter()
            .filter(|w| w.sent > killed_at)
            .min_by_key(|w| w.at);
        let first = first_write.map(|w| w.at.duration_since(killed_at));
        match first_write {
            Some(w) => self.ui.line(format!(
                "failover   {} as a client saw it: SIGKILL -> first write sent after it \
                 acknowledged ({})",
                ms(w.at.duration_since(killed_at)),
                w.path
            )),
            None => self.ui.line(
                "failover   no write was sent after the kill (the writers had finished): use more --files",
            ),
        }
        self.ui.line(format!(
            "writes     {after} of {} (mkdir, create, complete) acknowledged after the kill",
            outcome.writes.len()
        ));
        self.ui.line(format!(
            "retries    {} requests retried ({} extra attempts)",
            outcome.retries.retried_calls, outcome.retries.retries
        ));
        let moved = single || next != victim;
        self.report.check(
            "failover",
            match (first, single) {
                (Some(d), false) => {
                    format!("{name} -> {next_name}: {} (kill to first write)", ms(d))
                }
                (Some(d), true) => format!("{name} restarted: {} (kill to first write)", ms(d)),
                (None, _) => format!("{name} -> {next_name}: no write after the kill"),
            },
            first.is_some() && moved,
        );
        self.report.figure(
            "retried requests",
            format!(
                "{} ({} extra attempts)",
                outcome.retries.retried_calls, outcome.retries.retries
            ),
        );
        let (w, _) = self.wait_worker("the worker on the new primary").await?;
        self.report.check(
            "worker re-registered",
            format!("with {}", self.plan.masters[w].name),
            w == next,
        );
        Ok((victim, outcome))
    }

    /// Step 4: lists each tree on the current primary and checks every
    /// acknowledged write against it.
    async fn verify_all(
        &mut self,
        cfg: &MasterConfig,
        trees: &[(&str, &Outcome)],
    ) -> Result<(), StepError> {
        let client = MasterClient::from_config(cfg)?;
        let (mut files, mut ok_files, mut bad, mut extra, mut errors) = (0, 0, 0, 0, 0);
        for (root, outcome) in trees {
            let tree = list_tree(&client, root).await?;
            let v = verify(outcome, &tree);
            self.ui.line(format!(
                "{root:<10} {} of {} acknowledged files and {} of {} directories listed, \
                 {} unacknowledged entries",
                v.files_ok,
                outcome.files.len(),
                v.dirs_ok,
                outcome.dirs.len(),
                v.unacknowledged
            ));
            for b in &v.bad {
                self.ui.line(format!("wrong: {b}"));
            }
            files += outcome.files.len();
            ok_files += v.files_ok;
            bad += v.bad_count;
            extra += v.unacknowledged;
            errors += outcome.errors.len();
        }
        let primary = client.leader().await.unwrap_or_else(|_| "?".into());
        self.ui
            .line(format!("(listed through the primary at {primary})"));
        self.report
            .figure("files written", format!("{files} acknowledged"));
        self.report.check(
            "files verified",
            format!("{ok_files} of {files}"),
            bad == 0 && ok_files == files && files == 2 * self.files,
        );
        // An entry nobody acknowledged can only come from a call that
        // failed (applied, but its answer lost for good).
        self.report.check(
            "errors",
            format!("{errors} failed calls, {extra} unacknowledged entries"),
            errors == 0 && extra == 0,
        );
        Ok(())
    }

    /// Step 5: restarts the killed master and waits until it is a standby
    /// whose applied sequence reached the primary's.
    async fn rejoin(&mut self, victim: usize) -> Result<(), StepError> {
        let name = self.plan.masters[victim].name.clone();
        if self.plan.masters.len() == 1 {
            self.ui.line(format!(
                "{name} is the only master: it was restarted during the failover and is the primary"
            ));
            let view = self.observer.poll(self.plan).await;
            self.print_masters(&view);
            return Ok(());
        }
        let restarted = Instant::now();
        self.start_master(victim)?;
        self.ui.line(format!(
            "restarted  {name} (pid {})",
            self.pids[victim].unwrap_or_default()
        ));
        let what = format!("{name} to catch up as a standby");
        let wait = self.ui.wait(format!("waiting for {what}"));
        let mut caught = (0, 0);
        let view = self
            .observer
            .wait_until(self.plan, self.children, &what, BOUND, &wait, |view| {
                let primary = Observer::primary(view).map(|(_, p)| applied(p));
                match (view[victim].as_ref(), primary) {
                    (None, _) => Err("starting".into()),
                    (Some(me), Some(p)) if me.role == "STANDBY" && applied(me) >= p => {
                        caught = (applied(me), p);
                        Ok(())
                    }
                    (Some(me), p) => Err(format!(
                        "{} at seq {}, primary at {}",
                        me.role,
                        applied(me),
                        p.map_or("?".into(), |p| p.to_string())
                    )),
                }
            })
            .await?;
        wait.done(format!(
            "rejoined   {name} as STANDBY at seq {} (primary at {}) {} after the restart",
            caught.0,
            caught.1,
            ms(restarted.elapsed())
        ));
        self.print_masters(&view);
        self.report.check(
            "killed master rejoined",
            format!("{name} STANDBY, seq {} of {}", caught.0, caught.1),
            true,
        );
        Ok(())
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
