//! The restore of the previous release, kept verbatim as the slow, obvious
//! reference the fast restore (`restore.rs`) is compared against: it fills
//! the store row by row and checks with a hash set and tree walks.
//! Test-only.

use std::collections::HashSet;
use std::io::{BufReader, Read};

use bytes::Bytes;
use journal_core::framing::read_frame;
use prost::Message;

use crate::meta::machine::{hex, Counters};
use crate::meta::path::{validate_component, MAX_DEPTH, MAX_PATH_BYTES};
use crate::meta::proto::{
    snapshot_record::Record, BlockRecord, EdgeRecord, FsResult, InodeRecord, SessionRecord,
    SnapshotHeader, SnapshotRecord,
};
use crate::meta::sessions::{Session, Sessions, MAX_CLIENT_ID_BYTES};
use crate::meta::snapshot::{SnapshotError, FLUSH_BYTES, FORMAT_VERSION};
use crate::meta::store::{Block, Inode, InodeId, InodeKind, MetaStore, StoreView, ROOT_ID};

/// Which part of the stream a record belongs to; parts come in this order.
fn section(record: &Record) -> u8 {
    match record {
        Record::Header(_) => 0,
        Record::Inodes(_) => 1,
        Record::Edges(_) => 2,
        Record::Blocks(_) => 3,
        Record::Sessions(_) => 4,
        Record::Trailer(_) => 5,
    }
}

/// What restore has read so far.
struct Reader<S> {
    store: S,
    sessions: Sessions,
    header: Option<SnapshotHeader>,
    section: u8,
    last_inode: Option<InodeId>,
    last_edge: Option<(InodeId, String)>,
    last_block_file: Option<InodeId>,
    last_client: Option<Bytes>,
    // Children seen so far (each inode has one parent) and the running child
    // count of the parent whose edges are being read.
    has_parent: HashSet<InodeId>,
    run: Option<(InodeId, u64)>,
    edge_rows: u64,
    block_rows: u64,
}

/// Reads a stream written by `write` into `store` (which must be empty)
/// and verifies it completely.
pub(crate) fn read<S: MetaStore>(
    store: S,
    input: &mut dyn Read,
) -> Result<(S, Sessions, Counters), SnapshotError> {
    let mut input = BufReader::with_capacity(FLUSH_BYTES, input);
    let mut r = Reader {
        store,
        sessions: Sessions::default(),
        header: None,
        section: 0,
        last_inode: None,
        last_edge: None,
        last_block_file: None,
        last_client: None,
        has_parent: HashSet::new(),
        run: None,
        edge_rows: 0,
        block_rows: 0,
    };
    let mut offset = 0u64;
    let mut records = 0u64;
    loop {
        let at = offset;
        let bad = |detail: String| SnapshotError::Invalid { offset: at, detail };
        let Some(frame) = read_frame(&mut input, &mut offset)? else {
            return Err(bad("the stream ends before its trailer (truncated)".into()));
        };
        let record = SnapshotRecord::decode(frame.as_slice())
            .map_err(|e| bad(format!("undecodable record: {e}")))?
            .record
            .ok_or_else(|| bad("empty record".into()))?;
        let part = section(&record);
        if (records == 0) != (part == 0) || part < r.section {
            return Err(bad(format!(
                "record of section {part} out of order (after section {})",
                r.section
            )));
        }
        r.section = part;
        match record {
            Record::Header(h) => r.header(h).map_err(bad)?,
            Record::Inodes(b) => b
                .inodes
                .into_iter()
                .try_for_each(|i| r.inode(i))
                .map_err(bad)?,
            Record::Edges(b) => b
                .edges
                .into_iter()
                .try_for_each(|e| r.edge(e))
                .map_err(bad)?,
            Record::Blocks(b) => b
                .files
                .into_iter()
                .try_for_each(|f| r.blocks(f))
                .map_err(bad)?,
            Record::Sessions(b) => b
                .sessions
                .into_iter()
                .try_for_each(|s| r.session(s))
                .map_err(bad)?,
            Record::Trailer(t) => {
                if t.records != records {
                    return Err(bad(format!(
                        "the trailer counts {} records, the stream held {records}",
                        t.records
                    )));
                }
                break;
            }
        }
        records += 1;
    }
    if read_frame(&mut input, &mut offset)?.is_some() {
        return Err(SnapshotError::Invalid {
            offset,
            detail: "records after the trailer".into(),
        });
    }
    r.finish()
}

