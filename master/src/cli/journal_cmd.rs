//! `primacy journal`: journal administration against the cluster's primary.
//!
//! ```text
//! primacy journal [--conf DIR] [-D key=value]... checkpoint [--json]
//!                                                quorum info [--json]
//!                                                quorum elect --address HOST:PORT [--json]
//!                                                quorum add --address HOST:PORT [--json]
//!                                                quorum remove --address HOST:PORT [--json]
//! ```
//!
//! - `checkpoint` asks for a checkpoint now and prints the sequence it
//!   covers. The embedded journal's primary writes it; with the UFS journal
//!   and ZooKeeper a standby writes it (so the primary never pauses), the
//!   primary only when no standby answers.
//! - `quorum info` lists every member: id, address, voter or learner,
//!   leader, applied index and lag (the primary's applied index minus the
//!   member's). Each member is asked for its own applied index; one that
//!   does not answer shows the primary's view of its progress (embedded: the
//!   index it replicated) and `reachable: false`. With the UFS journal and
//!   ZooKeeper the members are the election's contenders in queue order (the
//!   first is the primary, the second takes over next).
//! - `quorum elect --address` hands primacy to the named master (its
//!   embedded journal address or its RPC address) and returns once it
//!   serves; it fails, changing nothing, when that master is unreachable,
//!   and says so when it did not take over in time (behind). With the UFS
//!   journal and ZooKeeper, only the contender next in line can be elected
//!   (the primary resigns and goes to the back of the queue).
//! - `quorum add|remove --address` change the embedded journal's membership
//!   through joint consensus; the UFS journal answers "embedded journal
//!   only".
//!
//! Exit codes ([`exit`]): 0 success; 1 refused (the cluster's answer says
//! why); 2 usage or configuration error (a malformed address); 3 no primary
//! answered within `alluxio.user.rpc.retry.max.duration`. With `--json` the
//! result is one JSON object on stdout, and so is an error:
//! `{"error": "..."}` (the message also goes to stderr).

use std::io::Write;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::{exit, fs_cmd, CommonArgs};
use crate::client::{ClientError, MasterClient};
use crate::config::MasterConfig;
use crate::proto::rpc::QuorumInfo;

/// `primacy journal` arguments.
#[derive(Debug, Clone, Args)]
pub struct JournalArgs {
    /// Configuration flags.
    #[command(flatten)]
    pub common: CommonArgs,
    /// The operation.
    #[command(subcommand)]
    pub command: JournalCommand,
}

