//! The failover scenario on the peers (etcd-3, zookeeper-3): the same
//! four writers, signal and measurement as primacy's
//! ([`crate::scenario::failover`]), with the peer's leader as the primary.
//! Each writer is given every member and, after a failed write, sleeps
//! primacy's client back-off (20 ms doubling to 200 ms) before the next
//! write with a fresh name: an etcd writer moves on to the next member, a
//! ZooKeeper session reconnects to another server of its connect string
//! by itself (and a writer whose session expired opens a new one).

use std::path::Path;
use std::time::{Duration, Instant};

use tonic::transport::Channel;
use zookeeper_client as zk;

use crate::peers::etcd::proto::kv_client::KvClient;
use crate::peers::etcd::{self, EtcdServers};
use crate::peers::zookeeper::{self, ZkServers};
use crate::peers::{Peer, PeerError};
use crate::report::Record;
use crate::scenario::failover::{
    measure, point, retry_settings, Stop, WriterCtx, Writers, BOUND, WRITERS,
};

/// How long the peer gets to settle after the stopped member serves
/// again, as primacy's masters do between repeats.
const SETTLE: Duration = Duration::from_secs(2);

/// Whether the failover scenario applies to `peer` (it needs a group that
/// survives the loss of its leader).
pub fn applies(peer: Peer) -> bool {
    match peer {
        Peer::Etcd(n) | Peer::ZooKeeper(n) => n >= 3,
    }
}

/// `repeats` failovers of each kind in `stops` on `peer` under `dir`: the
/// leader is found, stopped under load, and restarted (and the group
/// waited for) before the next repeat. One record per repeat, its time in
/// `p50_ms`, as [`crate::scenario::failover::run_backend`] writes them.
pub async fn run_peer(
    peer: Peer,
    dir: &Path,
    stops: &[Stop],
    repeats: usize,
    progress: &(dyn Fn(String) + Sync),
) -> Result<Vec<Record>, PeerError> {
    if !applies(peer) {
        return Err(PeerError::Failed(format!(
            "failover needs 3 or more members, not {}",
            peer.name()
        )));
    }
    match peer {
        Peer::Etcd(n) => on_etcd(peer, n, dir, stops, repeats, progress).await,
        Peer::ZooKeeper(n) => on_zookeeper(peer, n, dir, stops, repeats, progress).await,
    }
}

async fn on_etcd(
    peer: Peer,
    n: usize,
    dir: &Path,
    stops: &[Stop],
    repeats: usize,
    progress: &(dyn Fn(String) + Sync),
) -> Result<Vec<Record>, PeerError> {
    progress("starting the members".into());
    let mut servers = EtcdServers::start(n, dir).await.map_err(|e| match e {
        etcd::EtcdError::NotInstalled => PeerError::Missing(etcd::INSTALL.into()),
        other => PeerError::Failed(other.to_string()),
    })?;
    let mut records = Vec::new();
    let mut round = 0;
    for &stop in stops {
        for repeat in 0..repeats {
            round += 1;
            let leader = servers.leader(BOUND).await.map_err(PeerError::Failed)?;
            let ports = servers.ports().to_vec();
            let writers =
                Writers::spawn(WRITERS, |w, ctx| etcd_writer(ports.clone(), w, round, ctx));
            progress(format!(
                "{} {}/{repeats} (leader e{})",
                stop.operation(),
                repeat + 1,
                leader + 1
            ));
            let took = measure(writers, || match stop {
                Stop::Kill => servers.kill9(leader),
                Stop::Term => servers.term(leader),
            })
            .await;
            records.push(point(peer.name(), stop, took, repeat));
            servers.restart(leader).map_err(PeerError::Failed)?;
            servers
                .wait_serving(BOUND)
                .await
                .map_err(PeerError::Failed)?;
            tokio::time::sleep(SETTLE).await;
        }
    }
    Ok(records)
}

