//! Configuration of the embedded (Raft) journal, with Alluxio's keys.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use journal_core::{JournalError, Result};

/// `alluxio.master.embedded.journal.addresses`: the initial members, `host:port,host:port`.
pub const KEY_ADDRESSES: &str = "alluxio.master.embedded.journal.addresses";
/// `alluxio.master.hostname`: this master's externally visible host name.
pub const KEY_HOSTNAME: &str = "alluxio.master.hostname";
/// `alluxio.master.embedded.journal.port`: this member's peer port (default 19200).
pub const KEY_PORT: &str = "alluxio.master.embedded.journal.port";
/// `alluxio.master.journal.folder`: the local directory holding the Raft log and snapshots.
pub const KEY_FOLDER: &str = "alluxio.master.journal.folder";
/// `alluxio.master.embedded.journal.election.timeout.min` (default 1 s).
pub const KEY_ELECTION_MIN: &str = "alluxio.master.embedded.journal.election.timeout.min";
/// `alluxio.master.embedded.journal.election.timeout.max` (default 2 s).
pub const KEY_ELECTION_MAX: &str = "alluxio.master.embedded.journal.election.timeout.max";
/// `alluxio.master.embedded.journal.snapshot.replication.chunk.size` (default 4 MB).
pub const KEY_CHUNK: &str = "alluxio.master.embedded.journal.snapshot.replication.chunk.size";
/// `alluxio.master.journal.checkpoint.period.entries` (default 2,000,000).
pub const KEY_CHECKPOINT_PERIOD: &str = "alluxio.master.journal.checkpoint.period.entries";
/// `alluxio.master.embedded.journal.transport.max.inbound.message.size` (default 100 MB).
pub const KEY_MAX_MESSAGE: &str =
    "alluxio.master.embedded.journal.transport.max.inbound.message.size";
/// `primacy.cluster.id`: the group's cluster id (format marker, every peer
/// message, every snapshot); derived from the initial members when unset.
pub const KEY_CLUSTER_ID: &str = "primacy.cluster.id";

/// `primacy.embedded.journal.snapshot.max.size`: largest snapshot stream a
/// member accepts from a peer (default 64 GB).
pub const KEY_MAX_SNAPSHOT: &str = "primacy.embedded.journal.snapshot.max.size";

/// `primacy.embedded.journal.member.id`: an explicit Raft id (members added later only).
pub const KEY_MEMBER_ID: &str = "primacy.embedded.journal.member.id";

/// `alluxio.master.rpc.port`: the port of this master's RPC address
/// ([`RaftJournalConfig::rpc_address`] is `alluxio.master.hostname` with it).
pub const KEY_RPC_PORT: &str = "alluxio.master.rpc.port";

/// Default peer port (Alluxio's).
pub const DEFAULT_PORT: u16 = 19200;

