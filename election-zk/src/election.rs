//! `ZkElection`: leader election with ephemeral sequential nodes.
//!
//! Each contender creates `<election>/member-<seq>` (ephemeral, sequential,
//! data = its RPC address). The lowest sequence number leads; every other
//! contender watches only its predecessor, so a failover wakes one master,
//! not all of them. The winner's sequence number is its epoch: ZooKeeper
//! hands out sequence numbers from a per-parent counter, so epochs only grow.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use journal_core::{Contender as QueueEntry, ElectionState, JournalError, LeaderElection, Result};
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use zookeeper_client as zk;

use crate::config::{ConnectionErrorPolicy, ZkConfig};
use crate::session::{bounded, connect_with_retry, is_session_end, zk_err};

/// Prefix of contender node names.
const MEMBER_PREFIX: &str = "member-";

/// The sequence number at the end of a contender node's name.
pub(crate) fn member_seq(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(MEMBER_PREFIX)?;
    if digits.len() < 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

enum Command {
    Announce(u64, oneshot::Sender<Result<()>>),
    Withdraw(oneshot::Sender<Result<()>>),
    Resign(oneshot::Sender<Result<()>>),
}

/// Shared between the handle and its task.
#[derive(Default)]
struct Shared {
    client: Option<zk::Client>,
    /// Sequence number of this contender's newest node (a stale one is no
    /// longer listed, so it marks nothing).
    own_seq: Option<u64>,
}

/// A `LeaderElection` backed by ZooKeeper.
///
/// Guarantees:
/// - `Leader { epoch }` only while this contender's node is the lowest and
///   its session is connected; `epoch` is the node's sequence number + 1 and
///   grows with each new node in the election path.
/// - Session `Expired` always ends leadership (the watch leaves `Leader`
///   before any other call returns); the contender then rejoins with a new
///   session and a new node.
/// - `Disconnected` ends leadership under the `STANDARD` policy (the node is
///   replaced on reconnection, so the contender goes to the back of the
///   queue) and reports `Suspended` under `SESSION`; if the same session
///   reconnects and the node is still the lowest, `Leader` comes back with
///   the same epoch.
/// - ZooKeeper being down never panics: the task retries with backoff and
///   logs which address it is waiting for.
pub struct ZkElection {
    cfg: ZkConfig,
    state: watch::Sender<ElectionState>,
    shared: Arc<Mutex<Shared>>,
    commands: mpsc::UnboundedSender<Command>,
    pending: Mutex<Option<mpsc::UnboundedReceiver<Command>>>,
    closing: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
    address: Mutex<Option<String>>,
}

impl ZkElection {
    /// An election on the ensemble of `cfg`; nothing is contacted before `campaign`.
    pub fn new(cfg: ZkConfig) -> Result<ZkElection> {
        cfg.validate()?;
        let (commands, pending) = mpsc::unbounded_channel();
        Ok(ZkElection {
            cfg,
            state: watch::channel(ElectionState::Follower { leader: None }).0,
            shared: Arc::new(Mutex::new(Shared::default())),
            commands,
            pending: Mutex::new(Some(pending)),
            closing: watch::channel(false).0,
            task: Mutex::new(None),
            address: Mutex::new(None),
        })
    }

    /// The current session (id and password), for tests that expire it from outside.
    pub fn session(&self) -> Option<zk::SessionInfo> {
        self.shared
            .lock()
            .client
            .as_ref()
            .map(|c| c.session().clone())
    }

    async fn command<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T>>) -> Command,
    ) -> Result<T>
    where
        Command: Sized,
    {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .map_err(|_| JournalError::Shutdown)?;
        rx.await.map_err(|_| JournalError::Shutdown)?
    }
}

#[async_trait]
impl LeaderElection for ZkElection {
    async fn campaign(&self, address: &str) -> Result<()> {
        let Some(commands) = self.pending.lock().take() else {
            return Err(JournalError::config(
                "election",
                "campaign was already called on this ZkElection",
            ));
        };
        *self.address.lock() = Some(address.to_string());
        let task = Contender {
            cfg: self.cfg.clone(),
            address: address.to_string(),
            state: self.state.clone(),
            shared: self.shared.clone(),
            commands,
            closing: self.closing.subscribe(),
            node: None,
            serving: None,
        };
        *self.task.lock() = Some(tokio::spawn(task.run()));
        Ok(())
    }

    fn watch(&self) -> watch::Receiver<ElectionState> {
        self.state.subscribe()
    }

