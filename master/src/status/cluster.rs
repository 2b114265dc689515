//! The cluster as one master sees it: every master it knows of, each asked
//! for its own status, classified, with the primary's workers.

use std::time::Duration;

use journal_core::JournalStatus;

use super::state;
use crate::proto::rpc::{ClusterInfo, ClusterMaster, MasterInfo};
use crate::rpc::{gate, info, wall_clock_ms, MasterState};

/// Bound on listing ZooKeeper's contenders (connect and reads).
pub const ZK_LOOKUP_TIMEOUT: Duration = Duration::from_secs(1);

/// A master to list, before it was asked.
#[derive(Debug, Clone, Default)]
struct Candidate {
    address: String,
    /// Its role in the journal's membership (Raft), "" otherwise.
    journal_role: String,
    /// Its applied sequence as the journal's membership knows it.
    applied: Option<u64>,
}

/// Collects the cluster view of `state`'s master: itself, every master the
/// journal's membership, `alluxio.master.rpc.addresses`, ZooKeeper's
/// contenders and the known primary name, each asked concurrently (at most
/// twice [`super::PEER_TIMEOUT`] each, [`ZK_LOOKUP_TIMEOUT`] for ZooKeeper).
/// Never fails: what could not be learned is UNREACHABLE or a note.
///
/// Requests that overlap share one collection (one ZooKeeper session and
/// one `GetMasterInfo` per master), started no earlier than each of them
/// asked, so a flood of status requests costs the cluster one or two
/// collections at a time, never one each.
pub async fn gather(state: &MasterState) -> ClusterInfo {
    state.status.view.get(|| collect(state)).await
}

async fn collect(state: &MasterState) -> ClusterInfo {
    let status = state.journal.status();
    let settings = &state.status.settings;
    let mut notes = Vec::new();
    let mut candidates = vec![Candidate {
        address: state.address.clone(),
        ..Candidate::default()
    }];
    for c in journal_members(&status, &mut notes) {
        merge(&mut candidates, c);
    }
    for a in &settings.rpc_addresses {
        merge(&mut candidates, plain(a));
    }
    if let Some(zk) = &settings.zookeeper {
        let listed =
            election_zk::list_contenders(&zk.ensemble, &zk.election_path, ZK_LOOKUP_TIMEOUT).await;
        match listed {
            Ok(list) => list.iter().for_each(|a| merge(&mut candidates, plain(a))),
            Err(e) => notes.push(format!(
                "ZooKeeper {} could not list the election's contenders: {e}",
                zk.ensemble
            )),
        }
    }
    if let Some(p) = gate::primary_rpc_address(&status) {
        merge(&mut candidates, plain(&p));
    }
    // Without ZooKeeper's contenders (ZooKeeper down) the published
    // primary is still worth a look; it fails as fast.
    if candidates.len() == 1 {
        if let Some(p) = super::primary_address(state).await {
            merge(&mut candidates, plain(&p));
        }
    }

    let asks = candidates
        .iter()
        .skip(1)
        .map(|c| async move { (c.clone(), state.status.ask(&c.address).await) });
    let mut answers: Vec<(Candidate, Result<MasterInfo, String>)> =
        futures::future::join_all(asks).await;
    // Read after the others answered, so this master's lag behind the
    // primary's answer is never overstated by what it applied meanwhile.
    let me = info::master_info(state);
    // A master listed under another name (a host name and an IP) answers
    // with its own address: it is this master, or one already listed.
    let mut seen = vec![me.address.clone()];
    answers.retain(|(_, a)| match a {
        Ok(info) if seen.contains(&info.address) => false,
        Ok(info) => {
            seen.push(info.address.clone());
            true
        }
        Err(_) => true,
    });
    answers.insert(0, (candidates[0].clone(), Ok(me.clone())));

    let primary = answers
        .iter()
        .filter_map(|(_, a)| a.as_ref().ok())
        .filter(|i| i.role == state::PRIMARY)
        .max_by_key(|i| i.epoch)
        .cloned();
    let primary_applied = primary.as_ref().and_then(applied_of);
    let mut masters: Vec<ClusterMaster> = answers
        .into_iter()
        .map(|(c, a)| classify(c, a, &me.address, primary_applied, settings.standby_max_lag))
        .collect();
    masters.sort_by(|a, b| a.address.cmp(&b.address));

    let (primary_address, epoch, primacy_since_ms, workers) = match &primary {
        Some(p) => (
            p.address.clone(),
            p.epoch,
            p.primacy_since_ms,
            p.workers.clone(),
        ),
        None => (
            gate::primary_rpc_address(&status).unwrap_or_default(),
            0,
            0,
            Vec::new(),
        ),
    };
    if primary.is_none() {
        notes.push(if primary_address.is_empty() {
            "no primary is known right now".to_string()
        } else {
            format!("the primary {primary_address} named by the journal did not answer")
        });
    }
    ClusterInfo {
        answered_by: Some(me),
        primary_address,
        epoch,
        primacy_since_ms,
        journal_type: settings.journal_type.to_string(),
        election: settings.election.to_string(),
        journal_location: status.location.clone(),
        masters,
        workers,
        role_changes: state.status.history.lock().recent(),
        collected_ms: wall_clock_ms(),
        notes,
    }
}

