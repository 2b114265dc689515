//! The in-memory store: three persistent B-trees (`imbl::OrdMap`).
//!
//! Why persistent maps: `freeze` must be cheap, because the journal calls it
//! between two applies and writes the copy on another thread while apply goes
//! on. Cloning an `OrdMap` is one reference-count increment; afterwards a
//! write copies only the tree nodes on its path (and only the first write to
//! a node after a freeze), so the frozen copy stays exact and the live one
//! pays in proportion to what it changes, not to the size of the state.
//!
//! Why ordered maps (not hash maps): iteration order is the key order on
//! every master, so snapshots are byte-for-byte canonical, a directory's
//! children come out in name order from a range scan, and the B-tree packs
//! 16 entries per node (less memory per inode than a HAMT).

use std::borrow::Cow;
use std::cmp::Ordering;

use compact_str::CompactString;
use equivalent::{Comparable, Equivalent};
use imbl::OrdMap;

use super::store::{
    Block, Inode, InodeId, MetaStore, SortedRows, StoreIter, StoreView, TableCounts, ROOT_ID,
};

/// Key of the edge table. Ordered by parent, then name (bytewise), so one
/// directory's children are one contiguous range in name order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct EdgeKey {
    parent: InodeId,
    // Names are stored once, here. A `CompactString` (24 bytes) keeps names
    // of up to 24 bytes (most file names) inside the key: no heap block per
    // name, and comparing two keys on a lookup's path reads no other cache
    // line. Ordered as `str` (bytewise), like the rest of the store.
    name: CompactString,
}

/// A borrowed edge key, so lookups do not allocate a `Box<str>`.
struct EdgeRef<'a> {
    parent: InodeId,
    name: &'a str,
}

impl Equivalent<EdgeKey> for EdgeRef<'_> {
    fn equivalent(&self, key: &EdgeKey) -> bool {
        self.parent == key.parent && self.name == key.name.as_str()
    }
}

impl Comparable<EdgeKey> for EdgeRef<'_> {
    fn compare(&self, key: &EdgeKey) -> Ordering {
        self.parent
            .cmp(&key.parent)
            .then_with(|| self.name.cmp(key.name.as_str()))
    }
}

/// The three tables in memory. Cloning is O(1) and gives an independent
/// copy (structural sharing), which is what [`MetaStore::freeze`] returns.
#[derive(Debug, Clone)]
pub struct MemStore {
    inodes: OrdMap<InodeId, Inode>,
    edges: OrdMap<EdgeKey, InodeId>,
    // Box<[Block]>: exact size; most files have few blocks.
    blocks: OrdMap<InodeId, Box<[Block]>>,
}

impl MemStore {
    /// A store holding only the root directory, created at `ms`.
    pub fn with_root(ms: u64) -> Self {
        let mut store = MemStore::bare();
        store.inodes.insert(ROOT_ID, Inode::directory(ms));
        store
    }

    /// A store with no rows at all (not even the root): what restore fills.
    fn bare() -> Self {
        MemStore {
            inodes: OrdMap::new(),
            edges: OrdMap::new(),
            blocks: OrdMap::new(),
        }
    }
}

impl Default for MemStore {
    /// The initial state: the root directory created at time 0 (the same on
    /// every master, since no entry has stamped a time yet).
    fn default() -> Self {
        MemStore::with_root(0)
    }
}

impl StoreView for MemStore {
    fn inode(&self, id: InodeId) -> Option<Inode> {
        self.inodes.get(&id).copied()
    }

    fn child(&self, parent: InodeId, name: &str) -> Option<InodeId> {
        self.edges.get(&EdgeRef { parent, name }).copied()
    }

    fn children(&self, parent: InodeId) -> StoreIter<'_, (Cow<'_, str>, InodeId)> {
        let from = EdgeRef { parent, name: "" };
        Box::new(
            self.edges
                .range(from..)
                .take_while(move |(k, _)| k.parent == parent)
                .map(|(k, v)| (Cow::Borrowed(k.name.as_str()), *v)),
        )
    }

    fn blocks(&self, file: InodeId) -> Option<Cow<'_, [Block]>> {
        self.blocks.get(&file).map(|b| Cow::Borrowed(&**b))
    }

    fn inodes(&self) -> StoreIter<'_, (InodeId, Inode)> {
        Box::new(self.inodes.iter().map(|(k, v)| (*k, *v)))
    }

    fn edges(&self) -> StoreIter<'_, (InodeId, Cow<'_, str>, InodeId)> {
        Box::new(
            self.edges
                .iter()
                .map(|(k, v)| (k.parent, Cow::Borrowed(k.name.as_str()), *v)),
        )
    }

    fn block_files(&self) -> StoreIter<'_, (InodeId, Cow<'_, [Block]>)> {
        Box::new(self.blocks.iter().map(|(k, v)| (*k, Cow::Borrowed(&**v))))
    }

    fn counts(&self) -> TableCounts {
        TableCounts {
            inodes: self.inodes.len() as u64,
            edges: self.edges.len() as u64,
            block_files: self.blocks.len() as u64,
        }
    }
}