    async fn leader_address(&self) -> Result<Option<String>> {
        let client = self.shared.lock().client.clone();
        let Some(client) = client else {
            return Err(JournalError::io(
                &self.cfg.address,
                "not connected to ZooKeeper yet",
            ));
        };
        crate::discovery::read_leader(&client, &self.cfg).await
    }

    async fn announce_serving(&self, epoch: u64) -> Result<()> {
        self.command(|tx| Command::Announce(epoch, tx)).await
    }

    async fn withdraw_serving(&self) -> Result<()> {
        self.command(Command::Withdraw).await
    }

    async fn resign(&self) -> Result<()> {
        self.command(Command::Resign).await
    }

    async fn close(&self) {
        self.closing.send_replace(true);
        let task = self.task.lock().take();
        if let Some(task) = task {
            let _ = task.await;
        }
        self.state.send_replace(ElectionState::Closed);
    }

    /// The contender nodes in sequence order (the lowest leads), each with
    /// the address it campaigns with. A node that vanishes while being read
    /// is left out. Needs this contender's session (`Io` before it
    /// connected).
    async fn contenders(&self) -> Result<Vec<QueueEntry>> {
        let (client, own) = {
            let s = self.shared.lock();
            (s.client.clone(), s.own_seq)
        };
        let Some(client) = client else {
            return Err(JournalError::io(
                &self.cfg.address,
                "not connected to ZooKeeper yet",
            ));
        };
        let timeout = self.cfg.session_timeout;
        let path = &self.cfg.election_path;
        let children = match bounded(
            "listing the ZooKeeper election",
            timeout,
            client.list_children(path),
        )
        .await?
        {
            Ok(c) => c,
            Err(zk::Error::NoNode) => return Ok(Vec::new()),
            Err(e) => return Err(zk_err(format!("{}{path}", self.cfg.address), e)),
        };
        let mut seqs: Vec<(u64, String)> = children
            .into_iter()
            .filter_map(|c| member_seq(&c).map(|s| (s, c)))
            .collect();
        seqs.sort();
        let mut out = Vec::with_capacity(seqs.len());
        for (seq, name) in seqs {
            let node = format!("{path}/{name}");
            match bounded("reading a contender", timeout, client.get_data(&node)).await? {
                Ok((data, _)) => out.push(QueueEntry {
                    id: name,
                    address: String::from_utf8_lossy(&data).trim().to_string(),
                    own: own == Some(seq),
                }),
                Err(zk::Error::NoNode) => {}
                Err(e) => return Err(zk_err(node, e)),
            }
        }
        Ok(out)
    }
}

impl Drop for ZkElection {
    fn drop(&mut self) {
        self.closing.send_replace(true);
    }
}

/// How a session ended.
enum SessionEnd {
    /// The session expired or broke: start a new one.
    Lost,
    /// `close` was called.
    Closed,
}

/// What the contender waits for after looking at the election.
enum Position {
    /// Its node is gone: join again.
    Gone,
    /// Look again at once (the predecessor vanished meanwhile).
    Recheck,
    /// Wait for this watch (own node when leading, predecessor otherwise)
    /// and, for a follower, for a change of the serving primary.
    Watch(zk::OneshotWatcher, Option<zk::OneshotWatcher>),
}

/// What woke the contender up.
enum Wake {
    Session(zk::SessionState),
    Watch,
    Command(Command),
    Close,
}

/// The task that owns the ZooKeeper session of one contender.
struct Contender {
    cfg: ZkConfig,
    address: String,
    state: watch::Sender<ElectionState>,
    shared: Arc<Mutex<Shared>>,
    commands: mpsc::UnboundedReceiver<Command>,
    closing: watch::Receiver<bool>,
    /// Full path of this contender's node in the current session.
    node: Option<(String, u64)>,
    /// Epoch announced as serving, to re-announce after a reconnect.
    serving: Option<u64>,
}

impl Contender {
    fn set(&self, state: ElectionState) {
        self.state.send_if_modified(|s| {
            if *s == state {
                return false;
            }
            match (&*s, &state) {
                (ElectionState::Leader { epoch }, next) => {
                    tracing::warn!(epoch, next = ?next, zookeeper = %self.cfg.address, "ZooKeeper leadership lost")
                }
                (_, ElectionState::Leader { epoch }) => {
                    tracing::info!(epoch, zookeeper = %self.cfg.address, "won the ZooKeeper election")
                }
                _ => {}
            }
            *s = state;
            true
        });
    }

    fn closing(&self) -> bool {
        *self.closing.borrow()
    }

