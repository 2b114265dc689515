//! Who may talk to this member, and when a member with no Raft state may
//! bootstrap the initial membership.
//!
//! Identity: every peer batch, snapshot stream and handshake carries the
//! sender's cluster id and member id; [`PeerGuard`] refuses another cluster
//! id before anything reaches Raft (the sender id is checked against the
//! membership by `validate`).
//!
//! Bootstrap: only a NEW_CLUSTER member (see `format::FormatMode`) with no
//! Raft state bootstraps, and never on its own word (a wiped directory looks
//! exactly like a new one). [`round`] asks the other initial members:
//! - it bootstraps when `n - quorum(n) + 1` of the others report no state
//!   (every quorum containing this member then contains one of them, so no
//!   entry was ever committed);
//! - if any reports state, it bootstraps only if that member recorded this
//!   member, at this very format incarnation, as empty when it bootstrapped
//!   itself (the benign startup race: the others bootstrapped a moment
//!   earlier, with this member's empty log as part of their decision);
//! - otherwise it refuses with [`wiped_error`]: the directory is new but the
//!   group has data, so the member was wiped or replaced and must rejoin as a
//!   new member (format JOIN, `remove_member(old)`, `add_member`).
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use journal_core::JournalError;
use parking_lot::Mutex;
use tokio::sync::watch;
use tonic::Status;

use crate::config::{member_id_for, RaftJournalConfig};
use crate::node::{Cmd, Shared};
use crate::proto::raft_peer_client::RaftPeerClient;
use crate::proto::{HelloReply, HelloRequest};
use crate::storage::{Peer, Peers};

/// The group identity peer calls carry: the cluster id (checked on every
/// call) and the initial-membership fingerprint (compared only by the
/// bootstrap handshake: a grown group's members may list other addresses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    pub cluster_id: String,
    pub membership: u64,
    /// This member's advertised peer address.
    pub address: String,
    /// This member's advertised RPC address, if configured.
    pub rpc_address: Option<String>,
}

impl Identity {
    /// `cfg` must carry the effective cluster id (the marker's).
    pub fn of(cfg: &RaftJournalConfig) -> Identity {
        Identity {
            cluster_id: cfg.effective_cluster_id(),
            membership: cfg.membership_fingerprint(),
            address: cfg.address.trim().to_string(),
            rpc_address: cfg
                .rpc_address
                .as_deref()
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(str::to_string),
        }
    }
}

/// How often one sender's refusal is logged at most.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

/// The inbound check shared by every peer call, and this member's side of
/// the handshake.
pub(crate) struct PeerGuard {
    pub identity: Identity,
    pub my_id: u64,
    /// This member's format incarnation.
    pub incarnation: u64,
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
    pub fn new(identity: Identity, my_id: u64, incarnation: u64, shared: Arc<Shared>) -> PeerGuard {
        PeerGuard {
            identity,
            my_id,
            incarnation,
            shared,
            waiting: AtomicBool::new(false),
            refused: AtomicU64::new(0),
            last_logged: Mutex::new(HashMap::new()),
        }
    }

