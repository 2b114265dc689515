//! Checkpoints: the state machine streamed into `checkpoints/<seq>`, loaded
//! at start, and the garbage collection of what they make obsolete.

use std::io::{Read, Write};
use std::time::Instant;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use journal_core::progress::{Progress, ProgressReader, ProgressWriter, Unit};
use journal_core::snapshot::{
    read_snapshot_header, restore_snapshot, write_frozen_snapshot, write_snapshot, SnapshotMeta,
    DEFAULT_SNAPSHOT_FRAME,
};
use journal_core::{JournalError, SharedStateMachine};
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use tokio::sync::mpsc;

use crate::chunk::{chunk_error, decode_chunk};
use crate::layout::{is_client_staging, parse_seq, seq_name, Layout};
use crate::store::{read_object, Folder, Publish};

/// The setting that says how many checkpoints garbage collection keeps.
pub const RETENTION_KEY: &str = "primacy.master.journal.checkpoint.retention";

/// Bytes read to check a checkpoint's header without reading the state.
const HEADER_PROBE: u64 = 64 << 10;

/// Size of the parts a checkpoint is uploaded in.
const UPLOAD_PART: usize = 8 << 20;

/// A `Write` that hands its bytes to an async task through a bounded channel,
/// so a snapshot larger than memory streams out piecewise.
struct ChannelWriter {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let data = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(UPLOAD_PART),
        ));
        self.tx.blocking_send(data).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "checkpoint upload stopped")
        })
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= UPLOAD_PART {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// A `Read` over byte pieces an async task downloads.
struct ChannelReader {
    rx: mpsc::Receiver<Result<Bytes, String>>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.current.len());
        out[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        Ok(n)
    }
}

/// Writes a checkpoint of `machine` (the state before `next_seq`) and
/// publishes it as `checkpoints/<next_seq>` with create-if-absent.
///
/// The state is streamed to a temporary object first, so a reader never sees
/// a partial checkpoint under its final name. If another master published
/// the same checkpoint first, that one is kept (they are equal: same log
/// prefix, deterministic machine). Returns the bytes written.
pub async fn write_checkpoint(
    folder: &Folder,
    layout: &Layout,
    machine: &SharedStateMachine,
    meta: SnapshotMeta,
) -> Result<u64, JournalError> {
    let started = Instant::now();
    let temp = layout.temp();
    let temp_name = layout.describe(&temp);
    let upload = folder
        .store
        .put_multipart(&temp)
        .await
        .map_err(|e| JournalError::io(&temp_name, e))?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, UPLOAD_PART);
    let (tx, mut rx) = mpsc::channel::<Bytes>(2);
    let machine = machine.clone();
    let snap_meta = meta.clone();
    let progress_name = layout.describe(&layout.checkpoint(meta.next_seq));
    let producer = tokio::task::spawn_blocking(move || {
        let mut sink = ProgressWriter::new(
            ChannelWriter {
                tx,
                buf: Vec::with_capacity(UPLOAD_PART),
            },
            Progress::new(
                format!("writing checkpoint {progress_name}"),
                Unit::Bytes,
                None,
            ),
        );
        // A frozen copy lets readers of the live state (queries after a read
        // barrier) go on while the checkpoint streams out.
        let frozen = machine.read().freeze();
        let stats = match frozen {
            Some(frozen) => {
                write_frozen_snapshot(&*frozen, &snap_meta, &mut sink, DEFAULT_SNAPSHOT_FRAME)?
            }
            None => {
                let guard = machine.read();
                write_snapshot(&*guard, &snap_meta, &mut sink, DEFAULT_SNAPSHOT_FRAME)?
            }
        };
        sink.flush()?;
        sink.progress().finish();
        Ok::<_, std::io::Error>(stats)
    });
    let mut written = 0u64;
    let mut upload_error = None;
    while let Some(piece) = rx.recv().await {
        if let Err(e) = writer.wait_for_capacity(2).await {
            upload_error = Some(e);
            break;
        }
        written += piece.len() as u64;
        writer.put(piece);
    }
    drop(rx);
    let produced = producer
        .await
        .map_err(|e| JournalError::io(&temp_name, format!("snapshot task failed: {e}")))?;
    if let Some(e) = upload_error {
        let _ = writer.abort().await;
        return Err(JournalError::io(&temp_name, e));
    }
    let stats = match produced {
        Ok(stats) => stats,
        Err(e) => {
            let _ = writer.abort().await;
            return Err(JournalError::io(
                &temp_name,
                format!("state machine snapshot failed: {e}"),
            ));
        }
    };
    writer
        .finish()
        .await
        .map_err(|e| JournalError::io(&temp_name, e))?;
    let target = layout.checkpoint(meta.next_seq);
    journal_core::failpoint!("ufs-checkpoint-publish-before", |e| {
        Err(JournalError::io(layout.describe(&target), e))
    });
    let published = match folder.publish {
        Publish::Copy => {
            let published = folder.store.copy_if_not_exists(&temp, &target).await;
            let _ = folder.store.delete(&temp).await;
            published
        }
        Publish::Rename => {
            let published = folder.store.rename_if_not_exists(&temp, &target).await;
            if published.is_err() {
                let _ = folder.store.delete(&temp).await;
            }
            published
        }
    };
    match published {
        Ok(()) => tracing::info!(
            checkpoint = %layout.describe(&target),
            state_bytes = stats.bytes,
            object_bytes = written,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "checkpoint written"
        ),
        Err(object_store::Error::AlreadyExists { .. }) => tracing::info!(
            checkpoint = %layout.describe(&target),
            "checkpoint already published by another master; kept theirs"
        ),
        Err(e) => return Err(JournalError::io(layout.describe(&target), e)),
    }
    journal_core::failpoint!("ufs-checkpoint-publish-after", |e| {
        Err(JournalError::io(layout.describe(&target), e))
    });
    Ok(written)
}

