//! Taking a snapshot of a large state does not stall the Raft driver: with a
//! state machine that implements `freeze`, proposals keep committing while
//! the file is written in the background, no election happens, and the
//! snapshot restores to an equal state on a member that joins from it.
//!
//! The machine holds a ~200 MB ballast behind an `Arc` (set by one entry,
//! so every member has it), which makes `freeze` O(1) in the ballast.

mod common;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{free_addresses, init_tracing, test_config};
use journal_core::testkit::TestMachine;
use journal_core::{FrozenState, JournalSystem, StateMachine};
use journal_raft::RaftJournal;
use parking_lot::{Mutex, RwLock};

const BALLAST: usize = 200 << 20;

#[derive(Clone, Default)]
struct Ballasted {
    inner: TestMachine,
    ballast: Arc<Vec<u8>>,
    freeze: bool,
}

impl StateMachine for Ballasted {
    fn apply(&mut self, seq: u64, entry: &[u8]) -> Bytes {
        if let Some(n) = entry.strip_prefix(b"BALLAST:") {
            let n: usize = std::str::from_utf8(n).unwrap().parse().unwrap();
            self.ballast = Arc::new(vec![0xa5; n]);
        }
        self.inner.apply(seq, entry)
    }
    fn snapshot(&self, out: &mut dyn Write) -> std::io::Result<()> {
        self.write_to(out)
    }
    fn restore(&mut self, input: &mut dyn Read) -> std::io::Result<()> {
        let mut word = [0u8; 8];
        input.read_exact(&mut word)?;
        let mut ballast = vec![0u8; u64::from_le_bytes(word) as usize];
        input.read_exact(&mut ballast)?;
        self.ballast = Arc::new(ballast);
        self.inner.restore(input)
    }
    fn freeze(&self) -> Option<Box<dyn FrozenState>> {
        self.freeze
            .then(|| Box::new(self.clone()) as Box<dyn FrozenState>)
    }
}

impl FrozenState for Ballasted {
    fn write_to(&self, out: &mut dyn Write) -> std::io::Result<()> {
        out.write_all(&(self.ballast.len() as u64).to_le_bytes())?;
        for piece in self.ballast.chunks(1 << 20) {
            out.write_all(piece)?;
        }
        self.inner.write_to(out)
    }
}

struct Measured {
    /// Proposals that started and completed while one snapshot file was
    /// being written (the writer started before and ended after).
    inside: usize,
    /// Longest time between two consecutive proposal completions while
    /// the snapshot was taken.
    max_gap: Duration,
    write_time: Duration,
}

async fn open(
    addr: &str,
    initial: &[String],
    dir: &std::path::Path,
    freeze: bool,
) -> (Arc<RaftJournal>, Arc<RwLock<Ballasted>>) {
    let machine = Arc::new(RwLock::new(Ballasted {
        freeze,
        ..Default::default()
    }));
    let cfg = test_config(addr, initial, dir);
    common::ensure_formatted(&cfg).expect("format");
    let j = RaftJournal::open(cfg, machine.clone()).await.expect("open");
    (j, machine)
}

