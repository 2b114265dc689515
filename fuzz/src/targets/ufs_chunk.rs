//! UFS journal chunk objects: a header frame and `count` record frames.

use journal_core::JournalError;
use journal_ufs::chunk::{chunk_error, claim_of, decode_chunk, encode_chunk, ChunkError};

/// The cluster the seed chunks belong to.
pub const CLUSTER: &str = "fuzz-cluster";
/// The sequence number the seed chunks are named after.
pub const FIRST_SEQ: u64 = 1;

/// Decodes `data` as the chunk object named [`FIRST_SEQ`] of [`CLUSTER`].
///
/// Contract: a chunk that decodes holds exactly `count` records numbered
/// from its name, of its epoch, each with a kind, and re-encodes to a chunk
/// that decodes the same; no proper prefix of it decodes (a torn write is
/// never a shorter valid chunk); a failure becomes `Corrupt` naming the
/// object.
pub fn target(data: &[u8]) {
    match decode_chunk(data, FIRST_SEQ, CLUSTER) {
        Ok(chunk) => {
            assert_eq!(chunk.header.first_seq, FIRST_SEQ);
            assert_eq!(chunk.header.cluster_id, CLUSTER);
            assert!(chunk.header.count > 0);
            assert_eq!(chunk.records.len(), chunk.header.count as usize);
            for (i, r) in chunk.records.iter().enumerate() {
                assert_eq!(r.seq, FIRST_SEQ + i as u64);
                assert_eq!(r.epoch, chunk.header.epoch);
                assert!(r.kind.is_some());
            }
            assert_eq!(chunk.end(), FIRST_SEQ + u64::from(chunk.header.count));
            let _ = claim_of(&chunk);
            let bytes = encode_chunk(&chunk.header, &chunk.records).expect("re-encodes");
            let again = decode_chunk(&bytes, FIRST_SEQ, CLUSTER).expect("the re-encoding decodes");
            assert_eq!(again.header, chunk.header);
            assert_eq!(again.records, chunk.records);
            for cut in [0, data.len() / 2, data.len() - 1] {
                assert!(
                    decode_chunk(&data[..cut], FIRST_SEQ, CLUSTER).is_err(),
                    "a prefix of {cut} bytes decoded"
                );
            }
        }
        Err(e) => {
            let (ChunkError::Torn(d) | ChunkError::Corrupt(d)) = &e;
            assert!(!d.is_empty(), "a chunk failure says what failed");
            let location = "logs/0000000000000001".to_string();
            match chunk_error(location.clone(), e) {
                JournalError::Corrupt { location: l, .. } => assert_eq!(l, location),
                other => panic!("a chunk failure became {other:?}"),
            }
        }
    }
}
