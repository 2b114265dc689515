//! [`MasterConfig`]: every registered key parsed once, at startup, into
//! typed fields. A malformed value anywhere fails the load, naming the key,
//! the value and its source.

use std::collections::BTreeMap;
use std::time::Duration;

use election_zk::config::ConnectionErrorPolicy;

use super::error::ConfigError;
use super::load::{self, LoadOptions, Properties, Source, UnknownKey};
use super::registry::{self as r, Kind};
use super::security::SecuritySettings;
use super::typed::{parse_kind, Value};

/// The journal backend named by `alluxio.master.journal.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JournalType {
    /// The embedded Raft journal.
    Embedded,
    /// The UFS journal (with ZooKeeper or as a single master).
    Ufs,
}

/// Journal settings shared by both backends. Its `Debug` shows the store
/// options' keys only (their values hold credentials).
#[derive(Clone, PartialEq)]
pub struct JournalSettings {
    /// `alluxio.master.journal.type`, when set.
    pub kind: Option<JournalType>,
    /// `alluxio.master.journal.folder`, or `${alluxio.work.dir}/journal`.
    pub folder: Option<String>,
    /// `alluxio.master.journal.tailer.sleep.time`.
    pub tailer_sleep: Duration,
    /// `alluxio.master.journal.checkpoint.period.entries`.
    pub checkpoint_period_entries: u64,
    /// `primacy.master.journal.checkpoint.retention`.
    pub checkpoint_retention: u64,
    /// `primacy.master.journal.max.pending.proposals`.
    pub max_pending_proposals: u64,
    /// `primacy.master.journal.max.pending.bytes`, bytes.
    pub max_pending_bytes: u64,
    /// `primacy.master.journal.ufs.staging.grace`.
    pub staging_grace: Duration,
    /// The journal folder's store options: every
    /// `alluxio.master.journal.ufs.option.<option>` as `<option>`, over the
    /// Alluxio S3 keys (`aws.accessKeyId`, `alluxio.underfs.s3.endpoint`,
    /// ...) under their own names when the folder is `s3://` or `s3a://`.
    pub store_options: BTreeMap<String, String>,
}

impl std::fmt::Debug for JournalSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalSettings")
            .field("kind", &self.kind)
            .field(
                "folder",
                &self.folder.as_deref().map(journal_ufs::store::redact_url),
            )
            .field("tailer_sleep", &self.tailer_sleep)
            .field("checkpoint_period_entries", &self.checkpoint_period_entries)
            .field("checkpoint_retention", &self.checkpoint_retention)
            .field(
                "store_options",
                &journal_ufs::config::redacted_options(&self.store_options),
            )
            .finish()
    }
}

/// Embedded (Raft) journal settings.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddedSettings {
    /// `alluxio.master.embedded.journal.addresses` (empty when unset).
    pub addresses: Vec<String>,
    /// `alluxio.master.embedded.journal.port`.
    pub port: u16,
    /// `alluxio.master.embedded.journal.election.timeout.min`.
    pub election_timeout_min: Duration,
    /// `alluxio.master.embedded.journal.election.timeout.max`.
    pub election_timeout_max: Duration,
    /// `alluxio.master.embedded.journal.snapshot.replication.chunk.size`, bytes.
    pub snapshot_chunk_size: u64,
    /// `alluxio.master.embedded.journal.transport.max.inbound.message.size`, bytes.
    pub max_message_size: u64,
    /// `primacy.embedded.journal.member.id`.
    pub member_id: Option<u64>,
    /// `primacy.embedded.journal.join`.
    pub join: bool,
    /// `primacy.testing.embedded.journal.connect.via` as (peer, via) pairs
    /// (empty when unset); a testing knob.
    pub connect_via: Vec<(String, String)>,
}

/// ZooKeeper settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ZooKeeperSettings {
    /// `alluxio.zookeeper.enabled`.
    pub enabled: bool,
    /// `alluxio.zookeeper.address` (empty when unset).
    pub address: Vec<String>,
    /// `alluxio.zookeeper.session.timeout`.
    pub session_timeout: Duration,
    /// `alluxio.zookeeper.connection.timeout`.
    pub connection_timeout: Duration,
    /// `alluxio.zookeeper.election.path`.
    pub election_path: String,
    /// `alluxio.zookeeper.leader.path`.
    pub leader_path: String,
    /// `alluxio.zookeeper.leader.connection.error.policy`.
    pub policy: ConnectionErrorPolicy,
}

