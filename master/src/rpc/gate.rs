//! The primary gate: how a master that is not (or no longer) the primary
//! answers, and how journal errors become gRPC statuses.
//!
//! A standby answers `UNAVAILABLE` with "not the primary; the primary is at
//! host:port" and, when it knows the primary, the response metadata
//! [`PRIMARY_METADATA_KEY`] = `host:port`, so a client follows the redirect
//! without asking anyone else (rpc.proto).

use journal_core::{JournalError, JournalStatus, JournalSystem};
use tonic::metadata::MetadataValue;
use tonic::Status;

/// Response metadata key naming the primary's RPC address (`host:port`).
pub const PRIMARY_METADATA_KEY: &str = "primacy-primary";

/// The primary's RPC address as far as this master's journal knows it.
///
/// **The one place leader addresses are interpreted.** Every backend names
/// the primary's RPC address: the UFS journal (ZooKeeper or single master)
/// publishes it, and the embedded Raft journal replicates each member's RPC
/// address (`RaftJournalConfig::rpc_address`, filled by
/// `MasterConfig::raft_journal_config`) with its membership, so its
/// `leader_address` is the leader's RPC address, or `None` while the leader's
/// RPC address is not known on this member (never its peer address). It is
/// passed through unchanged; no peer→RPC mapping is kept anywhere.
pub fn primary_rpc_address(status: &JournalStatus) -> Option<String> {
    status.leader_address.clone().filter(|a| !a.is_empty())
}

/// `UNAVAILABLE` "not the primary", with the primary's address in the
/// message and in [`PRIMARY_METADATA_KEY`] when known.
pub fn not_primary(primary: Option<&str>) -> Status {
    match primary {
        Some(addr) => {
            let mut status =
                Status::unavailable(format!("not the primary; the primary is at {addr}"));
            // An address that is not a valid header value (it never should
            // be) is still named in the message.
            if let Ok(v) = MetadataValue::try_from(addr) {
                status.metadata_mut().insert(PRIMARY_METADATA_KEY, v);
            }
            status
        }
        None => {
            Status::unavailable("not the primary; no primary is known right now, retry shortly")
        }
    }
}

/// `Ok` when this master serves as primary right now; otherwise the
/// redirect of [`not_primary`].
pub fn require_primary(journal: &dyn JournalSystem) -> Result<(), Status> {
    if journal.role().borrow().is_primary() {
        Ok(())
    } else {
        Err(not_primary(
            primary_rpc_address(&journal.status()).as_deref(),
        ))
    }
}

/// Maps a journal error from `propose` or `read_barrier` to a status.
///
/// `NotPrimary`, `Fenced` and `Shutdown`: `UNAVAILABLE` with the redirect
/// (the request was not acknowledged; a retry with the same request number
/// is applied once). `Timeout`, `Io` and `Overloaded` (too many proposals
/// already wait for the journal): `UNAVAILABLE` without a redirect, which
/// clients retry here after a back-off.
/// `InvalidEntry`: `INVALID_ARGUMENT`. `Corrupt` and anything else:
/// `INTERNAL` with the journal's message, which names the object.
pub fn journal_error(journal: &dyn JournalSystem, e: JournalError) -> Status {
    match e {
        JournalError::NotPrimary { leader_hint } => {
            let hint = leader_hint
                .filter(|a| !a.is_empty())
                .or_else(|| primary_rpc_address(&journal.status()));
            not_primary(hint.as_deref())
        }
        JournalError::Fenced { .. } | JournalError::Shutdown => {
            not_primary(primary_rpc_address(&journal.status()).as_deref())
        }
        e @ (JournalError::Timeout { .. }
        | JournalError::Io { .. }
        | JournalError::Overloaded { .. }) => Status::unavailable(e.to_string()),
        e @ JournalError::InvalidEntry { .. } => Status::invalid_argument(e.to_string()),
        e => Status::internal(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overloaded_is_unavailable_without_a_redirect_so_clients_back_off_and_retry() {
        let journal = crate::rpc::testing::FakeJournal::primary();
        let s = journal_error(
            &*journal,
            JournalError::Overloaded {
                pending: 10,
                pending_bytes: 100,
                max_pending: 10,
                max_pending_bytes: 1000,
            },
        );
        assert_eq!(s.code(), tonic::Code::Unavailable);
        assert!(s.message().contains("overloaded"), "{}", s.message());
        assert!(s.metadata().get(PRIMARY_METADATA_KEY).is_none());
        assert_eq!(
            crate::client::classify(&s, "m1:19998"),
            crate::client::Verdict::Retry
        );
    }

    /// An entry above `max.pending.bytes` can never be admitted: the client
    /// must fail at once, not back off and retry until its deadline.
    #[test]
    fn an_entry_above_the_pending_byte_bound_fails_without_retries() {
        let journal = crate::rpc::testing::FakeJournal::primary();
        let gate = journal_core::PendingGate::new(journal_core::PendingLimits {
            max_proposals: 10,
            max_bytes: 100,
        });
        let e = gate.admit(101).unwrap_err();
        let s = journal_error(&*journal, e);
        assert_eq!(s.code(), tonic::Code::InvalidArgument);
        assert!(s.message().contains("max.pending.bytes"), "{}", s.message());
        assert_eq!(
            crate::client::classify(&s, "m1:19998"),
            crate::client::Verdict::Fail
        );
    }

    #[test]
    fn redirect_names_the_primary_in_message_and_metadata() {
        let s = not_primary(Some("m2:19998"));
        assert_eq!(s.code(), tonic::Code::Unavailable);
        assert_eq!(s.message(), "not the primary; the primary is at m2:19998");
        assert_eq!(
            s.metadata()
                .get(PRIMARY_METADATA_KEY)
                .and_then(|v| v.to_str().ok()),
            Some("m2:19998")
        );
        let s = not_primary(None);
        assert_eq!(s.code(), tonic::Code::Unavailable);
        assert!(s.metadata().get(PRIMARY_METADATA_KEY).is_none());
    }
}
