//! The metadata scenario: create-file, get-status (linearizable) and
//! list-status per second through real `primacy master` processes and
//! their gRPC client, at each concurrency; and the peers' nearest
//! operations (ZooKeeper create / get / children) with the same loop.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use master::client::MasterClient;

use crate::harness::load::{closed_loop, Limits};
use crate::peers::run::PeerOp;
use crate::peers::{Peer, PeerError, CONNECTIONS};
use crate::report::Record;
use crate::scenario::append::Backend;
use crate::scenario::masters::Masters;

/// The operations [`run_backend`] can measure, in the order it runs them.
pub const OPERATIONS: [&str; 3] = ["create-file", "get-status", "list-status"];

/// Files the get-status callers read, round robin.
const STAT_FILES: u64 = 1000;
/// Files in the directory the list-status callers list.
const LIST_FILES: u64 = 100;

async fn fill(clients: &Arc<Vec<MasterClient>>, dir: &str, files: u64) -> Result<(), String> {
    let first = clients.first().ok_or("no client")?;
    first.mkdir(dir, true).await.map_err(|e| e.to_string())?;
    let c = clients.clone();
    let dir = dir.to_string();
    let limits = Limits {
        duration: Duration::from_secs(600),
        max_ops: Some(files),
    };
    let s = closed_loop(16, limits, move |caller, n| {
        let c = c[caller % c.len()].clone();
        let path = format!("{dir}/f{n}");
        async move {
            c.create_file(&path)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    })
    .await;
    match s.first_error {
        Some(e) => Err(format!("filling {files} files: {e}")),
        None => Ok(()),
    }
}

/// The metadata scenario on one backend's masters under `dir`: the
/// operations named in `ops` (of [`OPERATIONS`]) at each concurrency.
pub async fn run_backend(
    backend: Backend,
    dir: &Path,
    zookeeper: Option<&str>,
    concurrency: &[usize],
    ops: &[String],
    limits: Limits,
    progress: &(dyn Fn(String) + Sync),
) -> Result<Vec<Record>, String> {
    progress("starting the masters".into());
    let mut masters = Masters::start(backend, dir, zookeeper)?;
    masters.wait_primary(Duration::from_secs(120)).await?;
    let clients = Arc::new(masters.clients(CONNECTIONS)?);
    let stat_files = STAT_FILES.min(limits.max_ops.unwrap_or(STAT_FILES)).max(1);
    progress("creating the files to read".into());
    fill(&clients, "/bench/stat", stat_files).await?;
    fill(&clients, "/bench/list", LIST_FILES).await?;
    let system = backend.name();
    let mut records = Vec::new();
    let wanted = |op: &str| ops.iter().any(|o| o == op);
    for &c in concurrency {
        if wanted("create-file") {
            progress(format!("create-file x {c}"));
            let base = format!("/bench/c{c}");
            clients[0]
                .mkdir(&base, true)
                .await
                .map_err(|e| e.to_string())?;
            let cl = clients.clone();
            let s = closed_loop(c, limits, move |caller, n| {
                let cl = cl[caller % cl.len()].clone();
                let path = format!("{base}/f{n}");
                async move {
                    cl.create_file(&path)
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                }
            })
            .await;
            records.push(Record::from_sample(
                "metadata",
                system,
                "client-rpc",
                "create-file",
                c,
                0,
                &s,
            ));
        }

        if wanted("get-status") {
            progress(format!("get-status x {c}"));
            let cl = clients.clone();
            let s = closed_loop(c, limits, move |caller, n| {
                let cl = cl[caller % cl.len()].clone();
                let path = format!("/bench/stat/f{}", n % stat_files);
                async move {
                    cl.get_status(&path)
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                }
            })
            .await;
            records.push(Record::from_sample(
                "metadata",
                system,
                "client-rpc",
                "get-status",
                c,
                0,
                &s,
            ));
        }

        if wanted("list-status") {
            progress(format!("list-status x {c}"));
            let cl = clients.clone();
            let s = closed_loop(c, limits, move |caller, _| {
                let cl = cl[caller % cl.len()].clone();
                async move {
                    cl.list_status("/bench/list")
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                }
            })
            .await;
            records.push(Record::from_sample(
                "metadata",
                system,
                "client-rpc",
                "list-status",
                c,
                0,
                &s,
            ));
        }
    }
    drop(masters);
    Ok(records)
}

/// The metadata scenario on a peer: create (empty node), get (data of an
/// existing node) and children (of a node with 100 children).
pub async fn run_peer(
    peer: Peer,
    dir: &Path,
    concurrency: &[usize],
    limits: Limits,
    progress: &(dyn Fn(String) + Sync),
) -> Result<Vec<Record>, PeerError> {
    let (servers, clients) = peer.start(dir, CONNECTIONS).await?;
    let stat_files = STAT_FILES.min(limits.max_ops.unwrap_or(STAT_FILES)).max(1);
    progress("creating the nodes to read".into());
    clients
        .fill("/stat", stat_files)
        .await
        .map_err(PeerError::Failed)?;
    clients
        .fill("/list", LIST_FILES)
        .await
        .map_err(PeerError::Failed)?;
    let mut records = Vec::new();
    for &c in concurrency {
        progress(format!("create x {c}"));
        let prefix = format!("/c{c}");
        clients.prepare(&prefix).await.map_err(PeerError::Failed)?;
        let (create, get, list) = peer.metadata_ops();
        records.push(
            clients
                .point(
                    "metadata",
                    peer.name(),
                    create,
                    PeerOp::Create { prefix, bytes: 0 },
                    c,
                    limits,
                )
                .await,
        );
        progress(format!("get x {c}"));
        records.push(
            clients
                .point(
                    "metadata",
                    peer.name(),
                    get,
                    PeerOp::Get {
                        prefix: "/stat".into(),
                        keys: stat_files,
                    },
                    c,
                    limits,
                )
                .await,
        );
        progress(format!("list x {c}"));
        records.push(
            clients
                .point(
                    "metadata",
                    peer.name(),
                    list,
                    PeerOp::List {
                        prefix: "/list".into(),
                    },
                    c,
                    limits,
                )
                .await,
        );
    }
    drop(clients);
    drop(servers);
    Ok(records)
}
