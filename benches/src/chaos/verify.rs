//! The checks after a run, with faults healed: linearizability of the
//! history, acknowledged writes present, identical state on every master,
//! no corruption reported.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::cluster::Cluster;
use super::workload::{path, Op};
use crate::linearizability::namespace::{NsInput, NsOutput};

/// The acknowledged mutations no later or concurrent mutation of the same
/// path could have overwritten, whose effect the final stat (last ops of
/// `history`, by client `final_client`) does not show: lost writes.
pub fn lost_writes(history: &[Op], final_client: usize) -> Vec<String> {
    let finals: Vec<&Op> = history
        .iter()
        .filter(|o| o.client == final_client)
        .collect();
    let load: Vec<&Op> = history
        .iter()
        .filter(|o| o.client != final_client)
        .collect();
    let touches = |o: &Op| -> Vec<u8> {
        match o.input {
            NsInput::Create(p) | NsInput::Delete(p) => vec![p],
            NsInput::Rename(a, b) => vec![a, b],
            NsInput::Stat(_) => vec![],
        }
    };
    let mut lost = Vec::new();
    for (i, w) in load.iter().enumerate() {
        let (Some(ret), Some(out)) = (w.ret, w.output.as_ref()) else {
            continue;
        };
        // What the write promises about each path it changed.
        let promises: Vec<(u8, Option<u64>)> = match (&w.input, out) {
            (NsInput::Create(p), NsOutput::Ok(id)) => vec![(*p, Some(*id))],
            (NsInput::Delete(p), NsOutput::Deleted) => vec![(*p, None)],
            (NsInput::Rename(a, b), NsOutput::Ok(id)) => vec![(*a, None), (*b, Some(*id))],
            _ => continue,
        };
        for (p, want) in promises {
            // Any other mutation of p that did not surely end before w.
            let overwritten = load.iter().enumerate().any(|(j, o)| {
                j != i && touches(o).contains(&p) && o.ret.is_none_or(|r| r > w.call)
            });
            if overwritten {
                continue;
            }
            let seen = finals
                .iter()
                .find(|f| f.input == NsInput::Stat(p) && f.call > ret);
            let Some(Op {
                output: Some(seen), ..
            }) = seen.copied()
            else {
                continue;
            };
            let ok = match (want, seen) {
                (Some(id), NsOutput::Ok(s)) => id == *s,
                (None, NsOutput::NotFound) => true,
                _ => false,
            };
            if !ok {
                lost.push(format!(
                    "{:?} answered {:?} at {} ns, and nothing later touched {}, but the final stat saw {:?}",
                    w.input,
                    out,
                    ret,
                    path(p),
                    seen
                ));
            }
        }
    }
    lost
}

/// GET `path` from `127.0.0.1:port` (HTTP/1.1, connection closed) and
/// parse the body as JSON.
pub async fn get_json(port: u16, path: &str) -> Option<Value> {
    let fetch = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.ok()?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.ok()?;
        let text = String::from_utf8_lossy(&buf);
        let (head, body) = text.split_once("\r\n\r\n")?;
        if !head.starts_with("HTTP/1.1 200") {
            return None;
        }
        serde_json::from_str(body.trim()).ok()
    };
    tokio::time::timeout(Duration::from_secs(5), fetch)
        .await
        .ok()
        .flatten()
}

/// Waits (bounded) until every master reports the same applied sequence
/// and state digest. `Ok(digest)` when they converge; else the last
/// reports, one line per master.
pub async fn converged_digest(cluster: &Cluster, bound: Duration) -> Result<String, String> {
    let deadline = Instant::now() + bound;
    loop {
        let mut reports = Vec::new();
        for m in &cluster.masters {
            reports.push((
                m.name.clone(),
                get_json(m.web_port, "/api/v1/master/state-digest").await,
            ));
        }
        let keys: BTreeSet<Option<(u64, String)>> = reports
            .iter()
            .map(|(_, r)| {
                let r = r.as_ref()?;
                Some((
                    r["last_applied"].as_u64()?,
                    r["digest"].as_str()?.to_string(),
                ))
            })
            .collect();
        if keys.len() == 1 {
            if let Some(Some((_, digest))) = keys.into_iter().next() {
                return Ok(digest);
            }
        }
        let last: Vec<String> = reports
            .iter()
            .map(|(n, r)| {
                format!(
                    "{n}: {}",
                    r.as_ref().map_or("no answer".to_string(), Value::to_string)
                )
            })
            .collect();
        if Instant::now() > deadline {
            return Err(last.join("\n"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Lines of the masters' logs that report corruption: journal-core's
/// `Corrupt` error ("corrupt journal data at ..."). A torn tail that
/// raft-engine's recovery drops after a kill -9 is not corruption (the
/// bytes were never acknowledged) and is not matched.
pub fn corruption_reports(cluster: &Cluster) -> Vec<String> {
    log_lines_containing(cluster, "corrupt journal data")
}

/// Lines of the masters' logs that say a peer stream stalled: the sender
/// gave up a stream on which a batch waited out journal-raft's stall bound
/// ([`journal_raft::STALLED_STREAM_LOG`]), or a leader gave up the stream
/// to a member that answered none of its heartbeats for the silence bound
/// ([`journal_raft::SILENT_PEER_LOG`]). Raft recovers on the new
/// stream, so no check above fails, but on loopback a link that carries
/// nothing that long while both ends are up is a liveness fault the
/// campaign must surface rather than let the reset hide.
pub fn stalled_links(cluster: &Cluster) -> Vec<String> {
    let mut lines = log_lines_containing(cluster, journal_raft::STALLED_STREAM_LOG);
    lines.extend(log_lines_containing(cluster, journal_raft::SILENT_PEER_LOG));
    lines
}

/// The harness's own proxies that failed to accept a connection or
/// stopped listening. A proxy that died would cut a link for the rest of
/// the run and look like a peer that never answers, so a run where one
/// did is kept and reported rather than blamed on primacy.
pub fn proxy_faults(cluster: &Cluster) -> Vec<String> {
    let mut found = Vec::new();
    for ((a, b), p) in &cluster.peer_proxies {
        let name = format!("peer proxy m{}->m{}", a + 1, b + 1);
        found.extend(proxy_fault(&name, p));
    }
    for (i, p) in cluster.zk_proxies.iter().enumerate() {
        found.extend(proxy_fault(&format!("ZooKeeper proxy of m{}", i + 1), p));
    }
    found
}

fn proxy_fault(name: &str, p: &journal_core::testkit::TcpProxy) -> Option<String> {
    match (p.is_listening(), p.accept_errors()) {
        (true, 0) => None,
        (listening, errors) => Some(format!(
            "{name}: {errors} accept error(s){}",
            if listening {
                ""
            } else {
                ", no longer listening"
            }
        )),
    }
}

/// Every line of every master's log that contains `needle`, prefixed by
/// the master's name.
fn log_lines_containing(cluster: &Cluster, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for m in &cluster.masters {
        let text = std::fs::read_to_string(&m.log).unwrap_or_default();
        for line in text.lines() {
            if line.contains(needle) {
                found.push(format!("{}: {line}", m.name));
            }
        }
    }
    found
}
