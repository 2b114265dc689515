//! The state-machine check passes correct machines and names the broken
//! promise of each buggy one: non-deterministic apply, a snapshot that
//! misses state, a restore that merges, a panic on odd input, a frozen copy
//! that shares the live state, a snapshot that does not restore.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use journal_core::testkit::{check_state_machine, check_state_machine_by, TestMachine};
use journal_core::{Bytes, FrozenState, StateMachine};

/// What a [`Kv`] does wrong, if anything.
#[derive(Clone, Copy, Default, PartialEq)]
enum Bug {
    #[default]
    None,
    /// The output carries a process-wide counter: two machines answer differently.
    Nondeterministic,
    /// The number of applied entries decides outputs but is not in the snapshot.
    SnapshotMissesCounter,
    /// `restore` inserts into the current map instead of replacing it.
    RestoreMerges,
    /// `apply` indexes into the entry without checking its shape.
    PanicsOnGarbage,
    /// `freeze` hands out the live map behind a shared lock.
    FreezeSharesState,
    /// `restore` ignores what it reads.
    RestoreIgnoresInput,
}

static GLOBAL: AtomicU64 = AtomicU64::new(0);

/// `key=value` entries into a sorted map; the output is the previous value
/// (or `!bad` for an entry without `=`) followed by how many entries were applied.
#[derive(Default)]
struct Kv {
    map: Arc<Mutex<BTreeMap<String, String>>>,
    applied: u64,
    bug: Bug,
}

impl Kv {
    fn with(bug: Bug) -> Kv {
        Kv {
            bug,
            ..Kv::default()
        }
    }
}

impl StateMachine for Kv {
    fn apply(&mut self, _seq: u64, entry: &[u8]) -> Bytes {
        self.applied += 1;
        let text = String::from_utf8_lossy(entry);
        let previous = match text.split_once('=') {
            Some((k, v)) => self
                .map
                .lock()
                .unwrap()
                .insert(k.to_string(), v.to_string())
                .unwrap_or_default(),
            None if self.bug == Bug::PanicsOnGarbage => panic!("no '=' in {text:?}"),
            None => "!bad".to_string(),
        };
        let mut out = format!("{previous}#{}", self.applied);
        if self.bug == Bug::Nondeterministic {
            out.push_str(&format!("@{}", GLOBAL.fetch_add(1, Ordering::Relaxed)));
        }
        Bytes::from(out)
    }

    fn snapshot(&self, out: &mut dyn Write) -> std::io::Result<()> {
        write_state(&self.map.lock().unwrap(), self.applied, self.bug, out)
    }

    fn restore(&mut self, input: &mut dyn Read) -> std::io::Result<()> {
        let mut text = String::new();
        input.read_to_string(&mut text)?;
        if self.bug == Bug::RestoreIgnoresInput {
            return Ok(());
        }
        let mut lines = text.lines();
        let applied = lines.next().unwrap_or("0").parse().map_err(|e| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, format!("counter: {e}"))
        })?;
        if self.bug != Bug::SnapshotMissesCounter {
            self.applied = applied;
        }
        let mut map = self.map.lock().unwrap();
        if self.bug != Bug::RestoreMerges {
            map.clear();
        }
        for line in lines {
            if let Some((k, v)) = line.split_once('=') {
                map.insert(k.to_string(), v.to_string());
            }
        }
        Ok(())
    }

    fn freeze(&self) -> Option<Box<dyn FrozenState>> {
        let map = if self.bug == Bug::FreezeSharesState {
            self.map.clone()
        } else {
            Arc::new(Mutex::new(self.map.lock().unwrap().clone()))
        };
        Some(Box::new(Frozen {
            map,
            applied: self.applied,
            bug: self.bug,
        }))
    }
}

struct Frozen {
    map: Arc<Mutex<BTreeMap<String, String>>>,
    applied: u64,
    bug: Bug,
}

impl FrozenState for Frozen {
    fn write_to(&self, out: &mut dyn Write) -> std::io::Result<()> {
        write_state(&self.map.lock().unwrap(), self.applied, self.bug, out)
    }
}

