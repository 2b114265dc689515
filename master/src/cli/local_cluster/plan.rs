//! The cluster's layout: which journal, which ports, which directories, and
//! the `-D` flags each child and each client gets. Pure data, decided once
//! before anything starts, so a restarted master runs with exactly the
//! flags it was killed with.

use std::path::{Path, PathBuf};

use crate::config::{ConfigError, MasterConfig};

/// The journal (and election) the masters use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum JournalKind {
    /// The embedded Raft journal: each master keeps its own log.
    Embedded,
    /// One shared UFS folder, the primary elected through ZooKeeper.
    UfsZk,
    /// One UFS master, no election (a restart replaces a failover).
    Ufs,
}

impl JournalKind {
    /// How the summary names it.
    pub fn describe(self) -> &'static str {
        match self {
            JournalKind::Embedded => "embedded Raft journal",
            JournalKind::UfsZk => "UFS journal, ZooKeeper election",
            JournalKind::Ufs => "UFS journal, single master",
        }
    }
}

/// The ZooKeeper session timeout the masters use. Shorter than Alluxio's
/// 60 s (and primacy's 5 s default) because it bounds how soon a killed
/// primary's election node goes away, so the demonstration's failover.
pub const ZK_SESSION_TIMEOUT: &str = "2s";

/// The worker's heartbeat interval: short, so its re-registration with a
/// new primary shows up quickly.
const WORKER_HEARTBEAT: &str = "250ms";

/// One master: its name, ports and the flags it always runs with.
#[derive(Debug, Clone)]
pub struct MasterPlan {
    /// `m1`, `m2`, ...
    pub name: String,
    /// `alluxio.master.rpc.port`.
    pub rpc_port: u16,
    /// `alluxio.master.web.port`: its status page.
    pub web_port: u16,
    /// `-D key=value` arguments.
    pub flags: Vec<String>,
}

impl MasterPlan {
    /// `127.0.0.1:rpc_port`: as clients reach it and as it advertises itself.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.rpc_port)
    }

    /// Its status page.
    pub fn status_url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.web_port)
    }
}

/// Everything about the cluster that is fixed before it starts.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The working directory.
    pub dir: PathBuf,
    /// The journal.
    pub journal: JournalKind,
    /// The masters, in address-list order.
    pub masters: Vec<MasterPlan>,
    /// The worker's `-D` arguments.
    pub worker_flags: Vec<String>,
    /// The worker's address as it registers (`127.0.0.1:port`).
    pub worker_address: String,
    /// ZooKeeper's client port (`ufs-zk` only).
    pub zk_port: Option<u16>,
}

/// `n` distinct free TCP ports on 127.0.0.1. All are held open until the
/// last is picked, so none is handed out twice; once this returns another
/// process could take one before the child binds it (the child then fails
/// to start, and the launcher says so).
pub fn free_ports(n: usize) -> std::io::Result<Vec<u16>> {
    journal_core::ports::free_loopback_ports(n)
}

/// `-D key=value` arguments.
fn flags(pairs: &[(&str, String)]) -> Vec<String> {
    pairs
        .iter()
        .flat_map(|(k, v)| ["-D".to_string(), format!("{k}={v}")])
        .collect()
}

/// The client retry settings of the demonstration's clients and the
/// worker: short back-offs (capped at 500 ms) so the failover time seen is
/// mostly the cluster's, and a retry duration well past any failover.
pub fn retry_pairs() -> Vec<(&'static str, String)> {
    vec![
        ("alluxio.user.rpc.retry.max.duration", "60s".into()),
        ("alluxio.user.rpc.retry.base.sleep", "20ms".into()),
        ("alluxio.user.rpc.retry.max.sleep", "500ms".into()),
    ]
}

