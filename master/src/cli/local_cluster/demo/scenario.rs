//! Steps 2 to 5: the basic IO test, the failover under writes, the
//! verification of every acknowledged write, and the killed master's
//! rejoin.

use std::time::{Duration, Instant};

use crate::client::MasterClient;
use crate::config::MasterConfig;

use super::super::observe::{applied, Observer};
use super::super::ui::{count, ms};
use super::super::workload::{list_tree, verify, Outcome, Pacing, Writers};
use super::{Demo, StepError, BOUND};

/// Pause of each writer after each file during the failover, so the kill
/// lands while they are still writing.
const FAILOVER_PACE: Duration = Duration::from_millis(10);

impl Demo<'_> {
    /// Step 2: the clients write `files` files under `/basic-io` as fast
    /// as they can; the tree is listed back.
    pub(super) async fn basic_io(&mut self, cfg: &MasterConfig) -> Result<Outcome, StepError> {
        let started = Instant::now();
        let writers = Writers::start(cfg, "/basic-io", self.clients, self.files, &Pacing::FlatOut)?;
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
            "{} wrote {} in {} directories in {}",
            count(self.clients, "client"),
            count(outcome.files.len(), "file"),
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
                "{} by {}, {} listed back",
                count(outcome.files.len(), "file"),
                count(self.clients, "client"),
                v.files_ok
            ),
            ok,
        );
        Ok(outcome)
    }

    /// Step 3: writers start, the primary is killed with SIGKILL once a
    /// quarter of their files are acknowledged (each writer holds its last
    /// file back until then, so writes always cross the kill), a new
    /// primary takes over (the only master is restarted at once instead),
    /// the writers carry on through their clients' retries. Returns the
    /// killed master and what the writers did.
    pub(super) async fn failover(
        &mut self,
        cfg: &MasterConfig,
    ) -> Result<(usize, Outcome), StepError> {
        let view = self.observer.poll(self.plan).await;
        let Some((victim, before)) = Observer::primary(&view).map(|(i, a)| (i, a.clone())) else {
            return Err(StepError::Other("no primary before the kill".into()));
        };
        let name = self.plan.masters[victim].name.clone();
        let (killed, go) = tokio::sync::watch::channel(false);
        let pacing = Pacing::AcrossKill {
            pace: FAILOVER_PACE,
            go,
            hold: BOUND,
        };
        let writers = Writers::start(cfg, "/failover", self.clients, self.files, &pacing)?;
        drop(pacing);
        self.ui.line(format!(
            "writing    {} from {} under /failover",
            count(self.files, "file"),
            count(self.clients, "client")
        ));
        // Each writer holds its last file back until the kill, so at most
        // `files - clients` can be acknowledged before it.
        let threshold = (self.files / 4).max(1).min(self.files - self.clients);
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
        killed.send_replace(true);
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
            None => self
                .ui
                .line("failover   no write was sent after the kill: every writer had stopped"),
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
        let (w, _) = self
            .wait_worker("the worker to register with the new primary")
            .await?;
        self.report.check(
            "worker re-registered",
            format!("with {}", self.plan.masters[w].name),
            w == next,
        );
        Ok((victim, outcome))
    }

    /// Step 4: lists each tree on the current primary and checks every
    /// acknowledged write against it.
    pub(super) async fn verify_all(
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
    pub(super) async fn rejoin(&mut self, victim: usize) -> Result<(), StepError> {
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
}
