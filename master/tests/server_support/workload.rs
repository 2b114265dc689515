//! The client side of the failover tests: concurrent tasks creating a tree
//! through a [`MasterClient`] while masters are killed, every acknowledged
//! create recorded; listing the tree afterwards; and a raw `Mutate` with a
//! fixed (client id, request seq) to check that a retry is applied once.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use master::client::MasterClient;
use master::meta::FsResult;
use master::proto::meta::CreateFile;
use master::proto::rpc::{mutate_request, MutateRequest};
use tokio::task::JoinHandle;

use super::fs_client;

/// Files per directory of the tree, so the tree has several levels and a
/// mkdir (not recursive, so a duplicate would be refused) every few files.
const FANOUT: usize = 10;

/// Pause between two creates of one task. Without it a fast machine could
/// finish the whole workload before the test gets to kill the primary;
/// the test checks that writes were acknowledged after the kill anyway.
const PACE: Duration = Duration::from_millis(3);

/// One acknowledged create.
#[derive(Debug, Clone)]
pub struct Ack {
    /// The path created.
    pub path: String,
    /// When the call was made.
    pub sent: Instant,
    /// When the client returned success.
    pub at: Instant,
    /// The primary the client knew right after (its address).
    pub primary: Option<String>,
}

/// Tasks creating `<root>/t<i>/d<k>/f<j>` concurrently through one client
/// (clones share its id and request counter, as one application would).
pub struct Workload {
    acks: Arc<Mutex<Vec<Ack>>>,
    tasks: Vec<JoinHandle<Result<(), String>>>,
    /// How many creates (directories and files) the tasks will make.
    pub expected: usize,
}

impl Workload {
    /// Starts `tasks` tasks of `files` files each under `root`. They run
    /// until done or until a call fails (the client's own retries end
    /// after its retry duration); nobody restarts them.
    pub fn spawn(client: &MasterClient, root: &str, tasks: usize, files: usize) -> Workload {
        let acks = Arc::new(Mutex::new(Vec::new()));
        let handles = (0..tasks)
            .map(|t| {
                let client = client.clone();
                let acks = acks.clone();
                let dir = format!("{root}/t{t}");
                tokio::spawn(async move { create_tree(client, dir, files, acks).await })
            })
            .collect();
        Workload {
            acks,
            tasks: handles,
            expected: tasks * (1 + files + files.div_ceil(FANOUT)),
        }
    }

    /// Acknowledged creates so far.
    pub fn acked(&self) -> usize {
        self.acks.lock().expect("acks").len()
    }

