//! `UfsJournal`: the public handle of a UFS journal.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use journal_core::framing::MAX_FRAME_LEN;
use journal_core::{
    Contender, JournalError, JournalStatus, JournalSystem, LeaderElection, MemberStatus,
    PendingGate, Proposal, Result, Role, SharedStateMachine,
};
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::config::UfsJournalConfig;
use crate::driver::{Command, Driver};
use crate::format::check_format;
use crate::layout::Layout;
use crate::store::{open_folder_with, Folder};

/// Largest entry a proposal may carry: one record frame minus room for its envelope.
pub const MAX_ENTRY_LEN: usize = MAX_FRAME_LEN - 1024;

/// A journal of immutable chunks in a shared folder, made safe against
/// concurrent primaries by file-naming mutual exclusion.
///
/// - Durability: `propose` returns after the entry's chunk was created in the
///   store (with fsync on local disks) and the entry was applied here.
/// - Ordering: every master applies chunks in name order; within a chunk,
///   records in order.
/// - Failover: a standby that wins the election reads every chunk present,
///   claims the next slot with a primacy record and only then reports
///   `Primary`. A primary that loses the election stops serving at once; one
///   whose write finds its slot taken fails that batch with `Fenced`, steps
///   down and resigns from the election.
pub struct UfsJournal {
    commands: mpsc::Sender<Command>,
    role: watch::Receiver<Role>,
    status: Arc<Mutex<JournalStatus>>,
    halted: Arc<Mutex<Option<(String, String)>>>,
    shutdown: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
    folder: Folder,
    election: Arc<dyn LeaderElection>,
    address: String,
    pending: PendingGate,
}

impl std::fmt::Debug for UfsJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UfsJournal")
            .field("folder", &self.folder.url)
            .finish()
    }
}

fn validate(cfg: &UfsJournalConfig) -> Result<()> {
    if cfg.address.trim().is_empty() {
        return Err(JournalError::config(
            "alluxio.master.hostname",
            "this master's RPC address is empty",
        ));
    }
    if cfg.tailer_sleep.is_zero() {
        return Err(JournalError::config(
            "alluxio.master.journal.tailer.sleep.time",
            "must be greater than 0",
        ));
    }
    if cfg.max_batch_entries == 0 || cfg.max_batch_bytes == 0 {
        return Err(JournalError::config(
            "journal batch limits",
            "must be greater than 0",
        ));
    }
    if cfg.checkpoint_retention == 0 {
        return Err(JournalError::config(
            crate::checkpoint::RETENTION_KEY,
            "0 would delete every checkpoint; keep at least 1",
        ));
    }
    if cfg.checkpoint_period_entries == 0 {
        return Err(JournalError::config(
            "alluxio.master.journal.checkpoint.period.entries",
            "must be greater than 0",
        ));
    }
    Ok(())
}

impl UfsJournal {
    /// The bound on waiting proposals: its limits, and how many wait now.
    pub fn pending(&self) -> &PendingGate {
        &self.pending
    }

    /// Opens the journal in `cfg.folder`: checks FORMAT, restores the newest
    /// checkpoint, replays every chunk after it into `machine`, joins
    /// `election`, and starts following (or leading, once elected).
    ///
    /// Fails with `Unformatted`, `ForeignJournal`, `Corrupt` or `Config`
    /// before anything is written to the log; `Config` also when the store
    /// does not honour create-if-absent (the probe of [`crate::probe`]).
    pub async fn open(
        cfg: UfsJournalConfig,
        election: Arc<dyn LeaderElection>,
        machine: SharedStateMachine,
    ) -> Result<Arc<UfsJournal>> {
        validate(&cfg)?;
        let folder = open_folder_with(&cfg.folder, false, &cfg.store_options)?;
        Self::open_in(folder, cfg, election, machine).await
    }

