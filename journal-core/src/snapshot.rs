//! The snapshot stream format: a header frame, the state machine's bytes cut
//! into CRC-checked data frames, and a trailer frame that counts them.
//!
//! The same format backs UFS checkpoints and Raft snapshot files, so a
//! truncated or bit-flipped snapshot is always reported as `Corrupt` with the
//! location the caller names, never restored silently.

use std::io::{Read, Write};

use prost::Message;

use crate::error::JournalError;
use crate::framing::{encode_message, read_frame, FrameError};
use crate::proto::{SnapshotData, SnapshotHeader, SnapshotTrailer};
use crate::state_machine::{FrozenState, StateMachine};

/// Default size of one data frame of a snapshot (1 MiB).
pub const DEFAULT_SNAPSHOT_FRAME: usize = 1 << 20;

/// What a snapshot stream describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotMeta {
    /// Cluster the snapshot belongs to.
    pub cluster_id: String,
    /// The state is the one after applying every record with `seq < next_seq`.
    pub next_seq: u64,
    /// Epoch of the last record applied.
    pub epoch: u64,
}

/// Size figures of a written snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotStats {
    /// Data frames written.
    pub frames: u64,
    /// State bytes written (without framing).
    pub bytes: u64,
}

fn frame_err(e: FrameError) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e)
}

/// A `Write` that cuts everything written into `SnapshotData` frames.
struct FramingWriter<'a> {
    sink: &'a mut dyn Write,
    buf: Vec<u8>,
    frame_size: usize,
    stats: SnapshotStats,
}

impl FramingWriter<'_> {
    fn emit(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let data = std::mem::take(&mut self.buf);
        let mut framed = Vec::with_capacity(data.len() + 16);
        self.stats.bytes += data.len() as u64;
        self.stats.frames += 1;
        encode_message(&SnapshotData { data: data.into() }, &mut framed).map_err(frame_err)?;
        self.sink.write_all(&framed)
    }
}

impl Write for FramingWriter<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let room = self.frame_size - self.buf.len();
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= self.frame_size {
            self.emit()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes a complete snapshot stream of `machine` into `sink`.
///
/// The stream is complete only when this returns `Ok`; callers publish it
/// (rename, create-if-absent) only then.
pub fn write_snapshot(
    machine: &dyn StateMachine,
    meta: &SnapshotMeta,
    sink: &mut dyn Write,
    frame_size: usize,
) -> std::io::Result<SnapshotStats> {
    write_snapshot_with(&mut |out| machine.snapshot(out), meta, sink, frame_size)
}

/// Writes a complete snapshot stream of a frozen state (see
/// [`StateMachine::freeze`]) into `sink`; the live machine is not touched, so
/// this may run on any thread while entries are applied.
pub fn write_frozen_snapshot(
    frozen: &dyn FrozenState,
    meta: &SnapshotMeta,
    sink: &mut dyn Write,
    frame_size: usize,
) -> std::io::Result<SnapshotStats> {
    write_snapshot_with(&mut |out| frozen.write_to(out), meta, sink, frame_size)
}

/// The stream around whatever `state` writes: header, data frames, trailer.
fn write_snapshot_with(
    state: &mut dyn FnMut(&mut dyn Write) -> std::io::Result<()>,
    meta: &SnapshotMeta,
    sink: &mut dyn Write,
    frame_size: usize,
) -> std::io::Result<SnapshotStats> {
    let header = SnapshotHeader {
        cluster_id: meta.cluster_id.clone(),
        next_seq: meta.next_seq,
        epoch: meta.epoch,
        created_unix_ms: unix_ms(),
    };
    let mut framed = Vec::new();
    encode_message(&header, &mut framed).map_err(frame_err)?;
    sink.write_all(&framed)?;
    let mut writer = FramingWriter {
        sink,
        buf: Vec::with_capacity(frame_size.min(1 << 20)),
        frame_size: frame_size.max(1),
        stats: SnapshotStats {
            frames: 0,
            bytes: 0,
        },
    };
    state(&mut writer)?;
    writer.emit()?;
    let stats = writer.stats;
    let mut framed = Vec::new();
    encode_message(
        &SnapshotTrailer {
            frames: stats.frames,
            bytes: stats.bytes,
        },
        &mut framed,
    )
    .map_err(frame_err)?;
    writer.sink.write_all(&framed)?;
    writer.sink.flush()?;
    Ok(stats)
}

/// A `Read` over the data frames of a snapshot stream; stops at the trailer.
struct DeframingReader<'a> {
    source: &'a mut dyn Read,
    offset: u64,
    current: bytes::Bytes,
    frames: u64,
    bytes: u64,
    trailer: Option<SnapshotTrailer>,
    error: Option<JournalError>,
    location: &'a str,
}

