//! Injecting a schedule: each fault at its offset, held, then healed.
//! Masters that exited by themselves meanwhile are noted and restarted.

use std::time::{Duration, Instant};

use super::cluster::Cluster;
use super::schedule::{Fault, Step, Target};
use super::{ChaosError, RunResult};

async fn resolve(cluster: &Cluster, t: Target) -> Option<usize> {
    match t {
        Target::Member(i) => Some(i),
        Target::Primary => cluster.wait_primary(Duration::from_secs(10)).await,
    }
}

/// Runs `schedule` from `started`; counts injected faults in `result` and
/// describes each in `events`.
pub async fn inject(
    cluster: &mut Cluster,
    schedule: &[Step],
    started: Instant,
    result: &mut RunResult,
    events: &mut Vec<String>,
) -> Result<(), ChaosError> {
    for step in schedule {
        let at = started + Duration::from_millis(step.at_ms);
        tokio::time::sleep_until(at.into()).await;
        let stamp = |what: String| format!("{:>6} ms  {what}", started.elapsed().as_millis());
        let ms = Duration::from_millis;
        let target = match &step.fault {
            Fault::Kill { target, .. }
            | Fault::Pause { target, .. }
            | Fault::Isolate { target, .. }
            | Fault::ZkPartition { target, .. }
            | Fault::Failpoint { target, .. } => resolve(cluster, *target).await,
            Fault::CutLink { .. } | Fault::ZkRestart { .. } => Some(0),
        };
        let Some(i) = target else {
            events.push(stamp(format!(
                "skipped {:?}: no primary to hit",
                step.fault
            )));
            continue;
        };
        let name = cluster.masters[i].name.clone();
        match &step.fault {
            Fault::Kill { down_ms, .. } => {
                cluster.masters[i].kill9();
                events.push(stamp(format!("kill -9 {name}")));
                tokio::time::sleep(ms(*down_ms)).await;
                cluster.start(i)?;
                events.push(stamp(format!("restarted {name}")));
            }
            Fault::Pause { ms: hold, .. } => {
                if !cluster.masters[i].pause() {
                    events.push(stamp(format!("skipped SIGSTOP {name}: not running")));
                    continue;
                }
                events.push(stamp(format!("SIGSTOP {name}")));
                tokio::time::sleep(ms(*hold)).await;
                cluster.masters[i].resume();
                events.push(stamp(format!("SIGCONT {name}")));
            }
            Fault::Isolate { ms: hold, .. } => {
                cluster.isolate(i, true);
                events.push(stamp(format!("isolated {name} from its peers")));
                tokio::time::sleep(ms(*hold)).await;
                cluster.isolate(i, false);
                events.push(stamp(format!("reconnected {name}")));
            }
            Fault::CutLink { a, b, ms: hold } => {
                cluster.cut_link(*a, *b, true);
                events.push(stamp(format!("cut m{}<->m{}", a + 1, b + 1)));
                tokio::time::sleep(ms(*hold)).await;
                cluster.cut_link(*a, *b, false);
                events.push(stamp(format!("restored m{}<->m{}", a + 1, b + 1)));
            }
            Fault::ZkPartition { ms: hold, .. } => {
                cluster.cut_zk(i, true);
                events.push(stamp(format!("cut {name} from ZooKeeper")));
                tokio::time::sleep(ms(*hold)).await;
                cluster.cut_zk(i, false);
                events.push(stamp(format!("reconnected {name} to ZooKeeper")));
            }
            Fault::ZkRestart { down_ms } => {
                if let Some(zk) = cluster.zk.as_mut() {
                    zk.stop();
                    events.push(stamp("killed ZooKeeper".to_string()));
                    tokio::time::sleep(ms(*down_ms)).await;
                    tokio::task::block_in_place(|| zk.start())?;
                    events.push(stamp("restarted ZooKeeper".to_string()));
                }
            }
            Fault::Failpoint {
                name: fp,
                action,
                ms: hold,
                ..
            } => {
                let log_from = std::fs::metadata(&cluster.masters[i].log).map_or(0, |m| m.len());
                // A snapshot is installed while a restarted member catches
                // up, so that failpoint is armed from the start; the others
                // are armed at run time on the running (often primary)
                // master, which a restart would depose.
                let at_start = fp.contains("install");
                if at_start {
                    cluster.masters[i].kill9();
                    cluster.masters[i].failpoints = format!("{fp}={action}");
                    cluster.start(i)?;
                    events.push(stamp(format!(
                        "restarted {name} with FAILPOINTS={fp}={action}"
                    )));
                } else {
                    let port = cluster.masters[i].web_port;
                    let armed = super::verify::get_json(
                        port,
                        &format!("/api/v1/testing/failpoint?name={fp}&action={action}"),
                    )
                    .await;
                    if armed.is_some() {
                        events.push(stamp(format!("armed {fp}={action} on {name}")));
                    } else if fired_since(&cluster.masters[i].log, log_from, fp) {
                        // A crash failpoint can fire on the next write,
                        // before the arming call is answered: it was armed,
                        // and the step goes on (reap, count, clean restart)
                        // instead of leaving the crash to look like a master
                        // exiting by itself.
                        events.push(stamp(format!(
                            "armed {fp}={action} on {name} (it fired before the call was answered)"
                        )));
                    } else {
                        events.push(stamp(format!("skipped failpoint {fp}: {name} did not arm it (not a failpoints build, or not serving)")));
                        continue;
                    }
                }
                tokio::time::sleep(ms(*hold)).await;
                if let Some(status) = cluster.masters[i].reap_exited() {
                    events.push(stamp(format!(
                        "{name} exited ({status}) with the failpoint armed"
                    )));
                }
                if fired_since(&cluster.masters[i].log, log_from, fp) {
                    *result
                        .failpoints_fired
                        .entry(format!("{fp}={action}"))
                        .or_default() += 1;
                    events.push(stamp(format!("failpoint {fp}={action} fired")));
                }
                // A master that saw an injected I/O error may be left in a
                // failed state: restart it clean either way.
                cluster.masters[i].kill9();
                cluster.masters[i].failpoints.clear();
                cluster.start(i)?;
                events.push(stamp(format!("restarted {name} without failpoints")));
            }
        }
        *result.faults.entry(step.fault.kind()).or_default() += 1;
        for m in cluster.masters.iter_mut() {
            if let Some(status) = m.reap_exited() {
                let line = format!(
                    "{} exited by itself ({status}) during {:?}",
                    m.name, step.fault
                );
                events.push(stamp(line.clone()));
                result.self_exits.push(line);
            }
        }
        // Restart whatever exited, so the next fault has a cluster to hit.
        for j in 0..cluster.masters.len() {
            cluster.start(j)?;
        }
    }
    Ok(())
}

