//! Handing primacy to another master: `quorum elect` and the graceful
//! handoff a primary makes when it is told to stop (SIGTERM).
//!
//! Both go the same way: look the target up among the journal's members,
//! check that it answers (`GetMasterInfo` on its RPC address) before
//! anything changes, ask the journal to hand over (embedded: Raft leadership
//! transfer; UFS + ZooKeeper: resign, so the next contender in line wins),
//! then wait until the target itself reports PRIMARY. Every step is
//! bounded; a failure says which step failed and why.

use std::time::{Duration, Instant};

use journal_core::{JournalError, MemberStatus};
use journal_raft::auth::ClientAuth;
use tonic::transport::Endpoint;

use super::MasterState;
use crate::proto::rpc::meta_master_client::MetaMasterClient;
use crate::proto::rpc::{GetMasterInfoRequest, MasterInfo};

/// How long one `GetMasterInfo` on another master may take (connect and
/// answer each).
pub const ASK_TIMEOUT: Duration = Duration::from_secs(3);

/// How long `quorum elect` waits for the named master to report PRIMARY
/// once the journal handed over.
pub const SERVE_WAIT: Duration = Duration::from_secs(30);

/// How long a stopping primary tries to hand over before it stops anyway.
pub const SHUTDOWN_HANDOFF: Duration = Duration::from_secs(15);

/// Why a handoff did not happen (or did not finish).
#[derive(Debug, thiserror::Error)]
pub enum HandoffError {
    /// No member has the address or id.
    #[error("no member of the journal is {name:?}; members: {members}")]
    NotFound {
        /// What was asked for.
        name: String,
        /// The members, described.
        members: String,
    },
    /// Several members match (an old and a new incarnation of one address).
    #[error("{name:?} names several members ({ids}); name the member by id")]
    Ambiguous {
        /// What was asked for.
        name: String,
        /// The ids that match.
        ids: String,
    },
    /// The target cannot take over (unreachable, a learner, not next in
    /// line, no RPC address known).
    #[error("{0}")]
    Refused(String),
    /// The journal refused or failed the handover.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The handover was made but the target did not report PRIMARY in time.
    #[error("{0}")]
    NotServing(String),
}

