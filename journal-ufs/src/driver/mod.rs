//! The task that owns a UFS journal's log position: it tails as a standby,
//! catches up and claims the log when elected, and group-commits proposals
//! as the primary. Only this task touches the state machine's write lock, so
//! every entry is applied exactly once and in log order.
//!
//! - `replay`: reading, verifying and applying chunks; proving that the end
//!   of the log this master reached is the real end (see `log_end`).
//! - `write`: chunk writes with create-if-absent and the guard that tells a
//!   live slot from one garbage collection freed; read barriers; checkpoints.
//! - this module: the roles (follow, lead, serve) and their transitions.

mod outage;
mod replay;
mod write;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use journal_core::proto::{journal_record::Kind, Primacy};
use journal_core::{
    ElectionState, JournalError, JournalStatus, LeaderElection, Proposal, Result, Role,
    SharedStateMachine,
};
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot, watch};

use crate::config::UfsJournalConfig;
use crate::layout::Layout;
use crate::store::Folder;
use write::WriteOutcome;

/// Requests the journal handle sends to its driver.
pub(crate) enum Command {
    Propose(Proposal),
    Barrier(oneshot::Sender<Result<()>>),
    Checkpoint(oneshot::Sender<Result<u64>>),
    /// Step down and go to the back of the election's queue, so the next
    /// contender in line takes over (`transfer_leadership`). Answered once
    /// resigned; `NotPrimary` when this master does not serve.
    Resign(String, oneshot::Sender<Result<()>>),
}

/// What the main loop does next.
enum Flow {
    Continue,
    Shutdown,
}

/// Polls of an empty slot between checks that the slot really is the end of
/// the log (about 1 s at the default sleep): the standby lists the folder and
/// learns whether garbage collection overtook it or the log has a hole.
const END_CHECK_POLLS: u32 = 50;

/// Chunks a standby applies between two checks of the log's shape even when
/// it is never idle, which also bounds the list of chunk names it remembers.
const END_CHECK_CHUNKS: usize = 4096;

pub(crate) struct Driver {
    pub(crate) folder: Folder,
    pub(crate) layout: Layout,
    pub(crate) cfg: UfsJournalConfig,
    pub(crate) cluster_id: String,
    pub(crate) machine: SharedStateMachine,
    pub(crate) election: Arc<dyn LeaderElection>,
    pub(crate) election_rx: watch::Receiver<ElectionState>,
    pub(crate) commands: mpsc::Receiver<Command>,
    pub(crate) role_tx: watch::Sender<Role>,
    pub(crate) status: Arc<Mutex<JournalStatus>>,
    pub(crate) shutdown: watch::Receiver<bool>,
    /// Set once a fatal error stopped this journal: (location, detail).
    pub(crate) halted: Arc<Mutex<Option<(String, String)>>>,
    deferred: VecDeque<Command>,
    /// Next record to read or write.
    next_seq: u64,
    /// Epoch of the last record applied.
    last_epoch: u64,
    /// First sequence number of the last chunk applied (`None`: none since
    /// the state was last restored, or the log is empty).
    prev_chunk: Option<u64>,
    /// The writer id in that chunk's header (a random id per primacy): a
    /// chunk re-created under the same name by a stalled primary carries
    /// another one, so it is not the chunk this master applied.
    prev_writer: Option<String>,
    /// Chunk names below this were verified or are dead history.
    judged_from: u64,
    /// Chunks applied at or after `judged_from`, ascending.
    applied_since: Vec<u64>,
    last_checkpoint: Option<u64>,
    since_checkpoint: u64,
    leader_hint: Option<String>,
    /// Rate limits for chunk-write failures and for storage errors that
    /// send the task into its retry back-off.
    write_failures: outage::Throttle,
    storage_failures: outage::Throttle,
    staging: outage::StagingSweeper,
}

fn is_fatal(e: &JournalError) -> bool {
    matches!(
        e,
        JournalError::Corrupt { .. }
            | JournalError::ForeignJournal { .. }
            | JournalError::Unformatted { .. }
    )
}

