//! The conformance suite. Every journal backend runs [`run_conformance`]
//! with a factory that opens its members on real storage.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::RwLock;

use super::machine::TestMachine;
use crate::error::{JournalError, Result};
use crate::journal::{wait_for_primary, JournalSystem, Role};
use crate::snapshot::{restore_snapshot, write_snapshot, SnapshotMeta};
use crate::state_machine::SharedStateMachine;

/// Upper bound for any single wait in the suite; generous because CI machines are slow.
pub const CONFORMANCE_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens the members of one backend deployment on durable storage.
///
/// Members are numbered `0..members()`. Every method that "makes" something
/// happen returns once it happened (or an error).
#[async_trait]
pub trait BackendFactory: Send + Sync {
    /// Name used in failure messages.
    fn name(&self) -> String;

    /// Members of a deployment (1 for a single master). The standby and
    /// fencing checks run only with 2 or more.
    fn members(&self) -> usize;

    /// Wipes all storage and starts an empty, formatted deployment.
    async fn reset(&self) -> Result<()>;

    /// Opens member `member` from its durable storage, driving `machine` (fresh).
    async fn open(
        &self,
        member: usize,
        machine: SharedStateMachine,
    ) -> Result<Arc<dyn JournalSystem>>;

    /// Makes `member` the primary of the open `cluster` and waits until it reports so.
    async fn elect(&self, member: usize, cluster: &Cluster) -> Result<()>;

    /// Makes `new` the primary while `old` is not told: `old` may still
    /// believe it is primary and try to write. Returns once `new` serves.
    async fn depose(&self, old: usize, new: usize, cluster: &Cluster) -> Result<()>;

    /// With every member shut down: leaves a torn, never-acknowledged record
    /// at the end of `member`'s durable log, as a crash in mid-write would on
    /// storage without atomic publication. Returns what the backend must do
    /// with it.
    async fn tear_tail(&self, member: usize) -> Result<TornTail>;

    /// With every member shut down: flips one byte inside an acknowledged
    /// record of `member`'s durable log. Returns a string the `Corrupt`
    /// error's location must contain (the object or file name).
    async fn corrupt_record(&self, member: usize) -> Result<String>;
}

/// What a backend must do with a torn record at the end of its log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TornTail {
    /// The log is a local append-only file: a record torn by a crash was
    /// never acknowledged, so recovery truncates it (and logs that).
    Dropped,
    /// The log's objects are published atomically (staged, then
    /// create-if-absent), so a torn object is damage, never an unfinished
    /// write: opening must fail with `Corrupt` whose location contains this
    /// string, and must not delete or overwrite the object.
    Corrupt(String),
}

/// The open members of one deployment and their state machines.
pub struct Cluster {
    /// Journal of each member (`None` when closed).
    pub journals: Vec<Option<Arc<dyn JournalSystem>>>,
    /// State machine of each member (the last one opened).
    pub machines: Vec<Arc<RwLock<TestMachine>>>,
}

impl Cluster {
    /// Journal of `member`; panics in tests when it is closed.
    pub fn journal(&self, member: usize) -> Arc<dyn JournalSystem> {
        match &self.journals[member] {
            Some(j) => j.clone(),
            None => panic!("member {member} is not open"),
        }
    }

    /// A copy of `member`'s applied entries.
    pub fn entries(&self, member: usize) -> Vec<(u64, Bytes)> {
        self.machines[member].read().entries.clone()
    }

    async fn open(factory: &dyn BackendFactory, members: usize) -> Result<Cluster> {
        let mut cluster = Cluster {
            journals: Vec::new(),
            machines: Vec::new(),
        };
        for m in 0..members {
            let machine = Arc::new(RwLock::new(TestMachine::new()));
            let journal = factory.open(m, machine.clone()).await?;
            cluster.journals.push(Some(journal));
            cluster.machines.push(machine);
        }
        Ok(cluster)
    }