impl<S: MetaStore> Reader<S> {
    fn header(&mut self, h: SnapshotHeader) -> Result<(), String> {
        if h.version != FORMAT_VERSION {
            return Err(format!(
                "format version {} (this master reads version {FORMAT_VERSION})",
                h.version
            ));
        }
        if h.next_id <= ROOT_ID {
            return Err(format!("next id {} is not above the root's id", h.next_id));
        }
        self.header = Some(h);
        Ok(())
    }

    fn next_id(&self) -> InodeId {
        self.header.as_ref().map_or(0, |h| h.next_id)
    }

    fn inode(&mut self, i: InodeRecord) -> Result<(), String> {
        if self.last_inode.is_some_and(|last| i.id <= last) || i.id == 0 || i.id >= self.next_id() {
            return Err(format!("inode id {} out of order or range", i.id));
        }
        let kind = match (i.is_directory, i.completed) {
            (true, false) => InodeKind::Directory,
            (false, false) => InodeKind::OpenFile,
            (false, true) => InodeKind::CompleteFile,
            (true, true) => return Err(format!("inode {}: a directory marked completed", i.id)),
        };
        if kind == InodeKind::OpenFile && i.size != 0 {
            return Err(format!("inode {}: an incomplete file with a length", i.id));
        }
        self.last_inode = Some(i.id);
        self.store.put_inode(
            i.id,
            Inode {
                created_ms: i.created_ms,
                modified_ms: i.modified_ms,
                size: i.size,
                kind,
            },
        );
        Ok(())
    }

    fn edge(&mut self, e: EdgeRecord) -> Result<(), String> {
        let key = (e.parent, e.name);
        if self.last_edge.as_ref().is_some_and(|last| key <= *last) {
            return Err(format!("edge ({}, {:?}) out of order", key.0, key.1));
        }
        let (parent, name) = key;
        validate_component(&name).map_err(|d| format!("edge under {parent}: {d}"))?;
        if !self.store.inode(parent).is_some_and(|p| p.is_dir()) {
            return Err(format!(
                "edge {name:?} under {parent}, which is not a directory"
            ));
        }
        if e.child == ROOT_ID || self.store.inode(e.child).is_none() {
            return Err(format!("edge {name:?} under {parent} to inode {}", e.child));
        }
        if !self.has_parent.insert(e.child) {
            return Err(format!("inode {} has two parents", e.child));
        }
        self.close_run(Some(parent))?;
        self.store.put_child(parent, &name, e.child);
        self.edge_rows += 1;
        self.last_edge = Some((parent, name));
        Ok(())
    }

    /// Counts the edges of one parent (they are contiguous) and checks the
    /// count against its inode when the next parent starts.
    fn close_run(&mut self, next: Option<InodeId>) -> Result<(), String> {
        match self.run {
            Some((parent, ref mut n)) if Some(parent) == next => *n += 1,
            run => {
                if let Some((parent, n)) = run {
                    let size = self.store.inode(parent).map_or(0, |p| p.size);
                    if size != n {
                        return Err(format!(
                            "directory {parent} counts {size} children, has {n}"
                        ));
                    }
                }
                self.run = next.map(|p| (p, 1));
            }
        }
        Ok(())
    }

    fn blocks(&mut self, f: BlockRecord) -> Result<(), String> {
        self.close_run(None)?;
        if self.last_block_file.is_some_and(|last| f.file_id <= last) {
            return Err(format!("blocks of file {} out of order", f.file_id));
        }
        let Some(inode) = self.store.inode(f.file_id) else {
            return Err(format!("blocks of missing inode {}", f.file_id));
        };
        if inode.kind != InodeKind::CompleteFile || f.blocks.is_empty() {
            return Err(format!(
                "blocks row of inode {} (not a complete file, or empty)",
                f.file_id
            ));
        }
        let mut seen = HashSet::with_capacity(f.blocks.len());
        let mut sum = 0u64;
        let mut blocks = Vec::with_capacity(f.blocks.len());
        for b in &f.blocks {
            if !seen.insert(b.block_id) {
                return Err(format!("file {}: block {} twice", f.file_id, b.block_id));
            }
            sum = sum
                .checked_add(b.length)
                .ok_or_else(|| format!("file {}: block lengths overflow", f.file_id))?;
            blocks.push(Block {
                id: b.block_id,
                length: b.length,
            });
        }
        if sum != inode.size {
            return Err(format!(
                "file {}: length {} but blocks sum to {sum}",
                f.file_id, inode.size
            ));
        }
        self.store.put_blocks(f.file_id, &blocks);
        self.last_block_file = Some(f.file_id);
        self.block_rows += 1;
        Ok(())
    }

