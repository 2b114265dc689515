#![allow(dead_code)]
//! Support for the UFS + ZooKeeper tests: masters (UfsJournal + ZkElection
//! on one real folder, against a real ZooKeeper), a proposer that records
//! acknowledgements, and the conformance factory.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use election_zk::testkit::{expire_session, ZkServer};
use election_zk::{ZkConfig, ZkElection};
use journal_core::testkit::{BackendFactory, Cluster, TestMachine, TornTail};
use journal_core::{
    shared, ElectionState, JournalError, JournalSystem, LeaderElection, Result, SharedStateMachine,
};
use journal_ufs::{format, open_folder, UfsJournal, UfsJournalConfig};
use parking_lot::{Mutex, RwLock};

pub const CLUSTER: &str = "ha-test-cluster";
pub const SESSION: Duration = Duration::from_millis(2000);
pub const BOUND: Duration = Duration::from_secs(30);

pub use journal_core::testkit::init_tracing;

pub use election_zk::testkit::test_config as zk_config;

pub fn journal_config(url: &str, member: usize) -> UfsJournalConfig {
    let mut cfg = UfsJournalConfig::new(url, format!("master-{member}:19998"));
    cfg.cluster_id = Some(CLUSTER.to_string());
    cfg.tailer_sleep = Duration::from_millis(5);
    cfg.retry_backoff = Duration::from_millis(20);
    cfg
}

pub async fn formatted_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("file://{}", dir.path().display());
    format(&open_folder(&url, true).expect("folder"), CLUSTER)
        .await
        .expect("format");
    dir
}

pub fn url(dir: &tempfile::TempDir) -> String {
    format!("file://{}", dir.path().display())
}

/// One master: its election, journal and state.
pub struct Master {
    pub election: Arc<ZkElection>,
    pub journal: Arc<UfsJournal>,
    pub machine: Arc<RwLock<TestMachine>>,
}

impl Master {
    pub async fn open(folder: &str, member: usize, zk: ZkConfig) -> Master {
        let election = Arc::new(ZkElection::new(zk).expect("zk config"));
        let machine = shared(TestMachine::new());
        let journal = master::ha::open_ufs_ha(
            journal_config(folder, member),
            election.clone(),
            machine.clone(),
        )
        .await
        .expect("open the journal");
        Master {
            election,
            journal,
            machine,
        }
    }

    pub fn is_primary(&self) -> bool {
        self.journal.role().borrow().is_primary()
    }
}

/// Index of the single primary, panicking if more than one serves.
pub fn primary_of(masters: &[Option<Master>]) -> Option<usize> {
    let primaries: Vec<usize> = masters
        .iter()
        .enumerate()
        .filter(|(_, m)| m.as_ref().is_some_and(|m| m.is_primary()))
        .map(|(i, _)| i)
        .collect();
    assert!(primaries.len() <= 1, "split brain: {primaries:?} all serve");
    primaries.first().copied()
}

