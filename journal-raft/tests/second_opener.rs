//! A second opener of a live member's data directory (the same master
//! started twice) is refused with a clear error and changes nothing: the
//! live member's log files are neither truncated nor "repaired", it keeps
//! serving, and after it shuts down the directory reopens with every
//! acknowledged entry.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::{assert_acked_present, entry, init_tracing, Group, Member};
use journal_core::{JournalError, JournalSystem};
use journal_raft::storage::{log_dir, RaftStorage};
use parking_lot::Mutex;

/// Every file under `dir` (recursively) with its bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else if let Ok(b) = std::fs::read(&p) {
                out.insert(p, b);
            }
        }
    }
    out
}

/// The live member only appends: every file seen before is still there, no
/// shorter, and its written bytes (up to the last non-zero one) unchanged.
fn assert_only_appended(
    before: &BTreeMap<PathBuf, Vec<u8>>,
    after: &BTreeMap<PathBuf, Vec<u8>>,
    ctx: &str,
) {
    for (path, old) in before {
        let new = after
            .get(path)
            .unwrap_or_else(|| panic!("{ctx}: {} disappeared", path.display()));
        assert!(
            new.len() >= old.len(),
            "{ctx}: {} shrank from {} to {} bytes",
            path.display(),
            old.len(),
            new.len()
        );
        let written = old
            .iter()
            .rposition(|b| *b != 0)
            .map(|p| p + 1)
            .unwrap_or(0);
        assert!(
            new[..written] == old[..written],
            "{ctx}: written bytes of {} changed",
            path.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn second_opener_is_refused_and_changes_nothing() {
    init_tracing();
    tokio::time::timeout(Duration::from_secs(120), async {
        let mut g = Group::new(1);
        g.open(0).await;
        g.primary(Duration::from_secs(30)).await;
        let acked = Arc::new(Mutex::new(Vec::new()));
        for i in 0..50 {
            let e = entry("before", i, 300);
            let out = g.m(0).journal.propose(e.clone()).await.unwrap();
            acked.lock().push((e, out));
        }

        // Member A keeps proposing while the second opener tries its luck.
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let load = {
            let j = g.m(0).journal.clone();
            let acked = acked.clone();
            tokio::spawn(async move {
                let mut i = 0;
                while !*stop_rx.borrow() {
                    let e = entry("during", i, 300);
                    i += 1;
                    let out = j.propose(e.clone()).await.expect("A keeps working");
                    acked.lock().push((e, out));
                }
            })
        };

        let log = log_dir(&g.dir(0));
        for attempt in 0..5 {
            let before = files(&log);
            let dir = g.dir(0).display().to_string();
            let second = Member::open(g.config(0)).await;
            // Files first: the old failure was a "repair" of A's live file.
            assert_only_appended(&before, &files(&log), &format!("attempt {attempt}"));
            assert!(
                !g.dir(0).join("log.probe").exists(),
                "attempt {attempt}: a repair probe ran"
            );
            match second {
                Err(JournalError::Io { location, source }) => {
                    let text = format!("{location}: {source}");
                    assert!(
                        text.contains("in use by another master") && text.contains(&dir),
                        "attempt {attempt}: unclear error: {text}"
                    );
                }
                Err(other) => panic!("attempt {attempt}: expected Io (in use), got {other}"),
                Ok(_) => panic!("attempt {attempt}: a second instance opened a live directory"),
            }
            let data_dir = g.dir(0);
            let storage =
                tokio::task::spawn_blocking(move || RaftStorage::open(&data_dir, None).map(|_| ()))
                    .await
                    .unwrap();
            assert!(
                matches!(&storage, Err(JournalError::Io { .. })),
                "attempt {attempt}: RaftStorage::open on a live directory: {storage:?}"
            );
            assert_only_appended(&before, &files(&log), &format!("attempt {attempt}"));
            assert!(
                !g.dir(0).join("log.probe").exists(),
                "attempt {attempt}: a repair probe ran"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        stop_tx.send_replace(true);
        load.await.unwrap();
        let e = entry("after", 0, 10);
        let out = g
            .m(0)
            .journal
            .propose(e.clone())
            .await
            .expect("A still serves");
        acked.lock().push((e, out));
        let acked = acked.lock().clone();
        assert_acked_present(&g.m(0).entries(), &acked, "live member");

        // Clean shutdown releases the directory; it reopens with everything.
        g.close(0).await;
        g.open(0).await;
        g.primary(Duration::from_secs(30)).await;
        g.m(0).journal.read_barrier().await.unwrap();
        assert_acked_present(&g.m(0).entries(), &acked, "reopened");
        eprintln!(
            "second opener: refused 5 times; {} acknowledged entries kept",
            acked.len()
        );
        g.close_all().await;
    })
    .await
    .expect("the test finishes in 2 minutes");
}