    /// [`UfsJournal::open`] on a folder the caller opened: a store built with
    /// its own credentials or client options, or a store wrapped for tests
    /// (one that can stall a master while the others move on). `cfg.folder`
    /// is then used only in messages.
    pub async fn open_in(
        folder: Folder,
        cfg: UfsJournalConfig,
        election: Arc<dyn LeaderElection>,
        machine: SharedStateMachine,
    ) -> Result<Arc<UfsJournal>> {
        validate(&cfg)?;
        let layout = Layout::new(folder.root.clone(), folder.url.clone());
        crate::probe::check_create_if_absent(&folder).await?;
        let cluster_id = check_format(&folder, &layout, cfg.cluster_id.as_deref()).await?;
        let (role_tx, role_rx) = watch::channel(Role::Standby);
        let status = Arc::new(Mutex::new(JournalStatus {
            backend: "UFS",
            role: Role::Standby,
            epoch: 0,
            last_applied: 0,
            last_durable: 0,
            last_checkpoint: None,
            leader_address: None,
            members: Vec::new(),
            location: folder.url.clone(),
        }));
        let (cmd_tx, cmd_rx) = mpsc::channel(cfg.max_batch_entries.saturating_mul(4).max(64));
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let halted = Arc::new(Mutex::new(None));
        let address = cfg.address.trim().to_string();
        let pending = PendingGate::with_metrics(cfg.pending, &cfg.metrics);
        let mut driver = Driver::new(
            folder.clone(),
            layout,
            cfg,
            cluster_id.clone(),
            machine,
            election.clone(),
            cmd_rx,
            role_tx,
            status.clone(),
            shutdown_rx,
            halted.clone(),
        );
        driver.recover().await?;
        election.campaign(&address).await?;
        tracing::info!(folder = %folder.url, cluster = %cluster_id, %address, "UFS journal open; joined the election");
        let task = tokio::spawn(driver.run());
        Ok(Arc::new(UfsJournal {
            commands: cmd_tx,
            role: role_rx,
            status,
            halted,
            shutdown: shutdown_tx,
            task: Mutex::new(Some(task)),
            folder,
            election,
            address,
            pending,
        }))
    }

    /// The fatal error that stopped this journal, if one did: every request
    /// gets it (not `NotPrimary`), so the caller learns why.
    fn halted(&self) -> Result<()> {
        match &*self.halted.lock() {
            Some((location, detail)) => {
                Err(JournalError::corrupt(location.clone(), detail.clone()))
            }
            None => Ok(()),
        }
    }

    fn not_primary(&self) -> JournalError {
        JournalError::NotPrimary {
            leader_hint: self.status.lock().leader_address.clone(),
        }
    }

    async fn request<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T>>) -> Command,
    ) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .await
            .map_err(|_| JournalError::Shutdown)?;
        rx.await.map_err(|_| JournalError::Shutdown)?
    }
}

#[async_trait]
impl JournalSystem for UfsJournal {
    fn role(&self) -> watch::Receiver<Role> {
        self.role.clone()
    }

    async fn propose(&self, entry: Bytes) -> Result<Bytes> {
        if entry.len() > MAX_ENTRY_LEN {
            return Err(JournalError::InvalidEntry {
                detail: format!(
                    "{} bytes exceeds the limit of {MAX_ENTRY_LEN} bytes per entry",
                    entry.len()
                ),
            });
        }
        self.halted()?;
        if !self.role.borrow().is_primary() {
            return Err(self.not_primary());
        }
        // Admitted before it is queued; the permit travels with the
        // proposal and is freed once it was answered.
        let permit = Some(self.pending.admit(entry.len())?);
        self.request(|reply| {
            Command::Propose(Proposal {
                entry,
                reply,
                permit,
            })
        })
        .await
    }

    async fn read_barrier(&self) -> Result<()> {
        self.halted()?;
        if !self.role.borrow().is_primary() {
            return Err(self.not_primary());
        }
        self.request(Command::Barrier).await
    }

    async fn checkpoint(&self) -> Result<u64> {
        self.request(Command::Checkpoint).await
    }

    fn status(&self) -> JournalStatus {
        self.status.lock().clone()
    }

