//! # primacy examples
//!
//! Run them with `cargo run -p examples --example NAME`:
//!
//! - `embed_kv`: your own state machine ([`kv::Kv`], a key-value store with
//!   snapshots) made highly available on the embedded Raft journal: three
//!   members in one process, a failover, the state read after it.
//! - `embed_kv_zk`: the same code on the UFS journal (a shared `file://`
//!   folder) with a ZooKeeper election; only the properties differ. It
//!   starts ZooKeeper from the Debian package unless given `--zk HOST:PORT`.
//! - `client`: the master's client library against a running cluster of
//!   `primacy master` processes (`--addresses h:p,h:p` or `--zk h:p`).
//!
//! Read [`kv`] (the state machine, the part you write) and [`demo`] (the
//! calls that replicate it), then the examples themselves (the configuration).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![warn(missing_docs)]

pub mod demo;
pub mod kv;

use std::process::ExitCode;

/// Sends the libraries' logs to stderr at the level `RUST_LOG` names
/// (`warn` by default), keeping stdout for the example's own story.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The process exit for an example's result: 0, or 1 after printing the
/// error to stderr.
pub fn exit_code(result: Result<(), Box<dyn std::error::Error>>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