    async fn run(mut self) {
        loop {
            let Some(client) = connect_with_retry(&self.cfg, &mut self.closing).await else {
                break;
            };
            self.shared.lock().client = Some(client.clone());
            let end = self.session(&client).await;
            self.node = None;
            match end {
                SessionEnd::Closed => {
                    self.leave(&client).await;
                    break;
                }
                SessionEnd::Lost => {
                    self.set(ElectionState::Follower { leader: None });
                    tracing::warn!(
                        session = %client.session_id(),
                        zookeeper = %self.cfg.address,
                        "ZooKeeper session ended; rejoining the election with a new session"
                    );
                }
            }
            self.shared.lock().client = None;
        }
        self.shared.lock().client = None;
        self.fail_pending();
        self.state.send_replace(ElectionState::Closed);
    }

    fn fail_pending(&mut self) {
        self.commands.close();
        while let Ok(cmd) = self.commands.try_recv() {
            let reply = match cmd {
                Command::Announce(_, tx) | Command::Withdraw(tx) | Command::Resign(tx) => tx,
            };
            let _ = reply.send(Err(JournalError::Shutdown));
        }
    }

    /// Deletes this contender's nodes and closes the session.
    async fn leave(&mut self, client: &zk::Client) {
        let timeout = self.cfg.session_timeout;
        if self.serving.take().is_some() {
            let _ = tokio::time::timeout(timeout, self.delete_leader_node(client)).await;
        }
        if let Some((path, _)) = self.node.take() {
            let _ = tokio::time::timeout(timeout, client.delete(&path, None)).await;
        }
        self.set(ElectionState::Closed);
    }