fn write_state(
    map: &BTreeMap<String, String>,
    applied: u64,
    bug: Bug,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let applied = if bug == Bug::SnapshotMissesCounter {
        0
    } else {
        applied
    };
    writeln!(out, "{applied}")?;
    for (k, v) in map {
        writeln!(out, "{k}={v}")?;
    }
    Ok(())
}

fn entries() -> Vec<Bytes> {
    [
        "a=1",
        "b=2",
        "a=3",
        "c=4",
        "no equals sign",
        "b=5",
        "d=6",
        "a=7",
    ]
    .iter()
    .map(|e| Bytes::from(e.to_string()))
    .collect()
}

fn check(bug: Bug) -> Result<(), journal_core::testkit::MachineCheckError> {
    let result = check_state_machine(move || Kv::with(bug), &entries());
    if let Err(e) = &result {
        // What an embedder would read (shown with --nocapture).
        println!("{e}");
    }
    result
}

#[test]
fn a_correct_machine_passes() {
    check(Bug::None).unwrap();
}

#[test]
fn the_journal_test_machine_passes() {
    check_state_machine(TestMachine::new, &entries()).unwrap();
}

#[test]
fn non_deterministic_apply_is_caught() {
    let e = check(Bug::Nondeterministic).unwrap_err();
    assert_eq!(e.check, "deterministic apply", "{e}");
    assert!(
        e.detail.contains("seq 1") && e.detail.contains("\"a=1\""),
        "{e}"
    );
}

#[test]
fn a_snapshot_that_misses_state_is_caught() {
    let e = check(Bug::SnapshotMissesCounter).unwrap_err();
    assert_eq!(e.check, "restore then apply", "{e}");
    assert!(e.detail.contains("misses state"), "{e}");
}

#[test]
fn a_restore_that_merges_is_caught() {
    let e = check(Bug::RestoreMerges).unwrap_err();
    assert_eq!(e.check, "restore replaces", "{e}");
}

#[test]
fn a_panic_on_odd_input_is_caught() {
    let e = check(Bug::PanicsOnGarbage).unwrap_err();
    assert_eq!(e.check, "no panic", "{e}");
    assert!(e.detail.contains("apply panicked at seq"), "{e}");
    assert!(
        e.detail.contains("no '='"),
        "the panic message is kept: {e}"
    );
}

#[test]
fn a_frozen_copy_sharing_live_state_is_caught() {
    let e = check(Bug::FreezeSharesState).unwrap_err();
    assert_eq!(e.check, "freeze", "{e}");
}

#[test]
fn a_restore_that_ignores_its_input_is_caught() {
    let e = check(Bug::RestoreIgnoresInput).unwrap_err();
    assert_eq!(e.check, "snapshot then restore", "{e}");
    assert!(e
        .to_string()
        .starts_with("state machine check `snapshot then restore` failed: "));
}

#[test]
fn too_few_entries_are_refused() {
    let e = check_state_machine(|| Kv::with(Bug::None), &entries()[..1]).unwrap_err();
    assert_eq!(e.check, "input", "{e}");
}

/// A machine whose snapshot follows `HashMap` order: compared through a
/// sorted view, it passes.
#[derive(Default)]
struct HashKv(HashMap<String, String>);

impl StateMachine for HashKv {
    fn apply(&mut self, _seq: u64, entry: &[u8]) -> Bytes {
        let text = String::from_utf8_lossy(entry);
        match text.split_once('=') {
            Some((k, v)) => Bytes::from(
                self.0
                    .insert(k.to_string(), v.to_string())
                    .unwrap_or_default(),
            ),
            None => Bytes::from_static(b"!bad"),
        }
    }

    fn snapshot(&self, out: &mut dyn Write) -> std::io::Result<()> {
        for (k, v) in &self.0 {
            writeln!(out, "{k}={v}")?;
        }
        Ok(())
    }

    fn restore(&mut self, input: &mut dyn Read) -> std::io::Result<()> {
        let mut text = String::new();
        input.read_to_string(&mut text)?;
        self.0 = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Ok(())
    }
}

#[test]
fn a_non_canonical_snapshot_passes_with_a_sorted_view() {
    check_state_machine_by(HashKv::default, &entries(), |m: &HashKv| {
        Ok(m.0
            .iter()
            .collect::<BTreeMap<_, _>>()
            .into_iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<Vec<_>>())
    })
    .unwrap();
}
