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

/// Concurrent writers during a failover (primacy's and the peers').
pub const WRITERS: usize = 4;
/// Longest a failover may take before the repeat counts as failed.
pub const BOUND: Duration = Duration::from_secs(90);

/// How the primary is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGKILL: nothing of its shutdown path runs.
    Kill,
    /// SIGTERM: its graceful shutdown hands primacy over.
    Term,
}

impl Stop {
    /// The operation's name in the records.
    pub fn operation(self) -> &'static str {
        match self {
            Stop::Kill => "kill9-to-write",
            Stop::Term => "sigterm-to-write",
        }
    }
}

/// The client retry schedule of the failover writers: primacy's client
/// gets it as its `alluxio.user.rpc.retry.*` properties
/// (`Masters::client_config`), and the peers' writers sleep the same
/// back-off between a failed write and the next.
pub fn retry_settings() -> master::config::RetrySettings {
    master::config::RetrySettings {
        max_duration: Duration::from_secs(60),
        base_sleep: Duration::from_millis(20),
        max_sleep: Duration::from_millis(200),
    }
}

/// What one writer shares with the measurement: whether to go on, the
/// next write's number and where acknowledgements are recorded.
#[derive(Clone)]
pub struct WriterCtx {
    stop: Arc<AtomicBool>,
    acks: Arc<Mutex<Vec<(Instant, Instant)>>>,
    next: Arc<AtomicU64>,
}

impl WriterCtx {
    /// Whether the writer should issue another write.
    pub fn running(&self) -> bool {
        !self.stop.load(Ordering::Relaxed)
    }

    /// A number no other writer of this round gets (for a fresh name).
    pub fn next(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// Records that the write sent at `sent` was acknowledged now.
    pub fn ack(&self, sent: Instant) {
        if let Ok(mut a) = self.acks.lock() {
            a.push((sent, Instant::now()));
        }
    }
}

/// Writers that keep writing, recording when each acknowledged write was
/// sent.
pub struct Writers {
    ctx: WriterCtx,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Writers {
    /// Spawns `count` writers, each the future `writer(index, ctx)` that
    /// loops while `ctx.running()` and calls `ctx.ack` per acknowledged
    /// write.
    pub fn spawn<F, Fut>(count: usize, mut writer: F) -> Writers
    where
        F: FnMut(usize, WriterCtx) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let ctx = WriterCtx {
            stop: Arc::new(AtomicBool::new(false)),
            acks: Arc::new(Mutex::new(Vec::new())),
            next: Arc::new(AtomicU64::new(0)),
        };
        let tasks = (0..count)
            .map(|i| tokio::spawn(writer(i, ctx.clone())))
            .collect();
        Writers { ctx, tasks }
    }

    fn start(masters: &Masters, round: usize) -> Result<Writers, String> {
        let clients = masters.clients(WRITERS)?;
        let mut clients: Vec<Option<_>> = clients.into_iter().map(Some).collect();
        Ok(Writers::spawn(clients.len(), |i, ctx| {
            let c = clients[i].take();
            async move {
                let Some(c) = c else { return };
                let _ = c.mkdir(&format!("/failover/r{round}"), true).await;
                while ctx.running() {
                    let n = ctx.next();
                    let sent = Instant::now();
                    if c.create_file(&format!("/failover/r{round}/f{n}"))
                        .await
                        .is_ok()
                    {
                        ctx.ack(sent);
                    }
                }
            }
        }))
    }

    /// The first acknowledgement of a write sent after `at`, if any yet.
    fn first_after(&self, at: Instant) -> Option<Instant> {
        let acks = self.ctx.acks.lock().ok()?;
        acks.iter()
            .filter(|(sent, _)| *sent > at)
            .map(|(_, ack)| *ack)
            .min()
    }

    fn acknowledged(&self) -> usize {
        self.ctx.acks.lock().map(|a| a.len()).unwrap_or(0)
    }

    async fn finish(self) {
        self.ctx.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            // A writer stuck in a retry is abandoned, not awaited forever.
            let mut t = Box::pin(t);
            if tokio::time::timeout(Duration::from_secs(5), &mut t)
                .await
                .is_err()
            {
                t.abort();
            }
        }
    }
}