impl DeframingReader<'_> {
    /// Loads the next data frame; false at the trailer.
    fn advance(&mut self) -> Result<bool, JournalError> {
        if self.trailer.is_some() {
            return Ok(false);
        }
        let at = self.offset;
        let payload = read_frame(self.source, &mut self.offset)
            .map_err(|e| JournalError::corrupt(self.location, e.to_string()))?
            .ok_or_else(|| {
                JournalError::corrupt(
                    self.location,
                    format!("snapshot ends at byte {at} without its trailer (truncated)"),
                )
            })?;
        // A data frame always has field 1 set with at least one byte; the
        // trailer's field 1 is a varint. The wire type tells them apart.
        match payload.first() {
            Some(0x0a) => {
                let data = SnapshotData::decode(payload.as_slice()).map_err(|e| {
                    JournalError::corrupt(self.location, format!("data frame at byte {at}: {e}"))
                })?;
                self.frames += 1;
                self.bytes += data.data.len() as u64;
                self.current = data.data;
                Ok(true)
            }
            _ => {
                let trailer = SnapshotTrailer::decode(payload.as_slice()).map_err(|e| {
                    JournalError::corrupt(self.location, format!("trailer at byte {at}: {e}"))
                })?;
                if trailer.frames != self.frames || trailer.bytes != self.bytes {
                    return Err(JournalError::corrupt(
                        self.location,
                        format!(
                            "trailer counts {} frames / {} bytes but the stream held {} / {}",
                            trailer.frames, trailer.bytes, self.frames, self.bytes
                        ),
                    ));
                }
                self.trailer = Some(trailer);
                Ok(false)
            }
        }
    }
}

impl Read for DeframingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.advance() {
                Ok(true) => {}
                Ok(false) => return Ok(0),
                Err(e) => {
                    let msg = e.to_string();
                    self.error = Some(e);
                    return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, msg));
                }
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        Ok(n)
    }
}

/// Reads only the header of a snapshot stream.
pub fn read_snapshot_header(
    source: &mut dyn Read,
    location: &str,
) -> Result<(SnapshotMeta, u64), JournalError> {
    let mut offset = 0;
    let payload = read_frame(source, &mut offset)
        .map_err(|e| JournalError::corrupt(location, e.to_string()))?
        .ok_or_else(|| JournalError::corrupt(location, "empty snapshot"))?;
    let header = SnapshotHeader::decode(payload.as_slice())
        .map_err(|e| JournalError::corrupt(location, format!("snapshot header: {e}")))?;
    Ok((
        SnapshotMeta {
            cluster_id: header.cluster_id,
            next_seq: header.next_seq,
            epoch: header.epoch,
        },
        offset,
    ))
}

