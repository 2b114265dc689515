//! The UFS journal folder's FORMAT marker.

use journal_core::framing::encode_message;
use journal_core::JournalError;
use journal_ufs::format::parse_format;
use journal_ufs::layout::{FORMAT_MAGIC, LAYOUT_VERSION};

const FOLDER: &str = "file:///fuzz/journal";
const NAME: &str = "file:///fuzz/journal/FORMAT";

/// Decodes `data` as the bytes of FORMAT.
///
/// Contract: a marker that decodes carries primacy's magic and layout
/// version and re-encodes to a frame that decodes equal; any proper prefix
/// of a valid marker is `Corrupt` naming the object (a truncated marker is
/// damage, never another cluster's); every failure is `Corrupt` naming
/// FORMAT or `ForeignJournal` naming the folder.
pub fn target(data: &[u8]) {
    match parse_format(data, FOLDER, NAME) {
        Ok(marker) => {
            assert_eq!(marker.magic, FORMAT_MAGIC);
            assert_eq!(marker.layout_version, LAYOUT_VERSION);
            let mut framed = Vec::new();
            encode_message(&marker, &mut framed).expect("re-encodes");
            assert_eq!(
                parse_format(&framed, FOLDER, NAME).expect("decodes"),
                marker
            );
            for cut in [0, data.len() / 2, data.len() - 1] {
                match parse_format(&data[..cut], FOLDER, NAME) {
                    Err(JournalError::Corrupt { location, .. }) => assert_eq!(location, NAME),
                    other => panic!("FORMAT cut at {cut}: {other:?}"),
                }
            }
        }
        Err(JournalError::Corrupt { location, .. }) => assert_eq!(location, NAME),
        Err(JournalError::ForeignJournal { location, .. }) => assert_eq!(location, FOLDER),
        Err(other) => panic!("FORMAT failed with {other:?}"),
    }
}
