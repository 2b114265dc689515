//! Finding the serving primary: the ephemeral nodes under the leader path.
//!
//! A primary publishes `<leader path>/<its address>` with its journal epoch
//! as data once it serves. While a deposed primary's session has not expired
//! yet, two nodes can exist; the one with the higher epoch is the primary.

use std::time::Duration;

use journal_core::{JournalError, Result};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use zookeeper_client as zk;

use crate::config::ZkConfig;
use crate::session::{connect_with_retry, zk_err};

/// Reads the serving primary's address with `client`; `None` if none serves.
pub(crate) async fn read_leader(client: &zk::Client, cfg: &ZkConfig) -> Result<Option<String>> {
    let children = match client.list_children(&cfg.leader_path).await {
        Ok(c) => c,
        Err(zk::Error::NoNode) => return Ok(None),
        Err(e) => return Err(zk_err(format!("{}{}", cfg.address, cfg.leader_path), e)),
    };
    pick_leader(client, cfg, children).await
}

/// Reads the serving primary's address and arms a watch that fires when
/// the set of serving nodes changes (or, while the leader path does not
/// exist yet, when it is created), so a follower learns of a primary that
/// announces itself later.
pub(crate) async fn watch_leader(
    client: &zk::Client,
    cfg: &ZkConfig,
) -> Result<(Option<String>, zk::OneshotWatcher)> {
    let loc = || format!("{}{}", cfg.address, cfg.leader_path);
    match client.list_and_watch_children(&cfg.leader_path).await {
        Ok((children, watcher)) => Ok((pick_leader(client, cfg, children).await?, watcher)),
        Err(zk::Error::NoNode) => {
            let (stat, watcher) = client
                .check_and_watch_stat(&cfg.leader_path)
                .await
                .map_err(|e| zk_err(loc(), e))?;
            if stat.is_some() {
                // Created between the two calls: the watch fires on the next
                // change; read what is there now.
                return Ok((read_leader(client, cfg).await?, watcher));
            }
            Ok((None, watcher))
        }
        Err(e) => Err(zk_err(loc(), e)),
    }
}

async fn pick_leader(
    client: &zk::Client,
    cfg: &ZkConfig,
    children: Vec<String>,
) -> Result<Option<String>> {
    let mut best: Option<(u64, String)> = None;
    for child in children {
        let path = format!("{}/{child}", cfg.leader_path);
        let epoch = match client.get_data(&path).await {
            Ok((data, _)) => String::from_utf8_lossy(&data)
                .trim()
                .parse::<u64>()
                .unwrap_or(0),
            Err(zk::Error::NoNode) => continue,
            Err(e) => return Err(zk_err(path, e)),
        };
        if best.as_ref().is_none_or(|(e, _)| epoch > *e) {
            best = Some((epoch, child));
        }
    }
    Ok(best.map(|(_, address)| address))
}

