//! Three masters of one deployment with a fault-injecting TCP proxy on
//! every peer link (embedded: one per direction and pair) or on every
//! master's ZooKeeper connection (ufs-zk), and the ZooKeeper server.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use journal_core::testkit::TcpProxy;
use master::client::{ClientOptions, Discovery, MasterClient};
use master::config::RetrySettings;

use super::procs::{MasterProc, ZooKeeperProc};
use super::{ChaosError, Deployment};

fn port() -> Result<u16, ChaosError> {
    journal_core::ports::free_loopback_port().map_err(|e| ChaosError::io("find a free port", e))
}

fn flags(pairs: &[(&str, String)]) -> Vec<String> {
    pairs
        .iter()
        .flat_map(|(k, v)| ["-D".to_string(), format!("{k}={v}")])
        .collect()
}

/// The ZooKeeper session timeout the ufs-zk masters run with.
pub const ZK_SESSION: Duration = Duration::from_secs(2);
/// The embedded journal's upper election timeout (primacy's default).
pub const ELECTION_MAX: Duration = Duration::from_secs(2);

/// Entries between snapshots / checkpoints: small, so a run of a few
/// hundred writes takes several, and restarted members install them.
pub const CHECKPOINT_PERIOD: &str = "100";

/// One run's processes and proxies.
pub struct Cluster {
    /// The deployment.
    pub deployment: Deployment,
    /// The masters.
    pub masters: Vec<MasterProc>,
    /// ufs-zk: the server.
    pub zk: Option<ZooKeeperProc>,
    /// Embedded: (from, to) → the proxy `from` dials `to` through.
    pub peer_proxies: BTreeMap<(usize, usize), TcpProxy>,
    /// ufs-zk: master i's proxy to ZooKeeper.
    pub zk_proxies: Vec<TcpProxy>,
    primacy: PathBuf,
}

impl Cluster {
    /// Creates (does not format or start) the deployment under `dir`.
    pub async fn create(
        deployment: Deployment,
        n: usize,
        dir: &Path,
        primacy: &Path,
    ) -> Result<Cluster, ChaosError> {
        let mut masters = Vec::new();
        let mut peer_proxies = BTreeMap::new();
        let mut zk_proxies = Vec::new();
        let mut zk = None;
        let proxy = |addr: String| async move {
            let target: SocketAddr = addr
                .parse()
                .map_err(|_| ChaosError::Setup(format!("bad address {addr}")))?;
            TcpProxy::start(target)
                .await
                .map_err(|e| ChaosError::io("start a proxy", e))
        };
        match deployment {
            Deployment::Embedded => {
                let peers: Vec<String> = (0..n)
                    .map(|_| port().map(|p| format!("127.0.0.1:{p}")))
                    .collect::<Result<_, _>>()?;
                for from in 0..n {
                    for (to, target) in peers.iter().enumerate() {
                        if from != to {
                            peer_proxies.insert((from, to), proxy(target.clone()).await?);
                        }
                    }
                }
                for (i, peer) in peers.iter().enumerate() {
                    let via: Vec<String> = (0..n)
                        .filter(|&j| j != i)
                        .map(|j| format!("{}={}", peers[j], peer_proxies[&(i, j)].local_addr()))
                        .collect();
                    let (rpc, web) = (port()?, port()?);
                    let data = dir.join(format!("m{}", i + 1));
                    let peer_port = peer.rsplit(':').next().unwrap_or_default().to_string();
                    let args = flags(&[
                        ("alluxio.master.journal.type", "EMBEDDED".into()),
                        ("alluxio.master.embedded.journal.addresses", peers.join(",")),
                        ("alluxio.master.hostname", "127.0.0.1".into()),
                        ("alluxio.master.rpc.port", rpc.to_string()),
                        ("alluxio.master.web.port", web.to_string()),
                        ("alluxio.master.embedded.journal.port", peer_port),
                        ("alluxio.master.journal.folder", data.display().to_string()),
                        (
                            "primacy.testing.embedded.journal.connect.via",
                            via.join(","),
                        ),
                        (
                            "alluxio.master.journal.checkpoint.period.entries",
                            CHECKPOINT_PERIOD.into(),
                        ),
                    ]);
                    masters.push(MasterProc::new(
                        format!("m{}", i + 1),
                        rpc,
                        web,
                        args,
                        dir.join(format!("m{}.log", i + 1)),
                    ));
                }
            }
            Deployment::UfsZk => {
                let zdir = dir.join("zookeeper");
                std::fs::create_dir_all(&zdir)
                    .map_err(|e| ChaosError::io("create the ZooKeeper dir", e))?;
                let server = ZooKeeperProc::new(zdir)?;
                let folder = format!("file://{}/journal", dir.display());
                for i in 0..n {
                    let p = proxy(server.address()).await?;
                    let (rpc, web) = (port()?, port()?);
                    let args = flags(&[
                        ("alluxio.master.journal.type", "UFS".into()),
                        ("alluxio.master.journal.folder", folder.clone()),
                        ("alluxio.zookeeper.enabled", "true".into()),
                        ("alluxio.zookeeper.address", p.local_addr().to_string()),
                        (
                            "alluxio.zookeeper.session.timeout",
                            format!("{}ms", ZK_SESSION.as_millis()),
                        ),
                        ("alluxio.master.hostname", "127.0.0.1".into()),
                        ("alluxio.master.rpc.port", rpc.to_string()),
                        ("alluxio.master.web.port", web.to_string()),
                        (
                            "alluxio.master.journal.checkpoint.period.entries",
                            CHECKPOINT_PERIOD.into(),
                        ),
                    ]);
                    zk_proxies.push(p);
                    masters.push(MasterProc::new(
                        format!("m{}", i + 1),
                        rpc,
                        web,
                        args,
                        dir.join(format!("m{}.log", i + 1)),
                    ));
                }
                zk = Some(server);
            }
        }
        Ok(Cluster {
            deployment,
            masters,
            zk,
            peer_proxies,
            zk_proxies,
            primacy: primacy.to_path_buf(),
        })
    }