    async fn shutdown(&mut self) {
        for j in self.journals.iter_mut() {
            if let Some(j) = j.take() {
                j.shutdown().await;
            }
        }
    }
}

/// Polls `cond` every 10 ms until it holds; panics with `what` after `timeout`.
pub async fn wait_until<F: FnMut() -> bool>(what: &str, timeout: Duration, mut cond: F) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !cond() {
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn entry(tag: &str, i: usize) -> Bytes {
    // Sizes vary from a few bytes to a few KiB so batches mix small and large records.
    let pad = (i * 7919) % 3000;
    let mut e = format!("{tag}-{i}-").into_bytes();
    e.extend(std::iter::repeat_n(b'a' + (i % 26) as u8, pad));
    e.into()
}

/// Proposes `count` entries concurrently; returns `(entry, output)` of the acknowledged ones.
async fn propose_all(
    journal: &Arc<dyn JournalSystem>,
    tag: &str,
    count: usize,
) -> Vec<(Bytes, Result<Bytes>)> {
    let futures = (0..count).map(|i| {
        let journal = journal.clone();
        let e = entry(tag, i);
        async move {
            let r = journal.propose(e.clone()).await;
            (e, r)
        }
    });
    futures::future::join_all(futures).await
}

fn acknowledged(results: Vec<(Bytes, Result<Bytes>)>, ctx: &str) -> Vec<(Bytes, Bytes)> {
    results
        .into_iter()
        .map(|(e, r)| match r {
            Ok(out) => (e, out),
            Err(err) => panic!("{ctx}: proposal failed on a healthy primary: {err}"),
        })
        .collect()
}

fn assert_ordered(entries: &[(u64, Bytes)], ctx: &str) {
    for w in entries.windows(2) {
        assert!(
            w[0].0 < w[1].0,
            "{ctx}: apply order broken: seq {} then {}",
            w[0].0,
            w[1].0
        );
    }
}

/// Every acknowledged entry appears exactly once, at the position its output names.
fn assert_contains_acked(entries: &[(u64, Bytes)], acked: &[(Bytes, Bytes)], ctx: &str) {
    assert_ordered(entries, ctx);
    for (e, out) in acked {
        let seq = TestMachine::output_seq(out).unwrap_or_else(|| panic!("{ctx}: malformed output"));
        assert_eq!(
            *out,
            TestMachine::expected_output(seq, e),
            "{ctx}: output does not belong to its entry"
        );
        let found: Vec<_> = entries.iter().filter(|(_, x)| x == e).collect();
        assert_eq!(
            found.len(),
            1,
            "{ctx}: acknowledged entry at seq {seq} appears {} times",
            found.len()
        );
        assert_eq!(
            found[0].0, seq,
            "{ctx}: entry applied at another position than acknowledged"
        );
    }
}

async fn elected(factory: &dyn BackendFactory, members: usize, primary: usize) -> Cluster {
    let cluster = match Cluster::open(factory, members).await {
        Ok(c) => c,
        Err(e) => panic!("{}: open failed: {e}", factory.name()),
    };
    if let Err(e) = factory.elect(primary, &cluster).await {
        panic!("{}: electing member {primary} failed: {e}", factory.name());
    }
    cluster
}

async fn reset(factory: &dyn BackendFactory) {
    if let Err(e) = factory.reset().await {
        panic!("{}: reset failed: {e}", factory.name());
    }
}

/// Concurrent and sequential proposals are applied in log order; each
/// output belongs to its entry; nothing is applied twice.
pub async fn check_ordering(factory: &dyn BackendFactory) {
    let ctx = format!("{}/ordering", factory.name());
    reset(factory).await;
    let mut cluster = elected(factory, factory.members(), 0).await;
    let primary = cluster.journal(0);
    let mut acked = acknowledged(propose_all(&primary, "concurrent", 300).await, &ctx);
    for i in 0..30 {
        let e = entry("sequential", i);
        match primary.propose(e.clone()).await {
            Ok(out) => {
                let prev = acked
                    .last()
                    .and_then(|(_, o)| TestMachine::output_seq(o))
                    .unwrap_or(0);
                let seq = TestMachine::output_seq(&out).unwrap_or(0);
                assert!(
                    seq > prev || i == 0,
                    "{ctx}: sequential proposal got seq {seq} after {prev}"
                );
                acked.push((e, out));
            }
            Err(err) => panic!("{ctx}: sequential proposal failed: {err}"),
        }
    }
    let entries = cluster.entries(0);
    assert_contains_acked(&entries, &acked, &ctx);
    assert_eq!(
        entries.len(),
        acked.len(),
        "{ctx}: entries applied that nobody proposed"
    );
    cluster.shutdown().await;
}

/// Everything acknowledged survives dropping every member and reopening
/// them from storage with fresh state machines.
pub async fn check_durability_across_restart(factory: &dyn BackendFactory) {
    let ctx = format!("{}/durability", factory.name());
    reset(factory).await;
    let mut cluster = elected(factory, factory.members(), 0).await;
    let acked = acknowledged(propose_all(&cluster.journal(0), "durable", 200).await, &ctx);
    cluster.shutdown().await;
    drop(cluster);
    let mut cluster = elected(factory, factory.members(), 0).await;
    let entries = cluster.entries(0);
    assert_contains_acked(&entries, &acked, &ctx);
    assert_eq!(
        entries.len(),
        acked.len(),
        "{ctx}: replay produced extra entries"
    );
    // The reopened journal keeps appending after what it replayed.
    let more = acknowledged(
        propose_all(&cluster.journal(0), "after-restart", 20).await,
        &ctx,
    );
    let entries = cluster.entries(0);
    assert_contains_acked(&entries, &acked, &ctx);
    assert_contains_acked(&entries, &more, &ctx);
    cluster.shutdown().await;
}

/// A snapshot restores to an equal state, directly and through the
/// backend's checkpoint + restart path.
pub async fn check_snapshot_restore(factory: &dyn BackendFactory) {
    let ctx = format!("{}/snapshot", factory.name());
    reset(factory).await;
    let mut cluster = elected(factory, factory.members(), 0).await;
    let primary = cluster.journal(0);
    let mut acked = acknowledged(propose_all(&primary, "before-checkpoint", 150).await, &ctx);
    let covered = match primary.checkpoint().await {
        Ok(seq) => seq,
        Err(e) => panic!("{ctx}: checkpoint failed: {e}"),
    };
    let applied = primary.status().last_applied;
    assert!(
        covered > 0 && covered <= applied + 1,
        "{ctx}: checkpoint covers {covered}, applied {applied}"
    );

    // Direct equivalence through the snapshot stream format, with tiny frames.
    let original = cluster.machines[0].read().clone();
    let mut stream = Vec::new();
    let meta = SnapshotMeta {
        cluster_id: "c".into(),
        next_seq: covered,
        epoch: 1,
    };
    if let Err(e) = write_snapshot(&original, &meta, &mut stream, 333) {
        panic!("{ctx}: write_snapshot: {e}");
    }
    let mut restored = TestMachine::new();
    match restore_snapshot(&mut restored, &mut stream.as_slice(), "test") {
        Ok(m) => assert_eq!(m, meta),
        Err(e) => panic!("{ctx}: restore_snapshot: {e}"),
    }
    assert_eq!(restored, original, "{ctx}: restored state differs");

    acked.extend(acknowledged(
        propose_all(&primary, "after-checkpoint", 50).await,
        &ctx,
    ));
    let before = cluster.entries(0);
    cluster.shutdown().await;
    let mut cluster = elected(factory, factory.members(), 0).await;
    let after = cluster.entries(0);
    assert_eq!(
        after, before,
        "{ctx}: state after checkpoint + restart differs"
    );
    assert_contains_acked(&after, &acked, &ctx);
    cluster.shutdown().await;
}

/// A standby applies the same entries in the same order as the primary.
pub async fn check_standby_equals_primary(factory: &dyn BackendFactory) {
    let ctx = format!("{}/standby", factory.name());
    if factory.members() < 2 {
        tracing::info!("{ctx}: skipped, the deployment has a single member");
        return;
    }
    reset(factory).await;
    let mut cluster = elected(factory, factory.members(), 0).await;
    let acked = acknowledged(
        propose_all(&cluster.journal(0), "replicated", 250).await,
        &ctx,
    );
    let target = cluster.journal(0).status().last_applied;
    for m in 1..factory.members() {
        let standby = cluster.journal(m);
        assert_eq!(
            *standby.role().borrow(),
            Role::Standby,
            "{ctx}: member {m} should be a standby"
        );
        wait_until(
            &format!("{ctx}: member {m} to catch up"),
            CONFORMANCE_TIMEOUT,
            || standby.status().last_applied >= target,
        )
        .await;
        assert_eq!(
            cluster.entries(m),
            cluster.entries(0),
            "{ctx}: member {m} differs from the primary"
        );
        match standby.propose(Bytes::from_static(b"on a standby")).await {
            Err(JournalError::NotPrimary { .. }) => {}
            other => panic!("{ctx}: a standby accepted or mis-rejected a proposal: {other:?}"),
        }
    }
    assert_contains_acked(&cluster.entries(0), &acked, &ctx);
    cluster.shutdown().await;
}

/// A deposed primary cannot get anything acknowledged or into the log, and
/// steps down; the new primary holds everything acknowledged before.
pub async fn check_fencing(factory: &dyn BackendFactory) {
    let ctx = format!("{}/fencing", factory.name());
    if factory.members() < 2 {
        tracing::info!("{ctx}: skipped, the deployment has a single member");
        return;
    }
    reset(factory).await;
    let mut cluster = elected(factory, factory.members(), 0).await;
    let old = cluster.journal(0);
    let before = acknowledged(propose_all(&old, "before-depose", 100).await, &ctx);
    if let Err(e) = factory.depose(0, 1, &cluster).await {
        panic!("{ctx}: depose failed: {e}");
    }
    let new = cluster.journal(1);
    let stale = propose_all(&old, "stale-primary", 40).await;
    for (_, r) in &stale {
        match r {
            Err(JournalError::Fenced { .. }) | Err(JournalError::NotPrimary { .. }) => {}
            other => panic!("{ctx}: the deposed primary's proposal was not refused: {other:?}"),
        }
    }
    let mut role = old.role();
    wait_until(
        &format!("{ctx}: deposed primary to step down"),
        CONFORMANCE_TIMEOUT,
        || !role.borrow_and_update().is_primary(),
    )
    .await;
    let after = acknowledged(propose_all(&new, "after-depose", 60).await, &ctx);
    let entries = cluster.entries(1);
    assert_contains_acked(&entries, &before, &ctx);
    assert_contains_acked(&entries, &after, &ctx);
    for (e, _) in &stale {
        assert_eq!(
            cluster.machines[1].read().occurrences(e),
            0,
            "{ctx}: a refused entry reached the log"
        );
    }
    // The deposed master keeps following the new primary.
    let target = new.status().last_applied;
    wait_until(
        &format!("{ctx}: deposed master to follow"),
        CONFORMANCE_TIMEOUT,
        || old.status().last_applied >= target,
    )
    .await;
    assert_eq!(
        cluster.entries(0),
        cluster.entries(1),
        "{ctx}: deposed master diverged"
    );
    cluster.shutdown().await;
}

/// A torn tail: on a local append-only log, an unacknowledged record torn by
/// a crash is dropped on recovery, everything acknowledged is kept and the
/// journal keeps working. On atomically published objects it is damage:
/// `Corrupt` naming the object, at every open, and nothing acknowledged lost.
pub async fn check_torn_tail(factory: &dyn BackendFactory) {
    let ctx = format!("{}/torn-tail", factory.name());
    reset(factory).await;
    let mut cluster = elected(factory, factory.members(), 0).await;
    let acked = acknowledged(
        propose_all(&cluster.journal(0), "before-crash", 120).await,
        &ctx,
    );
    cluster.shutdown().await;
    let expected = match factory.tear_tail(0).await {
        Ok(t) => t,
        Err(e) => panic!("{ctx}: tear_tail failed: {e}"),
    };
    if let TornTail::Corrupt(where_) = expected {
        // Twice: the first refusal must not have "repaired" the evidence away.
        for attempt in 1..=2 {
            match open_and_elect_alone(factory).await {
                Err(JournalError::Corrupt { location, .. }) if location.contains(&where_) => {}
                other => panic!(
                    "{ctx}: open #{attempt} after a torn object: expected Corrupt naming {where_:?}, got {other:?}"
                ),
            }
        }
        return;
    }
    let mut cluster = elected(factory, factory.members(), 0).await;
    assert_contains_acked(&cluster.entries(0), &acked, &ctx);
    assert_eq!(
        cluster.entries(0).len(),
        acked.len(),
        "{ctx}: the torn record was applied"
    );
    let more = acknowledged(
        propose_all(&cluster.journal(0), "after-crash", 30).await,
        &ctx,
    );
    cluster.shutdown().await;
    let mut cluster = elected(factory, factory.members(), 0).await;
    assert_contains_acked(&cluster.entries(0), &acked, &ctx);
    assert_contains_acked(&cluster.entries(0), &more, &ctx);
    cluster.shutdown().await;
}

/// A flipped byte in an acknowledged record is reported as `Corrupt`
/// naming the object; the master does not come up past it.
pub async fn check_corruption_detected(factory: &dyn BackendFactory) {
    let ctx = format!("{}/corruption", factory.name());
    reset(factory).await;
    let mut cluster = elected(factory, factory.members(), 0).await;
    acknowledged(
        propose_all(&cluster.journal(0), "to-corrupt", 80).await,
        &ctx,
    );
    cluster.shutdown().await;
    let where_ = match factory.corrupt_record(0).await {
        Ok(w) => w,
        Err(e) => panic!("{ctx}: corrupt_record failed: {e}"),
    };
    match open_and_elect_alone(factory).await {
        Err(JournalError::Corrupt { location, detail }) => {
            assert!(
                location.contains(&where_),
                "{ctx}: Corrupt names {location:?} ({detail}), expected {where_:?}"
            );
        }
        other => panic!("{ctx}: a corrupt record was not reported as Corrupt: {other:?}"),
    }
}

/// Opens member 0 alone on its durable storage and tries to make it primary;
/// the journal is shut down again either way. What damage checks inspect.
async fn open_and_elect_alone(factory: &dyn BackendFactory) -> Result<()> {
    let machine = Arc::new(RwLock::new(TestMachine::new()));
    let journal = factory.open(0, machine.clone()).await?;
    let cluster = Cluster {
        journals: vec![Some(journal.clone())],
        machines: vec![machine],
    };
    let r = factory.elect(0, &cluster).await;
    journal.shutdown().await;
    r
}

/// Runs every check of the suite against `factory`, in order.
pub async fn run_conformance(factory: &dyn BackendFactory) {
    check_ordering(factory).await;
    check_durability_across_restart(factory).await;
    check_snapshot_restore(factory).await;
    check_standby_equals_primary(factory).await;
    check_fencing(factory).await;
    check_torn_tail(factory).await;
    check_corruption_detected(factory).await;
}

/// Waits until `journal` is primary.
pub async fn wait_primary(journal: &Arc<dyn JournalSystem>) -> Result<u64> {
    wait_for_primary(&mut journal.role(), CONFORMANCE_TIMEOUT).await
}