/// Waits until exactly one master serves; returns it and how long it took.
pub async fn wait_primary(
    masters: &[Option<Master>],
    not: Option<usize>,
    timeout: Duration,
) -> (usize, Duration) {
    let started = Instant::now();
    loop {
        if let Some(p) = primary_of(masters) {
            if Some(p) != not {
                return (p, started.elapsed());
            }
        }
        if started.elapsed() > timeout {
            panic!("no primary within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Acknowledged and refused proposals of a proposer.
#[derive(Default)]
pub struct Outcomes {
    pub acked: Vec<(Bytes, Bytes)>,
    pub refused: Vec<Bytes>,
}

/// Proposes `tag-<i>` to whichever master serves, 8 at a time, until
/// `stop` is set; records every outcome. Like a client that follows the primary.
pub fn spawn_client(
    journals: Vec<Arc<UfsJournal>>,
    tag: &'static str,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<Outcomes> {
    tokio::spawn(async move {
        let mut out = Outcomes::default();
        let mut i = 0usize;
        while !stop.load(Ordering::Relaxed) {
            let target = journals
                .iter()
                .find(|j| j.role().borrow().is_primary())
                .cloned();
            let Some(j) = target else {
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            };
            let wave: Vec<_> = (0..8)
                .map(|_| {
                    i += 1;
                    let e = Bytes::from(format!("{tag}-{i}"));
                    let j = j.clone();
                    async move { (e.clone(), j.propose(e).await) }
                })
                .collect();
            for (e, r) in futures::future::join_all(wave).await {
                match r {
                    Ok(o) => out.acked.push((e, o)),
                    Err(
                        JournalError::NotPrimary { .. }
                        | JournalError::Fenced { .. }
                        | JournalError::Shutdown,
                    ) => out.refused.push(e),
                    Err(other) => panic!("unexpected proposal error: {other}"),
                }
            }
        }
        out
    })
}

/// Every acknowledged entry is in `machine` exactly once, at its acknowledged position.
pub fn assert_all_acked_present(machine: &TestMachine, acked: &[(Bytes, Bytes)], ctx: &str) {
    for w in machine.entries.windows(2) {
        assert!(w[0].0 < w[1].0, "{ctx}: apply order broken");
    }
    for (e, out) in acked {
        let seq = TestMachine::output_seq(out).expect("output");
        let found: Vec<_> = machine.entries.iter().filter(|(_, x)| x == e).collect();
        assert_eq!(
            found.len(),
            1,
            "{ctx}: acknowledged {e:?} appears {} times",
            found.len()
        );
        assert_eq!(
            found[0].0, seq,
            "{ctx}: {e:?} at another position than acknowledged"
        );
    }
}

/// The conformance factory: two masters on one folder, elected by a real ZooKeeper.
pub struct ZkFactory {
    pub zk: ZkServer,
    pub folder: tempfile::TempDir,
    root: Mutex<String>,
    resets: AtomicU64,
    elections: Mutex<Vec<Option<Arc<ZkElection>>>>,
}

impl ZkFactory {
    pub fn new() -> Self {
        ZkFactory {
            zk: ZkServer::start(),
            folder: tempfile::tempdir().expect("tempdir"),
            root: Mutex::new("/conformance-0".into()),
            resets: AtomicU64::new(0),
            elections: Mutex::new(vec![None, None]),
        }
    }

    fn election(&self, m: usize) -> Arc<ZkElection> {
        self.elections.lock()[m].clone().expect("member open")
    }
}

#[async_trait]
impl BackendFactory for ZkFactory {
    fn name(&self) -> String {
        "ufs+zookeeper".into()
    }

    fn members(&self) -> usize {
        2
    }

    async fn reset(&self) -> Result<()> {
        for entry in
            std::fs::read_dir(self.folder.path()).map_err(|e| JournalError::io("reset", e))?
        {
            let p = entry.map_err(|e| JournalError::io("reset", e))?.path();
            if p.is_dir() {
                std::fs::remove_dir_all(&p).map_err(|e| JournalError::io("reset", e))?;
            } else {
                std::fs::remove_file(&p).map_err(|e| JournalError::io("reset", e))?;
            }
        }
        // A fresh election root per check: no contenders of a previous check.
        *self.root.lock() = format!(
            "/conformance-{}",
            self.resets.fetch_add(1, Ordering::SeqCst) + 1
        );
        format(&open_folder(&url(&self.folder), true)?, CLUSTER).await
    }

    async fn open(
        &self,
        member: usize,
        machine: SharedStateMachine,
    ) -> Result<Arc<dyn JournalSystem>> {
        let root = self.root.lock().clone();
        let election = Arc::new(ZkElection::new(zk_config(&self.zk.address(), &root))?);
        self.elections.lock()[member] = Some(election.clone());
        let journal = master::ha::open_ufs_ha(
            journal_config(&url(&self.folder), member),
            election,
            machine,
        )
        .await?;
        Ok(journal)
    }

    async fn elect(&self, member: usize, cluster: &Cluster) -> Result<()> {
        // Whoever leads and is not `member` resigns to the back of the queue.
        let deadline = Instant::now() + BOUND;
        loop {
            if cluster.journal(member).role().borrow().is_primary() {
                return Ok(());
            }
            for (m, e) in self.elections.lock().clone().iter().enumerate() {
                if let Some(e) = e {
                    if m != member && matches!(*e.watch().borrow(), ElectionState::Leader { .. }) {
                        let e = e.clone();
                        tokio::spawn(async move { e.resign().await });
                    }
                }
            }
            if Instant::now() > deadline {
                return Err(JournalError::Timeout {
                    what: format!("member {member} to lead"),
                    after: BOUND,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn depose(&self, old: usize, new: usize, cluster: &Cluster) -> Result<()> {
        // The old primary's session is expired from outside, as a long GC
        // pause or a network fault would; the journal must cope with the
        // old primary finding out only afterwards.
        expire_session(&self.zk.address(), &self.election(old)).await;
        let deadline = Instant::now() + BOUND;
        while !cluster.journal(new).role().borrow().is_primary() {
            if Instant::now() > deadline {
                return Err(JournalError::Timeout {
                    what: format!("member {new} to take over"),
                    after: BOUND,
                });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    async fn tear_tail(&self, _member: usize) -> Result<TornTail> {
        use journal_core::proto::{journal_record::Kind, JournalRecord};
        let folder = open_folder(&url(&self.folder), false)?;
        let end = journal_ufs::inspect::log_end(&folder).await?;
        let records: Vec<JournalRecord> = (0..2)
            .map(|i| JournalRecord {
                seq: end + i,
                epoch: 1 << 40,
                kind: Some(Kind::Entry(vec![1u8; 64].into())),
            })
            .collect();
        let header = journal_ufs::proto::ChunkHeader {
            cluster_id: CLUSTER.into(),
            first_seq: end,
            epoch: 1 << 40,
            count: 2,
            writer_id: "crashed".into(),
        };
        let bytes = journal_ufs::chunk::encode_chunk(&header, &records)
            .map_err(|e| JournalError::io("tear", e.to_string()))?;
        let path = self
            .folder
            .path()
            .join("logs")
            .join(journal_ufs::layout::seq_name(end));
        std::fs::write(&path, &bytes[..bytes.len() - 40])
            .map_err(|e| JournalError::io("tear", e))?;
        // Chunks are published atomically: a torn one is damage, never an
        // unfinished write, and must be reported, not deleted.
        Ok(TornTail::Corrupt(format!(
            "logs/{}",
            journal_ufs::layout::seq_name(end)
        )))
    }

    async fn corrupt_record(&self, _member: usize) -> Result<String> {
        let contents = journal_ufs::inspect::read_folder(&url(&self.folder)).await?;
        let last = contents
            .chunks
            .last()
            .ok_or_else(|| JournalError::io("corrupt", "empty log"))?;
        let name = format!(
            "logs/{}",
            journal_ufs::layout::seq_name(last.header.first_seq)
        );
        let path = self.folder.path().join(&name);
        let mut bytes = std::fs::read(&path).map_err(|e| JournalError::io(&name, e))?;
        let at = bytes.len() * 2 / 3;
        bytes[at] ^= 0x5a;
        std::fs::write(&path, bytes).map_err(|e| JournalError::io(&name, e))?;
        Ok(name)
    }
}
