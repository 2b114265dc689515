//! Corruption, bad folders, checkpoints with garbage collection, group
//! commit, read barriers and a primary overtaken by garbage collection.

#![allow(clippy::needless_range_loop)]

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::{
    config, flip_byte, formatted, init_tracing, open_err, propose_n, single, tree, Storage,
    CLUSTER, WAIT,
};
use journal_core::testkit::{wait_until, ManualElection, TestMachine};
use journal_core::{shared, wait_for_primary, ElectionState, JournalError, JournalSystem};
use journal_ufs::inspect::read_folder;
use journal_ufs::layout::seq_name;
use journal_ufs::{format, open_folder, UfsJournal, MAX_ENTRY_LEN};

#[tokio::test]
async fn flipped_byte_in_a_chunk_is_corrupt_naming_the_chunk() {
    init_tracing();
    let storage = formatted().await;
    let (journal, _) = single(config(&storage.url(), 0)).await;
    propose_n(&journal, "x", 50).await;
    journal.shutdown().await;
    let contents = read_folder(&storage.url()).await.unwrap();
    let victim = format!("logs/{}", seq_name(contents.chunks[1].header.first_seq));
    flip_byte(&storage, &victim, 0.7).await.unwrap();
    let before = tree(&storage.dir().unwrap());
    match open_err(config(&storage.url(), 0)).await {
        JournalError::Corrupt { location, detail } => {
            assert!(location.ends_with(&victim), "{location}");
            println!("chunk corruption reported: {location}: {detail}");
        }
        other => panic!("expected Corrupt, got {other}"),
    }
    assert_eq!(
        tree(&storage.dir().unwrap()),
        before,
        "a failed open changed the folder"
    );
}

#[tokio::test]
async fn flipped_byte_in_a_checkpoint_is_corrupt_naming_the_checkpoint() {
    init_tracing();
    let storage = formatted().await;
    let (journal, _) = single(config(&storage.url(), 0)).await;
    propose_n(&journal, "x", 200).await;
    let seq = journal.checkpoint().await.unwrap();
    propose_n(&journal, "y", 10).await;
    journal.shutdown().await;
    let victim = format!("checkpoints/{}", seq_name(seq));
    for fraction in [0.02, 0.5, 0.99] {
        flip_byte(&storage, &victim, fraction).await.unwrap();
        match open_err(config(&storage.url(), 0)).await {
            JournalError::Corrupt { location, detail } => {
                assert!(location.ends_with(&victim), "{location}");
                println!("checkpoint corruption at {fraction}: {detail}");
            }
            other => panic!("expected Corrupt, got {other}"),
        }
        flip_byte(&storage, &victim, fraction).await.unwrap(); // restore
    }
    // Flipped back, the checkpoint loads again.
    let (journal, machine) = single(config(&storage.url(), 0)).await;
    assert_eq!(machine.read().entries.len(), 210);
    journal.shutdown().await;
}

#[tokio::test]
async fn unformatted_and_foreign_folders_are_refused_and_left_alone() {
    init_tracing();
    // Missing directory, empty directory.
    let empty = Storage::file();
    let missing = format!("{}/not-there", empty.url());
    assert!(matches!(
        open_err(config(&missing, 0)).await,
        JournalError::Unformatted { .. }
    ));
    assert!(matches!(
        open_err(config(&empty.url(), 0)).await,
        JournalError::Unformatted { .. }
    ));
    assert!(tree(&empty.dir().unwrap()).is_empty());

    // Another cluster's journal.
    let other = Storage::file();
    format(
        &open_folder(&other.url(), true).unwrap(),
        "someone-elses-cluster",
    )
    .await
    .unwrap();
    let before = tree(&other.dir().unwrap());
    match open_err(config(&other.url(), 0)).await {
        JournalError::ForeignJournal { detail, .. } => {
            assert!(detail.contains("someone-elses-cluster"), "{detail}")
        }
        e => panic!("expected ForeignJournal, got {e}"),
    }
    assert_eq!(tree(&other.dir().unwrap()), before);

    // A FORMAT that is not primacy's.
    let alien = Storage::file();
    std::fs::write(alien.dir().unwrap().join("FORMAT"), b"hdfs journal v2\n").unwrap();
    assert!(matches!(
        open_err(config(&alien.url(), 0)).await,
        JournalError::ForeignJournal { .. }
    ));

    // Formatting refuses to adopt or overwrite.
    let folder = open_folder(&alien.url(), false).unwrap();
    assert!(matches!(
        format(&folder, CLUSTER).await,
        Err(JournalError::ForeignJournal { .. })
    ));
    let data = Storage::file();
    std::fs::create_dir_all(data.dir().unwrap().join("logs")).unwrap();
    std::fs::write(data.dir().unwrap().join("logs/0000000000000001"), b"x").unwrap();
    let folder = open_folder(&data.url(), false).unwrap();
    assert!(matches!(
        format(&folder, CLUSTER).await,
        Err(JournalError::ForeignJournal { .. })
    ));
    assert!(matches!(
        open_err(config(&data.url(), 0)).await,
        JournalError::Unformatted { .. }
    ));
    let folder = open_folder(&other.url(), false).unwrap();
    match format(&folder, CLUSTER).await {
        Err(JournalError::AlreadyFormatted { cluster_id, .. }) => {
            assert_eq!(cluster_id, "someone-elses-cluster")
        }
        r => panic!("expected AlreadyFormatted, got {r:?}"),
    }
    assert_eq!(tree(&other.dir().unwrap()), before);
    assert!(matches!(
        format(&folder, " ").await,
        Err(JournalError::Config { .. })
    ));

    // Bad configuration.
    let storage = formatted().await;
    let mut cfg = config(&storage.url(), 0);
    cfg.address = String::new();
    assert!(matches!(open_err(cfg).await, JournalError::Config { .. }));
    let mut cfg = config(&storage.url(), 0);
    cfg.checkpoint_period_entries = 0;
    assert!(matches!(open_err(cfg).await, JournalError::Config { .. }));
    assert!(matches!(
        open_err(config("s3//bucket", 0)).await,
        JournalError::Config { .. }
    ));
}

