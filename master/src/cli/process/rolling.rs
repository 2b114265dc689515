//! `primacy process restart masters --rolling`: every master restarted
//! while the cluster keeps serving. Each standby in turn (restart, then
//! wait until it has applied what the primary had applied), primacy moved
//! to a caught-up standby (`quorum elect`; on UFS + ZooKeeper, when the
//! election cannot be steered there, the old primary's SIGTERM resigns
//! and hands over), then the old primary. Before each restart the others
//! are asked: never more than floor(n/2) masters are down at once. A
//! failed step stops the roll with every other master still running. A
//! probe client reads throughout and its largest latency and errors are
//! printed.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::cli::local_cluster::ui::table;
use crate::client::MasterClient;
use crate::proto::rpc::MasterInfo;

use super::hosts::HostEntry;
use super::remote::Runner;
use super::report::{NodeKind, NodeReport};

/// How often the waits poll.
const POLL: Duration = Duration::from_millis(200);
/// Pause between two probe reads.
const PROBE_PACE: Duration = Duration::from_millis(20);

/// A master of the roll: its entry, its label in messages (the host, with
/// its conf dir when several share a host) and the RPC address it
/// reported.
struct Member {
    entry: HostEntry,
    name: String,
    address: String,
}

/// What the probe client saw.
#[derive(Debug, Default, Clone)]
struct ProbeStats {
    calls: u64,
    errors: Vec<String>,
    largest: Duration,
}

/// Reads `/` through `client` until stopped; every call is timed.
struct Probe {
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<ProbeStats>>,
    task: tokio::task::JoinHandle<()>,
}

impl Probe {
    fn start(client: MasterClient) -> Probe {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Mutex::new(ProbeStats::default()));
        let (s, st) = (stop.clone(), stats.clone());
        let task = tokio::spawn(async move {
            while !s.load(Ordering::SeqCst) {
                let sent = Instant::now();
                let r = client.get_status("/").await;
                let took = sent.elapsed();
                if let Ok(mut g) = st.lock() {
                    g.calls += 1;
                    g.largest = g.largest.max(took);
                    if let Err(e) = r {
                        g.errors.push(e.to_string());
                    }
                }
                tokio::time::sleep(PROBE_PACE).await;
            }
        });
        Probe { stop, stats, task }
    }

    async fn finish(self) -> ProbeStats {
        self.stop.store(true, Ordering::SeqCst);
        let Probe { stats, task, .. } = self;
        let _ = task.await;
        stats.lock().map(|g| g.clone()).unwrap_or_default()
    }
}

/// A step that failed; the message says what to do.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RollError(String);

/// Runs the rolling restart of `entries`; prints each step and returns
/// whether every step succeeded with no probe error.
pub async fn roll(
    entries: &[HostEntry],
    default_conf: &Path,
    runner: &Runner,
    client: &MasterClient,
    wait: Duration,
    out: &mut dyn FnMut(&str),
) -> Result<(), RollError> {
    let n = entries.len();
    if n < 2 {
        return Err(RollError(format!(
            "a rolling restart needs at least 2 masters (the masters file lists {n}); \
             restarting the only master takes the cluster down: use `primacy process restart masters`"
        )));
    }
    // 1. Every master must run and report a role before anything stops.
    let reports = futures::future::join_all(
        entries
            .iter()
            .map(|e| runner.run(e, "status", NodeKind::Master)),
    )
    .await;
    let mut members = Vec::new();
    let mut primary = None;
    for (entry, r) in entries.iter().zip(reports) {
        let r = r.map_err(|e| RollError(format!("nothing was restarted: {e}")))?;
        if r.pid.is_none() || r.role.is_none() {
            let why = if r.detail.is_empty() {
                String::new()
            } else {
                format!(" ({})", r.detail)
            };
            return Err(RollError(format!(
                "nothing was restarted: the master {} (listed at {}) is {}{why}; start it \
                 first (`primacy process start masters`)",
                entry.label(default_conf),
                entry.origin,
                r.state
            )));
        }
        if r.role.as_deref() == Some("PRIMARY") {
            primary = Some(members.len());
        }
        members.push(Member {
            entry: entry.clone(),
            name: entry.label(default_conf),
            address: r.address,
        });
    }
    let p = primary.ok_or_else(|| {
        RollError(
            "nothing was restarted: no master reports PRIMARY; the cluster is not serving".into(),
        )
    })?;
    let backend = client
        .master_info(&members[p].address)
        .await
        .ok()
        .and_then(|i| i.journal.map(|j| j.backend))
        .unwrap_or_default();
    let max_down = max_down(&backend, n);
    if max_down == 0 {
        return Err(RollError(format!(
            "nothing was restarted: {n} masters on the {backend} journal cannot lose one and \
             keep a majority (restarting any one stops the cluster); add a master, or restart \
             them all with `primacy process restart masters` (an outage)"
        )));
    }
    out(&format!(
        "rolling restart of {n} masters, at most {max_down} down at once; primary {} ({})",
        members[p].name, members[p].address
    ));
    let probe = Probe::start(client.clone());
    let started = Instant::now();
    let result = steps(&members, p, &backend, max_down, runner, client, wait, out).await;
    let stats = probe.finish().await;
    out(&format!(
        "clients: {} probe reads during the roll, {} errors, largest latency {} ms",
        stats.calls,
        stats.errors.len(),
        stats.largest.as_millis()
    ));
    for e in stats.errors.iter().take(3) {
        out(&format!("  probe error: {e}"));
    }
    result?;
    if !stats.errors.is_empty() {
        return Err(RollError(format!(
            "every master was restarted, but the probe client saw {} errors",
            stats.errors.len()
        )));
    }
    out(&format!(
        "rolling restart done in {} ms",
        started.elapsed().as_millis()
    ));
    Ok(())
}

