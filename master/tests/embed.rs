//! `master::embed` on real folders: the calls of a single UFS master and of
//! a one-member embedded group, and what goes wrong when they are misused
//! (unformatted, foreign or contradictory journals, standbys asked to serve,
//! calls after shutdown).

use std::time::Duration;

use journal_core::testkit::{init_tracing, TestMachine};
use master::embed::*;

const BOUND: Duration = Duration::from_secs(30);

fn ufs(dir: &std::path::Path) -> MasterConfig {
    MasterConfig::from_properties(&format!(
        "alluxio.master.journal.folder=file://{}\nalluxio.master.journal.tailer.sleep.time=5ms",
        dir.display()
    ))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_master_formats_opens_serves_and_restarts() {
    init_tracing();
    let tmp = tempfile::tempdir().unwrap();
    let config = ufs(&tmp.path().join("journal"));
    assert!(format(&config).await.unwrap(), "a new folder is formatted");
    assert!(
        !format(&config).await.unwrap(),
        "a formatted one is left alone"
    );

    let member = Replicated::open(&config, TestMachine::new()).await.unwrap();
    assert_eq!(member.backend(), Backend::UfsSingle);
    let epoch = member.wait_primary(BOUND).await.unwrap();
    assert!(epoch >= 1 && member.is_primary());
    let out = member.propose(&b"first"[..]).await.unwrap();
    let seq = TestMachine::output_seq(&out).unwrap();
    assert_eq!(out, TestMachine::expected_output(seq, b"first"));
    assert_eq!(member.read(|m| m.entries.len()).await.unwrap(), 1);
    assert_eq!(member.read_local(|m| m.occurrences(b"first")), 1);
    assert!(member.status().last_applied >= seq);
    // A clone is the same member.
    let clone = member.clone();
    clone.propose(Bytes::from_static(b"second")).await.unwrap();
    assert_eq!(member.read_local(|m| m.entries.len()), 2);
    member.shutdown().await;
    assert!(!member.is_primary());
    assert!(matches!(
        member.propose(&b"late"[..]).await,
        Err(JournalError::Shutdown | JournalError::NotPrimary { .. })
    ));

    // A restart replays into a fresh machine.
    let again = Replicated::open(&config, TestMachine::new()).await.unwrap();
    again.wait_primary(BOUND).await.unwrap();
    assert_eq!(
        again
            .read(|m| m.entries.iter().map(|(_, e)| e.clone()).collect::<Vec<_>>())
            .await
            .unwrap(),
        vec![Bytes::from_static(b"first"), Bytes::from_static(b"second")]
    );
    again.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_never_formats_and_format_never_overwrites() {
    init_tracing();
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("journal");
    let config = ufs(&folder);
    match Replicated::open(&config, TestMachine::new()).await {
        Err(JournalError::Unformatted { location }) => {
            assert!(location.contains("journal"), "{location}")
        }
        other => panic!("expected Unformatted, got {other:?}"),
    }
    // Someone else's files: refused, and left where they are.
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("notes.txt"), b"keep me").unwrap();
    assert!(matches!(
        format(&config).await,
        Err(JournalError::ForeignJournal { .. })
    ));
    assert_eq!(std::fs::read(folder.join("notes.txt")).unwrap(), b"keep me");

    // Another cluster's journal: refused at format and at open.
    let other = tmp.path().join("other");
    let mine = MasterConfig::from_properties(&format!(
        "alluxio.master.journal.folder=file://{}\nalluxio.master.cluster.id=mine",
        other.display()
    ))
    .unwrap();
    assert!(format(&mine).await.unwrap());
    let theirs = MasterConfig::from_properties(&format!(
        "alluxio.master.journal.folder=file://{}\nalluxio.master.cluster.id=theirs",
        other.display()
    ))
    .unwrap();
    assert!(matches!(
        format(&theirs).await,
        Err(JournalError::ForeignJournal { .. })
    ));
    assert!(matches!(
        Replicated::open(&theirs, TestMachine::new()).await,
        Err(JournalError::ForeignJournal { .. })
    ));
}

#[tokio::test]
async fn contradictory_configuration_is_refused_before_anything_opens() {
    init_tracing();
    let tmp = tempfile::tempdir().unwrap();
    // ZooKeeper with the embedded journal would mean two elections.
    let both = MasterConfig::from_properties(&format!(
        "alluxio.master.journal.type=EMBEDDED\n\
         alluxio.master.hostname=127.0.0.1\n\
         alluxio.master.journal.folder={}\n\
         alluxio.zookeeper.enabled=true\n\
         alluxio.zookeeper.address=127.0.0.1:2181",
        tmp.path().display()
    ))
    .unwrap();
    for result in [
        format(&both).await.map(|_| ()),
        Replicated::open(&both, TestMachine::new())
            .await
            .map(|_| ()),
    ] {
        match result {
            Err(JournalError::Config { key, .. }) => {
                assert_eq!(key, "alluxio.zookeeper.enabled")
            }
            other => panic!("expected Config, got {other:?}"),
        }
    }
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    // No journal folder and no work dir: nothing to open.
    let none = MasterConfig::from_properties("").unwrap();
    assert!(matches!(
        Replicated::open(&none, TestMachine::new()).await,
        Err(JournalError::Config { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_refuses_writes_and_linearizable_reads_but_reads_locally() {
    init_tracing();
    let tmp = tempfile::tempdir().unwrap();
    let free = || journal_core::ports::free_loopback_port().unwrap();
    let peers = [free(), free()];
    let group = peers
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut members = Vec::new();
    for (i, peer) in peers.iter().enumerate() {
        let config = MasterConfig::from_properties(&format!(
            "alluxio.master.journal.type=EMBEDDED
             alluxio.master.embedded.journal.addresses={group}
             alluxio.master.hostname=127.0.0.1
             alluxio.master.embedded.journal.port={peer}
             alluxio.master.rpc.port={rpc}
             alluxio.master.journal.folder={dir}
             alluxio.master.embedded.journal.election.timeout.min=200ms
             alluxio.master.embedded.journal.election.timeout.max=400ms",
            rpc = free(),
            dir = tmp.path().join(format!("m{i}")).display(),
        ))
        .unwrap();
        assert!(format(&config).await.unwrap());
        members.push(Replicated::open(&config, TestMachine::new()).await.unwrap());
    }
    let (primary, _) = wait_for_any_primary(members.iter().map(Replicated::role), BOUND)
        .await
        .unwrap();
    let standby = &members[1 - primary];
    members[primary].propose(&b"x"[..]).await.unwrap();
    assert!(matches!(
        standby.propose(&b"y"[..]).await,
        Err(JournalError::NotPrimary { .. })
    ));
    assert!(matches!(
        standby.read(|m| m.entries.len()).await,
        Err(JournalError::NotPrimary { .. })
    ));
    let deadline = tokio::time::Instant::now() + BOUND;
    while standby.read_local(|m| m.occurrences(b"x")) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the standby never applied x"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(standby.read_local(|m| m.occurrences(b"y")), 0);
    for m in &members {
        m.shutdown().await;
    }
    // Both gone: neither counts as primary any more.
    assert!(matches!(
        wait_for_any_primary(
            members.iter().map(Replicated::role),
            Duration::from_millis(200)
        )
        .await,
        Err(JournalError::Shutdown | JournalError::Timeout { .. })
    ));
}
