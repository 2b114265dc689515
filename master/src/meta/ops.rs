//! The mutating operations. Each one validates everything first and writes
//! only once nothing can fail, so a refused operation leaves the state
//! exactly as it was. Times come from the entry (`ms`), never from a clock.

use std::collections::HashSet;

use super::error::MetaError;
use super::path::{FsPath, Shown};
use super::proto::{BlockInfo, Deleted, ErrorCode, FileInfo};
use super::query::{directory, file_info, missing, prefix, resolve, walk, Walk};
use super::store::{Block, Inode, InodeId, InodeKind, MetaStore};

/// Most blocks one file may have (bounds one entry's work and one row).
pub const MAX_BLOCKS_PER_FILE: usize = 1 << 20;

/// The mutable state an operation works on.
pub(crate) struct Tables<'a, S: MetaStore> {
    pub store: &'a mut S,
    /// The next inode id to hand out; ids are never reused.
    pub next_id: &'a mut InodeId,
    /// The entry's time stamp.
    pub ms: u64,
}

impl<S: MetaStore> Tables<'_, S> {
    /// Reserves `n` ids, or fails (without reserving) if the id space is used up.
    fn reserve(&mut self, n: u64) -> Result<InodeId, MetaError> {
        let first = *self.next_id;
        match first.checked_add(n) {
            Some(next) => {
                *self.next_id = next;
                Ok(first)
            }
            None => Err(MetaError::new(
                ErrorCode::ResourceExhausted,
                "the inode id space is used up",
            )),
        }
    }

    /// Adds `child` under directory `parent` and counts it.
    fn link(&mut self, parent: InodeId, mut parent_inode: Inode, name: &str, child: InodeId) {
        self.store.put_child(parent, name, child);
        parent_inode.size = parent_inode.size.saturating_add(1);
        parent_inode.modified_ms = self.ms;
        self.store.put_inode(parent, parent_inode);
    }

    /// Removes the edge (`parent`, `name`) and uncounts it.
    fn unlink(&mut self, parent: InodeId, name: &str) {
        self.store.delete_child(parent, name);
        if let Some(mut p) = self.store.inode(parent) {
            p.size = p.size.saturating_sub(1);
            p.modified_ms = self.ms;
            self.store.put_inode(parent, p);
        }
    }

    /// Mkdir; with `recursive` (mkdir -p) missing parents are created and an
    /// existing directory is success.
    pub fn mkdir(&mut self, path: &str, recursive: bool) -> Result<FileInfo, MetaError> {
        let path = FsPath::parse(path)?;
        let (at, parent) = match walk(&*self.store, &path)? {
            Walk::Found(id, inode) => {
                return if !inode.is_dir() {
                    Err(MetaError::exists(path.as_str(), " as a file"))
                } else if recursive {
                    Ok(file_info(&*self.store, id, &inode, path.as_str()))
                } else {
                    Err(MetaError::exists(
                        path.as_str(),
                        " (use recursive to accept an existing directory)",
                    ))
                };
            }
            Walk::Missing { at, parent } => (at, parent),
        };
        let names: Vec<&str> = path.components().skip(at).collect();
        if names.len() > 1 && !recursive {
            return Err(MetaError::not_found(
                prefix(&path, at),
                &format!(
                    " (a parent of {}; use recursive to create missing parents)",
                    Shown::new(path.as_str())
                ),
            ));
        }
        let mut parent_inode = self.parent_inode(parent)?;
        let first = self.reserve(names.len() as u64)?;
        let mut parent_id = parent;
        let mut created = (parent, parent_inode);
        for (offset, name) in names.iter().enumerate() {
            let id = first + offset as u64;
            let dir = Inode::directory(self.ms);
            self.store.put_inode(id, dir);
            self.link(parent_id, parent_inode, name, id);
            parent_id = id;
            parent_inode = dir;
            created = (id, dir);
        }
        // The deepest new directory: nothing was linked under it.
        let (id, inode) = created;
        Ok(file_info(&*self.store, id, &inode, path.as_str()))
    }

    fn parent_inode(&self, id: InodeId) -> Result<Inode, MetaError> {
        self.store.inode(id).ok_or_else(|| {
            MetaError::new(ErrorCode::Internal, format!("directory {id} has no inode"))
        })
    }

    /// Create file: an empty, incomplete file under an existing directory.
    pub fn create_file(&mut self, path: &str) -> Result<FileInfo, MetaError> {
        let path = FsPath::parse(path)?;
        let Some((parent_path, name)) = path.split_last() else {
            return Err(MetaError::exists("/", " (the root directory)"));
        };
        let (parent, parent_inode) = directory(&*self.store, &parent_path, "the parent")?;
        if self.store.child(parent, name).is_some() {
            return Err(MetaError::exists(path.as_str(), ""));
        }
        let id = self.reserve(1)?;
        let file = Inode::file(self.ms);
        self.store.put_inode(id, file);
        self.link(parent, parent_inode, name, id);
        Ok(file_info(&*self.store, id, &file, path.as_str()))
    }

    /// Complete file: seals an incomplete file with its blocks; its length
    /// becomes the sum of their lengths.
    pub fn complete_file(
        &mut self,
        path: &str,
        blocks: &[BlockInfo],
    ) -> Result<FileInfo, MetaError> {
        let path = FsPath::parse(path)?;
        let (id, mut inode) = resolve(&*self.store, &path)?;
        match inode.kind {
            InodeKind::Directory => {
                return Err(MetaError::is_a_directory(
                    path.as_str(),
                    " (only files are completed)",
                ))
            }
            InodeKind::CompleteFile => {
                return Err(MetaError::new(
                    ErrorCode::FileAlreadyCompleted,
                    format!(
                        "{} is already complete (a file is completed once)",
                        Shown::new(path.as_str())
                    ),
                ))
            }
            InodeKind::OpenFile => {}
        }
        let blocks = checked_blocks(path.as_str(), blocks)?;
        let length = blocks
            .iter()
            .try_fold(0u64, |sum, b| sum.checked_add(b.length))
            .ok_or_else(|| {
                MetaError::invalid(format!(
                    "{}: the block lengths add up to more than 2^64 bytes",
                    Shown::new(path.as_str())
                ))
            })?;
        inode.kind = InodeKind::CompleteFile;
        inode.size = length;
        inode.modified_ms = self.ms;
        self.store.put_inode(id, inode);
        self.store.put_blocks(id, &blocks);
        Ok(file_info(&*self.store, id, &inode, path.as_str()))
    }

    /// Delete: a file, an empty directory, or (with `recursive`) a whole
    /// subtree. The root cannot be deleted.
    pub fn delete(&mut self, path: &str, recursive: bool) -> Result<Deleted, MetaError> {
        let path = FsPath::parse(path)?;
        let Some((parent_path, name)) = path.split_last() else {
            return Err(MetaError::invalid(
                "\"/\": the root directory cannot be deleted".to_string(),
            ));
        };
        let (parent, _) = match walk(&*self.store, &parent_path)? {
            Walk::Found(id, inode) if inode.is_dir() => (id, inode),
            Walk::Found(..) => {
                return Err(MetaError::not_a_directory(
                    parent_path.as_str(),
                    &format!(" (resolving {})", Shown::new(path.as_str())),
                ))
            }
            Walk::Missing { at, .. } => return Err(missing(&path, at)),
        };
        let Some(id) = self.store.child(parent, name) else {
            return Err(MetaError::not_found(path.as_str(), ""));
        };
        let inode = self.parent_inode(id)?;
        if inode.is_dir() && inode.size > 0 && !recursive {
            return Err(MetaError::new(
                ErrorCode::DirectoryNotEmpty,
                format!(
                    "{} is a directory with {} children (use recursive to delete it)",
                    Shown::new(path.as_str()),
                    inode.size
                ),
            ));
        }
        // Gather the subtree first (depth first, explicit stack: the tree may
        // be deep), then remove; nothing below can fail.
        let mut doomed = vec![id];
        let mut edges: Vec<(InodeId, String)> = Vec::new();
        let mut i = 0;
        while i < doomed.len() {
            let dir = doomed[i];
            i += 1;
            for (child_name, child) in self.store.children(dir) {
                edges.push((dir, child_name.into_owned()));
                doomed.push(child);
            }
        }
        for (dir, child_name) in &edges {
            self.store.delete_child(*dir, child_name);
        }
        for gone in &doomed {
            self.store.delete_inode(*gone);
            self.store.delete_blocks(*gone);
        }
        self.unlink(parent, name);
        Ok(Deleted {
            inodes: doomed.len() as u64,
        })
    }

    /// Rename: moves `src` to `dst`, which must not exist; `dst`'s parent must
    /// be a directory outside `src`'s subtree; the root cannot move.
    pub fn rename(&mut self, src: &str, dst: &str) -> Result<FileInfo, MetaError> {
        let src = FsPath::parse(src)?;
        let dst = FsPath::parse(dst)?;
        let Some((src_parent_path, src_name)) = src.split_last() else {
            return Err(MetaError::invalid(
                "\"/\": the root directory cannot be renamed".to_string(),
            ));
        };
        let (id, inode) = resolve(&*self.store, &src)?;
        let Some((dst_parent_path, dst_name)) = dst.split_last() else {
            return Err(MetaError::exists("/", " (rename destination)"));
        };
        if dst == src {
            return Err(MetaError::exists(
                dst.as_str(),
                " (rename destination is the source)",
            ));
        }
        if dst.is_strictly_under(&src) {
            return Err(MetaError::invalid(format!(
                "cannot rename {} to {}: a directory cannot move into its own subtree",
                Shown::new(src.as_str()),
                Shown::new(dst.as_str())
            )));
        }
        let (dst_parent, dst_parent_inode) = directory(
            &*self.store,
            &dst_parent_path,
            "the rename destination's parent",
        )?;
        if self.store.child(dst_parent, dst_name).is_some() {
            return Err(MetaError::exists(dst.as_str(), " (rename destination)"));
        }
        let (src_parent, _) = directory(&*self.store, &src_parent_path, "the source's parent")?;
        self.unlink(src_parent, src_name);
        // Re-read: when both parents are the same directory, unlink changed it.
        let dst_parent_inode = self.store.inode(dst_parent).unwrap_or(dst_parent_inode);
        self.link(dst_parent, dst_parent_inode, dst_name, id);
        Ok(file_info(&*self.store, id, &inode, dst.as_str()))
    }
}

/// The blocks of a CompleteFile, checked: at most [`MAX_BLOCKS_PER_FILE`]
/// and no block id twice.
fn checked_blocks(path: &str, blocks: &[BlockInfo]) -> Result<Vec<Block>, MetaError> {
    if blocks.len() > MAX_BLOCKS_PER_FILE {
        return Err(MetaError::invalid(format!(
            "{}: {} blocks, more than the {MAX_BLOCKS_PER_FILE} a file may have",
            Shown::new(path),
            blocks.len()
        )));
    }
    let mut seen = HashSet::with_capacity(blocks.len());
    let mut out = Vec::with_capacity(blocks.len());
    for b in blocks {
        if !seen.insert(b.block_id) {
            return Err(MetaError::invalid(format!(
                "{}: block id {} is listed twice",
                Shown::new(path),
                b.block_id
            )));
        }
        out.push(Block {
            id: b.block_id,
            length: b.length,
        });
    }
    Ok(out)
}
