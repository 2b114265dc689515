//! A test cluster of real `primacy master` processes in one deployment
//! (embedded Raft, UFS + ZooKeeper, single UFS master): formatting,
//! starting, `kill -9`, restarting with the same configuration, and bounded
//! waits for a primary and for a restarted standby to catch up.

use std::time::{Duration, Instant};

use master::config::MasterConfig;
use master::proto::rpc::MasterInfo;

use super::{flags, free_port, info, run, Proc};

/// How the masters of a [`Cluster`] share (or do not share) a journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deployment {
    /// Each master has its own Raft log; the group elects its leader.
    Embedded,
    /// One shared `file://` folder; ZooKeeper at this address elects.
    UfsZooKeeper(String),
    /// One master on a `file://` folder.
    UfsSingle,
}

/// One master of a [`Cluster`]. Its flags are fixed at creation, so a
/// restart runs with exactly the configuration it was killed with.
pub struct Member {
    /// `m1`, `m2`, ...: names its log files.
    pub name: String,
    /// Its `alluxio.master.rpc.port`.
    pub rpc_port: u16,
    /// Its embedded journal (peer) address, `127.0.0.1:port` (embedded only).
    pub peer: Option<String>,
    /// Its `alluxio.master.web.port` (status page, REST, /metrics).
    pub web_port: u16,
    flags: Vec<String>,
    proc: Option<Proc>,
    starts: u32,
}

impl Member {
    /// `127.0.0.1:rpc_port`, as clients reach it and as it advertises itself.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.rpc_port)
    }

    /// Whether its process was started and not killed since.
    pub fn running(&self) -> bool {
        self.proc.is_some()
    }

    /// The last lines of what its current (or last) process wrote to stderr.
    pub fn log_tail(&self) -> String {
        let text = self.proc.as_ref().map(Proc::stderr).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(25)..].join("\n")
    }
}

/// Masters of one deployment in a temporary directory. Dropping it kills
/// every process still running (each [`Proc`] does on drop, also during a
/// panic), so a failing test leaves nothing behind.
pub struct Cluster {
    /// Holds the journals and the masters' logs.
    pub dir: tempfile::TempDir,
    /// The masters, in the order of the address list.
    pub members: Vec<Member>,
    /// The deployment.
    pub deployment: Deployment,
}

