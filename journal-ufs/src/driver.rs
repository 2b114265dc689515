//! The task that owns a UFS journal's log position: it tails as a standby,
//! catches up and claims the log when elected, and group-commits proposals
//! as the primary. Only this task touches the state machine's write lock, so
//! every entry is applied exactly once and in log order.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use journal_core::proto::{journal_record::Kind, JournalRecord, Primacy};
use journal_core::snapshot::SnapshotMeta;
use journal_core::{
    ElectionState, JournalError, JournalStatus, LeaderElection, Proposal, Result, Role,
    SharedStateMachine,
};
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot, watch};

use crate::checkpoint::{
    collect_garbage, list_checkpoints, list_chunks, load_checkpoint, write_checkpoint,
};
use crate::chunk::{chunk_error, claim_of, decode_chunk, encode_chunk, Chunk, ChunkError};
use crate::config::UfsJournalConfig;
use crate::layout::Layout;
use crate::proto::ChunkHeader;
use crate::store::{read_object, Folder};

/// Requests the journal handle sends to its driver.
pub(crate) enum Command {
    Propose(Proposal),
    Barrier(oneshot::Sender<Result<()>>),
    Checkpoint(oneshot::Sender<Result<u64>>),
}

/// What the main loop does next.
enum Flow {
    Continue,
    Shutdown,
}

/// The outcome of one create-if-absent chunk write.
enum WriteOutcome {
    /// The chunk is durable under its name and this master wrote it.
    Written(Vec<JournalRecord>),
    /// Another master created the slot first: this master is fenced.
    Taken,
    /// The write landed, but garbage collection had already removed the
    /// chunk before it: the slot was a hole below a checkpoint, the chunk is
    /// dead history. This master was overtaken while it stalled.
    Overtaken,
    /// The store failed; the chunk may or may not exist.
    Failed(JournalError),
}

/// What reading the next slot found.
enum SlotRead {
    Absent,
    Torn(String),
    Chunk(Chunk),
}