    /// The election's queue, in order: the first contender is the primary
    /// (or about to be), the next takes over when it leaves or resigns.
    /// Each member's `id` is its election entry, `address` and
    /// `rpc_address` its RPC address, `role` `PRIMARY` or `STANDBY`, and
    /// `applied` is known for this master only. An election without a
    /// queue (a single master) lists this master alone.
    async fn members(&self) -> Result<Vec<MemberStatus>> {
        let status = self.status();
        let queue = match self.election.contenders().await {
            Ok(q) => q,
            Err(JournalError::Unsupported { .. }) => vec![Contender {
                id: "single".into(),
                address: self.address.clone(),
                own: true,
            }],
            Err(e) => return Err(e),
        };
        let leader = status.leader_address.clone();
        Ok(queue
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                let serving = if c.own {
                    status.role.is_primary()
                } else {
                    i == 0 && leader.as_deref() == Some(c.address.as_str())
                };
                MemberStatus {
                    id: c.id,
                    rpc_address: Some(c.address.clone()),
                    address: c.address,
                    role: if serving { "PRIMARY" } else { "STANDBY" }.to_string(),
                    applied: c.own.then_some(status.last_applied),
                }
            })
            .collect())
    }

    /// Hands primacy to `to` (a contender's RPC address) by resigning: this
    /// master steps down and goes to the back of the election's queue, so
    /// the next contender in line is elected; it serves once it caught up
    /// and claimed the log. Returns once this master resigned.
    ///
    /// Only the contender right behind this master can be handed primacy
    /// this way: for any other `to` (or one not in the queue) the answer is
    /// `Config` naming the queue's order and who would win instead, and
    /// nothing changes; so it is for a `to` listed twice (restarted within
    /// the ZooKeeper session timeout: the dead entry ahead would win). `to` naming this master is `Ok` at once. Not the
    /// primary: `NotPrimary`. An election without a queue: `Unsupported`.
    async fn transfer_leadership(&self, to: &str) -> Result<()> {
        self.halted()?;
        if !self.role.borrow().is_primary() {
            return Err(self.not_primary());
        }
        let to = to.trim();
        if to == self.address {
            return Ok(());
        }
        let queue = match self.election.contenders().await {
            Err(JournalError::Unsupported { .. }) => {
                return Err(JournalError::Unsupported {
                    operation: "handing primacy to another master (this election has no queue)",
                    backend: "UFS",
                })
            }
            other => other?,
        };
        let order = queue
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mine = if c.own { " (this master)" } else { "" };
                format!("{}. {}{mine}", i + 1, c.address)
            })
            .collect::<Vec<_>>()
            .join(", ");
        let Some(own) = queue.iter().position(|c| c.own) else {
            return Err(JournalError::io(
                "election",
                format!("this master is not in the election's queue ({order}); retry shortly"),
            ));
        };
        let Some(target) = queue.iter().position(|c| c.address == to) else {
            return Err(JournalError::config(
                "transfer_leadership",
                format!("{to} is not a contender in the election (queue: {order})"),
            ));
        };
        if target == own {
            return Ok(());
        }
        if target != own + 1 {
            let next = queue
                .get(own + 1)
                .map_or("nobody".to_string(), |c| c.address.clone());
            return Err(JournalError::config(
                "transfer_leadership",
                format!(
                    "{to} is not next in line: the election elects in queue order \
                     ({order}), so if this master resigned, {next} would take over, not {to}; \
                     elect {next}, or restart the masters ahead of {to} so they go to the \
                     back of the queue"
                ),
            ));
        }
        if queue.iter().filter(|c| c.address == to).count() > 1 {
            // A master restarted within the session timeout: its dead
            // session's entry is still ahead of its new one, and resigning
            // would elect that dead entry (nobody would serve until it
            // expired).
            return Err(JournalError::config(
                "transfer_leadership",
                format!(
                    "{to} is in the queue twice ({order}): it restarted and the entry of its \
                     old ZooKeeper session has not expired yet (alluxio.zookeeper.session.timeout); \
                     resigning now would elect that dead entry. Retry once it expired"
                ),
            ));
        }
        tracing::info!(to, queue = %order, "handing primacy to the next contender in line");
        self.request(|reply| Command::Resign(format!("handing primacy to {to}"), reply))
            .await
    }

    async fn shutdown(&self) {
        self.shutdown.send_replace(true);
        let task = self.task.lock().take();
        if let Some(task) = task {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "the journal task ended abnormally");
            }
        }
    }
}

impl Drop for UfsJournal {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
    }
}