impl Cluster {
    /// `n` masters on the embedded Raft journal: one loopback peer port and
    /// one data directory each, all peer ports in
    /// `alluxio.master.embedded.journal.addresses`.
    pub fn embedded(n: usize) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let peers: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let addresses = peers
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        let members = peers
            .iter()
            .enumerate()
            .map(|(i, peer)| {
                let rpc_port = free_port();
                let data = dir.path().join(format!("m{}", i + 1));
                let peer_address = format!("127.0.0.1:{peer}");
                let f = flags(&[
                    ("alluxio.master.journal.type", "EMBEDDED".into()),
                    (
                        "alluxio.master.embedded.journal.addresses",
                        addresses.clone(),
                    ),
                    ("alluxio.master.hostname", "127.0.0.1".into()),
                    ("alluxio.master.rpc.port", rpc_port.to_string()),
                    ("alluxio.master.embedded.journal.port", peer.to_string()),
                    ("alluxio.master.journal.folder", data.display().to_string()),
                ]);
                let mut m = Member::new(i, rpc_port, f);
                m.peer = Some(peer_address);
                m
            })
            .collect();
        Cluster {
            dir,
            members,
            deployment: Deployment::Embedded,
        }
    }

    /// `n` masters on one shared `file://` UFS folder, elected through the
    /// ZooKeeper at `zk_address`. The session timeout is shortened (2 s,
    /// Alluxio's is 60 s) because it bounds how soon a killed primary's
    /// ephemeral node goes away, and so the test's length.
    pub fn ufs_zookeeper(n: usize, zk_address: &str) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let folder = format!("file://{}/journal", dir.path().display());
        let members = (0..n)
            .map(|i| {
                let rpc_port = free_port();
                let f = flags(&[
                    ("alluxio.master.journal.type", "UFS".into()),
                    ("alluxio.master.journal.folder", folder.clone()),
                    ("alluxio.zookeeper.enabled", "true".into()),
                    ("alluxio.zookeeper.address", zk_address.to_string()),
                    ("alluxio.zookeeper.session.timeout", "2s".into()),
                    ("alluxio.master.hostname", "127.0.0.1".into()),
                    ("alluxio.master.rpc.port", rpc_port.to_string()),
                ]);
                Member::new(i, rpc_port, f)
            })
            .collect();
        Cluster {
            dir,
            members,
            deployment: Deployment::UfsZooKeeper(zk_address.to_string()),
        }
    }

    /// One master on a `file://` UFS folder (no election).
    pub fn ufs_single() -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let folder = format!("file://{}/journal", dir.path().display());
        let rpc_port = free_port();
        let f = flags(&[
            ("alluxio.master.journal.type", "UFS".into()),
            ("alluxio.master.journal.folder", folder),
            ("alluxio.master.hostname", "127.0.0.1".into()),
            ("alluxio.master.rpc.port", rpc_port.to_string()),
        ]);
        Cluster {
            dir,
            members: vec![Member::new(0, rpc_port, f)],
            deployment: Deployment::UfsSingle,
        }
    }

    /// Formats, starts every member, waits for a primary and for every
    /// other member to catch up with it; returns the primary's index.
    pub async fn start_caught_up(&mut self) -> usize {
        self.format();
        self.start_all();
        let (p, _) = self.wait_primary(super::BOUND, "the first primary").await;
        for i in 0..self.members.len() {
            if i != p {
                self.wait_caught_up(i, super::BOUND).await;
            }
        }
        p
    }

    /// `primacy format` on each embedded member (each formats its own
    /// directory as a founder of the group), or once for a shared UFS
    /// folder. Panics with the output unless it exits 0.
    pub fn format(&self) {
        let formatted = match self.deployment {
            Deployment::Embedded => &self.members[..],
            _ => &self.members[..1],
        };
        for m in formatted {
            let mut args = vec!["format".to_string()];
            args.extend(m.flags.iter().cloned());
            let (code, out, err) = run(&args, self.dir.path());
            assert_eq!(code, 0, "primacy format for {} failed:\n{out}{err}", m.name);
        }
    }

    /// Sets `key=value` for member `i` from its next start on (a later
    /// `-D` wins over an earlier one).
    pub fn set_flag(&mut self, i: usize, key: &str, value: &str) {
        self.members[i]
            .flags
            .extend(super::flags(&[(key, value.to_string())]));
    }

    /// Starts `primacy master` for member `i` with its flags; its stderr
    /// goes to `<name>-<n>.log` (n counts the starts).
    pub fn start(&mut self, i: usize) {
        let m = &mut self.members[i];
        assert!(m.proc.is_none(), "{} is already running", m.name);
        m.starts += 1;
        let mut args = vec!["master".to_string()];
        args.extend(m.flags.iter().cloned());
        let log = self.dir.path().join(format!("{}-{}.log", m.name, m.starts));
        m.proc = Some(Proc::spawn(&args, &log));
    }

    /// Waits until member `i`'s embedded-journal peer port accepts
    /// connections (the process may still be starting); panics after
    /// `bound`, naming the member and its log.
    pub async fn wait_peer_listening(&self, i: usize, bound: Duration) {
        let m = &self.members[i];
        let peer = m
            .peer
            .clone()
            .unwrap_or_else(|| panic!("{} has no peer address", m.name));
        let deadline = Instant::now() + bound;
        while tokio::net::TcpStream::connect(&peer).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "{} did not listen on its peer port {peer} within {bound:?} (log: {}-{}.log)",
                m.name,
                m.name,
                m.starts
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Starts every member, in order.
    pub fn start_all(&mut self) {
        for i in 0..self.members.len() {
            self.start(i);
        }
    }

    /// `kill -9` member `i` (no shutdown path runs: no journal close, no
    /// election leave) and reaps it. Returns when the signal was sent.
    pub fn kill(&mut self, i: usize) -> Instant {
        let m = &mut self.members[i];
        let mut proc = m
            .proc
            .take()
            .unwrap_or_else(|| panic!("{} is not running", m.name));
        let at = Instant::now();
        let status = proc.kill9();
        eprintln!("killed {} ({}) with SIGKILL: {status}", m.name, m.address());
        at
    }

    /// Every master's RPC address, comma-separated
    /// (`alluxio.master.rpc.addresses`).
    pub fn rpc_addresses(&self) -> String {
        self.members
            .iter()
            .map(Member::address)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The member whose address is `addr`.
    pub fn index_of(&self, addr: &str) -> usize {
        self.members
            .iter()
            .position(|m| m.address() == addr)
            .unwrap_or_else(|| panic!("{addr} is none of {}", self.rpc_addresses()))
    }

    /// A client configuration that finds the primary through the address
    /// list. Retries are bounded below the tests' own bounds, so a call
    /// that cannot succeed fails with the client's report instead of
    /// hanging, and the back-off is capped at 500 ms so the measured
    /// failover time is mostly the server's.
    pub fn client_config(&self) -> MasterConfig {
        let mut pairs = retry_pairs();
        pairs.push(("alluxio.master.rpc.addresses", self.rpc_addresses()));
        MasterConfig::from_pairs(&pairs).expect("client configuration")
    }

    /// A client configuration that reads the primary from ZooKeeper's
    /// leader path (UFS + ZooKeeper only), with the same retry bounds as
    /// [`Cluster::client_config`].
    pub fn zk_client_config(&self) -> MasterConfig {
        let Deployment::UfsZooKeeper(zk) = &self.deployment else {
            panic!("not a ZooKeeper deployment")
        };
        let mut pairs = retry_pairs();
        pairs.push(("alluxio.zookeeper.enabled", "true".into()));
        pairs.push(("alluxio.zookeeper.address", zk.clone()));
        MasterConfig::from_pairs(&pairs).expect("client configuration")
    }

    /// Every running member's log tail, for failure messages.
    pub fn logs(&self) -> String {
        self.members
            .iter()
            .filter(|m| m.running())
            .map(|m| format!("--- {} ({}):\n{}\n", m.name, m.address(), m.log_tail()))
            .collect()
    }

    /// Panics (with the logs) if a running member has exited by itself.
    fn check_alive(&mut self, what: &str) {
        for m in &mut self.members {
            if let Some(p) = m.proc.as_mut() {
                if let Some(s) = p.try_exit() {
                    panic!(
                        "{} exited ({s}) while waiting for {what}; stderr:\n{}",
                        m.name,
                        p.stderr()
                    );
                }
            }
        }
    }

    /// Polls `GetMasterInfo` on every running member until one answers
    /// PRIMARY (the highest epoch if two do); returns its index and answer.
    pub async fn wait_primary(&mut self, bound: Duration, what: &str) -> (usize, MasterInfo) {
        let deadline = Instant::now() + bound;
        loop {
            self.check_alive(what);
            let mut best: Option<(usize, MasterInfo)> = None;
            for (i, m) in self.members.iter().enumerate() {
                if !m.running() {
                    continue;
                }
                if let Ok(answer) = info(m.rpc_port).await {
                    let newer = best.as_ref().is_none_or(|(_, b)| answer.epoch > b.epoch);
                    if answer.role == "PRIMARY" && newer {
                        best = Some((i, answer));
                    }
                }
            }
            if let Some(found) = best {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: no PRIMARY within {bound:?}; logs:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until member `i` answers STANDBY with a last applied sequence
    /// at least the primary's (read first, in the same round). Returns both
    /// answers (standby, primary) of the round that satisfied it.
    pub async fn wait_caught_up(&mut self, i: usize, bound: Duration) -> (MasterInfo, MasterInfo) {
        let deadline = Instant::now() + bound;
        let what = format!("{} to catch up as a standby", self.members[i].name);
        let applied = |m: &MasterInfo| m.journal.as_ref().map_or(0, |j| j.last_applied);
        let mut last = String::from("no answer yet");
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (_, primary) = self.wait_primary(left, &what).await;
            if let Ok(me) = info(self.members[i].rpc_port).await {
                if me.role == "STANDBY" && applied(&me) >= applied(&primary) {
                    return (me, primary);
                }
                last = format!(
                    "{} at seq {}, the primary at seq {}",
                    me.role,
                    applied(&me),
                    applied(&primary)
                );
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {bound:?} (last: {last}); logs:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Cluster {
    /// SIGTERM to member `i` (its graceful shutdown runs: a primary hands
    /// primacy over first), then waits (bounded) for it to exit; returns
    /// when the signal was sent, the exit status and what it wrote to
    /// stderr.
    pub fn stop(&mut self, i: usize) -> (Instant, std::process::ExitStatus, String) {
        let m = &mut self.members[i];
        let mut proc = m
            .proc
            .take()
            .unwrap_or_else(|| panic!("{} is not running", m.name));
        let at = Instant::now();
        proc.term();
        let status = proc.wait_exit(super::BOUND);
        eprintln!(
            "stopped {} ({}) with SIGTERM after {} ms: {status}",
            m.name,
            m.address(),
            at.elapsed().as_millis()
        );
        (at, status, proc.stderr())
    }

    /// SIGTERM to every running member at once (as a whole cluster is shut
    /// down), then waits (bounded) for each to exit. Returns each one's
    /// name, how long it took after the signal, its exit status and its
    /// stderr.
    pub fn stop_all_at_once(
        &mut self,
    ) -> Vec<(String, Duration, std::process::ExitStatus, String)> {
        let mut running: Vec<(String, Proc)> = self
            .members
            .iter_mut()
            .filter_map(|m| m.proc.take().map(|p| (m.name.clone(), p)))
            .collect();
        let at = Instant::now();
        for (_, p) in &running {
            p.term();
        }
        running
            .iter_mut()
            .map(|(name, p)| {
                let status = p.wait_exit(super::BOUND);
                (name.clone(), at.elapsed(), status, p.stderr())
            })
            .collect()
    }

    /// What member `i`'s current (or last) process wrote to stderr.
    pub fn log_of(&self, i: usize) -> String {
        self.members[i]
            .proc
            .as_ref()
            .map(Proc::stderr)
            .unwrap_or_default()
    }

    /// Adds a new embedded member (not started) formatted with
    /// `primacy format --join`: its own peer and RPC ports and data
    /// directory; its address list names the running group's members and
    /// itself, so it derives another cluster id than the group's: it is
    /// given the group's (`alluxio.master.cluster.id`, as `quorum info`
    /// shows it). Returns its index.
    pub fn add_embedded_member(&mut self, cluster_id: &str) -> usize {
        assert_eq!(self.deployment, Deployment::Embedded);
        let i = self.members.len();
        let peer = free_port();
        let rpc_port = free_port();
        let peer_address = format!("127.0.0.1:{peer}");
        let mut addresses: Vec<String> =
            self.members.iter().filter_map(|m| m.peer.clone()).collect();
        addresses.push(peer_address.clone());
        let data = self.dir.path().join(format!("m{}", i + 1));
        let f = flags(&[
            ("alluxio.master.journal.type", "EMBEDDED".into()),
            (
                "alluxio.master.embedded.journal.addresses",
                addresses.join(","),
            ),
            ("alluxio.master.hostname", "127.0.0.1".into()),
            ("alluxio.master.rpc.port", rpc_port.to_string()),
            ("alluxio.master.embedded.journal.port", peer.to_string()),
            ("alluxio.master.journal.folder", data.display().to_string()),
            ("alluxio.master.cluster.id", cluster_id.to_string()),
        ]);
        let mut args = vec!["format".to_string(), "--join".to_string()];
        args.extend(f.iter().cloned());
        let (code, out, err) = run(&args, self.dir.path());
        assert_eq!(code, 0, "primacy format --join failed:\n{out}{err}");
        let mut m = Member::new(i, rpc_port, f);
        m.peer = Some(peer_address);
        self.members.push(m);
        i
    }

    /// `-D` flags for a `primacy` client command (`fs`, `journal`) that
    /// finds the primary through every member's RPC address, with the
    /// test clients' retry bounds.
    pub fn client_flags(&self) -> Vec<String> {
        let mut pairs = retry_pairs();
        pairs.push(("alluxio.master.rpc.addresses", self.rpc_addresses()));
        flags(&pairs)
    }
}

impl Member {
    /// Member `i` with `flags`, plus a free status port of its own (every
    /// master serves one; the default 19999 would collide).
    fn new(i: usize, rpc_port: u16, mut flags: Vec<String>) -> Member {
        let web_port = free_port();
        flags.extend(super::flags(&[(
            "alluxio.master.web.port",
            web_port.to_string(),
        )]));
        Member {
            name: format!("m{}", i + 1),
            rpc_port,
            peer: None,
            web_port,
            flags,
            proc: None,
            starts: 0,
        }
    }

    /// `http://127.0.0.1:web_port`, the root of its status server.
    pub fn web_base(&self) -> String {
        format!("http://127.0.0.1:{}", self.web_port)
    }

    /// Its flags (for commands that must see the same configuration).
    pub fn flags(&self) -> &[String] {
        &self.flags
    }
}

/// The client retry settings of every test client (see
/// [`Cluster::client_config`]); also given to `primacy worker` processes.
pub fn retry_pairs() -> Vec<(&'static str, String)> {
    vec![
        ("alluxio.user.rpc.retry.max.duration", "50s".into()),
        ("alluxio.user.rpc.retry.base.sleep", "20ms".into()),
        ("alluxio.user.rpc.retry.max.sleep", "500ms".into()),
    ]
}