/// How many of `n` masters may be down at once and the cluster still
/// serve: floor(n/2) with a shared journal (one master of any number
/// serves), but an embedded (Raft) journal needs a majority up, so
/// floor((n-1)/2): 0 of 2, 1 of 4.
fn max_down(backend: &str, n: usize) -> usize {
    if backend == "UFS" {
        n / 2
    } else {
        n.saturating_sub(1) / 2
    }
}

/// The roll proper, once every master is known to run.
#[allow(clippy::too_many_arguments)]
async fn steps(
    members: &[Member],
    p: usize,
    backend: &str,
    max_down: usize,
    runner: &Runner,
    client: &MasterClient,
    wait: Duration,
    out: &mut dyn FnMut(&str),
) -> Result<(), RollError> {
    let standbys: Vec<usize> = (0..members.len()).filter(|&i| i != p).collect();
    let total = standbys.len() + 2;
    let mut step = 0;
    for &i in &standbys {
        step += 1;
        restart_one(
            members, i, max_down, runner, client, wait, out, step, total, "standby",
        )
        .await?;
    }
    // Primacy to the first standby (each is caught up by now).
    step += 1;
    let target = &members[standbys[0]];
    let from = Instant::now();
    out(&format!(
        "[{step}/{total}] quorum elect {} ({})",
        target.name, target.address
    ));
    match client.transfer_leadership(&target.address).await {
        Ok(_) => out(&format!(
            "  {} is PRIMARY after {} ms",
            target.name,
            from.elapsed().as_millis()
        )),
        Err(e) if backend == "UFS" => out(&format!(
            "  the election cannot be steered there ({e}); the old primary's SIGTERM resigns \
             and hands primacy over instead"
        )),
        Err(e) => {
            return Err(RollError(format!(
                "quorum elect {} failed: {e}; every master is running and {} is still the \
                 primary; rerun, or finish with `primacy journal quorum elect --address {}` and \
                 `primacy process restart master` on {}",
                target.address, members[p].name, target.address, members[p].name
            )))
        }
    }
    step += 1;
    restart_one(
        members,
        p,
        max_down,
        runner,
        client,
        wait,
        out,
        step,
        total,
        "old primary",
    )
    .await?;
    let view = futures::future::join_all(members.iter().map(|m| client.probe(&m.address))).await;
    let mut rows = vec![vec![
        "host".to_string(),
        "address".into(),
        "role".into(),
        "applied".into(),
    ]];
    for (m, v) in members.iter().zip(view) {
        let (role, applied) = match v {
            Ok(i) => (i.role.clone(), applied(&i).to_string()),
            Err(e) => (format!("no answer ({e})"), "-".into()),
        };
        rows.push(vec![m.name.clone(), m.address.clone(), role, applied]);
    }
    for line in table(&rows) {
        out(&format!("  {line}"));
    }
    Ok(())
}

