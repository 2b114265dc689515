//! etcd (Debian `etcd-server`) as a peer: 1 or 3 members on loopback,
//! durable puts (etcd fsyncs its WAL before acknowledging) and
//! linearizable ranges through its v3 gRPC API.

use std::path::Path;
use std::time::{Duration, Instant};

use tonic::transport::Channel;

use crate::harness::procs::Proc;

/// etcd's KV service stubs (`proto/etcd/kv.proto`).
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/etcdserverpb.rs"));
}

use proto::kv_client::KvClient;
use proto::{PutRequest, RangeRequest};

/// How to install the peer when it is missing.
pub const INSTALL: &str = "apt-get install -y etcd-server etcd-client";

/// The server binary the Debian package installs.
const ETCD: &str = "/usr/bin/etcd";

/// Running etcd members, killed when dropped.
pub struct EtcdServers {
    procs: Vec<Proc>,
    ports: Vec<u16>,
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
        let mut procs = Vec::new();
        for i in 0..n {
            let name = format!("e{}", i + 1);
            let data = dir.join(&name);
            let c = format!("http://127.0.0.1:{}", client[i]);
            let p = format!("http://127.0.0.1:{}", peer[i]);
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
            let log = dir.join(format!("etcd-{name}.log"));
            procs.push(
                Proc::spawn(
                    &format!("etcd-{n}-{name}"),
                    Path::new(ETCD),
                    &args,
                    &log,
                    false,
                )
                .map_err(err)?,
            );
        }
        let servers = EtcdServers {
            procs,
            ports: client,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        for port in &servers.ports {
            loop {
                let mut kv = KvClient::new(channel(*port));
                let probe = kv
                    .range(RangeRequest {
                        key: b"probe".to_vec(),
                        ..Default::default()
                    })
                    .await;
                if probe.is_ok() {
                    break;
                }
                if Instant::now() > deadline {
                    let tail = servers
                        .procs
                        .first()
                        .map(|p| p.log_tail(20))
                        .unwrap_or_default();
                    return Err(EtcdError::Start(format!(
                        "not serving within 60 s:\n{tail}"
                    )));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(servers)
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
        for p in &mut self.procs {
            p.kill9();
        }
    }
}

fn channel(port: u16) -> Channel {
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