/// Settings of one member of an embedded journal group.
///
/// Guarantees: a config that passed [`RaftJournalConfig::validate`] (which
/// `RaftJournal::open` calls) yields a consistent Raft configuration; every
/// rejected value is reported as `JournalError::Config` naming its key.
#[derive(Debug, Clone)]
pub struct RaftJournalConfig {
    /// This member's peer address `host:port`, as the other members reach it.
    pub address: String,
    /// This member's Raft id; derived from `address` ([`member_id_for`]) when `None`.
    pub id: Option<u64>,
    /// The initial members' peer addresses. A member whose own address is in
    /// the list bootstraps the group with exactly these voters; a member whose
    /// address is not starts empty and waits to be added (`add_member`).
    pub addresses: Vec<String>,
    /// Directory for the raft-engine log (`log/`) and snapshot files (`snapshots/`).
    pub data_dir: PathBuf,
    /// Lower bound of the randomized election timeout.
    pub election_timeout_min: Duration,
    /// Upper bound of the randomized election timeout.
    pub election_timeout_max: Duration,
    /// Size of one chunk of a streamed snapshot.
    pub snapshot_chunk_size: usize,
    /// A snapshot is taken (and the log compacted) every this many applied entries.
    pub checkpoint_period_entries: u64,
    /// Largest gRPC message accepted from a peer; proposals larger than this
    /// (less framing room) are refused.
    pub max_message_bytes: usize,
    /// The group's explicit cluster id. When `None` it is derived from the
    /// sorted initial members ([`RaftJournalConfig::effective_cluster_id`]),
    /// so groups formatted with different address lists differ.
    pub cluster_id: Option<String>,
    /// Largest snapshot (bytes) accepted from a peer: a stream announcing
    /// more, or sending more than it announced, is refused.
    pub max_snapshot_bytes: u64,
    /// Address the peer server listens on; defaults to `address`.
    pub bind_address: Option<String>,
    /// Dial rewrites: a peer whose address is a key is reached at the value
    /// instead (NAT, port forwarding, or a fault-injecting proxy in tests).
    /// Member identity stays the advertised address.
    pub connect_via: HashMap<String, String>,
    /// This master's RPC address (`alluxio.master.hostname:alluxio.master.rpc.port`),
    /// where clients reach it. It is advertised to the group and replicated
    /// with the membership (peer map: id → peer address, RPC address), so
    /// `NotPrimary.leader_hint` and `status().leader_address` name the
    /// leader's RPC address on every member, or `None` while the leader's
    /// RPC address is not known here yet.
    ///
    /// `None`: nothing is advertised and this member's hints name the
    /// leader's *peer* address (the behaviour before RPC addresses were
    /// replicated); only for embedders with no RPC server of their own.
    pub rpc_address: Option<String>,
    /// Where batch sizes, snapshots written and transferred, and leader
    /// changes are counted (unregistered by default; the embedder registers
    /// its own).
    pub metrics: journal_core::JournalMetrics,
    /// How many proposals (and entry bytes) may wait for a quorum at once
    /// (`primacy.master.journal.max.pending.proposals` and `.bytes`);
    /// beyond them `propose` fails at once with `Overloaded`.
    pub pending: journal_core::PendingLimits,
    /// The cluster secret. When set, every request this member sends to a
    /// peer carries a token made with it ([`crate::auth`]).
    pub secret: Option<std::sync::Arc<crate::auth::ClusterSecret>>,
    /// Whether the peer port refuses requests without a valid token made
    /// with [`RaftJournalConfig::secret`] (`primacy.security.authentication.peer.enabled`).
    /// Requires a secret.
    pub require_auth: bool,
    /// Bytes of the newest log entries kept in memory (default
    /// [`crate::storage::DEFAULT_LOG_CACHE_BYTES`]): replicating and applying
    /// anything within them reads no disk. Any value is valid; 0 turns the
    /// cache off.
    pub log_cache_bytes: usize,
}

impl RaftJournalConfig {
    /// A config with Alluxio's defaults (primacy's faster election timeouts).
    pub fn new(
        address: impl Into<String>,
        addresses: Vec<String>,
        data_dir: impl Into<PathBuf>,
    ) -> Self {
        RaftJournalConfig {
            address: address.into(),
            id: None,
            addresses,
            data_dir: data_dir.into(),
            election_timeout_min: Duration::from_secs(1),
            election_timeout_max: Duration::from_secs(2),
            snapshot_chunk_size: 4 << 20,
            checkpoint_period_entries: 2_000_000,
            max_message_bytes: 100 << 20,
            cluster_id: None,
            max_snapshot_bytes: 64 << 30,
            bind_address: None,
            connect_via: HashMap::new(),
            rpc_address: None,
            metrics: journal_core::JournalMetrics::default(),
            pending: journal_core::PendingLimits::default(),
            secret: None,
            require_auth: false,
            log_cache_bytes: crate::storage::DEFAULT_LOG_CACHE_BYTES,
        }
    }

