//! The conformance check for an embedder's own state machine: the promises
//! [`StateMachine`] asks for, tested on the machine alone, without a journal.
//!
//! A journal replays the same entries on every member and restores members
//! from snapshots taken at arbitrary points; a machine that breaks one of
//! these promises diverges silently in production, so each check names the
//! promise, the position and the difference.

use std::fmt::Debug;
use std::panic::{catch_unwind, AssertUnwindSafe};

use bytes::Bytes;

use crate::state_machine::StateMachine;

/// What [`check_state_machine`] found wrong: the promise that was broken
/// (`check`) and how (`detail`, with the sequence number or entry involved).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("state machine check `{check}` failed: {detail}")]
pub struct MachineCheckError {
    /// The promise: `input`, `no panic`, `reading the state`,
    /// `deterministic apply`, `snapshot then restore`, `restore then apply`,
    /// `restore replaces` or `freeze`.
    pub check: &'static str,
    /// What differed, where.
    pub detail: String,
}

fn fail(check: &'static str, detail: impl Into<String>) -> MachineCheckError {
    MachineCheckError {
        check,
        detail: detail.into(),
    }
}

/// A machine's whole snapshot, compared byte for byte; shown as its length,
/// checksum and first bytes so a failure message stays short.
#[derive(Clone, PartialEq, Eq)]
pub struct SnapshotBytes(pub Vec<u8>);

impl Debug for SnapshotBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} snapshot bytes (crc32c {:08x}, starting {})",
            self.0.len(),
            crc32c::crc32c(&self.0),
            preview(&self.0[..self.0.len().min(16)])
        )
    }
}

/// Checks `new`'s machines against the promises of [`StateMachine`], driving
/// them with `entries` (at least 2; include every kind of entry the machine
/// knows, and some it refuses). States are compared by their snapshot bytes,
/// so the snapshot must be canonical: two machines holding the same state
/// write the same bytes (iterate sorted maps, not `HashMap`s). A machine
/// whose snapshot order is not canonical uses [`check_state_machine_by`].
///
/// Entries are applied at strictly increasing sequence numbers with gaps
/// (1, 2, 3, 5, 6, 7, 9, ...), as journals deliver them. The suite adds
/// three entries of its own in the middle: an empty one, 64 bytes of `0xFF`,
/// and the first entry cut in half; the machine must answer them (with an
/// error output, typically) without panicking and deterministically.
///
/// The checks, in order:
/// - **deterministic apply**: two fresh machines fed the same entries give
///   the same output for every entry and end in the same state;
/// - **snapshot then restore**: a fresh machine restored from a snapshot of
///   the final state is in that state;
/// - **restore then apply**: a machine restored from a snapshot taken half
///   way, then fed the second half, gives the same outputs and ends in the
///   same state as the machine that applied everything (nothing that
///   decides later outputs is missing from the snapshot);
/// - **restore replaces**: a machine that applied every entry, restored
///   from the half-way snapshot, is in the half-way state (no leftovers of
///   the later entries), and restored from an empty machine's snapshot, is
///   empty again;
/// - **freeze** (when [`StateMachine::freeze`] returns a copy): the copy,
///   taken half way and written after the second half was applied to the
///   live machine, restores to the half-way state.
///
/// Every call into the machine runs under `catch_unwind`, so a panic is
/// reported as a failed check naming the call and sequence number.
pub fn check_state_machine<S, F>(new: F, entries: &[Bytes]) -> Result<(), MachineCheckError>
where
    S: StateMachine,
    F: Fn() -> S,
{
    check_state_machine_by(new, entries, |m: &S| snapshot_of(m).map(SnapshotBytes))
}

