//! The journal member the harness runs in its own child processes
//! (`bench node`): it formats and opens a journal as the given properties
//! choose, with a counting state machine, and when it becomes primary it
//! runs the proposer loop in-process and prints the records on stdout.
//!
//! Protocol on stdout, one line each: `PROGRESS <text>`, then
//! `RESULT <json array of records>`; a member that stays a standby prints
//! nothing and is killed by the harness when the primary is done.

use std::io::{Read, Write};
use std::time::Duration;

use bytes::Bytes;
use master::embed::{format, MasterConfig, Replicated, StateMachine};
use serde::{Deserialize, Serialize};

use crate::report::Record;
use crate::scenario::append::{run_append, AppendPlan};

/// Prefix of a progress line.
pub const PROGRESS: &str = "PROGRESS ";
/// Prefix of the result line.
pub const RESULT: &str = "RESULT ";

/// Counts the entries and bytes it applied: the cheapest deterministic
/// machine, so the append figures are the journal's own.
#[derive(Debug, Default)]
pub struct Counter {
    entries: u64,
    bytes: u64,
}

impl StateMachine for Counter {
    fn apply(&mut self, _seq: u64, entry: &[u8]) -> Bytes {
        self.entries += 1;
        self.bytes += entry.len() as u64;
        Bytes::new()
    }

    fn snapshot(&self, out: &mut dyn Write) -> std::io::Result<()> {
        out.write_all(&self.entries.to_le_bytes())?;
        out.write_all(&self.bytes.to_le_bytes())
    }

    fn restore(&mut self, input: &mut dyn Read) -> std::io::Result<()> {
        let mut word = [0u8; 8];
        input.read_exact(&mut word)?;
        self.entries = u64::from_le_bytes(word);
        input.read_exact(&mut word)?;
        self.bytes = u64::from_le_bytes(word);
        Ok(())
    }
}

/// What a `node` is told: its properties and the work to run as primary.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeSpec {
    /// `-D`-style properties of this member.
    pub properties: Vec<(String, String)>,
    /// The proposer loop to run once primary.
    pub plan: AppendPlan,
}

/// Why a member could not run.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The spec on the command line was not valid JSON.
    #[error("bad node spec: {0}")]
    Spec(#[from] serde_json::Error),
    /// The properties were rejected.
    #[error("configuration: {0}")]
    Config(String),
    /// The journal failed.
    #[error("journal: {0}")]
    Journal(#[from] master::embed::JournalError),
}

/// Formats (a new deployment's journal only), opens it as the properties
/// choose, and returns the member once it is primary (or `None` after
/// `bound` as a standby).
pub async fn open_member(
    properties: &[(String, String)],
    bound: Duration,
) -> Result<Option<Replicated<Counter>>, NodeError> {
    let config =
        MasterConfig::from_pairs(properties).map_err(|e| NodeError::Config(e.to_string()))?;
    format(&config).await?;
    let member = Replicated::open(&config, Counter::default()).await?;
    match member.wait_primary(bound).await {
        Ok(_) => Ok(Some(member)),
        Err(master::embed::JournalError::Timeout { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The `node` subcommand: runs until killed (a standby) or until its
/// records are printed (the primary; then it waits to be killed too, so
/// the group stays whole while the others are measured).
pub async fn run_node(spec_json: &str) -> Result<(), NodeError> {
    let spec: NodeSpec = serde_json::from_str(spec_json)?;
    let Some(member) = open_member(&spec.properties, Duration::from_secs(3600)).await? else {
        return Ok(());
    };
    let say = |line: String| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    };
    let records: Vec<Record> = run_append(&member, &spec.plan, &|text| {
        say(format!("{PROGRESS}{text}"))
    })
    .await;
    say(format!("{RESULT}{}", serde_json::to_string(&records)?));
    // Stay a member until the harness kills the group.
    std::future::pending::<()>().await;
    Ok(())
}