    fn session(&mut self, s: SessionRecord) -> Result<(), String> {
        self.close_run(None)?;
        if self
            .last_client
            .as_ref()
            .is_some_and(|last| s.client_id <= *last)
        {
            return Err(format!("session {} out of order", hex(&s.client_id)));
        }
        let log_ms = self.header.as_ref().map_or(0, |h| h.log_ms);
        if s.client_id.is_empty() || s.client_id.len() > MAX_CLIENT_ID_BYTES || s.last_ms > log_ms {
            return Err(format!(
                "session {}: bad client id or time",
                hex(&s.client_id)
            ));
        }
        FsResult::decode(s.result.clone())
            .map_err(|e| format!("session {}: result: {e}", hex(&s.client_id)))?;
        self.last_client = Some(s.client_id.clone());
        self.sessions.restore_one(
            s.client_id,
            Session {
                last_seq: s.last_seq,
                last_ms: s.last_ms,
                result: s.result,
            },
        );
        Ok(())
    }

    /// Checks counts and whole-tree invariants once every row is in.
    fn finish(mut self) -> Result<(S, Sessions, Counters), SnapshotError> {
        let bad = SnapshotError::Inconsistent;
        self.close_run(None).map_err(bad)?;
        let Some(h) = self.header.take() else {
            return Err(bad("no header".into()));
        };
        let counts = self.store.counts();
        let got = (
            counts.inodes,
            self.edge_rows,
            self.block_rows,
            self.sessions.len() as u64,
        );
        if got != (h.inodes, h.edges, h.block_files, h.sessions) {
            return Err(bad(format!(
                "the header counts (inodes, edges, block rows, sessions) = {:?}, the stream held {got:?}",
                (h.inodes, h.edges, h.block_files, h.sessions)
            )));
        }
        check_tree(&self.store).map_err(bad)?;
        let counters = Counters {
            next_id: h.next_id,
            log_ms: h.log_ms,
        };
        Ok((self.store, self.sessions, counters))
    }
}

/// Every inode reachable from the root within the depth and path limits,
/// every directory's child count right, every completed file with a length
/// has its blocks.
fn check_tree<S: StoreView>(store: &S) -> Result<(), String> {
    let Some(root) = store.inode(ROOT_ID) else {
        return Err("no root directory".into());
    };
    if !root.is_dir() {
        return Err("the root is not a directory".into());
    }
    let mut sum_children = 0u64;
    for (id, inode) in store.inodes() {
        if inode.is_dir() {
            sum_children = sum_children.saturating_add(inode.size);
        } else if inode.kind == InodeKind::CompleteFile
            && inode.size > 0
            && store.blocks(id).is_none()
        {
            return Err(format!("file {id} has a length but no blocks"));
        }
    }
    if sum_children != store.counts().edges {
        return Err(format!(
            "directories count {sum_children} children, the edge table has {}",
            store.counts().edges
        ));
    }
    // (id, depth, path bytes); breadth first with an explicit queue.
    let mut queue = std::collections::VecDeque::from([(ROOT_ID, 0usize, 1usize)]);
    let mut reached = 0u64;
    while let Some((id, depth, len)) = queue.pop_front() {
        reached += 1;
        for (name, child) in store.children(id) {
            let child_len = if depth == 0 {
                1 + name.len()
            } else {
                len + 1 + name.len()
            };
            if depth + 1 > MAX_DEPTH || child_len > MAX_PATH_BYTES {
                return Err(format!(
                    "inode {child} lies beyond the depth or path length limit"
                ));
            }
            queue.push_back((child, depth + 1, child_len));
        }
    }
    if reached != store.counts().inodes {
        return Err(format!(
            "{} inodes but {reached} reachable from the root (a cycle or an orphan)",
            store.counts().inodes
        ));
    }
    Ok(())
}
