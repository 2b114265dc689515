//! The machinery every scenario shares: child processes that never
//! outlive the harness, the closed-loop load generator, and the journal
//! member the harness hosts in its own child processes (`node`).

pub mod cli;
pub mod load;
pub mod node;
pub mod procs;
