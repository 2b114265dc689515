//! What journal-raft reads from its data directory besides snapshots: the
//! raft-engine log files it walks to tell a torn tail from damage, and the
//! replicated peer map.

use journal_raft::storage::{decode_peers, encode_peers, has_valid_chain_after, walk_log_file};

/// Walks `data` as a raft-engine log file, and decodes it as a peer map.
///
/// Contract: the walk's batches lie inside the file, in order, without
/// overlap, and end where the walk says it stopped; a torn batch is
/// reported at that stop; the peer map re-encodes to a map that decodes
/// equal.
pub fn target(data: &[u8]) {
    let walk = walk_log_file(data);
    let mut at = None;
    for b in &walk.batches {
        assert!(b.len > 0, "an empty batch at {}", b.offset);
        if let Some(end) = at {
            assert_eq!(b.offset, end, "batches are contiguous");
        }
        assert!(b.offset + b.len <= data.len(), "a batch runs past the file");
        at = Some(b.offset + b.len);
    }
    if let Some(end) = at {
        assert_eq!(walk.end, end);
    }
    assert!(walk.end <= data.len());
    if let Some(t) = walk.torn_at {
        assert_eq!(t, walk.end);
    }
    let _ = has_valid_chain_after(data, walk.end);

    let peers = decode_peers(data);
    let again = decode_peers(&encode_peers(&peers));
    assert_eq!(again.len(), peers.len());
    for (id, p) in &peers {
        let q = again
            .get(id)
            .expect("a decoded member survives a round trip");
        assert_eq!(q.address, p.address);
        assert_eq!(q.rpc, p.rpc);
    }
}
