//! The key registry: every key primacy reads, with its default, value form
//! and description. It drives parsing, the unknown-key check, the
//! environment-variable names and `docs/configuration.md`.
//!
//! Key names are Alluxio's (`PropertyKey.java`) and, for keys the journal
//! crates already name in their errors, identical to theirs.

/// The form a key's value takes; see [`super::value`] for the syntax of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Free text (paths, URLs, ids).
    Text,
    /// A host name without a port.
    Host,
    /// A TCP port, 1-65535.
    Port,
    /// A whole number.
    Count,
    /// `true` or `false`.
    Bool,
    /// A duration (`10s`, `5min`, bare number = ms).
    Duration,
    /// A size in bytes (`4MB`, bare number = bytes).
    Size,
    /// One `host:port`.
    HostPort,
    /// A `host:port` list separated by commas or semicolons.
    AddressList,
    /// A comma-separated list of names.
    NameList,
    /// One of the listed words, case-insensitive.
    Choice(&'static [&'static str]),
}

impl Kind {
    /// A short name of the value form for the documentation.
    pub fn describe(&self) -> String {
        match self {
            Kind::Text => "text".into(),
            Kind::Host => "host".into(),
            Kind::Port => "port".into(),
            Kind::Count => "count".into(),
            Kind::Bool => "boolean".into(),
            Kind::Duration => "duration".into(),
            Kind::Size => "size".into(),
            Kind::HostPort => "host:port".into(),
            Kind::AddressList => "host:port list".into(),
            Kind::NameList => "name list".into(),
            Kind::Choice(words) => words.join(" \\| "),
        }
    }
}

/// One registered key.
#[derive(Debug, Clone, Copy)]
pub struct KeyDef {
    /// The key, e.g. `alluxio.master.rpc.port`. For a pattern key, the
    /// pattern with `<name>` placeholders, e.g. `alluxio.master.nameservices.<name>`.
    pub name: &'static str,
    /// The built-in default, in the key's value form; `None` when unset.
    pub default: Option<&'static str>,
    /// The value form.
    pub kind: Kind,
    /// What the key does, for the documentation.
    pub description: &'static str,
    /// Other names accepted for this key (written to the canonical name).
    pub aliases: &'static [&'static str],
}

impl KeyDef {
    /// True for a pattern key (`<...>` placeholders in its name).
    pub fn is_pattern(&self) -> bool {
        self.name.contains('<')
    }

    /// For a pattern whose last placeholder takes the rest of the key, dots
    /// included (`<option...>`), the fixed part before it.
    pub fn rest_prefix(&self) -> Option<&'static str> {
        let name: &'static str = self.name;
        if !name.ends_with("...>") {
            return None;
        }
        name.rfind('<').map(|i| &name[..i])
    }

    /// True when `key` is this key or, for a pattern key, one of its instances.
    pub fn matches(&self, key: &str) -> bool {
        if !self.is_pattern() {
            return self.name == key;
        }
        if let Some(prefix) = self.rest_prefix() {
            return key
                .strip_prefix(prefix)
                .is_some_and(|rest| !rest.is_empty());
        }
        let want: Vec<&str> = self.name.split('.').collect();
        let got: Vec<&str> = key.split('.').collect();
        want.len() == got.len()
            && want.iter().zip(&got).all(|(w, g)| {
                if w.starts_with('<') {
                    !g.is_empty()
                } else {
                    w == g
                }
            })
    }

    /// The environment variables that set this key: `ALLUXIO_X_Y` for
    /// `alluxio.x.y`, and `PRIMACY_X_Y` for `alluxio.x.y` and `primacy.x.y`;
    /// none for other keys (`aws.*`) and store options.
    pub fn env_names(&self) -> Vec<String> {
        let upper = |s: &str| s.replace('.', "_").to_ascii_uppercase();
        if self.rest_prefix().is_some() {
            // Free-form tails (store options) are not read from variables.
            Vec::new()
        } else if let Some(rest) = self.name.strip_prefix("alluxio.") {
            vec![upper(self.name), format!("PRIMACY_{}", upper(rest))]
        } else if self.name.starts_with("primacy.") {
            vec![upper(self.name)]
        } else {
            // `aws.*`: only ALLUXIO_ and PRIMACY_ variables are read.
            Vec::new()
        }
    }
}