    /// Waits until `n` creates are acknowledged; panics after `bound` or if
    /// every task has ended first.
    pub async fn wait_acked(&self, n: usize, bound: Duration) {
        let deadline = Instant::now() + bound;
        while self.acked() < n {
            assert!(
                !self.tasks.iter().all(JoinHandle::is_finished),
                "the workload ended with {} of {n} acknowledgements",
                self.acked()
            );
            assert!(
                Instant::now() < deadline,
                "only {} of {n} creates acknowledged within {bound:?}",
                self.acked()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits (bounded) for every task to end; panics naming the first
    /// failed call. Returns every acknowledgement in order.
    pub async fn finish(self, bound: Duration) -> Vec<Ack> {
        let all = futures::future::join_all(self.tasks);
        let results = tokio::time::timeout(bound, all)
            .await
            .unwrap_or_else(|_| panic!("the workload did not finish within {bound:?}"));
        for r in results {
            if let Err(e) = r.expect("workload task panicked") {
                panic!("a workload task failed: {e}");
            }
        }
        let acks = self.acks.lock().expect("acks").clone();
        assert_eq!(acks.len(), self.expected, "every create is acknowledged");
        acks
    }
}

/// One task: `dir`, then `files` files in subdirectories of [`FANOUT`].
/// Stops at the first error, naming the call; a retried create that comes
/// back ALREADY_EXISTS (applied twice) is such an error.
async fn create_tree(
    client: MasterClient,
    dir: String,
    files: usize,
    acks: Arc<Mutex<Vec<Ack>>>,
) -> Result<(), String> {
    let record = |path: String, sent: Instant| {
        let ack = Ack {
            path,
            sent,
            at: Instant::now(),
            primary: client.known_primary(),
        };
        acks.lock().expect("acks").push(ack);
    };
    let sent = Instant::now();
    client
        .mkdir(&dir, true)
        .await
        .map_err(|e| format!("mkdir -p {dir}: {e}"))?;
    record(dir.clone(), sent);
    for j in 0..files {
        let sub = format!("{dir}/d{}", j / FANOUT);
        if j % FANOUT == 0 {
            let sent = Instant::now();
            client
                .mkdir(&sub, false)
                .await
                .map_err(|e| format!("mkdir {sub}: {e}"))?;
            record(sub.clone(), sent);
        }
        let file = format!("{sub}/f{j}");
        let sent = Instant::now();
        client
            .create_file(&file)
            .await
            .map_err(|e| format!("create {file}: {e}"))?;
        record(file, sent);
        tokio::time::sleep(PACE).await;
    }
    Ok(())
}

/// Every path under `root` (not `root` itself), listed through the client
/// (each listing is a linearizable read on the primary).
pub async fn list_tree(client: &MasterClient, root: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut dirs = vec![root.to_string()];
    while let Some(dir) = dirs.pop() {
        let entries = client
            .list_status(&dir)
            .await
            .unwrap_or_else(|e| panic!("list {dir}: {e}"));
        for e in entries {
            if e.is_directory {
                dirs.push(e.path.clone());
            }
            found.insert(e.path);
        }
    }
    found
}

/// Panics naming the missing paths unless every acknowledged path is in
/// `tree`.
pub fn assert_all_present(acks: &[Ack], tree: &BTreeSet<String>, ctx: &str) {
    let missing: Vec<&str> = acks
        .iter()
        .map(|a| a.path.as_str())
        .filter(|p| !tree.contains(*p))
        .collect();
    assert!(
        missing.is_empty(),
        "{ctx}: {} of {} acknowledged creates are missing, first: {:?}",
        missing.len(),
        acks.len(),
        &missing[..missing.len().min(10)]
    );
}

/// Prints (never asserts) the time from `killed_at` to the first create
/// both sent and acknowledged after it (an answer the killed master sent
/// just before dying can still be read from the socket afterwards, so an
/// earlier request proves nothing), and how many creates were acknowledged
/// after it. Panics if none was: then the kill did not happen during the
/// workload and the test proved nothing.
pub fn report_failover(label: &str, acks: &[Ack], killed_at: Instant) {
    let after = acks.iter().filter(|a| a.at > killed_at).count();
    let first = acks
        .iter()
        .filter(|a| a.sent > killed_at)
        .min_by_key(|a| a.at)
        .unwrap_or_else(|| panic!("{label}: no create was sent and acknowledged after the kill"));
    eprintln!(
        "{label}: kill -9 -> first create sent and acknowledged after it: {} ms ({} via {}); \
         {after} of {} creates acknowledged after the kill",
        first.at.duration_since(killed_at).as_millis(),
        first.path,
        first.primary.as_deref().unwrap_or("?"),
        acks.len()
    );
}

/// A create of `path` with a fixed (client id, request seq), sent raw so
/// the very same request can be sent again to another master.
pub fn fixed_create(client_id: &'static [u8], seq: u64, path: &str) -> MutateRequest {
    MutateRequest {
        client_id: Bytes::from_static(client_id),
        request_seq: seq,
        op: Some(mutate_request::Op::CreateFile(CreateFile {
            path: path.to_string(),
        })),
    }
}

/// Sends `request` once to the master on `port`; panics on a gRPC error.
pub async fn mutate_on(port: u16, request: MutateRequest) -> FsResult {
    fs_client(port)
        .mutate(request)
        .await
        .unwrap_or_else(|e| panic!("Mutate on port {port}: {e:?}"))
        .into_inner()
}
