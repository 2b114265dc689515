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
use journal_raft::{FormatMode, RaftJournal, RaftJournalConfig};

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
    RaftJournal::format(&cfg, FormatMode::NewCluster).unwrap();
    assert!(RaftJournal::is_formatted(&cfg).unwrap());
    open(cfg).await.expect("a formatted directory opens");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_twice_or_over_data_is_refused() {
    init_tracing();
    let root = tempfile::tempdir().unwrap();
    let cfg = single(&root.path().join("m"));
    RaftJournal::format(&cfg, FormatMode::NewCluster).unwrap();
    let marker = std::fs::read(format_path(&cfg.data_dir)).unwrap();
    match RaftJournal::format(&cfg, FormatMode::NewCluster) {
        Err(JournalError::AlreadyFormatted { cluster_id, .. }) => {
            assert_eq!(cluster_id, "raft-test")
        }
        other => panic!("expected AlreadyFormatted, got {other:?}"),
    }
    assert_eq!(std::fs::read(format_path(&cfg.data_dir)).unwrap(), marker);

    // A directory holding a Raft log but no marker: never formatted over,
    // and the error says the marker was lost (not "foreign data").
    let other = single(&root.path().join("data"));
    std::fs::create_dir_all(other.data_dir.join("log")).unwrap();
    std::fs::write(
        other.data_dir.join("log").join("0000000000000001.raftlog"),
        b"x",
    )
    .unwrap();
    match RaftJournal::format(&other, FormatMode::NewCluster) {
        Err(JournalError::Corrupt { detail, .. }) => {
            assert!(detail.contains("repair_marker"), "{detail}")
        }
        other => panic!("expected Corrupt (lost marker), got {other:?}"),
    }
    assert!(!format_path(&other.data_dir).exists());
    // Anything else is still foreign data.
    let junk = single(&root.path().join("junk"));
    std::fs::create_dir_all(&junk.data_dir).unwrap();
    std::fs::write(junk.data_dir.join("notes.txt"), b"x").unwrap();
    assert!(matches!(
        RaftJournal::format(&junk, FormatMode::NewCluster),
        Err(JournalError::ForeignJournal { .. })
    ));
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
    RaftJournal::format(&formatted, FormatMode::NewCluster).unwrap();
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
    RaftJournal::format(&x, FormatMode::NewCluster).unwrap();
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
    RaftJournal::format(&test_config(&a[0], &a, &dir), FormatMode::NewCluster).unwrap();
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
    RaftJournal::format(&cfg, FormatMode::NewCluster).unwrap();
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
        RaftJournal::format(&cfg, FormatMode::NewCluster),
        Err(JournalError::Corrupt { .. })
    ));
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "the damaged marker was left as is"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_mode_round_trips_and_join_gets_a_fresh_id() {
    init_tracing();
    let root = tempfile::tempdir().unwrap();
    let a = free_addresses(2);
    // NEW_CLUSTER: the address's own id, address must be listed.
    let founder = test_config(&a[0], &a[..1], &root.path().join("f"));
    RaftJournal::format(&founder, FormatMode::NewCluster).unwrap();
    let m = journal_raft::format::read_marker(&founder.data_dir)
        .unwrap()
        .unwrap();
    assert_eq!(m.mode, FormatMode::NewCluster.code());
    assert_eq!(m.member_id, journal_raft::member_id_for(&a[0]));
    assert_ne!(m.incarnation, 0);
    // NEW_CLUSTER for an address not in the list is refused.
    let outsider = test_config(&a[1], &a[..1], &root.path().join("o"));
    assert!(matches!(
        RaftJournal::format(&outsider, FormatMode::NewCluster),
        Err(JournalError::Config { .. })
    ));
    // JOIN: a fresh id per formatting, never the address's own id.
    let mut ids = Vec::new();
    for n in 0..2 {
        let join = test_config(&a[0], &a[..1], &root.path().join(format!("j{n}")));
        RaftJournal::format(&join, FormatMode::Join).unwrap();
        let m = journal_raft::format::read_marker(&join.data_dir)
            .unwrap()
            .unwrap();
        assert_eq!(FormatMode::from_code(m.mode), Some(FormatMode::Join));
        assert_ne!(m.member_id, journal_raft::member_id_for(&a[0]));
        assert!(RaftJournal::is_formatted(&join).unwrap());
        ids.push(m.member_id);
        // It opens with that id, and being JOIN it never bootstraps, even alone in its list.
        let j = RaftJournal::open(join.clone(), shared(TestMachine::new()))
            .await
            .unwrap();
        assert_eq!(j.id(), m.member_id);
        assert_eq!(j.format_mode(), FormatMode::Join);
        tokio::time::sleep(common::ELECTION_MAX * 3).await;
        assert!(
            !j.role().borrow().is_primary(),
            "a JOIN member bootstrapped alone"
        );
        assert!(j.status().members.is_empty());
        j.shutdown().await;
    }
    assert_ne!(ids[0], ids[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_marker_is_reported_as_such_and_can_be_repaired() {
    init_tracing();
    let root = tempfile::tempdir().unwrap();
    let cfg = single(&root.path().join("m"));
    RaftJournal::format(&cfg, FormatMode::NewCluster).unwrap();
    let machine = shared(TestMachine::new());
    let j = RaftJournal::open(cfg.clone(), machine).await.unwrap();
    journal_core::testkit::wait_primary(&(j.clone() as std::sync::Arc<dyn JournalSystem>))
        .await
        .unwrap();
    j.propose(bytes::Bytes::from_static(b"kept")).await.unwrap();
    j.checkpoint().await.unwrap();
    j.propose(bytes::Bytes::from_static(b"kept too"))
        .await
        .unwrap();
    j.shutdown().await;
    drop(j);
    std::fs::remove_file(format_path(&cfg.data_dir)).unwrap();

    for what in ["open", "format", "is_formatted"] {
        let err = match what {
            "open" => open(cfg.clone()).await.unwrap_err(),
            "format" => RaftJournal::format(&cfg, FormatMode::NewCluster).unwrap_err(),
            _ => RaftJournal::is_formatted(&cfg).unwrap_err(),
        };
        let text = err.to_string();
        assert!(
            matches!(err, JournalError::Corrupt { .. })
                && text.contains("marker is missing")
                && text.contains("Do NOT wipe")
                && text.contains("repair_marker"),
            "{what}: {text}"
        );
    }
    RaftJournal::repair_marker(&cfg).unwrap();
    let machine = shared(TestMachine::new());
    let j = RaftJournal::open(cfg.clone(), machine.clone())
        .await
        .unwrap();
    journal_core::testkit::wait_primary(&(j.clone() as std::sync::Arc<dyn JournalSystem>))
        .await
        .unwrap();
    j.read_barrier().await.unwrap();
    let entries: Vec<Vec<u8>> = machine
        .read()
        .entries
        .iter()
        .map(|(_, e)| e.to_vec())
        .collect();
    assert!(entries.contains(&b"kept".to_vec()) && entries.contains(&b"kept too".to_vec()));
    j.shutdown().await;
}
