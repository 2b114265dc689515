//! Writing the log: chunk writes with create-if-absent, the guard that tells
//! a live slot from one garbage collection freed, group commit answers, read
//! barriers and checkpoints.

use journal_core::proto::{journal_record::Kind, JournalRecord};
use journal_core::snapshot::SnapshotMeta;
use journal_core::{JournalError, Proposal, Result};
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use tokio::sync::oneshot;

use super::Driver;
use crate::checkpoint::{collect_garbage, list_checkpoints, write_checkpoint};
use crate::chunk::encode_chunk;
use crate::proto::ChunkHeader;

/// The outcome of one create-if-absent chunk write.
pub(super) enum WriteOutcome {
    /// The chunk is durable under its name, this master wrote it, and the
    /// slot is live.
    Written(Vec<JournalRecord>),
    /// Another master created the slot first: this master is fenced.
    Taken,
    /// The write landed, but the chunk before it is gone or replaced: either
    /// garbage collection had freed the slot (the chunk is dead history) or
    /// the chunk became history that a checkpoint moved past meanwhile. The
    /// two cannot be told apart, so the chunk is left alone (readers check
    /// identities, and collection removes it if it is dead), nothing is
    /// acknowledged, and this master steps down and reads its way back.
    Overtaken,
    /// The store failed; the chunk may or may not exist.
    Failed(JournalError),
    /// The chunk was written but whether its slot is live could not be
    /// checked: it must not be acknowledged or adopted as this master's.
    Unverified(JournalError),
}

impl Driver {
    /// Whether the slot at `next_seq`, found free, just written or just
    /// read, is the live end of the log rather than a slot garbage
    /// collection freed.
    ///
    /// Garbage collection deletes chunks in ascending order and only below a
    /// published checkpoint, and keeps the chunk before any live position.
    /// So: if this master knows the chunk before its slot, the slot is live
    /// exactly when that chunk is still the very one it applied: its header,
    /// read back with a small range request, carries the same writer id (a
    /// random id per primacy; a stalled primary re-creating a freed name
    /// writes its own). If it knows none (a fresh log, or a state restored
    /// from a checkpoint with no chunk below it), the slot is live exactly
    /// when no checkpoint lies beyond it (one LIST): a freed slot implies a
    /// newer checkpoint, and retention never removes the newest. Callers
    /// observe the slot first and call this after.
    pub(super) async fn slot_is_live(&self) -> Result<bool> {
        match self.prev_chunk {
            Some(prev) => {
                let Some(writer) = read_writer(&self.folder, &self.layout, prev).await? else {
                    return Ok(false);
                };
                let same = self
                    .prev_writer
                    .as_deref()
                    .is_none_or(|known| known == writer);
                if !same {
                    tracing::warn!(
                        chunk = %self.layout.describe(&self.layout.chunk(prev)),
                        "the chunk before this master's position was replaced: it was garbage collected and re-created by a stalled primary's dead write"
                    );
                }
                Ok(same)
            }
            None => {
                let newest = list_checkpoints(&self.folder, &self.layout)
                    .await?
                    .last()
                    .copied();
                Ok(newest.is_none_or(|c| c <= self.next_seq))
            }
        }
    }

