//! Your own state machine, highly available on the embedded Raft journal:
//! three members in one process, a failover, the state read after it.
//!
//! ```text
//! cargo run -p examples --example embed_kv
//! ```
//!
//! The state machine is `examples/src/kv.rs`; the calls that replicate it
//! (`format`, `Replicated::open`, `wait_for_any_primary`, `propose`, `read`)
//! are `examples/src/demo.rs`. This file is the part that differs per
//! deployment: the configuration. `embed_kv_zk` runs the same demo on the
//! UFS journal with ZooKeeper by changing only these properties.

use std::net::TcpListener;
use std::process::ExitCode;

use examples::{demo, exit_code, init_logging};
use master::embed::MasterConfig;

/// `pub` because the test suite runs this file as a module of its own binary.
pub fn main() -> ExitCode {
    init_logging();
    exit_code(run())
}

#[tokio::main]
async fn run() -> Result<(), Box<dyn std::error::Error>> {
    // Each member keeps its Raft log on its own disk; here, one temporary
    // directory per member (removed when `dir` is dropped).
    let dir = tempfile::tempdir()?;
    // Every member lists the whole group by peer address. One process
    // plays all three, so they get three loopback ports.
    let peers = [free_port()?, free_port()?, free_port()?];
    let group = peers
        .iter()
        .map(|port| format!("127.0.0.1:{port}"))
        .collect::<Vec<_>>()
        .join(",");

    let mut configs = Vec::new();
    for (i, peer) in peers.iter().enumerate() {
        let folder = dir.path().join(format!("m{}", i + 1));
        // The same text could be a primacy-site.properties file. A member
        // knows which one it is from hostname + embedded.journal.port.
        // rpc.port is where your service would listen: the journal tells
        // standbys (and so your clients) the primary's address by it.
        configs.push(MasterConfig::from_properties(&format!(
            "alluxio.master.journal.type=EMBEDDED
             alluxio.master.embedded.journal.addresses={group}
             alluxio.master.hostname=127.0.0.1
             alluxio.master.embedded.journal.port={peer}
             alluxio.master.rpc.port={rpc}
             alluxio.master.journal.folder={folder}
             # Elections faster than the 1-2 s default, for one machine.
             alluxio.master.embedded.journal.election.timeout.min=300ms
             alluxio.master.embedded.journal.election.timeout.max=600ms",
            rpc = free_port()?,
            folder = folder.display(),
        ))?);
    }
    demo::run(&configs, demo::WAIT).await?;
    Ok(())
}

/// A free loopback port (another process could take it before the member
/// binds it; fine for a demo).
fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