/// Whether failpoint `fp` fired since the log was `from` bytes long: it
/// names itself in the log (the I/O error it returned, or the line before
/// the abort).
fn fired_since(log: &std::path::Path, from: u64, fp: &str) -> bool {
    let log = std::fs::read(log).unwrap_or_default();
    let tail = log
        .get(usize::try_from(from).unwrap_or(0)..)
        .unwrap_or_default();
    String::from_utf8_lossy(tail).contains(&format!("failpoint {fp}"))
}

#[cfg(test)]
mod tests {
    use super::fired_since;

    /// The arming line names the failpoint as a field (`failpoint=NAME`),
    /// the failpoint itself as `failpoint NAME`: only the second counts,
    /// and only after the offset the step started at.
    #[test]
    fn a_failpoint_fired_only_when_it_names_itself_after_the_offset() {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("m1.log");
        let fp = "raft-engine-write-before";
        let old = "failpoint raft-engine-write-before: crashing (abort)\n";
        let armed = "WARN master::web::failpoints: failpoint set failpoint=raft-engine-write-before action=return(crash)\n";
        std::fs::write(&log, format!("{old}{armed}")).expect("write log");
        let from = old.len() as u64;
        assert!(
            !fired_since(&log, from, fp),
            "the arming line is not a firing"
        );
        assert!(
            fired_since(&log, 0, fp),
            "a firing before the offset is seen from 0"
        );
        std::fs::write(&log, format!("{old}{armed}{old}")).expect("write log");
        assert!(fired_since(&log, from, fp));
        assert!(!fired_since(&log, from, "raft-engine-write-after"));
        assert!(!fired_since(&dir.path().join("absent.log"), 0, fp));
    }
}
