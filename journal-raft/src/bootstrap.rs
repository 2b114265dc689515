//! Who may talk to this member, and when a member with no Raft state may
//! bootstrap the initial membership.
//!
//! Identity: every peer batch, snapshot stream and handshake carries the
//! sender's cluster id and initial-membership fingerprint; [`PeerGuard`]
//! refuses a mismatch before anything reaches Raft.
//!
//! Bootstrap: a freshly formatted member looks exactly like a wiped and
//! re-formatted one, so it must not create the initial voter set and vote on
//! its own word. [`spawn_handshake`] asks the other initial members for
//! their state and bootstraps only when enough of them report none at all
//! that every quorum containing this member also contains one of them
//! (`n - quorum(n) + 1` of the others: all others in a group of 3). An entry
//! committed before would sit on such a member, so none was. If any
//! member reports state, this member never bootstraps: it refuses to vote
//! and waits for a leader's snapshot.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::watch;
use tonic::Status;

use crate::config::{member_id_for, RaftJournalConfig};
use crate::node::{Cmd, Shared};
use crate::proto::raft_peer_client::RaftPeerClient;
use crate::proto::{HelloReply, HelloRequest};
use crate::storage::Peers;

/// The group identity every peer message carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    pub cluster_id: String,
    pub membership: u64,
}

impl Identity {
    pub fn of(cfg: &RaftJournalConfig) -> Identity {
        Identity {
            cluster_id: cfg.effective_cluster_id(),
            membership: cfg.membership_fingerprint(),
        }
    }
}

/// How often one sender's refusal is logged at most.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

/// The inbound check shared by every peer call.
pub(crate) struct PeerGuard {
    pub identity: Identity,
    pub my_id: u64,
    pub shared: Arc<Shared>,
    /// Set once the handshake found another member with state: this member
    /// then reports itself non-empty, so nobody counts it as evidence that
    /// the group never held data.
    pub waiting: AtomicBool,
    /// Peer calls refused for a foreign identity.
    pub refused: AtomicU64,
    last_logged: Mutex<HashMap<String, Instant>>,
}

impl PeerGuard {
    pub fn new(identity: Identity, my_id: u64, shared: Arc<Shared>) -> PeerGuard {
        PeerGuard {
            identity,
            my_id,
            shared,
            waiting: AtomicBool::new(false),
            refused: AtomicU64::new(0),
            last_logged: Mutex::new(HashMap::new()),
        }
    }

    /// Ok when the sender belongs to this group; otherwise logs (at most
    /// every 10 s per sender) and returns `PermissionDenied`.
    pub fn admit(
        &self,
        cluster_id: &str,
        membership: u64,
        from: u64,
        remote: Option<std::net::SocketAddr>,
    ) -> Result<(), Status> {
        if cluster_id == self.identity.cluster_id && membership == self.identity.membership {
            return Ok(());
        }
        self.refused.fetch_add(1, Ordering::Relaxed);
        let sender = remote
            .map(|a| a.to_string())
            .unwrap_or_else(|| "an unknown address".to_string());
        let now = Instant::now();
        let log = {
            let mut last = self.last_logged.lock();
            let key = format!("{sender}/{from}");
            let due = last
                .get(&key)
                .is_none_or(|t| now.duration_since(*t) >= REFUSAL_LOG_EVERY);
            if due {
                last.insert(key, now);
            }
            due
        };
        if log {
            tracing::error!(
                member = self.my_id,
                sender = %sender,
                sender_member = from,
                sender_cluster = %cluster_id,
                sender_membership = format_args!("{membership:016x}"),
                our_cluster = %self.identity.cluster_id,
                our_membership = format_args!("{:016x}", self.identity.membership),
                "refused a peer of another Raft group (cluster id or initial membership differs); \
                 nothing it sent reaches Raft. Check alluxio.master.embedded.journal.addresses \
                 and primacy.cluster.id on both masters"
            );
        }
        Err(Status::permission_denied(format!(
            "member {} belongs to cluster {:?} (membership {:016x}); the sender claims cluster \
             {cluster_id:?} (membership {membership:016x})",
            self.my_id, self.identity.cluster_id, self.identity.membership
        )))
    }

    /// This member's answer to the bootstrap handshake.
    pub fn hello_reply(&self) -> HelloReply {
        let status = self.shared.status.lock().clone();
        let has_snapshot = status.last_checkpoint.is_some();
        let empty = status.last_durable == 0
            && status.epoch == 0
            && !has_snapshot
            && !self.waiting.load(Ordering::SeqCst);
        HelloReply {
            cluster_id: self.identity.cluster_id.clone(),
            membership: self.identity.membership,
            id: self.my_id,
            empty,
            last_index: status.last_durable,
            term: status.epoch,
        }
    }
}