/// Puts fresh keys until told to stop, starting on member `writer` (so the
/// writers are spread) and moving to the next member after an error.
async fn etcd_writer(ports: Vec<u16>, writer: usize, round: usize, ctx: WriterCtx) {
    let channels: Vec<Channel> = ports.iter().map(|p| etcd::channel(*p)).collect();
    if channels.is_empty() {
        return;
    }
    let retry = retry_settings();
    let mut at = writer % channels.len();
    let mut failures = 0u32;
    while ctx.running() {
        let key = format!("/failover/r{round}/f{}", ctx.next());
        let mut kv = KvClient::new(channels[at].clone());
        let sent = Instant::now();
        match etcd::put(&mut kv, key, Vec::new()).await {
            Ok(()) => {
                ctx.ack(sent);
                failures = 0;
            }
            Err(_) => {
                // The member may be the stopped one, or one that lost its
                // leader: the next write goes to the next member.
                at = (at + 1) % channels.len();
                let sleep = master::client::backoff(&retry, failures, retry.max_duration);
                tokio::time::sleep(sleep).await;
                failures = failures.saturating_add(1);
            }
        }
    }
}

async fn on_zookeeper(
    peer: Peer,
    n: usize,
    dir: &Path,
    stops: &[Stop],
    repeats: usize,
    progress: &(dyn Fn(String) + Sync),
) -> Result<Vec<Record>, PeerError> {
    progress("starting the servers".into());
    let mut servers = ZkServers::start(n, dir).map_err(|e| match e {
        zookeeper::ZkError::NotInstalled => PeerError::Missing(zookeeper::INSTALL.into()),
        other => PeerError::Failed(other.to_string()),
    })?;
    let address = servers.address();
    let mut records = Vec::new();
    let mut round = 0;
    for &stop in stops {
        for repeat in 0..repeats {
            round += 1;
            let leader = servers.leader(BOUND).map_err(PeerError::Failed)?;
            let parent = format!("/failover/r{round}");
            {
                let admin = zookeeper::sessions(&address, 1)
                    .await
                    .map_err(PeerError::Failed)?;
                for c in &admin {
                    zookeeper::ensure(c, &parent)
                        .await
                        .map_err(PeerError::Failed)?;
                }
            }
            let writers = Writers::spawn(WRITERS, |_, ctx| {
                zookeeper_writer(address.clone(), parent.clone(), ctx)
            });
            progress(format!(
                "{} {}/{repeats} (leader s{})",
                stop.operation(),
                repeat + 1,
                leader + 1
            ));
            let took = measure(writers, || match stop {
                Stop::Kill => servers.kill9(leader),
                Stop::Term => servers.term(leader),
            })
            .await;
            records.push(point(peer.name(), stop, took, repeat));
            servers.restart(leader).map_err(PeerError::Failed)?;
            servers.wait_serving(BOUND).map_err(PeerError::Failed)?;
            tokio::time::sleep(SETTLE).await;
        }
    }
    Ok(records)
}

/// Opens a session on the ensemble at `address` (any of its servers).
async fn connect(address: &str) -> Option<zk::Client> {
    let connecting = zk::Client::connector()
        .with_session_timeout(Duration::from_secs(10))
        .connect(address);
    match tokio::time::timeout(Duration::from_secs(10), connecting).await {
        Ok(Ok(c)) => Some(c),
        _ => None,
    }
}

/// Creates fresh persistent nodes under `parent` until told to stop,
/// through its own session; a session the server ended (expired, closed)
/// is replaced by a new one.
async fn zookeeper_writer(address: String, parent: String, ctx: WriterCtx) {
    let retry = retry_settings();
    let mode = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    let mut session: Option<zk::Client> = None;
    let mut failures = 0u32;
    while ctx.running() {
        let ok = match &session {
            None => {
                session = connect(&address).await;
                session.is_some()
            }
            Some(c) => {
                let path = format!("{parent}/f{}", ctx.next());
                let sent = Instant::now();
                match c.create(&path, &[], &mode).await {
                    Ok(_) => {
                        ctx.ack(sent);
                        true
                    }
                    Err(e) => {
                        if matches!(
                            e,
                            zk::Error::SessionExpired
                                | zk::Error::ClientClosed
                                | zk::Error::NoHosts
                                | zk::Error::AuthFailed
                        ) {
                            session = None;
                        }
                        false
                    }
                }
            }
        };
        if ok {
            failures = 0;
        } else {
            let sleep = master::client::backoff(&retry, failures, retry.max_duration);
            tokio::time::sleep(sleep).await;
            failures = failures.saturating_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_groups_of_three_or_more_fail_over() {
        assert!(applies(Peer::Etcd(3)));
        assert!(applies(Peer::ZooKeeper(3)));
        assert!(!applies(Peer::Etcd(1)));
        assert!(!applies(Peer::ZooKeeper(1)));
    }
}
