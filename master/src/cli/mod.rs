//! The `primacy` command line. This branch holds the client side only:
//! `primacy fs` ([`fs_cmd`]) and `primacy worker` ([`worker_cmd`]); the
//! top-level `Cli` with `format` and `master` comes with the server side and
//! refers to [`fs_cmd::FsArgs`] and [`worker_cmd::WorkerArgs`].

pub mod fs_cmd;
pub mod worker_cmd;