/// One line per member, for messages: `id address (rpc ...) ROLE`.
pub fn describe_members(members: &[MemberStatus]) -> String {
    if members.is_empty() {
        return "none".to_string();
    }
    members
        .iter()
        .map(|m| {
            let rpc = match &m.rpc_address {
                Some(r) if *r != m.address => format!(" (rpc {r})"),
                _ => String::new(),
            };
            format!("{} {}{rpc} {}", m.id, m.address, m.role)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The member `name` designates: its id, its address (the embedded
/// journal's peer address, or the UFS election's RPC address) or its RPC
/// address.
pub fn find_member<'a>(
    members: &'a [MemberStatus],
    name: &str,
) -> Result<&'a MemberStatus, HandoffError> {
    let name = name.trim();
    let matches: Vec<&MemberStatus> = members
        .iter()
        .filter(|m| m.id == name || m.address == name || m.rpc_address.as_deref() == Some(name))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(HandoffError::NotFound {
            name: name.to_string(),
            members: describe_members(members),
        }),
        many => Err(HandoffError::Ambiguous {
            name: name.to_string(),
            ids: many
                .iter()
                .map(|m| m.id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// `GetMasterInfo` on the master at `addr`, bounded by [`ASK_TIMEOUT`]
/// for the connection and again for the answer.
pub async fn ask_master(auth: &ClientAuth, addr: &str) -> Result<MasterInfo, String> {
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| format!("not a usable address: {e}"))?
        .connect_timeout(ASK_TIMEOUT)
        .timeout(ASK_TIMEOUT);
    let channel = match tokio::time::timeout(ASK_TIMEOUT, endpoint.connect()).await {
        Err(_) => return Err(format!("connect timed out after {ASK_TIMEOUT:?}")),
        Ok(Err(e)) => return Err(format!("cannot connect: {}", crate::client::chain(&e))),
        Ok(Ok(ch)) => ch,
    };
    match tokio::time::timeout(
        ASK_TIMEOUT,
        MetaMasterClient::new(auth.wrap(channel)).get_master_info(GetMasterInfoRequest {}),
    )
    .await
    {
        Err(_) => Err(format!("no answer within {ASK_TIMEOUT:?}")),
        Ok(Err(status)) => Err(format!("{:?}: {}", status.code(), status.message())),
        Ok(Ok(r)) => Ok(r.into_inner()),
    }
}

/// Whether `member` is this master.
fn is_self(state: &MasterState, member: &MemberStatus) -> bool {
    member.rpc_address.as_deref() == Some(state.address.as_str())
        || (member.role == "LEADER" && state.journal.status().backend == "EMBEDDED")
}

/// Hands primacy to `target` and waits (at most `serve_wait`) until it
/// reports PRIMARY; returns its answer. `target` being this master returns
/// this master's own view at once, once the journal confirmed that primacy
/// is not being handed elsewhere.
///
/// Before anything changes: the target must be a voter (embedded) and
/// answer `GetMasterInfo` on its RPC address; otherwise `Refused` says why.
/// The journal then hands over (its errors are `Journal`: not the primary,
/// not next in line, no leadership change within the journal's bound),
/// and a target that does not report PRIMARY in time is `NotServing` with
/// its last answer.
pub async fn hand_to(
    state: &MasterState,
    target: &MemberStatus,
    serve_wait: Duration,
) -> Result<MasterInfo, HandoffError> {
    let status = state.journal.status();
    // Raft names members by id (an address can belong to two incarnations);
    // the UFS election by the address each contender campaigns with.
    let to = if status.backend == "EMBEDDED" {
        target.id.clone()
    } else {
        target.address.clone()
    };
    if is_self(state, target) {
        // The journal confirms: primacy may be on its way elsewhere (another
        // `quorum elect`, this master stopping), and then "it stays here"
        // would be a false success.
        state.journal.transfer_leadership(&to).await?;
        return Ok(super::info::master_info(state));
    }
    if target.role == "LEARNER" {
        return Err(HandoffError::Refused(format!(
            "member {} ({}) is a learner: it does not vote and cannot lead; it becomes a \
             voter once `quorum add` finished",
            target.id, target.address
        )));
    }
    let Some(rpc) = target.rpc_address.clone().filter(|r| !r.is_empty()) else {
        return Err(HandoffError::Refused(format!(
            "member {} ({}) has no known RPC address, so nobody could confirm it serves; \
             its address is replicated once it has led or was added by `quorum add`",
            target.id, target.address
        )));
    };
    let before = ask_master(&state.status.settings.credentials, &rpc)
        .await
        .map_err(|why| {
            HandoffError::Refused(format!(
                "master {rpc} (member {}, {}) is unreachable: {why}; primacy stays here",
                target.id, target.address
            ))
        })?;
    let behind = |info: &MasterInfo| {
        let theirs = info.journal.as_ref().map_or(0, |j| j.last_applied);
        let ours = state.journal.status().last_applied;
        format!(
            "it has applied seq {theirs}, this primary {ours} (behind by {})",
            ours.saturating_sub(theirs)
        )
    };
    let started = Instant::now();
    tracing::info!(to = %rpc, member = %target.id, "handing primacy over");
    // A target that stops answering meanwhile (it is being stopped too, as
    // when a whole cluster is shut down) ends the wait at once instead of
    // after the journal's bound.
    let transferred = tokio::select! {
        r = state.journal.transfer_leadership(&to) => r,
        why = until_gone(state, &rpc) => {
            return Err(HandoffError::NotServing(format!(
                "master {rpc} stopped answering while primacy was being handed to it ({why})"
            )));
        }
    };
    if let Err(e) = transferred {
        return Err(match e {
            JournalError::Timeout { after, .. } => HandoffError::NotServing(format!(
                "master {rpc} did not take over within {after:?}: {}; primacy stays here \
                 (retry once it caught up, see `primacy journal quorum info`)",
                behind(&before)
            )),
            e => HandoffError::Journal(e),
        });
    }
    let deadline = started + serve_wait;
    let mut last = format!("{} ({})", before.role, behind(&before));
    let mut unreachable_since: Option<Instant> = None;
    loop {
        match ask_master(&state.status.settings.credentials, &rpc).await {
            Ok(info) if info.role == "PRIMARY" => {
                tracing::info!(
                    to = %rpc,
                    epoch = info.epoch,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "primacy handed over: {rpc} serves"
                );
                return Ok(info);
            }
            Ok(info) => {
                unreachable_since = None;
                last = format!("{} ({})", info.role, behind(&info));
            }
            Err(why) => {
                let since = *unreachable_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= GONE_AFTER {
                    return Err(HandoffError::NotServing(format!(
                        "this master handed primacy over, but {rpc} stopped answering ({why})"
                    )));
                }
                last = format!("unreachable: {why}");
            }
        }
        if Instant::now() >= deadline {
            return Err(HandoffError::NotServing(format!(
                "this master handed primacy over, but {rpc} did not report PRIMARY within \
                 {serve_wait:?}; its last answer: {last}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How long a target may fail to answer `GetMasterInfo` before a handoff
/// to it is given up.
pub const GONE_AFTER: Duration = Duration::from_secs(1);

/// Completes (with the last failure) once the master at `rpc` has not
/// answered `GetMasterInfo` for [`GONE_AFTER`]; never while it answers.
async fn until_gone(state: &MasterState, rpc: &str) -> String {
    let mut since: Option<Instant> = None;
    loop {
        match ask_master(&state.status.settings.credentials, rpc).await {
            Ok(_) => since = None,
            Err(why) => {
                let first = *since.get_or_insert_with(Instant::now);
                if first.elapsed() >= GONE_AFTER {
                    return why;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The members worth handing primacy to when this primary stops, best
/// first: embedded, every voter but this master by replicated index
/// (highest first); UFS + ZooKeeper, only the contender right behind this
/// master (the only one its resignation can elect).
pub fn successors(state: &MasterState, members: &[MemberStatus]) -> Vec<MemberStatus> {
    let status = state.journal.status();
    if status.backend == "EMBEDDED" {
        let mut voters: Vec<MemberStatus> = members
            .iter()
            .filter(|m| m.role == "FOLLOWER")
            .cloned()
            .collect();
        voters.sort_by_key(|m| std::cmp::Reverse(m.applied.unwrap_or(0)));
        voters
    } else {
        let own = members
            .iter()
            .position(|m| m.rpc_address.as_deref() == Some(state.address.as_str()));
        own.and_then(|i| members.get(i + 1))
            .cloned()
            .into_iter()
            .collect()
    }
}

/// A stopping primary's handoff: tries the [`successors`] in order (the
/// first that answers is asked to take over) within [`SHUTDOWN_HANDOFF`],
/// logging what happened. Never fails: without a successor, or when the
/// handoff does not finish in time, the master stops as it would anyway
/// (the journal's shutdown leaves the election, and the others elect a
/// primary after their timeout).
pub async fn hand_over_on_shutdown(state: &MasterState) {
    if !state.journal.role().borrow().is_primary() {
        return;
    }
    let started = Instant::now();
    let members = match state.journal.members().await {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(error = %e, "stopping: cannot list the journal's members; stopping without a handoff");
            return;
        }
    };
    let candidates = successors(state, &members);
    if candidates.is_empty() {
        tracing::info!("stopping: no other master can take over; stopping without a handoff");
        return;
    }
    for target in candidates {
        let left = SHUTDOWN_HANDOFF.saturating_sub(started.elapsed());
        if left.is_zero() {
            break;
        }
        match tokio::time::timeout(left, hand_to(state, &target, left)).await {
            Ok(Ok(info)) => {
                tracing::info!(
                    to = %info.address,
                    epoch = info.epoch,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "stopping: handed primacy to {} before exiting",
                    info.address
                );
                return;
            }
            Ok(Err(HandoffError::Refused(why))) => {
                tracing::warn!(
                    "stopping: cannot hand primacy to member {}: {why}",
                    target.id
                );
            }
            Ok(Err(e)) => {
                tracing::warn!("stopping: the handoff to member {} failed: {e}", target.id);
                // Leadership may be moving already; trying another member
                // now could fight it.
                break;
            }
            Err(_) => {
                tracing::warn!("stopping: the handoff did not finish within {SHUTDOWN_HANDOFF:?}");
                break;
            }
        }
    }
    tracing::warn!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "stopping without a completed handoff: the other masters elect a primary after their timeout"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, address: &str, rpc: &str, role: &str) -> MemberStatus {
        MemberStatus {
            id: id.into(),
            address: address.into(),
            rpc_address: Some(rpc.into()).filter(|r: &String| !r.is_empty()),
            role: role.into(),
            applied: None,
        }
    }

    #[test]
    fn members_are_found_by_id_peer_or_rpc_address() {
        let all = vec![
            member("11", "h1:19200", "h1:19998", "LEADER"),
            member("12", "h2:19200", "h2:19998", "FOLLOWER"),
        ];
        assert_eq!(find_member(&all, "12").expect("id").id, "12");
        assert_eq!(find_member(&all, " h2:19200 ").expect("peer").id, "12");
        assert_eq!(find_member(&all, "h2:19998").expect("rpc").id, "12");
        let e = find_member(&all, "h9:1").expect_err("unknown");
        assert!(matches!(e, HandoffError::NotFound { .. }), "{e}");
        assert!(
            e.to_string().contains("11 h1:19200 (rpc h1:19998) LEADER"),
            "{e}"
        );
        let twice = vec![
            member("11", "h1:19200", "", "FOLLOWER"),
            member("13", "h1:19200", "", "FOLLOWER"),
        ];
        assert!(matches!(
            find_member(&twice, "h1:19200"),
            Err(HandoffError::Ambiguous { .. })
        ));
    }
}