    /// Writes `kinds` as one chunk at `next_seq` with create-if-absent.
    pub(super) async fn write_chunk(
        &mut self,
        epoch: u64,
        writer_id: &str,
        kinds: Vec<Kind>,
    ) -> WriteOutcome {
        let first = self.next_seq;
        let records: Vec<JournalRecord> = kinds
            .into_iter()
            .enumerate()
            .map(|(i, kind)| JournalRecord {
                seq: first + i as u64,
                epoch,
                kind: Some(kind),
            })
            .collect();
        let header = ChunkHeader {
            cluster_id: self.cluster_id.clone(),
            first_seq: first,
            epoch,
            count: records.len() as u32,
            writer_id: writer_id.to_string(),
        };
        let path = self.layout.chunk(first);
        let name = self.layout.describe(&path);
        let bytes = match encode_chunk(&header, &records) {
            Ok(b) => b,
            Err(e) => {
                return WriteOutcome::Failed(JournalError::InvalidEntry {
                    detail: e.to_string(),
                })
            }
        };
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        journal_core::failpoint!("ufs-chunk-write-before", |e| {
            WriteOutcome::Failed(JournalError::io(name.clone(), e))
        });
        match self
            .folder
            .store
            .put_opts(&path, PutPayload::from(bytes.clone()), opts)
            .await
        {
            Ok(_) => self.cfg.metrics.ufs_chunk_written(),
            Err(object_store::Error::AlreadyExists { .. }) => {
                // The store client retries a conditional PUT after a server
                // error, and a retry of a PUT that had landed answers 412:
                // the slot then holds this very chunk, which is committed
                // and must not be reported as lost (its entries would be
                // applied, and retried by the clients told they failed).
                match crate::store::read_object(&self.folder, &path, &name).await {
                    Ok(Some(there)) if there == bytes => {
                        tracing::info!(chunk = %name, "the slot already holds this chunk (a retried create); it is ours");
                        self.cfg.metrics.ufs_chunk_written();
                    }
                    _ => return WriteOutcome::Taken,
                }
            }
            Err(e) => return WriteOutcome::Failed(JournalError::io(name, e)),
        }
        // Written and fsynced, not yet acknowledged.
        journal_core::failpoint!("ufs-chunk-write-after", |e| {
            WriteOutcome::Failed(JournalError::io(name.clone(), e))
        });
        // The slot was free. Every write, the claim included, checks that it
        // was a live slot and not one garbage collection freed.
        match self.slot_is_live().await {
            Ok(true) => WriteOutcome::Written(records),
            Ok(false) => {
                tracing::error!(
                    chunk = %name,
                    "the chunk before this write is gone or replaced: this master was overtaken while stalled; nothing is acknowledged"
                );
                WriteOutcome::Overtaken
            }
            Err(e) => WriteOutcome::Unverified(e),
        }
    }

    /// Epoch of the chunk at `seq` (0 if it cannot be read).
    pub(super) async fn epoch_at(&self, seq: u64) -> u64 {
        match self.read_slot(seq).await {
            Ok(Some(c)) => c.header.epoch,
            _ => 0,
        }
    }

