//! Reading a snapshot stream back (see `snapshot.rs` for the format).
//!
//! Restore trusts nothing: every frame's CRC, the order of sections and
//! keys, the counts, and the invariants the operations keep (one parent per
//! inode, every inode reachable from the root, child counts, depth and path
//! limits, block sums) are checked while reading, and the store is filled
//! only once everything verified.
//!
//! Why rows are gathered into sorted vectors first: the stream is strictly
//! ascending by key, so an inode is found by binary search in a flat array
//! (no tree walk, no hashing), "one parent per inode" is a flag per array
//! slot, each directory's children are one contiguous slice for the
//! reachability walk, and the tables are then built in one pass from rows
//! known to be new and in order ([`MetaStore::load_sorted`]).

use std::collections::{HashSet, VecDeque};
use std::io::{BufReader, Read};

use bytes::Bytes;
use journal_core::framing::read_frame;
use prost::Message;

use super::machine::{hex, Counters};
use super::path::{validate_component, MAX_DEPTH, MAX_PATH_BYTES};
use super::proto::{
    snapshot_record::Record, BlockRecord, EdgeRecord, FsResult, InodeRecord, SessionRecord,
    SnapshotHeader, SnapshotRecord,
};
use super::sessions::{Session, Sessions, MAX_CLIENT_ID_BYTES};
use super::snapshot::{SnapshotError, FLUSH_BYTES, FORMAT_VERSION};
use super::store::{Block, Inode, InodeId, InodeKind, MetaStore, SortedRows, ROOT_ID};

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

/// The children of one directory: a slice of the edge rows.
struct Run {
    /// Index of the directory in the inode rows.
    parent: usize,
    /// First edge row of the directory.
    start: usize,
    /// One past its last edge row.
    end: usize,
}

/// What restore has read so far.
struct Reader {
    rows: SortedRows,
    sessions: Sessions,
    header: Option<SnapshotHeader>,
    section: u8,
    // For each edge row, the index of its child in `rows.inodes`.
    edge_child: Vec<usize>,
    // Indexed like `rows.inodes`: set once an edge points at the inode.
    has_parent: Vec<bool>,
    // Closed runs, ascending by parent index, and the open one.
    runs: Vec<Run>,
    run: Option<Run>,
    last_client: Option<Bytes>,
}

