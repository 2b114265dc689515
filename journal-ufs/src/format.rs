//! The FORMAT marker: which cluster a journal folder belongs to.

use futures::TryStreamExt;
use journal_core::framing::FRAME_HEADER_LEN;
use journal_core::snapshot::unix_ms;
use journal_core::JournalError;
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload};
use prost::Message;

use crate::layout::{Layout, FORMAT_MAGIC, LAYOUT_VERSION};
use crate::proto::Format;
use crate::store::{read_object, Folder};

/// Writes FORMAT with `cluster_id` into an empty folder.
///
/// Refuses (`AlreadyFormatted`) when FORMAT exists, and (`ForeignJournal`)
/// when the folder already holds other objects, so formatting never destroys
/// or adopts data. FORMAT is created with create-if-absent: two concurrent
/// `format` runs cannot both succeed. A store that does not honour
/// create-if-absent is refused first (`Config`, see [`crate::probe`]).
pub async fn format(folder: &Folder, cluster_id: &str) -> Result<(), JournalError> {
    let layout = Layout::new(folder.root.clone(), folder.url.clone());
    if cluster_id.trim().is_empty() || cluster_id.chars().any(|c| c.is_control()) {
        return Err(JournalError::config(
            "cluster id",
            format!("{cluster_id:?} is not a usable cluster id (empty or control characters)"),
        ));
    }
    if let Some(existing) = read_format(folder, &layout).await? {
        return Err(JournalError::AlreadyFormatted {
            location: folder.url.clone(),
            cluster_id: existing.cluster_id,
        });
    }
    crate::probe::check_create_if_absent(folder).await?;
    let mut listing = folder.store.list(Some(&folder.root));
    while let Some(obj) = listing
        .try_next()
        .await
        .map_err(|e| JournalError::io(&folder.url, e))?
    {
        if crate::probe::is_probe(&folder.root, &obj.location) {
            // Another master's probe (or one a crash left): not data.
            continue;
        }
        return Err(JournalError::ForeignJournal {
            location: folder.url.clone(),
            detail: format!(
                "the folder is not empty (it holds {}) but has no FORMAT; refusing to format over foreign data",
                layout.describe(&obj.location)
            ),
        });
    }
    let marker = Format {
        layout_version: LAYOUT_VERSION,
        cluster_id: cluster_id.to_string(),
        created_unix_ms: unix_ms(),
        magic: FORMAT_MAGIC.to_string(),
    };
    let mut framed = Vec::new();
    journal_core::framing::encode_message(&marker, &mut framed)
        .map_err(|e| JournalError::corrupt(layout.describe(&layout.format()), e.to_string()))?;
    let opts = PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    };
    match folder
        .store
        .put_opts(&layout.format(), PutPayload::from(framed), opts)
        .await
    {
        Ok(_) => Ok(()),
        Err(object_store::Error::AlreadyExists { .. }) => {
            let existing = read_format(folder, &layout).await?.map(|f| f.cluster_id);
            Err(JournalError::AlreadyFormatted {
                location: folder.url.clone(),
                cluster_id: existing.unwrap_or_default(),
            })
        }
        Err(e) => Err(JournalError::io(layout.describe(&layout.format()), e)),
    }
}

/// Largest length a FORMAT frame can plausibly declare.
const MAX_FORMAT_LEN: u32 = 64 << 10;

/// Reads FORMAT; `Ok(None)` when absent.
///
/// FORMAT is one CRC-checked frame, written whole with create-if-absent. A
/// FORMAT of primacy's whose frame does not verify (flipped bytes,
/// truncation, an empty object, bytes after the frame) is `Corrupt` naming
/// the object: the operator must look at damage, not at another cluster. A
/// FORMAT that is not primacy's (another tool's file, other magic, another
/// layout version) is `ForeignJournal`.
pub async fn read_format(folder: &Folder, layout: &Layout) -> Result<Option<Format>, JournalError> {
    let path = layout.format();
    let name = layout.describe(&path);
    let Some(bytes) = read_object(folder, &path, &name).await? else {
        return Ok(None);
    };
    parse_format(&bytes, &folder.url, &name).map(Some)
}

/// Decodes FORMAT's bytes; see [`read_format`] for how failures are told apart.
pub fn parse_format(bytes: &[u8], folder_url: &str, name: &str) -> Result<Format, JournalError> {
    let foreign = |detail: String| JournalError::ForeignJournal {
        location: folder_url.to_string(),
        detail,
    };
    // Damage or something else's file? Ours starts with a small length and
    // carries the magic; a flipped byte or a truncation leaves at least one
    // of the two (a truncation keeps the length, a flip hits one of them).
    let small_length = bytes.len() < FRAME_HEADER_LEN
        || bytes
            .get(..4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .is_some_and(|b| u32::from_le_bytes(b) <= MAX_FORMAT_LEN);
    let has_magic = bytes
        .windows(FORMAT_MAGIC.len())
        .any(|w| w == FORMAT_MAGIC.as_bytes());
    let ours = small_length || has_magic;
    let damaged = |detail: String| {
        if ours {
            JournalError::corrupt(name, format!("the format marker is damaged: {detail}"))
        } else {
            foreign(format!("FORMAT is not a primacy format marker ({detail})"))
        }
    };
    let mut frames = journal_core::framing::FrameDecoder::new(bytes);
    let payload = match frames.next() {
        Some(Ok(p)) => p,
        Some(Err(e)) => return Err(damaged(format!("its frame does not verify ({e})"))),
        None => return Err(damaged("the object is empty".into())),
    };
    if frames.next().is_some() {
        return Err(damaged(format!(
            "{} bytes follow its frame (FORMAT is written whole, once)",
            bytes.len() - payload.len() - FRAME_HEADER_LEN
        )));
    }
    let marker = Format::decode(payload).map_err(|e| {
        foreign(format!(
            "FORMAT holds a valid frame that is not a primacy format marker ({e})"
        ))
    })?;
    if marker.magic != FORMAT_MAGIC {
        return Err(foreign(format!(
            "FORMAT is not a primacy format marker (magic {:?})",
            marker.magic
        )));
    }
    if marker.layout_version != LAYOUT_VERSION {
        return Err(foreign(format!(
            "FORMAT has layout version {}, this primacy reads version {LAYOUT_VERSION}",
            marker.layout_version
        )));
    }
    Ok(marker)
}

/// Checks FORMAT before a master uses the folder; returns the cluster id.
///
/// `expected` is the cluster id this master was configured with, if any.
pub async fn check_format(
    folder: &Folder,
    layout: &Layout,
    expected: Option<&str>,
) -> Result<String, JournalError> {
    let marker = read_format(folder, layout)
        .await?
        .ok_or_else(|| JournalError::Unformatted {
            location: folder.url.clone(),
        })?;
    if let Some(expected) = expected {
        if marker.cluster_id != expected {
            return Err(JournalError::ForeignJournal {
                location: folder.url.clone(),
                detail: format!(
                    "it was formatted for cluster {:?}, this master is configured for cluster {expected:?}",
                    marker.cluster_id
                ),
            });
        }
    }
    Ok(marker.cluster_id)
}
