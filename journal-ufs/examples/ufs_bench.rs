//! Measures the UFS journal per store: append throughput with 1 and 256
//! concurrent proposers, and how long after an acknowledgement a standby
//! has applied the entry (tail latency).
//!
//! ```text
//! cargo run --release -p journal-ufs --features testkit --example ufs_bench -- \
//!     [--store file|s3|both] [--seconds N] [--samples N]
//! ```
//!
//! `file` is a temporary directory (fsync on); `s3` is a moto server the
//! program starts on a loopback port (`journal_ufs::testkit`). A loopback
//! moto is not a cloud store: its figures show the journal's request
//! pattern on an S3 API, not what S3 itself costs per request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use journal_core::testkit::{ManualElection, TestMachine};
use journal_core::{shared, wait_for_primary, ElectionState, JournalSystem};
use journal_ufs::inspect::read_opened;
use journal_ufs::testkit::MotoServer;
use journal_ufs::{format, open_folder_with, UfsJournal, UfsJournalConfig};

struct Target {
    label: &'static str,
    url: String,
    options: std::collections::BTreeMap<String, String>,
}

fn config(target: &Target, member: usize) -> UfsJournalConfig {
    let mut cfg = UfsJournalConfig::new(target.url.clone(), format!("bench-{member}:19998"));
    cfg.store_options = target.options.clone();
    cfg.primary_writes_checkpoints = false;
    // Defaults otherwise: tailer sleep 20 ms (alluxio.master.journal.tailer.sleep.time).
    cfg
}

async fn throughput(
    target: &Target,
    primary: &Arc<UfsJournal>,
    proposers: usize,
    seconds: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let folder = open_folder_with(&target.url, false, &target.options)?;
    let chunks_before = read_opened(&folder).await?.chunks.len();
    let acked = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..proposers)
        .map(|p| {
            let j = primary.clone();
            let acked = acked.clone();
            tokio::spawn(async move {
                let mut i = 0u64;
                while Instant::now() < deadline {
                    let entry = Bytes::from(format!("{p:04}-{i:012}-{}", "x".repeat(80)));
                    j.propose(entry).await?;
                    acked.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
                Ok::<_, journal_core::JournalError>(())
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let n = acked.load(Ordering::Relaxed);
    let chunks = read_opened(&folder).await?.chunks.len() - chunks_before;
    println!(
        "{:<5} append, {proposers:>3} proposers: {n:>7} entries in {elapsed:.1} s = {:>8.0} entries/s, {chunks} chunks ({:.1} entries/chunk)",
        target.label,
        n as f64 / elapsed,
        n as f64 / chunks.max(1) as f64
    );
    Ok(())
}

async fn tail_latency(
    target: &Target,
    primary: &Arc<UfsJournal>,
    standby: &Arc<UfsJournal>,
    samples: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut lat = Vec::with_capacity(samples);
    for i in 0..samples {
        primary.propose(Bytes::from(format!("tail-{i}"))).await?;
        let acked = Instant::now();
        let seq = primary.status().last_applied;
        while standby.status().last_applied < seq {
            if acked.elapsed() > Duration::from_secs(30) {
                return Err("the standby did not apply an entry within 30 s".into());
            }
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        lat.push(acked.elapsed());
    }
    lat.sort();
    let at = |q: f64| lat[((lat.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
    println!(
        "{:<5} standby tail latency (ack -> applied on the standby, tailer sleep 20 ms), {samples} samples: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        target.label,
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0)
    );
    Ok(())
}

async fn bench(
    target: Target,
    seconds: u64,
    samples: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let folder = open_folder_with(&target.url, true, &target.options)?;
    format(&folder, "bench").await?;
    let elections = [
        Arc::new(ManualElection::new()),
        Arc::new(ManualElection::new()),
    ];
    let primary = UfsJournal::open(
        config(&target, 0),
        elections[0].clone(),
        shared(TestMachine::new()),
    )
    .await?;
    let standby = UfsJournal::open(
        config(&target, 1),
        elections[1].clone(),
        shared(TestMachine::new()),
    )
    .await?;
    elections[0].set(ElectionState::Leader { epoch: 1 });
    elections[1].set(ElectionState::Follower {
        leader: Some("bench-0:19998".into()),
    });
    wait_for_primary(&mut primary.role(), Duration::from_secs(60)).await?;
    tail_latency(&target, &primary, &standby, samples).await?;
    for proposers in [1, 256] {
        throughput(&target, &primary, proposers, seconds).await?;
    }
    standby.shutdown().await;
    primary.shutdown().await;
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let store = value("--store").unwrap_or_else(|| "both".into());
    let seconds: u64 = value("--seconds").map_or(Ok(10), |s| s.parse())?;
    let samples: usize = value("--samples").map_or(Ok(200), |s| s.parse())?;
    if matches!(store.as_str(), "file" | "both") {
        let dir = tempfile::tempdir()?;
        let target = Target {
            label: "file",
            url: format!("file://{}/journal", dir.path().display()),
            options: Default::default(),
        };
        bench(target, seconds, samples).await?;
    }
    if matches!(store.as_str(), "s3" | "both") {
        let server = MotoServer::start("bench")?;
        let target = Target {
            label: "s3",
            url: server.url("journal"),
            options: server.options(),
        };
        bench(target, seconds, samples).await?;
    }
    Ok(())
}