/// Sequence numbers of the published checkpoints, ascending.
///
/// Any other object under `checkpoints/` is `Corrupt` naming it: garbage
/// collection and reloads are steered by this listing, so nothing in it may
/// be guessed at.
pub async fn list_checkpoints(folder: &Folder, layout: &Layout) -> Result<Vec<u64>, JournalError> {
    list_seqs(folder, layout, &layout.checkpoints(), None).await
}

/// First sequence numbers of the chunks in the log, ascending. Any other
/// object under `logs/` is `Corrupt` naming it.
pub async fn list_chunks(folder: &Folder, layout: &Layout) -> Result<Vec<u64>, JournalError> {
    list_seqs(folder, layout, &layout.logs(), None).await
}

/// Like [`list_chunks`], but only names at or after `from` (the store lists
/// from an offset where it can, so a long log is not listed whole).
pub async fn list_chunks_from(
    folder: &Folder,
    layout: &Layout,
    from: u64,
) -> Result<Vec<u64>, JournalError> {
    list_seqs(folder, layout, &layout.logs(), from.checked_sub(1)).await
}

/// The sequence-number names under `prefix` (after `after`, when given),
/// ascending. Local stores hide their staging files (a local put's
/// `name#n`) and, on HDFS only ([`Folder::client_staging`]), the client's
/// (`.<name>.tmp.<n>`) are skipped, so
/// anything else that is not a canonical name is a stray object.
async fn list_seqs(
    folder: &Folder,
    layout: &Layout,
    prefix: &object_store::path::Path,
    after: Option<u64>,
) -> Result<Vec<u64>, JournalError> {
    let listing = match after {
        Some(seq) => {
            let offset = prefix.clone().join(seq_name(seq).as_str());
            folder.store.list_with_offset(Some(prefix), &offset)
        }
        None => folder.store.list(Some(prefix)),
    };
    let metas: Vec<_> = listing
        .try_collect()
        .await
        .map_err(|e| JournalError::io(layout.describe(prefix), e))?;
    let mut seqs = Vec::with_capacity(metas.len());
    for meta in &metas {
        if folder.client_staging && is_client_staging(&meta.location) {
            // A store client's upload in progress (HDFS), not an object.
            continue;
        }
        let direct_child = meta
            .location
            .prefix_match(prefix)
            .map(|parts| parts.count() == 1)
            .unwrap_or(false);
        match parse_seq(&meta.location) {
            Some(seq) if direct_child => seqs.push(seq),
            _ => {
                return Err(JournalError::corrupt(
                    layout.describe(&meta.location),
                    format!(
                        "an unexpected object in {}: only objects named by a 16-digit lowercase hex sequence number belong there",
                        layout.describe(prefix)
                    ),
                ))
            }
        }
    }
    seqs.sort_unstable();
    if let Some(seq) = after {
        seqs.retain(|&s| s > seq);
    }
    Ok(seqs)
}

