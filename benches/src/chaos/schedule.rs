//! The fault schedule of one run, drawn from its seed alone, so the replay
//! command (the same seed) injects the same faults at the same offsets.
//! Targets named "primary" are resolved when the fault is injected.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use super::Deployment;

/// Which master a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Whoever is primary when the fault starts.
    Primary,
    /// Master `i` (0-based).
    Member(usize),
}

/// One fault; every one is healed when its hold time ends.
// Each variant's doc names what its fields hold.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// `kill -9`, restart after `down_ms`.
    Kill { target: Target, down_ms: u64 },
    /// SIGSTOP for `ms` (longer than the election timeout / ZooKeeper
    /// session), then SIGCONT.
    Pause { target: Target, ms: u64 },
    /// Cut every peer link to and from the master (embedded) for `ms`.
    Isolate { target: Target, ms: u64 },
    /// Cut the links between two masters, both ways (embedded).
    CutLink { a: usize, b: usize, ms: u64 },
    /// Cut the master from ZooKeeper for `ms` (ufs-zk); held past the
    /// session timeout this expires its session.
    ZkPartition { target: Target, ms: u64 },
    /// Kill ZooKeeper, restart it after `down_ms` (ufs-zk).
    ZkRestart { down_ms: u64 },
    /// Restart the master with failpoint `name` set to `action`, hold
    /// `ms`, then restart it without (failpoints builds only).
    Failpoint {
        target: Target,
        name: String,
        action: String,
        ms: u64,
    },
}

impl Fault {
    /// The kind, for the campaign's table.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Kill { .. } => "kill -9",
            Fault::Pause { .. } => "SIGSTOP",
            Fault::Isolate { .. } => "isolate",
            Fault::CutLink { .. } => "cut link",
            Fault::ZkPartition { .. } => "zk partition",
            Fault::ZkRestart { .. } => "zk restart",
            Fault::Failpoint { .. } => "failpoint",
        }
    }

    /// The fault as JSON (schedule.json).
    pub fn to_json(&self) -> Value {
        let t = |t: &Target| match t {
            Target::Primary => json!("primary"),
            Target::Member(i) => json!(i),
        };
        match self {
            Fault::Kill { target, down_ms } => {
                json!({"kind": self.kind(), "target": t(target), "down_ms": down_ms})
            }
            Fault::Pause { target, ms }
            | Fault::Isolate { target, ms }
            | Fault::ZkPartition { target, ms } => {
                json!({"kind": self.kind(), "target": t(target), "ms": ms})
            }
            Fault::CutLink { a, b, ms } => json!({"kind": self.kind(), "a": a, "b": b, "ms": ms}),
            Fault::ZkRestart { down_ms } => json!({"kind": self.kind(), "down_ms": down_ms}),
            Fault::Failpoint {
                target,
                name,
                action,
                ms,
            } => {
                json!({"kind": self.kind(), "target": t(target), "name": name, "action": action, "ms": ms})
            }
        }
    }
}

/// A fault and when it starts, in milliseconds after the load started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Start offset.
    pub at_ms: u64,
    /// The fault.
    pub fault: Fault,
}

/// The failpoints a failpoints build declares, with what a campaign does
/// at each: an I/O error, or a crash of the process.
pub const FAILPOINTS: &[&str] = &[
    "ufs-chunk-write-before",
    "ufs-chunk-write-after",
    "ufs-checkpoint-publish-before",
    "ufs-checkpoint-publish-after",
    "raft-engine-write-before",
    "raft-engine-write-after",
    "raft-snapshot-write-before",
    "raft-snapshot-write-after",
    "raft-snapshot-install-before",
    "raft-snapshot-install-after",
];

/// Draws the faults of a run of `load_ms` on `masters` masters: one after
/// another (each healed before the next), the primary hit more often.
/// `election_ms` is how long a pause or a partition must last to make the
/// others elect (election timeout, or ZooKeeper session timeout).
pub fn draw(
    seed: u64,
    deployment: Deployment,
    masters: usize,
    load_ms: u64,
    election_ms: u64,
    failpoints: bool,
) -> Vec<Step> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed_fa17);
    let mut steps = Vec::new();
    let mut at = rng.random_range(200..800);
    while at < load_ms {
        let target = if rng.random_bool(0.6) {
            Target::Primary
        } else {
            Target::Member(rng.random_range(0..masters))
        };
        let long = election_ms + rng.random_range(500..2000);
        let short = rng.random_range(200..election_ms.max(300));
        let roll = rng.random_range(0..100);
        let journal = match deployment {
            Deployment::Embedded => "raft-",
            Deployment::UfsZk => "ufs-",
        };
        // With failpoints, a quarter of the faults are storage faults.
        let fault = if failpoints && roll % 4 == 0 {
            failpoint(&mut rng, target, journal)
        } else {
            match deployment {
                Deployment::Embedded => match roll {
                    0..35 => Fault::Kill {
                        target,
                        down_ms: rng.random_range(100..1500),
                    },
                    35..55 => Fault::Pause { target, ms: long },
                    55..75 => Fault::Isolate {
                        target,
                        ms: if rng.random_bool(0.5) { long } else { short },
                    },
                    75..90 => {
                        let a = rng.random_range(0..masters);
                        let b = (a + rng.random_range(1..masters)) % masters;
                        Fault::CutLink { a, b, ms: long }
                    }
                    _ => Fault::Kill {
                        target,
                        down_ms: rng.random_range(100..1500),
                    },
                },
                Deployment::UfsZk => match roll {
                    0..35 => Fault::Kill {
                        target,
                        down_ms: rng.random_range(100..1500),
                    },
                    35..55 => Fault::Pause { target, ms: long },
                    55..80 => Fault::ZkPartition {
                        target,
                        ms: if rng.random_bool(0.6) { long } else { short },
                    },
                    80..90 => Fault::ZkRestart {
                        down_ms: rng.random_range(200..1500),
                    },
                    _ => Fault::Kill {
                        target,
                        down_ms: rng.random_range(100..1500),
                    },
                },
            }
        };
        let hold = match &fault {
            Fault::Kill { down_ms: d, .. } | Fault::ZkRestart { down_ms: d } => *d,
            Fault::Pause { ms, .. }
            | Fault::Isolate { ms, .. }
            | Fault::CutLink { ms, .. }
            | Fault::ZkPartition { ms, .. }
            | Fault::Failpoint { ms, .. } => *ms,
        };
        steps.push(Step { at_ms: at, fault });
        at += hold + rng.random_range(300..1500);
    }
    steps
}

fn failpoint(rng: &mut StdRng, target: Target, journal: &str) -> Fault {
    let names: Vec<&str> = FAILPOINTS
        .iter()
        .copied()
        .filter(|n| n.starts_with(journal))
        .collect();
    let name = names[rng.random_range(0..names.len())].to_string();
    let action = if rng.random_bool(0.5) {
        "return"
    } else {
        "return(crash)"
    }
    .to_string();
    Fault::Failpoint {
        target,
        name,
        action,
        ms: rng.random_range(1000..4000),
    }
}

/// The schedule as a JSON array (schedule.json).
pub fn to_json(steps: &[Step]) -> Value {
    Value::Array(
        steps
            .iter()
            .map(|s| {
                let mut v = s.fault.to_json();
                v["at_ms"] = json!(s.at_ms);
                v
            })
            .collect(),
    )
}