/// [`check_state_machine`], comparing states by `view` instead of by
/// snapshot bytes: for machines whose snapshot is not canonical (a
/// `HashMap` written in its iteration order), `view` returns a canonical
/// form of the state (e.g. its entries sorted). `view` returns `Err` with a
/// description when it cannot read the state.
pub fn check_state_machine_by<S, F, T, V>(
    new: F,
    entries: &[Bytes],
    view: V,
) -> Result<(), MachineCheckError>
where
    S: StateMachine,
    F: Fn() -> S,
    T: PartialEq + Debug,
    V: Fn(&S) -> Result<T, String>,
{
    if entries.len() < 2 {
        return Err(fail(
            "input",
            format!(
                "the suite needs at least 2 entries to apply, got {}",
                entries.len()
            ),
        ));
    }
    let run = Run::new(entries);
    let view = |m: &S, what: &str| -> Result<T, MachineCheckError> {
        guarded("reading the state", what, || view(m))?
            .map_err(|e| fail("reading the state", format!("{e} ({what})")))
    };

    // deterministic apply
    let mut a = new();
    let mut b = new();
    let out_a = run.apply(&mut a, 0..run.len())?;
    let out_b = run.apply(&mut b, 0..run.len())?;
    for (i, (x, y)) in out_a.iter().zip(&out_b).enumerate() {
        if x != y {
            return Err(fail(
                "deterministic apply",
                format!(
                    "two fresh machines answered the entry at seq {} ({}) differently: {} vs {}",
                    run.seq(i),
                    preview(&run.entries[i]),
                    preview(x),
                    preview(y)
                ),
            ));
        }
    }
    let full = view(&a, "after every entry")?;
    same(
        "deterministic apply",
        "two fresh machines fed the same entries end in different states",
        &full,
        &view(&b, "after every entry")?,
    )?;

    // snapshot then restore
    let mut restored = new();
    restore(
        &mut restored,
        &snapshot(&a, "the final state")?,
        "a fresh machine",
    )?;
    same(
        "snapshot then restore",
        "a fresh machine restored from a snapshot differs from the machine that wrote it",
        &full,
        &view(&restored, "after restore")?,
    )?;

    // restore then apply
    let half = run.half;
    let mut h = new();
    run.apply(&mut h, 0..half)?;
    let half_view = view(&h, "half way")?;
    let half_snapshot = snapshot(&h, "the half-way state")?;
    let mut resumed = new();
    restore(&mut resumed, &half_snapshot, "a fresh machine")?;
    let out_resumed = run.apply(&mut resumed, half..run.len())?;
    for (k, (x, y)) in out_a[half..].iter().zip(&out_resumed).enumerate() {
        if x != y {
            let i = half + k;
            return Err(fail(
                "restore then apply",
                format!(
                    "after restoring the snapshot taken before seq {}, the entry at seq {} ({}) \
                     was answered {} instead of {}: the snapshot misses state that decides outputs",
                    run.seq(half),
                    run.seq(i),
                    preview(&run.entries[i]),
                    preview(y),
                    preview(x)
                ),
            ));
        }
    }
    same(
        "restore then apply",
        "restoring the half-way snapshot and applying the rest ends elsewhere than applying \
         everything: the snapshot misses state",
        &full,
        &view(&resumed, "after restore and the second half")?,
    )?;

    // restore replaces
    let mut dirty = new();
    run.apply(&mut dirty, 0..run.len())?;
    restore(&mut dirty, &half_snapshot, "a machine holding later state")?;
    same(
        "restore replaces",
        "a machine that had applied every entry, restored from the half-way snapshot, kept \
         state the snapshot does not hold (restore must replace, not merge)",
        &half_view,
        &view(&dirty, "after restoring over later state")?,
    )?;
    let empty = new();
    let empty_view = view(&empty, "of a fresh machine")?;
    restore(
        &mut dirty,
        &snapshot(&empty, "a fresh machine")?,
        "a machine holding state",
    )?;
    same(
        "restore replaces",
        "a machine restored from an empty machine's snapshot is not empty",
        &empty_view,
        &view(&dirty, "after restoring an empty snapshot")?,
    )?;

    // freeze
    let mut live = new();
    run.apply(&mut live, 0..half)?;
    let frozen = guarded("freeze", "half way", || live.freeze())?;
    if let Some(frozen) = frozen {
        run.apply(&mut live, half..run.len())?;
        let mut written = Vec::new();
        guarded("FrozenState::write_to", "half way", || {
            frozen.write_to(&mut written)
        })?
        .map_err(|e| fail("freeze", format!("writing the frozen copy failed: {e}")))?;
        let mut from_frozen = new();
        restore(&mut from_frozen, &written, "a fresh machine")?;
        same(
            "freeze",
            "the copy frozen half way, written after the live machine applied more, does not \
             restore to the half-way state (the copy shares mutable state with the machine)",
            &half_view,
            &view(&from_frozen, "restored from the frozen copy")?,
        )?;
    }
    Ok(())
}

