//! Test support: a conformance factory over real raft-engine directories and
//! real gRPC on loopback ports, helpers to find the leader, and raw-file
//! damage helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use journal_core::testkit::{wait_primary, BackendFactory, Cluster, TornTail};
use journal_core::{JournalError, JournalSystem, Result, SharedStateMachine};
use journal_raft::storage::{log_dir, newest_log_file, walk_log_file};
use journal_raft::{RaftJournal, RaftJournalConfig};
use parking_lot::Mutex;

#[allow(unused_imports)]
pub use journal_core::testkit::init_tracing;

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    journal_core::ports::free_loopback_port().expect("a free loopback port")
}

pub fn free_addresses(n: usize) -> Vec<String> {
    journal_core::ports::free_loopback_ports(n)
        .expect("free loopback ports")
        .into_iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect()
}

/// Fast timeouts for tests (the defaults are 1 s / 2 s).
pub const ELECTION_MIN: Duration = Duration::from_millis(500);
pub const ELECTION_MAX: Duration = Duration::from_millis(1000);

pub fn test_config(address: &str, addresses: &[String], dir: &Path) -> RaftJournalConfig {
    let mut cfg = RaftJournalConfig::new(address, addresses.to_vec(), dir);
    cfg.election_timeout_min = ELECTION_MIN;
    cfg.election_timeout_max = ELECTION_MAX;
    cfg.cluster_id = Some("raft-test".into());
    cfg
}

/// Formats the member's directory unless it already is (as `primacy
/// format` would before a master's first start).
/// Initial members are formatted NEW_CLUSTER, members added later JOIN.
pub fn ensure_formatted(cfg: &RaftJournalConfig) -> Result<()> {
    if !RaftJournal::is_formatted(cfg)? {
        RaftJournal::format(cfg, mode_for(cfg))?;
    }
    Ok(())
}

/// NEW_CLUSTER for an address in the configured list, JOIN otherwise.
pub fn mode_for(cfg: &RaftJournalConfig) -> journal_raft::FormatMode {
    if cfg.addresses.iter().any(|a| a.trim() == cfg.address.trim()) {
        journal_raft::FormatMode::NewCluster
    } else {
        journal_raft::FormatMode::Join
    }
}

