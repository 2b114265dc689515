//! The replicated peer map's encoding against the inputs the `raft_storage`
//! fuzz target crashed on (`tests/data/peer-map-crashes`, found by AFL):
//! whatever `decode_peers` accepts re-encodes to bytes that decode to the
//! same map, and every address in it passes the address check.

use std::path::Path;

use journal_raft::storage::{decode_peers, encode_peers};

#[test]
fn fuzz_crash_inputs_round_trip() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/peer-map-crashes");
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let peers = decode_peers(&data);
        let again = decode_peers(&encode_peers(&peers));
        assert_eq!(again, peers, "{} does not round-trip", path.display());
        for (id, p) in &peers {
            assert_ne!(*id, 0);
            journal_raft::address::check(&p.address).unwrap();
            if let Some(rpc) = &p.rpc {
                journal_raft::address::check(rpc).unwrap();
            }
        }
        files += 1;
    }
    assert!(files > 0, "no inputs under {}", dir.display());
}
