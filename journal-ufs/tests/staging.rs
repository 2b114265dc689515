//! Staging files (`<name>#<digits>`) that writes killed mid-way leave in a
//! local journal folder: the primary deletes the ones older than the grace
//! period and nothing else, and no reader ever takes one for a chunk.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use common::{config, formatted, init_tracing, WAIT};
use journal_core::testkit::{wait_until, ManualElection, TestMachine};
use journal_core::{shared, wait_for_primary, ElectionState, JournalSystem};
use journal_ufs::layout::seq_name;
use journal_ufs::UfsJournal;
use parking_lot::RwLock;

struct Opened {
    journal: Arc<UfsJournal>,
    machine: Arc<RwLock<TestMachine>>,
    election: Arc<ManualElection>,
}

async fn open(url: &str, member: usize, grace: Duration) -> Opened {
    let election = Arc::new(ManualElection::new());
    let machine = shared(TestMachine::new());
    let mut cfg = config(url, member);
    cfg.staging_grace = grace;
    let journal = UfsJournal::open(cfg, election.clone(), machine.clone())
        .await
        .unwrap();
    Opened {
        journal,
        machine,
        election,
    }
}

async fn lead(o: &Opened, epoch: u64) {
    o.election.set(ElectionState::Leader { epoch });
    wait_for_primary(&mut o.journal.role(), WAIT).await.unwrap();
}

/// Writes `bytes` to `path` with its modification time `age` ago.
fn plant(path: &Path, bytes: &[u8], age: Duration) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - age).unwrap();
}

fn age(path: &Path, age: Duration) {
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - age).unwrap();
}

