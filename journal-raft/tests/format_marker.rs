//! The format marker: a member opens only a directory formatted for it.
//! Without a marker it is `Unformatted`, with another cluster's
//! `ForeignJournal`, with a damaged one `Corrupt` naming the file; formatting
//! twice or over existing data is refused.

mod common;

use std::path::Path;

use common::{free_addresses, init_tracing, test_config};
use journal_core::testkit::TestMachine;
use journal_core::{shared, JournalError, JournalSystem};
use journal_raft::format::format_path;
use journal_raft::{RaftJournal, RaftJournalConfig};

async fn open(cfg: RaftJournalConfig) -> journal_core::Result<()> {
    let j = RaftJournal::open(cfg, shared(TestMachine::new())).await?;
    j.shutdown().await;
    Ok(())
}

fn single(dir: &Path) -> RaftJournalConfig {
    let a = free_addresses(1);
    test_config(&a[0], &a, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_without_format_is_unformatted_and_writes_nothing_but_the_lock() {
    init_tracing();
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("m");
    let cfg = single(&dir);
    assert!(!RaftJournal::is_formatted(&cfg).unwrap());
    match open(cfg.clone()).await {
        Err(e @ JournalError::Unformatted { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains(&dir.display().to_string()) && text.contains("primacy format"),
                "{text}"
            );
        }
        other => panic!("expected Unformatted, got {other:?}"),
    }
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        vec!["LOCK".to_string()],
        "nothing but the lock was created"
    );
    RaftJournal::format(&cfg).unwrap();
    assert!(RaftJournal::is_formatted(&cfg).unwrap());
    open(cfg).await.expect("a formatted directory opens");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_twice_or_over_data_is_refused() {
    init_tracing();
    let root = tempfile::tempdir().unwrap();
    let cfg = single(&root.path().join("m"));
    RaftJournal::format(&cfg).unwrap();
    let marker = std::fs::read(format_path(&cfg.data_dir)).unwrap();
    match RaftJournal::format(&cfg) {
        Err(JournalError::AlreadyFormatted { cluster_id, .. }) => {
            assert_eq!(cluster_id, "raft-test")
        }
        other => panic!("expected AlreadyFormatted, got {other:?}"),
    }
    assert_eq!(std::fs::read(format_path(&cfg.data_dir)).unwrap(), marker);

    // A directory holding a log but no marker (data from elsewhere).
    let other = single(&root.path().join("data"));
    std::fs::create_dir_all(other.data_dir.join("log")).unwrap();
    std::fs::write(
        other.data_dir.join("log").join("0000000000000001.raftlog"),
        b"x",
    )
    .unwrap();
    assert!(matches!(
        RaftJournal::format(&other),
        Err(JournalError::ForeignJournal { .. })
    ));
    assert!(!format_path(&other.data_dir).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marker_of_another_cluster_is_foreign() {
    init_tracing();
    let root = tempfile::tempdir().unwrap();
    let a = free_addresses(3);
    // Derived ids: the same member formatted with another initial membership.
    let mut formatted = RaftJournalConfig::new(
        &a[0],
        vec![a[0].clone(), a[1].clone()],
        root.path().join("d"),
    );
    formatted.cluster_id = None;
    RaftJournal::format(&formatted).unwrap();
    let mut opened = formatted.clone();
    opened.addresses = vec![a[0].clone(), a[2].clone()];
    assert_ne!(
        formatted.effective_cluster_id(),
        opened.effective_cluster_id()
    );
    match open(opened.clone()).await {
        Err(JournalError::ForeignJournal { location, detail }) => {
            assert!(
                location.contains(&formatted.data_dir.display().to_string()),
                "{location}"
            );
            assert!(
                detail.contains(&formatted.effective_cluster_id()),
                "{detail}"
            );
        }
        other => panic!("expected ForeignJournal, got {other:?}"),
    }
    assert!(matches!(
        RaftJournal::is_formatted(&opened),
        Err(JournalError::ForeignJournal { .. })
    ));

    // Explicit ids.
    let mut x = single(&root.path().join("e"));
    x.cluster_id = Some("cluster-x".into());
    RaftJournal::format(&x).unwrap();
    x.cluster_id = Some("cluster-y".into());
    assert!(matches!(
        open(x).await,
        Err(JournalError::ForeignJournal { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_members_folder_is_refused() {
    init_tracing();
    let root = tempfile::tempdir().unwrap();
    let a = free_addresses(2);
    let dir = root.path().join("shared");
    RaftJournal::format(&test_config(&a[0], &a, &dir)).unwrap();
    match open(test_config(&a[1], &a, &dir)).await {
        Err(JournalError::Config { key, detail }) => {
            assert_eq!(key, journal_raft::config::KEY_HOSTNAME, "{detail}")
        }
        other => panic!("expected Config, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_byte_in_the_marker_is_corrupt_naming_the_file() {
    init_tracing();
    let root = tempfile::tempdir().unwrap();
    let cfg = single(&root.path().join("m"));
    RaftJournal::format(&cfg).unwrap();
    let path = format_path(&cfg.data_dir);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() - 5;
    bytes[at] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let name = path.display().to_string();
    match open(cfg.clone()).await {
        Err(JournalError::Corrupt { location, .. }) => assert_eq!(location, name),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(matches!(
        RaftJournal::is_formatted(&cfg),
        Err(JournalError::Corrupt { .. })
    ));
    assert!(matches!(
        RaftJournal::format(&cfg),
        Err(JournalError::Corrupt { .. })
    ));
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "the damaged marker was left as is"
    );
}