    /// Runs one session: join, contend, react, until it ends.
    async fn session(&mut self, client: &zk::Client) -> SessionEnd {
        let mut states = client.state_watcher();
        let mut rejoin = true;
        loop {
            if self.closing() {
                return SessionEnd::Closed;
            }
            if is_session_end(states.peek_state()) {
                return SessionEnd::Lost;
            }
            if rejoin {
                match self.join(client).await {
                    Ok(()) => rejoin = false,
                    Err(e) => {
                        tracing::warn!(error = %e, "could not join the ZooKeeper election; retrying");
                        if self.pause().await {
                            return SessionEnd::Closed;
                        }
                        continue;
                    }
                }
            }
            // Decide the position and arm a watch that tells when it may change.
            let (watcher, leader_watcher) = match self.evaluate(client).await {
                Ok(Position::Watch(w, l)) => (w, l),
                Ok(Position::Recheck) => continue,
                Ok(Position::Gone) => {
                    rejoin = true; // our node vanished (deleted from outside)
                    continue;
                }
                Err(e) => {
                    if is_session_end(states.peek_state()) {
                        return SessionEnd::Lost;
                    }
                    tracing::warn!(error = %e, "ZooKeeper election check failed; retrying");
                    if self.pause().await {
                        return SessionEnd::Closed;
                    }
                    continue;
                }
            };
            // Wait for something that may change the position.
            let mut watch_fut = std::pin::pin!(watcher.changed());
            // A follower also wakes when the serving primary changes, so the
            // address it reports (the journal's redirect) follows a primary
            // that announced itself after this follower last looked.
            let mut leader_fut = std::pin::pin!(async move {
                match leader_watcher {
                    Some(w) => {
                        w.changed().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            });
            loop {
                let wake = tokio::select! {
                    biased;
                    _ = self.closing.changed() => Wake::Close,
                    s = states.changed() => Wake::Session(s),
                    _ = &mut watch_fut => Wake::Watch,
                    _ = &mut leader_fut => Wake::Watch,
                    c = self.commands.recv() => match c {
                        Some(c) => Wake::Command(c),
                        None => Wake::Close,
                    },
                };
                match wake {
                    Wake::Close => return SessionEnd::Closed,
                    Wake::Watch => break,
                    Wake::Command(cmd) => {
                        if self.handle(client, cmd).await {
                            rejoin = true;
                            break;
                        }
                    }
                    Wake::Session(s) => match s {
                        zk::SessionState::Disconnected => {
                            // Copy the state out: holding the watch's read guard
                            // while `set` writes it would deadlock.
                            let current = self.state.borrow().clone();
                            if let ElectionState::Leader { epoch } = current {
                                match self.cfg.policy {
                                    ConnectionErrorPolicy::Standard => {
                                        tracing::warn!(epoch, "lost the ZooKeeper connection: giving up leadership (STANDARD policy)");
                                        self.set(ElectionState::Follower { leader: None });
                                        rejoin = true;
                                    }
                                    ConnectionErrorPolicy::Session => {
                                        tracing::warn!(epoch, "lost the ZooKeeper connection: suspending until the session reconnects or expires (SESSION policy)");
                                        self.set(ElectionState::Suspended { epoch });
                                    }
                                }
                            }
                        }
                        zk::SessionState::SyncConnected | zk::SessionState::ConnectedReadOnly => {
                            tracing::info!(session = %client.session_id(), "ZooKeeper connection restored on the same session");
                            break;
                        }
                        _ => return SessionEnd::Lost,
                    },
                }
            }
            if rejoin {
                if let Some((path, _)) = self.node.take() {
                    let _ =
                        tokio::time::timeout(self.cfg.session_timeout, client.delete(&path, None))
                            .await;
                }
            }
        }
    }

    /// Sleeps the backoff; true if closing meanwhile.
    async fn pause(&mut self) -> bool {
        tokio::select! {
            _ = self.closing.changed() => true,
            _ = tokio::time::sleep(Duration::from_millis(200)) => self.closing(),
        }
    }

    /// Creates this contender's node (and the parent paths).
    async fn join(&mut self, client: &zk::Client) -> Result<()> {
        let acl = zk::Acls::anyone_all();
        let persistent = zk::CreateMode::Persistent.with_acls(acl);
        let loc = |p: &str| format!("{}{}", self.cfg.address, p);
        let timeout = self.cfg.session_timeout;
        let op = async {
            client
                .mkdir(&self.cfg.election_path, &persistent)
                .await
                .map_err(|e| zk_err(loc(&self.cfg.election_path), e))?;
            let prefix = format!("{}/{MEMBER_PREFIX}", self.cfg.election_path);
            let (_, seq) = client
                .create(
                    &prefix,
                    self.address.as_bytes(),
                    &zk::CreateMode::EphemeralSequential.with_acls(acl),
                )
                .await
                .map_err(|e| zk_err(loc(&prefix), e))?;
            Ok::<_, JournalError>(seq.into_i64() as u64)
        };
        let seq = bounded("joining the ZooKeeper election", timeout, op).await??;
        let path = format!("{}/{MEMBER_PREFIX}{seq:010}", self.cfg.election_path);
        tracing::info!(node = %path, address = %self.address, "joined the ZooKeeper election");
        self.node = Some((path, seq));
        self.shared.lock().own_seq = Some(seq);
        Ok(())
    }

    /// Looks at the contenders, sets the state, and says what to wait for.
    async fn evaluate(&mut self, client: &zk::Client) -> Result<Position> {
        let Some((own_path, own_seq)) = self.node.clone() else {
            return Ok(Position::Gone);
        };
        let timeout = self.cfg.session_timeout;
        let loc = format!("{}{}", self.cfg.address, self.cfg.election_path);
        let children = bounded(
            "listing the ZooKeeper election",
            timeout,
            client.list_children(&self.cfg.election_path),
        )
        .await?
        .map_err(|e| zk_err(&loc, e))?;
        let mut seqs: Vec<(u64, String)> = children
            .iter()
            .filter_map(|c| member_seq(c).map(|s| (s, c.clone())))
            .collect();
        seqs.sort();
        if !seqs.iter().any(|(s, _)| *s == own_seq) {
            tracing::warn!(node = %own_path, "this contender's election node disappeared; joining again");
            self.set(ElectionState::Follower { leader: None });
            self.node = None;
            return Ok(Position::Gone);
        }
        let predecessor = seqs
            .iter()
            .rev()
            .find(|(s, _)| *s < own_seq)
            .map(|(_, n)| n.clone());
        match predecessor {
            None => {
                // Lowest: lead, and watch our own node so a deletion from
                // outside ends leadership at once.
                let (stat, watcher) = bounded(
                    "watching the own election node",
                    timeout,
                    client.check_and_watch_stat(&own_path),
                )
                .await?
                .map_err(|e| zk_err(&own_path, e))?;
                if stat.is_none() {
                    self.set(ElectionState::Follower { leader: None });
                    self.node = None;
                    return Ok(Position::Gone);
                }
                // Sequence numbers start at 0; epochs start at 1 so 0 can mean "none".
                self.set(ElectionState::Leader { epoch: own_seq + 1 });
                if let Some(epoch) = self.serving {
                    // Re-publish after a reconnect on the same session.
                    let _ = self.create_leader_node(client, epoch).await;
                }
                Ok(Position::Watch(watcher, None))
            }
            Some(pred) => {
                let pred_path = format!("{}/{pred}", self.cfg.election_path);
                let (stat, watcher) = bounded(
                    "watching the predecessor",
                    timeout,
                    client.check_and_watch_stat(&pred_path),
                )
                .await?
                .map_err(|e| zk_err(&pred_path, e))?;
                let (leader, leader_watcher) = match bounded(
                    "watching the serving primary",
                    timeout,
                    crate::discovery::watch_leader(client, &self.cfg),
                )
                .await
                .and_then(|r| r)
                {
                    Ok((leader, w)) => (leader, Some(w)),
                    Err(e) => {
                        tracing::debug!(error = %e, "could not watch the serving primary");
                        let leader = crate::discovery::read_leader(client, &self.cfg)
                            .await
                            .ok()
                            .flatten();
                        (leader, None)
                    }
                };
                self.set(ElectionState::Follower { leader });
                if stat.is_none() {
                    // It went away between the listing and the watch: look again.
                    return Ok(Position::Recheck);
                }
                Ok(Position::Watch(watcher, leader_watcher))
            }
        }
    }

    /// Handles one command; true if the contender must rejoin (resigned).
    async fn handle(&mut self, client: &zk::Client, cmd: Command) -> bool {
        match cmd {
            Command::Announce(epoch, tx) => {
                // `epoch` is the journal's (it may exceed the election's).
                let r = if self.state.borrow().leader_epoch().is_some() {
                    self.serving = Some(epoch);
                    self.create_leader_node(client, epoch).await
                } else {
                    Err(JournalError::NotPrimary { leader_hint: None })
                };
                let _ = tx.send(r);
                false
            }
            Command::Withdraw(tx) => {
                self.serving = None;
                let _ = tx.send(self.delete_leader_node(client).await);
                false
            }
            Command::Resign(tx) => {
                tracing::warn!(
                    "resigning from the ZooKeeper election: this contender goes to the back of the queue"
                );
                self.serving = None;
                let _ = self.delete_leader_node(client).await;
                self.set(ElectionState::Follower { leader: None });
                let _ = tx.send(Ok(()));
                true
            }
        }
    }

    fn leader_node(&self) -> String {
        format!("{}/{}", self.cfg.leader_path, self.address)
    }

    /// Publishes `<leader path>/<address>` (ephemeral, data = epoch).
    async fn create_leader_node(&self, client: &zk::Client, epoch: u64) -> Result<()> {
        let acl = zk::Acls::anyone_all();
        let path = self.leader_node();
        let timeout = self.cfg.session_timeout;
        let op = async {
            client
                .mkdir(
                    &self.cfg.leader_path,
                    &zk::CreateMode::Persistent.with_acls(acl),
                )
                .await
                .map_err(|e| zk_err(&self.cfg.leader_path, e))?;
            let data = epoch.to_string();
            match client
                .create(
                    &path,
                    data.as_bytes(),
                    &zk::CreateMode::Ephemeral.with_acls(acl),
                )
                .await
            {
                Ok(_) => Ok(()),
                Err(zk::Error::NodeExists) => {
                    // Ours from before a reconnect, or a dead session of a
                    // master that had this address: replace it.
                    let _ = client.delete(&path, None).await;
                    client
                        .create(
                            &path,
                            data.as_bytes(),
                            &zk::CreateMode::Ephemeral.with_acls(acl),
                        )
                        .await
                        .map(|_| ())
                        .map_err(|e| zk_err(&path, e))
                }
                Err(e) => Err(zk_err(&path, e)),
            }
        };
        bounded(format!("publishing {path}"), timeout, op).await??;
        tracing::info!(node = %path, epoch, "published this master as the serving primary");
        Ok(())
    }

    async fn delete_leader_node(&self, client: &zk::Client) -> Result<()> {
        let path = self.leader_node();
        let timeout = self.cfg.session_timeout;
        match tokio::time::timeout(timeout, client.delete(&path, None)).await {
            Ok(Ok(())) | Ok(Err(zk::Error::NoNode)) => Ok(()),
            Ok(Err(e)) => Err(zk_err(&path, e)),
            Err(_) => Err(JournalError::Timeout {
                what: format!("removing {path}"),
                after: timeout,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_names_parse() {
        assert_eq!(member_seq("member-0000000042"), Some(42));
        assert_eq!(member_seq("member-12345678901"), Some(12345678901));
        assert_eq!(member_seq("member-42"), None);
        assert_eq!(member_seq("other-0000000001"), None);
    }
}
