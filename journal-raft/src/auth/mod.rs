//! Authentication of peers and clients with a cluster secret.
//!
//! Every master of a cluster, and every client, worker and CLI that talks
//! to it, may hold the same secret (a file readable by its owner only, or
//! an environment variable). A caller that holds it attaches to every gRPC
//! request a token: a timestamp, a random nonce and an HMAC-SHA256 of both
//! under the secret ([`token`]). A server that requires authentication
//! checks the HMAC, the clock window and that the nonce was not seen
//! before, then lets the request through; anything else is refused with
//! UNAUTHENTICATED before a handler runs, so a refused caller changes
//! nothing. The secret itself never crosses the network.
//!
//! The two ports are switched separately: the embedded journal's peer port
//! ([`crate::RaftJournalConfig::require_auth`]) and the master's RPC port
//! (the master crate). What this does and does not protect against is in
//! `docs/security.md`.

mod grpc;
mod limiter;
mod secret;
pub mod token;

pub use grpc::{refusal_reason, AuthChannel, ClientAuth, ServerAuth};
pub use limiter::LogLimiter;
pub use secret::{AuthError, ClusterSecret, MIN_SECRET_BYTES, SECRET_ENV};
pub use token::{CheckError, Realm, Verifier, MAX_CLOCK_SKEW, MAX_REMEMBERED, METADATA_KEY};

/// The configuration key naming the cluster secret's file (the master
/// crate registers it; error messages here name it).
pub const KEY_SECRET_FILE: &str = "primacy.security.cluster.secret.file";

/// The configuration key that makes the embedded journal's peer port
/// require authentication.
pub const KEY_PEER_AUTH: &str = "primacy.security.authentication.peer.enabled";

/// The configuration key that makes the master's RPC port require
/// authentication.
pub const KEY_RPC_AUTH: &str = "primacy.security.authentication.rpc.enabled";