    /// Checks every value; errors name the Alluxio key of the bad value.
    pub fn validate(&self) -> Result<()> {
        // Used trimmed everywhere; the list is used as given.
        check_address(KEY_HOSTNAME, self.address.trim())?;
        if self.addresses.is_empty() {
            return Err(JournalError::config(KEY_ADDRESSES, "lists no member"));
        }
        let mut seen = std::collections::HashSet::new();
        for a in &self.addresses {
            check_address(KEY_ADDRESSES, a)?;
            if !seen.insert(member_id_for(a)) {
                return Err(JournalError::config(
                    KEY_ADDRESSES,
                    format!("{a} is listed twice"),
                ));
            }
        }
        if let Some(id) = self.id {
            if id == 0 {
                return Err(JournalError::config(
                    KEY_MEMBER_ID,
                    "0 is not a valid Raft id",
                ));
            }
            if self.addresses.contains(&self.address) && id != member_id_for(&self.address) {
                return Err(JournalError::config(
                    KEY_MEMBER_ID,
                    format!(
                        "{id} differs from the id the other initial members derive from {} ({}); \
                         leave it unset for initial members",
                        self.address,
                        member_id_for(&self.address)
                    ),
                ));
            }
        }
        if let Some(c) = &self.cluster_id {
            if c.trim().is_empty() || c.chars().any(|ch| ch.is_control()) {
                return Err(JournalError::config(
                    KEY_CLUSTER_ID,
                    format!("{c:?} is not a usable cluster id (empty or control characters)"),
                ));
            }
        }
        if let Some(rpc) = &self.rpc_address {
            check_address(KEY_RPC_PORT, rpc.trim())?;
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(JournalError::config(KEY_FOLDER, "is empty"));
        }
        if self.election_timeout_min < Duration::from_millis(10) {
            return Err(JournalError::config(
                KEY_ELECTION_MIN,
                format!(
                    "{:?} is too short (at least 10ms)",
                    self.election_timeout_min
                ),
            ));
        }
        if self.election_timeout_max <= self.election_timeout_min {
            return Err(JournalError::config(
                KEY_ELECTION_MAX,
                format!(
                    "{:?} must be greater than {KEY_ELECTION_MIN} ({:?})",
                    self.election_timeout_max, self.election_timeout_min
                ),
            ));
        }
        if self.snapshot_chunk_size == 0
            || self.snapshot_chunk_size + (64 << 10) > self.max_message_bytes
        {
            return Err(JournalError::config(
                KEY_CHUNK,
                format!(
                    "{} bytes must be positive and at least 64 KiB below {KEY_MAX_MESSAGE} ({})",
                    self.snapshot_chunk_size, self.max_message_bytes
                ),
            ));
        }
        if self.max_message_bytes < (1 << 20) {
            return Err(JournalError::config(
                KEY_MAX_MESSAGE,
                format!(
                    "{} bytes is below the 1 MiB minimum",
                    self.max_message_bytes
                ),
            ));
        }
        if self.max_snapshot_bytes == 0 {
            return Err(JournalError::config(KEY_MAX_SNAPSHOT, "must be positive"));
        }
        if self.require_auth && self.secret.is_none() {
            return Err(JournalError::config(
                crate::auth::KEY_PEER_AUTH,
                format!(
                    "is true but no cluster secret is set: set {} (or {})",
                    crate::auth::KEY_SECRET_FILE,
                    crate::auth::SECRET_ENV
                ),
            ));
        }
        if self.checkpoint_period_entries == 0 {
            return Err(JournalError::config(
                KEY_CHECKPOINT_PERIOD,
                "must be at least 1",
            ));
        }
        Ok(())
    }

    /// The initial members, trimmed and sorted: the same on every member
    /// whatever order its list is in.
    pub fn initial_members(&self) -> Vec<String> {
        let mut list: Vec<String> = self
            .addresses
            .iter()
            .map(|a| a.trim().to_string())
            .collect();
        list.sort();
        list
    }

    /// The cluster id this member uses: the explicit one, or `raft-` and a
    /// hash of the sorted initial members (deterministic, so every member
    /// formatted with the same list derives the same id).
    pub fn effective_cluster_id(&self) -> String {
        match &self.cluster_id {
            Some(c) => c.clone(),
            None => format!(
                "raft-{:016x}",
                fnv1a(self.initial_members().join(",").as_bytes())
            ),
        }
    }

    /// A fingerprint of the sorted initial members, carried with the cluster
    /// id so groups sharing an explicit id but not their membership still
    /// refuse each other.
    pub fn membership_fingerprint(&self) -> u64 {
        membership_fingerprint(&self.initial_members())
    }

    /// This member's Raft id.
    pub fn member_id(&self) -> u64 {
        self.id.unwrap_or_else(|| member_id_for(&self.address))
    }

    /// The Raft tick interval: a tenth of the minimum election timeout.
    pub fn tick_interval(&self) -> Duration {
        (self.election_timeout_min / 10).max(Duration::from_millis(1))
    }

    /// (election_tick, max_election_tick, heartbeat_tick) for raft-rs.
    pub fn ticks(&self) -> (usize, usize, usize) {
        let tick = self.tick_interval().as_micros().max(1);
        let min = (self.election_timeout_min.as_micros() / tick).max(2) as usize;
        let max = ((self.election_timeout_max.as_micros() / tick) as usize).max(min + 1);
        let heartbeat = (min / 4).max(1);
        (min, max, heartbeat)
    }

    /// The credentials this member's outbound peer requests carry.
    pub(crate) fn peer_credentials(&self) -> crate::auth::ClientAuth {
        crate::auth::ClientAuth::new(self.secret.clone(), crate::auth::Realm::Peer)
    }

    /// Size of the largest proposal accepted.
    pub fn max_entry_bytes(&self) -> usize {
        self.max_message_bytes.saturating_sub(64 << 10)
    }
}

