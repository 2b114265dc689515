//! Record framing: `[u32 length LE][u32 crc32c LE][payload]`.
//!
//! Every journal record on disk or on the wire uses this frame. The CRC covers
//! the payload only; the length is checked against [`MAX_FRAME_LEN`] so a
//! flipped bit in a length field is reported instead of allocating gigabytes.
//!
//! The decoders distinguish two failures:
//! - [`FrameError::Torn`]: the buffer ends inside a frame (a write interrupted
//!   by a crash). Only the caller knows whether that spot is the unacknowledged
//!   tail of a local file (then it may be truncated) or not (then it is corrupt).
//! - [`FrameError::Corrupt`]: a complete frame whose CRC or length is wrong. It
//!   is never skipped.

use std::io::Read;

/// Bytes of the frame header (length + CRC).
pub const FRAME_HEADER_LEN: usize = 8;

/// Largest payload a frame may carry (64 MiB). Larger lengths are corruption.
pub const MAX_FRAME_LEN: usize = 64 << 20;

/// Why a frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The input ends inside the frame starting at `offset`.
    #[error("torn frame at byte {offset}: {detail}")]
    Torn {
        /// Byte offset of the frame's first header byte.
        offset: u64,
        /// What was missing.
        detail: String,
    },
    /// The frame starting at `offset` is complete but invalid.
    #[error("corrupt frame at byte {offset}: {detail}")]
    Corrupt {
        /// Byte offset of the frame's first header byte.
        offset: u64,
        /// What failed.
        detail: String,
    },
}

impl FrameError {
    /// Byte offset of the frame the error is about.
    pub fn offset(&self) -> u64 {
        match self {
            FrameError::Torn { offset, .. } | FrameError::Corrupt { offset, .. } => *offset,
        }
    }
}

/// Appends one frame holding `payload` to `out`.
///
/// Panics never; a payload above [`MAX_FRAME_LEN`] is refused with an error
/// because no decoder would accept it.
pub fn encode_frame(payload: &[u8], out: &mut Vec<u8>) -> Result<(), FrameError> {
    if payload.len() > MAX_FRAME_LEN {
        return Err(FrameError::Corrupt {
            offset: out.len() as u64,
            detail: format!(
                "payload of {} bytes exceeds the frame limit of {MAX_FRAME_LEN} bytes",
                payload.len()
            ),
        });
    }
    out.reserve(FRAME_HEADER_LEN + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

/// Encodes a prost message and appends it as one frame to `out`.
pub fn encode_message<M: prost::Message>(msg: &M, out: &mut Vec<u8>) -> Result<(), FrameError> {
    encode_frame(&msg.encode_to_vec(), out)
}

fn parse_header(header: &[u8; FRAME_HEADER_LEN], offset: u64) -> Result<(usize, u32), FrameError> {
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len > MAX_FRAME_LEN {
        return Err(FrameError::Corrupt {
            offset,
            detail: format!("length field {len} exceeds the frame limit of {MAX_FRAME_LEN}"),
        });
    }
    Ok((len, crc))
}

fn check_crc(payload: &[u8], expected: u32, offset: u64) -> Result<(), FrameError> {
    let actual = crc32c::crc32c(payload);
    if actual != expected {
        return Err(FrameError::Corrupt {
            offset,
            detail: format!("crc32c mismatch: stored {expected:#010x}, computed {actual:#010x}"),
        });
    }
    Ok(())
}

/// Iterates over the frames of an in-memory buffer, verifying each CRC.
///
/// After the first error the iterator yields nothing more.
#[derive(Debug)]
pub struct FrameDecoder<'a> {
    buf: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> FrameDecoder<'a> {
    /// Decodes frames from the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        FrameDecoder {
            buf,
            pos: 0,
            failed: false,
        }
    }

    /// Byte offset of the next frame to decode (the end of the last good frame).
    pub fn position(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for FrameDecoder<'a> {
    type Item = Result<&'a [u8], FrameError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.buf.len() {
            return None;
        }
        let offset = self.pos as u64;
        let rest = &self.buf[self.pos..];
        let result = (|| {
            let header: &[u8; FRAME_HEADER_LEN] = rest
                .get(..FRAME_HEADER_LEN)
                .and_then(|h| h.try_into().ok())
                .ok_or_else(|| FrameError::Torn {
                    offset,
                    detail: format!("{} header bytes of {FRAME_HEADER_LEN}", rest.len()),
                })?;
            let (len, crc) = parse_header(header, offset)?;
            let payload = rest
                .get(FRAME_HEADER_LEN..FRAME_HEADER_LEN + len)
                .ok_or_else(|| FrameError::Torn {
                    offset,
                    detail: format!("{} payload bytes of {len}", rest.len() - FRAME_HEADER_LEN),
                })?;
            check_crc(payload, crc, offset)?;
            Ok(payload)
        })();
        match &result {
            Ok(payload) => self.pos += FRAME_HEADER_LEN + payload.len(),
            Err(_) => self.failed = true,
        }
        Some(result)
    }
}

