//! The conformance test kit (feature `testkit`): one suite every journal
//! backend runs, the deterministic state machine it drives, an election
//! the test controls, and the check an embedder runs on its own state
//! machine ([`check_state_machine`]).

mod machine;
mod machine_suite;
mod manual_election;
mod proxy;
mod suite;

pub use machine::TestMachine;
pub use machine_suite::{
    check_state_machine, check_state_machine_by, MachineCheckError, SnapshotBytes,
};
pub use manual_election::ManualElection;
pub use proxy::TcpProxy;
pub use suite::{
    check_corruption_detected, check_durability_across_restart, check_fencing, check_ordering,
    check_snapshot_restore, check_standby_equals_primary, check_torn_tail, run_conformance,
    wait_primary, wait_until, BackendFactory, Cluster, TornTail, CONFORMANCE_TIMEOUT,
};

/// Sends `tracing` output to the test harness (captured per test), at the
/// level `RUST_LOG` names, `warn` by default. Safe to call from every test.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}