/// Restores `machine` from a snapshot stream, verifying every frame.
///
/// On `Err` the machine may hold a partial state and must not be used; the
/// error names `location` and what failed. On `Ok` the whole stream, trailer
/// included, was verified.
pub fn restore_snapshot(
    machine: &mut dyn StateMachine,
    source: &mut dyn Read,
    location: &str,
) -> Result<SnapshotMeta, JournalError> {
    let (meta, offset) = read_snapshot_header(source, location)?;
    let mut reader = DeframingReader {
        source,
        offset,
        current: bytes::Bytes::new(),
        frames: 0,
        bytes: 0,
        trailer: None,
        error: None,
        location,
    };
    let restored = machine.restore(&mut reader);
    if let Some(e) = reader.error.take() {
        return Err(e);
    }
    if let Err(e) = restored {
        return Err(JournalError::corrupt(
            location,
            format!("the state machine rejected the snapshot: {e}"),
        ));
    }
    // The machine may stop reading before the trailer; the rest must still verify.
    let mut probe = [0u8; 1];
    match reader.read(&mut probe) {
        Ok(0) => {}
        Ok(_) => {
            return Err(JournalError::corrupt(
                location,
                "the state machine left snapshot bytes unread",
            ))
        }
        Err(_) => {
            return Err(reader
                .error
                .take()
                .unwrap_or_else(|| JournalError::corrupt(location, "unreadable snapshot")))
        }
    }
    // A snapshot object is written whole and published atomically: anything
    // after its trailer is damage (or a foreign object), never a torn write.
    let trailer_end = reader.offset;
    match reader.source.read(&mut probe) {
        Ok(0) => {}
        Ok(_) => {
            return Err(JournalError::corrupt(
                location,
                format!("bytes after the snapshot's trailer (which ends at byte {trailer_end})"),
            ))
        }
        Err(e) => {
            return Err(JournalError::corrupt(
                location,
                format!("unreadable after the trailer: {e}"),
            ))
        }
    }
    Ok(meta)
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    /// A machine holding raw bytes, to test the stream format itself.
    #[derive(Default)]
    struct Blob(Vec<u8>);

    impl StateMachine for Blob {
        fn apply(&mut self, _seq: u64, entry: &[u8]) -> Bytes {
            self.0.extend_from_slice(entry);
            Bytes::new()
        }
        fn snapshot(&self, out: &mut dyn Write) -> std::io::Result<()> {
            // Written in odd pieces to exercise the frame cutting.
            for piece in self.0.chunks(7) {
                out.write_all(piece)?;
            }
            Ok(())
        }
        fn restore(&mut self, input: &mut dyn Read) -> std::io::Result<()> {
            self.0.clear();
            input.read_to_end(&mut self.0)?;
            Ok(())
        }
    }

    fn meta() -> SnapshotMeta {
        SnapshotMeta {
            cluster_id: "c".into(),
            next_seq: 42,
            epoch: 3,
        }
    }

    fn stream(state: &[u8], frame: usize) -> Vec<u8> {
        let mut out = Vec::new();
        write_snapshot(&Blob(state.to_vec()), &meta(), &mut out, frame).unwrap();
        out
    }

    #[test]
    fn round_trips_empty_small_and_multi_frame_states() {
        for (len, frame) in [(0usize, 16usize), (5, 16), (1000, 16), (1000, 1 << 20)] {
            let state: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let bytes = stream(&state, frame);
            let mut restored = Blob::default();
            let m = restore_snapshot(&mut restored, &mut bytes.as_slice(), "snap").unwrap();
            assert_eq!(m, meta());
            assert_eq!(restored.0, state, "len {len} frame {frame}");
        }
    }

    #[test]
    fn truncation_anywhere_is_corrupt() {
        let bytes = stream(&[9u8; 100], 16);
        for cut in 0..bytes.len() {
            let mut restored = Blob::default();
            match restore_snapshot(&mut restored, &mut &bytes[..cut], "snap-file") {
                Err(JournalError::Corrupt { location, .. }) => assert_eq!(location, "snap-file"),
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
    }

    #[test]
    fn every_flipped_byte_is_corrupt() {
        let bytes = stream(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 4);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            let mut restored = Blob::default();
            assert!(
                matches!(
                    restore_snapshot(&mut restored, &mut bad.as_slice(), "s"),
                    Err(JournalError::Corrupt { .. })
                ),
                "flip at {i} was accepted"
            );
        }
    }

    #[test]
    fn bytes_after_the_trailer_are_corrupt() {
        let bytes = stream(&[3u8; 40], 8);
        for extra in [&[0u8][..], &[0, 0, 0, 0], b"garbage", &bytes[..12]] {
            let mut longer = bytes.clone();
            longer.extend_from_slice(extra);
            let mut restored = Blob::default();
            match restore_snapshot(&mut restored, &mut longer.as_slice(), "ckpt") {
                Err(JournalError::Corrupt { location, detail }) => {
                    assert_eq!(location, "ckpt");
                    assert!(detail.contains("after the snapshot's trailer"), "{detail}");
                }
                other => panic!("{} extra bytes accepted: {other:?}", extra.len()),
            }
        }
    }

    #[cfg(feature = "testkit")]
    #[test]
    fn a_frozen_copy_writes_the_same_stream_as_the_live_machine() {
        use crate::testkit::TestMachine;
        let mut live = TestMachine::new();
        for seq in 1..50u64 {
            live.apply(seq, &seq.to_le_bytes());
        }
        let frozen = live.freeze().expect("TestMachine freezes");
        live.apply(50, b"after the freeze");
        let mut from_frozen = Vec::new();
        write_frozen_snapshot(&*frozen, &meta(), &mut from_frozen, 64).unwrap();
        let mut restored = TestMachine::new();
        restore_snapshot(&mut restored, &mut from_frozen.as_slice(), "s").unwrap();
        assert_eq!(restored.entries.len(), 49);
        assert_eq!(restored.entries[..], live.entries[..49]);
    }

    #[test]
    fn unread_state_is_reported() {
        struct Lazy;
        impl StateMachine for Lazy {
            fn apply(&mut self, _: u64, _: &[u8]) -> Bytes {
                Bytes::new()
            }
            fn snapshot(&self, _: &mut dyn Write) -> std::io::Result<()> {
                Ok(())
            }
            fn restore(&mut self, input: &mut dyn Read) -> std::io::Result<()> {
                let mut one = [0u8; 1];
                input.read_exact(&mut one)
            }
        }
        let bytes = stream(&[1u8; 50], 8);
        assert!(matches!(
            restore_snapshot(&mut Lazy, &mut bytes.as_slice(), "s"),
            Err(JournalError::Corrupt { .. })
        ));
    }
}