async fn run(freeze: bool) -> Measured {
    let root = tempfile::tempdir().unwrap();
    let addrs = free_addresses(3);
    let initial = addrs[..2].to_vec();
    let mut members = Vec::new();
    for (i, addr) in initial.iter().enumerate() {
        members.push(open(addr, &initial, &root.path().join(format!("m{i}")), freeze).await);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let p = loop {
        if let Some(p) = (0..2).find(|i| members[*i].0.role().borrow().is_primary()) {
            break p;
        }
        assert!(Instant::now() < deadline, "no primary");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let leader = members[p].0.clone();
    leader
        .propose(Bytes::from(format!("BALLAST:{BALLAST}")))
        .await
        .unwrap();
    // The first snapshot of a new leader may still be running.
    journal_core::testkit::wait_until("no snapshot being written", Duration::from_secs(60), || {
        let c = leader.counters();
        c.snapshot_writes_started == c.snapshot_writes_finished
    })
    .await;
    let leader_id = leader.leader_id();
    let term = leader.status().epoch;

    let stop = Arc::new(AtomicBool::new(false));
    let inside = Arc::new(Mutex::new(0usize));
    let completions = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let mut tasks = Vec::new();
    for t in 0..8 {
        let (j, stop, inside, completions) = (
            leader.clone(),
            stop.clone(),
            inside.clone(),
            completions.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                let before = j.counters();
                j.propose(Bytes::from(format!("p-{t}-{n}")))
                    .await
                    .expect("propose during snapshot");
                let after = j.counters();
                completions.lock().push(Instant::now());
                let writing = before.snapshot_writes_started == before.snapshot_writes_finished + 1;
                if writing
                    && before.snapshot_writes_started == after.snapshot_writes_started
                    && before.snapshot_writes_finished == after.snapshot_writes_finished
                {
                    *inside.lock() += 1;
                }
                n += 1;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    leader.checkpoint().await.expect("checkpoint");
    let write_time = started.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
    let ended = started + write_time;
    let times = completions.lock().clone();
    let mut max_gap = Duration::ZERO;
    let mut prev = started;
    for t in times.iter().copied().filter(|t| *t >= started) {
        if prev <= ended {
            max_gap = max_gap.max(t - prev);
        }
        prev = t;
    }
    assert_eq!(
        leader.leader_id(),
        leader_id,
        "leadership moved during the snapshot"
    );
    assert_eq!(
        leader.status().epoch,
        term,
        "an election happened during the snapshot"
    );
    assert_eq!(
        members[1 - p].0.status().epoch,
        term,
        "the follower saw an election"
    );

    // A member that joins starts from a snapshot of this state.
    let third = open(&addrs[2], &initial, &root.path().join("m2"), freeze).await;
    leader.add_member("", &addrs[2]).await.expect("add member");
    let target = leader.status().last_applied;
    let deadline = Instant::now() + Duration::from_secs(60);
    while third.0.status().last_applied < target {
        assert!(Instant::now() < deadline, "the new member did not catch up");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        third.0.snapshots_installed() >= 1,
        "the new member did not start from a snapshot"
    );
    {
        let (a, b) = (members[p].1.read(), third.1.read());
        let upto = |m: &Ballasted| {
            m.inner
                .entries
                .iter()
                .filter(|(s, _)| *s <= target)
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(
            upto(&a),
            upto(&b),
            "entries differ on the member restored from the snapshot"
        );
        assert_eq!(a.ballast.len(), b.ballast.len());
        assert!(a.ballast == b.ballast, "ballast differs");
    }
    assert!(third
        .0
        .status()
        .members
        .iter()
        .any(|m| m.id == third.0.id().to_string()));
    third.0.shutdown().await;
    for (j, _) in members {
        j.shutdown().await;
    }
    let inside = *inside.lock();
    Measured {
        inside,
        max_gap,
        write_time,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn proposals_commit_while_a_large_snapshot_is_written() {
    init_tracing();
    let m = tokio::time::timeout(Duration::from_secs(240), run(true))
        .await
        .expect("test finishes in 4 minutes");
    println!(
        "freeze: {} proposals completed inside the snapshot write; checkpoint took {:?}; max gap between completions {:?}",
        m.inside, m.write_time, m.max_gap
    );
    assert!(
        m.inside >= 1,
        "no proposal committed while the snapshot was written"
    );
}

/// The fallback for machines without `freeze` (writes on the driver
/// thread): measured for comparison, nothing asserted about time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "measurement only; run with --ignored"]
async fn measure_the_fallback_without_freeze() {
    init_tracing();
    let m = tokio::time::timeout(Duration::from_secs(240), run(false))
        .await
        .expect("test finishes in 4 minutes");
    println!(
        "no freeze: {} proposals completed inside the snapshot write; checkpoint took {:?}; max gap between completions {:?}",
        m.inside, m.write_time, m.max_gap
    );
}

/// Shutting down while a snapshot file is being written stops the writer
/// and publishes nothing half-written.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_during_a_snapshot_write_publishes_nothing_partial() {
    init_tracing();
    tokio::time::timeout(Duration::from_secs(120), async {
        let root = tempfile::tempdir().unwrap();
        let addrs = free_addresses(1);
        let dir = root.path().join("m0");
        let (j, _machine) = open(&addrs[0], &addrs, &dir, true).await;
        journal_core::testkit::wait_until("primary", Duration::from_secs(30), || {
            j.role().borrow().is_primary()
        })
        .await;
        j.propose(Bytes::from(format!("BALLAST:{BALLAST}")))
            .await
            .unwrap();
        let finished = j.counters().snapshot_writes_finished;
        let jc = j.clone();
        let checkpoint = tokio::spawn(async move { jc.checkpoint().await });
        journal_core::testkit::wait_until(
            "a snapshot being written",
            Duration::from_secs(30),
            || {
                let c = j.counters();
                c.snapshot_writes_started > c.snapshot_writes_finished
                    || c.snapshot_writes_finished > finished
            },
        )
        .await;
        tokio::time::timeout(Duration::from_secs(30), j.shutdown())
            .await
            .expect("shutdown finishes while a snapshot is being written");
        let _ = checkpoint.await;
        for e in std::fs::read_dir(dir.join("snapshots")).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            assert!(!name.ends_with(".tmp"), "temporary file left: {name}");
            if name.starts_with("snap-") {
                journal_raft::storage::verify_snapshot_file(&e.path())
                    .expect("every published snapshot file is complete");
            }
        }
    })
    .await
    .expect("test finishes in 2 minutes");
}