/// Polls of an empty slot between checks that garbage collection has not
/// removed chunks this standby still needed (about 1 s at the default sleep).
const OVERTAKE_CHECK_POLLS: u32 = 50;

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
    deferred: VecDeque<Command>,
    /// Next record to read or write.
    next_seq: u64,
    /// Epoch of the last record applied.
    last_epoch: u64,
    /// First sequence number of the last chunk applied.
    prev_chunk: Option<u64>,
    last_checkpoint: Option<u64>,
    since_checkpoint: u64,
    leader_hint: Option<String>,
    torn_warned: Option<u64>,
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
    ) -> Self {
        let election_rx = election.watch();
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
            deferred: VecDeque::new(),
            next_seq: 1,
            last_epoch: 0,
            prev_chunk: None,
            last_checkpoint: None,
            since_checkpoint: 0,
            leader_hint: None,
            torn_warned: None,
        }
    }

    /// Restores the newest checkpoint and replays every chunk after it.
    /// Runs before the journal is handed out, so a corrupt journal fails `open`.
    pub(crate) async fn recover(&mut self) -> Result<()> {
        let started = Instant::now();
        if let Some(&seq) = list_checkpoints(&self.folder, &self.layout).await?.last() {
            self.restore_from(seq).await?;
        }
        self.catch_up(false).await?;
        tracing::info!(
            folder = %self.folder.url,
            next_seq = self.next_seq,
            epoch = self.last_epoch,
            checkpoint = ?self.last_checkpoint,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "journal replayed"
        );
        Ok(())
    }

    /// Replaces the state with checkpoint `seq` and positions the log after it.
    async fn restore_from(&mut self, seq: u64) -> Result<()> {
        let meta = load_checkpoint(
            &self.folder,
            &self.layout,
            &self.machine,
            seq,
            &self.cluster_id,
        )
        .await?;
        self.next_seq = seq;
        self.last_epoch = meta.epoch;
        self.last_checkpoint = Some(seq);
        self.since_checkpoint = 0;
        self.prev_chunk = None;
        // Chunks are named by their first record, so the one holding `seq`
        // may start before it: find it by listing, once.
        let chunks = list_chunks(&self.folder, &self.layout).await?;
        if let Some(&holder) = chunks.iter().rev().find(|&&first| first < seq) {
            match self.read_slot(holder).await? {
                SlotRead::Chunk(chunk) => {
                    if chunk.end() > seq {
                        self.apply_chunk(&chunk)?;
                    }
                    self.prev_chunk = Some(holder);
                }
                SlotRead::Torn(detail) => {
                    return Err(JournalError::corrupt(
                        self.layout.describe(&self.layout.chunk(holder)),
                        detail,
                    ))
                }
                SlotRead::Absent => {}
            }
        }
        self.publish_status();
        Ok(())
    }

    /// Reads and verifies the chunk named `first`.
    async fn read_slot(&self, first: u64) -> Result<SlotRead> {
        let path = self.layout.chunk(first);
        let name = self.layout.describe(&path);
        let Some(bytes) = read_object(&self.folder, &path, &name).await? else {
            return Ok(SlotRead::Absent);
        };
        match decode_chunk(&bytes, first, &self.cluster_id) {
            Ok(chunk) => Ok(SlotRead::Chunk(chunk)),
            Err(ChunkError::Torn(detail)) => Ok(SlotRead::Torn(detail)),
            Err(e) => Err(chunk_error(name, e)),
        }
    }

    /// Applies the records of a verified chunk that are not applied yet.
    fn apply_chunk(&mut self, chunk: &Chunk) -> Result<Vec<Bytes>> {
        if chunk.header.epoch < self.last_epoch {
            return Err(JournalError::corrupt(
                self.layout.describe(&self.layout.chunk(chunk.header.first_seq)),
                format!(
                    "epoch decreases from {} to {} (a deposed primary's write, which the naming scheme forbids)",
                    self.last_epoch, chunk.header.epoch
                ),
            ));
        }
        if chunk.header.first_seq > self.next_seq {
            return Err(JournalError::corrupt(
                self.layout
                    .describe(&self.layout.chunk(chunk.header.first_seq)),
                format!(
                    "records {}..{} are missing before it",
                    self.next_seq, chunk.header.first_seq
                ),
            ));
        }
        if let Some(claim) = claim_of(chunk) {
            if chunk.header.epoch > self.last_epoch {
                tracing::info!(
                    epoch = claim.epoch,
                    address = %claim.address,
                    seq = chunk.header.first_seq,
                    "journal claimed by a new primary"
                );
            }
        }
        Ok(self.apply_records(chunk.header.first_seq, chunk.header.epoch, &chunk.records))
    }

    /// Applies `records` (at or after `next_seq`) and returns the entries' outputs in order.
    fn apply_records(&mut self, first: u64, epoch: u64, records: &[JournalRecord]) -> Vec<Bytes> {
        let mut outputs = Vec::with_capacity(records.len());
        {
            let mut machine = self.machine.write();
            for record in records {
                if record.seq < self.next_seq {
                    continue;
                }
                if let Some(Kind::Entry(entry)) = &record.kind {
                    outputs.push(machine.apply(record.seq, entry));
                }
                self.next_seq = record.seq + 1;
                self.since_checkpoint += 1;
            }
        }
        self.last_epoch = epoch;
        self.prev_chunk = Some(first);
        self.publish_status();
        outputs
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

    /// Reads the next chunk if it exists and applies it; true if one was applied.
    ///
    /// A torn chunk at the end of the log is a write that never completed and
    /// was never acknowledged. A standby waits (a primary-to-be will remove
    /// it); a primary-to-be (`candidate`) removes it, after checking that no
    /// chunk follows it (then it would be corruption, not a torn tail).
    async fn tail_once(&mut self, candidate: bool) -> Result<bool> {
        match self.read_slot(self.next_seq).await? {
            SlotRead::Absent => Ok(false),
            SlotRead::Chunk(chunk) => {
                self.apply_chunk(&chunk)?;
                Ok(true)
            }
            SlotRead::Torn(detail) => {
                let path = self.layout.chunk(self.next_seq);
                let name = self.layout.describe(&path);
                let later = list_chunks(&self.folder, &self.layout)
                    .await?
                    .into_iter()
                    .find(|&s| s > self.next_seq);
                if let Some(later) = later {
                    return Err(JournalError::corrupt(
                        name,
                        format!("{detail}, and chunk {later:016x} follows it, so it is not an unfinished tail"),
                    ));
                }
                if candidate {
                    tracing::warn!(chunk = %name, %detail, "removing the torn, never-acknowledged chunk at the end of the log");
                    match self.folder.store.delete(&path).await {
                        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(false),
                        Err(e) => Err(JournalError::io(name, e)),
                    }
                } else {
                    if self.torn_warned != Some(self.next_seq) {
                        tracing::warn!(chunk = %name, %detail, "torn chunk at the end of the log; waiting for a primary to remove it");
                        self.torn_warned = Some(self.next_seq);
                    }
                    Ok(false)
                }
            }
        }
    }

    /// Applies every chunk present; returns at the first absent slot.
    async fn catch_up(&mut self, candidate: bool) -> Result<()> {
        while self.tail_once(candidate).await? {
            if *self.shutdown.borrow() {
                break;
            }
        }
        Ok(())
    }

    /// If garbage collection removed chunks this master had not read yet
    /// (it was stalled or far behind), reloads from the newest checkpoint.
    /// True if it did.
    async fn reload_if_overtaken(&mut self) -> Result<bool> {
        let newest = list_checkpoints(&self.folder, &self.layout)
            .await?
            .last()
            .copied();
        match newest {
            Some(seq) if seq > self.next_seq => {
                tracing::warn!(
                    next_seq = self.next_seq,
                    checkpoint = seq,
                    "the log before this master's position was garbage collected; reloading from the newest checkpoint"
                );
                self.restore_from(seq).await?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Writes `kinds` as one chunk at `next_seq` with create-if-absent.
    async fn write_chunk(&mut self, epoch: u64, writer_id: &str, kinds: Vec<Kind>) -> WriteOutcome {
        let first = self.next_seq;
        let records: Vec<JournalRecord> = kinds
            .into_iter()
            .enumerate()
            .map(|(i, kind)| JournalRecord {
                seq: first + i as u64,
                epoch,
                kind: Some(kind),
            })
            .collect();
        let header = ChunkHeader {
            cluster_id: self.cluster_id.clone(),
            first_seq: first,
            epoch,
            count: records.len() as u32,
            writer_id: writer_id.to_string(),
        };
        let path = self.layout.chunk(first);
        let name = self.layout.describe(&path);
        let bytes = match encode_chunk(&header, &records) {
            Ok(b) => b,
            Err(e) => {
                return WriteOutcome::Failed(JournalError::InvalidEntry {
                    detail: e.to_string(),
                })
            }
        };
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .folder
            .store
            .put_opts(&path, PutPayload::from(bytes), opts)
            .await
        {
            Ok(_) => {}
            Err(object_store::Error::AlreadyExists { .. }) => return WriteOutcome::Taken,
            Err(e) => return WriteOutcome::Failed(JournalError::io(name, e)),
        }
        // The slot was free. It is a live slot only if the chunk before it
        // still exists: garbage collection deletes in ascending order and
        // keeps the chunk before any live position (see checkpoint.rs).
        if let Some(prev) = self.prev_chunk {
            let prev_path = self.layout.chunk(prev);
            match self.folder.store.head(&prev_path).await {
                Ok(_) => {}
                Err(object_store::Error::NotFound { .. }) => {
                    tracing::error!(
                        chunk = %name,
                        "wrote into a slot garbage collection had freed: this master was overtaken while stalled; removing the dead chunk"
                    );
                    let _ = self.folder.store.delete(&path).await;
                    return WriteOutcome::Overtaken;
                }
                Err(e) => {
                    return WriteOutcome::Failed(JournalError::io(
                        self.layout.describe(&prev_path),
                        e,
                    ))
                }
            }
        }
        WriteOutcome::Written(records)
    }

    /// Epoch of the chunk at `seq` (0 if it cannot be read).
    async fn epoch_at(&self, seq: u64) -> u64 {
        match self.read_slot(seq).await {
            Ok(SlotRead::Chunk(c)) => c.header.epoch,
            _ => 0,
        }
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
                tokio::time::sleep(self.cfg.retry_backoff).await;
                backoff = false;
            }
            let state = self.election_rx.borrow_and_update().clone();
            let result = match state {
                ElectionState::Leader { epoch } => self.lead(epoch).await,
                _ => self.follow().await,
            };
            match result {
                Ok(Flow::Continue) => {}
                Ok(Flow::Shutdown) => break,
                Err(e) if is_fatal(&e) => {
                    tracing::error!(error = %e, "the journal cannot continue; this master stops serving and replaying");
                    self.halt(e).await;
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "journal storage error; retrying");
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
            }
        }
        self.finish().await;
    }

    async fn finish(&mut self) {
        self.step_down("shutting down").await;
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
        }
    }

    /// Standby: tail the log until elected or shut down.
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
            if self.tail_once(false).await? {
                idle_polls = 0;
                self.maybe_checkpoint().await;
                while let Ok(cmd) = self.commands.try_recv() {
                    self.answer_as_standby(cmd).await;
                }
                continue;
            }
            idle_polls += 1;
            if idle_polls % OVERTAKE_CHECK_POLLS == 0 {
                let gone = match self.prev_chunk {
                    Some(prev) => matches!(
                        self.folder.store.head(&self.layout.chunk(prev)).await,
                        Err(object_store::Error::NotFound { .. })
                    ),
                    None => false,
                };
                if gone {
                    self.reload_if_overtaken().await?;
                    continue;
                }
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
        let epoch = loop {
            if self.shutting_down() {
                return Ok(Flow::Shutdown);
            }
            if self.election_rx.borrow_and_update().leader_epoch() != Some(election_epoch) {
                tracing::info!("lost the election before serving");
                return Ok(Flow::Continue);
            }
            self.catch_up(true).await?;
            if self.reload_if_overtaken().await? {
                continue;
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
                    self.apply_records(first, epoch, &records);
                    break epoch;
                }
                WriteOutcome::Taken => {
                    tracing::info!(slot = first, "another master wrote the claimed slot first; reading it and claiming the next");
                }
                WriteOutcome::Overtaken => {}
                WriteOutcome::Failed(e) => {
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

    /// Writes one batch as a chunk and answers its proposers. False if this
    /// master stopped being primary.
    async fn commit(&mut self, batch: Vec<Proposal>, epoch: u64, writer_id: &str) -> bool {
        let first = self.next_seq;
        let kinds = batch.iter().map(|p| Kind::Entry(p.entry.clone())).collect();
        match self.write_chunk(epoch, writer_id, kinds).await {
            WriteOutcome::Written(records) => {
                let outputs = self.apply_records(first, epoch, &records);
                for (p, out) in batch.into_iter().zip(outputs) {
                    let _ = p.reply.send(Ok(out));
                }
                true
            }
            WriteOutcome::Taken => {
                // Step down before answering: whoever sees `Fenced` also
                // sees this master as a standby.
                let by_epoch = self.epoch_at(first).await;
                self.fenced(by_epoch).await;
                for p in batch {
                    let _ = p.reply.send(Err(JournalError::Fenced { by_epoch }));
                }
                false
            }
            WriteOutcome::Overtaken => {
                self.fenced(0).await;
                for p in batch {
                    let _ = p.reply.send(Err(JournalError::Fenced { by_epoch: 0 }));
                }
                false
            }
            WriteOutcome::Failed(e) => {
                let detail = e.to_string();
                tracing::warn!(error = %detail, slot = first, entries = batch.len(), "journal write failed; the batch was not acknowledged");
                let location = self.layout.describe(&self.layout.chunk(first));
                for p in batch {
                    let _ = p
                        .reply
                        .send(Err(JournalError::io(location.clone(), detail.clone())));
                }
                // The write may still have reached the store: look before the
                // next write, so this master's view of the log stays exact.
                match self.read_slot(first).await {
                    Ok(SlotRead::Absent) => true,
                    Ok(SlotRead::Chunk(chunk)) if chunk.header.writer_id == writer_id => {
                        match self.apply_chunk(&chunk) {
                            Ok(_) => true,
                            Err(e) => {
                                tracing::error!(error = %e, "could not apply this master's own chunk");
                                self.step_down("own chunk unreadable").await;
                                false
                            }
                        }
                    }
                    Ok(SlotRead::Chunk(chunk)) => {
                        self.fenced(chunk.header.epoch).await;
                        false
                    }
                    Ok(SlotRead::Torn(_)) | Err(_) => {
                        self.step_down("cannot tell whether a failed write reached the store")
                            .await;
                        false
                    }
                }
            }
        }
    }

    /// Answers read barriers: still elected and the next slot still free.
    async fn barrier(
        &mut self,
        waiting: Vec<oneshot::Sender<Result<()>>>,
        election_epoch: u64,
    ) -> bool {
        if self.election_rx.borrow().leader_epoch() != Some(election_epoch) {
            for tx in waiting {
                let _ = tx.send(Err(self.not_primary()));
            }
            return true; // the election change is handled by the serve loop
        }
        let path = self.layout.chunk(self.next_seq);
        match self.folder.store.head(&path).await {
            Err(object_store::Error::NotFound { .. }) => {
                for tx in waiting {
                    let _ = tx.send(Ok(()));
                }
                true
            }
            Ok(_) => {
                let by_epoch = self.epoch_at(self.next_seq).await;
                self.fenced(by_epoch).await;
                for tx in waiting {
                    let _ = tx.send(Err(JournalError::Fenced { by_epoch }));
                }
                false
            }
            Err(e) => {
                let detail = e.to_string();
                let location = self.layout.describe(&path);
                for tx in waiting {
                    let _ = tx.send(Err(JournalError::io(location.clone(), detail.clone())));
                }
                true
            }
        }
    }

    async fn maybe_checkpoint(&mut self) {
        if self.since_checkpoint < self.cfg.checkpoint_period_entries {
            return;
        }
        if let Err(e) = self.checkpoint_now().await {
            tracing::warn!(error = %e, "automatic checkpoint failed; will retry after more entries");
            self.since_checkpoint = self.cfg.checkpoint_period_entries / 2;
        }
    }

    /// Writes a checkpoint of the state before `next_seq`, then collects garbage.
    async fn checkpoint_now(&mut self) -> Result<u64> {
        let seq = self.next_seq;
        if self.last_checkpoint == Some(seq) {
            return Ok(seq);
        }
        let meta = SnapshotMeta {
            cluster_id: self.cluster_id.clone(),
            next_seq: seq,
            epoch: self.last_epoch,
        };
        write_checkpoint(&self.folder, &self.layout, &self.machine, meta).await?;
        self.last_checkpoint = Some(seq);
        self.since_checkpoint = 0;
        self.publish_status();
        if let Err(e) =
            collect_garbage(&self.folder, &self.layout, self.cfg.checkpoint_retention).await
        {
            tracing::warn!(error = %e, "garbage collection after the checkpoint failed; it will be retried after the next one");
        }
        Ok(seq)
    }
}
