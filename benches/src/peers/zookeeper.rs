//! ZooKeeper from the Debian package, as a peer (1 or 3 servers on
//! loopback; persistent creates through its client, `zookeeper-client`)
//! and as the election service of the UFS + ZooKeeper backend.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use zookeeper_client as zk;

use crate::harness::procs::Proc;

/// How to install the peer when it is missing.
pub const INSTALL: &str = "apt-get install -y zookeeper";

/// Running ZooKeeper servers, killed when dropped.
pub struct ZkServers {
    servers: Vec<Server>,
    ports: Vec<u16>,
}

/// One server: how it was started, so the failover scenario can start it
/// again on the same data directory.
struct Server {
    name: String,
    args: Vec<String>,
    dir: PathBuf,
    proc: Option<Proc>,
    /// Starts so far (each start writes its own log).
    starts: u32,
}

impl Server {
    fn spawn(&mut self) -> std::io::Result<()> {
        self.starts += 1;
        let log = if self.starts == 1 {
            self.dir.join("zookeeper.log")
        } else {
            self.dir.join(format!("zookeeper-{}.log", self.starts))
        };
        self.proc = Some(Proc::spawn(
            &self.name,
            Path::new("java"),
            &self.args,
            &log,
            false,
        )?);
        Ok(())
    }
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
        let mut servers = ZkServers {
            servers: Vec::new(),
            ports: client.clone(),
        };
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
            let mut server = Server {
                name: format!("zookeeper-{n}-s{}", i + 1),
                args,
                dir: sdir,
                proc: None,
                starts: 0,
            };
            server.spawn().map_err(err)?;
            servers.servers.push(server);
        }
        servers
            .wait_serving(Duration::from_secs(90))
            .map_err(ZkError::Start)?;
        Ok(servers)
    }

    /// Returns once every running server answers `srvr` as serving, or
    /// says why not within `bound`. Blocks the thread (short probes).
    pub fn wait_serving(&self, bound: Duration) -> Result<(), String> {
        let deadline = Instant::now() + bound;
        loop {
            let down = self
                .servers
                .iter()
                .zip(&self.ports)
                .position(|(s, p)| s.proc.is_some() && !election_zk::launcher::is_serving(*p));
            let Some(i) = down else {
                return Ok(());
            };
            if Instant::now() > deadline {
                return Err(format!(
                    "server {} not serving within {bound:?}:\n{}",
                    i + 1,
                    self.log_tail(i, 20)
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The index of the server whose `srvr` answer says `Mode: leader`.
    /// Waits up to `bound` for one (blocks the thread, short probes).
    pub fn leader(&self, bound: Duration) -> Result<usize, String> {
        let deadline = Instant::now() + bound;
        loop {
            let leader = self.servers.iter().zip(&self.ports).position(|(s, p)| {
                s.proc.is_some() && four_letter(*p, "srvr").is_some_and(|a| is_leader(&a))
            });
            if let Some(i) = leader {
                return Ok(i);
            }
            if Instant::now() > deadline {
                return Err(format!("no ZooKeeper server leads within {bound:?}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL server `i` (nothing of its shutdown runs).
    pub fn kill9(&mut self, i: usize) {
        if let Some(p) = self.servers.get_mut(i).and_then(|s| s.proc.as_mut()) {
            p.kill9();
        }
    }

    /// SIGTERM server `i` (the JVM's shutdown hooks run).
    pub fn term(&self, i: usize) {
        if let Some(p) = self.servers.get(i).and_then(|s| s.proc.as_ref()) {
            p.term();
        }
    }

    /// Waits for server `i` to be gone (SIGKILL after 30 s), then starts it
    /// again on its data directory; does not wait for it to serve.
    pub fn restart(&mut self, i: usize) -> Result<(), String> {
        let server = self
            .servers
            .get_mut(i)
            .ok_or_else(|| format!("no ZooKeeper server {i}"))?;
        if let Some(mut p) = server.proc.take() {
            if !p.wait_exit(Duration::from_secs(30)) {
                p.kill9();
            }
        }
        server
            .spawn()
            .map_err(|e| format!("restart {}: {e}", server.name))
    }

    fn log_tail(&self, i: usize, lines: usize) -> String {
        self.servers
            .get(i)
            .and_then(|s| s.proc.as_ref())
            .map(|p| p.log_tail(lines))
            .unwrap_or_default()
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
        for s in &mut self.servers {
            if let Some(p) = s.proc.as_mut() {
                p.kill9();
            }
        }
    }
}

/// Whether a `srvr` answer is the leader's.
fn is_leader(srvr: &str) -> bool {
    srvr.lines().any(|l| l.trim() == "Mode: leader")
}

/// The answer of the server on loopback `port` to a four-letter word
/// (whitelisted by the launcher's configuration), if it answers within
/// about 2 s.
fn four_letter(port: u16, word: &str) -> Option<String> {
    use std::io::{Read, Write};
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(word.as_bytes()).ok()?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).ok()?;
    Some(answer)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_leaders_srvr_answer_names_it_leader() {
        let leader =
            "Zookeeper version: 3.8.0\nLatency min/avg/max: 0/0.0/0\nMode: leader\nNode count: 5\n";
        assert!(is_leader(leader));
        assert!(!is_leader("Mode: follower\n"));
        assert!(!is_leader("Mode: standalone\n"));
        assert!(!is_leader(""));
    }
}