/// The entries one check applies, with the suite's own odd entries in the
/// middle, and their sequence numbers.
struct Run {
    entries: Vec<Bytes>,
    /// Position of the first entry of the second half.
    half: usize,
}

impl Run {
    fn new(user: &[Bytes]) -> Run {
        let mid = user.len() / 2;
        let mut entries: Vec<Bytes> = user[..mid].to_vec();
        let first = &user[0];
        entries.push(Bytes::new());
        entries.push(Bytes::from(vec![0xFF; 64]));
        entries.push(first.slice(..first.len() / 2));
        let half = entries.len();
        entries.extend_from_slice(&user[mid..]);
        Run { entries, half }
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    /// Strictly increasing, with a gap after every third entry (journals
    /// skip the sequence numbers of records that are not entries).
    fn seq(&self, i: usize) -> u64 {
        let i = i as u64;
        1 + i + i / 3
    }

    fn apply<S: StateMachine>(
        &self,
        machine: &mut S,
        range: std::ops::Range<usize>,
    ) -> Result<Vec<Bytes>, MachineCheckError> {
        let mut outputs = Vec::with_capacity(range.len());
        for i in range {
            let seq = self.seq(i);
            let entry = &self.entries[i];
            let what = format!("at seq {seq} on entry {}", preview(entry));
            outputs.push(guarded("apply", &what, || machine.apply(seq, entry))?);
        }
        Ok(outputs)
    }
}

/// Runs one call into the machine; a panic becomes a failed check.
fn guarded<R>(call: &str, what: &str, f: impl FnOnce() -> R) -> Result<R, MachineCheckError> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a non-string panic".to_string());
        fail("no panic", format!("{call} panicked {what}: {message}"))
    })
}

fn snapshot_of<S: StateMachine>(machine: &S) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    machine
        .snapshot(&mut out)
        .map_err(|e| format!("snapshot failed: {e}"))?;
    Ok(out)
}

fn snapshot<S: StateMachine>(machine: &S, what: &str) -> Result<Vec<u8>, MachineCheckError> {
    guarded("snapshot", &format!("of {what}"), || snapshot_of(machine))?
        .map_err(|e| fail("snapshot then restore", format!("{e} (of {what})")))
}

fn restore<S: StateMachine>(
    machine: &mut S,
    bytes: &[u8],
    into: &str,
) -> Result<(), MachineCheckError> {
    let mut input = bytes;
    guarded("restore", &format!("into {into}"), || {
        machine.restore(&mut input)
    })?
    .map_err(|e| {
        fail(
            "snapshot then restore",
            format!(
                "restoring {} snapshot bytes into {into} failed: {e}",
                bytes.len()
            ),
        )
    })
}

fn same<T: PartialEq + Debug>(
    check: &'static str,
    what: &str,
    expected: &T,
    got: &T,
) -> Result<(), MachineCheckError> {
    if expected == got {
        return Ok(());
    }
    Err(fail(
        check,
        format!(
            "{what}: expected {}, got {}",
            shorten(format!("{expected:?}")),
            shorten(format!("{got:?}"))
        ),
    ))
}

/// At most 300 characters of a state's description.
fn shorten(mut s: String) -> String {
    const MAX: usize = 300;
    if s.len() > MAX {
        let mut cut = MAX;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

/// An entry or output as text when it is printable, else as hex; at most 24 bytes.
fn preview(bytes: &[u8]) -> String {
    const MAX: usize = 24;
    let head = &bytes[..bytes.len().min(MAX)];
    let more = if bytes.len() > MAX { "..." } else { "" };
    match std::str::from_utf8(head) {
        Ok(text)
            if text
                .chars()
                .all(|c| !c.is_control() || c.is_ascii_whitespace()) =>
        {
            format!("{text:?}{more}")
        }
        _ => {
            let hex: String = head.iter().map(|b| format!("{b:02x}")).collect();
            format!("0x{hex}{more} ({} bytes)", bytes.len())
        }
    }
}