/// Client retry settings (`alluxio.user.rpc.retry.*`).
#[derive(Debug, Clone, PartialEq)]
pub struct RetrySettings {
    /// `alluxio.user.rpc.retry.max.duration`.
    pub max_duration: Duration,
    /// `alluxio.user.rpc.retry.base.sleep`.
    pub base_sleep: Duration,
    /// `alluxio.user.rpc.retry.max.sleep`.
    pub max_sleep: Duration,
}

/// Worker settings.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerSettings {
    /// `alluxio.worker.hostname`.
    pub hostname: Option<String>,
    /// `alluxio.worker.rpc.port`.
    pub rpc_port: u16,
    /// `alluxio.worker.data.folder`, or `${alluxio.work.dir}/worker`.
    pub data_folder: Option<String>,
    /// `alluxio.worker.block.heartbeat.interval`.
    pub heartbeat_interval: Duration,
}

/// The whole service's configuration: typed settings plus every raw value
/// with its source (for `info report` and error messages).
#[derive(Debug, Clone)]
pub struct MasterConfig {
    /// `alluxio.master.hostname`.
    pub hostname: Option<String>,
    /// `alluxio.master.rpc.port`.
    pub rpc_port: u16,
    /// `alluxio.master.web.port`.
    pub web_port: u16,
    /// `primacy.master.standby.max.lag`: entries a standby may be behind
    /// the primary and still count as caught up.
    pub standby_max_lag: u64,
    /// `alluxio.master.cluster.id` (alias `primacy.cluster.id`).
    pub cluster_id: Option<String>,
    /// `alluxio.work.dir`.
    pub work_dir: Option<String>,
    /// Journal settings.
    pub journal: JournalSettings,
    /// Embedded journal settings.
    pub embedded: EmbeddedSettings,
    /// ZooKeeper settings.
    pub zookeeper: ZooKeeperSettings,
    /// `alluxio.master.rpc.addresses` (empty when unset).
    pub rpc_addresses: Vec<String>,
    /// `alluxio.master.worker.timeout`.
    pub worker_timeout: Duration,
    /// Client retry settings.
    pub user_retry: RetrySettings,
    /// Nameservices: name to the RPC addresses of its masters, in the order
    /// `alluxio.master.nameservices.<name>` lists their ids.
    pub nameservices: BTreeMap<String, Vec<String>>,
    /// Worker settings.
    pub worker: WorkerSettings,
    /// Authentication settings and the cluster secret.
    pub security: SecuritySettings,
    properties: Properties,
    unknown: Vec<UnknownKey>,
}

impl MasterConfig {
    /// Loads defaults < site file < environment < `-D` flags (see
    /// `docs/configuration.md`). Unknown `alluxio.*`/`primacy.*` keys are
    /// warned about and kept in [`MasterConfig::unknown_keys`].
    ///
    /// Errors: a missing site file in a directory given by `--conf` or
    /// `PRIMACY_CONF_DIR`, unreadable or malformed files, and any malformed
    /// value, naming key, value and source. Contradictions between keys are
    /// checked by [`MasterConfig::backend`] (a worker does not need a journal).
    pub fn load(opts: &LoadOptions) -> Result<MasterConfig, ConfigError> {
        let (props, unknown) = load::layer(opts)?;
        let mut cfg = Self::from_layers(props, unknown)?;
        cfg.load_secret(
            opts.env
                .get(journal_raft::auth::SECRET_ENV)
                .map(String::as_str),
        )?;
        Ok(cfg)
    }