impl Plan {
    /// Picks free ports and lays out `n` masters of `journal` under `dir`.
    pub fn new(dir: &Path, journal: JournalKind, n: usize) -> std::io::Result<Plan> {
        let zk = usize::from(journal == JournalKind::UfsZk);
        let peer_count = if journal == JournalKind::Embedded {
            n
        } else {
            0
        };
        let mut ports = free_ports(zk + peer_count + 2 * n + 1)?.into_iter();
        let mut next = || ports.next().unwrap_or_default();
        let zk_port = (zk == 1).then(&mut next);
        let peers: Vec<u16> = (0..peer_count).map(|_| next()).collect();
        let peer_list = peers
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        let folder = format!("file://{}", dir.join("journal").display());
        let mut masters = Vec::with_capacity(n);
        for i in 0..n {
            let name = format!("m{}", i + 1);
            let rpc_port = next();
            let web_port = next();
            let mut pairs = vec![
                ("alluxio.master.hostname", "127.0.0.1".to_string()),
                ("alluxio.master.rpc.port", rpc_port.to_string()),
                ("alluxio.master.web.port", web_port.to_string()),
            ];
            match journal {
                JournalKind::Embedded => pairs.extend([
                    ("alluxio.master.journal.type", "EMBEDDED".to_string()),
                    (
                        "alluxio.master.embedded.journal.addresses",
                        peer_list.clone(),
                    ),
                    (
                        "alluxio.master.embedded.journal.port",
                        peers.get(i).copied().unwrap_or_default().to_string(),
                    ),
                    (
                        "alluxio.master.journal.folder",
                        dir.join(&name).display().to_string(),
                    ),
                ]),
                JournalKind::UfsZk => pairs.extend([
                    ("alluxio.master.journal.type", "UFS".to_string()),
                    ("alluxio.master.journal.folder", folder.clone()),
                    ("alluxio.zookeeper.enabled", "true".to_string()),
                    (
                        "alluxio.zookeeper.address",
                        format!("127.0.0.1:{}", zk_port.unwrap_or_default()),
                    ),
                    (
                        "alluxio.zookeeper.session.timeout",
                        ZK_SESSION_TIMEOUT.into(),
                    ),
                ]),
                JournalKind::Ufs => pairs.extend([
                    ("alluxio.master.journal.type", "UFS".to_string()),
                    ("alluxio.master.journal.folder", folder.clone()),
                ]),
            }
            masters.push(MasterPlan {
                name,
                rpc_port,
                web_port,
                flags: flags(&pairs),
            });
        }
        let worker_port = next();
        let mut plan = Plan {
            dir: dir.to_path_buf(),
            journal,
            masters,
            worker_flags: Vec::new(),
            worker_address: format!("127.0.0.1:{worker_port}"),
            zk_port,
        };
        let mut worker = plan.discovery_pairs();
        worker.extend(retry_pairs());
        worker.extend([
            ("alluxio.worker.hostname", "127.0.0.1".to_string()),
            ("alluxio.worker.rpc.port", worker_port.to_string()),
            (
                "alluxio.worker.data.folder",
                dir.join("worker").display().to_string(),
            ),
            (
                "alluxio.worker.block.heartbeat.interval",
                WORKER_HEARTBEAT.into(),
            ),
        ]);
        plan.worker_flags = flags(&worker);
        Ok(plan)
    }

    /// The log file of child `name` (`<dir>/logs/<name>.log`).
    pub fn log(&self, name: &str) -> PathBuf {
        self.dir.join("logs").join(format!("{name}.log"))
    }

    /// Every master's RPC address, comma-separated.
    pub fn rpc_addresses(&self) -> String {
        self.masters
            .iter()
            .map(MasterPlan::address)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// How clients and the worker find the primary: ZooKeeper's leader
    /// path with `ufs-zk` (as Alluxio clients do in that deployment), the
    /// address list otherwise.
    pub fn discovery_pairs(&self) -> Vec<(&'static str, String)> {
        match self.zk_port {
            Some(port) => vec![
                ("alluxio.zookeeper.enabled", "true".into()),
                ("alluxio.zookeeper.address", format!("127.0.0.1:{port}")),
            ],
            None => vec![("alluxio.master.rpc.addresses", self.rpc_addresses())],
        }
    }

    /// The configuration of the demonstration's clients.
    pub fn client_config(&self) -> Result<MasterConfig, ConfigError> {
        let mut pairs = self.discovery_pairs();
        pairs.extend(retry_pairs());
        MasterConfig::from_pairs(&pairs)
    }

    /// The masters that `primacy format` runs for: each embedded member
    /// formats its own directory; a shared UFS folder is formatted once.
    pub fn formatted(&self) -> &[MasterPlan] {
        match self.journal {
            JournalKind::Embedded => &self.masters,
            _ => &self.masters[..self.masters.len().min(1)],
        }
    }

    /// The flags that reach this cluster from a shell (`primacy fs`).
    pub fn shell_flags(&self) -> String {
        self.discovery_pairs()
            .iter()
            .map(|(k, v)| format!("-D {k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_master_gets_distinct_ports_and_the_journal_flags() {
        let dir = Path::new("/tmp/x");
        let plan = Plan::new(dir, JournalKind::Embedded, 3).expect("plan");
        let mut ports: Vec<u16> = plan
            .masters
            .iter()
            .flat_map(|m| [m.rpc_port, m.web_port])
            .collect();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 6);
        assert!(plan.masters[1]
            .flags
            .contains(&"alluxio.master.journal.folder=/tmp/x/m2".to_string()));
        assert_eq!(plan.formatted().len(), 3);
        let cfg = plan.client_config().expect("client config");
        assert_eq!(
            cfg.user_retry.max_sleep,
            std::time::Duration::from_millis(500)
        );

        let zk = Plan::new(dir, JournalKind::UfsZk, 3).expect("plan");
        assert_eq!(zk.formatted().len(), 1);
        assert!(zk.shell_flags().contains("alluxio.zookeeper.enabled=true"));
        assert!(zk
            .worker_flags
            .iter()
            .any(|f| f.starts_with("alluxio.zookeeper.address=127.0.0.1:")));
    }
}