    /// Writes one batch as a chunk and answers its proposers. False if this
    /// master stopped being primary.
    pub(super) async fn commit(
        &mut self,
        batch: Vec<Proposal>,
        epoch: u64,
        writer_id: &str,
    ) -> bool {
        let first = self.next_seq;
        let kinds = batch.iter().map(|p| Kind::Entry(p.entry.clone())).collect();
        match self.write_chunk(epoch, writer_id, kinds).await {
            WriteOutcome::Written(records) => {
                if let Some((failures, lasted)) = self.write_failures.success() {
                    tracing::info!(
                        failed_batches = failures,
                        lasted_ms = lasted.as_millis() as u64,
                        slot = first,
                        "journal writes succeed again; acknowledging proposals"
                    );
                }
                self.cfg.metrics.batch_committed(batch.len());
                let outputs = self.apply_records(first, epoch, &records, writer_id);
                for (p, out) in batch.into_iter().zip(outputs) {
                    let _ = p.reply.send(Ok(out));
                }
                true
            }
            WriteOutcome::Taken => {
                // Step down before answering: whoever sees `Fenced` also
                // sees this master as a standby.
                let by_epoch = self.epoch_at(first).await;
                self.fenced(by_epoch).await;
                for p in batch {
                    let _ = p.reply.send(Err(JournalError::Fenced { by_epoch }));
                }
                false
            }
            WriteOutcome::Overtaken => {
                self.fenced(0).await;
                for p in batch {
                    let _ = p.reply.send(Err(JournalError::Fenced { by_epoch: 0 }));
                }
                false
            }
            WriteOutcome::Failed(e) => {
                let detail = e.to_string();
                if let Some(suppressed) = self.write_failures.failure() {
                    tracing::warn!(
                        error = %detail,
                        slot = first,
                        entries = batch.len(),
                        suppressed,
                        "journal write failed; the batch was not acknowledged (proposals fail until the folder is writable again)"
                    );
                }
                let location = self.layout.describe(&self.layout.chunk(first));
                for p in batch {
                    let _ = p
                        .reply
                        .send(Err(JournalError::io(location.clone(), detail.clone())));
                }
                // The write may still have reached the store: look before the
                // next write, so this master's view of the log stays exact. A
                // chunk of its own is adopted only through the same liveness
                // check as a successful write.
                match self.read_slot(first).await {
                    Ok(None) => true,
                    Ok(Some(chunk)) if chunk.header.writer_id == writer_id => {
                        match self.slot_is_live().await {
                            Ok(true) => match self.apply_chunk(&chunk) {
                                Ok(_) => true,
                                Err(e) => {
                                    tracing::error!(error = %e, "could not apply this master's own chunk");
                                    self.step_down("own chunk unreadable").await;
                                    false
                                }
                            },
                            Ok(false) => {
                                tracing::error!(
                                    chunk = %location,
                                    "a failed write landed, but the chunk before it is gone or replaced: this master was overtaken while stalled"
                                );
                                self.fenced(0).await;
                                false
                            }
                            Err(_) => {
                                self.step_down(
                                    "cannot tell whether this master's own chunk is live",
                                )
                                .await;
                                false
                            }
                        }
                    }
                    Ok(Some(chunk)) => {
                        self.fenced(chunk.header.epoch).await;
                        false
                    }
                    Err(_) => {
                        self.step_down("cannot tell whether a failed write reached the store")
                            .await;
                        false
                    }
                }
            }
            WriteOutcome::Unverified(e) => {
                let detail = e.to_string();
                tracing::warn!(error = %detail, slot = first, "a chunk was written but its slot could not be checked; the batch was not acknowledged and this master steps down");
                let location = self.layout.describe(&self.layout.chunk(first));
                for p in batch {
                    let _ = p
                        .reply
                        .send(Err(JournalError::io(location.clone(), detail.clone())));
                }
                self.step_down("a written chunk could not be checked").await;
                false
            }
        }
    }

    /// Answers read barriers with the same fencing guarantee a write has:
    /// still elected, the next slot still free, and that slot still live
    /// (garbage collection did not free it under a stalled primary).
    pub(super) async fn barrier(
        &mut self,
        waiting: Vec<oneshot::Sender<Result<()>>>,
        election_epoch: u64,
    ) -> bool {
        if self.election_rx.borrow().leader_epoch() != Some(election_epoch) {
            for tx in waiting {
                let _ = tx.send(Err(self.not_primary()));
            }
            return true; // the election change is handled by the serve loop
        }
        let path = self.layout.chunk(self.next_seq);
        let outcome = match self.folder.store.head(&path).await {
            // The order matters: the slot is seen free first, then its
            // predecessor is seen alive; garbage collection removes the
            // predecessor before the slot, so no interleaving passes both.
            Err(object_store::Error::NotFound { .. }) => match self.slot_is_live().await {
                Ok(true) => Ok(true),
                Ok(false) => Ok(false),
                Err(e) => Err(e),
            },
            Ok(_) => Ok(false),
            Err(e) => Err(JournalError::io(self.layout.describe(&path), e)),
        };
        match outcome {
            Ok(true) => {
                for tx in waiting {
                    let _ = tx.send(Ok(()));
                }
                true
            }
            Ok(false) => {
                let by_epoch = self.epoch_at(self.next_seq).await;
                if by_epoch == 0 {
                    tracing::error!(
                        slot = self.next_seq,
                        "read barrier: the log before this primary's position was garbage collected; it was overtaken while stalled"
                    );
                }
                self.fenced(by_epoch).await;
                for tx in waiting {
                    let _ = tx.send(Err(JournalError::Fenced { by_epoch }));
                }
                false
            }
            Err(e) => {
                let detail = e.to_string();
                for tx in waiting {
                    let _ = tx.send(Err(JournalError::io(
                        self.layout.describe(&path),
                        detail.clone(),
                    )));
                }
                true
            }
        }
    }

