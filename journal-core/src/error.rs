//! The one error family every primacy journal and election returns.
//!
//! Each variant names what the operator should look at: the object or file,
//! the configuration key, the address of the primary to talk to instead.

use std::time::Duration;

/// Boxed source error kept inside [`JournalError::Io`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Errors of journals, elections and the state-machine plumbing between them.
///
/// Guarantees callers can rely on:
/// - `NotPrimary` and `Fenced` from `propose` mean the entry was **not**
///   acknowledged; it may or may not appear in the log later only if the
///   write had already reached the store (it is then applied everywhere, in
///   order), so callers that retry must make their entries idempotent (the
///   master does this with client ids and request sequence numbers).
/// - `Corrupt` is never recovered from silently: the record is not skipped.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// This master is not the primary; `leader_hint` is the primary's address when known.
    #[error("this master is not the primary{}", match leader_hint {
        Some(a) => format!("; the primary is at {a}"),
        None => "; no primary is known right now, retry shortly".to_string(),
    })]
    NotPrimary {
        /// Address of the current primary, if this master knows it.
        leader_hint: Option<String>,
    },

    /// A newer primary claimed the journal; this master stepped down and the
    /// entry was not acknowledged.
    #[error("fenced: a newer primary (epoch {by_epoch}) owns the journal; this master stepped down to standby")]
    Fenced {
        /// Epoch of the primary that fenced this one (0 if unknown).
        by_epoch: u64,
    },

    /// A record, chunk, checkpoint or snapshot failed verification.
    #[error("corrupt journal data at {location}: {detail}; the record was not skipped, restore this object from a replica or backup")]
    Corrupt {
        /// The object, file or log position that failed.
        location: String,
        /// What failed (CRC, length, decode, sequence gap, ...).
        detail: String,
    },

    /// The journal location holds no FORMAT marker.
    #[error("the journal at {location} is not formatted: run `primacy format` against it first")]
    Unformatted {
        /// The journal folder or directory.
        location: String,
    },

    /// The journal location belongs to another cluster or is not a primacy journal.
    #[error("the journal at {location} belongs to another cluster: {detail}")]
    ForeignJournal {
        /// The journal folder or directory.
        location: String,
        /// What did not match.
        detail: String,
    },

    /// `format` was asked to format a journal that already exists.
    #[error("the journal at {location} is already formatted (cluster {cluster_id}); refusing to overwrite it")]
    AlreadyFormatted {
        /// The journal folder or directory.
        location: String,
        /// The cluster id found there.
        cluster_id: String,
    },

    /// An operation did not finish in time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was being waited for.
        what: String,
        /// How long was waited.
        after: Duration,
    },

    /// Storage or network I/O failed.
    #[error("I/O error on {location}: {source}")]
    Io {
        /// The object, file or address involved.
        location: String,
        /// The underlying error.
        #[source]
        source: BoxError,
    },

    /// A configuration value is missing, malformed or contradicts another.
    #[error("configuration error in {key}: {detail}")]
    Config {
        /// The configuration key (e.g. `alluxio.master.journal.folder`).
        key: String,
        /// What is wrong with it.
        detail: String,
    },

    /// The backend cannot do this operation.
    #[error("{operation} is not supported by the {backend} journal")]
    Unsupported {
        /// The operation asked for.
        operation: &'static str,
        /// The backend asked.
        backend: &'static str,
    },

    /// The proposed entry cannot be journaled (e.g. larger than a record may be).
    #[error("invalid entry: {detail}")]
    InvalidEntry {
        /// What is wrong with it.
        detail: String,
    },

    /// Too many proposals are already waiting for the journal (its storage
    /// or quorum is slow or away): this one was refused at once, before it
    /// was queued, so nothing of it is in the log. Retry with a back-off.
    #[error("overloaded: {pending} proposals ({pending_bytes} bytes) already wait for the journal (limits {max_pending} proposals, {max_pending_bytes} bytes); this one was not queued, retry with a back-off")]
    Overloaded {
        /// Proposals waiting when this one was refused.
        pending: usize,
        /// Entry bytes waiting when this one was refused.
        pending_bytes: usize,
        /// The configured limit on waiting proposals.
        max_pending: usize,
        /// The configured limit on waiting entry bytes.
        max_pending_bytes: usize,
    },

    /// The journal or election was shut down.
    #[error("the journal is shut down")]
    Shutdown,
}

impl JournalError {
    /// Shorthand for an [`JournalError::Io`] error.
    pub fn io(location: impl Into<String>, source: impl Into<BoxError>) -> Self {
        JournalError::Io {
            location: location.into(),
            source: source.into(),
        }
    }

    /// Shorthand for a [`JournalError::Corrupt`] error.
    pub fn corrupt(location: impl Into<String>, detail: impl Into<String>) -> Self {
        JournalError::Corrupt {
            location: location.into(),
            detail: detail.into(),
        }
    }

    /// Shorthand for a [`JournalError::Config`] error.
    pub fn config(key: impl Into<String>, detail: impl Into<String>) -> Self {
        JournalError::Config {
            key: key.into(),
            detail: detail.into(),
        }
    }

    /// True for errors after which the caller may retry against the (new) primary.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            JournalError::NotPrimary { .. }
                | JournalError::Fenced { .. }
                | JournalError::Timeout { .. }
                | JournalError::Io { .. }
                | JournalError::Overloaded { .. }
        )
    }
}

/// Result alias used across primacy.
pub type Result<T, E = JournalError> = std::result::Result<T, E>;

/// Describes an error with its source chain ("transport error: connection
/// refused"), since tonic's own message is often just "transport error". A
/// source whose text the description already holds is not repeated.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("transport error")
        }
    }

    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn the_chain_names_every_cause_once() {
        let refused =
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        assert_eq!(
            error_chain(&Outer(refused)),
            "transport error: connection refused"
        );
        let repeated = std::io::Error::other("transport error");
        assert_eq!(error_chain(&Outer(repeated)), "transport error");
    }
}
