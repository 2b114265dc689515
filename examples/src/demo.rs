//! The embedder's code: three members of one group in one process, a
//! failover, and reads before and after it. `embed_kv` and `embed_kv_zk`
//! both call [`run`]; only the configuration they pass differs.
//!
//! In production each member is its own process on its own machine and
//! runs the same few calls: `format` (once, for a new deployment), `open`,
//! then serve while primary.

use std::time::{Duration, Instant};

use master::embed::*;

use crate::kv::{Answer, Command, Kv};

/// How long the demo waits for anything (an election, a standby catching
/// up) before it gives up, unless told otherwise; generous for slow
/// machines, never reached normally.
pub const WAIT: Duration = Duration::from_secs(60);

/// What went wrong in the demo.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A journal or configuration error, with what the demo was doing.
    #[error("{doing}: {source}")]
    Journal {
        /// The step.
        doing: String,
        /// The journal's error.
        #[source]
        source: JournalError,
    },
    /// The replicated state was not what the steps before guarantee.
    #[error("unexpected state: {0}")]
    Unexpected(String),
}

fn step(doing: impl Into<String>) -> impl FnOnce(JournalError) -> DemoError {
    let doing = doing.into();
    move |source| DemoError::Journal { doing, source }
}

/// Runs the demo on one configuration per member (`m1`, `m2`, ...),
/// printing what happens: who is primary, writes and reads, the primary
/// stopping, the new primary and what it reads. Any wait (an election, a
/// standby catching up) gives up after `wait`. Every member is shut down
/// before this returns, also on error.
pub async fn run(configs: &[MasterConfig], wait: Duration) -> Result<(), DemoError> {
    let mut members = Vec::new();
    let result = demo(configs, wait, &mut members).await;
    for member in &members {
        member.shutdown().await;
    }
    result
}

async fn demo(
    configs: &[MasterConfig],
    wait: Duration,
    members: &mut Vec<Replicated<Kv>>,
) -> Result<(), DemoError> {
    let name = |i: usize| format!("m{}", i + 1);
    if let Some(first) = configs.first() {
        let backend = first
            .backend()
            .map_err(|e| step("reading the configuration")(e.into()))?;
        println!("backend: {backend}");
    }

    // A new deployment is formatted once. `format` leaves a journal that is
    // already formatted alone, so every member may call it: with a shared
    // UFS folder the first call formats and the others find it done; with
    // the embedded journal each member formats its own directory.
    for (i, config) in configs.iter().enumerate() {
        format(config)
            .await
            .map_err(step(format!("formatting {}", name(i))))?;
    }

    // Each member gets its own fresh copy of the state machine; the journal
    // fills it (snapshot + replay) and keeps it in step with the primary.
    for (i, config) in configs.iter().enumerate() {
        let member = Replicated::open(config, Kv::default())
            .await
            .map_err(step(format!("opening {}", name(i))))?;
        members.push(member);
    }
    println!("opened {} members; waiting for a primary", members.len());

    let (primary, epoch) = wait_for_any_primary(members.iter().map(Replicated::role), wait)
        .await
        .map_err(step("waiting for a primary"))?;
    println!("primary: {} (epoch {epoch})", name(primary));

    // Proposals go to the primary; the answer is the machine's output for
    // this entry, returned once the entry is durable on a majority (Raft)
    // or in the shared folder (UFS).
    let p = &members[primary];
    for (key, value) in [("color", "blue"), ("shape", "circle")] {
        let output = p
            .propose(Command::set(key, value).encode())
            .await
            .map_err(step(format!("setting {key}")))?;
        println!(
            "{}: set {key}={value} (previous: {})",
            name(primary),
            shown(Answer::decode(&output))
        );
    }
    // `read` passes a read barrier first, so it sees every acknowledged write.
    let color = p
        .read(|kv| kv.get("color").map(str::to_string))
        .await
        .map_err(step("reading color"))?;
    println!(
        "{} reads color={}",
        name(primary),
        color.as_deref().unwrap_or("-")
    );

    // A standby refuses writes and names the primary, so a client can go there.
    let standby = (primary + 1) % members.len();
    if members.len() > 1 {
        match members[standby]
            .propose(Command::set("x", "y").encode())
            .await
        {
            Err(e @ JournalError::NotPrimary { .. }) => {
                println!("{} (standby) refuses a write: {e}", name(standby))
            }
            other => {
                return Err(DemoError::Unexpected(format!(
                    "a standby answered a proposal with {other:?}"
                )))
            }
        }
    }

    // The failover: the primary stops (as when its process exits cleanly;
    // a crash is the same for the others, only detected after the
    // election or session timeout). Another member takes over once it has
    // applied everything the old primary acknowledged.
    println!("stopping the primary {}", name(primary));
    let stopped = Instant::now();
    members[primary].shutdown().await;
    let (next, epoch) = wait_for_any_primary(members.iter().map(Replicated::role), wait)
        .await
        .map_err(step("waiting for a new primary"))?;
    println!(
        "new primary: {} (epoch {epoch}), {} ms after the stop",
        name(next),
        stopped.elapsed().as_millis()
    );

    let n = &members[next];
    let (color, shape) = n
        .read(|kv| {
            (
                kv.get("color").map(str::to_string),
                kv.get("shape").map(str::to_string),
            )
        })
        .await
        .map_err(step("reading after the failover"))?;
    println!(
        "{} reads after the failover: color={} shape={}",
        name(next),
        color.as_deref().unwrap_or("-"),
        shape.as_deref().unwrap_or("-")
    );
    if color.as_deref() != Some("blue") || shape.as_deref() != Some("circle") {
        return Err(DemoError::Unexpected(
            "the new primary lost an acknowledged write".into(),
        ));
    }
    let output = n
        .propose(Command::set("color", "green").encode())
        .await
        .map_err(step("setting color on the new primary"))?;
    println!(
        "{}: set color=green (previous: {})",
        name(next),
        shown(Answer::decode(&output))
    );

    // Standbys apply the same entries in the same order; `read_local` reads
    // a member's own copy without a barrier (it may lag a little).
    for (i, member) in members.iter().enumerate() {
        if i == primary || i == next {
            continue;
        }
        let deadline = Instant::now() + wait;
        while member.read_local(|kv| kv.get("color") != Some("green")) {
            if Instant::now() > deadline {
                return Err(DemoError::Unexpected(format!(
                    "standby {} did not apply color=green within {wait:?}",
                    name(i)
                )));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let keys = member.read_local(Kv::len);
        println!(
            "{} (standby) applied it too: color=green, {keys} keys",
            name(i)
        );
    }
    println!("done");
    Ok(())
}

fn shown(answer: Answer) -> String {
    match answer {
        Answer::Previous(Some(v)) => v,
        Answer::Previous(None) => "none".into(),
        Answer::Refused => "refused".into(),
    }
}