/// One failover under `writers`' load: waits until they write, calls
/// `signal` (which stops the primary), and returns the time from the
/// signal to the first acknowledgement of a write sent after it (`None`:
/// none within the bound). Stops the writers before returning.
pub async fn measure(writers: Writers, signal: impl FnOnce()) -> Option<Duration> {
    // Load first: the signal lands on a primary that is writing.
    let warm = Instant::now();
    while writers.acknowledged() < 20 && warm.elapsed() < BOUND {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let at = Instant::now();
    signal();
    let mut took = None;
    while at.elapsed() < BOUND {
        if let Some(ack) = writers.first_after(at) {
            took = Some(ack.duration_since(at));
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    writers.finish().await;
    took
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
            progress(format!("{} {}/{repeats}", stop.operation(), repeat + 1));
            let took = measure(writers, || {
                if let Some(p) = masters.procs[primary].as_mut() {
                    match stop {
                        Stop::Kill => p.kill9(),
                        Stop::Term => p.term(),
                    }
                }
            })
            .await;
            records.push(point(backend.name(), stop, took, repeat));
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

/// The record of one repeat on `system`: its time in every latency field,
/// or a failed repeat (`errors` 1, the bound as its time) when no write
/// was acknowledged.
pub fn point(system: &str, stop: Stop, took: Option<Duration>, repeat: usize) -> Record {
    let (t, ops, errors, note) = match took {
        Some(t) => (t, 1, 0, format!("repeat {}", repeat + 1)),
        None => (
            BOUND,
            0,
            1,
            format!("repeat {}: no write acknowledged", repeat + 1),
        ),
    };
    let ms = t.as_secs_f64() * 1000.0;
    Record {
        scenario: "failover".into(),
        system: system.into(),
        path: "client-rpc".into(),
        operation: stop.operation().into(),
        concurrency: WRITERS as u32,
        bytes: 0,
        ops,
        errors,
        seconds: t.as_secs_f64(),
        ops_per_sec: 0.0,
        p50_ms: ms,
        p99_ms: ms,
        p999_ms: ms,
        max_ms: ms,
        note,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The figure is to the first acknowledgement of a write *sent after*
    /// the signal: a write in flight across the signal and acknowledged
    /// just after it (a member that answered before dying) must not end
    /// the failover early.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_sent_before_the_signal_does_not_end_the_failover() {
        let signalled = Arc::new(AtomicBool::new(false));
        let after = Duration::from_millis(300);
        let writers = Writers::spawn(2, |_, ctx| {
            let signalled = signalled.clone();
            async move {
                while ctx.running() {
                    let sent = Instant::now();
                    let late = signalled.load(Ordering::SeqCst);
                    // Before the signal every write takes 20 ms, so one is
                    // in flight when it lands and is acknowledged soon
                    // after; writes sent after it take `after`.
                    tokio::time::sleep(if late {
                        after
                    } else {
                        Duration::from_millis(20)
                    })
                    .await;
                    ctx.ack(sent);
                }
            }
        });
        let took = measure(writers, || signalled.store(true, Ordering::SeqCst))
            .await
            .expect("writes sent after the signal were acknowledged");
        assert!(
            took >= after,
            "counted a write sent before the signal: {took:?}"
        );
    }

    #[test]
    fn a_repeat_without_an_acknowledged_write_is_a_failure_not_a_time() {
        let r = point("etcd-3", Stop::Kill, None, 0);
        assert_eq!((r.ops, r.errors), (0, 1));
        assert!(r.note.contains("no write acknowledged"), "{r:?}");
        let ok = point("etcd-3", Stop::Term, Some(Duration::from_millis(12)), 1);
        assert_eq!((ok.ops, ok.errors), (1, 0));
        assert_eq!(ok.operation, "sigterm-to-write");
        assert!((ok.p50_ms - 12.0).abs() < 1e-9);
        // The summary leaves the failed repeat out of min/median/max.
        let lines = summary(&[r, ok]);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("sigterm-to-write"), "{lines:?}");
    }
}