/// The journal's members that can be asked: their RPC address (Raft
/// members advertise one; UFS lists none).
fn journal_members(status: &JournalStatus, notes: &mut Vec<String>) -> Vec<Candidate> {
    status
        .members
        .iter()
        .filter_map(|m| match &m.rpc_address {
            Some(rpc) if !rpc.is_empty() => Some(Candidate {
                address: rpc.clone(),
                journal_role: m.role.clone(),
                // A new Raft leader knows nothing of a follower that has not
                // answered yet (matched 0): that is "unknown", not "0".
                applied: m.applied.filter(|a| *a > 0),
            }),
            _ => {
                notes.push(format!(
                    "journal member {} (peer {}) has not advertised its RPC address yet",
                    m.id, m.address
                ));
                None
            }
        })
        .collect()
}

fn plain(address: &str) -> Candidate {
    Candidate {
        address: address.to_string(),
        ..Candidate::default()
    }
}

/// Adds `c`, or fills in what an entry with the same address lacks.
fn merge(list: &mut Vec<Candidate>, c: Candidate) {
    match list.iter_mut().find(|x| x.address == c.address) {
        Some(x) => {
            if x.journal_role.is_empty() {
                x.journal_role = c.journal_role;
            }
            x.applied = x.applied.or(c.applied);
        }
        None => list.push(c),
    }
}

fn applied_of(info: &MasterInfo) -> Option<u64> {
    info.journal.as_ref().map(|j| j.last_applied)
}

/// One master's line: its answer (or why there was none), its lag behind
/// the primary's applied sequence, and its state.
fn classify(
    c: Candidate,
    answer: Result<MasterInfo, String>,
    me: &str,
    primary_applied: Option<u64>,
    max_lag: u64,
) -> ClusterMaster {
    let is_self = c.address == me;
    match answer {
        Ok(info) => {
            let applied = applied_of(&info).or(c.applied);
            let lag = primary_applied
                .zip(applied)
                .map(|(p, a)| p.saturating_sub(a));
            let state = master_state(&info.role, lag, max_lag);
            ClusterMaster {
                address: info.address.clone(),
                state: state.to_string(),
                role: info.role.clone(),
                epoch: info.epoch,
                has_applied: applied.is_some(),
                applied: applied.unwrap_or_default(),
                has_lag: lag.is_some(),
                lag: lag.unwrap_or_default(),
                start_time_ms: info.start_time_ms,
                version: info.version.clone(),
                web_port: info.web_port,
                error: String::new(),
                journal_role: c.journal_role,
                is_self,
            }
        }
        Err(why) => {
            let lag = primary_applied
                .zip(c.applied)
                .map(|(p, a)| p.saturating_sub(a));
            ClusterMaster {
                address: c.address,
                state: state::UNREACHABLE.to_string(),
                has_applied: c.applied.is_some(),
                applied: c.applied.unwrap_or_default(),
                has_lag: lag.is_some(),
                lag: lag.unwrap_or_default(),
                error: why,
                journal_role: c.journal_role,
                is_self,
                ..ClusterMaster::default()
            }
        }
    }
}