impl MetaStore for MemStore {
    type Frozen = MemStore;

    fn empty(&self) -> Self {
        MemStore::bare()
    }

    fn put_inode(&mut self, id: InodeId, inode: Inode) {
        self.inodes.insert(id, inode);
    }

    fn delete_inode(&mut self, id: InodeId) {
        self.inodes.remove(&id);
    }

    fn put_child(&mut self, parent: InodeId, name: &str, child: InodeId) {
        // One descent: the operations link only names they found absent,
        // so a lookup first (to spare the key's allocation on a
        // replacement) would be a second walk down the tree for nothing.
        let key = EdgeKey {
            parent,
            name: CompactString::new(name),
        };
        self.edges.insert(key, child);
    }

    fn delete_child(&mut self, parent: InodeId, name: &str) {
        self.edges.remove(&EdgeRef { parent, name });
    }

    fn put_blocks(&mut self, file: InodeId, blocks: &[Block]) {
        if blocks.is_empty() {
            self.blocks.remove(&file);
        } else {
            self.blocks.insert(file, blocks.into());
        }
    }

    fn delete_blocks(&mut self, file: InodeId) {
        self.blocks.remove(&file);
    }

    /// Builds the inode table on a second thread while this one builds the
    /// edge table (the two largest tables, independent of each other); the
    /// result is the same maps as one insert per row, in the same order.
    fn load_sorted(&mut self, rows: SortedRows) {
        let SortedRows {
            inodes,
            edges,
            blocks,
        } = rows;
        let mut inode_map = std::mem::take(&mut self.inodes);
        let mut inode_rows = Some(inodes);
        let mut edge_map = std::mem::take(&mut self.edges);
        let edge_rows = edges.into_iter().map(|(parent, name, child)| {
            let name = CompactString::from(name);
            (EdgeKey { parent, name }, child)
        });
        std::thread::scope(|scope| {
            let (map, rows) = (&mut inode_map, &mut inode_rows);
            let side = std::thread::Builder::new()
                .name("restore-inodes".into())
                .spawn_scoped(scope, move || {
                    if let Some(rows) = rows.take() {
                        map.extend(rows);
                    }
                });
            edge_map.extend(edge_rows);
            if let Ok(handle) = side {
                if let Err(panic) = handle.join() {
                    std::panic::resume_unwind(panic);
                }
            }
        });
        // No thread could be started: the same work on this one.
        if let Some(rows) = inode_rows {
            inode_map.extend(rows);
        }
        self.inodes = inode_map;
        self.edges = edge_map;
        self.blocks.extend(blocks);
    }

    fn freeze(&self) -> MemStore {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_in_name_order_and_only_of_their_parent() {
        let mut s = MemStore::default();
        for (i, name) in ["b", "a", "ab", "B", "é"].iter().enumerate() {
            s.put_child(ROOT_ID, name, 10 + i as u64);
        }
        s.put_child(ROOT_ID + 1, "0", 99);
        s.put_child(0, "z", 98);
        let names: Vec<String> = s.children(ROOT_ID).map(|(n, _)| n.into_owned()).collect();
        assert_eq!(names, ["B", "a", "ab", "b", "é"]);
        assert_eq!(s.child(ROOT_ID, "ab"), Some(12));
        s.delete_child(ROOT_ID, "ab");
        assert_eq!(s.child(ROOT_ID, "ab"), None);
        assert_eq!(s.counts().edges, 6);
    }

    #[test]
    fn freeze_is_unaffected_by_later_writes() {
        let mut s = MemStore::default();
        for i in 0..1000u64 {
            s.put_inode(i + 2, Inode::file(i));
            s.put_child(ROOT_ID, &format!("f{i:04}"), i + 2);
        }
        let frozen = s.freeze();
        s.delete_inode(2);
        s.put_child(ROOT_ID, "zzz", 5000);
        s.put_blocks(3, &[Block { id: 1, length: 2 }]);
        assert!(frozen.inode(2).is_some());
        assert_eq!(frozen.child(ROOT_ID, "zzz"), None);
        assert!(frozen.blocks(3).is_none());
        assert_eq!(frozen.counts().edges, 1000);
        assert_eq!(s.counts().edges, 1001);
    }
}
