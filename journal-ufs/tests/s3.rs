//! The UFS journal on `s3://` against a real S3-compatible server (moto,
//! started per test on a free loopback port, see `journal_ufs::testkit`):
//! the conformance suite, two concurrent primaries, standby tailing (and
//! what it costs in requests), checkpoints with garbage collection,
//! corruption named, and the start-up probe refusing a store without
//! create-if-absent.
//!
//! Needs the `testkit` feature and `python3 -m pip install 'moto[server]'`:
//! `cargo test -p journal-ufs --features testkit --test s3`.
#![cfg(feature = "testkit")]
#![allow(clippy::needless_range_loop)]

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::counting::Counting;
use common::{init_tracing, propose_n, single, Storage, UfsFactory, CLUSTER, WAIT};
use journal_core::testkit::{run_conformance, wait_until, ManualElection, TestMachine};
use journal_core::{
    shared, wait_for_primary, ElectionState, JournalError, JournalSystem, SingleMaster,
};
use journal_ufs::inspect::read_opened;
use journal_ufs::layout::seq_name;
use journal_ufs::testkit::MotoServer;
use journal_ufs::{format, UfsJournal};

fn moto() -> Arc<MotoServer> {
    Arc::new(MotoServer::start("primacy-journal").expect(
        "a moto server (python3 -m pip install 'moto[server]'; scripts/test-all.sh installs it)",
    ))
}

