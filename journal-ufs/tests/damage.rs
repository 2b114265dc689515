//! Damage to a journal folder: every flipped byte and every truncation of
//! every kind of object the journal writes, holes, and stray objects. Each
//! must be `Corrupt` naming the object, and must change nothing: chunks and
//! checkpoints are published atomically, so nothing in the folder is ever an
//! unfinished write that recovery may remove (issue 7, cases 3 to 5).

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use common::pausable::{Gate, Pausable};
use common::{config, formatted, init_tracing, open_err, single, tree, Storage, WAIT};
use journal_core::testkit::{wait_until, ManualElection, TestMachine};
use journal_core::{
    shared, wait_for_primary, ElectionState, JournalError, JournalSystem, SingleMaster,
};
use journal_ufs::inspect::read_folder;
use journal_ufs::layout::seq_name;
use journal_ufs::{open_folder, UfsJournal};

/// A single master's folder holding `chunks` one-entry chunks (after the
/// claim), and a checkpoint after the first half when `checkpoint` is set.
async fn build_log(chunks: usize, checkpoint: bool) -> Storage {
    let storage = formatted().await;
    let (journal, _) = single(config(&storage.url(), 0)).await;
    for i in 0..chunks {
        journal
            .propose(Bytes::from(format!("entry-{i}-{}", "x".repeat(i % 7))))
            .await
            .unwrap();
        if checkpoint && i == chunks / 2 {
            journal.checkpoint().await.unwrap();
        }
    }
    journal.shutdown().await;
    storage
}

fn dir(storage: &Storage) -> PathBuf {
    storage.dir().expect("a file storage")
}

