//! # master
//!
//! primacy's master service: the configuration layer (`config`), the
//! composition of journals and elections (`ha`), the one call that opens
//! whichever journal the configuration chooses (`backend`), the embedding
//! API that does the same for your own state machine (`embed`), the metadata
//! state machine (`meta`), the gRPC server (`rpc`) with the primary's worker
//! registry (`workers`), the status views (`status`: cluster view, health,
//! role history) served over HTTP (`web`) with Prometheus `metrics`, the
//! process wiring (`server`), the client that
//! finds the primary and retries across failovers (`client`), the worker
//! agent (`worker`) and the `primacy` command line (`cli`).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![warn(missing_docs)]

/// Wire types and gRPC services compiled from `proto/primacy/*.proto`, in
/// one tree so that the services can name the metadata types.
pub mod proto {
    /// `proto/primacy/meta.proto`: journal entries, results, snapshot records.
    pub mod meta {
        include!(concat!(env!("OUT_DIR"), "/primacy.meta.rs"));
    }
    /// `proto/primacy/rpc.proto`: the master's gRPC services.
    pub mod rpc {
        include!(concat!(env!("OUT_DIR"), "/primacy.rpc.rs"));
    }
    pub mod codec;
}

pub mod backend;
pub mod cli;
pub mod client;
pub mod config;
pub mod embed;
pub mod ha;
pub mod meta;
pub mod metrics;
pub mod rpc;
pub mod server;
pub mod status;
pub mod web;
pub mod worker;
pub mod workers;