fn entries(o: &Opened) -> Vec<Bytes> {
    o.machine
        .read()
        .entries
        .iter()
        .map(|(_, e)| e.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_primary_deletes_old_staging_files_only() {
    init_tracing();
    let storage = formatted().await;
    let url = storage.url();
    let dir = storage.dir().unwrap();
    let hour = Duration::from_secs(3600);
    // History first, with every live file made old: age alone never
    // condemns a file.
    {
        let first = open(&url, 0, hour).await;
        lead(&first, 1).await;
        for i in 0..5 {
            first
                .journal
                .propose(Bytes::from(format!("e-{i}")))
                .await
                .unwrap();
        }
        first.journal.checkpoint().await.unwrap();
        first.journal.shutdown().await;
    }
    let mut live: Vec<PathBuf> = Vec::new();
    for sub in ["logs", "checkpoints"] {
        for e in std::fs::read_dir(dir.join(sub)).unwrap() {
            let p = e.unwrap().path();
            age(&p, 3 * hour);
            live.push(p);
        }
    }
    live.push(dir.join("FORMAT"));
    age(&dir.join("FORMAT"), 3 * hour);
    assert!(live.len() >= 3);

    let old = [
        dir.join("logs").join(format!("{}#1", seq_name(3))),
        dir.join("logs").join(format!("{}#12", seq_name(7))),
        dir.join("checkpoints").join(format!("{}#1", seq_name(6))),
        dir.join("tmp").join("0d4f6a1e-uuid#3"),
        dir.join("FORMAT#1"),
    ];
    for p in &old {
        plant(p, b"torn half-written bytes", 2 * hour);
    }
    let fresh = [
        dir.join("logs").join(format!("{}#2", seq_name(100))),
        dir.join("tmp").join("another#1"),
    ];
    // Old, but for a slot at or beyond the end of the log: a stalled write
    // may still hold it, so its age does not condemn it.
    let beyond_end = [dir.join("logs").join(format!("{}#1", seq_name(99)))];
    for p in &beyond_end {
        plant(p, b"a write stalled for hours", 2 * hour);
    }
    for p in &fresh {
        plant(p, b"a write still under way", Duration::from_secs(60));
    }
    // Old, but not of the staging form (a file the store would list in
    // `logs/` is refused as a stray object, so these live elsewhere, or are
    // names the store does not list).
    let foreign = [
        dir.join("tmp").join("notes#1x"),
        dir.join("logs").join("#5"),
        dir.join("README"),
    ];
    for p in &foreign {
        plant(p, b"someone else's file", 5 * hour);
    }

    let primary = open(&url, 0, hour).await;
    lead(&primary, 2).await;
    wait_until("the old staging files to be deleted", WAIT, || {
        old.iter().all(|p| !p.exists())
    })
    .await;
    for p in fresh
        .iter()
        .chain(foreign.iter())
        .chain(live.iter())
        .chain(beyond_end.iter())
    {
        assert!(p.exists(), "{} must be kept", p.display());
    }
    // The journal is whole: a fresh master replays every entry.
    primary.journal.propose(Bytes::from("after")).await.unwrap();
    primary.journal.shutdown().await;
    let again = open(&url, 1, hour).await;
    lead(&again, 3).await;
    let got = entries(&again);
    for i in 0..5 {
        assert!(got.contains(&Bytes::from(format!("e-{i}"))), "{got:?}");
    }
    assert!(got.contains(&Bytes::from("after")));
    again.journal.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_never_reads_a_torn_staging_file_as_a_chunk() {
    init_tracing();
    let storage = formatted().await;
    let url = storage.url();
    let dir = storage.dir().unwrap();
    let hour = Duration::from_secs(3600);
    let primary = open(&url, 0, hour).await;
    lead(&primary, 1).await;
    for i in 0..3 {
        primary
            .journal
            .propose(Bytes::from(format!("a-{i}")))
            .await
            .unwrap();
    }
    let next = primary.journal.status().last_applied + 1;
    // A write of the next chunk killed mid-way (by another master, so the
    // grace period protects it): a half-written file named like a staging
    // file of exactly the slot the standby reads next, and of the one after.
    for seq in [next, next + 1] {
        plant(
            &dir.join("logs").join(format!("{}#1", seq_name(seq))),
            b"\x00\x00\x00\x10garbage that does not decode",
            Duration::ZERO,
        );
    }
    // A standby that starts now, and one that was tailing already, both
    // treat the slot as empty, prove the end (listing the folder) and keep
    // following.
    let standby = open(&url, 1, hour).await;
    assert_eq!(standby.journal.status().last_applied, next - 1);
    // Long enough for several end-of-log checks (every 50 idle polls of 5 ms).
    tokio::time::sleep(Duration::from_millis(800)).await;
    for i in 0..3 {
        primary
            .journal
            .propose(Bytes::from(format!("b-{i}")))
            .await
            .unwrap();
    }
    let target = primary.journal.status().last_applied;
    wait_until("the standby to follow past the staging files", WAIT, || {
        standby.journal.status().last_applied >= target
    })
    .await;
    assert_eq!(entries(&standby), entries(&primary));
    // Both staging files are still there (they are young), and the real
    // chunks were written beside them.
    assert!(dir
        .join("logs")
        .join(format!("{}#1", seq_name(next)))
        .exists());
    assert!(dir.join("logs").join(seq_name(next)).exists());
    // The inspection tool ignores them too.
    let contents = journal_ufs::inspect::read_folder(&url).await.unwrap();
    assert!(contents.chunks.iter().all(|c| c.header.first_seq <= target));
    primary.journal.shutdown().await;
    standby.journal.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_never_sweeps_only_the_primary_does() {
    init_tracing();
    let storage = formatted().await;
    let url = storage.url();
    let dir = storage.dir().unwrap();
    // Slot 1: below the end once the primary claimed it.
    let old = dir.join("logs").join(format!("{}#1", seq_name(1)));
    plant(&old, b"torn", Duration::from_secs(7200));
    // The shortest grace the master accepts: a sweeping standby would
    // delete the file at its first poll.
    let standby = open(&url, 0, Duration::from_secs(1)).await;
    standby
        .election
        .set(ElectionState::Follower { leader: None });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        old.exists(),
        "a standby deleted a staging file; it may be the primary's write"
    );
    lead(&standby, 1).await;
    wait_until("the primary to delete the old staging file", WAIT, || {
        !old.exists()
    })
    .await;
    standby.journal.shutdown().await;
}