#[tokio::test]
async fn oversized_entry_is_refused_and_changes_nothing() {
    init_tracing();
    let storage = formatted().await;
    let (journal, machine) = single(config(&storage.url(), 0)).await;
    let applied = journal.status().last_applied;
    match journal
        .propose(Bytes::from(vec![0u8; MAX_ENTRY_LEN + 1]))
        .await
    {
        Err(JournalError::InvalidEntry { .. }) => {}
        r => panic!("expected InvalidEntry, got {r:?}"),
    }
    assert_eq!(journal.status().last_applied, applied);
    assert!(machine.read().entries.is_empty());
    journal.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_proposals_share_chunks() {
    init_tracing();
    let storage = formatted().await;
    let (journal, machine) = single(config(&storage.url(), 0)).await;
    propose_n(&journal, "g", 2000).await;
    journal.shutdown().await;
    let contents = read_folder(&storage.url()).await.unwrap();
    println!(
        "group commit: 2000 concurrent proposals in {} chunks",
        contents.chunks.len() - 1
    );
    assert_eq!(machine.read().entries.len(), 2000);
    assert!(
        contents.chunks.len() < 1000,
        "no batching: {} chunks",
        contents.chunks.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standby_checkpoints_and_garbage_collection_keep_the_state() {
    init_tracing();
    let storage = formatted().await;
    let elections = [
        Arc::new(ManualElection::new()),
        Arc::new(ManualElection::new()),
    ];
    let machines = [shared(TestMachine::new()), shared(TestMachine::new())];
    let mut journals = Vec::new();
    for m in 0..2 {
        let mut cfg = config(&storage.url(), m);
        cfg.checkpoint_period_entries = 100;
        cfg.primary_writes_checkpoints = false; // HA: standbys checkpoint
        journals.push(
            UfsJournal::open(cfg, elections[m].clone(), machines[m].clone())
                .await
                .unwrap(),
        );
    }
    elections[0].set(ElectionState::Leader { epoch: 1 });
    wait_for_primary(&mut journals[0].role(), WAIT)
        .await
        .unwrap();
    for round in 0..10 {
        propose_n(&journals[0], &format!("round{round}"), 60).await;
    }
    let target = journals[0].status().last_applied;
    wait_until("standby catch-up", WAIT, || {
        journals[1].status().last_applied >= target
    })
    .await;
    wait_until("a standby checkpoint", WAIT, || {
        journals[1].status().last_checkpoint.is_some()
    })
    .await;
    assert_eq!(
        journals[0].status().last_checkpoint,
        None,
        "the HA primary must not pause for checkpoints"
    );
    // The standby collects garbage right after it publishes a checkpoint.
    let deadline = std::time::Instant::now() + WAIT;
    let contents = loop {
        let contents = read_folder(&storage.url()).await.unwrap();
        if contents.checkpoints.len() <= 2 {
            break contents;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "retention: {:?}",
            contents.checkpoints
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    let oldest_kept = contents.checkpoints[0];
    // Chunks wholly below the oldest kept checkpoint are gone; the one
    // holding the record just before it stays.
    assert!(contents.chunks[0].header.first_seq < oldest_kept);
    assert!(contents.chunks[0].end() >= oldest_kept);
    println!(
        "gc: checkpoints {:?}, first chunk {} of {} total records",
        contents.checkpoints, contents.chunks[0].header.first_seq, target
    );
    for j in &journals {
        j.shutdown().await;
    }
    // A fresh master restores from the checkpoint and equals the old state.
    let (journal, machine) = single(config(&storage.url(), 2)).await;
    assert_eq!(machine.read().entries, machines[0].read().entries);
    journal.shutdown().await;
}

/// A primary that stalls while a new primary writes, checkpoints and
/// garbage-collects past its position finds its slot free again; the
/// predecessor check must still refuse to acknowledge its write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primary_overtaken_by_garbage_collection_is_fenced() {
    init_tracing();
    let storage = formatted().await;
    let elections = [
        Arc::new(ManualElection::new()),
        Arc::new(ManualElection::new()),
    ];
    let machines = [shared(TestMachine::new()), shared(TestMachine::new())];
    let mut journals = Vec::new();
    for m in 0..2 {
        let mut cfg = config(&storage.url(), m);
        cfg.checkpoint_period_entries = 50;
        cfg.checkpoint_retention = 1;
        journals.push(
            UfsJournal::open(cfg, elections[m].clone(), machines[m].clone())
                .await
                .unwrap(),
        );
    }
    elections[0].set(ElectionState::Leader { epoch: 1 });
    wait_for_primary(&mut journals[0].role(), WAIT)
        .await
        .unwrap();
    propose_n(&journals[0], "old", 20).await;
    let stale_slot = journals[0].status().last_applied + 1;
    // Member 1 takes over without member 0 being told (member 0 "stalls").
    elections[1].set(ElectionState::Leader { epoch: 2 });
    wait_for_primary(&mut journals[1].role(), WAIT)
        .await
        .unwrap();
    for round in 0..6 {
        propose_n(&journals[1], &format!("new{round}"), 40).await;
    }
    journals[1].checkpoint().await.unwrap();
    let contents = read_folder(&storage.url()).await.unwrap();
    assert!(
        contents
            .chunks
            .iter()
            .all(|c| c.header.first_seq > stale_slot),
        "garbage collection should have freed the stale primary's slot"
    );
    assert!(
        journals[0].status().role.is_primary(),
        "member 0 still believes it is primary"
    );
    match journals[0]
        .propose(Bytes::from_static(b"from the stalled primary"))
        .await
    {
        Err(JournalError::Fenced { .. }) => {}
        r => panic!("the stalled primary's write was not refused: {r:?}"),
    }
    // The dead chunk may stay in the freed slot (its writer cannot tell it
    // from history a checkpoint moved past), but nobody applies it, and the
    // next collection removes it.
    propose_n(&journals[1], "after", 10).await;
    let target = journals[1].status().last_applied;
    wait_until("the overtaken master to follow", WAIT, || {
        journals[0].status().last_applied >= target
    })
    .await;
    assert_eq!(machines[0].read().entries, machines[1].read().entries);
    for m in &machines {
        assert_eq!(
            m.read().occurrences(b"from the stalled primary"),
            0,
            "a dead chunk was applied"
        );
    }
    journals[1].checkpoint().await.unwrap();
    let contents = read_folder(&storage.url()).await.unwrap();
    assert!(
        contents
            .chunks
            .iter()
            .all(|c| c.header.first_seq != stale_slot),
        "garbage collection left the dead chunk behind"
    );
    for j in &journals {
        j.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_barrier_holds_only_while_the_slot_is_free() {
    init_tracing();
    let storage = formatted().await;
    let elections = [
        Arc::new(ManualElection::new()),
        Arc::new(ManualElection::new()),
    ];
    let mut journals = Vec::new();
    for m in 0..2 {
        journals.push(
            UfsJournal::open(
                config(&storage.url(), m),
                elections[m].clone(),
                shared(TestMachine::new()),
            )
            .await
            .unwrap(),
        );
    }
    elections[0].set(ElectionState::Leader { epoch: 1 });
    wait_for_primary(&mut journals[0].role(), WAIT)
        .await
        .unwrap();
    journals[0].read_barrier().await.unwrap();
    assert!(matches!(
        journals[1].read_barrier().await,
        Err(JournalError::NotPrimary { .. })
    ));
    elections[1].set(ElectionState::Leader { epoch: 2 });
    wait_for_primary(&mut journals[1].role(), WAIT)
        .await
        .unwrap();
    match journals[0].read_barrier().await {
        Err(JournalError::Fenced { by_epoch }) => assert_eq!(by_epoch, 2),
        r => panic!("a deposed primary passed a read barrier: {r:?}"),
    }
    assert!(!journals[0].status().role.is_primary());
    journals[1].read_barrier().await.unwrap();
    for j in &journals {
        j.shutdown().await;
    }
}
