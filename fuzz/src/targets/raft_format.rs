//! The Raft journal data directory's FORMAT marker.

use std::path::Path;

use journal_core::framing::encode_message;
use journal_core::JournalError;
use journal_raft::format::{format_path, parse_marker, FORMAT_MAGIC, LAYOUT_VERSION};

const DATA_DIR: &str = "/fuzz/raft";

/// Decodes `data` as the bytes of `<data dir>/FORMAT`.
///
/// Contract: as for the UFS marker: a marker that decodes has primacy's
/// magic and layout version and round-trips; a proper prefix of it is
/// `Corrupt` naming the file; every failure is `Corrupt` naming the file or
/// `ForeignJournal` naming the directory.
pub fn target(data: &[u8]) {
    let dir = Path::new(DATA_DIR);
    let file = format_path(dir).display().to_string();
    match parse_marker(data, dir) {
        Ok(marker) => {
            assert_eq!(marker.magic, FORMAT_MAGIC);
            assert_eq!(marker.layout_version, LAYOUT_VERSION);
            let mut framed = Vec::new();
            encode_message(&marker, &mut framed).expect("re-encodes");
            assert_eq!(parse_marker(&framed, dir).expect("decodes"), marker);
            for cut in [0, data.len() / 2, data.len() - 1] {
                match parse_marker(&data[..cut], dir) {
                    Err(JournalError::Corrupt { location, .. }) => assert_eq!(location, file),
                    other => panic!("FORMAT cut at {cut}: {other:?}"),
                }
            }
        }
        Err(JournalError::Corrupt { location, .. }) => assert_eq!(location, file),
        Err(JournalError::ForeignJournal { location, .. }) => assert_eq!(location, DATA_DIR),
        Err(other) => panic!("FORMAT failed with {other:?}"),
    }
}