async fn formatted(server: &Arc<MotoServer>, name: &str) -> Storage {
    let storage = Storage::s3(server, name);
    format(&storage.folder(true).unwrap(), CLUSTER)
        .await
        .unwrap();
    storage
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_on_s3() {
    init_tracing();
    let server = moto();
    run_conformance(&UfsFactory::new(Storage::s3(&server, "conformance"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_primaries_never_fork_the_log_on_s3() {
    init_tracing();
    let server = moto();
    common::two_primaries::never_fork(
        &Storage::s3(&server, "fight"),
        1000,
        Duration::from_millis(30),
    )
    .await;
}

/// A primary, a standby tailing it and writing checkpoints, garbage
/// collection after each; a fresh master restores from the checkpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standby_tails_checkpoints_and_collects_garbage_on_s3() {
    init_tracing();
    let server = moto();
    let storage = formatted(&server, "checkpoints").await;
    let elections = [
        Arc::new(ManualElection::new()),
        Arc::new(ManualElection::new()),
    ];
    let machines = [shared(TestMachine::new()), shared(TestMachine::new())];
    let mut journals = Vec::new();
    for m in 0..2 {
        let mut cfg = storage.config(m);
        cfg.checkpoint_period_entries = 100;
        cfg.primary_writes_checkpoints = false;
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
    let folder = storage.folder(false).unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    let contents = loop {
        let contents = read_opened(&folder).await.unwrap();
        if contents.checkpoints.len() <= 2 && contents.chunks[0].header.first_seq > 1 {
            break contents;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "retention: checkpoints {:?}, first chunk {}",
            contents.checkpoints,
            contents.chunks[0].header.first_seq
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let oldest_kept = contents.checkpoints[0];
    assert!(contents.chunks[0].header.first_seq < oldest_kept);
    assert!(contents.chunks[0].end() >= oldest_kept);
    println!(
        "s3 gc: checkpoints {:?}, first chunk {} of {target} records",
        contents.checkpoints, contents.chunks[0].header.first_seq
    );
    for j in &journals {
        j.shutdown().await;
    }
    let machine = shared(TestMachine::new());
    let fresh = UfsJournal::open(
        storage.config(2),
        Arc::new(SingleMaster::new()),
        machine.clone(),
    )
    .await
    .unwrap();
    wait_for_primary(&mut fresh.role(), WAIT).await.unwrap();
    assert_eq!(machine.read().entries, machines[0].read().entries);
    fresh.shutdown().await;
}

/// A flipped byte in a chunk or a checkpoint is `Corrupt` naming the
/// object by its `s3://` name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corruption_is_named_on_s3() {
    init_tracing();
    let server = moto();
    let storage = formatted(&server, "damage").await;
    let open = |storage: &Storage| {
        let cfg = storage.config(0);
        async move {
            UfsJournal::open(
                cfg,
                Arc::new(SingleMaster::new()),
                shared(TestMachine::new()),
            )
            .await
        }
    };
    let journal = open(&storage).await.unwrap();
    wait_for_primary(&mut journal.role(), WAIT).await.unwrap();
    propose_n(&journal, "x", 50).await;
    let seq = journal.checkpoint().await.unwrap();
    propose_n(&journal, "y", 10).await;
    journal.shutdown().await;
    drop(journal);
    let contents = read_opened(&storage.folder(false).unwrap()).await.unwrap();
    let last_chunk = contents.chunks.last().unwrap().header.first_seq;
    for victim in [
        format!("checkpoints/{}", seq_name(seq)),
        format!("logs/{}", seq_name(last_chunk)),
    ] {
        common::flip_byte(&storage, &victim, 0.6).await.unwrap();
        match open(&storage).await {
            Err(JournalError::Corrupt { location, detail }) => {
                assert!(location.starts_with("s3://"), "{location}");
                assert!(location.ends_with(&victim), "{location}");
                println!("s3 corruption reported: {location}: {detail}");
            }
            Err(other) => panic!("expected Corrupt naming {victim}, got {other}"),
            Ok(_) => panic!("a damaged {victim} was accepted"),
        }
        common::flip_byte(&storage, &victim, 0.6).await.unwrap();
    }
    let machine = shared(TestMachine::new());
    let journal = UfsJournal::open(
        storage.config(0),
        Arc::new(SingleMaster::new()),
        machine.clone(),
    )
    .await
    .unwrap();
    wait_for_primary(&mut journal.role(), WAIT).await.unwrap();
    assert_eq!(machine.read().entries.len(), 60);
    journal.shutdown().await;
}

fn refusal(e: JournalError) -> String {
    match e {
        JournalError::Config { key, detail } => {
            assert_eq!(key, "alluxio.master.journal.folder");
            assert!(detail.contains("create-if-absent"), "{detail}");
            detail
        }
        other => panic!("expected the create-if-absent refusal, got {other}"),
    }
}

/// A server that ignores `If-None-Match` (a wrapper turning every create
/// into an overwrite) is refused by format and by open, before anything is
/// written; so is a client configured without conditional PUT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_without_create_if_absent_is_refused() {
    init_tracing();
    let server = moto();
    let storage = formatted(&server, "probe").await;
    let mut folder = storage.folder(false).unwrap();
    let before = read_opened(&folder).await.unwrap();
    let counting = Arc::new(Counting::new(folder.store.clone()));
    counting.ignore_create.store(true, Ordering::SeqCst);
    folder.store = counting.clone();
    let e = UfsJournal::open_in(
        folder.clone(),
        storage.config(0),
        Arc::new(SingleMaster::new()),
        shared(TestMachine::new()),
    )
    .await
    .unwrap_err();
    println!("open refused: {}", refusal(e));
    let empty = Storage::s3(&server, "probe-empty");
    let mut empty_folder = empty.folder(true).unwrap();
    empty_folder.store = counting.clone();
    let e = format(&empty_folder, CLUSTER).await.unwrap_err();
    println!("format refused: {}", refusal(e));
    // Nothing was left behind: the probe object is removed, no FORMAT.
    let plain = empty.folder(false).unwrap();
    let left: Vec<_> =
        futures::TryStreamExt::try_collect::<Vec<_>>(plain.store.list(Some(&plain.root)))
            .await
            .unwrap();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(
        read_opened(&storage.folder(false).unwrap())
            .await
            .unwrap()
            .chunks
            .len(),
        before.chunks.len()
    );

    // The S3 client with conditional PUT switched off cannot create-if-absent.
    let mut cfg = storage.config(0);
    cfg.store_options
        .insert("aws_conditional_put".into(), "disabled".into());
    let e = UfsJournal::open(
        cfg,
        Arc::new(SingleMaster::new()),
        shared(TestMachine::new()),
    )
    .await
    .unwrap_err();
    println!("conditional put disabled: {}", refusal(e));
}

/// A server that honours `If-None-Match` on PUT but not when completing
/// the multipart copy that publishes checkpoints passes the create probe
/// and would let a checkpoint be overwritten; the probe publishes onto an
/// existing name too, so open and format refuse it, leaving nothing behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_whose_copy_ignores_the_precondition_is_refused() {
    init_tracing();
    let server = moto();
    let storage = formatted(&server, "copy-probe").await;
    let mut folder = storage.folder(false).unwrap();
    let counting = Arc::new(Counting::new(folder.store.clone()));
    counting.ignore_copy_create.store(true, Ordering::SeqCst);
    folder.store = counting.clone();
    let e = UfsJournal::open_in(
        folder.clone(),
        storage.config(0),
        Arc::new(SingleMaster::new()),
        shared(TestMachine::new()),
    )
    .await
    .unwrap_err();
    let detail = refusal(e);
    assert!(detail.contains("copy-if-absent"), "{detail}");
    let empty = Storage::s3(&server, "copy-probe-empty");
    let mut empty_folder = empty.folder(true).unwrap();
    empty_folder.store = counting.clone();
    let e = format(&empty_folder, CLUSTER).await.unwrap_err();
    println!("format refused: {}", refusal(e));
    let plain = empty.folder(false).unwrap();
    let left: Vec<_> =
        futures::TryStreamExt::try_collect::<Vec<_>>(plain.store.list(Some(&plain.root)))
            .await
            .unwrap();
    assert!(left.is_empty(), "{left:?}");
    // The same store with the precondition honoured opens.
    counting.ignore_copy_create.store(false, Ordering::SeqCst);
    let journal = UfsJournal::open_in(
        folder,
        storage.config(0),
        Arc::new(SingleMaster::new()),
        shared(TestMachine::new()),
    )
    .await
    .unwrap();
    journal.shutdown().await;
}

/// A standby following a steady stream of chunks reads each by name (GET
/// of the next slot) and lists nothing: listings happen at open, every
/// `END_CHECK_POLLS` idle polls and every 4096 chunks, not per chunk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tailing_lists_nothing_on_the_hot_path() {
    init_tracing();
    let server = moto();
    let storage = formatted(&server, "tail").await;
    let primary_election = Arc::new(ManualElection::new());
    let primary = UfsJournal::open(
        storage.config(0),
        primary_election.clone(),
        shared(TestMachine::new()),
    )
    .await
    .unwrap();
    primary_election.set(ElectionState::Leader { epoch: 1 });
    wait_for_primary(&mut primary.role(), WAIT).await.unwrap();

    let mut folder = storage.folder(false).unwrap();
    let counting = Arc::new(Counting::new(folder.store.clone()));
    folder.store = counting.clone();
    let mut cfg = storage.config(1);
    // Idle polls are 5 ms apart: chunks below arrive faster than the
    // 50 idle polls after which a standby proves the log's end by listing.
    cfg.tailer_sleep = Duration::from_millis(5);
    let standby_machine = shared(TestMachine::new());
    let standby = UfsJournal::open_in(
        folder,
        cfg,
        Arc::new(ManualElection::new()),
        standby_machine.clone(),
    )
    .await
    .unwrap();
    let start = primary.status().last_applied;
    wait_until("the standby caught up", WAIT, || {
        standby.status().last_applied >= start
    })
    .await;
    let before = counting.counts.snapshot();
    const CHUNKS: u64 = 200;
    for i in 0..CHUNKS {
        primary
            .propose(bytes::Bytes::from(format!("tail-{i}")))
            .await
            .unwrap();
    }
    let target = primary.status().last_applied;
    wait_until("the standby applied the stream", WAIT, || {
        standby.status().last_applied >= target
    })
    .await;
    let after = counting.counts.snapshot();
    let d: Vec<u64> = after.iter().zip(before).map(|(a, b)| a - b).collect();
    println!(
        "standby requests for {CHUNKS} chunks: puts {}, gets {}, heads {}, lists {}, deletes {}, copies {}",
        d[0], d[1], d[2], d[3], d[4], d[5]
    );
    assert!(d[1] >= CHUNKS, "each chunk is read by GET");
    // A loaded machine may stall the primary past 50 idle polls a few
    // times; a tailer that listed per poll or per chunk would list hundreds.
    assert!(d[3] <= CHUNKS / 20, "{} listings for {CHUNKS} chunks", d[3]);
    assert_eq!(d[0], 0, "a standby writes nothing while tailing");
    standby.shutdown().await;
    primary.shutdown().await;
}

/// A master killed between the probe's two creates leaves the probe object
/// behind: format ignores it; anything else in the folder still makes
/// format refuse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_left_by_a_crash_does_not_block_format() {
    use object_store::{ObjectStoreExt, PutPayload};
    init_tracing();
    let server = moto();
    let storage = Storage::s3(&server, "crashed-probe");
    let folder = storage.folder(true).unwrap();
    let left = folder
        .root
        .clone()
        .join("tmp")
        .join("create-probe-0b6f2c1e-dead-4bee-8f00-000000000000");
    folder
        .store
        .put(&left, PutPayload::from_static(b"probe 1"))
        .await
        .unwrap();
    format(&folder, CLUSTER).await.unwrap();

    let other = Storage::s3(&server, "not-a-probe");
    let folder = other.folder(true).unwrap();
    let stray = folder.root.clone().join("tmp").join("create-probe");
    folder
        .store
        .put(&stray, PutPayload::from_static(b"x"))
        .await
        .unwrap();
    let e = format(&folder, CLUSTER).await.unwrap_err();
    assert!(
        matches!(e, JournalError::ForeignJournal { .. }),
        "a stray object must still make format refuse: {e}"
    );
}

/// A bucket that does not exist, and a server that is not there: format
/// and open fail with an error naming the folder's URL (never a panic,
/// never a fallback), and the secret key is not in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_or_server_is_a_clear_error() {
    init_tracing();
    let server = moto();
    let mut options = server.options();
    options.insert("aws_secret_access_key".into(), "SECRETLEAK".into());
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    let mut down = options.clone();
    down.insert(
        "aws_endpoint".into(),
        format!("http://127.0.0.1:{dead_port}"),
    );
    let cases = [
        ("s3://no-such-bucket/j", options.clone(), "no-such-bucket"),
        ("s3://primacy-journal/j", down, "primacy-journal/j"),
    ];
    for (url, options, named) in cases {
        let started = std::time::Instant::now();
        let folder = journal_ufs::open_folder_with(url, true, &options).unwrap();
        let e = tokio::time::timeout(Duration::from_secs(400), format(&folder, CLUSTER))
            .await
            .expect("format gives up within the client's retry budget")
            .unwrap_err();
        let shown = format!("{e} {e:?}");
        println!("{url}: {:?}: {shown}", started.elapsed());
        assert!(matches!(e, JournalError::Io { .. }), "{shown}");
        assert!(shown.contains(named), "{shown}");
        assert!(!shown.contains("SECRETLEAK"), "{shown}");
        let mut cfg = journal_ufs::UfsJournalConfig::new(url, "m:1");
        cfg.store_options = options.clone();
        let e = tokio::time::timeout(
            Duration::from_secs(400),
            UfsJournal::open(
                cfg,
                Arc::new(SingleMaster::new()),
                shared(TestMachine::new()),
            ),
        )
        .await
        .expect("open gives up within the client's retry budget")
        .map(|_| ())
        .expect_err("open fails");
        let shown = format!("{e} {e:?}");
        assert!(shown.contains(named), "{shown}");
        assert!(!shown.contains("SECRETLEAK"), "{shown}");
    }
}

/// A conditional PUT that landed but whose answer was lost is retried by
/// the S3 client and answered 412: the chunk in the slot is this master's
/// own, so its proposals succeed and it stays primary, and the log holds
/// each entry once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_create_of_our_own_chunk_is_not_a_lost_race() {
    init_tracing();
    let server = moto();
    let storage = formatted(&server, "retried-put").await;
    let mut folder = storage.folder(false).unwrap();
    let counting = Arc::new(Counting::new(folder.store.clone()));
    folder.store = counting.clone();
    let machine = shared(TestMachine::new());
    let journal = UfsJournal::open_in(
        folder,
        storage.config(0),
        Arc::new(SingleMaster::new()),
        machine.clone(),
    )
    .await
    .unwrap();
    wait_for_primary(&mut journal.role(), WAIT).await.unwrap();
    let before = machine.read().entries.len();
    counting.landed_then_taken.store(true, Ordering::SeqCst);
    journal
        .propose(bytes::Bytes::from_static(b"landed"))
        .await
        .expect("the entry is in the log: the proposal succeeds");
    assert!(!counting.landed_then_taken.load(Ordering::SeqCst));
    journal
        .propose(bytes::Bytes::from_static(b"after"))
        .await
        .expect("still primary");
    assert_eq!(machine.read().entries.len(), before + 2);
    journal.shutdown().await;
    let (reopened, machine) = single(storage.config(0)).await;
    assert_eq!(machine.read().entries.len(), before + 2);
    reopened.shutdown().await;
}
