//! Test support: a conformance factory over real `file://` folders (fsync on)
//! and shared `memory://` stores, with elections the test controls.
#![allow(dead_code)]

pub mod counting;
pub mod members;
pub mod pausable;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use journal_core::proto::{journal_record::Kind, JournalRecord};
use journal_core::testkit::TestMachine;
use journal_core::testkit::{wait_primary, BackendFactory, Cluster, ManualElection, TornTail};
use journal_core::{
    shared, wait_for_primary, ElectionState, JournalError, JournalSystem, Result,
    SharedStateMachine, SingleMaster,
};
use journal_ufs::chunk::encode_chunk;
use journal_ufs::inspect::log_end;
use journal_ufs::layout::seq_name;
use journal_ufs::proto::ChunkHeader;
use journal_ufs::{format, open_folder, UfsJournal, UfsJournalConfig};
pub mod two_primaries;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use parking_lot::Mutex;

/// Bound on every wait in these tests.
pub const WAIT: Duration = Duration::from_secs(20);

pub const CLUSTER: &str = "conformance-cluster";

pub use journal_core::testkit::init_tracing;

/// Where a factory keeps its journal.
pub enum Storage {
    /// A real directory, written with fsync.
    File(tempfile::TempDir),
    /// A named in-process store.
    Memory(String),
    /// A prefix in a bucket of a real S3-compatible server (moto).
    #[cfg(feature = "testkit")]
    S3 {
        server: Arc<journal_ufs::testkit::MotoServer>,
        prefix: String,
    },
}

impl Storage {
    pub fn file() -> Storage {
        Storage::File(tempfile::tempdir().expect("tempdir"))
    }

    pub fn memory(name: &str) -> Storage {
        Storage::Memory(format!("{name}-{}", uuid_like()))
    }

    /// A fresh prefix `name-<n>` in `server`'s bucket.
    #[cfg(feature = "testkit")]
    pub fn s3(server: &Arc<journal_ufs::testkit::MotoServer>, name: &str) -> Storage {
        Storage::S3 {
            server: server.clone(),
            prefix: format!("{name}-{}", uuid_like()),
        }
    }

    pub fn url(&self) -> String {
        match self {
            Storage::File(dir) => format!("file://{}", dir.path().display()),
            Storage::Memory(name) => format!("memory://{name}/journal"),
            #[cfg(feature = "testkit")]
            Storage::S3 { server, prefix } => server.url(prefix),
        }
    }

    /// The store options the folder needs (none but for S3).
    pub fn options(&self) -> BTreeMap<String, String> {
        match self {
            #[cfg(feature = "testkit")]
            Storage::S3 { server, .. } => server.options(),
            _ => BTreeMap::new(),
        }
    }

    /// Opens the folder (creating a local directory when `create`).
    pub fn folder(&self, create: bool) -> Result<journal_ufs::Folder> {
        journal_ufs::open_folder_with(&self.url(), create, &self.options())
    }

    /// A journal config for `member` on this storage.
    pub fn config(&self, member: usize) -> UfsJournalConfig {
        let mut cfg = config(&self.url(), member);
        cfg.store_options = self.options();
        cfg
    }

    pub fn dir(&self) -> Option<PathBuf> {
        match self {
            Storage::File(dir) => Some(dir.path().to_path_buf()),
            _ => None,
        }
    }
}

fn uuid_like() -> u64 {
    static N: AtomicU64 = AtomicU64::new(0);
    std::process::id() as u64 * 1_000_000 + N.fetch_add(1, Ordering::Relaxed)
}

pub fn config(url: &str, member: usize) -> UfsJournalConfig {
    let mut cfg = UfsJournalConfig::new(url, format!("master-{member}:19998"));
    cfg.cluster_id = Some(CLUSTER.to_string());
    cfg.tailer_sleep = Duration::from_millis(5);
    cfg.retry_backoff = Duration::from_millis(20);
    cfg
}

/// The conformance factory: two masters on one folder, each with a
/// `ManualElection` the suite drives.
pub struct UfsFactory {
    pub storage: Storage,
    pub elections: Mutex<Vec<Arc<ManualElection>>>,
    epoch: AtomicU64,
}

