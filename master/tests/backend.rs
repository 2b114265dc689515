//! `master::backend` end to end on temporary directories: format /
//! is_formatted round trips for a single UFS master and a single-member
//! embedded journal on 127.0.0.1, refusal of existing data without force,
//! careful forced formats, and `Unformatted` / `ForeignJournal` at open.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use journal_core::testkit::{init_tracing, TestMachine};
use journal_core::{shared, wait_for_primary, JournalError, JournalSystem};
use master::backend::{format, is_formatted, open_journal};
use master::config::{registry as r, MasterConfig};

const BOUND: Duration = Duration::from_secs(30);

fn cfg(pairs: &[(&str, &str)]) -> MasterConfig {
    MasterConfig::from_pairs(pairs).unwrap_or_else(|e| panic!("{pairs:?}: {e}"))
}

fn ufs(folder: &Path, extra: &[(&str, &str)]) -> MasterConfig {
    let url = format!("file://{}", folder.display());
    let mut pairs = vec![(r::JOURNAL_FOLDER, url.as_str()), (r::TAILER_SLEEP, "5ms")];
    pairs.extend_from_slice(extra);
    cfg(&pairs)
}

fn free_port() -> u16 {
    journal_core::ports::free_loopback_port().expect("a free loopback port")
}

fn raft(dir: &Path, port: u16) -> MasterConfig {
    let folder = dir.display().to_string();
    let port = port.to_string();
    cfg(&[
        (r::JOURNAL_TYPE, "EMBEDDED"),
        (r::MASTER_HOSTNAME, "127.0.0.1"),
        (r::EMBEDDED_PORT, &port),
        (r::JOURNAL_FOLDER, &folder),
        (r::ELECTION_MIN, "100ms"),
        (r::ELECTION_MAX, "200ms"),
    ])
}

async fn open(c: &MasterConfig) -> Result<Arc<dyn JournalSystem>, JournalError> {
    open_journal(c, shared(TestMachine::new())).await
}