/// Waits until exactly one of `journals` is primary; returns its index.
pub async fn wait_any_primary(
    journals: &[Option<Arc<dyn JournalSystem>>],
    timeout: Duration,
) -> Result<usize> {
    let deadline = Instant::now() + timeout;
    loop {
        let primaries: Vec<usize> = journals
            .iter()
            .enumerate()
            .filter_map(|(i, j)| {
                j.as_ref()
                    .filter(|j| j.role().borrow().is_primary())
                    .map(|_| i)
            })
            .collect();
        if primaries.len() == 1 {
            return Ok(primaries[0]);
        }
        if Instant::now() > deadline {
            return Err(JournalError::Timeout {
                what: format!("one primary (have {primaries:?})"),
                after: timeout,
            });
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The conformance factory: `n` members on loopback, each with its own
/// raft-engine directory.
pub struct RaftFactory {
    pub n: usize,
    pub root: tempfile::TempDir,
    pub addresses: Vec<String>,
    pub opened: Mutex<Vec<Option<Arc<RaftJournal>>>>,
}

impl RaftFactory {
    pub fn new(n: usize) -> Self {
        RaftFactory {
            n,
            root: tempfile::tempdir().expect("tempdir"),
            addresses: free_addresses(n),
            opened: Mutex::new(vec![None; n]),
        }
    }

    pub fn dir(&self, member: usize) -> PathBuf {
        self.root.path().join(format!("member-{member}"))
    }

    pub fn config(&self, member: usize) -> RaftJournalConfig {
        test_config(&self.addresses[member], &self.addresses, &self.dir(member))
    }
}

#[async_trait]
impl BackendFactory for RaftFactory {
    fn name(&self) -> String {
        format!("raft x{}", self.n)
    }

    fn members(&self) -> usize {
        self.n
    }

    async fn reset(&self) -> Result<()> {
        for m in 0..self.n {
            let d = self.dir(m);
            if d.exists() {
                std::fs::remove_dir_all(&d)
                    .map_err(|e| JournalError::io(d.display().to_string(), e))?;
            }
        }
        Ok(())
    }

    async fn open(
        &self,
        member: usize,
        machine: SharedStateMachine,
    ) -> Result<Arc<dyn JournalSystem>> {
        let cfg = self.config(member);
        ensure_formatted(&cfg)?;
        let j = RaftJournal::open(cfg, machine).await?;
        self.opened.lock()[member] = Some(j.clone());
        Ok(j)
    }

    async fn elect(&self, member: usize, cluster: &Cluster) -> Result<()> {
        if cluster.journals.len() > 1 {
            let current = wait_any_primary(&cluster.journals, Duration::from_secs(30)).await?;
            if current != member {
                wait_follows(&cluster.journal(member), Duration::from_secs(30)).await?;
                cluster
                    .journal(current)
                    .transfer_leadership(&self.addresses[member])
                    .await?;
            }
        }
        wait_primary(&cluster.journal(member)).await.map(|_| ())
    }

    async fn depose(&self, old: usize, new: usize, cluster: &Cluster) -> Result<()> {
        wait_follows(&cluster.journal(new), Duration::from_secs(30)).await?;
        cluster
            .journal(old)
            .transfer_leadership(&self.addresses[new])
            .await?;
        wait_primary(&cluster.journal(new)).await.map(|_| ())
    }

    async fn tear_tail(&self, member: usize) -> Result<TornTail> {
        tear_log_tail(&self.dir(member))?;
        Ok(TornTail::Dropped)
    }

    async fn corrupt_record(&self, member: usize) -> Result<String> {
        corrupt_log(&self.dir(member))
    }
}

/// Waits until `journal` follows a leader. A founder that started after the
/// others bootstrapped joins from the leader's first snapshot, and a
/// leadership transfer to it fails until then.
pub async fn wait_follows(journal: &Arc<dyn JournalSystem>, bound: Duration) -> Result<()> {
    let deadline = Instant::now() + bound;
    while journal.status().leader_address.is_none() && !journal.role().borrow().is_primary() {
        if Instant::now() > deadline {
            return Err(JournalError::Timeout {
                what: "a member to follow a leader".into(),
                after: bound,
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Appends the first 60% of the newest log file's last batch, as a crash
/// in mid-write would leave it.
pub fn tear_log_tail(data_dir: &Path) -> Result<()> {
    let file = newest_log_file(&log_dir(data_dir))?
        .ok_or_else(|| JournalError::io("tear", "no log file"))?;
    let bytes = std::fs::read(&file).map_err(|e| JournalError::io("tear", e))?;
    let walk = walk_log_file(&bytes);
    let last = *walk
        .batches
        .last()
        .ok_or_else(|| JournalError::io("tear", "no batch"))?;
    let piece = &bytes[last.offset..last.offset + last.len * 6 / 10];
    let mut data = bytes[..walk.end].to_vec();
    data.extend_from_slice(piece);
    std::fs::write(&file, &data).map_err(|e| JournalError::io("tear", e))?;
    Ok(())
}

/// Flips a byte inside a batch in the middle of the newest log file;
/// returns the log directory (which the `Corrupt` location names).
pub fn corrupt_log(data_dir: &Path) -> Result<String> {
    let dir = log_dir(data_dir);
    let file = newest_log_file(&dir)?.ok_or_else(|| JournalError::io("corrupt", "no log file"))?;
    let mut bytes = std::fs::read(&file).map_err(|e| JournalError::io("corrupt", e))?;
    let walk = walk_log_file(&bytes);
    assert!(
        walk.batches.len() >= 3,
        "too few batches to corrupt one in the middle"
    );
    // The largest batch that is not the last: it holds entries the test
    // proposed (live, not compacted away), and a flip in the very last
    // batch would look like a torn write.
    let candidates = &walk.batches[..walk.batches.len() - 1];
    let victim = *candidates
        .iter()
        .max_by_key(|b| b.len)
        .ok_or_else(|| JournalError::io("corrupt", "no batch"))?;
    let at = victim.offset + 16 + (victim.len - 16) / 3;
    bytes[at] ^= 0x5a;
    std::fs::write(&file, &bytes).map_err(|e| JournalError::io("corrupt", e))?;
    Ok(dir.display().to_string())
}

/// One in-process member and its state machine.
pub struct Member {
    pub journal: Arc<RaftJournal>,
    pub machine: Arc<parking_lot::RwLock<journal_core::testkit::TestMachine>>,
}

impl Member {
    pub async fn open(cfg: RaftJournalConfig) -> Result<Member> {
        ensure_formatted(&cfg)?;
        let machine = journal_core::shared(journal_core::testkit::TestMachine::new());
        let journal = RaftJournal::open(cfg, machine.clone()).await?;
        Ok(Member { journal, machine })
    }

    pub fn entries(&self) -> Vec<(u64, bytes::Bytes)> {
        self.machine.read().entries.clone()
    }

    pub fn is_primary(&self) -> bool {
        self.journal.role().borrow().is_primary()
    }
}

/// In-process members on loopback, each in its own directory.
pub struct Group {
    pub root: tempfile::TempDir,
    pub addresses: Vec<String>,
    pub members: Vec<Option<Member>>,
}

impl Group {
    /// The initial-membership fingerprint every peer call of this group carries.
    pub fn membership(&self) -> u64 {
        let mut sorted = self.addresses.clone();
        sorted.sort();
        journal_raft::config::membership_fingerprint(&sorted)
    }

    pub fn new(n: usize) -> Group {
        Group {
            root: tempfile::tempdir().expect("tempdir"),
            addresses: free_addresses(n),
            members: (0..n).map(|_| None).collect(),
        }
    }

    pub fn dir(&self, i: usize) -> PathBuf {
        self.root.path().join(format!("member-{i}"))
    }

    pub fn config(&self, i: usize) -> RaftJournalConfig {
        test_config(&self.addresses[i], &self.addresses, &self.dir(i))
    }

    pub async fn open_with(&mut self, i: usize, cfg: RaftJournalConfig) {
        self.members[i] = Some(Member::open(cfg).await.expect("open member"));
    }

    pub async fn open(&mut self, i: usize) {
        let cfg = self.config(i);
        self.open_with(i, cfg).await;
    }

    pub fn m(&self, i: usize) -> &Member {
        self.members[i].as_ref().expect("member open")
    }

    pub async fn close(&mut self, i: usize) {
        if let Some(m) = self.members[i].take() {
            m.journal.shutdown().await;
        }
    }

    pub async fn close_all(&mut self) {
        for i in 0..self.members.len() {
            self.close(i).await;
        }
    }

    /// Waits until exactly one open member is primary.
    pub async fn primary(&self, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let p: Vec<usize> = (0..self.members.len())
                .filter(|i| {
                    self.members[*i]
                        .as_ref()
                        .map(|m| m.is_primary())
                        .unwrap_or(false)
                })
                .collect();
            if p.len() == 1 {
                return p[0];
            }
            assert!(
                Instant::now() < deadline,
                "no single primary after {timeout:?}: {p:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until member `i` applied at least `index`.
    pub async fn wait_applied(&self, i: usize, index: u64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.m(i).journal.status().last_applied < index {
            assert!(
                Instant::now() < deadline,
                "member {i} stuck at {} < {index}",
                self.m(i).journal.status().last_applied
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// A padded test entry.
pub fn entry(tag: &str, i: usize, pad: usize) -> bytes::Bytes {
    let mut e = format!("{tag}-{i}-").into_bytes();
    e.extend(std::iter::repeat_n(b'x', pad));
    e.into()
}

/// Every `(entry, output)` appears exactly once, at the position its output names.
pub fn assert_acked_present(
    entries: &[(u64, bytes::Bytes)],
    acked: &[(bytes::Bytes, bytes::Bytes)],
    ctx: &str,
) {
    use journal_core::testkit::TestMachine;
    for w in entries.windows(2) {
        assert!(w[0].0 < w[1].0, "{ctx}: order broken at {}", w[0].0);
    }
    let mut index = std::collections::HashMap::new();
    for (seq, e) in entries {
        *index.entry(e.clone()).or_insert((0usize, *seq)) =
            (index.get(e).map(|(n, _)| n + 1).unwrap_or(1), *seq);
    }
    for (e, out) in acked {
        let seq = TestMachine::output_seq(out).expect("output");
        match index.get(e) {
            Some((1, s)) => assert_eq!(
                *s, seq,
                "{ctx}: entry at another position than acknowledged"
            ),
            Some((n, _)) => panic!("{ctx}: acknowledged entry at {seq} applied {n} times"),
            None => panic!("{ctx}: acknowledged entry at {seq} lost"),
        }
    }
}