/// Reads a stream written by [`write`] into `store` (which must be empty)
/// and verifies it completely.
///
/// [`write`]: super::snapshot::write
pub(crate) fn read<S: MetaStore>(
    mut store: S,
    input: &mut dyn Read,
) -> Result<(S, Sessions, Counters), SnapshotError> {
    let mut input = BufReader::with_capacity(FLUSH_BYTES, input);
    let mut r = Reader {
        rows: SortedRows::default(),
        sessions: Sessions::default(),
        header: None,
        section: 0,
        edge_child: Vec::new(),
        has_parent: Vec::new(),
        runs: Vec::new(),
        run: None,
        last_client: None,
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
        if part > 1 && r.section <= 1 {
            // The inode rows are complete: size the per-inode flags once.
            r.has_parent = vec![false; r.rows.inodes.len()];
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
    let (rows, sessions, counters) = r.finish()?;
    store.load_sorted(rows);
    Ok((store, sessions, counters))
}

impl Reader {
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
        // Reserve from the header's counts, bounded so a lying header cannot
        // make restore allocate more than the stream could hold.
        let cap = |n: u64| usize::try_from(n.min(1 << 24)).unwrap_or(0);
        self.rows.inodes.reserve(cap(h.inodes));
        self.rows.edges.reserve(cap(h.edges));
        self.edge_child.reserve(cap(h.edges));
        self.header = Some(h);
        Ok(())
    }

    fn next_id(&self) -> InodeId {
        self.header.as_ref().map_or(0, |h| h.next_id)
    }

    /// The index of inode `id` among the rows from `from` on.
    fn find(&self, id: InodeId, from: usize) -> Option<usize> {
        let rest = self.rows.inodes.get(from..)?;
        rest.binary_search_by_key(&id, |(i, _)| *i)
            .ok()
            .map(|at| from + at)
    }

    fn inode(&mut self, i: InodeRecord) -> Result<(), String> {
        let last = self.rows.inodes.last().map(|(id, _)| *id);
        if last.is_some_and(|last| i.id <= last) || i.id == 0 || i.id >= self.next_id() {
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
        self.rows.inodes.push((
            i.id,
            Inode {
                created_ms: i.created_ms,
                modified_ms: i.modified_ms,
                size: i.size,
                kind,
            },
        ));
        Ok(())
    }

    fn edge(&mut self, e: EdgeRecord) -> Result<(), String> {
        let EdgeRecord {
            parent,
            name,
            child,
        } = e;
        if let Some((last_parent, last_name, _)) = self.rows.edges.last() {
            if (parent, name.as_str()) <= (*last_parent, &**last_name) {
                return Err(format!("edge ({parent}, {name:?}) out of order"));
            }
        }
        validate_component(&name).map_err(|d| format!("edge under {parent}: {d}"))?;
        // Edges ascend by parent, so the parent lies at or after the open
        // run's parent.
        let from = self.run.as_ref().map_or(0, |r| r.parent);
        let parent_at = self
            .find(parent, from)
            .filter(|&at| self.rows.inodes[at].1.is_dir());
        let Some(parent_at) = parent_at else {
            return Err(format!(
                "edge {name:?} under {parent}, which is not a directory"
            ));
        };
        let child_at = match self.find(child, 0) {
            Some(at) if child != ROOT_ID => at,
            _ => return Err(format!("edge {name:?} under {parent} to inode {child}")),
        };
        match self.has_parent.get_mut(child_at) {
            Some(flag) if !*flag => *flag = true,
            _ => return Err(format!("inode {child} has two parents")),
        }
        let row = self.rows.edges.len();
        if self.run.as_ref().is_some_and(|r| r.parent != parent_at) {
            self.close_run()?;
        }
        let run = self.run.get_or_insert(Run {
            parent: parent_at,
            start: row,
            end: row,
        });
        run.end = row + 1;
        self.rows.edges.push((parent, name, child));
        self.edge_child.push(child_at);
        Ok(())
    }

    /// Checks the open run's edge count against its directory's child count
    /// (a directory's edges are contiguous, so the run is complete when the
    /// next parent or section starts).
    fn close_run(&mut self) -> Result<(), String> {
        let Some(run) = self.run.take() else {
            return Ok(());
        };
        let (parent, inode) = self.rows.inodes[run.parent];
        let n = (run.end - run.start) as u64;
        if inode.size != n {
            return Err(format!(
                "directory {parent} counts {} children, has {n}",
                inode.size
            ));
        }
        self.runs.push(run);
        Ok(())
    }

    fn blocks(&mut self, f: BlockRecord) -> Result<(), String> {
        self.close_run()?;
        if self
            .rows
            .blocks
            .last()
            .is_some_and(|(last, _)| f.file_id <= *last)
        {
            return Err(format!("blocks of file {} out of order", f.file_id));
        }
        let Some(at) = self.find(f.file_id, 0) else {
            return Err(format!("blocks of missing inode {}", f.file_id));
        };
        let inode = self.rows.inodes[at].1;
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
        self.rows
            .blocks
            .push((f.file_id, blocks.into_boxed_slice()));
        Ok(())
    }

    fn session(&mut self, s: SessionRecord) -> Result<(), String> {
        self.close_run()?;
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
    fn finish(mut self) -> Result<(SortedRows, Sessions, Counters), SnapshotError> {
        let bad = SnapshotError::Inconsistent;
        self.close_run().map_err(bad)?;
        let Some(h) = self.header.take() else {
            return Err(bad("no header".into()));
        };
        let got = (
            self.rows.inodes.len() as u64,
            self.rows.edges.len() as u64,
            self.rows.blocks.len() as u64,
            self.sessions.len() as u64,
        );
        if got != (h.inodes, h.edges, h.block_files, h.sessions) {
            return Err(bad(format!(
                "the header counts (inodes, edges, block rows, sessions) = {:?}, the stream held {got:?}",
                (h.inodes, h.edges, h.block_files, h.sessions)
            )));
        }
        self.check_tree().map_err(bad)?;
        let counters = Counters {
            next_id: h.next_id,
            log_ms: h.log_ms,
        };
        Ok((self.rows, self.sessions, counters))
    }

    /// Every inode reachable from the root within the depth and path
    /// limits, every directory's child count right, every completed file
    /// with a length has its blocks.
    fn check_tree(&self) -> Result<(), String> {
        let inodes = &self.rows.inodes;
        match inodes.first() {
            Some((ROOT_ID, root)) if root.is_dir() => {}
            Some((ROOT_ID, _)) => return Err("the root is not a directory".into()),
            _ => return Err("no root directory".into()),
        }
        let mut sum_children = 0u64;
        // Block rows ascend by file id like the inodes: walk both at once.
        let mut block_rows = self.rows.blocks.iter().map(|(id, _)| *id).peekable();
        for (id, inode) in inodes {
            while block_rows.next_if(|file| file < id).is_some() {}
            if inode.is_dir() {
                sum_children = sum_children.saturating_add(inode.size);
            } else if inode.kind == InodeKind::CompleteFile
                && inode.size > 0
                && block_rows.peek() != Some(id)
            {
                return Err(format!("file {id} has a length but no blocks"));
            }
        }
        let edges = self.rows.edges.len() as u64;
        if sum_children != edges {
            return Err(format!(
                "directories count {sum_children} children, the edge table has {edges}"
            ));
        }
        // (inode index, depth, path bytes); breadth first with an explicit
        // queue. Each inode is queued at most once: it has one parent and
        // the root has none.
        let mut queue = VecDeque::from([(0usize, 0usize, 1usize)]);
        let mut reached = 0u64;
        while let Some((at, depth, len)) = queue.pop_front() {
            reached += 1;
            let Ok(run) = self.runs.binary_search_by_key(&at, |r| r.parent) else {
                continue;
            };
            let run = &self.runs[run];
            for row in run.start..run.end {
                let (_, name, child) = &self.rows.edges[row];
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
                queue.push_back((self.edge_child[row], depth + 1, child_len));
            }
        }
        if reached != inodes.len() as u64 {
            return Err(format!(
                "{} inodes but {reached} reachable from the root (a cycle or an orphan)",
                inodes.len()
            ));
        }
        Ok(())
    }
}