fn chunk_names(storage: &Storage) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir(storage).join("logs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Opens a single master on `storage` and expects `Corrupt` naming `object`,
/// with the folder left byte for byte as it was.
async fn expect_corrupt(storage: &Storage, object: &str, what: &str) {
    let before = tree(&dir(storage));
    match open_err(config(&storage.url(), 0)).await {
        JournalError::Corrupt { location, detail } => assert!(
            location.ends_with(object),
            "{what}: Corrupt names {location:?} ({detail}), expected {object:?}"
        ),
        other => panic!("{what}: expected Corrupt naming {object}, got {other}"),
    }
    assert!(
        tree(&dir(storage)) == before,
        "{what}: opening a damaged folder changed it"
    );
}

/// Every single-byte flip and every truncation of `object`: each one is
/// `Corrupt` naming it, at open, and the object is left in place.
async fn flip_and_truncate_everywhere(storage: &Storage, object: &str) {
    let path: PathBuf = dir(storage).join(object);
    let original = std::fs::read(&path).unwrap();
    for at in 0..original.len() {
        let mut bad = original.clone();
        bad[at] ^= 0x01 << (at % 8);
        std::fs::write(&path, &bad).unwrap();
        expect_corrupt(storage, object, &format!("{object}: flip at byte {at}")).await;
    }
    for len in 0..original.len() {
        std::fs::write(&path, &original[..len]).unwrap();
        expect_corrupt(storage, object, &format!("{object}: truncated to {len}")).await;
    }
    std::fs::write(&path, &original).unwrap();
}

/// Case 3: the acknowledged last chunk. Before the fix, 18 of 282 flipped
/// byte positions (the length field) and every truncation made the next
/// primary delete it as a "torn tail", losing acknowledged entries.
#[tokio::test]
async fn every_flip_and_truncation_of_the_last_chunk_is_corrupt_and_kept() {
    init_tracing();
    let storage = build_log(4, false).await;
    let last = chunk_names(&storage).pop().unwrap();
    flip_and_truncate_everywhere(&storage, &format!("logs/{last}")).await;
    // Undamaged again: every acknowledged entry is there.
    let (journal, machine) = single(config(&storage.url(), 0)).await;
    assert_eq!(machine.read().entries.len(), 4);
    journal.shutdown().await;
}

#[tokio::test]
async fn every_flip_and_truncation_of_a_middle_chunk_is_corrupt() {
    init_tracing();
    let storage = build_log(4, false).await;
    let names = chunk_names(&storage);
    flip_and_truncate_everywhere(&storage, &format!("logs/{}", names[2])).await;
}

#[tokio::test]
async fn every_flip_and_truncation_of_a_checkpoint_is_corrupt_and_so_are_bytes_after_it() {
    init_tracing();
    let storage = build_log(6, true).await;
    let checkpoints: Vec<_> = std::fs::read_dir(dir(&storage).join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(checkpoints.len(), 1);
    let object = format!("checkpoints/{}", checkpoints[0]);
    flip_and_truncate_everywhere(&storage, &object).await;
    let path = dir(&storage).join(&object);
    let original = std::fs::read(&path).unwrap();
    for extra in [&b"\0"[..], b"\0\0\0\0\0\0\0\0", &original[..16]] {
        let mut longer = original.clone();
        longer.extend_from_slice(extra);
        std::fs::write(&path, &longer).unwrap();
        expect_corrupt(&storage, &object, "bytes after the checkpoint's trailer").await;
    }
    std::fs::write(&path, &original).unwrap();
}

/// FORMAT's damage is `Corrupt` naming it, never `ForeignJournal` (which
/// would send the operator to look for another cluster).
#[tokio::test]
async fn every_flip_and_truncation_of_format_is_corrupt_and_so_are_bytes_after_it() {
    init_tracing();
    let storage = build_log(1, false).await;
    flip_and_truncate_everywhere(&storage, "FORMAT").await;
    let path = dir(&storage).join("FORMAT");
    let original = std::fs::read(&path).unwrap();
    let mut longer = original.clone();
    longer.extend_from_slice(&original);
    std::fs::write(&path, &longer).unwrap();
    expect_corrupt(&storage, "FORMAT", "a second frame after FORMAT's").await;
    std::fs::write(&path, &original).unwrap();
}

/// Case 4: a chunk missing in the middle of the log. Before the fix replay
/// stopped at the hole and the new primary wrote its claim into it.
#[tokio::test]
async fn a_missing_chunk_in_the_middle_is_corrupt_naming_the_range_and_nothing_is_written() {
    init_tracing();
    let storage = build_log(5, false).await;
    let names = chunk_names(&storage);
    std::fs::remove_file(dir(&storage).join("logs").join(&names[2])).unwrap();
    let before = tree(&dir(&storage));
    match open_err(config(&storage.url(), 0)).await {
        JournalError::Corrupt { location, detail } => {
            assert!(
                location.ends_with(&format!("logs/{}", names[3])),
                "{location}"
            );
            assert!(
                detail.contains("missing") && detail.contains(&names[2]),
                "{detail}"
            );
        }
        other => panic!("a hole in the log was not reported: {other}"),
    }
    assert!(tree(&dir(&storage)) == before, "the hole was written into");
}

/// Case 4 while tailing: a stalled standby finds the hole when it resumes
/// and, elected, refuses to claim; the hole stays empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_that_meets_a_hole_stops_and_never_claims_it() {
    init_tracing();
    let storage = formatted().await;
    let url = storage.url();
    let mut folder = open_folder(&url, false).unwrap();
    let gate = Gate::new();
    folder.store = Arc::new(Pausable {
        inner: folder.store.clone(),
        gate: gate.clone(),
    });
    let election = Arc::new(ManualElection::new());
    let standby = UfsJournal::open_in(
        folder,
        config(&url, 1),
        election.clone(),
        shared(TestMachine::new()),
    )
    .await
    .unwrap();
    gate.pause();
    let (primary, _) = single(config(&url, 0)).await;
    for i in 0..4 {
        primary.propose(Bytes::from(format!("e{i}"))).await.unwrap();
    }
    primary.shutdown().await;
    let names = chunk_names(&storage);
    let hole = names[2].clone();
    std::fs::remove_file(dir(&storage).join("logs").join(&hole)).unwrap();
    gate.resume();
    election.set(ElectionState::Leader { epoch: 9 });
    wait_until("the standby to report the hole", WAIT, || {
        futures::executor::block_on(async {
            matches!(
                standby.propose(Bytes::from_static(b"probe")).await,
                Err(JournalError::Corrupt { .. })
            )
        })
    })
    .await;
    match standby.propose(Bytes::from_static(b"x")).await {
        Err(JournalError::Corrupt { location, detail }) => {
            assert!(
                location.ends_with(&format!("logs/{}", names[3])),
                "{location}"
            );
            assert!(detail.contains(&hole), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!standby.status().role.is_primary());
    assert!(
        !dir(&storage).join("logs").join(&hole).exists(),
        "a claim was written into the hole"
    );
    standby.shutdown().await;
}

/// Case 5: objects that do not belong in `logs/` or `checkpoints/`.
#[tokio::test]
async fn stray_objects_are_corrupt_naming_them() {
    init_tracing();
    let storage = formatted().await;
    let (journal, _) = single(config(&storage.url(), 0)).await;
    // One chunk of five entries: records 2..=6 after the claim at 1.
    let batch = (0..5).map(|i| {
        let j = journal.clone();
        async move { j.propose(Bytes::from(format!("b{i}"))).await }
    });
    for r in futures::future::join_all(batch).await {
        r.unwrap();
    }
    journal.shutdown().await;
    let contents = read_folder(&storage.url()).await.unwrap();
    let big = contents
        .chunks
        .iter()
        .find(|c| c.header.count > 1)
        .expect("a chunk with several records");
    let inside = seq_name(big.header.first_seq + 1);
    let beyond = seq_name(big.end() + 40);
    let logs = dir(&storage).join("logs");
    let cases: Vec<(PathBuf, Vec<u8>, String)> = vec![
        (
            logs.join(&inside),
            b"garbage".to_vec(),
            format!("logs/{inside}"),
        ),
        (
            logs.join(&beyond),
            b"garbage".to_vec(),
            format!("logs/{beyond}"),
        ),
        (
            logs.join("notes.txt"),
            b"hello".to_vec(),
            "logs/notes.txt".into(),
        ),
        (
            logs.join("00000000000000FF"),
            b"x".to_vec(),
            "logs/00000000000000FF".into(),
        ),
        (
            dir(&storage).join("checkpoints/backup"),
            b"x".to_vec(),
            "checkpoints/backup".into(),
        ),
        // Named almost like the HDFS client's staging file, but not quite.
        (
            logs.join(format!(".{beyond}.tmp")),
            b"x".to_vec(),
            format!("logs/.{beyond}.tmp"),
        ),
    ];
    for (path, bytes, object) in cases {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &bytes).unwrap();
        expect_corrupt(&storage, &object, &format!("stray {object}")).await;
        std::fs::remove_file(&path).unwrap();
    }
    // The HDFS client's staging files (`.<name>.tmp.<n>`, an upload in
    // progress or left by a crash) are not objects of the log: skipped on a
    // folder whose client makes them (HDFS), and strays anywhere else,
    // where no client writes them and hiding one would hide an object.
    let staging = [
        (
            logs.join(format!(".{beyond}.tmp.1")),
            format!("logs/.{beyond}.tmp.1"),
        ),
        (
            dir(&storage).join(format!("checkpoints/.{}.tmp.2", seq_name(3))),
            format!("checkpoints/.{}.tmp.2", seq_name(3)),
        ),
    ];
    for (path, object) in &staging {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"half an upload").unwrap();
        expect_corrupt(&storage, object, &format!("on file://, {object}")).await;
    }
    let mut folder = open_folder(&storage.url(), false).unwrap();
    assert!(!folder.client_staging);
    folder.client_staging = true;
    let machine = shared(TestMachine::new());
    let journal = UfsJournal::open_in(
        folder,
        config(&storage.url(), 0),
        Arc::new(SingleMaster::new()),
        machine.clone(),
    )
    .await
    .unwrap();
    wait_for_primary(&mut journal.role(), WAIT).await.unwrap();
    assert_eq!(machine.read().entries.len(), 5);
    journal.shutdown().await;
    for (path, _) in &staging {
        std::fs::remove_file(path).unwrap();
    }
    // An empty object at the tail is damage too, not an unfinished write.
    let tail = seq_name(big.end());
    std::fs::write(logs.join(&tail), b"").unwrap();
    expect_corrupt(&storage, &format!("logs/{tail}"), "empty tail object").await;
    std::fs::remove_file(logs.join(&tail)).unwrap();
    let (journal, machine) = single(config(&storage.url(), 0)).await;
    assert_eq!(machine.read().entries.len(), 5);
    journal.shutdown().await;
}

/// Case 5: garbage collection is not steered by stray objects. A stray
/// checkpoint-like object beyond the log's end (garbage, or a real
/// checkpoint copied under another name) and a stray chunk-like name before
/// the checkpoint would make it delete live chunks; it deletes nothing.
#[tokio::test]
async fn garbage_collection_is_not_steered_by_stray_objects() {
    init_tracing();
    let storage = build_log(8, true).await;
    let checkpoints = dir(&storage).join("checkpoints");
    let real: PathBuf = std::fs::read_dir(&checkpoints)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let strays: Vec<(PathBuf, Vec<u8>)> = vec![
        (checkpoints.join(seq_name(0xffff)), b"garbage".to_vec()),
        (
            checkpoints.join(seq_name(0xfff0)),
            std::fs::read(&real).unwrap(),
        ),
    ];
    for (path, bytes) in strays {
        std::fs::write(&path, &bytes).unwrap();
        let before = chunk_names(&storage);
        let mut cfg = config(&storage.url(), 0);
        cfg.checkpoint_retention = 1;
        // The newest "checkpoint" is the stray: the master cannot open past it.
        assert!(matches!(
            open_err(cfg.clone()).await,
            JournalError::Corrupt { .. }
        ));
        assert_eq!(chunk_names(&storage), before);
        std::fs::remove_file(&path).unwrap();
        // Planted while the master runs: its checkpoint's collection refuses.
        let (journal, _) = single(cfg).await;
        std::fs::write(&path, &bytes).unwrap();
        let before = chunk_names(&storage);
        journal
            .propose(Bytes::from_static(b"one more"))
            .await
            .unwrap();
        journal.checkpoint().await.unwrap();
        let after = chunk_names(&storage);
        assert!(
            before.iter().all(|n| after.contains(n)),
            "a stray {} steered garbage collection: {before:?} -> {after:?}",
            path.display()
        );
        journal.shutdown().await;
        std::fs::remove_file(&path).unwrap();
    }
}

#[tokio::test]
async fn a_retention_of_zero_checkpoints_is_a_config_error() {
    init_tracing();
    let storage = formatted().await;
    let mut cfg = config(&storage.url(), 0);
    cfg.checkpoint_retention = 0;
    match open_err(cfg).await {
        JournalError::Config { key, .. } => {
            assert_eq!(key, "primacy.master.journal.checkpoint.retention")
        }
        other => panic!("{other}"),
    }
    assert!(Path::new(&dir(&storage)).join("FORMAT").exists());
}