impl Driver {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        folder: Folder,
        layout: Layout,
        cfg: UfsJournalConfig,
        cluster_id: String,
        machine: SharedStateMachine,
        election: Arc<dyn LeaderElection>,
        commands: mpsc::Receiver<Command>,
        role_tx: watch::Sender<Role>,
        status: Arc<Mutex<JournalStatus>>,
        shutdown: watch::Receiver<bool>,
        halted: Arc<Mutex<Option<(String, String)>>>,
    ) -> Self {
        let election_rx = election.watch();
        let write_failures = outage::Throttle::new(cfg.error_log_interval);
        let storage_failures = outage::Throttle::new(cfg.error_log_interval);
        let staging = outage::StagingSweeper::new(&folder.url, cfg.staging_grace);
        Driver {
            folder,
            layout,
            cfg,
            cluster_id,
            machine,
            election,
            election_rx,
            commands,
            role_tx,
            status,
            shutdown,
            halted,
            deferred: VecDeque::new(),
            next_seq: 1,
            last_epoch: 0,
            prev_chunk: None,
            prev_writer: None,
            judged_from: 0,
            applied_since: Vec::new(),
            last_checkpoint: None,
            since_checkpoint: 0,
            leader_hint: None,
            write_failures,
            storage_failures,
            staging,
        }
    }

    fn publish_status(&self) {
        let mut s = self.status.lock();
        s.role = *self.role_tx.borrow();
        s.epoch = self.last_epoch;
        s.last_applied = self.next_seq - 1;
        s.last_durable = self.next_seq - 1;
        s.last_checkpoint = self.last_checkpoint;
        s.leader_address = if s.role.is_primary() {
            Some(self.cfg.address.clone())
        } else {
            self.leader_hint.clone()
        };
    }

    fn set_role(&self, role: Role) {
        self.role_tx.send_replace(role);
        self.publish_status();
    }

    async fn step_down(&mut self, reason: &str) {
        if self.role_tx.borrow().is_primary() {
            tracing::warn!(
                reason,
                next_seq = self.next_seq,
                "stepping down from PRIMARY to STANDBY"
            );
        }
        self.set_role(Role::Standby);
        if let Err(e) = self.election.withdraw_serving().await {
            tracing::warn!(error = %e, "could not withdraw the published primary address");
        }
    }

    async fn fenced(&mut self, by_epoch: u64) {
        self.cfg.metrics.ufs_fenced();
        tracing::warn!(
            by_epoch,
            slot = self.next_seq,
            "FENCED: another primary claimed the journal; this master's unwritten entries were refused"
        );
        self.step_down("fenced by a newer primary").await;
        if let Err(e) = self.election.resign().await {
            tracing::warn!(error = %e, "could not resign from the election");
        }
    }

    fn shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// The task's body: follow or lead until shut down.
    pub(crate) async fn run(mut self) {
        let mut backoff = false;
        loop {
            if self.shutting_down() {
                break;
            }
            if backoff {
                // Keep answering (as a standby) while storage errors last, so
                // no caller waits on a master that is retrying.
                let pause = tokio::time::sleep(self.cfg.retry_backoff);
                tokio::pin!(pause);
                loop {
                    tokio::select! {
                        _ = &mut pause => break,
                        c = self.commands.recv() => match c {
                            Some(cmd) => self.answer_as_standby(cmd).await,
                            None => break,
                        },
                    }
                }
                backoff = false;
            }
            let state = self.election_rx.borrow_and_update().clone();
            let result = match state {
                ElectionState::Leader { epoch } => self.lead(epoch).await,
                _ => self.follow().await,
            };
            if result.is_ok() {
                if let Some((failures, lasted)) = self.storage_failures.success() {
                    tracing::info!(
                        failures,
                        lasted_ms = lasted.as_millis() as u64,
                        "journal storage is reachable again"
                    );
                }
            }
            match result {
                Ok(Flow::Continue) => {}
                Ok(Flow::Shutdown) => break,
                Err(e) if is_fatal(&e) => {
                    tracing::error!(error = %e, "the journal cannot continue; this master stops serving and replaying");
                    self.halt(e).await;
                    return;
                }
                Err(e) => {
                    if let Some(suppressed) = self.storage_failures.failure() {
                        tracing::warn!(
                            error = %e,
                            suppressed,
                            retry_in_ms = self.cfg.retry_backoff.as_millis() as u64,
                            "journal storage error; this master answers as a standby and retries"
                        );
                    }
                    backoff = true;
                }
            }
        }
        self.finish().await;
    }

    /// Stops after a fatal error: answers every request with it until shutdown.
    async fn halt(&mut self, error: JournalError) {
        self.step_down("fatal journal error").await;
        let (location, detail) = match &error {
            JournalError::Corrupt { location, detail } => (location.clone(), detail.clone()),
            other => (self.folder.url.clone(), other.to_string()),
        };
        self.status.lock().leader_address = None;
        *self.halted.lock() = Some((location.clone(), detail.clone()));
        let fail = || JournalError::corrupt(location.clone(), detail.clone());
        loop {
            let cmd = match self.deferred.pop_front() {
                Some(c) => c,
                None => tokio::select! {
                    _ = self.shutdown.changed() => break,
                    c = self.commands.recv() => match c { Some(c) => c, None => break },
                },
            };
            match cmd {
                Command::Propose(p) => {
                    let _ = p.reply.send(Err(fail()));
                }
                Command::Barrier(tx) => {
                    let _ = tx.send(Err(fail()));
                }
                Command::Checkpoint(tx) => {
                    let _ = tx.send(Err(fail()));
                }
                Command::Resign(_, tx) => {
                    let _ = tx.send(Err(fail()));
                }
            }
        }
        self.finish().await;
    }

    async fn finish(&mut self) {
        if self.role_tx.borrow().is_primary() {
            tracing::warn!(
                next_seq = self.next_seq,
                "stepping down from PRIMARY to STANDBY: shutting down"
            );
        }
        self.set_role(Role::Standby);
        // No `withdraw_serving` first: closing the election removes the
        // published address itself, while withdrawing needs a working
        // election (a ZooKeeper connection) and would hold the shutdown
        // until ZooKeeper came back.
        self.election.close().await;
        self.commands.close();
        while let Some(cmd) = self
            .deferred
            .pop_front()
            .or_else(|| self.commands.try_recv().ok())
        {
            match cmd {
                Command::Propose(p) => {
                    let _ = p.reply.send(Err(JournalError::Shutdown));
                }
                Command::Barrier(tx) => {
                    let _ = tx.send(Err(JournalError::Shutdown));
                }
                Command::Checkpoint(tx) => {
                    let _ = tx.send(Err(JournalError::Shutdown));
                }
                Command::Resign(_, tx) => {
                    let _ = tx.send(Err(JournalError::Shutdown));
                }
            }
        }
        tracing::info!(folder = %self.folder.url, next_seq = self.next_seq, "journal stopped");
    }

    fn not_primary(&self) -> JournalError {
        JournalError::NotPrimary {
            leader_hint: self.leader_hint.clone(),
        }
    }

    async fn answer_as_standby(&mut self, cmd: Command) {
        match cmd {
            Command::Propose(p) => {
                let _ = p.reply.send(Err(self.not_primary()));
            }
            Command::Barrier(tx) => {
                let _ = tx.send(Err(self.not_primary()));
            }
            Command::Checkpoint(tx) => {
                let r = self.checkpoint_now().await;
                let _ = tx.send(r);
            }
            Command::Resign(_, tx) => {
                let _ = tx.send(Err(self.not_primary()));
            }
        }
    }

    /// Standby: tail the log until elected or shut down.
    ///
    /// An absent slot is not trusted for long: every `END_CHECK_POLLS` idle
    /// polls (and every `END_CHECK_CHUNKS` applied chunks) the standby proves
    /// the end is real, whatever it applied so far, so a standby overtaken by
    /// garbage collection always reloads and a hole is always reported.
    async fn follow(&mut self) -> Result<Flow> {
        let mut idle_polls = 0u32;
        loop {
            if self.shutting_down() {
                return Ok(Flow::Shutdown);
            }
            let state = self.election_rx.borrow_and_update().clone();
            match state {
                ElectionState::Leader { .. } => return Ok(Flow::Continue),
                ElectionState::Follower { leader } => {
                    if self.leader_hint != leader {
                        self.leader_hint = leader;
                        self.publish_status();
                    }
                }
                ElectionState::Suspended { .. } | ElectionState::Closed => {}
            }
            while let Some(cmd) = self.deferred.pop_front() {
                self.answer_as_standby(cmd).await;
            }
            if self.tail_once().await? {
                idle_polls = 0;
                if self.applied_since.len() >= END_CHECK_CHUNKS {
                    self.verify_end().await?;
                }
                self.maybe_checkpoint().await;
                while let Ok(cmd) = self.commands.try_recv() {
                    self.answer_as_standby(cmd).await;
                }
                continue;
            }
            idle_polls += 1;
            if idle_polls % END_CHECK_POLLS == 0 {
                self.verify_end().await?;
                continue;
            }
            tokio::select! {
                biased;
                _ = self.shutdown.changed() => return Ok(Flow::Shutdown),
                r = self.election_rx.changed() => {
                    if r.is_err() {
                        return Ok(Flow::Shutdown);
                    }
                }
                c = self.commands.recv() => match c {
                    Some(cmd) => self.answer_as_standby(cmd).await,
                    None => return Ok(Flow::Shutdown),
                },
                _ = tokio::time::sleep(self.cfg.tailer_sleep) => {}
            }
        }
    }

    /// Elected: catch up, claim the next slot, then serve.
    async fn lead(&mut self, election_epoch: u64) -> Result<Flow> {
        let writer_id = uuid::Uuid::new_v4().to_string();
        let started = Instant::now();
        tracing::info!(
            election_epoch,
            next_seq = self.next_seq,
            "elected; catching up on the journal before serving"
        );
        let mut verified = false;
        let epoch = loop {
            if self.shutting_down() {
                return Ok(Flow::Shutdown);
            }
            if self.election_rx.borrow_and_update().leader_epoch() != Some(election_epoch) {
                tracing::info!("lost the election before serving");
                return Ok(Flow::Continue);
            }
            // Never claim on the word of an absent slot alone: a hole or a
            // stray object beyond it is `Corrupt`, and nothing is written.
            // Proven once per attempt series: after losing a slot race the
            // chunks that follow are the winner's sequential writes, and
            // proving the end again while it keeps writing would chase a
            // moving end and never claim (a deposed primary that has not
            // learned it yet would keep the new one from ever fencing it).
            if verified {
                while self.tail_once().await? {
                    if self.shutting_down() {
                        return Ok(Flow::Shutdown);
                    }
                }
            } else {
                self.catch_up().await?;
                verified = true;
            }
            let epoch = election_epoch.max(self.last_epoch + 1);
            let first = self.next_seq;
            let claim = Kind::Primacy(Primacy {
                epoch,
                address: self.cfg.address.clone(),
                election_epoch,
            });
            match self.write_chunk(epoch, &writer_id, vec![claim]).await {
                WriteOutcome::Written(records) => {
                    self.apply_records(first, epoch, &records, &writer_id);
                    break epoch;
                }
                WriteOutcome::Taken => {
                    tracing::info!(slot = first, "another master wrote the claimed slot first; reading it and claiming the next");
                }
                WriteOutcome::Overtaken => {
                    // Catching up again reloads from the checkpoint that
                    // overtook this master; pause so a wedge cannot spin.
                    verified = false;
                    tokio::time::sleep(self.cfg.retry_backoff).await;
                }
                WriteOutcome::Failed(e) | WriteOutcome::Unverified(e) => {
                    verified = false;
                    // Catching up again reads the claim if it landed (and
                    // checks it like any other chunk) before the next try.
                    tracing::warn!(error = %e, "writing the primacy claim failed; retrying");
                    tokio::time::sleep(self.cfg.retry_backoff).await;
                }
            }
        };
        self.set_role(Role::Primary { epoch });
        if let Err(e) = self.election.announce_serving(epoch).await {
            tracing::warn!(error = %e, "could not publish this master as the serving primary");
        }
        tracing::info!(
            epoch,
            claim_seq = self.next_seq - 1,
            catch_up_ms = started.elapsed().as_millis() as u64,
            address = %self.cfg.address,
            "now PRIMARY: caught up and claimed the journal"
        );
        self.serve(election_epoch, epoch, &writer_id).await
    }

    /// Primary: group-commit proposals until deposed or shut down.
    async fn serve(&mut self, election_epoch: u64, epoch: u64, writer_id: &str) -> Result<Flow> {
        loop {
            self.staging.poll(self.next_seq);
            let cmd = match self.deferred.pop_front() {
                Some(c) => c,
                None => tokio::select! {
                    biased;
                    _ = self.shutdown.changed() => return Ok(Flow::Shutdown),
                    r = self.election_rx.changed() => {
                        let state = self.election_rx.borrow_and_update().clone();
                        if r.is_err() || state.leader_epoch() != Some(election_epoch) {
                            self.step_down(&format!("the election no longer names this master ({state:?})")).await;
                            return Ok(Flow::Continue);
                        }
                        continue;
                    }
                    c = self.commands.recv() => match c {
                        Some(c) => c,
                        None => return Ok(Flow::Shutdown),
                    },
                    _ = tokio::time::sleep_until(self.staging.due_at().into()) => continue,
                },
            };
            let still_primary = match cmd {
                Command::Propose(first) => {
                    let batch = self.gather(first);
                    self.commit(batch, epoch, writer_id).await
                }
                Command::Barrier(tx) => {
                    let mut waiting = vec![tx];
                    while let Ok(c) = self.commands.try_recv() {
                        match c {
                            Command::Barrier(tx) => waiting.push(tx),
                            other => {
                                self.deferred.push_back(other);
                                break;
                            }
                        }
                    }
                    self.barrier(waiting, election_epoch).await
                }
                Command::Checkpoint(tx) => {
                    let r = self.checkpoint_now().await;
                    let _ = tx.send(r);
                    true
                }
                Command::Resign(reason, tx) => {
                    // Everything acknowledged so far is in the log; what is
                    // queued behind this is answered as a standby would.
                    self.step_down(&reason).await;
                    let r = self.election.resign().await;
                    if let Err(e) = &r {
                        tracing::warn!(error = %e, "could not resign from the election");
                    }
                    let _ = tx.send(r);
                    false
                }
            };
            if !still_primary {
                return Ok(Flow::Continue);
            }
            if self.cfg.primary_writes_checkpoints {
                self.maybe_checkpoint().await;
            }
        }
    }

    /// Collects the proposals queued behind `first` into one batch.
    fn gather(&mut self, first: Proposal) -> Vec<Proposal> {
        let mut bytes = first.entry.len();
        let mut batch = vec![first];
        while batch.len() < self.cfg.max_batch_entries {
            match self.commands.try_recv() {
                Ok(Command::Propose(p)) => {
                    if bytes + p.entry.len() > self.cfg.max_batch_bytes {
                        self.deferred.push_back(Command::Propose(p));
                        break;
                    }
                    bytes += p.entry.len();
                    batch.push(p);
                }
                Ok(other) => {
                    self.deferred.push_back(other);
                    break;
                }
                Err(_) => break,
            }
        }
        batch
    }
}
