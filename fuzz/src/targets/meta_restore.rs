//! master::meta's snapshot body: what `MetaMachine::restore` reads inside a
//! checkpoint or Raft snapshot (after the stream's frames were verified).

use journal_core::StateMachine;
use master::meta::MetaMachine;

use super::meta_apply::{populated, sample_entries};

/// Restores `data` into a machine that holds a state already.
///
/// Contract: a refused body leaves the machine exactly as it was; an
/// accepted one is a consistent state: it snapshots and restores into an
/// equal machine with a byte-identical snapshot, and applying entries to
/// it answers alike on both.
pub fn target(data: &[u8]) {
    let mut m = populated();
    let before = m.canonical_dump();
    match m.restore(&mut &data[..]) {
        Err(_) => assert_eq!(
            m.canonical_dump(),
            before,
            "a refused restore changed the machine"
        ),
        Ok(()) => {
            let mut snap = Vec::new();
            m.snapshot(&mut snap).expect("a restored state snapshots");
            let mut c = MetaMachine::default();
            c.restore(&mut snap.as_slice())
                .unwrap_or_else(|e| panic!("a restored state's snapshot does not restore: {e}"));
            assert_eq!(c.canonical_dump(), m.canonical_dump());
            let mut again = Vec::new();
            c.snapshot(&mut again).expect("snapshots");
            assert_eq!(again, snap);
            for (i, e) in sample_entries().iter().enumerate() {
                let seq = 1000 + i as u64;
                assert_eq!(m.apply(seq, e), c.apply(seq, e));
            }
        }
    }
}
