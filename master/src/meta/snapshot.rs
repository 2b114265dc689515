//! The snapshot stream of the metadata state, and its canonical dump.
//!
//! Format (version [`FORMAT_VERSION`]): frames `[u32 len][u32 crc32c][prost
//! SnapshotRecord]` (journal-core's framing), in this order: one header (the
//! version, counters and row counts), inode batches, edge batches, block
//! batches, session batches, one trailer (the record count), then the end of
//! the stream. Rows are strictly ascending by key within and across batches,
//! so one state has exactly one stream. Records are written as they are
//! built, at most [`FLUSH_BYTES`] buffered, so a large state never sits in
//! one buffer.
//!
//! Reading it back, with every check, is `restore.rs`.

use std::fmt::Write as _;
use std::io::Write;

use journal_core::framing::{encode_message, FrameError};
use prost::Message;

use super::machine::{hex, Counters};
use super::proto::{
    snapshot_record::Record, BlockBatch, BlockInfo, BlockRecord, EdgeBatch, EdgeRecord, InodeBatch,
    InodeRecord, SessionBatch, SessionRecord, SnapshotHeader, SnapshotRecord, SnapshotTrailer,
};
use super::sessions::Sessions;
use super::store::{Inode, InodeId, InodeKind, StoreView};

/// The snapshot format this code writes and the only one it reads.
pub const FORMAT_VERSION: u32 = 1;
/// Rows per batch record at most.
const BATCH_ROWS: usize = 1024;
/// Encoded bytes per batch record at most (approximately: a batch is closed
/// once it reaches this), far below the frame limit of 64 MiB.
const BATCH_BYTES: usize = 1 << 20;
/// Bytes buffered before they are handed to the writer.
pub const FLUSH_BYTES: usize = 64 << 10;

/// Why a snapshot stream was refused.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// A frame is torn (truncated stream) or fails its CRC.
    #[error("metadata snapshot: {0}")]
    Frame(#[from] FrameError),
    /// A complete frame whose content is wrong.
    #[error("metadata snapshot, record at byte {offset}: {detail}")]
    Invalid {
        /// Stream offset of the record's frame.
        offset: u64,
        /// What is wrong.
        detail: String,
    },
    /// The records are well formed but the state they describe breaks an
    /// invariant the operations keep.
    #[error("metadata snapshot: inconsistent state: {0}")]
    Inconsistent(String),
}

impl From<SnapshotError> for std::io::Error {
    fn from(e: SnapshotError) -> Self {
        std::io::Error::new(std::io::ErrorKind::InvalidData, e)
    }
}

/// Buffers framed records and hands them to `out` in pieces.
struct RecordWriter<'a> {
    out: &'a mut dyn Write,
    buf: Vec<u8>,
    records: u64,
}

impl RecordWriter<'_> {
    fn put(&mut self, record: Record) -> std::io::Result<()> {
        let msg = SnapshotRecord {
            record: Some(record),
        };
        encode_message(&msg, &mut self.buf)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        self.records += 1;
        if self.buf.len() >= FLUSH_BYTES {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Collects rows into batch records of at most [`BATCH_ROWS`] rows or
    /// about [`BATCH_BYTES`] bytes.
    fn rows<T: Message>(
        &mut self,
        rows: impl Iterator<Item = T>,
        wrap: fn(Vec<T>) -> Record,
    ) -> std::io::Result<()> {
        let mut batch = Vec::new();
        let mut bytes = 0;
        for row in rows {
            bytes += row.encoded_len();
            batch.push(row);
            if batch.len() >= BATCH_ROWS || bytes >= BATCH_BYTES {
                self.put(wrap(std::mem::take(&mut batch)))?;
                bytes = 0;
            }
        }
        if !batch.is_empty() {
            self.put(wrap(batch))?;
        }
        Ok(())
    }
}

/// Streams the state into `out` (see the module docs for the format).
pub(crate) fn write<V: StoreView + ?Sized>(
    store: &V,
    sessions: &Sessions,
    counters: &Counters,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let counts = store.counts();
    let mut w = RecordWriter {
        out,
        buf: Vec::with_capacity(FLUSH_BYTES + BATCH_BYTES),
        records: 0,
    };
    w.put(Record::Header(SnapshotHeader {
        version: FORMAT_VERSION,
        next_id: counters.next_id,
        log_ms: counters.log_ms,
        inodes: counts.inodes,
        edges: counts.edges,
        block_files: counts.block_files,
        sessions: sessions.len() as u64,
    }))?;
    w.rows(
        store.inodes().map(|(id, i)| inode_record(id, &i)),
        |inodes| Record::Inodes(InodeBatch { inodes }),
    )?;
    w.rows(
        store.edges().map(|(parent, name, child)| EdgeRecord {
            parent,
            name: name.into_owned(),
            child,
        }),
        |edges| Record::Edges(EdgeBatch { edges }),
    )?;
    w.rows(
        store.block_files().map(|(file_id, blocks)| BlockRecord {
            file_id,
            blocks: blocks
                .iter()
                .map(|b| BlockInfo {
                    block_id: b.id,
                    length: b.length,
                })
                .collect(),
        }),
        |files| Record::Blocks(BlockBatch { files }),
    )?;
    w.rows(
        sessions.iter().map(|(client, s)| SessionRecord {
            client_id: client.clone(),
            last_seq: s.last_seq,
            last_ms: s.last_ms,
            result: s.result.clone(),
        }),
        |sessions| Record::Sessions(SessionBatch { sessions }),
    )?;
    let records = w.records;
    w.put(Record::Trailer(SnapshotTrailer { records }))?;
    w.out.write_all(&w.buf)?;
    w.out.flush()
}

fn inode_record(id: InodeId, inode: &Inode) -> InodeRecord {
    InodeRecord {
        id,
        is_directory: inode.is_dir(),
        completed: inode.kind == InodeKind::CompleteFile,
        size: inode.size,
        created_ms: inode.created_ms,
        modified_ms: inode.modified_ms,
    }
}

/// The canonical dump: every row of every table in key order, as text.
pub(crate) fn dump<V: StoreView + ?Sized>(store: &V, sessions: &Sessions, c: &Counters) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "next_id {} log_ms {}", c.next_id, c.log_ms);
    for (id, i) in store.inodes() {
        let _ = writeln!(
            s,
            "inode {id} {:?} size {} created {} modified {}",
            i.kind, i.size, i.created_ms, i.modified_ms
        );
    }
    for (parent, name, child) in store.edges() {
        let _ = writeln!(s, "edge {parent} {name:?} -> {child}");
    }
    for (file, blocks) in store.block_files() {
        let _ = writeln!(
            s,
            "blocks {file} {:?}",
            blocks.iter().map(|b| (b.id, b.length)).collect::<Vec<_>>()
        );
    }
    for (client, session) in sessions.iter() {
        let _ = writeln!(
            s,
            "session {} seq {} ms {} result {}",
            hex(client),
            session.last_seq,
            session.last_ms,
            hex(&session.result)
        );
    }
    s
}
