//! etcd (Debian `etcd-server`) as a peer: 1 or 3 members on loopback,
//! durable puts (etcd fsyncs its WAL before acknowledging) and
//! linearizable ranges through its v3 gRPC API.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tonic::transport::Channel;

use crate::harness::procs::Proc;

/// etcd's KV service stubs (`proto/etcd/kv.proto`).
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/etcdserverpb.rs"));
}

use proto::kv_client::KvClient;
use proto::maintenance_client::MaintenanceClient;
use proto::{PutRequest, RangeRequest, StatusRequest};

/// How to install the peer when it is missing.
pub const INSTALL: &str = "apt-get install -y etcd-server etcd-client";

/// The server binary the Debian package installs.
const ETCD: &str = "/usr/bin/etcd";

/// Running etcd members, killed when dropped.
pub struct EtcdServers {
    members: Vec<Member>,
    ports: Vec<u16>,
    dir: PathBuf,
}

/// One member: how it was started, so the failover scenario can start it
/// again on the same data directory.
struct Member {
    name: String,
    args: Vec<String>,
    proc: Option<Proc>,
    /// Starts so far (each start writes its own log).
    starts: u32,
}

impl Member {
    fn spawn(&mut self, n: usize, dir: &Path) -> std::io::Result<()> {
        self.starts += 1;
        let log = dir.join(format!("etcd-{}-{}.log", self.name, self.starts));
        let label = format!("etcd-{n}-{}", self.name);
        self.proc = Some(Proc::spawn(
            &label,
            Path::new(ETCD),
            &self.args,
            &log,
            false,
        )?);
        Ok(())
    }
}

/// Why etcd could not start.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    /// Not installed.
    #[error("etcd is not installed ({INSTALL})")]
    NotInstalled,
    /// It did not start or answer.
    #[error("etcd: {0}")]
    Start(String),
}