/// Restores `machine` from `checkpoints/<seq>`, verifying every frame.
///
/// Returns the snapshot's metadata. Any verification failure is `Corrupt`
/// naming the object.
pub async fn load_checkpoint(
    folder: &Folder,
    layout: &Layout,
    machine: &SharedStateMachine,
    seq: u64,
    cluster_id: &str,
) -> Result<SnapshotMeta, JournalError> {
    let started = Instant::now();
    let path = layout.checkpoint(seq);
    let name = layout.describe(&path);
    let result = folder
        .store
        .get(&path)
        .await
        .map_err(|e| JournalError::io(&name, e))?;
    let size = result.meta.size;
    let mut stream = result.into_stream();
    let (tx, rx) = mpsc::channel(4);
    let pump = tokio::spawn(async move {
        while let Some(piece) = stream.next().await {
            let failed = piece.is_err();
            if tx.send(piece.map_err(|e| e.to_string())).await.is_err() || failed {
                break;
            }
        }
    });
    let machine = machine.clone();
    let task_name = name.clone();
    let meta = tokio::task::spawn_blocking(move || {
        let mut reader = ProgressReader::new(
            ChannelReader {
                rx,
                current: Bytes::new(),
            },
            Progress::new(
                format!("restoring checkpoint {task_name}"),
                Unit::Bytes,
                Some(size),
            ),
        );
        let mut guard = machine.write();
        let restored = restore_snapshot(&mut *guard, &mut reader, &task_name);
        reader.progress().finish();
        restored
    })
    .await
    .map_err(|e| JournalError::io(&name, format!("restore task failed: {e}")))?;
    pump.abort();
    let meta = meta?;
    if meta.next_seq != seq {
        return Err(JournalError::corrupt(
            &name,
            format!(
                "the checkpoint says it covers seq {} but is named {seq}",
                meta.next_seq
            ),
        ));
    }
    if meta.cluster_id != cluster_id {
        return Err(JournalError::corrupt(
            &name,
            format!(
                "the checkpoint belongs to cluster {:?}, the folder to {cluster_id:?}",
                meta.cluster_id
            ),
        ));
    }
    tracing::info!(
        checkpoint = %name,
        bytes = size,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "state restored from checkpoint"
    );
    Ok(meta)
}