impl UfsFactory {
    pub fn new(storage: Storage) -> Self {
        UfsFactory {
            storage,
            elections: Mutex::new(vec![
                Arc::new(ManualElection::new()),
                Arc::new(ManualElection::new()),
            ]),
            epoch: AtomicU64::new(1),
        }
    }

    pub fn next_epoch(&self) -> u64 {
        self.epoch.fetch_add(1, Ordering::SeqCst)
    }

    pub fn election(&self, member: usize) -> Arc<ManualElection> {
        self.elections.lock()[member].clone()
    }
}

#[async_trait]
impl BackendFactory for UfsFactory {
    fn name(&self) -> String {
        format!("ufs {}", self.storage.url())
    }

    fn members(&self) -> usize {
        2
    }

    async fn reset(&self) -> Result<()> {
        match &self.storage {
            Storage::File(dir) => {
                for entry in
                    std::fs::read_dir(dir.path()).map_err(|e| JournalError::io("reset", e))?
                {
                    let path = entry.map_err(|e| JournalError::io("reset", e))?.path();
                    if path.is_dir() {
                        std::fs::remove_dir_all(&path).map_err(|e| JournalError::io("reset", e))?;
                    } else {
                        std::fs::remove_file(&path).map_err(|e| JournalError::io("reset", e))?;
                    }
                }
            }
            Storage::Memory(name) => journal_ufs::store::drop_memory_store(name),
            #[cfg(feature = "testkit")]
            Storage::S3 { .. } => {
                use futures::TryStreamExt;
                let folder = self.storage.folder(false)?;
                let all: Vec<_> = folder
                    .store
                    .list(Some(&folder.root))
                    .try_collect()
                    .await
                    .map_err(|e| JournalError::io("reset", e))?;
                for o in all {
                    folder
                        .store
                        .delete(&o.location)
                        .await
                        .map_err(|e| JournalError::io("reset", e))?;
                }
            }
        }
        let folder = self.storage.folder(true)?;
        format(&folder, CLUSTER).await
    }

    async fn open(
        &self,
        member: usize,
        machine: SharedStateMachine,
    ) -> Result<Arc<dyn JournalSystem>> {
        let election = Arc::new(ManualElection::new());
        self.elections.lock()[member] = election.clone();
        let journal = UfsJournal::open(self.storage.config(member), election, machine).await?;
        Ok(journal)
    }

    async fn elect(&self, member: usize, cluster: &Cluster) -> Result<()> {
        for (m, e) in self.elections.lock().iter().enumerate() {
            if m != member {
                e.set(ElectionState::Follower {
                    leader: Some(format!("master-{member}:19998")),
                });
            }
        }
        self.election(member).set(ElectionState::Leader {
            epoch: self.next_epoch(),
        });
        wait_primary(&cluster.journal(member)).await.map(|_| ())
    }

    async fn depose(&self, _old: usize, new: usize, cluster: &Cluster) -> Result<()> {
        self.election(new).set(ElectionState::Leader {
            epoch: self.next_epoch(),
        });
        wait_primary(&cluster.journal(new)).await.map(|_| ())
    }

    async fn tear_tail(&self, _member: usize) -> Result<TornTail> {
        let folder = self.storage.folder(false)?;
        let end = log_end(&folder).await?;
        let records: Vec<JournalRecord> = (0..3)
            .map(|i| JournalRecord {
                seq: end + i,
                epoch: 999,
                kind: Some(Kind::Entry(vec![7u8; 100].into())),
            })
            .collect();
        let header = ChunkHeader {
            cluster_id: CLUSTER.into(),
            first_seq: end,
            epoch: 999,
            count: 3,
            writer_id: "crashed".into(),
        };
        let bytes =
            encode_chunk(&header, &records).map_err(|e| JournalError::io("tear", e.to_string()))?;
        let torn = bytes.slice(..bytes.len() - 150);
        let name = format!("logs/{}", seq_name(end));
        match &self.storage {
            Storage::File(dir) => {
                // As a crash mid-write on a non-atomic file system would leave it.
                std::fs::create_dir_all(dir.path().join("logs"))
                    .map_err(|e| JournalError::io(&name, e))?;
                std::fs::write(dir.path().join(&name), &torn)
                    .map_err(|e| JournalError::io(&name, e))?;
            }
            _ => {
                folder
                    .store
                    .put(
                        &folder
                            .root
                            .clone()
                            .join("logs")
                            .join(seq_name(end).as_str()),
                        PutPayload::from(torn),
                    )
                    .await
                    .map_err(|e| JournalError::io(&name, e))?;
            }
        }
        // Chunks are published atomically: a torn one is damage, never an
        // unfinished write, and must be reported, not deleted.
        Ok(TornTail::Corrupt(name))
    }

