//! Reading the log: restoring checkpoints, applying chunks in order, and
//! proving that the end this master reached is the real end of the log.

use std::time::Instant;

use bytes::Bytes;
use journal_core::progress::{Progress, Unit};
use journal_core::proto::{journal_record::Kind, JournalRecord};
use journal_core::{JournalError, Result};
use object_store::ObjectStoreExt;

use super::Driver;
use crate::checkpoint::{list_checkpoints, list_chunks, list_chunks_from, load_checkpoint};
use crate::chunk::{chunk_error, claim_of, decode_chunk, Chunk};
use crate::log_end::{judge, Observed, Position, Verdict};
use crate::store::read_object;

/// What proving the end of the log found, once nothing is wrong with it.
pub(super) enum End {
    /// The absent slot is the end of the log.
    Reached,
    /// The slot was written meanwhile: keep tailing.
    Moved,
    /// Garbage collection overtook this master; it reloaded from the newest
    /// checkpoint and must keep tailing from there.
    Reloaded,
}

impl Driver {
    /// Restores the newest checkpoint and replays every chunk after it, then
    /// proves the end of the log is real. Runs before the journal is handed
    /// out, so a corrupt journal fails `open` and nothing is written.
    pub(crate) async fn recover(&mut self) -> Result<()> {
        let started = Instant::now();
        if let Some(&seq) = list_checkpoints(&self.folder, &self.layout).await?.last() {
            self.restore_from(seq).await?;
        }
        self.catch_up().await?;
        tracing::info!(
            folder = %self.folder.url,
            next_seq = self.next_seq,
            epoch = self.last_epoch,
            checkpoint = ?self.last_checkpoint,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "journal replayed"
        );
        Ok(())
    }

    /// Replaces the state with checkpoint `seq` (or a newer one that
    /// appears meanwhile) and positions the log after it.
    ///
    /// The chunk holding the records just before the checkpoint is read, and
    /// only then the checkpoints are listed again: if none is newer, garbage
    /// collection cannot have removed that chunk (it removes it only below a
    /// newer checkpoint), so it is the log's own chunk and not a dead write
    /// re-creating a freed name; and it must reach the checkpoint, or the
    /// checkpoint lies beyond the log (`Corrupt` naming it).
    pub(super) async fn restore_from(&mut self, mut seq: u64) -> Result<()> {
        loop {
            let meta = load_checkpoint(
                &self.folder,
                &self.layout,
                &self.machine,
                seq,
                &self.cluster_id,
            )
            .await?;
            self.next_seq = seq;
            self.last_epoch = meta.epoch;
            self.last_checkpoint = Some(seq);
            self.since_checkpoint = 0;
            self.prev_chunk = None;
            self.prev_writer = None;
            self.applied_since.clear();
            // Everything below the checkpoint is history garbage collection owns.
            self.judged_from = seq;
            // Chunks are named by their first record, so the one holding `seq`
            // may start before it: find it by listing, once.
            let chunks = list_chunks(&self.folder, &self.layout).await?;
            let holder = match chunks.iter().rev().find(|&&first| first < seq) {
                Some(&first) => self.read_slot(first).await?,
                None => None,
            };
            let newest = list_checkpoints(&self.folder, &self.layout)
                .await?
                .last()
                .copied();
            if let Some(newer) = newest.filter(|&n| n > seq) {
                tracing::info!(
                    checkpoint = newer,
                    "a newer checkpoint was published while restoring; restoring that one"
                );
                seq = newer;
                continue;
            }
            if let Some(chunk) = holder {
                if chunk.end() < seq {
                    return Err(JournalError::corrupt(
                        self.layout.describe(&self.layout.checkpoint(seq)),
                        format!(
                            "the checkpoint covers records below {seq}, but the log's last chunk before it, {}, ends at record {}: records {}..{seq} were never in the log (a stray checkpoint, or a hole)",
                            self.layout.describe(&self.layout.chunk(chunk.header.first_seq)),
                            chunk.end() - 1,
                            chunk.end()
                        ),
                    ));
                }
                let holder = chunk.header.first_seq;
                if chunk.end() > seq {
                    self.apply_chunk(&chunk)?;
                } else {
                    self.prev_writer = Some(chunk.header.writer_id.clone());
                }
                self.prev_chunk = Some(holder);
                // A name between the holder and the checkpoint lies inside
                // the holder's range: judge it.
                self.judged_from = holder + 1;
                self.applied_since.clear();
            }
            self.publish_status();
            return Ok(());
        }
    }

