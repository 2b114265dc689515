//! A steady stream of client writes for the administration tests: writer
//! tasks create files one after another until told to stop, every
//! acknowledged create recorded with when it was sent and answered, so a
//! test can check that nothing acknowledged was lost and measure the
//! longest a client waited (the client-visible pause) during an operation.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use master::client::MasterClient;
use tokio::task::JoinHandle;

use super::workload::Ack;

/// Pause between two creates of one writer: keeps the stream steady
/// without saturating the shared test machine.
const PACE: Duration = Duration::from_millis(5);

/// Writer tasks creating `<root>/w<k>/f<i>` until stopped.
pub struct Stream {
    stop: Arc<AtomicBool>,
    acks: Arc<Mutex<Vec<Ack>>>,
    tasks: Vec<JoinHandle<Result<(), String>>>,
}

impl Stream {
    /// Starts `writers` tasks sharing `client` (as one application would).
    /// A task stops at its first failed call (after the client's own
    /// retries) and [`Stream::finish`] reports it.
    pub fn start(client: &MasterClient, root: &str, writers: usize) -> Stream {
        let stop = Arc::new(AtomicBool::new(false));
        let acks = Arc::new(Mutex::new(Vec::new()));
        let tasks = (0..writers)
            .map(|k| {
                let client = client.clone();
                let stop = stop.clone();
                let acks = acks.clone();
                let dir = format!("{root}/w{k}");
                tokio::spawn(async move {
                    let sent = Instant::now();
                    client
                        .mkdir(&dir, true)
                        .await
                        .map_err(|e| format!("mkdir -p {dir}: {e}"))?;
                    record(&acks, &client, dir.clone(), sent);
                    let mut i = 0u64;
                    while !stop.load(Ordering::SeqCst) {
                        let path = format!("{dir}/f{i}");
                        let sent = Instant::now();
                        client
                            .create_file(&path)
                            .await
                            .map_err(|e| format!("create {path}: {e}"))?;
                        record(&acks, &client, path, sent);
                        i += 1;
                        tokio::time::sleep(PACE).await;
                    }
                    Ok(())
                })
            })
            .collect();
        Stream { stop, acks, tasks }
    }

    /// Acknowledged creates so far.
    pub fn acked(&self) -> usize {
        self.acks.lock().expect("acks").len()
    }

    /// Waits until `n` more creates than now are acknowledged (the stream
    /// is flowing); panics after `bound` or when a writer ended.
    pub async fn wait_more(&self, n: usize, bound: Duration) {
        let target = self.acked() + n;
        let deadline = Instant::now() + bound;
        while self.acked() < target {
            if let Some(done) = self.tasks.iter().find(|t| t.is_finished()) {
                let _ = done;
                panic!("a writer ended early with {} acknowledged", self.acked());
            }
            assert!(
                Instant::now() < deadline,
                "only {} of {target} creates acknowledged within {bound:?}",
                self.acked()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Stops the writers and waits (bounded) for them; panics naming the
    /// first failed call. Returns every acknowledgement.
    pub async fn finish(self, bound: Duration) -> Vec<Ack> {
        self.stop.store(true, Ordering::SeqCst);
        let results = tokio::time::timeout(bound, futures::future::join_all(self.tasks))
            .await
            .unwrap_or_else(|_| panic!("the writers did not stop within {bound:?}"));
        for r in results {
            if let Err(e) = r.expect("writer task panicked") {
                panic!("a client saw an error: {e}");
            }
        }
        let acks = self.acks.lock().expect("acks").clone();
        acks
    }
}

fn record(acks: &Mutex<Vec<Ack>>, client: &MasterClient, path: String, sent: Instant) {
    let ack = Ack {
        path,
        sent,
        at: Instant::now(),
        primary: client.known_primary(),
    };
    acks.lock().expect("acks").push(ack);
}

/// The longest single call among those in flight at some point of
/// `[from, to]`: how long a client waited at most during that window.
pub fn longest_call(acks: &[Ack], from: Instant, to: Instant) -> Duration {
    acks.iter()
        .filter(|a| a.at >= from && a.sent <= to)
        .map(|a| a.at.duration_since(a.sent))
        .max()
        .unwrap_or_default()
}

/// The longest stretch of `[from, to]` in which no create was
/// acknowledged (by any writer).
pub fn longest_gap(acks: &[Ack], from: Instant, to: Instant) -> Duration {
    let mut times: Vec<Instant> = acks
        .iter()
        .map(|a| a.at)
        .filter(|t| *t >= from && *t <= to)
        .collect();
    times.sort();
    let mut prev = from;
    let mut gap = Duration::ZERO;
    for t in times {
        gap = gap.max(t.duration_since(prev));
        prev = t;
    }
    gap.max(to.saturating_duration_since(prev))
}
