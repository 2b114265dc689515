//! The campaign's clients: concurrent creates, renames, deletes and stats
//! on a few paths in one directory, each recorded with its invocation and
//! completion time and what it returned. A call that ends without a
//! definite answer (retries exhausted, a timeout, an unexpected error) is
//! recorded with an unknown outcome.

use std::sync::Arc;
use std::time::{Duration, Instant};

use master::client::{ClientError, MasterClient};
use master::meta::ErrorCode;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::sync::Mutex;

use crate::linearizability::namespace::{NsInput, NsOutput};
use crate::linearizability::Operation;

/// The directory the workload's files live in (created before the load).
pub const DIR: &str = "/chaos";
/// How many file paths the clients contend on.
pub const PATHS: usize = 4;

/// Path `i`.
pub fn path(i: u8) -> String {
    format!("{DIR}/f{i}")
}

/// One recorded operation plus why its outcome is unknown, if it is.
pub type Op = Operation<NsInput, NsOutput>;

/// The shared recorder of one run.
pub struct Recorder {
    start: Instant,
    history: Mutex<Vec<(Op, Option<String>)>>,
}

impl Recorder {
    /// A recorder whose clock starts now.
    pub fn new() -> Arc<Recorder> {
        Arc::new(Recorder {
            start: Instant::now(),
            history: Mutex::new(Vec::new()),
        })
    }

    fn now(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Runs `input` through `client`, bounded by `bound`, and records it.
    pub async fn run(
        &self,
        who: usize,
        client: &MasterClient,
        input: NsInput,
        bound: Duration,
    ) -> Result<NsOutput, String> {
        let call = self.now();
        let result = tokio::time::timeout(bound, execute(client, &input)).await;
        let ret = self.now();
        let outcome = match result {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {bound:?}")),
        };
        let entry = match &outcome {
            Ok(out) => (
                Operation {
                    client: who,
                    input,
                    call,
                    ret: Some(ret),
                    output: Some(out.clone()),
                },
                None,
            ),
            Err(why) => (
                Operation {
                    client: who,
                    input,
                    call,
                    ret: None,
                    output: None,
                },
                Some(why.clone()),
            ),
        };
        if let Ok(mut h) = self.history.lock() {
            h.push(entry);
        }
        outcome
    }

    /// The history so far (and clears it).
    pub fn take(&self) -> Vec<(Op, Option<String>)> {
        self.history
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
}

async fn execute(client: &MasterClient, input: &NsInput) -> Result<NsOutput, String> {
    let answer = match *input {
        NsInput::Create(p) => client
            .create_file(&path(p))
            .await
            .map(|i| NsOutput::Ok(i.id)),
        NsInput::Delete(p) => client
            .delete(&path(p), false)
            .await
            .map(|_| NsOutput::Deleted),
        NsInput::Rename(a, b) => client
            .rename(&path(a), &path(b))
            .await
            .map(|i| NsOutput::Ok(i.id)),
        NsInput::Stat(p) => client
            .get_status(&path(p))
            .await
            .map(|i| NsOutput::Ok(i.id)),
    };
    match answer {
        Ok(out) => Ok(out),
        Err(ClientError::Refused(e)) if e.code == ErrorCode::NotFound => Ok(NsOutput::NotFound),
        Err(ClientError::Refused(e)) if e.code == ErrorCode::AlreadyExists => Ok(NsOutput::Exists),
        Err(e) => Err(e.to_string()),
    }
}

/// A random operation of the workload (stats a quarter of the time).
pub fn random_op(rng: &mut StdRng) -> NsInput {
    let p = rng.random_range(0..PATHS as u8);
    match rng.random_range(0..4) {
        0 => NsInput::Create(p),
        1 => NsInput::Delete(p),
        2 => NsInput::Rename(p, (p + rng.random_range(1..PATHS as u8)) % PATHS as u8),
        _ => NsInput::Stat(p),
    }
}

/// One client's loop until `until`: its own `MasterClient` (own client
/// id), random operations with a short random think time.
pub async fn client_loop(
    who: usize,
    seed: u64,
    client: MasterClient,
    rec: Arc<Recorder>,
    until: Instant,
    bound: Duration,
) {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(31).wrapping_add(who as u64));
    while Instant::now() < until {
        let op = random_op(&mut rng);
        let _ = rec.run(who, &client, op, bound).await;
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..30))).await;
    }
}

/// One history line (history.jsonl).
pub fn to_json(op: &Op, why: Option<&str>) -> Value {
    let input = match op.input {
        NsInput::Create(p) => json!({"op": "create", "path": path(p)}),
        NsInput::Delete(p) => json!({"op": "delete", "path": path(p)}),
        NsInput::Rename(a, b) => json!({"op": "rename", "src": path(a), "dst": path(b)}),
        NsInput::Stat(p) => json!({"op": "stat", "path": path(p)}),
    };
    let output = match &op.output {
        None => json!({"unknown": why.unwrap_or("")}),
        Some(NsOutput::Ok(id)) => json!({"ok": id}),
        Some(NsOutput::Deleted) => json!("deleted"),
        Some(NsOutput::NotFound) => json!("not found"),
        Some(NsOutput::Exists) => json!("exists"),
    };
    json!({"client": op.client, "call_ns": op.call, "ret_ns": op.ret, "input": input, "output": output})
}