/// Follows the serving primary's address for clients and workers.
///
/// It keeps its own ZooKeeper session, reconnects (with backoff) when it is
/// lost, and publishes every change on a watch: `None` while no primary
/// serves (during a failover), then the new primary's address.
pub struct LeaderDiscovery {
    current: watch::Receiver<Option<String>>,
    closing: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl LeaderDiscovery {
    /// Starts following the leader path on the ensemble `address`
    /// (`alluxio.zookeeper.address`). Returns at once; the first value
    /// arrives when connected.
    pub fn start(
        address: &str,
        leader_path: &str,
        session_timeout: Duration,
    ) -> Result<LeaderDiscovery> {
        let mut cfg = ZkConfig::new(address);
        cfg.leader_path = leader_path.to_string();
        cfg.session_timeout = session_timeout;
        if cfg.election_path == cfg.leader_path {
            cfg.election_path = format!("{leader_path}-unused-election");
        }
        cfg.validate()?;
        let (tx, current) = watch::channel(None);
        let (closing, closing_rx) = watch::channel(false);
        let task = tokio::spawn(follow(cfg, tx, closing_rx));
        Ok(LeaderDiscovery {
            current,
            closing,
            task: Some(task),
        })
    }

    /// The primary's address as last seen.
    pub fn current(&self) -> Option<String> {
        self.current.borrow().clone()
    }

    /// A watch of the primary's address.
    pub fn watch(&self) -> watch::Receiver<Option<String>> {
        self.current.clone()
    }

    /// Waits until a primary other than `not` serves, up to `timeout`.
    pub async fn wait_for_leader(&self, not: Option<&str>, timeout: Duration) -> Result<String> {
        let mut rx = self.current.clone();
        let found = tokio::time::timeout(timeout, async {
            rx.wait_for(|l| l.is_some() && l.as_deref() != not)
                .await
                .map(|l| l.clone().unwrap_or_default())
        })
        .await;
        match found {
            Ok(Ok(l)) => Ok(l),
            Ok(Err(_)) => Err(JournalError::Shutdown),
            Err(_) => Err(JournalError::Timeout {
                what: "a serving primary in ZooKeeper".into(),
                after: timeout,
            }),
        }
    }

    /// Stops following and closes the session.
    pub async fn close(mut self) {
        self.closing.send_replace(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for LeaderDiscovery {
    fn drop(&mut self) {
        self.closing.send_replace(true);
    }
}

async fn follow(
    cfg: ZkConfig,
    tx: watch::Sender<Option<String>>,
    mut closing: watch::Receiver<bool>,
) {
    let acl = zk::Acls::anyone_all();
    'session: loop {
        let Some(client) = connect_with_retry(&cfg, &mut closing).await else {
            return;
        };
        let mut states = client.state_watcher();
        loop {
            if *closing.borrow() {
                return;
            }
            let _ = client
                .mkdir(&cfg.leader_path, &zk::CreateMode::Persistent.with_acls(acl))
                .await;
            let looked = async {
                let (children, _, watcher) = client
                    .get_and_watch_children(&cfg.leader_path)
                    .await
                    .map_err(|e| zk_err(&cfg.leader_path, e))?;
                let leader = pick_leader(&client, &cfg, children).await?;
                Ok::<_, JournalError>((leader, watcher))
            };
            match looked.await {
                Ok((leader, watcher)) => {
                    tx.send_if_modified(|cur| {
                        if *cur != leader {
                            tracing::info!(primary = ?leader, "primary address changed in ZooKeeper");
                            *cur = leader;
                            true
                        } else {
                            false
                        }
                    });
                    tokio::select! {
                        _ = closing.changed() => return,
                        _ = watcher.changed() => {}
                    }
                }
                Err(e) => {
                    if states.peek_state().is_terminated() {
                        tx.send_replace(None);
                        continue 'session;
                    }
                    tracing::warn!(error = %e, "reading the primary from ZooKeeper failed; retrying");
                    tokio::select! {
                        _ = closing.changed() => return,
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    }
                }
            }
            if states.state().is_terminated() {
                tx.send_replace(None);
                continue 'session;
            }
        }
    }
}

/// Looks up the serving primary once (new session, closed afterwards).
pub async fn find_leader(
    address: &str,
    leader_path: &str,
    timeout: Duration,
) -> Result<Option<String>> {
    let mut cfg = ZkConfig::new(address);
    cfg.leader_path = leader_path.to_string();
    cfg.validate()?;
    let client = tokio::time::timeout(
        timeout,
        zk::Client::connector().with_fail_eagerly().connect(address),
    )
    .await
    .map_err(|_| JournalError::Timeout {
        what: format!("connecting to ZooKeeper at {address}"),
        after: timeout,
    })?
    .map_err(|e| zk_err(address, e))?;
    read_leader(&client, &cfg).await
}

/// The addresses of the election's contenders, in election order (the
/// first one leads or is about to), read once with a new session that is
/// closed afterwards. A contender that left while it was read is skipped;
/// an election path that does not exist yet lists nobody.
///
/// The whole lookup (connect, list, reads) is bounded by `timeout`, so a
/// status page asking while ZooKeeper is down answers in time.
pub async fn list_contenders(
    address: &str,
    election_path: &str,
    timeout: Duration,
) -> Result<Vec<String>> {
    let mut cfg = ZkConfig::new(address);
    cfg.election_path = election_path.to_string();
    cfg.validate()?;
    let lookup = async {
        let client = zk::Client::connector()
            .with_fail_eagerly()
            .connect(address)
            .await
            .map_err(|e| zk_err(address, e))?;
        let children = match client.list_children(election_path).await {
            Ok(c) => c,
            Err(zk::Error::NoNode) => return Ok(Vec::new()),
            Err(e) => return Err(zk_err(format!("{address}{election_path}"), e)),
        };
        let mut members: Vec<(u64, String)> = children
            .into_iter()
            .filter_map(|name| crate::election::member_seq(&name).map(|seq| (seq, name)))
            .collect();
        members.sort();
        let mut addresses = Vec::with_capacity(members.len());
        for (_, name) in members {
            let path = format!("{election_path}/{name}");
            match client.get_data(&path).await {
                Ok((data, _)) => {
                    let a = String::from_utf8_lossy(&data).trim().to_string();
                    if !a.is_empty() && !addresses.contains(&a) {
                        addresses.push(a);
                    }
                }
                Err(zk::Error::NoNode) => continue,
                Err(e) => return Err(zk_err(path, e)),
            }
        }
        Ok(addresses)
    };
    tokio::time::timeout(timeout, lookup)
        .await
        .map_err(|_| JournalError::Timeout {
            what: format!("listing the election's contenders at {address}{election_path}"),
            after: timeout,
        })?
}