/// The Raft id of the member at `address`: FNV-1a 64 of the address text
/// (never 0), so every member derives the same ids from the same address
/// list whatever its order.
pub fn member_id_for(address: &str) -> u64 {
    let h = fnv1a(address.trim().as_bytes());
    // Keep ids below 2^63 so they print the same signed or unsigned.
    let h = h >> 1;
    if h == 0 {
        1
    } else {
        h
    }
}

pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The fingerprint of a sorted initial membership (FNV-1a 64 of the
/// addresses, one per line).
pub fn membership_fingerprint(sorted_members: &[String]) -> u64 {
    let mut text = String::new();
    for a in sorted_members {
        text.push_str(a);
        text.push('\n');
    }
    fnv1a(text.as_bytes())
}

fn check_address(key: &str, a: &str) -> Result<()> {
    crate::address::check(a).map_err(|why| JournalError::config(key, why))
}

/// Parses `host:port,host:port` into addresses.
pub fn parse_addresses(v: &str) -> Result<Vec<String>> {
    let list: Vec<String> = v
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if list.is_empty() {
        return Err(JournalError::config(KEY_ADDRESSES, "lists no member"));
    }
    for a in &list {
        check_address(KEY_ADDRESSES, a)?;
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_follow_the_election_timeouts() {
        let mut cfg = RaftJournalConfig::new(
            "m2:19200",
            vec!["m1:19200".into(), "m2:19200".into(), "m3:19200".into()],
            "/tmp/j",
        );
        cfg.election_timeout_min = Duration::from_millis(500);
        cfg.election_timeout_max = Duration::from_secs(1);
        cfg.validate().unwrap();
        assert_eq!(cfg.ticks(), (10, 20, 2));
        assert_eq!(cfg.member_id(), member_id_for("m2:19200"));
    }

    #[test]
    fn derived_cluster_id_follows_the_sorted_initial_members() {
        let a = RaftJournalConfig::new("m1:1", vec!["m1:1".into(), "m2:1".into()], "/j");
        let b = RaftJournalConfig::new("m2:1", vec!["m2:1".into(), "m1:1".into()], "/k");
        let c = RaftJournalConfig::new("m1:1", vec!["m1:1".into(), "m3:1".into()], "/j");
        assert_eq!(a.effective_cluster_id(), b.effective_cluster_id());
        assert_eq!(a.membership_fingerprint(), b.membership_fingerprint());
        assert_ne!(a.effective_cluster_id(), c.effective_cluster_id());
        assert_ne!(a.membership_fingerprint(), c.membership_fingerprint());
        let mut explicit = c.clone();
        explicit.cluster_id = Some("prod".into());
        assert_eq!(explicit.effective_cluster_id(), "prod");
    }

    #[test]
    fn bad_values_name_their_key() {
        let good = RaftJournalConfig::new("m1:19200", vec!["m1:19200".into()], "/tmp/j");
        good.validate().unwrap();
        type Spoil = Box<dyn Fn(&mut RaftJournalConfig)>;
        let cases: Vec<(&str, Spoil)> = vec![
            (KEY_ADDRESSES, Box::new(|c| c.addresses = vec!["m1".into()])),
            (
                KEY_ADDRESSES,
                Box::new(|c| c.addresses = vec!["m1:0".into()]),
            ),
            (KEY_ADDRESSES, Box::new(|c| c.addresses.clear())),
            (KEY_HOSTNAME, Box::new(|c| c.address = "m1".into())),
            // Replicated in the peer map, where a line break or a trailing
            // `\r` would change what is stored.
            (
                KEY_ADDRESSES,
                Box::new(|c| c.addresses.push("m2:19200\r".into())),
            ),
            (
                KEY_ADDRESSES,
                Box::new(|c| c.addresses.push("m2:1\n3 m3:19200".into())),
            ),
            (KEY_HOSTNAME, Box::new(|c| c.address = "m 1:19200".into())),
            (
                KEY_RPC_PORT,
                Box::new(|c| c.rpc_address = Some("m1:19998\n9 evil:1".into())),
            ),
            (
                KEY_ELECTION_MAX,
                Box::new(|c| c.election_timeout_max = Duration::from_millis(100)),
            ),
            (
                KEY_CHECKPOINT_PERIOD,
                Box::new(|c| c.checkpoint_period_entries = 0),
            ),
        ];
        for (key, spoil) in cases {
            let mut cfg = good.clone();
            spoil(&mut cfg);
            match cfg.validate() {
                Err(JournalError::Config { key: k, .. }) => assert_eq!(k, key),
                other => panic!("{key}: {other:?}"),
            }
        }
    }
}