/// `alluxio.master.hostname`
pub const MASTER_HOSTNAME: &str = "alluxio.master.hostname";
/// `alluxio.master.rpc.port`
pub const MASTER_RPC_PORT: &str = "alluxio.master.rpc.port";
/// `alluxio.master.web.port`
pub const MASTER_WEB_PORT: &str = "alluxio.master.web.port";
/// `primacy.master.standby.max.lag`
pub const STANDBY_MAX_LAG: &str = "primacy.master.standby.max.lag";
/// `alluxio.master.cluster.id`
pub const CLUSTER_ID: &str = "alluxio.master.cluster.id";
/// `alluxio.work.dir`
pub const WORK_DIR: &str = "alluxio.work.dir";
/// `alluxio.logs.dir`
pub const LOGS_DIR: &str = "alluxio.logs.dir";
/// `alluxio.master.journal.type`
pub const JOURNAL_TYPE: &str = "alluxio.master.journal.type";
/// `alluxio.master.journal.folder`
pub const JOURNAL_FOLDER: &str = "alluxio.master.journal.folder";
/// `alluxio.master.journal.tailer.sleep.time`
pub const TAILER_SLEEP: &str = "alluxio.master.journal.tailer.sleep.time";
/// `alluxio.master.journal.checkpoint.period.entries`
pub const CHECKPOINT_PERIOD: &str = "alluxio.master.journal.checkpoint.period.entries";
/// `primacy.master.journal.checkpoint.retention`
pub const CHECKPOINT_RETENTION: &str = "primacy.master.journal.checkpoint.retention";
/// `primacy.master.journal.max.pending.proposals`
pub const MAX_PENDING_PROPOSALS: &str = "primacy.master.journal.max.pending.proposals";
/// `primacy.master.journal.max.pending.bytes`
pub const MAX_PENDING_BYTES: &str = "primacy.master.journal.max.pending.bytes";
/// `primacy.master.journal.ufs.staging.grace`
pub const STAGING_GRACE: &str = "primacy.master.journal.ufs.staging.grace";
/// `alluxio.master.journal.ufs.option.<option...>` (pattern: the option may contain dots)
pub const JOURNAL_UFS_OPTION: &str = "alluxio.master.journal.ufs.option.<option...>";
/// `alluxio.underfs.s3.endpoint`
pub const S3_ENDPOINT: &str = "alluxio.underfs.s3.endpoint";
/// `alluxio.underfs.s3.endpoint.region`
pub const S3_REGION: &str = "alluxio.underfs.s3.endpoint.region";
/// `alluxio.underfs.s3.disable.dns.buckets`
pub const S3_DISABLE_DNS_BUCKETS: &str = "alluxio.underfs.s3.disable.dns.buckets";
/// `aws.accessKeyId` (alias `s3a.accessKeyId`)
pub const AWS_ACCESS_KEY: &str = "aws.accessKeyId";
/// `aws.secretKey` (alias `s3a.secretKey`)
pub const AWS_SECRET_KEY: &str = "aws.secretKey";
/// The S3 keys Alluxio reads for every S3 under file system; an `s3://`
/// journal folder reads them too (a `alluxio.master.journal.ufs.option.`
/// key of the same name wins).
pub const S3_KEYS: &[&str] = &[
    S3_ENDPOINT,
    S3_REGION,
    S3_DISABLE_DNS_BUCKETS,
    AWS_ACCESS_KEY,
    AWS_SECRET_KEY,
];
/// `alluxio.master.embedded.journal.addresses`
pub const EMBEDDED_ADDRESSES: &str = "alluxio.master.embedded.journal.addresses";
/// `alluxio.master.embedded.journal.port`
pub const EMBEDDED_PORT: &str = "alluxio.master.embedded.journal.port";
/// `alluxio.master.embedded.journal.election.timeout.min`
pub const ELECTION_MIN: &str = "alluxio.master.embedded.journal.election.timeout.min";
/// `alluxio.master.embedded.journal.election.timeout.max`
pub const ELECTION_MAX: &str = "alluxio.master.embedded.journal.election.timeout.max";
/// `alluxio.master.embedded.journal.snapshot.replication.chunk.size`
pub const SNAPSHOT_CHUNK: &str = "alluxio.master.embedded.journal.snapshot.replication.chunk.size";
/// `alluxio.master.embedded.journal.transport.max.inbound.message.size`
pub const MAX_MESSAGE: &str = "alluxio.master.embedded.journal.transport.max.inbound.message.size";
/// `primacy.embedded.journal.member.id`
pub const MEMBER_ID: &str = "primacy.embedded.journal.member.id";
/// `primacy.testing.embedded.journal.connect.via`
pub const CONNECT_VIA: &str = "primacy.testing.embedded.journal.connect.via";
/// `primacy.embedded.journal.join`
pub const EMBEDDED_JOIN: &str = "primacy.embedded.journal.join";
/// `alluxio.zookeeper.enabled`
pub const ZK_ENABLED: &str = "alluxio.zookeeper.enabled";
/// `alluxio.zookeeper.address`
pub const ZK_ADDRESS: &str = "alluxio.zookeeper.address";
/// `alluxio.zookeeper.session.timeout`
pub const ZK_SESSION_TIMEOUT: &str = "alluxio.zookeeper.session.timeout";
/// `alluxio.zookeeper.connection.timeout`
pub const ZK_CONNECTION_TIMEOUT: &str = "alluxio.zookeeper.connection.timeout";
/// `alluxio.zookeeper.election.path`
pub const ZK_ELECTION_PATH: &str = "alluxio.zookeeper.election.path";
/// `alluxio.zookeeper.leader.path`
pub const ZK_LEADER_PATH: &str = "alluxio.zookeeper.leader.path";
/// `alluxio.zookeeper.leader.connection.error.policy`
pub const ZK_POLICY: &str = "alluxio.zookeeper.leader.connection.error.policy";
/// `alluxio.master.rpc.addresses`
pub const MASTER_RPC_ADDRESSES: &str = "alluxio.master.rpc.addresses";
/// `alluxio.master.worker.timeout`
pub const WORKER_TIMEOUT: &str = "alluxio.master.worker.timeout";
/// `alluxio.user.rpc.retry.max.duration`
pub const RETRY_MAX_DURATION: &str = "alluxio.user.rpc.retry.max.duration";
/// `alluxio.user.rpc.retry.base.sleep`
pub const RETRY_BASE_SLEEP: &str = "alluxio.user.rpc.retry.base.sleep";
/// `alluxio.user.rpc.retry.max.sleep`
pub const RETRY_MAX_SLEEP: &str = "alluxio.user.rpc.retry.max.sleep";
/// `alluxio.master.nameservices.<name>` (pattern)
pub const NAMESERVICES: &str = "alluxio.master.nameservices.<name>";
/// `alluxio.master.rpc.address.<name>.<id>` (pattern)
pub const NAMESERVICE_ADDRESS: &str = "alluxio.master.rpc.address.<name>.<id>";
/// `alluxio.worker.hostname`
pub const WORKER_HOSTNAME: &str = "alluxio.worker.hostname";
/// `alluxio.worker.rpc.port`
pub const WORKER_RPC_PORT: &str = "alluxio.worker.rpc.port";
/// `alluxio.worker.data.folder`
pub const WORKER_DATA_FOLDER: &str = "alluxio.worker.data.folder";
/// `alluxio.worker.block.heartbeat.interval`
pub const WORKER_HEARTBEAT: &str = "alluxio.worker.block.heartbeat.interval";

