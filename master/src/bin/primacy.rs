//! The `primacy` binary: see [`master::cli`].

fn main() -> std::process::ExitCode {
    // Failpoints builds arm the journals' failpoints from FAILPOINTS
    // (journal_core::failpoint); other builds have none.
    #[cfg(feature = "failpoints")]
    let _failpoints = fail::FailScenario::setup();
    master::cli::main()
}