    /// Ok when the sender belongs to this group (same cluster id);
    /// otherwise logs (at most every 10 s per sender) and returns
    /// `PermissionDenied`.
    pub fn admit(
        &self,
        cluster_id: &str,
        from: u64,
        remote: Option<std::net::SocketAddr>,
    ) -> Result<(), Status> {
        if cluster_id == self.identity.cluster_id {
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
                our_cluster = %self.identity.cluster_id,
                "refused a peer of another Raft group (cluster id differs); nothing it sent \
                 reaches Raft. Check alluxio.master.embedded.journal.addresses and \
                 primacy.cluster.id on both masters"
            );
        }
        Err(Status::permission_denied(format!(
            "member {} belongs to cluster {:?}; the sender claims cluster {cluster_id:?}",
            self.my_id, self.identity.cluster_id
        )))
    }

    /// This member's answer to the handshake (and to `add_member` asking
    /// for its id).
    pub fn hello_reply(&self, req: &HelloRequest) -> HelloReply {
        let status = self.shared.status.lock().clone();
        let has_snapshot = status.last_checkpoint.is_some();
        let has_conf = {
            let cs = self.shared.conf.lock();
            !cs.voters.is_empty() || !cs.learners.is_empty() || !cs.voters_outgoing.is_empty()
        };
        let empty = status.last_durable == 0
            && status.epoch == 0
            && !has_snapshot
            && !has_conf
            && !self.waiting.load(Ordering::SeqCst);
        let saw_you_empty = req.founding
            && self
                .shared
                .founders
                .lock()
                .get(req.address.trim())
                .is_some_and(|inc| *inc == req.incarnation);
        HelloReply {
            cluster_id: self.identity.cluster_id.clone(),
            membership: self.identity.membership,
            id: self.my_id,
            empty,
            last_index: status.last_durable,
            term: status.epoch,
            incarnation: self.incarnation,
            saw_you_empty,
            rpc_address: self.identity.rpc_address.clone().unwrap_or_default(),
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

/// What one round of the handshake decided.
pub(crate) enum Round {
    /// Bootstrap the initial membership, recording these founders (address
    /// → incarnation) as seen with no state; `rpc` holds the RPC addresses
    /// the initial members that answered advertised (peer address → RPC).
    Bootstrap {
        founders: BTreeMap<String, u64>,
        rpc: BTreeMap<String, String>,
    },
    /// The group has data this member never held: it was wiped or replaced.
    Refuse(JournalError),
    /// Not enough answers yet.
    Wait {
        empty: Vec<String>,
        silent: Vec<String>,
    },
}

/// The error of a NEW_CLUSTER member whose group already holds data.
pub(crate) fn wiped_error(cfg: &RaftJournalConfig, holder: &str, detail: &str) -> JournalError {
    JournalError::config(
        crate::config::KEY_FOLDER,
        format!(
            "this member's journal directory {} is new (NEW_CLUSTER format, no Raft state) but \
             the group already holds data ({holder} {detail}): this member was wiped or \
             replaced, and bootstrapping or voting now could lose acknowledged entries. Format \
             it with JOIN (RaftJournal::format(cfg, FormatMode::Join)) and add it back: \
             `primacy journal quorum remove --address <old address or id>` then `primacy \
             journal quorum add --address {}`",
            cfg.data_dir.display(),
            cfg.address
        ),
    )
}

/// One handshake round: asks every other initial member at once.
pub(crate) async fn round(cfg: &RaftJournalConfig, guard: &PeerGuard, timeout: Duration) -> Round {
    let others: Vec<String> = cfg
        .initial_members()
        .into_iter()
        .filter(|a| a != cfg.address.trim())
        .collect();
    let needed = empty_peers_needed(others.len() + 1);
    let request = HelloRequest {
        cluster_id: guard.identity.cluster_id.clone(),
        membership: guard.identity.membership,
        from: guard.my_id,
        address: guard.identity.address.clone(),
        incarnation: guard.incarnation,
        founding: true,
    };
    let mut calls = tokio::task::JoinSet::new();
    for addr in others.clone() {
        let dial = cfg
            .connect_via
            .get(&addr)
            .cloned()
            .unwrap_or_else(|| addr.clone());
        let req = request.clone();
        let auth = cfg.peer_credentials();
        calls.spawn(async move { (addr, ask(&auth, &dial, req, timeout).await) });
    }
    let mut answers = Vec::new();
    while let Some(done) = calls.join_next().await {
        if let Ok(a) = done {
            answers.push(a);
        }
    }
    answers.sort_by(|a, b| a.0.cmp(&b.0));
    let mut empty = BTreeMap::new();
    let mut silent = Vec::new();
    let mut vouched = false;
    let mut rpc = BTreeMap::new();
    for (addr, answer) in answers {
        if let Ok(r) = &answer {
            if r.cluster_id == guard.identity.cluster_id && !r.rpc_address.trim().is_empty() {
                // Replicated in the peer map: a line break in it would forge a member.
                if let Some(r) = crate::address::accept(r.rpc_address.trim(), "RPC address", &addr)
                {
                    rpc.insert(addr.clone(), r);
                }
            }
        }
        match answer {
            Err(why) => silent.push(format!("{addr} ({why})")),
            Ok(r) if r.cluster_id != guard.identity.cluster_id => {
                silent.push(format!("{addr} (another group)"))
            }
            Ok(r) if r.empty => {
                if r.membership == guard.identity.membership && r.id == member_id_for(&addr) {
                    empty.insert(addr, r.incarnation);
                } else {
                    silent.push(format!(
                        "{addr} (empty, but formatted as member {} with other initial members)",
                        r.id
                    ));
                }
            }
            Ok(r) if r.membership != guard.identity.membership => {
                // State, but formatted with other initial members: another
                // group sharing an explicit cluster id, or a member whose list
                // was not updated. Never counted as empty, so it cannot help
                // this member bootstrap; reported while waiting.
                silent.push(format!(
                    "{addr} (holds state up to index {} but lists other initial members; \
                     check alluxio.master.embedded.journal.addresses there)",
                    r.last_index
                ));
            }
            Ok(r) => {
                // The group holds data. Only a founder that saw this very
                // formatting (incarnation) empty when it bootstrapped may
                // vouch for it.
                if r.saw_you_empty {
                    vouched = true;
                } else {
                    return Round::Refuse(wiped_error(
                        cfg,
                        &addr,
                        &format!(
                            "holds Raft state up to index {} in term {}, and did not see this \
                             member's formatting empty when the group was created",
                            r.last_index, r.term
                        ),
                    ));
                }
            }
        }
    }
    if vouched || empty.len() >= needed {
        return Round::Bootstrap {
            founders: empty,
            rpc,
        };
    }
    Round::Wait {
        empty: empty.into_keys().collect(),
        silent,
    }
}

/// Runs the bootstrap handshake of a NEW_CLUSTER member with no Raft state
/// whose address is among the initial members; ends when it bootstrapped,
/// when it found the group holds data it never had (the driver stops with
/// that error), or on shutdown.
pub(crate) fn spawn_handshake(
    rt: &tokio::runtime::Handle,
    cfg: RaftJournalConfig,
    guard: Arc<PeerGuard>,
    cmds: Sender<Cmd>,
    mut shutdown: watch::Receiver<bool>,
) {
    rt.spawn(async move {
        let me = guard.my_id;
        let retry = cfg.election_timeout_min.max(Duration::from_millis(100));
        let needed = empty_peers_needed(cfg.initial_members().len());
        let mut last_log: Option<Instant> = None;
        loop {
            if *shutdown.borrow() {
                return;
            }
            match round(&cfg, &guard, retry).await {
                Round::Bootstrap { founders, rpc } => {
                    let peers = initial_peers(&cfg, &rpc);
                    tracing::info!(
                        member = me,
                        empty = ?founders,
                        "bootstrapping the initial membership: enough initial members report no \
                         state (or one that bootstrapped saw this member empty)"
                    );
                    let _ = cmds.send(Cmd::Bootstrap(peers, founders));
                    return;
                }
                Round::Refuse(error) => {
                    guard.waiting.store(true, Ordering::SeqCst);
                    tracing::error!(member = me, %error, "not bootstrapping");
                    let _ = cmds.send(Cmd::Fatal(error));
                    return;
                }
                Round::Wait { empty, silent } => {
                    if last_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(5)) {
                        last_log = Some(Instant::now());
                        tracing::info!(
                            member = me,
                            needed,
                            empty = ?empty,
                            not_answering = ?silent,
                            "waiting for enough of the initial members ({}) to answer before \
                             bootstrapping",
                            cfg.initial_members().join(",")
                        );
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(retry) => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
        }
    });
}

/// The initial members' peer map: this member with its own RPC address, the
/// others with the RPC addresses they answered the handshake with (unknown
/// for those that did not answer: the one that leads fills its own entry in
/// once primary).
pub(crate) fn initial_peers(cfg: &RaftJournalConfig, rpc: &BTreeMap<String, String>) -> Peers {
    let me = cfg.address.trim();
    cfg.initial_members()
        .into_iter()
        .map(|a| {
            let r = if a == me {
                cfg.rpc_address.as_deref()
            } else {
                rpc.get(&a).map(String::as_str)
            };
            (member_id_for(&a), Peer::with_rpc(a.clone(), r))
        })
        .collect()
}

pub(crate) async fn ask(
    auth: &crate::auth::ClientAuth,
    dial: &str,
    req: HelloRequest,
    timeout: Duration,
) -> Result<HelloReply, AskError> {
    let call = async {
        let channel = crate::transport::endpoint(dial)
            .map_err(|e| AskError::Failed(e.to_string()))?
            .connect()
            .await
            .map_err(|e| AskError::Unreachable(journal_core::error::error_chain(&e)))?;
        RaftPeerClient::new(auth.wrap(channel))
            .hello(req)
            .await
            .map(|r| r.into_inner())
            .map_err(|s| AskError::Failed(s.message().to_string()))
    };
    match tokio::time::timeout(timeout, call).await {
        Ok(r) => r,
        Err(_) => Err(AskError::Failed("no answer".to_string())),
    }
}

/// Why a `Hello` got no reply.
#[derive(Debug, Clone)]
pub(crate) enum AskError {
    /// No connection could be made (refused, timed out, no route, a name
    /// that does not resolve): most often nothing listens there (yet).
    Unreachable(String),
    /// Anything else: an unusable address, a refusal or failure answered
    /// by the peer, or no answer within the timeout.
    Failed(String),
}

impl std::fmt::Display for AskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AskError::Unreachable(why) | AskError::Failed(why) => f.write_str(why),
        }
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
