//! Checkpoints: the state machine streamed into `checkpoints/<seq>`, loaded
//! at start, and the garbage collection of what they make obsolete.

use std::io::{Read, Write};
use std::time::Instant;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use journal_core::snapshot::{
    restore_snapshot, write_snapshot, SnapshotMeta, DEFAULT_SNAPSHOT_FRAME,
};
use journal_core::{JournalError, SharedStateMachine};
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use tokio::sync::mpsc;

use crate::layout::{parse_seq, Layout};
use crate::store::Folder;

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
    let producer = tokio::task::spawn_blocking(move || {
        let guard = machine.read();
        let mut sink = ChannelWriter {
            tx,
            buf: Vec::with_capacity(UPLOAD_PART),
        };
        let stats = write_snapshot(&*guard, &snap_meta, &mut sink, DEFAULT_SNAPSHOT_FRAME)?;
        sink.flush()?;
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
    let published = folder.store.copy_if_not_exists(&temp, &target).await;
    let _ = folder.store.delete(&temp).await;
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
    Ok(written)
}

/// Sequence numbers of the published checkpoints, ascending.
pub async fn list_checkpoints(folder: &Folder, layout: &Layout) -> Result<Vec<u64>, JournalError> {
    list_seqs(folder, layout, &layout.checkpoints()).await
}

/// First sequence numbers of the chunks in the log, ascending.
pub async fn list_chunks(folder: &Folder, layout: &Layout) -> Result<Vec<u64>, JournalError> {
    list_seqs(folder, layout, &layout.logs()).await
}

/// The sequence-number names under `prefix`, ascending; other names
/// (staging files of interrupted puts) are ignored.
async fn list_seqs(
    folder: &Folder,
    layout: &Layout,
    prefix: &object_store::path::Path,
) -> Result<Vec<u64>, JournalError> {
    let metas: Vec<_> = folder
        .store
        .list(Some(prefix))
        .try_collect()
        .await
        .map_err(|e| JournalError::io(layout.describe(prefix), e))?;
    let mut seqs: Vec<u64> = metas
        .iter()
        .filter_map(|m| parse_seq(&m.location))
        .collect();
    seqs.sort_unstable();
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
        let mut reader = ChannelReader {
            rx,
            current: Bytes::new(),
        };
        let mut guard = machine.write();
        restore_snapshot(&mut *guard, &mut reader, &task_name)
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
/// Keeps the `retain` newest checkpoints (at least one) and every chunk that
/// holds records at or after the oldest kept one, including the chunk that
/// holds the record just before it: a primary that appends verifies after
/// each write that the chunk before its own still exists, which is how it
/// learns that it was overtaken (see docs/ufs-journal.md). Chunks are deleted
/// in ascending order so that guarantee holds at every moment.
pub async fn collect_garbage(
    folder: &Folder,
    layout: &Layout,
    retain: usize,
) -> Result<(), JournalError> {
    let checkpoints = list_checkpoints(folder, layout).await?;
    let retain = retain.max(1);
    if checkpoints.is_empty() {
        return Ok(());
    }
    let keep_from = checkpoints.len().saturating_sub(retain);
    let oldest_kept = checkpoints[keep_from];
    let chunks = list_chunks(folder, layout).await?;
    let mut deleted = 0usize;
    for pair in chunks.windows(2) {
        if pair[1] >= oldest_kept {
            break;
        }
        let path = layout.chunk(pair[0]);
        match folder.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => deleted += 1,
            Err(e) => return Err(JournalError::io(layout.describe(&path), e)),
        }
    }
    for seq in &checkpoints[..keep_from] {
        let path = layout.checkpoint(*seq);
        match folder.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(JournalError::io(layout.describe(&path), e)),
        }
    }
    if deleted > 0 || keep_from > 0 {
        tracing::info!(
            chunks_deleted = deleted,
            checkpoints_deleted = keep_from,
            below_seq = oldest_kept,
            "journal garbage collected"
        );
    }
    Ok(())
}