    /// Starts ZooKeeper (ufs-zk), formats, starts every master.
    pub fn format_and_start(&mut self, dir: &Path) -> Result<(), ChaosError> {
        if let Some(zk) = self.zk.as_mut() {
            zk.start()?;
        }
        let formatted = match self.deployment {
            Deployment::Embedded => self.masters.len(),
            Deployment::UfsZk => 1,
        };
        for m in &self.masters[..formatted] {
            let mut args = vec!["format".to_string()];
            args.extend(m.args.iter().cloned());
            let out = std::process::Command::new(&self.primacy)
                .args(&args)
                .current_dir(dir)
                .output()
                .map_err(|e| ChaosError::io("run primacy format", e))?;
            if !out.status.success() {
                return Err(ChaosError::Setup(format!(
                    "primacy format for {} failed: {}{}",
                    m.name,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                )));
            }
        }
        for i in 0..self.masters.len() {
            self.start(i)?;
        }
        Ok(())
    }

    /// Starts master `i` unless it runs.
    pub fn start(&mut self, i: usize) -> Result<(), ChaosError> {
        let primacy = self.primacy.clone();
        self.masters[i].start(&primacy)
    }

    /// Every master's RPC address.
    pub fn addresses(&self) -> Vec<String> {
        self.masters.iter().map(MasterProc::address).collect()
    }

    /// A client that finds the primary by asking every master, retrying
    /// for at most `retry_for` per call.
    pub fn client(&self, retry_for: Duration) -> MasterClient {
        MasterClient::new(
            Discovery::Masters(self.addresses()),
            ClientOptions {
                retry: RetrySettings {
                    max_duration: retry_for,
                    base_sleep: Duration::from_millis(20),
                    max_sleep: Duration::from_millis(300),
                },
                connect_timeout: Duration::from_secs(1),
                // the campaign's masters run without authentication
                credentials: Default::default(),
            },
        )
    }

    /// The running, unpaused master answering PRIMARY with the highest
    /// epoch, if any.
    pub async fn primary(&self) -> Option<usize> {
        let client = self.client(Duration::from_millis(500));
        let mut best: Option<(usize, u64)> = None;
        for (i, m) in self.masters.iter().enumerate() {
            if !m.running() || m.paused() {
                continue;
            }
            let probe =
                tokio::time::timeout(Duration::from_secs(1), client.probe(&m.address())).await;
            if let Ok(Ok(info)) = probe {
                if info.role == "PRIMARY" && best.is_none_or(|(_, e)| info.epoch > e) {
                    best = Some((i, info.epoch));
                }
            }
        }
        best.map(|(i, _)| i)
    }

    /// Waits (bounded) for a primary.
    pub async fn wait_primary(&self, bound: Duration) -> Option<usize> {
        let deadline = Instant::now() + bound;
        loop {
            if let Some(p) = self.primary().await {
                return Some(p);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Blocks (true) or unblocks every peer link to and from master `i`.
    pub fn isolate(&self, i: usize, cut: bool) {
        for ((a, b), p) in &self.peer_proxies {
            if *a == i || *b == i {
                set(p, cut);
            }
        }
    }

    /// Blocks or unblocks the links between `a` and `b`, both directions.
    pub fn cut_link(&self, a: usize, b: usize, cut: bool) {
        for key in [(a, b), (b, a)] {
            if let Some(p) = self.peer_proxies.get(&key) {
                set(p, cut);
            }
        }
    }

    /// Blocks or unblocks master `i`'s ZooKeeper connection.
    pub fn cut_zk(&self, i: usize, cut: bool) {
        if let Some(p) = self.zk_proxies.get(i) {
            set(p, cut);
        }
    }

    /// Unblocks every proxy, resumes every paused master, restarts every
    /// master and ZooKeeper that is down.
    pub fn heal(&mut self) -> Result<(), ChaosError> {
        for p in self.peer_proxies.values().chain(&self.zk_proxies) {
            p.unblock();
        }
        if let Some(zk) = self.zk.as_mut() {
            zk.start()?;
        }
        for i in 0..self.masters.len() {
            self.masters[i].resume();
            self.masters[i].failpoints.clear();
            self.start(i)?;
        }
        Ok(())
    }
}

fn set(p: &TcpProxy, cut: bool) {
    if cut {
        p.block();
    } else {
        p.unblock();
    }
}