impl EtcdServers {
    /// Starts `n` members with their data under `dir` and returns once
    /// every member answers a linearizable range.
    pub async fn start(n: usize, dir: &Path) -> Result<EtcdServers, EtcdError> {
        if !Path::new(ETCD).exists() {
            return Err(EtcdError::NotInstalled);
        }
        let err = |e: std::io::Error| EtcdError::Start(e.to_string());
        let client = journal_core::ports::free_loopback_ports(n).map_err(err)?;
        let peer = journal_core::ports::free_loopback_ports(n).map_err(err)?;
        let cluster = (0..n)
            .map(|i| format!("e{}=http://127.0.0.1:{}", i + 1, peer[i]))
            .collect::<Vec<_>>()
            .join(",");
        let mut servers = EtcdServers {
            members: Vec::new(),
            ports: client.clone(),
            dir: dir.to_path_buf(),
        };
        for i in 0..n {
            let name = format!("e{}", i + 1);
            let data = dir.join(&name);
            let c = format!("http://127.0.0.1:{}", client[i]);
            let p = format!("http://127.0.0.1:{}", peer[i]);
            // On a restart the data directory holds the member's WAL and
            // etcd ignores the --initial-cluster* flags.
            let args: Vec<String> = [
                "--name",
                &name,
                "--data-dir",
                &data.display().to_string(),
                "--listen-client-urls",
                &c,
                "--advertise-client-urls",
                &c,
                "--listen-peer-urls",
                &p,
                "--initial-advertise-peer-urls",
                &p,
                "--initial-cluster",
                &cluster,
                "--initial-cluster-state",
                "new",
                "--initial-cluster-token",
                "primacy-bench",
                "--log-level",
                "warn",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            let mut member = Member {
                name,
                args,
                proc: None,
                starts: 0,
            };
            member.spawn(n, dir).map_err(err)?;
            servers.members.push(member);
        }
        servers
            .wait_serving(Duration::from_secs(60))
            .await
            .map_err(EtcdError::Start)?;
        Ok(servers)
    }

    /// Returns once every running member answers a linearizable range
    /// (which needs a leader), or says why not within `bound`.
    pub async fn wait_serving(&self, bound: Duration) -> Result<(), String> {
        let deadline = Instant::now() + bound;
        for (i, port) in self.ports.iter().enumerate() {
            if self.members[i].proc.is_none() {
                continue;
            }
            loop {
                let mut kv = KvClient::new(channel(*port));
                let probe = tokio::time::timeout(
                    Duration::from_secs(2),
                    kv.range(RangeRequest {
                        key: b"probe".to_vec(),
                        ..Default::default()
                    }),
                )
                .await;
                if matches!(probe, Ok(Ok(_))) {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(format!(
                        "member {} not serving within {bound:?}:\n{}",
                        i + 1,
                        self.log_tail(i, 20)
                    ));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }

    /// The index of the member that leads: the one whose Status names
    /// itself as leader (its own member id equals the leader id it
    /// reports). Waits up to `bound` for one.
    pub async fn leader(&self, bound: Duration) -> Result<usize, String> {
        let deadline = Instant::now() + bound;
        loop {
            for (i, port) in self.ports.iter().enumerate() {
                if self.members[i].proc.is_none() {
                    continue;
                }
                let mut m = MaintenanceClient::new(channel(*port));
                let status =
                    tokio::time::timeout(Duration::from_secs(2), m.status(StatusRequest {})).await;
                if let Ok(Ok(s)) = status {
                    let s = s.into_inner();
                    let me = s.header.map_or(0, |h| h.member_id);
                    if me != 0 && s.leader == me {
                        return Ok(i);
                    }
                }
            }
            if Instant::now() > deadline {
                return Err(format!("no etcd member leads within {bound:?}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL member `i` (nothing of its shutdown runs).
    pub fn kill9(&mut self, i: usize) {
        if let Some(p) = self.members.get_mut(i).and_then(|m| m.proc.as_mut()) {
            p.kill9();
        }
    }

    /// SIGTERM member `i`: etcd's clean stop hands leadership over first.
    pub fn term(&self, i: usize) {
        if let Some(p) = self.members.get(i).and_then(|m| m.proc.as_ref()) {
            p.term();
        }
    }

    /// Waits for member `i` to be gone (SIGKILL after `bound`), then starts
    /// it again on its data directory; does not wait for it to serve.
    pub fn restart(&mut self, i: usize) -> Result<(), String> {
        let n = self.members.len();
        let member = self
            .members
            .get_mut(i)
            .ok_or_else(|| format!("no etcd member {i}"))?;
        if let Some(mut p) = member.proc.take() {
            if !p.wait_exit(Duration::from_secs(30)) {
                p.kill9();
            }
        }
        member
            .spawn(n, &self.dir)
            .map_err(|e| format!("restart etcd {}: {e}", member.name))
    }

    /// The client port of every member.
    pub fn ports(&self) -> &[u16] {
        &self.ports
    }

    fn log_tail(&self, i: usize, lines: usize) -> String {
        self.members
            .get(i)
            .and_then(|m| m.proc.as_ref())
            .map(|p| p.log_tail(lines))
            .unwrap_or_default()
    }

    /// `connections` KV clients spread round robin over the members.
    pub fn clients(&self, connections: usize) -> Vec<KvClient<Channel>> {
        (0..connections.max(1))
            .map(|i| KvClient::new(channel(self.ports[i % self.ports.len()])))
            .collect()
    }
}

impl Drop for EtcdServers {
    fn drop(&mut self) {
        for m in &mut self.members {
            if let Some(p) = m.proc.as_mut() {
                p.kill9();
            }
        }
    }
}

/// A lazily connected channel to the member on loopback `port`.
pub fn channel(port: u16) -> Channel {
    // The URI is built from a port number, so it always parses.
    match Channel::from_shared(format!("http://127.0.0.1:{port}")) {
        Ok(e) => e
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(30))
            .connect_lazy(),
        Err(e) => unreachable!("a loopback URI did not parse: {e}"),
    }
}

/// A durable put of `value` at `key`.
pub async fn put(kv: &mut KvClient<Channel>, key: String, value: Vec<u8>) -> Result<(), String> {
    kv.put(PutRequest {
        key: key.into_bytes(),
        value,
        ..Default::default()
    })
    .await
    .map(|_| ())
    .map_err(|e| format!("put: {e}"))
}

/// A linearizable get of `key`.
pub async fn get(kv: &mut KvClient<Channel>, key: String) -> Result<(), String> {
    kv.range(RangeRequest {
        key: key.into_bytes(),
        ..Default::default()
    })
    .await
    .map(|_| ())
    .map_err(|e| format!("range: {e}"))
}

/// A linearizable range of every key under `prefix/`.
pub async fn list(kv: &mut KvClient<Channel>, prefix: &str) -> Result<(), String> {
    kv.range(RangeRequest {
        key: format!("{prefix}/").into_bytes(),
        // '0' follows '/': the end of the prefix's keys.
        range_end: format!("{prefix}0").into_bytes(),
        ..Default::default()
    })
    .await
    .map(|_| ())
    .map_err(|e| format!("range: {e}"))
}