    /// Defaults plus `pairs` as if given with `-D` (no file, no environment).
    pub fn from_pairs<K: AsRef<str>, V: AsRef<str>>(
        pairs: &[(K, V)],
    ) -> Result<MasterConfig, ConfigError> {
        let flags: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.as_ref().to_string(), v.as_ref().to_string()))
            .collect();
        let (props, unknown) = load::layer_flags(Properties::default(), &flags)?;
        let mut cfg = Self::from_layers(props, unknown)?;
        cfg.load_secret(None)?;
        Ok(cfg)
    }

    /// Defaults plus `text` read as a `primacy-site.properties` file would
    /// be (`key=value` lines, `#` comments, `${key}` references; see
    /// `docs/configuration.md`), and nothing else: no file, no environment.
    /// For embedders that keep their settings in code. Errors name the line
    /// (`line N of the properties text`) and the key.
    pub fn from_properties(text: &str) -> Result<MasterConfig, ConfigError> {
        let (props, unknown) = load::layer_text(text)?;
        let mut cfg = Self::from_layers(props, unknown)?;
        cfg.load_secret(None)?;
        Ok(cfg)
    }

    fn from_layers(
        props: Properties,
        unknown: Vec<UnknownKey>,
    ) -> Result<MasterConfig, ConfigError> {
        let t = Typed::parse(&props)?;
        let work_dir = t.text(r::WORK_DIR);
        let under_work_dir = |sub: &str| {
            work_dir
                .as_ref()
                .map(|w| format!("{}/{sub}", w.trim_end_matches('/')))
        };
        let mut journal = JournalSettings {
            kind: t.text(r::JOURNAL_TYPE).map(|k| match k.as_str() {
                "EMBEDDED" => JournalType::Embedded,
                _ => JournalType::Ufs,
            }),
            folder: t
                .text(r::JOURNAL_FOLDER)
                .or_else(|| under_work_dir("journal")),
            tailer_sleep: t.duration(r::TAILER_SLEEP),
            checkpoint_period_entries: t.number(r::CHECKPOINT_PERIOD).unwrap_or_default(),
            checkpoint_retention: t.number(r::CHECKPOINT_RETENTION).unwrap_or_default(),
            max_pending_proposals: t.number(r::MAX_PENDING_PROPOSALS).unwrap_or_default(),
            max_pending_bytes: t.number(r::MAX_PENDING_BYTES).unwrap_or_default(),
            staging_grace: t.duration(r::STAGING_GRACE),
            store_options: BTreeMap::new(),
        };
        journal.store_options = store_options(&t, journal.folder.as_deref());
        let embedded = EmbeddedSettings {
            addresses: t.list(r::EMBEDDED_ADDRESSES),
            port: t.port(r::EMBEDDED_PORT),
            election_timeout_min: t.duration(r::ELECTION_MIN),
            election_timeout_max: t.duration(r::ELECTION_MAX),
            snapshot_chunk_size: t.number(r::SNAPSHOT_CHUNK).unwrap_or_default(),
            max_message_size: t.number(r::MAX_MESSAGE).unwrap_or_default(),
            member_id: t.number(r::MEMBER_ID),
            join: t.flag(r::EMBEDDED_JOIN),
            connect_via: connect_via(&props, &t)?,
        };
        let zookeeper = ZooKeeperSettings {
            enabled: t.flag(r::ZK_ENABLED),
            address: t.list(r::ZK_ADDRESS),
            session_timeout: t.duration(r::ZK_SESSION_TIMEOUT),
            connection_timeout: t.duration(r::ZK_CONNECTION_TIMEOUT),
            election_path: t.text(r::ZK_ELECTION_PATH).unwrap_or_default(),
            leader_path: t.text(r::ZK_LEADER_PATH).unwrap_or_default(),
            policy: match t.text(r::ZK_POLICY).as_deref() {
                Some("STANDARD") => ConnectionErrorPolicy::Standard,
                _ => ConnectionErrorPolicy::Session,
            },
        };
        let nameservices = nameservices(&props, &t)?;
        Ok(MasterConfig {
            hostname: t.text(r::MASTER_HOSTNAME),
            rpc_port: t.port(r::MASTER_RPC_PORT),
            web_port: t.port(r::MASTER_WEB_PORT),
            standby_max_lag: t.number(r::STANDBY_MAX_LAG).unwrap_or_default(),
            cluster_id: t.text(r::CLUSTER_ID),
            journal,
            embedded,
            zookeeper,
            rpc_addresses: t.list(r::MASTER_RPC_ADDRESSES),
            worker_timeout: t.duration(r::WORKER_TIMEOUT),
            user_retry: RetrySettings {
                max_duration: t.duration(r::RETRY_MAX_DURATION),
                base_sleep: t.duration(r::RETRY_BASE_SLEEP),
                max_sleep: t.duration(r::RETRY_MAX_SLEEP),
            },
            nameservices,
            worker: WorkerSettings {
                hostname: t.text(r::WORKER_HOSTNAME),
                rpc_port: t.port(r::WORKER_RPC_PORT),
                data_folder: t
                    .text(r::WORKER_DATA_FOLDER)
                    .or_else(|| under_work_dir("worker")),
                heartbeat_interval: t.duration(r::WORKER_HEARTBEAT),
            },
            security: SecuritySettings {
                secret_file: t.text(r::SECRET_FILE),
                peer_auth: t.flag(r::PEER_AUTH),
                rpc_auth: t.flag(r::RPC_AUTH),
                secret: None,
            },
            work_dir,
            properties: props,
            unknown,
        })
    }

    /// Every raw value a source set, with its source.
    pub fn properties(&self) -> &Properties {
        &self.properties
    }

    /// The unknown `alluxio.*`/`primacy.*` keys that were set (and ignored).
    pub fn unknown_keys(&self) -> &[UnknownKey] {
        &self.unknown
    }

    /// Where `key`'s value came from (`Source::Default` when no source set it).
    pub fn source_of(&self, key: &str) -> Source {
        self.properties
            .get(key)
            .map_or(Source::Default, |s| s.source.clone())
    }

    /// This master's RPC address, `hostname:rpc.port` (`localhost` when no
    /// hostname is set, which only a single UFS master accepts).
    pub fn rpc_address(&self) -> String {
        format!(
            "{}:{}",
            self.hostname.as_deref().unwrap_or("localhost"),
            self.rpc_port
        )
    }

    /// A `Malformed` error for `key` with its effective value and source.
    pub(crate) fn malformed(&self, key: &str, detail: impl Into<String>) -> ConfigError {
        let (value, origin) = self
            .properties
            .effective(key)
            .map_or((String::new(), Source::Default), |s| (s.value, s.source));
        ConfigError::Malformed {
            key: key.to_string(),
            value,
            origin,
            detail: detail.into(),
        }
    }

    /// A `Contradiction` error for `key` with its effective value and source.
    pub(crate) fn contradiction(&self, key: &str, detail: impl Into<String>) -> ConfigError {
        let (value, origin) = self
            .properties
            .effective(key)
            .map_or((String::new(), Source::Default), |s| (s.value, s.source));
        ConfigError::Contradiction {
            key: key.to_string(),
            value,
            origin,
            detail: detail.into(),
        }
    }
}