    async fn corrupt_record(&self, _member: usize) -> Result<String> {
        let folder = self.storage.folder(false)?;
        let end = log_end(&folder).await?;
        let contents = journal_ufs::inspect::read_opened(&folder).await?;
        let last = contents
            .chunks
            .last()
            .ok_or_else(|| JournalError::io("corrupt", "empty log"))?;
        assert_eq!(last.end(), end);
        let name = format!("logs/{}", seq_name(last.header.first_seq));
        flip_byte(&self.storage, &name, 0.6).await?;
        Ok(name)
    }
}

/// Flips one byte at `fraction` of the object's length (past the header).
pub async fn flip_byte(storage: &Storage, name: &str, fraction: f64) -> Result<()> {
    match storage {
        Storage::File(dir) => {
            let path = dir.path().join(name);
            let mut bytes = std::fs::read(&path).map_err(|e| JournalError::io(name, e))?;
            let at = ((bytes.len() as f64) * fraction) as usize;
            bytes[at] ^= 0x5a;
            std::fs::write(&path, &bytes).map_err(|e| JournalError::io(name, e))?;
        }
        _ => {
            let folder = storage.folder(false)?;
            let path: Path = name
                .split('/')
                .fold(folder.root.clone(), |p, part| p.join(part));
            let mut bytes = folder
                .store
                .get(&path)
                .await
                .map_err(|e| JournalError::io(name, e))?
                .bytes()
                .await
                .map_err(|e| JournalError::io(name, e))?
                .to_vec();
            let at = ((bytes.len() as f64) * fraction) as usize;
            bytes[at] ^= 0x5a;
            folder
                .store
                .put(&path, PutPayload::from(bytes))
                .await
                .map_err(|e| JournalError::io(name, e))?;
        }
    }
    Ok(())
}

/// Every file under `dir` with its contents, to prove an operation changed nothing.
pub fn tree(dir: &std::path::Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(
                    p.strip_prefix(dir).unwrap().display().to_string(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

pub async fn formatted() -> Storage {
    let storage = Storage::file();
    format(&open_folder(&storage.url(), true).unwrap(), CLUSTER)
        .await
        .unwrap();
    storage
}

pub async fn single(
    cfg: UfsJournalConfig,
) -> (Arc<UfsJournal>, Arc<parking_lot::RwLock<TestMachine>>) {
    let machine = shared(TestMachine::new());
    let journal = UfsJournal::open(cfg, Arc::new(SingleMaster::new()), machine.clone())
        .await
        .unwrap();
    wait_for_primary(&mut journal.role(), WAIT).await.unwrap();
    (journal, machine)
}

pub async fn propose_n(journal: &Arc<UfsJournal>, tag: &str, n: usize) -> Vec<Bytes> {
    let futures = (0..n).map(|i| {
        let j = journal.clone();
        let e = Bytes::from(format!("{tag}-{i}"));
        async move { j.propose(e.clone()).await.map(|_| e) }
    });
    futures::future::join_all(futures)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect()
}

pub async fn open_err(cfg: UfsJournalConfig) -> JournalError {
    match UfsJournal::open(
        cfg,
        Arc::new(SingleMaster::new()),
        shared(TestMachine::new()),
    )
    .await
    {
        Ok(_) => panic!("open succeeded"),
        Err(e) => e,
    }
}
