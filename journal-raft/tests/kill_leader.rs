//! Three members as separate OS processes on loopback (this test binary,
//! re-executed as a child). The leader is killed with SIGKILL under a stream
//! of proposals: a new leader serves within 2 x the maximum election
//! timeout, no acknowledged entry is lost, and the killed member restarts
//! from its own disk and catches up.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{free_addresses, init_tracing, Group};
use journal_core::testkit::TestMachine;
use journal_core::{shared, JournalSystem, Role};
use journal_raft::{RaftJournal, RaftJournalConfig};
use parking_lot::Mutex;

const CHILD_ENV: &str = "PRIMACY_RAFT_CHILD";

fn child_config(address: &str, addresses: &[String], dir: &str) -> RaftJournalConfig {
    // The defaults (1 s / 2 s election timeouts) are what this test measures.
    let mut cfg = RaftJournalConfig::new(address, addresses.to_vec(), dir);
    cfg.cluster_id = Some("kill-test".into());
    cfg
}

/// The child: one member; proposes while primary and prints what happens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_child_process() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return; // only runs as a child of `kill_9_the_leader_under_load`
    };
    // The parent holds our stdin; when it goes away, so do we.
    std::thread::spawn(|| {
        let mut sink = String::new();
        while std::io::stdin()
            .read_line(&mut sink)
            .map(|n| n > 0)
            .unwrap_or(false)
        {}
        std::process::exit(0);
    });
    let parts: Vec<String> = spec.split('|').map(String::from).collect();
    let (address, addresses, dir, tag) = (
        parts[0].clone(),
        parts[1].clone(),
        parts[2].clone(),
        parts[3].clone(),
    );
    let addresses: Vec<String> = addresses.split(',').map(String::from).collect();
    let machine = shared(TestMachine::new());
    let cfg = child_config(&address, &addresses, &dir);
    common::ensure_formatted(&cfg).expect("child formats its member");
    let journal = RaftJournal::open(cfg, machine.clone())
        .await
        .expect("child opens its member");
    let j = journal.clone();
    tokio::spawn(async move {
        loop {
            let s = j.status();
            println!("STATUS {} {}", s.last_applied, s.epoch);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let mut role = journal.role();
    let j = journal.clone();
    tokio::spawn(async move {
        loop {
            if let Role::Primary { epoch } = *role.borrow_and_update() {
                println!("PRIMARY {epoch}");
            }
            if role.changed().await.is_err() {
                break;
            }
            let _ = &j;
        }
    });
    for worker in 0..8 {
        let journal = journal.clone();
        let tag = tag.clone();
        tokio::spawn(async move {
            let mut i = 0u64;
            loop {
                if !journal.role().borrow().is_primary() {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
                let entry = format!("{tag}-w{worker}-{i}");
                i += 1;
                if let Ok(out) = journal.propose(Bytes::from(entry.clone())).await {
                    println!("ACK {} {entry}", TestMachine::output_seq(&out).unwrap_or(0));
                }
            }
        });
    }
    std::future::pending::<()>().await;
}

#[derive(Default)]
struct Seen {
    acks: Vec<(u64, String)>,
    /// (member, term, when the line arrived)
    primaries: Vec<(usize, u64, Instant)>,
    applied: HashMap<usize, u64>,
}

struct Children(Vec<Option<Child>>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in self.0.iter_mut().flatten() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn spawn_child(
    exe: &std::path::Path,
    member: usize,
    spec: String,
    seen: Arc<Mutex<Seen>>,
) -> Child {
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "raft_child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, spec)
        .env("RUST_LOG", "error")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let out = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            let mut it = line.split_whitespace();
            match (it.next(), it.next(), it.next()) {
                (Some("ACK"), Some(seq), Some(entry)) => {
                    if let Ok(seq) = seq.parse() {
                        seen.lock().acks.push((seq, entry.to_string()));
                    }
                }
                (Some("PRIMARY"), Some(term), None) => {
                    if let Ok(term) = term.parse() {
                        seen.lock().primaries.push((member, term, Instant::now()));
                    }
                }
                (Some("STATUS"), Some(applied), Some(_)) => {
                    if let Ok(a) = applied.parse() {
                        seen.lock().applied.insert(member, a);
                    }
                }
                _ => {}
            }
        }
    });
    child
}

fn wait<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_the_leader_under_load() {
    init_tracing();
    let root = tempfile::tempdir().unwrap();
    let addresses = free_addresses(3);
    let dirs: Vec<String> = (0..3)
        .map(|i| {
            root.path()
                .join(format!("member-{i}"))
                .display()
                .to_string()
        })
        .collect();
    let exe = std::env::current_exe().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (a2, d2) = (addresses.clone(), dirs.clone());
    let spec =
        move |i: usize, round: usize| format!("{}|{}|{}|m{i}r{round}", a2[i], a2.join(","), d2[i]);
    let election_max = RaftJournalConfig::new("h:1", vec!["h:1".into()], "/x").election_timeout_max;

    let seen2 = seen.clone();
    let exe2 = exe.clone();
    let spec0: Vec<String> = (0..3).map(|i| spec(i, 0)).collect();
    let spec_restart = spec.clone();
    let (report, children) = tokio::task::spawn_blocking(move || {
        let seen = seen2;
        let mut children = Children(
            (0..3)
                .map(|i| Some(spawn_child(&exe2, i, spec0[i].clone(), seen.clone())))
                .collect(),
        );
        let (leader, term) = wait("a first primary", Duration::from_secs(30), || {
            seen.lock().primaries.last().map(|(m, t, _)| (*m, *t))
        });
        wait("200 acknowledged entries", Duration::from_secs(60), || {
            (seen.lock().acks.len() >= 200).then_some(())
        });

        // SIGKILL the leader while its workers are proposing.
        if let Some(c) = children.0[leader].as_mut() {
            c.kill().expect("kill -9");
            let _ = c.wait();
        }
        let killed_at = Instant::now();
        let acked_at_kill = seen.lock().acks.len();
        let (new_leader, new_term, failover) =
            wait("a new primary", Duration::from_secs(30), || {
                seen.lock()
                    .primaries
                    .iter()
                    .find(|(m, t, _)| *m != leader && *t > term)
                    .map(|(m, t, at)| (*m, *t, at.duration_since(killed_at)))
            });
        wait(
            "acknowledgements from the new primary",
            Duration::from_secs(30),
            || (seen.lock().acks.len() >= acked_at_kill + 100).then_some(()),
        );

        // Restart the killed member from its own disk; it must catch up.
        children.0[leader] = Some(spawn_child(
            &exe2,
            leader,
            spec_restart(leader, 1),
            seen.clone(),
        ));
        let restarted_at = Instant::now();
        std::thread::sleep(Duration::from_millis(300));
        let target = seen.lock().applied.get(&new_leader).copied().unwrap_or(0);
        wait(
            "the restarted member to catch up",
            Duration::from_secs(60),
            || (seen.lock().applied.get(&leader).copied().unwrap_or(0) >= target).then_some(()),
        );
        let catch_up = restarted_at.elapsed();
        for c in children.0.iter_mut().flatten() {
            let _ = c.kill();
            let _ = c.wait();
        }
        (
            (leader, term, new_leader, new_term, failover, catch_up),
            children,
        )
    })
    .await
    .unwrap();
    drop(children);
    let (killed, term, new_leader, new_term, failover, catch_up) = report;
    let acks = seen.lock().acks.clone();
    eprintln!(
        "kill -9: member {killed} (term {term}) killed; member {new_leader} served in term {new_term} after {failover:?} \
         (bound {:?}); restarted member caught up in {catch_up:?}; {} entries acknowledged",
        election_max * 2,
        acks.len()
    );
    assert!(failover <= election_max * 2, "failover took {failover:?}");

    // Every acknowledged entry is in the log, once, at its position: reopen
    // the three data directories in this process and read them back.
    let mut g = Group::new(0);
    g.addresses = addresses.clone();
    g.members = (0..3).map(|_| None).collect();
    for i in 0..3 {
        let cfg = child_config(&addresses[i], &addresses, &dirs[i]);
        g.open_with(i, cfg).await;
    }
    let p = g.primary(Duration::from_secs(30)).await;
    g.m(p).journal.read_barrier().await.unwrap();
    let target = g.m(p).journal.status().last_applied;
    for i in 0..3 {
        g.wait_applied(i, target, Duration::from_secs(30)).await;
    }
    let entries = g.m(p).entries();
    let by_entry: HashMap<&[u8], Vec<u64>> =
        entries.iter().fold(HashMap::new(), |mut m, (s, e)| {
            m.entry(e.as_ref()).or_default().push(*s);
            m
        });
    for (seq, e) in &acks {
        match by_entry.get(e.as_bytes()) {
            Some(seqs) if seqs == &vec![*seq] => {}
            other => panic!("acknowledged entry {e} at {seq}: found at {other:?}"),
        }
    }
    for i in 0..3 {
        assert_eq!(g.m(i).entries(), entries, "member {i} differs");
    }
    g.close_all().await;
}