/// Every registered key with a value, parsed.
struct Typed(BTreeMap<String, Value>);

impl Typed {
    fn parse(props: &Properties) -> Result<Typed, ConfigError> {
        let mut out = BTreeMap::new();
        for d in r::KEYS.iter().filter(|d| !d.is_pattern()) {
            if let Some(s) = props.effective(d.name) {
                out.insert(d.name.to_string(), parse_setting(d.name, d.kind, &s)?);
            }
        }
        // Pattern keys are parsed where they are read (nameservices), but
        // every instance is checked here so a bad one fails the load.
        for (key, s) in props.iter() {
            if let Some((d, _)) = r::lookup(key).filter(|(d, _)| d.is_pattern()) {
                out.insert(key.clone(), parse_setting(key, d.kind, s)?);
            }
        }
        Ok(Typed(out))
    }

    // Every key read below has a registered kind and (where these helpers
    // fall back) a default that a registry test parses, so the fallbacks are
    // unreachable in practice; they keep the code free of panics.
    fn text(&self, key: &str) -> Option<String> {
        self.0.get(key).and_then(Value::as_text).map(str::to_string)
    }
    fn port(&self, key: &str) -> u16 {
        self.0.get(key).and_then(Value::as_port).unwrap_or_default()
    }
    fn number(&self, key: &str) -> Option<u64> {
        self.0.get(key).and_then(Value::as_number)
    }
    fn flag(&self, key: &str) -> bool {
        self.0.get(key).and_then(Value::as_bool).unwrap_or_default()
    }
    fn duration(&self, key: &str) -> Duration {
        self.0
            .get(key)
            .and_then(Value::as_duration)
            .unwrap_or_default()
    }
    fn list(&self, key: &str) -> Vec<String> {
        self.0
            .get(key)
            .and_then(Value::as_list)
            .map(<[String]>::to_vec)
            .unwrap_or_default()
    }
}