    pub(super) async fn maybe_checkpoint(&mut self) {
        if self.since_checkpoint < self.cfg.checkpoint_period_entries {
            return;
        }
        if let Err(e) = self.checkpoint_now().await {
            tracing::warn!(error = %e, "automatic checkpoint failed; will retry after more entries");
            self.since_checkpoint = self.cfg.checkpoint_period_entries / 2;
        }
    }

    /// Writes a checkpoint of the state before `next_seq`, then collects garbage.
    pub(super) async fn checkpoint_now(&mut self) -> Result<u64> {
        let seq = self.next_seq;
        if self.last_checkpoint == Some(seq) {
            return Ok(seq);
        }
        let started = std::time::Instant::now();
        let meta = SnapshotMeta {
            cluster_id: self.cluster_id.clone(),
            next_seq: seq,
            epoch: self.last_epoch,
        };
        write_checkpoint(&self.folder, &self.layout, &self.machine, meta).await?;
        self.cfg.metrics.checkpoint_written(started.elapsed());
        self.last_checkpoint = Some(seq);
        self.since_checkpoint = 0;
        self.publish_status();
        match collect_garbage(
            &self.folder,
            &self.layout,
            self.cfg.checkpoint_retention,
            &self.cluster_id,
        )
        .await
        {
            Ok(()) => {}
            Err(e @ JournalError::Corrupt { .. }) => {
                tracing::error!(error = %e, "garbage collection refused to delete anything: the folder does not look as the log says it should");
            }
            Err(e) => {
                tracing::warn!(error = %e, "garbage collection after the checkpoint failed; it will be retried after the next one");
            }
        }
        Ok(seq)
    }
}

/// Bytes read from the front of a chunk to get its header: headers are a
/// cluster id, a writer id and three numbers.
const HEADER_PROBE: u64 = 4096;

/// The writer id in the header of `logs/<first>`, read with one small range
/// request; `None` when the chunk does not exist.
async fn read_writer(
    folder: &crate::store::Folder,
    layout: &crate::layout::Layout,
    first: u64,
) -> Result<Option<String>> {
    let path = layout.chunk(first);
    let name = layout.describe(&path);
    let bytes = match folder.store.get_range(&path, 0..HEADER_PROBE).await {
        Ok(b) => b,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(JournalError::io(&name, e)),
    };
    let header = match decode_header(&bytes) {
        Some(h) => h,
        // A header longer than the probe: read the whole chunk.
        None => match crate::store::read_object(folder, &path, &name).await? {
            Some(all) => decode_header(&all).ok_or_else(|| {
                JournalError::corrupt(&name, "the chunk's header frame does not decode")
            })?,
            None => return Ok(None),
        },
    };
    if header.first_seq != first {
        return Err(JournalError::corrupt(
            &name,
            format!(
                "header says first seq {} but the object is named {first}",
                header.first_seq
            ),
        ));
    }
    Ok(Some(header.writer_id))
}

/// Decodes the header frame at the start of `bytes`; `None` if it is not
/// all there or does not verify.
fn decode_header(bytes: &[u8]) -> Option<ChunkHeader> {
    use prost::Message;
    let mut frames = journal_core::framing::FrameDecoder::new(bytes);
    let payload = frames.next()?.ok()?;
    ChunkHeader::decode(payload).ok()
}