/// Opens, waits for primacy, proposes one entry, shuts down.
async fn serve_once(c: &MasterConfig) {
    let j = open(c).await.expect("open a formatted journal");
    wait_for_primary(&mut j.role(), BOUND)
        .await
        .expect("primary");
    tokio::time::timeout(BOUND, j.propose(Bytes::from_static(b"entry")))
        .await
        .expect("propose in time")
        .expect("propose");
    j.shutdown().await;
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ufs_single_master_format_round_trip() {
    init_tracing();
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("journal");
    let c = ufs(&folder, &[]);
    assert!(!is_formatted(&c).await.unwrap(), "a missing folder");
    assert!(matches!(
        open(&c).await,
        Err(JournalError::Unformatted { .. })
    ));
    std::fs::create_dir_all(&folder).unwrap();
    assert!(!is_formatted(&c).await.unwrap(), "an empty folder");
    assert!(matches!(
        open(&c).await,
        Err(JournalError::Unformatted { .. })
    ));

    format(&c, false).await.unwrap();
    assert!(is_formatted(&c).await.unwrap());
    serve_once(&c).await;
    assert!(
        !names(&folder.join("logs")).is_empty(),
        "the journal wrote chunks"
    );

    // Existing data is refused without force.
    match format(&c, false).await {
        Err(JournalError::AlreadyFormatted { cluster_id, .. }) => {
            assert!(cluster_id.starts_with("primacy-"), "{cluster_id}")
        }
        other => panic!("{other:?}"),
    }
    // Another configured cluster id: foreign at is_formatted and at open.
    let other = ufs(&folder, &[(r::CLUSTER_ID, "other")]);
    assert!(matches!(
        is_formatted(&other).await,
        Err(JournalError::ForeignJournal { .. })
    ));
    assert!(matches!(
        open(&other).await,
        Err(JournalError::ForeignJournal { .. })
    ));

    // Force: the old journal goes, a fresh one (with the configured id) comes.
    format(&other, true).await.unwrap();
    assert!(
        names(&folder.join("logs")).is_empty(),
        "{:?}",
        names(&folder.join("logs"))
    );
    assert!(is_formatted(&other).await.unwrap());
    assert!(
        matches!(is_formatted(&c).await, Ok(true)),
        "no id configured accepts any"
    );
    serve_once(&other).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ufs_forced_format_removes_only_the_journal() {
    init_tracing();
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().to_path_buf();
    let c = ufs(&folder, &[(r::CLUSTER_ID, "c1")]);
    // Foreign data and no FORMAT: refused, with and without force.
    std::fs::write(folder.join("notes.txt"), b"keep me").unwrap();
    for force in [false, true] {
        assert!(
            matches!(
                format(&c, force).await,
                Err(JournalError::ForeignJournal { .. })
            ),
            "force={force}"
        );
    }
    assert!(folder.join("notes.txt").exists());
    // A journal plus a foreign file: force removes the journal's files only,
    // and the foreign file still stops the format.
    std::fs::remove_file(folder.join("notes.txt")).unwrap();
    format(&c, false).await.unwrap();
    serve_once(&c).await;
    std::fs::write(folder.join("notes.txt"), b"keep me").unwrap();
    assert!(matches!(
        format(&c, true).await,
        Err(JournalError::ForeignJournal { .. })
    ));
    assert!(folder.join("notes.txt").exists());
    assert!(!folder.join("FORMAT").exists());
    assert!(names(&folder.join("logs")).is_empty());
    // A cloud folder is never wiped.
    let s3 = cfg(&[(r::JOURNAL_FOLDER, "s3://bucket/journal")]);
    assert!(matches!(
        format(&s3, true).await,
        Err(JournalError::Config { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_single_member_format_round_trip() {
    init_tracing();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("raft");
    let c = raft(&dir, free_port());
    assert!(!is_formatted(&c).await.unwrap());
    assert!(matches!(
        open(&c).await,
        Err(JournalError::Unformatted { .. })
    ));

    format(&c, false).await.unwrap();
    assert!(is_formatted(&c).await.unwrap());
    assert!(matches!(
        format(&c, false).await,
        Err(JournalError::AlreadyFormatted { .. })
    ));

    let j = open(&c).await.expect("open");
    wait_for_primary(&mut j.role(), BOUND)
        .await
        .expect("primary");
    j.propose(Bytes::from_static(b"entry"))
        .await
        .expect("propose");
    // A running master's directory is locked: even a forced format is refused
    // and changes nothing.
    assert!(matches!(
        format(&c, true).await,
        Err(JournalError::Io { .. })
    ));
    assert!(is_formatted(&c).await.unwrap());
    j.shutdown().await;
    drop(j);

    // Another cluster id is foreign.
    let port = c.embedded.port.to_string();
    let folder = dir.display().to_string();
    let other = cfg(&[
        (r::JOURNAL_TYPE, "EMBEDDED"),
        (r::MASTER_HOSTNAME, "127.0.0.1"),
        (r::EMBEDDED_PORT, &port),
        (r::JOURNAL_FOLDER, &folder),
        (r::CLUSTER_ID, "other"),
    ]);
    assert!(matches!(
        is_formatted(&other).await,
        Err(JournalError::ForeignJournal { .. })
    ));

    // Force removes the old journal's files (the lock is released once the
    // journal's tasks end, so retry briefly) and formats afresh.
    let deadline = tokio::time::Instant::now() + BOUND;
    loop {
        match format(&other, true).await {
            Ok(()) => break,
            Err(JournalError::Io { .. }) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("forced format: {e}"),
        }
    }
    assert_eq!(names(&dir), vec!["FORMAT", "LOCK"]);
    assert!(is_formatted(&other).await.unwrap());
    let j = open(&other).await.expect("open after a forced format");
    wait_for_primary(&mut j.role(), BOUND)
        .await
        .expect("primary");
    j.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_forced_format_keeps_foreign_files() {
    init_tracing();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("raft");
    let c = raft(&dir, free_port());
    format(&c, false).await.unwrap();
    std::fs::write(dir.join("notes.txt"), b"keep me").unwrap();
    assert!(matches!(
        format(&c, true).await,
        Err(JournalError::ForeignJournal { .. })
    ));
    assert!(dir.join("notes.txt").exists());
    assert!(!dir.join("FORMAT").exists());
}

#[tokio::test]
async fn contradictions_fail_before_any_io() {
    let c = cfg(&[
        (r::JOURNAL_FOLDER, "/nonexistent/primacy-test"),
        (r::JOURNAL_TYPE, "EMBEDDED"),
        (r::MASTER_HOSTNAME, "m1"),
        (r::ZK_ENABLED, "true"),
    ]);
    for e in [
        open(&c).await.err(),
        is_formatted(&c).await.err(),
        format(&c, false).await.err(),
    ] {
        match e {
            Some(JournalError::Config { key, detail }) => {
                assert_eq!(key, r::ZK_ENABLED);
                assert!(detail.contains("\"true\""), "{detail}");
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(!Path::new("/nonexistent/primacy-test").exists());
}
