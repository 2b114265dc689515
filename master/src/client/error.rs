//! What a client call can end in. The variants are what a caller branches on:
//! the CLI maps them to its exit codes (Refused 1, InvalidArgument/Config/Uri
//! 2, Unreachable 3, Rpc/Protocol 1).

use std::time::Duration;

use crate::meta::MetaError;

use super::uri::UriError;

/// The error of a [`MasterClient`](super::MasterClient) call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The primary answered and refused the operation (not found, exists, not
    /// empty, ...). The message names the path and the rule. Never retried.
    #[error("{}", .0.message)]
    Refused(MetaError),

    /// No primary answered within `alluxio.user.rpc.retry.max.duration`.
    /// `tried` lists each address (or ZooKeeper lookup) with its last failure.
    #[error("no primary master answered {op} within {elapsed:?}; tried: {}", tried_text(.tried))]
    Unreachable {
        /// The operation that was attempted (`mkdir /a`, `find the primary`, ...).
        op: String,
        /// How long it was retried.
        elapsed: Duration,
        /// `address: last failure`, one per address or lookup, in first-tried order.
        tried: Vec<String>,
    },

    /// The request itself is wrong (a malformed path, or the master answered
    /// INVALID_ARGUMENT). Never retried.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// The configuration cannot locate a cluster (ZooKeeper enabled without an
    /// address, an unknown nameservice, ...). Names the key to set.
    #[error("configuration: {0}")]
    Config(String),

    /// A malformed cluster URI.
    #[error(transparent)]
    Uri(#[from] UriError),

    /// The master answered with a gRPC error that retrying cannot fix
    /// (UNIMPLEMENTED, INTERNAL, PERMISSION_DENIED, ...).
    #[error("master {address} answered {code:?}: {message}")]
    Rpc {
        /// The master that answered.
        address: String,
        /// The gRPC status code.
        code: tonic::Code,
        /// Its message.
        message: String,
    },

    /// The master answered something this client does not understand (an
    /// `FsResult` of the wrong kind, an empty one).
    #[error("unexpected answer from master {address}: {detail}")]
    Protocol {
        /// The master that answered.
        address: String,
        /// What was wrong with it.
        detail: String,
    },
}

impl ClientError {
    /// The metadata refusal, when this is one.
    pub fn refusal(&self) -> Option<&MetaError> {
        match self {
            ClientError::Refused(e) => Some(e),
            _ => None,
        }
    }
}

fn tried_text(tried: &[String]) -> String {
    if tried.is_empty() {
        "nothing".to_string()
    } else {
        tried.join("; ")
    }
}
