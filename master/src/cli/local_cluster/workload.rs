//! The clients' side of the demonstration, in the way of Alluxio's
//! `runTests` / `basicIOTest`: several clients, each with its own
//! connection and discovery, write a directory tree concurrently (every
//! file created, then completed with one block of a known length); the
//! tree is listed back and every acknowledged write checked.
//!
//! Subdirectories are made without `recursive` and files with a plain
//! create, so a write applied twice (a retry across a failover that was
//! not deduplicated) would come back ALREADY_EXISTS and count as an error.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::client::{BlockInfo, ClientError, FileInfo, MasterClient, RetryStats};
use crate::config::MasterConfig;

/// Files per subdirectory, so the tree has several levels.
const FANOUT: usize = 10;

/// How the writers go.
#[derive(Debug, Clone)]
pub enum Pacing {
    /// As fast as they can.
    FlatOut,
    /// Pausing `pace` after each file, and each holding its last file back
    /// until `go` turns true (or `hold` passes): so writes are in flight
    /// when the primary is killed (`go` is set right after the kill), and
    /// some are sent after it, however few files there are.
    AcrossKill {
        /// Pause after each file.
        pace: Duration,
        /// Turns true once the primary is killed.
        go: watch::Receiver<bool>,
        /// The longest a writer holds its last file.
        hold: Duration,
    },
}

/// One acknowledged mutation.
#[derive(Debug, Clone)]
pub struct Ack {
    /// The path written.
    pub path: String,
    /// When the call was made.
    pub sent: Instant,
    /// When the client returned success.
    pub at: Instant,
}

/// What every writer acknowledged, shared while they run.
#[derive(Debug, Default)]
struct Record {
    writes: Vec<Ack>,
    /// Acknowledged directories.
    dirs: BTreeSet<String>,
    /// Acknowledged (created and completed) files with their length.
    files: BTreeMap<String, u64>,
    /// `call: error`, one per writer that failed (each stops at its first).
    errors: Vec<String>,
}

fn lock(r: &Mutex<Record>) -> std::sync::MutexGuard<'_, Record> {
    // A writer that panicked left the record consistent (one push at a time).
    r.lock().unwrap_or_else(|e| e.into_inner())
}

/// Writers at work: `clients` clients writing `files` files under `root`.
pub struct Writers {
    clients: Vec<MasterClient>,
    record: Arc<Mutex<Record>>,
    tasks: Vec<JoinHandle<()>>,
    /// The files they write in all.
    pub files: usize,
}

/// What the writers did, once they have finished.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Every acknowledged mutation, in acknowledgement order.
    pub writes: Vec<Ack>,
    /// Acknowledged directories.
    pub dirs: BTreeSet<String>,
    /// Acknowledged files and their lengths.
    pub files: BTreeMap<String, u64>,
    /// The failed calls (each ended its writer).
    pub errors: Vec<String>,
    /// The clients' retries, summed.
    pub retries: RetryStats,
}

impl Writers {
    /// Starts `clients` writers, each with its own [`MasterClient`] of
    /// `cfg`, together writing `files` files under `root` (writer `i`
    /// under `root/c<i>`), paced by `pacing`.
    pub fn start(
        cfg: &MasterConfig,
        root: &str,
        clients: usize,
        files: usize,
        pacing: &Pacing,
    ) -> Result<Writers, ClientError> {
        let record = Arc::new(Mutex::new(Record::default()));
        let mut all = Vec::with_capacity(clients);
        let mut tasks = Vec::with_capacity(clients);
        for i in 0..clients {
            let client = MasterClient::from_config(cfg)?;
            // Spread the files evenly; the first writers take the remainder.
            let mine = files / clients + usize::from(i < files % clients);
            let dir = format!("{root}/c{i}");
            let task = tokio::spawn(write_tree(
                client.clone(),
                dir,
                mine,
                pacing.clone(),
                record.clone(),
            ));
            all.push(client);
            tasks.push(task);
        }
        Ok(Writers {
            clients: all,
            record,
            tasks,
            files,
        })
    }

