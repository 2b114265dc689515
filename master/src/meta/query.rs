//! Path resolution and the read-only queries (get status, list status).
//! Written against [`StoreView`], so they run on the live store or a frozen
//! copy alike.

use super::error::MetaError;
use super::path::{join, FsPath, Shown};
use super::proto::{BlockInfo, ErrorCode, FileInfo};
use super::store::{Inode, InodeId, InodeKind, StoreView, ROOT_ID};

/// How far a path resolved.
pub(crate) enum Walk {
    /// Every component exists.
    Found(InodeId, Inode),
    /// Component `at` (0-based) is missing from directory `parent`; every
    /// component before it exists and is a directory.
    Missing { at: usize, parent: InodeId },
}

/// The root's inode. Every state has one (ops never delete it, restore
/// checks it); a store without it answers as if the path were missing.
fn root<S: StoreView + ?Sized>(store: &S) -> Result<Inode, MetaError> {
    store.inode(ROOT_ID).ok_or_else(|| {
        MetaError::new(
            ErrorCode::Internal,
            "the root directory is missing from the inode table",
        )
    })
}

/// The path up to and including component `index`.
pub(crate) fn prefix<'a>(path: &FsPath<'a>, index: usize) -> &'a str {
    let text = path.as_str();
    let mut end = 0;
    for c in path.components().take(index + 1) {
        end += 1 + c.len();
    }
    &text[..end.min(text.len())]
}

/// Follows `path` from the root as far as it exists.
///
/// A file in the middle of the path is `NOT_A_DIRECTORY` naming that file.
pub(crate) fn walk<S: StoreView + ?Sized>(store: &S, path: &FsPath<'_>) -> Result<Walk, MetaError> {
    let mut id = ROOT_ID;
    let mut inode = root(store)?;
    for (i, name) in path.components().enumerate() {
        if !inode.is_dir() {
            let file = prefix(path, i.saturating_sub(1));
            return Err(MetaError::not_a_directory(
                file,
                &format!(" (resolving {})", Shown::new(path.as_str())),
            ));
        }
        let Some(child) = store.child(id, name) else {
            return Ok(Walk::Missing { at: i, parent: id });
        };
        inode = store.inode(child).ok_or_else(|| {
            MetaError::new(
                ErrorCode::Internal,
                format!("edge to inode {child} without its inode"),
            )
        })?;
        id = child;
    }
    Ok(Walk::Found(id, inode))
}

/// The inode at `path`, or `NOT_FOUND` naming the first missing component.
pub(crate) fn resolve<S: StoreView + ?Sized>(
    store: &S,
    path: &FsPath<'_>,
) -> Result<(InodeId, Inode), MetaError> {
    match walk(store, path)? {
        Walk::Found(id, inode) => Ok((id, inode)),
        Walk::Missing { at, .. } => Err(missing(path, at)),
    }
}

/// `NOT_FOUND` for component `at` of `path`.
pub(crate) fn missing(path: &FsPath<'_>, at: usize) -> MetaError {
    let gone = prefix(path, at);
    if gone.len() == path.as_str().len() {
        MetaError::not_found(gone, "")
    } else {
        MetaError::not_found(
            gone,
            &format!(" (a parent of {})", Shown::new(path.as_str())),
        )
    }
}

/// A directory the operation needs: `path` must resolve and be a directory.
pub(crate) fn directory<S: StoreView + ?Sized>(
    store: &S,
    path: &FsPath<'_>,
    role: &str,
) -> Result<(InodeId, Inode), MetaError> {
    let (id, inode) = match walk(store, path)? {
        Walk::Found(id, inode) => (id, inode),
        Walk::Missing { at, .. } => {
            let gone = prefix(path, at);
            return Err(MetaError::not_found(gone, &format!(" ({role})")));
        }
    };
    if !inode.is_dir() {
        return Err(MetaError::not_a_directory(
            path.as_str(),
            &format!(" ({role})"),
        ));
    }
    Ok((id, inode))
}

/// The client's view of inode `id` found at `path`.
pub(crate) fn file_info<S: StoreView + ?Sized>(
    store: &S,
    id: InodeId,
    inode: &Inode,
    path: &str,
) -> FileInfo {
    let name = path.rsplit('/').next().unwrap_or("").to_string();
    let blocks = store
        .blocks(id)
        .map(|b| {
            b.iter()
                .map(|b| BlockInfo {
                    block_id: b.id,
                    length: b.length,
                })
                .collect()
        })
        .unwrap_or_default();
    let is_dir = inode.is_dir();
    FileInfo {
        id,
        name,
        path: path.to_string(),
        is_directory: is_dir,
        length: if is_dir { 0 } else { inode.size },
        completed: inode.kind != InodeKind::OpenFile,
        blocks,
        created_ms: inode.created_ms,
        modified_ms: inode.modified_ms,
        child_count: if is_dir { inode.size } else { 0 },
    }
}

/// Get status: the inode at `path`.
pub fn get_status<S: StoreView + ?Sized>(store: &S, path: &str) -> Result<FileInfo, MetaError> {
    let path = FsPath::parse(path)?;
    let (id, inode) = resolve(store, &path)?;
    Ok(file_info(store, id, &inode, path.as_str()))
}

/// List status: a directory's children in name order; a file lists itself.
pub fn list_status<S: StoreView + ?Sized>(
    store: &S,
    path: &str,
) -> Result<Vec<FileInfo>, MetaError> {
    let path = FsPath::parse(path)?;
    let (id, inode) = resolve(store, &path)?;
    if !inode.is_dir() {
        return Ok(vec![file_info(store, id, &inode, path.as_str())]);
    }
    let mut out = Vec::with_capacity(usize::try_from(inode.size).unwrap_or(0).min(1 << 16));
    for (name, child) in store.children(id) {
        let Some(child_inode) = store.inode(child) else {
            return Err(MetaError::new(
                ErrorCode::Internal,
                format!("edge to inode {child} without its inode"),
            ));
        };
        let child_path = join(path.as_str(), &name);
        out.push(file_info(store, child, &child_inode, &child_path));
    }
    Ok(out)
}