    /// Reads and verifies the chunk named `first`; `None` when absent.
    ///
    /// Chunks are published whole (staged, then create-if-absent), so one
    /// that does not decode is damage, never an unfinished write: `Corrupt`
    /// naming the object, which is left as it is.
    pub(super) async fn read_slot(&self, first: u64) -> Result<Option<Chunk>> {
        let path = self.layout.chunk(first);
        let name = self.layout.describe(&path);
        let Some(bytes) = read_object(&self.folder, &path, &name).await? else {
            return Ok(None);
        };
        decode_chunk(&bytes, first, &self.cluster_id)
            .map(Some)
            .map_err(|e| chunk_error(name, e))
    }

    /// Applies the records of a verified chunk that are not applied yet.
    pub(super) fn apply_chunk(&mut self, chunk: &Chunk) -> Result<Vec<Bytes>> {
        if chunk.header.epoch < self.last_epoch {
            return Err(JournalError::corrupt(
                self.layout.describe(&self.layout.chunk(chunk.header.first_seq)),
                format!(
                    "epoch decreases from {} to {} (a deposed primary's write, which the naming scheme forbids)",
                    self.last_epoch, chunk.header.epoch
                ),
            ));
        }
        if chunk.header.first_seq > self.next_seq {
            return Err(JournalError::corrupt(
                self.layout
                    .describe(&self.layout.chunk(chunk.header.first_seq)),
                format!(
                    "records {}..{} are missing before it",
                    self.next_seq, chunk.header.first_seq
                ),
            ));
        }
        if let Some(claim) = claim_of(chunk) {
            if chunk.header.epoch > self.last_epoch {
                tracing::info!(
                    epoch = claim.epoch,
                    address = %claim.address,
                    seq = chunk.header.first_seq,
                    "journal claimed by a new primary"
                );
            }
        }
        Ok(self.apply_records(
            chunk.header.first_seq,
            chunk.header.epoch,
            &chunk.records,
            &chunk.header.writer_id,
        ))
    }

    /// Applies `records` (at or after `next_seq`) and returns the entries' outputs in order.
    pub(super) fn apply_records(
        &mut self,
        first: u64,
        epoch: u64,
        records: &[JournalRecord],
        writer_id: &str,
    ) -> Vec<Bytes> {
        let mut outputs = Vec::with_capacity(records.len());
        {
            let mut machine = self.machine.write();
            for record in records {
                if record.seq < self.next_seq {
                    continue;
                }
                if let Some(Kind::Entry(entry)) = &record.kind {
                    outputs.push(machine.apply(record.seq, entry));
                }
                self.next_seq = record.seq + 1;
                self.since_checkpoint += 1;
            }
        }
        self.last_epoch = epoch;
        self.prev_chunk = Some(first);
        self.prev_writer = Some(writer_id.to_string());
        if self.role_tx.borrow().is_primary() {
            // A serving primary is the log's only writer: the chunks it wrote
            // itself need no judging, and remembering them would grow without
            // bound.
            self.judged_from = first + 1;
            self.applied_since.clear();
        } else if first >= self.judged_from {
            self.applied_since.push(first);
        }
        self.publish_status();
        outputs
    }

    /// Reads the next chunk if it exists and applies it; true if one was
    /// applied (or this master reloaded from a newer checkpoint).
    ///
    /// A chunk read is applied only once the chunk before it is seen, after
    /// the read, to be the very one this master applied (same writer), with
    /// the same argument as a writer's guard: a slot garbage collection
    /// freed and a stalled primary's dead write re-created would otherwise
    /// pass for part of the log.
    pub(super) async fn tail_once(&mut self) -> Result<bool> {
        let Some(chunk) = self.read_slot(self.next_seq).await? else {
            return Ok(false);
        };
        if self.slot_is_live().await? {
            self.apply_chunk(&chunk)?;
            return Ok(true);
        }
        // The chunk before this slot vanished or was replaced after this
        // master applied it, which garbage collection does only once a
        // checkpoint at or beyond this slot exists; the newest checkpoint,
        // listed now, is there (retention never removes the newest).
        // Reloading one exactly at this slot changes no state but re-reads
        // the chunk before it, which un-wedges a master whose predecessor
        // was collected after it was applied.
        let newest = list_checkpoints(&self.folder, &self.layout)
            .await?
            .last()
            .copied();
        match newest {
            Some(checkpoint) if checkpoint >= self.next_seq => {
                tracing::warn!(
                    chunk = %self.layout.describe(&self.layout.chunk(self.next_seq)),
                    checkpoint,
                    "the chunk before this master's position is gone or replaced; reloading from the newest checkpoint"
                );
                self.restore_from(checkpoint).await?;
                Ok(true)
            }
            _ => Err(JournalError::io(
                self.layout.describe(&self.layout.chunk(self.next_seq)),
                "the chunk before this slot vanished or was replaced, but no checkpoint covers it (was a chunk deleted by hand?); retrying",
            )),
        }
    }