    /// Files acknowledged so far.
    pub fn files_acked(&self) -> usize {
        lock(&self.record).files.len()
    }

    /// Whether every writer has ended.
    pub fn finished(&self) -> bool {
        self.tasks.iter().all(JoinHandle::is_finished)
    }

    /// Waits for every writer to end (they end by themselves: done, or
    /// after a call failed, which the client's retry duration bounds).
    pub async fn finish(self) -> Outcome {
        for task in self.tasks {
            if let Err(e) = task.await {
                lock(&self.record)
                    .errors
                    .push(format!("a writer panicked: {e}"));
            }
        }
        let retries = self.clients.iter().map(MasterClient::retry_stats).fold(
            RetryStats::default(),
            |a, b| RetryStats {
                retried_calls: a.retried_calls + b.retried_calls,
                retries: a.retries + b.retries,
            },
        );
        let r = std::mem::take(&mut *lock(&self.record));
        Outcome {
            writes: r.writes,
            dirs: r.dirs,
            files: r.files,
            errors: r.errors,
            retries,
        }
    }
}

/// One writer: `dir`, then `files` files in subdirectories of [`FANOUT`],
/// each created and then completed with one block of `j + 1` bytes.
async fn write_tree(
    client: MasterClient,
    dir: String,
    files: usize,
    pacing: Pacing,
    record: Arc<Mutex<Record>>,
) {
    if let Err(e) = write_tree_inner(&client, &dir, files, pacing, &record).await {
        lock(&record).errors.push(e);
    }
}

async fn write_tree_inner(
    client: &MasterClient,
    dir: &str,
    files: usize,
    mut pacing: Pacing,
    record: &Mutex<Record>,
) -> Result<(), String> {
    let ack = |path: &str, sent: Instant| {
        lock(record).writes.push(Ack {
            path: path.to_string(),
            sent,
            at: Instant::now(),
        });
    };
    let sent = Instant::now();
    client
        .mkdir(dir, true)
        .await
        .map_err(|e| format!("mkdir -p {dir}: {e}"))?;
    ack(dir, sent);
    lock(record).dirs.insert(dir.to_string());
    for j in 0..files {
        if let Pacing::AcrossKill { go, hold, .. } = &mut pacing {
            if j + 1 == files {
                // Timing out is fine: the file is written anyway.
                let _ = tokio::time::timeout(*hold, go.wait_for(|killed| *killed)).await;
            }
        }
        let sub = format!("{dir}/d{}", j / FANOUT);
        if j % FANOUT == 0 {
            let sent = Instant::now();
            client
                .mkdir(&sub, false)
                .await
                .map_err(|e| format!("mkdir {sub}: {e}"))?;
            ack(&sub, sent);
            lock(record).dirs.insert(sub.clone());
        }
        let file = format!("{sub}/f{j}");
        let sent = Instant::now();
        client
            .create_file(&file)
            .await
            .map_err(|e| format!("create {file}: {e}"))?;
        ack(&file, sent);
        let length = j as u64 + 1;
        let block = BlockInfo {
            block_id: block_id(&file),
            length,
        };
        let sent = Instant::now();
        client
            .complete_file(&file, vec![block])
            .await
            .map_err(|e| format!("complete {file}: {e}"))?;
        ack(&file, sent);
        lock(record).files.insert(file, length);
        if let Pacing::AcrossKill { pace, .. } = &pacing {
            tokio::time::sleep(*pace).await;
        }
    }
    Ok(())
}