/// Deletes what the newest checkpoints make obsolete.
///
/// Keeps the `retain` newest checkpoints and every chunk that holds records
/// at or after the oldest kept one, including the chunk that holds the
/// record just before it: a primary that appends verifies after each write
/// that the chunk before its own still exists, which is how it learns that
/// it was overtaken (see docs/ufs-journal.md). Chunks are deleted in
/// ascending order so that guarantee holds at every moment.
///
/// Nothing is deleted on the word of a listing alone: the oldest kept
/// checkpoint's header must name its own position and cluster, and the chunk
/// before it must decode, belong to the cluster and reach the checkpoint.
/// Otherwise a stray object (a checkpoint-like name beyond the log's end, a
/// chunk-like name inside a chunk's range) could steer the deletion of live
/// chunks; that is `Corrupt` naming the object, and nothing is deleted.
pub async fn collect_garbage(
    folder: &Folder,
    layout: &Layout,
    retain: usize,
    cluster_id: &str,
) -> Result<(), JournalError> {
    if retain == 0 {
        return Err(JournalError::config(
            RETENTION_KEY,
            "0 would delete every checkpoint; keep at least 1",
        ));
    }
    let checkpoints = list_checkpoints(folder, layout).await?;
    if checkpoints.is_empty() {
        return Ok(());
    }
    let keep_from = checkpoints.len().saturating_sub(retain);
    let oldest_kept = checkpoints[keep_from];
    verify_checkpoint_header(folder, layout, oldest_kept, cluster_id).await?;
    let chunks = list_chunks(folder, layout).await?;
    let Some(&holder) = chunks.iter().rev().find(|&&c| c < oldest_kept) else {
        return delete_checkpoints(folder, layout, &checkpoints[..keep_from], 0, oldest_kept).await;
    };
    let holder_path = layout.chunk(holder);
    let holder_name = layout.describe(&holder_path);
    let bytes = read_object(folder, &holder_path, &holder_name)
        .await?
        .ok_or_else(|| {
            JournalError::io(
                &holder_name,
                "the chunk vanished while garbage collecting (another collector?); nothing more deleted",
            )
        })?;
    let chunk = decode_chunk(&bytes, holder, cluster_id)
        .map_err(|e| chunk_error(holder_name.clone(), e))?;
    if chunk.end() < oldest_kept {
        // A newer collector may have moved on meanwhile (removing this
        // holder and leaving an older leftover name): only a checkpoint that
        // is still there can be damage.
        if !list_checkpoints(folder, layout)
            .await?
            .contains(&oldest_kept)
        {
            return Ok(());
        }
        return Err(JournalError::corrupt(
            layout.describe(&layout.checkpoint(oldest_kept)),
            format!(
                "the checkpoint says it covers records below {oldest_kept}, but the log's chunk before it, {holder_name}, ends at record {}: records {}..{oldest_kept} were never in the log (a stray checkpoint, or a hole); nothing was deleted",
                chunk.end() - 1,
                chunk.end()
            ),
        ));
    }
    let mut deleted = 0usize;
    for &first in chunks.iter().take_while(|&&c| c < holder) {
        let path = layout.chunk(first);
        match folder.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => deleted += 1,
            Err(e) => return Err(JournalError::io(layout.describe(&path), e)),
        }
    }
    delete_checkpoints(
        folder,
        layout,
        &checkpoints[..keep_from],
        deleted,
        oldest_kept,
    )
    .await
}

/// Deletes the checkpoints older than the retained ones, after the chunks.
async fn delete_checkpoints(
    folder: &Folder,
    layout: &Layout,
    old: &[u64],
    chunks_deleted: usize,
    oldest_kept: u64,
) -> Result<(), JournalError> {
    for seq in old {
        let path = layout.checkpoint(*seq);
        match folder.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(JournalError::io(layout.describe(&path), e)),
        }
    }
    if chunks_deleted > 0 || !old.is_empty() {
        tracing::info!(
            chunks_deleted,
            checkpoints_deleted = old.len(),
            below_seq = oldest_kept,
            "journal garbage collected"
        );
    }
    Ok(())
}

/// Reads only the header frame of `checkpoints/<seq>` and checks that it
/// names `seq` and `cluster_id`.
async fn verify_checkpoint_header(
    folder: &Folder,
    layout: &Layout,
    seq: u64,
    cluster_id: &str,
) -> Result<(), JournalError> {
    let path = layout.checkpoint(seq);
    let name = layout.describe(&path);
    // A range past the end is cut to the object's length by every store, so
    // one request reads the header of a short checkpoint too.
    let head = folder
        .store
        .get_range(&path, 0..HEADER_PROBE)
        .await
        .map_err(|e| JournalError::io(&name, e))?;
    let (meta, _) = read_snapshot_header(&mut head.as_ref(), &name)?;
    if meta.next_seq != seq || meta.cluster_id != cluster_id {
        return Err(JournalError::corrupt(
            &name,
            format!(
                "the checkpoint's header says cluster {:?}, position {}; its name and the folder say cluster {cluster_id:?}, position {seq}",
                meta.cluster_id, meta.next_seq
            ),
        ));
    }
    Ok(())
}
