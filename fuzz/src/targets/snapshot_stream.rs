//! Snapshot streams (header frame, data frames, trailer): UFS checkpoint
//! objects and Raft snapshot files, restored into master::meta as the
//! journals do.

use journal_core::snapshot::{read_snapshot_header, restore_snapshot, write_snapshot};
use journal_core::{JournalError, StateMachine};
use master::meta::MetaMachine;

const LOCATION: &str = "checkpoints/0000000000000009";

/// Restores `data` as a snapshot stream into a fresh machine.
///
/// Contract: failures are `Corrupt` naming the object; a stream that
/// restores has a header that reads alone with the same meta, and no
/// proper prefix of it restores (truncation is never a smaller valid
/// snapshot); the restored state streams out again and that stream
/// restores to an equal machine with the same meta.
pub fn target(data: &[u8]) {
    let header = read_snapshot_header(&mut &data[..], LOCATION);
    if let Err(e) = &header {
        assert_corrupt(e);
    }
    let mut m = MetaMachine::default();
    match restore_snapshot(&mut m, &mut &data[..], LOCATION) {
        Err(e) => assert_corrupt(&e),
        Ok(meta) => {
            let (head, _) = header.expect("a restorable stream has a readable header");
            assert_eq!(head, meta);
            for cut in [0, data.len() / 2, data.len() - 1] {
                let mut fresh = MetaMachine::default();
                match restore_snapshot(&mut fresh, &mut &data[..cut], LOCATION) {
                    Err(e) => assert_corrupt(&e),
                    Ok(_) => panic!("a prefix of {cut} bytes restored"),
                }
            }
            let mut out = Vec::new();
            write_snapshot(&m, &meta, &mut out, 64).expect("the restored state streams out");
            let mut c = MetaMachine::default();
            let again = restore_snapshot(&mut c, &mut out.as_slice(), LOCATION)
                .unwrap_or_else(|e| panic!("a written snapshot does not restore: {e}"));
            assert_eq!(again, meta);
            assert_eq!(c.canonical_dump(), m.canonical_dump());
            let mut snap_m = Vec::new();
            let mut snap_c = Vec::new();
            m.snapshot(&mut snap_m).expect("snapshots");
            c.snapshot(&mut snap_c).expect("snapshots");
            assert_eq!(snap_m, snap_c);
        }
    }
}

fn assert_corrupt(e: &JournalError) {
    match e {
        JournalError::Corrupt { location, .. } => assert_eq!(location, LOCATION),
        other => panic!("a snapshot failure is not Corrupt: {other:?}"),
    }
}
