//! Chunks: immutable objects holding a header and a run of records.

use bytes::Bytes;
use journal_core::framing::{encode_message, FrameDecoder, FrameError, FRAME_HEADER_LEN};
use journal_core::proto::{journal_record::Kind, JournalRecord};
use journal_core::JournalError;
use prost::Message;

use crate::proto::ChunkHeader;

/// A decoded, verified chunk.
#[derive(Debug, Clone)]
pub struct Chunk {
    /// Its header.
    pub header: ChunkHeader,
    /// Its records, `header.count` of them, with consecutive sequence numbers.
    pub records: Vec<JournalRecord>,
}

impl Chunk {
    /// Sequence number after the chunk's last record.
    pub fn end(&self) -> u64 {
        self.header.first_seq + u64::from(self.header.count)
    }
}

/// Why a chunk could not be used.
#[derive(Debug)]
pub enum ChunkError {
    /// The object ends inside a frame: a write that never completed.
    Torn(String),
    /// Anything else: CRC, decode, sequence, cluster or epoch mismatch.
    Corrupt(String),
}

/// Encodes a chunk of `records` (already numbered from `header.first_seq`).
pub fn encode_chunk(header: &ChunkHeader, records: &[JournalRecord]) -> Result<Bytes, FrameError> {
    let size: usize =
        records.iter().map(|r| r.encoded_len() + 8).sum::<usize>() + header.encoded_len() + 8;
    let mut out = Vec::with_capacity(size);
    encode_message(header, &mut out)?;
    for r in records {
        encode_message(r, &mut out)?;
    }
    Ok(out.into())
}

/// Decodes and verifies a chunk named `first_seq` of cluster `cluster_id`.
pub fn decode_chunk(bytes: &[u8], first_seq: u64, cluster_id: &str) -> Result<Chunk, ChunkError> {
    let mut frames = FrameDecoder::new(bytes);
    fn frame<'a>(
        f: Option<Result<&'a [u8], FrameError>>,
        what: &str,
    ) -> Result<&'a [u8], ChunkError> {
        match f {
            Some(Ok(p)) => Ok(p),
            Some(Err(FrameError::Torn { offset, detail })) => Err(ChunkError::Torn(format!(
                "{what} torn at byte {offset}: {detail}"
            ))),
            Some(Err(e)) => Err(ChunkError::Corrupt(format!("{what}: {e}"))),
            None => Err(ChunkError::Torn(format!(
                "{what} missing (the object ends early)"
            ))),
        }
    }
    let header = ChunkHeader::decode(frame(frames.next(), "header")?)
        .map_err(|e| ChunkError::Corrupt(format!("header does not decode: {e}")))?;
    if header.first_seq != first_seq {
        return Err(ChunkError::Corrupt(format!(
            "header says first seq {} but the object is named {first_seq}",
            header.first_seq
        )));
    }
    if header.cluster_id != cluster_id {
        return Err(ChunkError::Corrupt(format!(
            "chunk belongs to cluster {:?}, the folder to {cluster_id:?}",
            header.cluster_id
        )));
    }
    if header.count == 0 {
        return Err(ChunkError::Corrupt("chunk holds no records".into()));
    }
    // `count` comes from the object: each record needs at least a frame
    // header, so the bytes left bound what may be reserved (a flipped count
    // must be reported as a short chunk, not reserve hundreds of gigabytes).
    let room = bytes.len().saturating_sub(frames.position()) / FRAME_HEADER_LEN;
    let mut records = Vec::with_capacity((header.count as usize).min(room));
    for i in 0..u64::from(header.count) {
        let what = format!("record {}", first_seq + i);
        let record = JournalRecord::decode(frame(frames.next(), &what)?)
            .map_err(|e| ChunkError::Corrupt(format!("{what} does not decode: {e}")))?;
        if record.seq != first_seq + i {
            return Err(ChunkError::Corrupt(format!(
                "{what} carries seq {}",
                record.seq
            )));
        }
        if record.epoch != header.epoch {
            return Err(ChunkError::Corrupt(format!(
                "{what} has epoch {} in a chunk of epoch {}",
                record.epoch, header.epoch
            )));
        }
        if record.kind.is_none() {
            return Err(ChunkError::Corrupt(format!("{what} has no kind")));
        }
        records.push(record);
    }
    if frames.next().is_some() {
        return Err(ChunkError::Corrupt(format!(
            "bytes after the {} records the header counts",
            header.count
        )));
    }
    Ok(Chunk { header, records })
}

/// Converts a chunk error into the journal's error for object `location`.
pub fn chunk_error(location: String, e: ChunkError) -> JournalError {
    match e {
        ChunkError::Torn(d) | ChunkError::Corrupt(d) => JournalError::corrupt(location, d),
    }
}

/// The primacy claim inside a chunk, if the chunk is a claim.
pub fn claim_of(chunk: &Chunk) -> Option<&journal_core::proto::Primacy> {
    chunk.records.iter().find_map(|r| match &r.kind {
        Some(Kind::Primacy(p)) => Some(p),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (ChunkHeader, Vec<JournalRecord>) {
        let header = ChunkHeader {
            cluster_id: "c1".into(),
            first_seq: 7,
            epoch: 3,
            count: 2,
            writer_id: "w".into(),
        };
        let records = (0..2)
            .map(|i| JournalRecord {
                seq: 7 + i,
                epoch: 3,
                kind: Some(Kind::Entry(Bytes::from(vec![i as u8; 10]))),
            })
            .collect();
        (header, records)
    }

    #[test]
    fn round_trip_and_mismatches() {
        let (h, r) = sample();
        let bytes = encode_chunk(&h, &r).unwrap();
        let c = decode_chunk(&bytes, 7, "c1").unwrap();
        assert_eq!(c.records, r);
        assert_eq!(c.end(), 9);
        assert!(matches!(
            decode_chunk(&bytes, 8, "c1"),
            Err(ChunkError::Corrupt(_))
        ));
        assert!(matches!(
            decode_chunk(&bytes, 7, "other"),
            Err(ChunkError::Corrupt(_))
        ));
        assert!(matches!(
            decode_chunk(&bytes[..bytes.len() - 3], 7, "c1"),
            Err(ChunkError::Torn(_))
        ));
        let mut flipped = bytes.to_vec();
        let at = flipped.len() - 4;
        flipped[at] ^= 1;
        assert!(matches!(
            decode_chunk(&flipped, 7, "c1"),
            Err(ChunkError::Corrupt(_))
        ));
    }

    /// Seen while writing the fuzz targets: a header whose `count` says
    /// u32::MAX used to reserve room for 4 billion records before reading
    /// one; it must be a torn chunk like any other short one.
    #[test]
    fn huge_count_is_reported_not_reserved() {
        let (mut h, r) = sample();
        h.count = u32::MAX;
        let bytes = encode_chunk(&h, &r).unwrap();
        assert!(matches!(
            decode_chunk(&bytes, 7, "c1"),
            Err(ChunkError::Torn(_))
        ));
    }
}