    /// Applies every chunk present until the end of the log is proven real
    /// (see [`Driver::verify_end`]).
    ///
    /// A catch-up that lasts logs its progress every few seconds (entries
    /// applied of those in the log, and the rate); the log's end is listed
    /// only once the first such line is due, so a short catch-up (the usual
    /// failover) costs no extra listing.
    pub(super) async fn catch_up(&mut self) -> Result<()> {
        let from = self.next_seq;
        let mut progress = Progress::new("catching up on the journal", Unit::Entries, None);
        let mut total_known = false;
        let result = async {
            loop {
                while self.tail_once().await? {
                    if self.shutting_down() {
                        return Ok(());
                    }
                    if self.applied_since.len() >= super::END_CHECK_CHUNKS {
                        // Bounds what is remembered during a long replay.
                        self.verify_end().await?;
                    }
                    if !total_known && progress.due() {
                        total_known = true;
                        if let Ok(chunks) =
                            list_chunks_from(&self.folder, &self.layout, self.next_seq).await
                        {
                            let last = chunks.last().copied().unwrap_or(self.next_seq);
                            progress.set_total(last.max(self.next_seq).saturating_sub(from));
                        }
                    }
                    progress.set_done(self.next_seq.saturating_sub(from));
                }
                match self.verify_end().await? {
                    End::Reached => return Ok(()),
                    End::Moved | End::Reloaded => {}
                }
            }
        }
        .await;
        progress.finish();
        result
    }

    /// Proves that the absent slot at `next_seq` is the end of the log: lists
    /// the chunks from the judged position, reads the slot again, lists the
    /// checkpoints (in that order: `log_end::judge` relies on it), and acts
    /// on the verdict. A hole or a stray object is `Corrupt` naming it; a
    /// master overtaken by garbage collection reloads from the newest
    /// checkpoint.
    pub(super) async fn verify_end(&mut self) -> Result<End> {
        let listed = list_chunks_from(&self.folder, &self.layout, self.judged_from).await?;
        let slot = self.layout.chunk(self.next_seq);
        let slot_present = match self.folder.store.head(&slot).await {
            Ok(_) => true,
            Err(object_store::Error::NotFound { .. }) => false,
            Err(e) => return Err(JournalError::io(self.layout.describe(&slot), e)),
        };
        let newest_checkpoint = list_checkpoints(&self.folder, &self.layout)
            .await?
            .last()
            .copied();
        let position = Position {
            judged_from: self.judged_from,
            applied: std::mem::take(&mut self.applied_since),
            next_seq: self.next_seq,
        };
        let verdict = judge(
            &position,
            &Observed {
                listed,
                slot_present,
                newest_checkpoint,
            },
        );
        let mut applied = position.applied;
        match verdict {
            Verdict::End | Verdict::Moved => {
                // Everything listed below `next_seq` checked out: judge only
                // what comes after the last applied chunk from now on.
                if let Some(prev) = self.prev_chunk {
                    self.judged_from = self.judged_from.max(prev + 1);
                }
                applied.clear();
                self.applied_since = applied;
                Ok(if verdict == Verdict::End {
                    End::Reached
                } else {
                    End::Moved
                })
            }
            Verdict::Overtaken { checkpoint } => {
                tracing::warn!(
                    next_seq = self.next_seq,
                    checkpoint,
                    "the log at this master's position was garbage collected while it was behind; reloading from the newest checkpoint"
                );
                self.restore_from(checkpoint).await?;
                Ok(End::Reloaded)
            }
            Verdict::Hole { from, to, found } => Err(JournalError::corrupt(
                self.layout.describe(&self.layout.chunk(found)),
                format!(
                    "records {from}..={to} are missing before this object ({} is absent): a hole in the log, or a stray object beyond its end; nothing was written",
                    self.layout.describe(&self.layout.chunk(from))
                ),
            )),
            Verdict::Inside { found, chunk } => Err(JournalError::corrupt(
                self.layout.describe(&self.layout.chunk(found)),
                match chunk {
                    Some(c) => format!(
                        "an object named like a chunk lies inside the range of chunk {}, which was applied; it is not part of the log",
                        self.layout.describe(&self.layout.chunk(c)),
                    ),
                    None => format!(
                        "an object named like a chunk lies between records {} and {}, inside the range of the chunk that holds the checkpoint's position; it is not part of the log",
                        self.judged_from, self.next_seq
                    ),
                },
            )),
        }
    }
}
