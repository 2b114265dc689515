//! The same state machine and the same code as `embed_kv`, on the UFS
//! journal (a shared folder) with a ZooKeeper election: switching backends
//! is configuration, not code.
//!
//! ```text
//! cargo run -p examples --example embed_kv_zk                    # starts ZooKeeper itself
//! cargo run -p examples --example embed_kv_zk -- --zk HOST:PORT  # uses yours
//! ```
//!
//! Without `--zk` it starts a ZooKeeper from the Debian package `zookeeper`
//! on a free loopback port and stops it before exiting. The journal folder
//! is a temporary `file://` directory; in production it is a folder every
//! master reaches (NFS, S3, ...).

use std::net::TcpListener;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use election_zk::launcher::LocalZooKeeper;
use examples::{demo, exit_code, init_logging};
use master::embed::MasterConfig;

#[derive(Parser)]
#[command(about = "A key-value store replicated by the UFS journal with ZooKeeper")]
struct Args {
    /// An existing ZooKeeper ensemble, `host:port[,host:port...]`; without
    /// it a local one is started and stopped.
    #[arg(long, value_name = "HOST:PORT")]
    zk: Option<String>,
    /// Seconds to wait for a primary (a ZooKeeper that cannot be reached
    /// means none) before giving up.
    #[arg(long, value_name = "SECONDS", default_value_t = demo::WAIT.as_secs())]
    wait: u64,
}

/// `pub` because the test suite runs this file as a module of its own binary.
pub fn main() -> ExitCode {
    init_logging();
    let args = Args::parse();
    // Started here, on the main thread, before any runtime: the JVM is tied
    // to the thread that starts it and killed if this process dies.
    let mut local = None;
    let zk = match args.zk {
        Some(address) => address,
        None => match LocalZooKeeper::start() {
            Ok(server) => {
                let address = server.address();
                println!(
                    "started ZooKeeper at {address} (pid {})",
                    server.pid().unwrap_or_default()
                );
                local = Some(server);
                address
            }
            Err(e) => {
                eprintln!("error: {e}\n(or pass --zk HOST:PORT of a running ZooKeeper)");
                return ExitCode::FAILURE;
            }
        },
    };
    let result = run(&zk, Duration::from_secs(args.wait));
    if let Some(mut server) = local {
        server.stop();
        println!("stopped ZooKeeper");
    }
    exit_code(result)
}

#[tokio::main]
async fn run(zk: &str, wait: Duration) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    // One folder shared by every member: the primary writes, standbys tail.
    let folder = format!("file://{}/journal", dir.path().display());
    // Our own znodes, so runs against a shared ZooKeeper never meet.
    let root = format!("/primacy-examples/{}-{}", std::process::id(), free_port()?);

    let mut configs = Vec::new();
    for _ in 0..3 {
        // Compared with embed_kv: no journal type or peer list; the folder is
        // shared; ZooKeeper elects. rpc.port tells the members apart (it is
        // the address the primary advertises in ZooKeeper).
        configs.push(MasterConfig::from_properties(&format!(
            "alluxio.master.journal.type=UFS
             alluxio.master.journal.folder={folder}
             alluxio.zookeeper.enabled=true
             alluxio.zookeeper.address={zk}
             alluxio.zookeeper.election.path={root}/election
             alluxio.zookeeper.leader.path={root}/leader
             alluxio.master.hostname=127.0.0.1
             alluxio.master.rpc.port={rpc}
             # A short session, so a member that dies without leaving is
             # replaced in seconds (the default is 5s).
             alluxio.zookeeper.session.timeout=2s",
            rpc = free_port()?,
        ))?);
    }
    demo::run(&configs, wait).await?;
    Ok(())
}

/// A free loopback port (another process could take it; fine for a demo).
fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