/// The last sequence a master applied.
fn applied(info: &MasterInfo) -> u64 {
    info.journal.as_ref().map_or(0, |j| j.last_applied)
}

/// Restarts member `i` after checking that the others are up, then waits
/// until it has applied what the primary had applied when it came back.
#[allow(clippy::too_many_arguments)]
async fn restart_one(
    members: &[Member],
    i: usize,
    max_down: usize,
    runner: &Runner,
    client: &MasterClient,
    wait: Duration,
    out: &mut dyn FnMut(&str),
    step: usize,
    total: usize,
    what: &str,
) -> Result<(), RollError> {
    let m = &members[i];
    let others = futures::future::join_all(
        members
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, o)| async move { (o, client.probe(&o.address).await) }),
    )
    .await;
    let down: Vec<String> = others
        .iter()
        .filter(|(_, r)| r.is_err())
        .map(|(o, _)| format!("{} ({})", o.name, o.address))
        .collect();
    if down.len() + 1 > max_down {
        return Err(RollError(format!(
            "stopped before restarting {}: {} of {} masters do not answer ({}), and restarting \
             another would leave more than {max_down} down; the cluster keeps serving; bring \
             them back and rerun",
            m.name,
            down.len(),
            members.len(),
            down.join(", ")
        )));
    }
    // Primacy may have moved by itself (the primary died or lost its
    // session): restarting the new primary as if it were a standby would
    // skip moving primacy to a caught-up master first.
    if what == "standby" {
        if let Ok(info) = client.probe(&m.address).await {
            if info.role == "PRIMARY" {
                return Err(RollError(format!(
                    "stopped before restarting {}: it is now the PRIMARY (primacy moved by \
                     itself during the roll); every master restarted so far is back and \
                     caught up, the cluster keeps serving; check why primacy moved, then rerun",
                    m.name
                )));
            }
        }
    }
    let from = Instant::now();
    out(&format!(
        "[{step}/{total}] restart {what} {} ({})",
        m.name, m.address
    ));
    let report: NodeReport = runner
        .run(&m.entry, "restart", NodeKind::Master)
        .await
        .map_err(|e| {
            RollError(format!(
                "restarting {} failed: {e}; the other masters keep serving; fix it and rerun",
                m.name
            ))
        })?;
    out(&format!(
        "  back as {} (pid {}) after {} ms",
        report.role.as_deref().unwrap_or("?"),
        report.pid.map_or("?".into(), |p| p.to_string()),
        from.elapsed().as_millis()
    ));
    let caught = Instant::now();
    let deadline = caught + wait;
    let mut target: Option<u64> = None;
    let mut last;
    loop {
        let own = client.probe(&m.address).await;
        if target.is_none() {
            if let Ok((_, primary)) = client.leader_info().await {
                target = Some(applied(&primary));
            }
        }
        match (&own, target) {
            (Ok(info), Some(t)) if applied(info) >= t => {
                out(&format!(
                    "  caught up: applied {} (the primary had {t}) {} ms later; step took {} ms",
                    applied(info),
                    caught.elapsed().as_millis(),
                    from.elapsed().as_millis()
                ));
                return Ok(());
            }
            (Ok(info), t) => {
                last = format!(
                    "{} applied {}, target {}",
                    info.role,
                    applied(info),
                    t.map_or("unknown".into(), |t| t.to_string())
                )
            }
            (Err(e), _) => last = e.clone(),
        }
        if Instant::now() >= deadline {
            return Err(RollError(format!(
                "{} did not catch up within {wait:?} (last: {last}); stopped the roll with \
                 every master running; see its log",
                m.name
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::max_down;

    #[test]
    fn an_embedded_journal_keeps_a_majority_up() {
        assert_eq!(max_down("EMBEDDED", 2), 0);
        assert_eq!(max_down("EMBEDDED", 3), 1);
        assert_eq!(max_down("EMBEDDED", 4), 1);
        assert_eq!(max_down("EMBEDDED", 5), 2);
        // Unknown backend: the stricter rule.
        assert_eq!(max_down("", 4), 1);
        assert_eq!(max_down("UFS", 2), 1);
        assert_eq!(max_down("UFS", 4), 2);
    }
}
