//! Damaged files are reported, never silently accepted: a flipped byte in a
//! raft-engine log file, a flipped byte or truncation in a snapshot file.
//! A torn tail (a crash in mid-write) is the one damage that is repaired.

mod common;

use std::time::Duration;

use common::{corrupt_log, entry, init_tracing, tear_log_tail, Group, Member};
use journal_core::{JournalError, JournalSystem};

async fn single_with_history(snapshot: bool) -> Group {
    let mut g = Group::new(1);
    g.open(0).await;
    g.primary(Duration::from_secs(30)).await;
    for i in 0..60 {
        g.m(0).journal.propose(entry("e", i, 500)).await.unwrap();
    }
    if snapshot {
        g.m(0).journal.checkpoint().await.unwrap();
        for i in 60..70 {
            g.m(0).journal.propose(entry("e", i, 500)).await.unwrap();
        }
    }
    g.close(0).await;
    g
}

fn snapshot_file(g: &Group) -> std::path::PathBuf {
    let dir = g.dir(0).join("snapshots");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("snap-")
        })
        .collect();
    files.sort();
    files.pop().expect("a snapshot file")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flipped_byte_in_the_raft_log_is_corrupt() {
    init_tracing();
    let g = single_with_history(false).await;
    let where_ = corrupt_log(&g.dir(0)).unwrap();
    match Member::open(g.config(0)).await {
        Err(JournalError::Corrupt { location, detail }) => {
            assert!(location.contains(&where_), "{location} / {detail}");
        }
        Err(other) => panic!("expected Corrupt, got {other}"),
        Ok(_) => panic!("a corrupt log was opened"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flipped_byte_in_a_snapshot_file_is_corrupt() {
    init_tracing();
    let g = single_with_history(true).await;
    let file = snapshot_file(&g);
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(&file, &bytes).unwrap();
    match Member::open(g.config(0)).await {
        Err(JournalError::Corrupt { location, detail }) => {
            assert!(
                location.contains(&file.display().to_string()),
                "{location} / {detail}"
            );
        }
        Err(other) => panic!("expected Corrupt, got {other}"),
        Ok(_) => panic!("a corrupt snapshot was restored"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn truncated_or_missing_snapshot_file_is_corrupt() {
    init_tracing();
    let g = single_with_history(true).await;
    let file = snapshot_file(&g);
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() - 10]).unwrap();
    assert!(matches!(
        Member::open(g.config(0)).await,
        Err(JournalError::Corrupt { .. })
    ));
    std::fs::remove_file(&file).unwrap();
    match Member::open(g.config(0)).await {
        Err(JournalError::Corrupt { location, .. }) => assert!(location.contains("snap-")),
        Err(other) => panic!("expected Corrupt, got {other}"),
        Ok(_) => panic!("opened without its snapshot"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn torn_tail_is_truncated_and_history_kept() {
    init_tracing();
    let mut g = single_with_history(false).await;
    tear_log_tail(&g.dir(0)).unwrap();
    g.open(0).await;
    g.primary(Duration::from_secs(30)).await;
    let tags: Vec<_> = g.m(0).entries().iter().map(|(_, e)| e.clone()).collect();
    assert_eq!(tags.len(), 60, "history after the torn tail");
    g.close_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn torn_write_inside_preallocated_space_is_truncated() {
    init_tracing();
    let mut g = single_with_history(false).await;
    // A power loss in mid-write on a preallocated file: the last batch's
    // tail never reached the disk (zeros), and zeros follow it.
    let file = journal_raft::storage::newest_log_file(&journal_raft::storage::log_dir(&g.dir(0)))
        .unwrap()
        .unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    let walk = journal_raft::storage::walk_log_file(&bytes);
    let last = *walk.batches.last().unwrap();
    for b in &mut bytes[last.offset + last.len * 6 / 10..last.offset + last.len] {
        *b = 0;
    }
    bytes.extend(std::iter::repeat_n(0u8, 64 << 10));
    std::fs::write(&file, &bytes).unwrap();
    g.open(0).await;
    g.primary(Duration::from_secs(30)).await;
    let entries = g.m(0).entries();
    assert!(
        entries.len() >= 58 && entries.len() <= 60,
        "{} entries kept",
        entries.len()
    );
    for (i, (_, e)) in entries.iter().enumerate() {
        assert_eq!(e, &entry("e", i, 500), "history is a prefix");
    }
    g.close_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn damaged_batch_header_mid_file_is_corrupt_and_left_alone() {
    init_tracing();
    let g = single_with_history(false).await;
    let file = journal_raft::storage::newest_log_file(&journal_raft::storage::log_dir(&g.dir(0)))
        .unwrap()
        .unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    let walk = journal_raft::storage::walk_log_file(&bytes);
    let victim = walk.batches[walk.batches.len() / 2];
    bytes[victim.offset + 4] ^= 0x40;
    std::fs::write(&file, &bytes).unwrap();
    match Member::open(g.config(0)).await {
        Err(JournalError::Corrupt { location, .. }) => {
            assert!(location.contains("raftlog"), "{location}")
        }
        Err(other) => panic!("expected Corrupt, got {other}"),
        Ok(_) => panic!("a log with a damaged header was opened"),
    }
    assert_eq!(
        std::fs::read(&file).unwrap(),
        bytes,
        "the damaged file was modified"
    );
}