/// A block id derived from the path (FNV-1a), so ids differ per file.
fn block_id(path: &str) -> u64 {
    path.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Every entry under `root` (not `root` itself) by path, listed through
/// `client` (each listing a linearizable read on the primary).
pub async fn list_tree(
    client: &MasterClient,
    root: &str,
) -> Result<BTreeMap<String, FileInfo>, ClientError> {
    let mut found = BTreeMap::new();
    let mut dirs = vec![root.to_string()];
    while let Some(dir) = dirs.pop() {
        for e in client.list_status(&dir).await? {
            if e.is_directory {
                dirs.push(e.path.clone());
            }
            found.insert(e.path.clone(), e);
        }
    }
    Ok(found)
}

/// How the listed tree compares with what was acknowledged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verification {
    /// Acknowledged files listed complete with their length.
    pub files_ok: usize,
    /// Acknowledged directories listed.
    pub dirs_ok: usize,
    /// Acknowledged paths not listed, or listed wrong (first few).
    pub bad: Vec<String>,
    /// How many acknowledged paths are missing or wrong.
    pub bad_count: usize,
    /// Listed entries nothing acknowledged (a write whose call failed may
    /// have been applied; with no failed call there must be none).
    pub unacknowledged: usize,
}

/// Checks `tree` against `outcome`: every acknowledged directory listed,
/// every acknowledged file listed complete with one block of its length.
pub fn verify(outcome: &Outcome, tree: &BTreeMap<String, FileInfo>) -> Verification {
    let mut v = Verification::default();
    let mut wrong = Vec::new();
    for dir in &outcome.dirs {
        match tree.get(dir) {
            Some(e) if e.is_directory => v.dirs_ok += 1,
            Some(_) => wrong.push(format!("{dir} is not a directory")),
            None => wrong.push(format!("{dir} is missing")),
        }
    }
    for (file, length) in &outcome.files {
        match tree.get(file) {
            Some(e) if e.completed && e.length == *length && e.blocks.len() == 1 => v.files_ok += 1,
            Some(e) => wrong.push(format!(
                "{file}: completed {} length {} (expected {length})",
                e.completed, e.length
            )),
            None => wrong.push(format!("{file} is missing")),
        }
    }
    v.bad_count = wrong.len();
    wrong.truncate(5);
    v.bad = wrong;
    v.unacknowledged = tree
        .keys()
        .filter(|p| !outcome.dirs.contains(*p) && !outcome.files.contains_key(*p))
        .count();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, dir: bool, length: u64) -> FileInfo {
        FileInfo {
            path: path.into(),
            is_directory: dir,
            completed: true,
            length,
            blocks: if dir {
                vec![]
            } else {
                vec![BlockInfo {
                    block_id: 1,
                    length,
                }]
            },
            ..FileInfo::default()
        }
    }

    #[test]
    fn verification_names_missing_wrong_and_extra_entries() {
        let outcome = Outcome {
            writes: vec![],
            dirs: ["/r/c0".to_string()].into(),
            files: [("/r/c0/f0".to_string(), 1), ("/r/c0/f1".to_string(), 2)].into(),
            errors: vec![],
            retries: RetryStats::default(),
        };
        let mut tree: BTreeMap<String, FileInfo> = [
            ("/r/c0".to_string(), entry("/r/c0", true, 0)),
            ("/r/c0/f0".to_string(), entry("/r/c0/f0", false, 1)),
            ("/r/c0/f1".to_string(), entry("/r/c0/f1", false, 2)),
        ]
        .into();
        let ok = verify(&outcome, &tree);
        assert_eq!((ok.files_ok, ok.dirs_ok, ok.bad_count), (2, 1, 0));
        tree.remove("/r/c0/f1");
        tree.insert("/r/c0/f0".into(), entry("/r/c0/f0", false, 7));
        tree.insert("/r/c0/x".into(), entry("/r/c0/x", false, 0));
        let v = verify(&outcome, &tree);
        assert_eq!(v.files_ok, 0);
        assert_eq!(v.bad_count, 2, "{:?}", v.bad);
        assert_eq!(v.unacknowledged, 1);
    }
}