/// How many of the *other* initial members must report empty state before
/// a member of a group of `n` may bootstrap: enough that every majority
/// containing this member also contains one of them.
pub(crate) fn empty_peers_needed(n: usize) -> usize {
    let quorum = n / 2 + 1;
    n - quorum + 1
}

/// Runs the bootstrap handshake of a member with no Raft state whose
/// address is among the initial members; ends when it bootstrapped, when it
/// decided to wait for a leader, or on shutdown.
pub(crate) fn spawn_handshake(
    rt: &tokio::runtime::Handle,
    cfg: RaftJournalConfig,
    guard: Arc<PeerGuard>,
    cmds: Sender<Cmd>,
    mut shutdown: watch::Receiver<bool>,
) {
    rt.spawn(async move {
        let me = cfg.member_id();
        let others: Vec<String> = cfg
            .initial_members()
            .into_iter()
            .filter(|a| a != cfg.address.trim())
            .collect();
        let needed = empty_peers_needed(others.len() + 1);
        let request = HelloRequest {
            cluster_id: guard.identity.cluster_id.clone(),
            membership: guard.identity.membership,
            from: me,
            address: cfg.address.clone(),
        };
        let retry = cfg.election_timeout_min.max(Duration::from_millis(100));
        let mut last_log: Option<Instant> = None;
        loop {
            if *shutdown.borrow() {
                return;
            }
            let mut empty = Vec::new();
            let mut silent = Vec::new();
            let mut holder = None;
            for addr in &others {
                let dial = cfg
                    .connect_via
                    .get(addr)
                    .cloned()
                    .unwrap_or_else(|| addr.clone());
                match ask(&dial, request.clone(), retry).await {
                    Ok(r)
                        if r.cluster_id != guard.identity.cluster_id
                            || r.membership != guard.identity.membership =>
                    {
                        silent.push(format!("{addr} (another group)"));
                    }
                    Ok(r) if r.id != member_id_for(addr) => {
                        silent.push(format!("{addr} (answered as member {})", r.id));
                    }
                    Ok(r) if r.empty => empty.push(addr.clone()),
                    Ok(r) => {
                        holder = Some((addr.clone(), r.last_index, r.term));
                        break;
                    }
                    Err(why) => silent.push(format!("{addr} ({why})")),
                }
            }
            if let Some((addr, last_index, term)) = holder {
                guard.waiting.store(true, Ordering::SeqCst);
                tracing::warn!(
                    member = me,
                    holder = %addr,
                    last_index,
                    term,
                    "this member has no Raft state but {addr} has: not bootstrapping (its data \
                     directory was new or wiped); it will not vote until a leader sends it the \
                     group's state"
                );
                return;
            }
            if empty.len() >= needed {
                let peers: Peers = cfg
                    .initial_members()
                    .into_iter()
                    .map(|a| (member_id_for(&a), a))
                    .collect();
                tracing::info!(
                    member = me,
                    empty = ?empty,
                    "bootstrapping the initial membership: enough initial members report no state"
                );
                let _ = cmds.send(Cmd::Bootstrap(peers));
                return;
            }
            if last_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(5)) {
                last_log = Some(Instant::now());
                tracing::info!(
                    member = me,
                    needed,
                    empty = ?empty,
                    not_answering = ?silent,
                    "waiting for a majority of the initial members ({}) to answer before \
                     bootstrapping",
                    others.join(",")
                );
            }
            tokio::select! {
                _ = tokio::time::sleep(retry) => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
        }
    });
}

async fn ask(dial: &str, req: HelloRequest, timeout: Duration) -> Result<HelloReply, String> {
    let call = async {
        let channel = crate::transport::endpoint(dial)
            .map_err(|e| e.to_string())?
            .connect()
            .await
            .map_err(|e| e.to_string())?;
        RaftPeerClient::new(channel)
            .hello(req)
            .await
            .map(|r| r.into_inner())
            .map_err(|s| s.message().to_string())
    };
    match tokio::time::timeout(timeout, call).await {
        Ok(r) => r,
        Err(_) => Err("no answer".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::empty_peers_needed;

    #[test]
    fn every_majority_with_this_member_meets_an_empty_peer() {
        for n in 2..=9usize {
            let quorum = n / 2 + 1;
            let k = empty_peers_needed(n);
            // A majority containing this member has quorum - 1 others; with
            // k empty among the n - 1 others they must overlap.
            assert!(k + (quorum - 1) > n - 1, "n={n}");
            // And not more than needed.
            assert!((k - 1) + (quorum - 1) < n, "n={n}");
        }
        assert_eq!(empty_peers_needed(3), 2);
        assert_eq!(empty_peers_needed(5), 3);
    }
}