/// PRIMARY for a primary; a standby is CATCHING_UP when it is more than
/// `max_lag` entries behind the primary, STANDBY otherwise (also when the
/// lag is unknown).
pub fn master_state(role: &str, lag: Option<u64>, max_lag: u64) -> &'static str {
    if role == state::PRIMARY {
        state::PRIMARY
    } else if lag.is_some_and(|l| l > max_lag) {
        state::CATCHING_UP
    } else {
        state::STANDBY
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;
    use crate::metrics::MasterMetrics;
    use crate::rpc::testing::FakeJournal;
    use crate::status::{ClusterSettings, StatusContext};

    /// A listener that accepts and counts connections, holding each open
    /// without a word (a ZooKeeper that never answers the handshake).
    async fn silent_zookeeper() -> (String, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("addr").to_string();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                held.push(stream);
            }
        });
        (address, accepted, task)
    }

    /// A primary (fake journal, real metadata machine) whose status views
    /// look the primary up in the ZooKeeper `ensemble`.
    fn primary_with_zookeeper(
        ensemble: String,
        journal_type: &'static str,
        election: &'static str,
    ) -> Arc<MasterState> {
        let settings = ClusterSettings {
            journal_type,
            election,
            zookeeper: Some(super::super::ZkLookup {
                ensemble,
                election_path: "/election".into(),
                leader_path: "/leader".into(),
            }),
            ..ClusterSettings::standalone()
        };
        let journal = FakeJournal::primary();
        let machine = Arc::new(parking_lot::RwLock::new(crate::meta::MetaMachine::default()));
        journal.set_machine(machine.clone());
        MasterState::with_status(
            journal,
            machine,
            "self:19998".into(),
            Duration::from_secs(300),
            StatusContext::new(settings, Arc::new(MasterMetrics::new())),
            wall_clock_ms(),
        )
    }

    /// Many status requests at once (a flood of `/`, `/api/v1/master/info`
    /// or `GetClusterInfo`) share one cluster view: they must not open a
    /// ZooKeeper session each, which would exhaust ZooKeeper's per-host
    /// connection limit (and with it this master's own election session).
    #[tokio::test]
    async fn concurrent_views_share_one_zookeeper_lookup() {
        let (ensemble, accepted, zk) = silent_zookeeper().await;
        let state = primary_with_zookeeper(ensemble, "UFS", "ZOOKEEPER");
        let views = futures::future::join_all((0..20).map(|_| gather(&state))).await;
        zk.abort();
        assert!(views
            .iter()
            .all(|v| v.notes.iter().any(|n| n.contains("could not list"))));
        let sessions = accepted.load(Ordering::SeqCst);
        assert!(
            sessions <= 2,
            "20 concurrent views opened {sessions} ZooKeeper connections"
        );
    }

    /// This master's own line is read after the other masters answered
    /// (the lookups take up to seconds): read before, a standby that keeps
    /// up with a busy primary showed itself behind by everything applied
    /// meanwhile, and CATCHING_UP past the allowed lag, while its health
    /// check (which reads in that order) said it follows.
    #[tokio::test]
    async fn this_masters_line_is_read_after_the_lookups() {
        let (ensemble, accepted, zk) = silent_zookeeper().await;
        let standalone = ClusterSettings::standalone();
        let state = primary_with_zookeeper(ensemble, standalone.journal_type, standalone.election);
        let fs = crate::rpc::fs::FsService::new(state.clone());
        let apply_meanwhile = async {
            // Once the ZooKeeper lookup is under way, apply one entry.
            for _ in 0..500 {
                if accepted.load(Ordering::SeqCst) > 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            use crate::proto::rpc::file_system_master_server::FileSystemMaster;
            let r = fs
                .mutate(tonic::Request::new(crate::proto::rpc::MutateRequest {
                    client_id: bytes::Bytes::from_static(b"c"),
                    request_seq: 1,
                    op: Some(crate::proto::rpc::mutate_request::Op::Mkdir(
                        crate::meta::proto::Mkdir {
                            path: "/a".into(),
                            recursive: false,
                        },
                    )),
                }))
                .await
                .expect("mutate");
            assert!(r.into_inner().is_ok());
            state.journal.status().last_applied
        };
        let (view, applied) = tokio::join!(gather(&state), apply_meanwhile);
        zk.abort();
        assert!(applied > 0);
        let me = view.answered_by.expect("me");
        assert_eq!(me.journal.map(|j| j.last_applied), Some(applied));
        assert_eq!(view.masters[0].applied, applied);
    }

    #[test]
    fn a_standby_far_behind_is_catching_up() {
        assert_eq!(master_state("PRIMARY", Some(0), 10), "PRIMARY");
        assert_eq!(master_state("STANDBY", Some(10), 10), "STANDBY");
        assert_eq!(master_state("STANDBY", Some(11), 10), "CATCHING_UP");
        assert_eq!(master_state("STANDBY", None, 10), "STANDBY");
    }

    #[test]
    fn an_unreachable_master_keeps_what_the_journal_knows_of_it() {
        let c = Candidate {
            address: "m2:19998".into(),
            journal_role: "FOLLOWER".into(),
            applied: Some(90),
        };
        let m = classify(c, Err("connect timed out".into()), "m1:19998", Some(100), 5);
        assert_eq!(m.state, "UNREACHABLE");
        assert_eq!((m.has_lag, m.lag, m.applied), (true, 10, 90));
        assert_eq!(m.error, "connect timed out");
        assert!(!m.is_self);
    }

    #[test]
    fn candidates_merge_by_address() {
        let mut list = vec![plain("a:1")];
        merge(
            &mut list,
            Candidate {
                address: "a:1".into(),
                journal_role: "LEADER".into(),
                applied: Some(3),
            },
        );
        merge(&mut list, plain("b:1"));
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].journal_role, "LEADER");
        assert_eq!(list[0].applied, Some(3));
    }
}
