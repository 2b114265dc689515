//! A master proposing in a loop is killed with SIGKILL; every entry it had
//! acknowledged must be in the journal when it is reopened. The child is
//! this same test binary, re-executed with an environment variable.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{config, init_tracing, Storage, CLUSTER};
use journal_core::testkit::TestMachine;
use journal_core::{shared, wait_for_primary, JournalSystem, SingleMaster};
use journal_ufs::{format, open_folder, UfsJournal};

const CHILD_ENV: &str = "PRIMACY_CRASH_CHILD_FOLDER";

/// The child: propose forever, print `ACK <entry>` after each acknowledgement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child_process() {
    let Ok(url) = std::env::var(CHILD_ENV) else {
        return; // only runs as the child of `kill_9_loses_no_acknowledged_entry`
    };
    let round: usize = std::env::var("PRIMACY_CRASH_ROUND")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0);
    let machine = shared(TestMachine::new());
    let journal = UfsJournal::open(config(&url, 0), Arc::new(SingleMaster::new()), machine)
        .await
        .expect("child opens the journal");
    wait_for_primary(&mut journal.role(), Duration::from_secs(20))
        .await
        .expect("child becomes primary");
    // libtest prints "test crash_child_process ... " without a newline first.
    println!("\nREADY");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    for worker in 0..16 {
        let journal = journal.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            for i in 0.. {
                let entry = format!("r{round}-w{worker}-{i}");
                if journal.propose(Bytes::from(entry.clone())).await.is_ok() {
                    let _ = tx.send(entry);
                }
            }
        });
    }
    while let Some(entry) = rx.recv().await {
        println!("ACK {entry}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_acknowledged_entry() {
    init_tracing();
    let storage = Storage::file();
    let url = storage.url();
    format(&open_folder(&url, true).unwrap(), CLUSTER)
        .await
        .unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut all_acked: Vec<String> = Vec::new();
    for round in 0..3 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child_process",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &url)
            .env("PRIMACY_CRASH_ROUND", round.to_string())
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        // Read acknowledgements on a thread; kill once enough have arrived.
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let started = Instant::now();
        let mut acked_this_round = 0;
        while acked_this_round < 3000 && started.elapsed() < Duration::from_secs(60) {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    if let Some(entry) = line.strip_prefix("ACK ") {
                        all_acked.push(entry.to_string());
                        acked_this_round += 1;
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(_) => break,
            }
        }
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        // Lines already in the pipe were acknowledged before the kill, too.
        reader.join().unwrap();
        while let Ok(line) = rx.try_recv() {
            if let Some(entry) = line.strip_prefix("ACK ") {
                all_acked.push(entry.to_string());
                acked_this_round += 1;
            }
        }
        assert!(
            acked_this_round > 0,
            "round {round}: the child acknowledged nothing"
        );

        let machine = shared(TestMachine::new());
        let journal = UfsJournal::open(
            config(&url, 0),
            Arc::new(SingleMaster::new()),
            machine.clone(),
        )
        .await
        .expect("reopen after kill -9");
        let (replayed, missing) = {
            let state = machine.read();
            let mut missing = 0;
            for entry in &all_acked {
                let n = state.occurrences(entry.as_bytes());
                assert!(n <= 1, "{entry} applied {n} times");
                if n == 0 {
                    missing += 1;
                }
            }
            (state.entries.len(), missing)
        };
        println!(
            "round {round}: {acked_this_round} acknowledged before SIGKILL, {replayed} entries replayed, {missing} acknowledged entries missing"
        );
        assert_eq!(missing, 0, "acknowledged entries lost across kill -9");
        journal.shutdown().await;
    }
}