/// `primacy.security.cluster.secret.file`
pub const SECRET_FILE: &str = journal_raft::auth::KEY_SECRET_FILE;
/// `primacy.security.authentication.peer.enabled`
pub const PEER_AUTH: &str = journal_raft::auth::KEY_PEER_AUTH;
/// `primacy.security.authentication.rpc.enabled`
pub const RPC_AUTH: &str = journal_raft::auth::KEY_RPC_AUTH;

const fn key(
    name: &'static str,
    default: Option<&'static str>,
    kind: Kind,
    description: &'static str,
) -> KeyDef {
    KeyDef {
        name,
        default,
        kind,
        description,
        aliases: &[],
    }
}

/// Every key primacy reads, in documentation order.
pub static KEYS: &[KeyDef] = &[
    key(MASTER_HOSTNAME, None, Kind::Host,
        "This master's host name as clients, workers and the other masters reach it. Required for ZooKeeper and embedded-journal masters; a single UFS master without it advertises `localhost`."),
    key(MASTER_RPC_PORT, Some("19998"), Kind::Port, "The master's RPC port."),
    key(MASTER_WEB_PORT, Some("19999"), Kind::Port, "The master's status page, REST and `/metrics` port (docs/operations.md)."),
    key(STANDBY_MAX_LAG, Some("10000"), Kind::Count,
        "A standby more entries behind the primary's last applied sequence than this is CATCHING_UP: shown so on the status page and in `info report`, and unhealthy on `/api/v1/master/health`."),
    KeyDef {
        name: CLUSTER_ID,
        default: None,
        kind: Kind::Text,
        description: "The cluster id written by `primacy format` and checked at every start. UFS: unset accepts the folder's id, and `format` generates one. Embedded: unset derives it from the sorted initial members.",
        aliases: &["primacy.cluster.id"],
    },
    key(WORK_DIR, None, Kind::Text,
        "Base directory; the journal folder defaults to `${alluxio.work.dir}/journal` and the worker data folder to `${alluxio.work.dir}/worker`."),
    key(LOGS_DIR, None, Kind::Text,
        "`primacy process`: where each master's and worker's log (`master.log`, `worker.log`) and pid file (`master.pid`, `worker.pid`) go. Unset: `${alluxio.work.dir}/logs`."),
    key(JOURNAL_TYPE, None, Kind::Choice(&["EMBEDDED", "UFS"]),
        "The journal backend. Unset: chosen by the rule in \"Backend choice\"."),
    key(JOURNAL_FOLDER, None, Kind::Text,
        "UFS: the shared journal folder URL (`file:///path`, `s3://bucket/prefix`, ...). Embedded: this master's local journal directory. Unset: `${alluxio.work.dir}/journal`."),
    key(TAILER_SLEEP, Some("20ms"), Kind::Duration,
        "UFS: how long a standby sleeps when it has read every chunk."),
    key(CHECKPOINT_PERIOD, Some("2000000"), Kind::Count,
        "Entries applied between automatic checkpoints (UFS) or snapshots (embedded)."),
    key(CHECKPOINT_RETENTION, Some("2"), Kind::Count,
        "UFS: newest checkpoints kept by garbage collection (at least 1)."),
    key(MAX_PENDING_PROPOSALS, Some("10000"), Kind::Count,
        "Most proposals waiting for the journal at once (queued or being written; at least 1). While the folder, the disk or the quorum is slow or away, further proposals fail at once with \"overloaded, retry\" (gRPC `UNAVAILABLE`, retried by clients with back-off) instead of growing memory."),
    key(MAX_PENDING_BYTES, Some("64MB"), Kind::Size,
        "Most entry bytes waiting for the journal at once; beyond them proposals fail as above. One entry larger than this is refused at once as invalid (`INVALID_ARGUMENT`, not retried): no wait could make room for it."),
    key(STAGING_GRACE, Some("1h"), Kind::Duration,
        "UFS on a local or mounted folder: age after which the primary deletes staging files (`<name>#<digits>`) that writes killed mid-way left in the journal folder (at least 1s)."),
    key(JOURNAL_UFS_OPTION, None, Kind::Text,
        "UFS: an option of the journal folder's object store, `<option>` being an object_store key (`aws_endpoint`, `aws_region`, `aws_allow_http`, `aws_conditional_put`, ...) or one of the Alluxio S3 keys below; see \"Journal on S3\"."),
    key(S3_ENDPOINT, None, Kind::Text,
        "S3: the endpoint of an S3-compatible store (`http://host:port`; without a scheme, HTTPS). Unset: AWS."),
    key(S3_REGION, None, Kind::Text, "S3: the region. Unset: `AWS_REGION`, else `us-east-1`."),
    key(S3_DISABLE_DNS_BUCKETS, None, Kind::Bool,
        "S3: `true` addresses the bucket in the path (`endpoint/bucket/key`), `false` in the host name (`bucket.endpoint`). Unset: path style."),
    KeyDef {
        name: AWS_ACCESS_KEY,
        default: None,
        kind: Kind::Text,
        description: "S3: the access key id. Unset: `AWS_ACCESS_KEY_ID`, else the instance's credentials.",
        aliases: &["s3a.accessKeyId"],
    },
    KeyDef {
        name: AWS_SECRET_KEY,
        default: None,
        kind: Kind::Text,
        description: "S3: the secret key. Unset: `AWS_SECRET_ACCESS_KEY`.",
        aliases: &["s3a.secretKey"],
    },
    key(EMBEDDED_ADDRESSES, None, Kind::AddressList,
        "Embedded: the initial members' peer addresses. Unset with the embedded journal: this master alone on `hostname:port`."),
    key(EMBEDDED_PORT, Some("19200"), Kind::Port, "Embedded: this master's peer port."),
    key(ELECTION_MIN, Some("1s"), Kind::Duration,
        "Embedded: lower bound of the randomized election timeout (Alluxio: 10s)."),
    key(ELECTION_MAX, Some("2s"), Kind::Duration,
        "Embedded: upper bound of the randomized election timeout (Alluxio: 20s)."),
    key(SNAPSHOT_CHUNK, Some("4MB"), Kind::Size,
        "Embedded: size of one chunk of a snapshot streamed to a member."),
    key(MAX_MESSAGE, Some("100MB"), Kind::Size,
        "Embedded: largest message accepted from a peer; bounds the entry size."),
    key(MEMBER_ID, None, Kind::Count,
        "Embedded: an explicit Raft id, for members added after the group was formed only; initial members derive theirs from their address."),
    key(CONNECT_VIA, None, Kind::Text,
        "Testing knob (embedded): `peer=via[,peer=via...]` dials each listed peer address at `via` instead (a fault-injecting proxy), keeping the member's identity; never set in production."),
    key(EMBEDDED_JOIN, Some("false"), Kind::Bool,
        "Embedded: allow this master to start although its address is not in the address list; it waits, empty, until `primacy journal quorum add` adds it."),
    key(ZK_ENABLED, Some("false"), Kind::Bool,
        "Use ZooKeeper for the election of the UFS journal's primary."),
    key(ZK_ADDRESS, None, Kind::AddressList, "The ZooKeeper ensemble, `host:port[,host:port...]`."),
    key(ZK_SESSION_TIMEOUT, Some("5s"), Kind::Duration,
        "ZooKeeper session timeout (Alluxio: 60s); bounds failover time after a primary dies."),
    key(ZK_CONNECTION_TIMEOUT, Some("15s"), Kind::Duration, "How long one ZooKeeper connection attempt may take."),
    key(ZK_ELECTION_PATH, Some("/alluxio/election"), Kind::Text, "Parent znode of the election contenders."),
    key(ZK_LEADER_PATH, Some("/alluxio/leader"), Kind::Text, "Parent znode of the serving primary's RPC address."),
    key(ZK_POLICY, Some("SESSION"), Kind::Choice(&["SESSION", "STANDARD"]),
        "On a lost (not yet expired) ZooKeeper connection: SESSION pauses serving and resumes if the session survives; STANDARD gives up primacy at once."),
    key(MASTER_RPC_ADDRESSES, None, Kind::AddressList,
        "Every master's RPC address, for clients and workers that find the primary by polling (ignored when ZooKeeper is enabled)."),
    key(WORKER_TIMEOUT, Some("5min"), Kind::Duration,
        "A worker without a heartbeat for this long is lost."),
    key(RETRY_MAX_DURATION, Some("2min"), Kind::Duration,
        "Clients: longest time one call is retried across failovers."),
    key(RETRY_BASE_SLEEP, Some("50ms"), Kind::Duration, "Clients: first retry back-off."),
    key(RETRY_MAX_SLEEP, Some("3s"), Kind::Duration, "Clients: longest retry back-off."),
    key(NAMESERVICES, None, Kind::NameList,
        "The master ids of nameservice `<name>` (`primacy://ebj@<name>/path`)."),
    key(NAMESERVICE_ADDRESS, None, Kind::HostPort,
        "The RPC address of master `<id>` of nameservice `<name>`."),
    key(WORKER_HOSTNAME, None, Kind::Host, "The worker's host name as clients reach it."),
    key(WORKER_RPC_PORT, Some("29999"), Kind::Port, "The worker's RPC port."),
    key(WORKER_DATA_FOLDER, None, Kind::Text,
        "The worker's block directory. Unset: `${alluxio.work.dir}/worker`."),
    key(WORKER_HEARTBEAT, Some("1s"), Kind::Duration, "Interval of the worker's heartbeats to the primary."),
    key(SECRET_FILE, None, Kind::Text,
        "A file holding the cluster secret (at least 16 bytes; readable by its owner only, else refused). When a secret is set (this file, or else the environment variable `PRIMACY_SECURITY_CLUSTER_SECRET` holding the secret itself), every request to a peer port or RPC port carries an HMAC token made with it (docs/security.md)."),
    key(PEER_AUTH, Some("false"), Kind::Bool,
        "Embedded: the peer port refuses requests without a valid token made with the cluster secret (needs a secret)."),
    key(RPC_AUTH, Some("false"), Kind::Bool,
        "The master's RPC port refuses requests (clients, workers, CLI, other masters) without a valid token made with the cluster secret (needs a secret)."),
];

