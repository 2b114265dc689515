//! Record framing (`[len][crc32c][payload]`), in memory and streamed.

use journal_core::framing::{
    encode_frame, read_frame, FrameDecoder, FrameError, FRAME_HEADER_LEN, MAX_FRAME_LEN,
};

/// Decodes `data` as a run of frames with both decoders.
///
/// Contract: the frames that verify re-encode to exactly the bytes they
/// were read from; decoding stops at the first bad frame, whose error
/// names its offset; `Torn` only when the input really ends inside that
/// frame and `Corrupt` only when the frame is complete (or its length is
/// beyond the limit); the streaming decoder agrees frame for frame and
/// error for error.
pub fn target(data: &[u8]) {
    let mut decoder = FrameDecoder::new(data);
    let mut frames = Vec::new();
    let mut failure = None;
    for result in decoder.by_ref() {
        match result {
            Ok(payload) => frames.push(payload),
            Err(e) => failure = Some(e),
        }
    }
    let pos = decoder.position();
    let mut again = Vec::new();
    for payload in &frames {
        encode_frame(payload, &mut again).expect("a decoded frame re-encodes");
    }
    assert_eq!(again, &data[..pos], "frames re-encode to their bytes");

    match &failure {
        None => assert_eq!(pos, data.len(), "no error, yet bytes were left"),
        Some(e) => {
            assert_eq!(e.offset() as usize, pos, "the error names its frame");
            let rest = &data[pos..];
            let declared = rest
                .get(..4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
            match e {
                FrameError::Torn { .. } => {
                    let len = declared.unwrap_or(0);
                    assert!(
                        rest.len() < FRAME_HEADER_LEN
                            || (len <= MAX_FRAME_LEN && rest.len() < FRAME_HEADER_LEN + len),
                        "torn, yet the frame is complete: {e}"
                    );
                }
                FrameError::Corrupt { .. } => {
                    let len = declared.expect("a corrupt frame has a header");
                    assert!(
                        len > MAX_FRAME_LEN || rest.len() >= FRAME_HEADER_LEN + len,
                        "corrupt, yet the frame is incomplete: {e}"
                    );
                }
            }
        }
    }

    let mut cursor = std::io::Cursor::new(data);
    let mut offset = 0u64;
    let mut i = 0;
    loop {
        match read_frame(&mut cursor, &mut offset) {
            Ok(Some(payload)) => {
                assert_eq!(Some(&payload.as_slice()), frames.get(i), "frame {i}");
                i += 1;
            }
            Ok(None) => {
                assert!(
                    failure.is_none(),
                    "the stream ended cleanly, memory said {failure:?}"
                );
                assert_eq!(i, frames.len());
                break;
            }
            Err(e) => {
                assert_eq!(i, frames.len(), "the stream failed early: {e}");
                assert_eq!(Some(&e), failure.as_ref());
                break;
            }
        }
    }
    assert_eq!(offset as usize, pos, "both decoders stop at the same byte");
}
