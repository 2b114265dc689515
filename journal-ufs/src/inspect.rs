//! Reading a journal folder without running a journal: for tools (`primacy
//! journal dump`), for tests, and for operators checking a folder.

use journal_core::{JournalError, Result};

use crate::checkpoint::{list_checkpoints, list_chunks};
use crate::chunk::{chunk_error, decode_chunk, Chunk};
use crate::format::check_format;
use crate::layout::Layout;
use crate::store::{open_folder, read_object, Folder};

/// What a journal folder holds.
#[derive(Debug, Clone)]
pub struct FolderContents {
    /// The cluster id in FORMAT.
    pub cluster_id: String,
    /// Published checkpoints, ascending.
    pub checkpoints: Vec<u64>,
    /// Every chunk present, ascending, each verified.
    pub chunks: Vec<Chunk>,
}

/// Reads and verifies every chunk in the folder at `url`.
///
/// Fails with `Unformatted`/`ForeignJournal` like a master would, and with
/// `Corrupt` naming the first chunk that does not verify (a torn chunk too:
/// this is a reader, it removes nothing).
pub async fn read_folder(url: &str) -> Result<FolderContents> {
    let folder = open_folder(url, false)?;
    read_opened(&folder).await
}

/// [`read_folder`] on an opened folder.
pub async fn read_opened(folder: &Folder) -> Result<FolderContents> {
    let layout = Layout::new(folder.root.clone(), folder.url.clone());
    let cluster_id = check_format(folder, &layout, None).await?;
    let checkpoints = list_checkpoints(folder, &layout).await?;
    let mut chunks = Vec::new();
    for first in list_chunks(folder, &layout).await? {
        let path = layout.chunk(first);
        let name = layout.describe(&path);
        let Some(bytes) = read_object(folder, &path, &name).await? else {
            continue; // garbage collected since the listing
        };
        chunks.push(decode_chunk(&bytes, first, &cluster_id).map_err(|e| chunk_error(name, e))?);
    }
    Ok(FolderContents {
        cluster_id,
        checkpoints,
        chunks,
    })
}

/// Sequence number after the last record of the log at `folder` (1 when empty).
pub async fn log_end(folder: &Folder) -> Result<u64> {
    let layout = Layout::new(folder.root.clone(), folder.url.clone());
    let cluster_id = check_format(folder, &layout, None).await?;
    let Some(&last) = list_chunks(folder, &layout).await?.last() else {
        return Ok(1);
    };
    let path = layout.chunk(last);
    let name = layout.describe(&path);
    let bytes = read_object(folder, &path, &name)
        .await?
        .ok_or_else(|| JournalError::io(&name, "the last chunk vanished while reading"))?;
    Ok(decode_chunk(&bytes, last, &cluster_id)
        .map_err(|e| chunk_error(name, e))?
        .end())
}
