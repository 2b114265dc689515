//! A program using the master's client library against a running cluster
//! of `primacy master` processes: it finds the primary, writes, and lists.
//!
//! ```text
//! cargo run -p examples --example client -- --addresses 127.0.0.1:19998,127.0.0.1:19999
//! cargo run -p examples --example client -- --zk 127.0.0.1:2181
//! ```
//!
//! The client follows failovers by itself: a standby it reaches names the
//! primary, and a call that fails while there is none is retried (with
//! back-off, up to `alluxio.user.rpc.retry.max.duration`). A retried
//! mutation is applied once.

use std::process::ExitCode;

use clap::Parser;
use examples::{exit_code, init_logging};
use master::client::MasterClient;
use master::embed::MasterConfig;

#[derive(Parser)]
#[command(about = "Creates a file in a running primacy cluster and lists its directory")]
struct Args {
    /// The masters' RPC addresses (`alluxio.master.rpc.addresses`).
    #[arg(
        long,
        value_name = "HOST:PORT,...",
        conflicts_with = "zk",
        required_unless_present = "zk"
    )]
    addresses: Option<String>,
    /// The ZooKeeper ensemble the masters are elected in (`alluxio.zookeeper.address`).
    #[arg(long, value_name = "HOST:PORT,...")]
    zk: Option<String>,
    /// The file to create under /examples.
    #[arg(long, default_value = "hello")]
    file: String,
    /// Any other client setting, `-D key=value` (e.g. the ZooKeeper leader
    /// path, or `alluxio.user.rpc.retry.max.duration=10s`).
    #[arg(short = 'D', value_name = "KEY=VALUE")]
    define: Vec<String>,
}

/// `pub` because the test suite runs this file as a module of its own binary.
pub fn main() -> ExitCode {
    init_logging();
    exit_code(run(Args::parse()))
}

#[tokio::main]
async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    // How to find the primary is configuration, as for the masters: an
    // address list (ask each who is primary) or ZooKeeper (read the leader
    // node the primary publishes).
    let mut properties = match (&args.addresses, &args.zk) {
        (Some(list), _) => format!("alluxio.master.rpc.addresses={list}\n"),
        (None, Some(zk)) => {
            format!("alluxio.zookeeper.enabled=true\nalluxio.zookeeper.address={zk}\n")
        }
        (None, None) => return Err("give --addresses or --zk".into()),
    };
    for define in &args.define {
        properties.push_str(define);
        properties.push('\n');
    }
    let config = MasterConfig::from_properties(&properties)?;
    let client = MasterClient::from_config(&config)?;

    let (primary, info) = client.leader_info().await?;
    println!("primary: {primary} (epoch {})", info.epoch);

    // Mutations are retried across failovers under one request id, so
    // `mkdir -p` and the create are applied once even if retried.
    client.mkdir("/examples", true).await?;
    let path = format!("/examples/{}", args.file);
    let created = client.create_file(&path).await?;
    client.complete_file(&path, Vec::new()).await?;
    println!("created {} (inode {})", created.path, created.id);

    // Reads go to the primary after a read barrier: they see every write
    // acknowledged before them, whichever master acknowledged it.
    println!("/examples:");
    for entry in client.list_status("/examples").await? {
        let state = if entry.completed { "complete" } else { "open" };
        println!("  {} ({} bytes, {state})", entry.path, entry.length);
    }
    // Where the calls went (the client caches the primary it found).
    println!(
        "served by: {}",
        client.known_primary().unwrap_or_else(|| "-".into())
    );
    Ok(())
}