/// Reads one frame from a byte stream, verifying its CRC.
///
/// Returns `Ok(None)` at a clean end of stream (no byte of a new frame read).
/// `offset` is the stream position of the frame, used in errors, and is
/// advanced past the frame on success.
pub fn read_frame<R: Read + ?Sized>(
    reader: &mut R,
    offset: &mut u64,
) -> Result<Option<Vec<u8>>, FrameError> {
    let at = *offset;
    let io_err = |e: std::io::Error| FrameError::Corrupt {
        offset: at,
        detail: format!("read failed: {e}"),
    };
    let mut header = [0u8; FRAME_HEADER_LEN];
    let got = read_full(reader, &mut header).map_err(io_err)?;
    if got == 0 {
        return Ok(None);
    }
    if got < FRAME_HEADER_LEN {
        return Err(FrameError::Torn {
            offset: at,
            detail: format!("{got} header bytes of {FRAME_HEADER_LEN}"),
        });
    }
    let (len, crc) = parse_header(&header, at)?;
    let mut payload = vec![0u8; len];
    let got = read_full(reader, &mut payload).map_err(io_err)?;
    if got < len {
        return Err(FrameError::Torn {
            offset: at,
            detail: format!("{got} payload bytes of {len}"),
        });
    }
    check_crc(&payload, crc, at)?;
    *offset += (FRAME_HEADER_LEN + len) as u64;
    Ok(Some(payload))
}

/// Reads until `buf` is full or the stream ends; returns how many bytes were read.
fn read_full<R: Read + ?Sized>(reader: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(payloads: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in payloads {
            encode_frame(p, &mut out).unwrap();
        }
        out
    }

    #[test]
    fn round_trip_in_memory_and_streaming() {
        let buf = frames(&[b"a", b"", b"hello world"]);
        let decoded: Vec<_> = FrameDecoder::new(&buf).collect::<Result<_, _>>().unwrap();
        assert_eq!(decoded, vec![&b"a"[..], b"", b"hello world"]);
        let mut cursor = std::io::Cursor::new(&buf);
        let mut off = 0;
        let mut streamed = Vec::new();
        while let Some(p) = read_frame(&mut cursor, &mut off).unwrap() {
            streamed.push(p);
        }
        assert_eq!(
            streamed,
            vec![b"a".to_vec(), vec![], b"hello world".to_vec()]
        );
        assert_eq!(off as usize, buf.len());
    }

    #[test]
    fn every_truncation_is_torn_at_the_last_frame() {
        let buf = frames(&[b"first", b"second frame"]);
        let second = FRAME_HEADER_LEN + 5;
        for cut in second + 1..buf.len() {
            let results: Vec<_> = FrameDecoder::new(&buf[..cut]).collect();
            assert_eq!(results.len(), 2, "cut at {cut}");
            assert!(results[0].is_ok());
            match &results[1] {
                Err(FrameError::Torn { offset, .. }) => assert_eq!(*offset as usize, second),
                other => panic!("cut at {cut}: expected torn, got {other:?}"),
            }
            let mut cursor = std::io::Cursor::new(&buf[..cut]);
            let mut off = 0;
            assert!(read_frame(&mut cursor, &mut off).unwrap().is_some());
            assert!(matches!(
                read_frame(&mut cursor, &mut off),
                Err(FrameError::Torn { .. })
            ));
        }
    }

    #[test]
    fn every_flipped_payload_or_crc_byte_is_corrupt() {
        let buf = frames(&[b"payload bytes"]);
        for i in 4..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x40;
            let results: Vec<_> = FrameDecoder::new(&bad).collect();
            assert!(
                matches!(results[0], Err(FrameError::Corrupt { offset: 0, .. })),
                "flip at {i}: {results:?}"
            );
        }
    }

    #[test]
    fn huge_length_is_corrupt_not_an_allocation() {
        let mut buf = frames(&[b"x"]);
        buf[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        let results: Vec<_> = FrameDecoder::new(&buf).collect();
        assert!(matches!(results[0], Err(FrameError::Corrupt { .. })));
        let mut off = 0;
        assert!(matches!(
            read_frame(&mut std::io::Cursor::new(&buf), &mut off),
            Err(FrameError::Corrupt { .. })
        ));
    }
}