fn parse_setting(key: &str, kind: Kind, s: &load::Setting) -> Result<Value, ConfigError> {
    parse_kind(kind, &s.value).map_err(|detail| ConfigError::Malformed {
        key: key.to_string(),
        value: s.value.clone(),
        origin: s.source.clone(),
        detail,
    })
}

/// The journal folder's store options (see [`JournalSettings::store_options`]).
fn store_options(t: &Typed, folder: Option<&str>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let s3 = folder.is_some_and(|f| {
        let f = f.trim().to_ascii_lowercase();
        f.starts_with("s3://") || f.starts_with("s3a://")
    });
    if s3 {
        for key in r::S3_KEYS {
            if let Some(v) = t.0.get(*key) {
                let text = match v {
                    Value::Bool(b) => b.to_string(),
                    other => other.as_text().unwrap_or_default().to_string(),
                };
                out.insert(key.to_string(), text);
            }
        }
    }
    let prefix = r::lookup("alluxio.master.journal.ufs.option.x")
        .and_then(|(d, _)| d.rest_prefix())
        .unwrap_or("alluxio.master.journal.ufs.option.");
    for (key, v) in &t.0 {
        if let Some(option) = key.strip_prefix(prefix) {
            out.insert(
                option.to_string(),
                v.as_text().unwrap_or_default().to_string(),
            );
        }
    }
    out
}

/// Resolves `alluxio.master.nameservices.<name>` through
/// `alluxio.master.rpc.address.<name>.<id>`; a listed id without an
/// address is an error naming the missing key.
/// `primacy.testing.embedded.journal.connect.via`: `peer=via` pairs, each
/// side a `host:port`.
fn connect_via(props: &Properties, t: &Typed) -> Result<Vec<(String, String)>, ConfigError> {
    let Some(raw) = t.text(r::CONNECT_VIA) else {
        return Ok(Vec::new());
    };
    let malformed = |detail: String| {
        let s = props.get(r::CONNECT_VIA);
        ConfigError::Malformed {
            key: r::CONNECT_VIA.to_string(),
            value: raw.clone(),
            origin: s.map_or(Source::Default, |s| s.source.clone()),
            detail,
        }
    };
    raw.split(',')
        .map(|pair| {
            let (peer, via) = pair
                .split_once('=')
                .ok_or_else(|| malformed(format!("{pair:?} is not peer=via")))?;
            for a in [peer.trim(), via.trim()] {
                super::value::check_host_port(a).map_err(|e| malformed(format!("{a:?} {e}")))?;
            }
            Ok((peer.trim().to_string(), via.trim().to_string()))
        })
        .collect()
}

fn nameservices(
    props: &Properties,
    t: &Typed,
) -> Result<BTreeMap<String, Vec<String>>, ConfigError> {
    const PREFIX: &str = "alluxio.master.nameservices.";
    let mut out = BTreeMap::new();
    for (key, value) in &t.0 {
        let Some(name) = key.strip_prefix(PREFIX) else {
            continue;
        };
        let ids = value.as_list().unwrap_or_default();
        let mut addresses = Vec::new();
        for id in ids {
            let akey = format!("alluxio.master.rpc.address.{name}.{id}");
            match t
                .0
                .get(&akey)
                .and_then(Value::as_list)
                .and_then(|l| l.first())
            {
                Some(a) => addresses.push(a.clone()),
                None => {
                    let s = props.get(key);
                    return Err(ConfigError::Contradiction {
                        key: key.clone(),
                        value: s.map(|s| s.value.clone()).unwrap_or_default(),
                        origin: s.map_or(Source::Default, |s| s.source.clone()),
                        detail: format!("lists master {id:?} but {akey} is not set"),
                    });
                }
            }
        }
        out.insert(name.to_string(), addresses);
    }
    Ok(out)
}
