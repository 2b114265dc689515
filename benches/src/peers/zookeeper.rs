//! ZooKeeper from the Debian package, as a peer (1 or 3 servers on
//! loopback; persistent creates through its client, `zookeeper-client`)
//! and as the election service of the UFS + ZooKeeper backend.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use zookeeper_client as zk;

use crate::harness::procs::Proc;

/// How to install the peer when it is missing.
pub const INSTALL: &str = "apt-get install -y zookeeper";

/// Running ZooKeeper servers, killed when dropped.
pub struct ZkServers {
    procs: Vec<Proc>,
    ports: Vec<u16>,
}

/// Why the servers could not start.
#[derive(Debug, thiserror::Error)]
pub enum ZkError {
    /// The Debian package is missing.
    #[error("ZooKeeper is not installed ({INSTALL})")]
    NotInstalled,
    /// Preparing or starting failed.
    #[error("ZooKeeper: {0}")]
    Start(String),
}

impl ZkServers {
    /// Starts `n` servers (standalone when 1, an ensemble otherwise) with
    /// their data under `dir`, and returns once a quorum serves. Each uses
    /// the Debian package's defaults for durability (transaction log
    /// fsynced before an acknowledgement).
    pub fn start(n: usize, dir: &Path) -> Result<ZkServers, ZkError> {
        if !Path::new(election_zk::launcher::ZOOKEEPER_JAR).exists() {
            return Err(ZkError::NotInstalled);
        }
        let err = |e: std::io::Error| ZkError::Start(e.to_string());
        let client = journal_core::ports::free_loopback_ports(n).map_err(err)?;
        let quorum = journal_core::ports::free_loopback_ports(2 * n).map_err(err)?;
        let peers: String = (0..n)
            .map(|i| {
                format!(
                    "server.{}=127.0.0.1:{}:{}\n",
                    i + 1,
                    quorum[2 * i],
                    quorum[2 * i + 1]
                )
            })
            .collect();
        let mut procs = Vec::new();
        for (i, port) in client.iter().enumerate() {
            let sdir = dir.join(format!("zk{}", i + 1));
            std::fs::create_dir_all(&sdir).map_err(err)?;
            let args = election_zk::launcher::prepare_standalone(&sdir, *port)
                .map_err(|e| ZkError::Start(e.to_string()))?;
            if n > 1 {
                // The standalone configuration plus the ensemble's members.
                let cfg = sdir.join("zoo.cfg");
                let mut text = std::fs::read_to_string(&cfg).map_err(err)?;
                text.push_str(&peers);
                std::fs::write(&cfg, text).map_err(err)?;
                std::fs::write(sdir.join("data").join("myid"), format!("{}\n", i + 1))
                    .map_err(err)?;
            }
            let name = format!("zookeeper-{n}-s{}", i + 1);
            let log = sdir.join("zookeeper.log");
            procs.push(Proc::spawn(&name, Path::new("java"), &args, &log, false).map_err(err)?);
        }
        let servers = ZkServers {
            procs,
            ports: client,
        };
        let deadline = Instant::now() + Duration::from_secs(90);
        while !servers
            .ports
            .iter()
            .all(|p| election_zk::launcher::is_serving(*p))
        {
            if Instant::now() > deadline {
                let tail = servers
                    .procs
                    .first()
                    .map(|p| p.log_tail(20))
                    .unwrap_or_default();
                return Err(ZkError::Start(format!("not serving within 90 s:\n{tail}")));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(servers)
    }

    /// `host:port,...` of every server.
    pub fn address(&self) -> String {
        self.ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl Drop for ZkServers {
    fn drop(&mut self) {
        for p in &mut self.procs {
            p.kill9();
        }
    }
}

/// `sessions` ZooKeeper sessions to `address`, for a closed loop.
pub async fn sessions(address: &str, sessions: usize) -> Result<Vec<Arc<zk::Client>>, String> {
    let mut out = Vec::new();
    for _ in 0..sessions.max(1) {
        let c = zk::Client::connector()
            .with_session_timeout(Duration::from_secs(10))
            .connect(address)
            .await
            .map_err(|e| format!("connect to ZooKeeper at {address}: {e}"))?;
        out.push(Arc::new(c));
    }
    Ok(out)
}

/// Creates `path` (persistent, open ACL) with `data`; the peer's nearest
/// operation to a journal append and to a file create.
pub async fn create(client: &zk::Client, path: &str, data: &[u8]) -> Result<(), String> {
    let mode = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    client
        .create(path, data, &mode)
        .await
        .map(|_| ())
        .map_err(|e| format!("create {path}: {e}"))
}

/// Creates `path` if it is missing (a parent for the creates).
pub async fn ensure(client: &zk::Client, path: &str) -> Result<(), String> {
    let mode = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    client
        .mkdir(path, &mode)
        .await
        .map_err(|e| format!("mkdir {path}: {e}"))
}