/// The registered key `key` names, through its canonical name, an alias or
/// a pattern. Returns the definition and the canonical key.
pub fn lookup(key: &str) -> Option<(&'static KeyDef, String)> {
    KEYS.iter().find_map(|d| {
        if d.matches(key) {
            Some((d, key.to_string()))
        } else if d.aliases.contains(&key) {
            Some((d, d.name.to_string()))
        } else {
            None
        }
    })
}

/// The registered key closest to an unknown `key`, when it is a near miss
/// (a typo or a misremembered word), for "did you mean" hints.
pub fn suggest(key: &str) -> Option<&'static str> {
    let best = KEYS
        .iter()
        .filter(|d| !d.is_pattern())
        .flat_map(|d| std::iter::once(d.name).chain(d.aliases.iter().copied()))
        .map(|name| (edit_distance(key, name), name))
        .min_by_key(|(d, _)| *d)?;
    // A third of the key may differ: catches typos and a swapped word,
    // not an unrelated key that merely shares the prefix.
    (best.0 <= (key.len() / 3).clamp(2, 8)).then_some(best.1)
}

/// Levenshtein distance (keys are short; O(n*m) is fine).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_and_environment_names_are_unique() {
        let mut names = HashSet::new();
        let mut envs = HashSet::new();
        for d in KEYS {
            assert!(names.insert(d.name), "{} twice", d.name);
            for a in d.aliases {
                assert!(names.insert(a), "{a} twice");
            }
            for e in d.env_names() {
                assert!(envs.insert(e.clone()), "{e} twice");
            }
            // Alluxio's S3 credentials keys are the only others it reads.
            assert!(
                d.name.starts_with("alluxio.")
                    || d.name.starts_with("primacy.")
                    || S3_KEYS.contains(&d.name),
                "{}",
                d.name
            );
        }
    }

    #[test]
    fn every_default_parses_as_its_kind() {
        for d in KEYS {
            if let Some(v) = d.default {
                super::super::typed::parse_kind(d.kind, v)
                    .unwrap_or_else(|e| panic!("{} default {v:?}: {e}", d.name));
            }
        }
    }

    #[test]
    fn the_journal_crates_keys_are_ours() {
        use journal_raft::config as raft;
        for k in [
            raft::KEY_ADDRESSES,
            raft::KEY_HOSTNAME,
            raft::KEY_PORT,
            raft::KEY_FOLDER,
            raft::KEY_ELECTION_MIN,
            raft::KEY_ELECTION_MAX,
            raft::KEY_CHUNK,
            raft::KEY_CHECKPOINT_PERIOD,
            raft::KEY_MAX_MESSAGE,
            raft::KEY_CLUSTER_ID,
            raft::KEY_MEMBER_ID,
            election_zk::config::ADDRESS_KEY,
            election_zk::config::ELECTION_PATH_KEY,
            election_zk::config::LEADER_PATH_KEY,
            election_zk::config::SESSION_TIMEOUT_KEY,
            election_zk::config::CONNECTION_TIMEOUT_KEY,
            election_zk::config::POLICY_KEY,
            journal_ufs::store::FOLDER_KEY,
        ] {
            assert!(lookup(k).is_some(), "{k} is not registered");
        }
    }

    #[test]
    fn patterns_aliases_and_suggestions() {
        assert_eq!(
            lookup("alluxio.master.nameservices.ns1").map(|(d, _)| d.name),
            Some(NAMESERVICES)
        );
        assert_eq!(
            lookup("alluxio.master.rpc.address.ns1.m1").map(|(d, k)| (d.name, k)),
            Some((
                NAMESERVICE_ADDRESS,
                "alluxio.master.rpc.address.ns1.m1".to_string()
            ))
        );
        assert!(lookup("alluxio.master.rpc.address.ns1").is_none());
        assert_eq!(
            lookup("primacy.cluster.id").map(|(_, k)| k),
            Some(CLUSTER_ID.to_string())
        );
        assert_eq!(suggest("alluxio.master.hostnme"), Some(MASTER_HOSTNAME));
        assert_eq!(suggest("alluxio.zookeeper.adress"), Some(ZK_ADDRESS));
        assert_eq!(suggest("alluxio.security.authentication.type"), None);
        assert_eq!(
            KEYS[0].env_names(),
            vec!["ALLUXIO_MASTER_HOSTNAME", "PRIMACY_MASTER_HOSTNAME"]
        );
    }
}
