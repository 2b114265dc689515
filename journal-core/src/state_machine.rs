//! The embedder's side of the contract: a deterministic state machine.

use std::io::{Read, Write};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::RwLock;

/// A deterministic state machine replicated by a journal.
///
/// Guarantees the journal gives the state machine:
/// - `apply` is called with strictly increasing sequence numbers (with gaps
///   where the log holds records that are not entries, e.g. primacy claims),
///   exactly once per entry, on every master, in the same order.
/// - `restore` replaces the whole state and is followed by `apply` of the
///   entries after the snapshot's position.
///
/// What the state machine must guarantee the journal:
/// - `apply` is deterministic: same state + same entry gives the same new state
///   and the same output on every master. Validation that depends on state
///   (a file exists, a parent is missing) happens here and is returned in the
///   output, so concurrent requests are ordered by the log.
/// - `apply` does not fail: an entry the machine cannot use produces an error
///   *output*, never a divergent state.
/// - `snapshot` followed by `restore` on a fresh machine gives an equal state.
pub trait StateMachine: Send + Sync + 'static {
    /// Applies the entry at `seq` and returns the output handed back to the proposer.
    fn apply(&mut self, seq: u64, entry: &[u8]) -> Bytes;

    /// Streams the whole state into `out`. Large states are written piecewise;
    /// the journal frames and checksums whatever is written here.
    fn snapshot(&self, out: &mut dyn Write) -> std::io::Result<()>;

    /// Replaces the whole state with the one read from `input` (written by `snapshot`).
    fn restore(&mut self, input: &mut dyn Read) -> std::io::Result<()>;

    /// Captures the current state as an immutable copy that can be streamed
    /// out on another thread while `apply` goes on with the live state.
    ///
    /// The journal calls this between two applies (under the read lock) and
    /// then writes the returned copy in the background, so heartbeats,
    /// commits and applies continue during a snapshot. It must therefore be
    /// cheap compared with writing the state: an `Arc` clone of a persistent
    /// (structurally shared) structure, a copy-on-write view, a generation
    /// marker. What the copy writes must equal what `snapshot` would have
    /// written at the moment of the call.
    ///
    /// The default returns `None`: the journal then writes `snapshot` under
    /// the read lock and apply waits for it (the journals still keep their
    /// heartbeats and elections going, but no entry is applied meanwhile).
    fn freeze(&self) -> Option<Box<dyn FrozenState>> {
        None
    }
}

/// An immutable copy of a state machine's state at one log position, made by
/// [`StateMachine::freeze`]. Writing it never touches the live machine.
pub trait FrozenState: Send + Sync + 'static {
    /// Streams the captured state into `out`, in the same format as
    /// [`StateMachine::snapshot`] (so `restore` reads it back).
    fn write_to(&self, out: &mut dyn Write) -> std::io::Result<()>;
}

/// A state machine shared between the journal (which applies) and the
/// embedder (which reads it to answer queries, after a read barrier).
pub type SharedStateMachine = Arc<RwLock<dyn StateMachine>>;

/// The embedder's typed handle on a shared state machine, as [`shared`]
/// returns it: a clone coerces to [`SharedStateMachine`] for the journal,
/// and `.read()` gives the embedder the applied state. The alias lets a
/// struct field name the handle without depending on the lock's crate.
pub type Shared<S> = Arc<RwLock<S>>;

/// Wraps a state machine so the journal and the embedder can share it.
///
/// Keep the returned typed handle for queries and pass a clone (which coerces
/// to [`SharedStateMachine`]) to the journal.
pub fn shared<S: StateMachine>(machine: S) -> Shared<S> {
    Arc::new(RwLock::new(machine))
}
