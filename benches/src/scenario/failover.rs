//! The failover scenario: writers create files through the client while
//! the primary is killed with SIGKILL (or stopped with SIGTERM, a graceful
//! handoff); the figure is the time from the signal to the first
//! acknowledged write sent after it, as a client saw it. Repeated, with
//! the stopped master restarted between repeats.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::report::Record;
use crate::scenario::append::Backend;
use crate::scenario::masters::Masters;

/// Concurrent writers during a failover.
const WRITERS: usize = 4;
/// Longest a failover may take before the repeat counts as failed.
const BOUND: Duration = Duration::from_secs(90);

/// How the primary is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGKILL: nothing of its shutdown path runs.
    Kill,
    /// SIGTERM: its graceful shutdown hands primacy over.
    Term,
}

impl Stop {
    fn operation(self) -> &'static str {
        match self {
            Stop::Kill => "kill9-to-write",
            Stop::Term => "sigterm-to-write",
        }
    }
}

/// Writers that keep creating files, recording when each acknowledged
/// write was sent.
struct Writers {
    stop: Arc<AtomicBool>,
    /// (sent, acknowledged) of every acknowledged write.
    acks: Arc<Mutex<Vec<(Instant, Instant)>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Writers {
    fn start(masters: &Masters, round: usize) -> Result<Writers, String> {
        let clients = masters.clients(WRITERS)?;
        let stop = Arc::new(AtomicBool::new(false));
        let acks = Arc::new(Mutex::new(Vec::new()));
        let next = Arc::new(AtomicU64::new(0));
        let tasks = clients
            .into_iter()
            .map(|c| {
                let (stop, acks, next) = (stop.clone(), acks.clone(), next.clone());
                tokio::spawn(async move {
                    let _ = c.mkdir(&format!("/failover/r{round}"), true).await;
                    while !stop.load(Ordering::Relaxed) {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        let sent = Instant::now();
                        if c.create_file(&format!("/failover/r{round}/f{n}"))
                            .await
                            .is_ok()
                        {
                            if let Ok(mut a) = acks.lock() {
                                a.push((sent, Instant::now()));
                            }
                        }
                    }
                })
            })
            .collect();
        Ok(Writers { stop, acks, tasks })
    }

    /// The first acknowledgement of a write sent after `at`, if any yet.
    fn first_after(&self, at: Instant) -> Option<Instant> {
        let acks = self.acks.lock().ok()?;
        acks.iter()
            .filter(|(sent, _)| *sent > at)
            .map(|(_, ack)| *ack)
            .min()
    }

    fn acknowledged(&self) -> usize {
        self.acks.lock().map(|a| a.len()).unwrap_or(0)
    }

    async fn finish(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            // A writer stuck in a retry is abandoned, not awaited forever.
            if tokio::time::timeout(Duration::from_secs(5), &mut Box::pin(t))
                .await
                .is_err()
            {
                continue;
            }
        }
    }
}

/// `repeats` failovers of each kind in `stops` on `backend`'s masters
/// under `dir`; one record per repeat (its time in `p50_ms`).
pub async fn run_backend(
    backend: Backend,
    dir: &Path,
    zookeeper: Option<&str>,
    stops: &[Stop],
    repeats: usize,
    progress: &(dyn Fn(String) + Sync),
) -> Result<Vec<Record>, String> {
    progress("starting the masters".into());
    let mut masters = Masters::start(backend, dir, zookeeper)?;
    let mut records = Vec::new();
    let mut round = 0;
    for &stop in stops {
        for repeat in 0..repeats {
            round += 1;
            let primary = masters.wait_primary(BOUND).await?;
            let writers = Writers::start(&masters, round)?;
            // Load first: the signal lands on a primary that is writing.
            let warm = Instant::now();
            while writers.acknowledged() < 20 && warm.elapsed() < BOUND {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            progress(format!("{} {}/{repeats}", stop.operation(), repeat + 1));
            let at = Instant::now();
            if let Some(p) = masters.procs[primary].as_mut() {
                match stop {
                    Stop::Kill => p.kill9(),
                    Stop::Term => p.term(),
                }
            }
            let mut took = None;
            while at.elapsed() < BOUND {
                if let Some(ack) = writers.first_after(at) {
                    took = Some(ack.duration_since(at));
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            writers.finish().await;
            let record = match took {
                Some(t) => point(backend, stop, t, repeat, ""),
                None => {
                    let mut r = point(backend, stop, BOUND, repeat, "no write acknowledged");
                    r.ops = 0;
                    r.errors = 1;
                    r
                }
            };
            records.push(record);
            // Bring the group back to full strength for the next repeat.
            if let Some(mut p) = masters.procs[primary].take() {
                if !p.wait_exit(Duration::from_secs(30)) {
                    p.kill9();
                }
            }
            masters.start_one(primary)?;
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    drop(masters);
    Ok(records)
}

fn point(backend: Backend, stop: Stop, took: Duration, repeat: usize, note: &str) -> Record {
    let ms = took.as_secs_f64() * 1000.0;
    Record {
        scenario: "failover".into(),
        system: backend.name().into(),
        path: "client-rpc".into(),
        operation: stop.operation().into(),
        concurrency: WRITERS as u32,
        bytes: 0,
        ops: 1,
        errors: 0,
        seconds: took.as_secs_f64(),
        ops_per_sec: 0.0,
        p50_ms: ms,
        p99_ms: ms,
        p999_ms: ms,
        max_ms: ms,
        note: if note.is_empty() {
            format!("repeat {}", repeat + 1)
        } else {
            format!("repeat {}: {note}", repeat + 1)
        },
    }
}

/// min / median / max of each (system, operation)'s repeats, for the
/// summary lines.
pub fn summary(records: &[Record]) -> Vec<String> {
    let mut groups: std::collections::BTreeMap<(String, String), Vec<f64>> = Default::default();
    for r in records
        .iter()
        .filter(|r| r.scenario == "failover" && r.ops > 0)
    {
        groups
            .entry((r.system.clone(), r.operation.clone()))
            .or_default()
            .push(r.p50_ms);
    }
    groups
        .into_iter()
        .map(|((system, op), mut t)| {
            t.sort_by(f64::total_cmp);
            let median = t[t.len() / 2];
            format!(
                "failover {system:<10} {op:<17} min {:>8.0} ms  median {:>8.0} ms  max {:>8.0} ms  ({} repeats)",
                t[0],
                median,
                t[t.len() - 1],
                t.len()
            )
        })
        .collect()
}