/// The `primacy journal` operations.
#[derive(Debug, Clone, Subcommand)]
pub enum JournalCommand {
    /// Write a checkpoint now and print the sequence it covers.
    Checkpoint {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The journal's quorum: list it, move primacy, change its membership.
    Quorum {
        /// The quorum operation.
        #[command(subcommand)]
        command: QuorumCommand,
    },
}

/// `primacy journal quorum` operations.
#[derive(Debug, Clone, Subcommand)]
pub enum QuorumCommand {
    /// List every member with its role, applied index and lag.
    Info {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Hand primacy to the named master and wait until it serves.
    Elect {
        /// The master's embedded journal address or RPC address (host:port).
        #[arg(long, value_name = "HOST:PORT")]
        address: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Add a master (formatted with `primacy format --join` and running) to
    /// the embedded journal's quorum.
    Add {
        /// The new master's embedded journal address (host:port).
        #[arg(long, value_name = "HOST:PORT")]
        address: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a master from the embedded journal's quorum.
    Remove {
        /// The master's embedded journal address, RPC address or member id.
        #[arg(long, value_name = "HOST:PORT")]
        address: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

impl JournalCommand {
    fn json(&self) -> bool {
        match self {
            JournalCommand::Checkpoint { json } => *json,
            JournalCommand::Quorum { command } => match command {
                QuorumCommand::Info { json }
                | QuorumCommand::Elect { json, .. }
                | QuorumCommand::Add { json, .. }
                | QuorumCommand::Remove { json, .. } => *json,
            },
        }
    }

    fn describe(&self) -> String {
        match self {
            JournalCommand::Checkpoint { .. } => "checkpoint".into(),
            JournalCommand::Quorum { command } => match command {
                QuorumCommand::Info { .. } => "quorum info".into(),
                QuorumCommand::Elect { address, .. } => format!("quorum elect {address}"),
                QuorumCommand::Add { address, .. } => format!("quorum add {address}"),
                QuorumCommand::Remove { address, .. } => format!("quorum remove {address}"),
            },
        }
    }
}

/// Runs `primacy journal` with this process's environment, printing to
/// stdout and stderr.
pub fn run(args: JournalArgs) -> ExitCode {
    let code = run_with(
        &args,
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    );
    ExitCode::from(code)
}

/// Runs `primacy journal`, writing results to `out` and messages to `err`;
/// returns the exit code.
pub fn run_with(args: &JournalArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let json = args.command.json();
    let what = args.command.describe();
    let fail = |out: &mut dyn Write, err: &mut dyn Write, message: String, code: u8| {
        let _ = writeln!(err, "primacy journal {what}: {message}");
        if json {
            let _ = writeln!(out, "{}", json!({ "error": message }));
        }
        code
    };
    let cfg = match MasterConfig::load(&args.common.load_options()) {
        Ok(c) => c,
        Err(e) => return fail(out, err, e.to_string(), exit::USAGE),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            return fail(
                out,
                err,
                format!("cannot start the I/O runtime: {e}"),
                exit::REFUSED,
            )
        }
    };
    match runtime.block_on(execute(&args.command, &cfg, err)) {
        Ok(result) => {
            let text = if json {
                result.json.to_string()
            } else {
                result.text
            };
            let _ = writeln!(out, "{}", text.trim_end());
            exit::OK
        }
        Err(e) => fail(out, err, e.to_string(), fs_cmd::exit_code(&e)),
    }
}

/// One command's result, as text and as JSON.
struct Output {
    text: String,
    json: Value,
}

async fn execute(
    cmd: &JournalCommand,
    cfg: &MasterConfig,
    err: &mut dyn Write,
) -> Result<Output, ClientError> {
    let client = MasterClient::from_config(cfg)?;
    match cmd {
        JournalCommand::Checkpoint { .. } => checkpoint(&client, err).await,
        JournalCommand::Quorum { command } => match command {
            QuorumCommand::Info { .. } => {
                let quorum = client.quorum_info().await?;
                Ok(quorum_output(&quorum, &cfg.rpc_credentials()).await)
            }
            QuorumCommand::Elect { address, .. } => {
                check_address(address, true)?;
                let r = client.transfer_leadership(address).await?;
                Ok(Output {
                    text: format!(
                        "Primacy moved to {} (epoch {}) in {} ms",
                        r.primary_address, r.epoch, r.elapsed_ms
                    ),
                    json: json!({
                        "primary_address": r.primary_address,
                        "epoch": r.epoch,
                        "elapsed_ms": r.elapsed_ms,
                    }),
                })
            }
            QuorumCommand::Add { address, .. } => {
                check_address(address, false)?;
                // Adding a voter again is accepted and changes nothing; say
                // so rather than claim an addition.
                let already = client.quorum_info().await.is_ok_and(|q| {
                    q.members
                        .iter()
                        .any(|m| m.address == address.trim() && m.role == "VOTER")
                });
                let quorum = client.add_master(address).await?;
                let mut o = quorum_output(&quorum, &cfg.rpc_credentials()).await;
                let head = if already {
                    format!("{address} is already a voter: nothing changed")
                } else {
                    format!("Added {address}: it caught up and votes")
                };
                o.text = format!("{head}\n{}", o.text);
                if let Some(map) = o.json.as_object_mut() {
                    map.insert("changed".into(), json!(!already));
                }
                Ok(o)
            }
            QuorumCommand::Remove { address, .. } => {
                check_address(address, true)?;
                let quorum = client.remove_master(address).await?;
                let mut o = quorum_output(&quorum, &cfg.rpc_credentials()).await;
                o.text = format!("Removed {address}\n{}", o.text);
                Ok(o)
            }
        },
    }
}

/// Refuses what cannot be an address (or, when `ids` is true, a member id)
/// before anything is asked: the server's own check
/// ([`address_problem`](crate::rpc::journal_svc::address_problem)).
fn check_address(address: &str, ids: bool) -> Result<(), ClientError> {
    match crate::rpc::journal_svc::address_problem(address, ids) {
        None => Ok(()),
        Some(why) => Err(ClientError::InvalidArgument(format!(
            "--address: {why} (a master's embedded journal address or RPC address)"
        ))),
    }
}

/// UFS + ZooKeeper: a standby writes the checkpoint (the primary would
/// pause for it); otherwise, or when no standby answers, the primary.
async fn checkpoint(client: &MasterClient, err: &mut dyn Write) -> Result<Output, ClientError> {
    let quorum = client.quorum_info().await?;
    let mut response = None;
    if quorum.backend == "UFS" && quorum.kind == "election" {
        for m in quorum.members.iter().filter(|m| !m.is_leader) {
            let addr = if m.rpc_address.is_empty() {
                &m.address
            } else {
                &m.rpc_address
            };
            match client.checkpoint_on(addr).await {
                Ok(r) => {
                    response = Some(r);
                    break;
                }
                Err(e) => {
                    let _ = writeln!(
                        err,
                        "standby {addr} did not write the checkpoint ({e}); trying the next"
                    );
                }
            }
        }
    }
    let r = match response {
        Some(r) => r,
        None => client.checkpoint().await?,
    };
    Ok(Output {
        text: format!(
            "Checkpoint written by {} ({}): it covers every journal entry before seq {}",
            r.address, r.role, r.seq
        ),
        json: json!({ "seq": r.seq, "address": r.address, "role": r.role }),
    })
}

/// The quorum as text and JSON, each member's own applied index asked of
/// it directly (concurrently, each bounded).
async fn quorum_output(q: &QuorumInfo, auth: &journal_raft::auth::ClientAuth) -> Output {
    let asks = q.members.iter().map(|m| async move {
        if m.rpc_address.is_empty() {
            return None;
        }
        crate::rpc::handoff::ask_master(auth, &m.rpc_address)
            .await
            .ok()
            .and_then(|i| i.journal.map(|j| j.last_applied))
    });
    let own: Vec<Option<u64>> = futures::future::join_all(asks).await;
    render_quorum(q, &own)
}

/// The quorum as text and JSON, with `own[i]` the applied index member `i`
/// answered itself (`None`: it did not answer). Lags are taken from the
/// primary's own answer of the same round when it has one: the
/// `leader_applied` of `q` was read before the members were asked, and
/// with writes flowing a lag against it would hide a member that is
/// behind (and show members ahead of their primary).
fn render_quorum(q: &QuorumInfo, own: &[Option<u64>]) -> Output {
    let leader_applied = q
        .members
        .iter()
        .zip(own)
        .filter(|(m, _)| m.is_leader)
        .filter_map(|(_, own)| *own)
        .fold(q.leader_applied, u64::max);
    let mut rows = Vec::new();
    let mut members = Vec::new();
    for (m, own) in q.members.iter().zip(own.iter().copied()) {
        let matched = m.has_applied.then_some(m.applied);
        let applied = own.or(matched);
        let lag = applied.map(|a| leader_applied.saturating_sub(a));
        let reachable = !m.rpc_address.is_empty() && own.is_some();
        members.push(json!({
            "id": m.id,
            "address": m.address,
            "rpc_address": m.rpc_address,
            "role": m.role,
            "leader": m.is_leader,
            "applied": applied,
            "matched": matched,
            "lag": lag,
            "reachable": reachable,
        }));
        let show = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
        rows.push(format!(
            "{:<22} {:<22} {:<22} {:<10} {:<6} {:>10} {:>8} {}",
            m.id,
            m.address,
            if m.rpc_address.is_empty() {
                "-"
            } else {
                &m.rpc_address
            },
            m.role,
            if m.is_leader { "yes" } else { "no" },
            show(applied),
            show(lag),
            if reachable { "yes" } else { "NO" },
        ));
    }
    let header = format!(
        "Journal: {} ({}), cluster {}, primary {} at epoch {}, applied seq {}\n{:<22} {:<22} {:<22} {:<10} {:<6} {:>10} {:>8} {}",
        q.backend,
        q.kind,
        if q.cluster_id.is_empty() {
            "?"
        } else {
            &q.cluster_id
        },
        q.primary_address,
        q.epoch,
        leader_applied,
        "ID",
        "ADDRESS",
        "RPC ADDRESS",
        "ROLE",
        "LEADER",
        "APPLIED",
        "LAG",
        "REACHABLE"
    );
    Output {
        text: format!("{header}\n{}", rows.join("\n")),
        json: json!({
            "backend": q.backend,
            "kind": q.kind,
            "cluster_id": q.cluster_id,
            "epoch": q.epoch,
            "primary_address": q.primary_address,
            "leader_applied": leader_applied,
            "members": members,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::rpc::QuorumMember;

    fn member(id: &str, leader: bool, matched: Option<u64>) -> QuorumMember {
        QuorumMember {
            id: id.into(),
            address: format!("h{id}:19200"),
            rpc_address: format!("h{id}:19998"),
            role: "VOTER".into(),
            is_leader: leader,
            has_applied: matched.is_some(),
            applied: matched.unwrap_or_default(),
        }
    }

    #[test]
    fn lags_are_measured_against_the_primary_of_the_same_round() {
        let q = QuorumInfo {
            backend: "EMBEDDED".into(),
            kind: "raft".into(),
            epoch: 3,
            leader_applied: 200,
            primary_address: "h1:19998".into(),
            members: vec![
                member("1", true, Some(200)),
                member("2", false, Some(190)),
                member("3", false, Some(150)),
            ],
            cluster_id: "raft-1".into(),
        };
        // Writes went on between GetQuorumInfo and the members' answers:
        // the primary is at 260 now, member 2 at 250; member 3 is down.
        let out = render_quorum(&q, &[Some(260), Some(250), None]);
        let members = out.json["members"].as_array().expect("members");
        assert_eq!(out.json["leader_applied"], 260);
        assert_eq!(members[0]["lag"], 0);
        assert_eq!(members[1]["lag"], 10, "{}", members[1]);
        assert_eq!(members[2]["applied"], 150);
        assert_eq!(members[2]["lag"], 110);
        assert_eq!(members[2]["reachable"], false);
        // The primary did not answer: its GetQuorumInfo view stands.
        let out = render_quorum(&q, &[None, Some(195), None]);
        assert_eq!(out.json["leader_applied"], 200);
        assert_eq!(out.json["members"][1]["lag"], 5);
    }

    #[test]
    fn addresses_are_checked_locally() {
        assert!(check_address("h1:19200", false).is_ok());
        assert!(check_address("4242", true).is_ok());
        for bad in ["", "h1", "h1:x", ":1", "h 1:2", "h1:0", "0"] {
            assert!(
                matches!(
                    check_address(bad, true),
                    Err(ClientError::InvalidArgument(_))
                ),
                "{bad:?}"
            );
        }
        // `quorum add` takes the new member's address only: it has no id
        // the group knows yet.
        assert!(matches!(
            check_address("4242", false),
            Err(ClientError::InvalidArgument(_))
        ));
    }
}
