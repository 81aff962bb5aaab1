//! Reading DAGs back: files and byte ranges as verified streams (only the blocks holding the
//! range are read), path resolution through plain and HAMT directories, listings, the bounded
//! iterative walk over a whole UnixFS tree (hard check, `get`), and writing a file or a whole
//! tree to the local filesystem.

use crate::Files;
use std::collections::HashSet;
use std::io::{Read, Write};
use std::ops::Range;
use std::path::Path;

use bytes::Bytes;
use cairn_dag::dir::{
    DirEntry, DirLimits, DirListing, MAX_TREE_DEPTH, NodeKind, PathResolve, describe,
};
use cairn_dag::read::FileRead;
use cairn_dag::{Cid, DagError, Limit};

use crate::{Node, NodeError, io_err};

/// A verified stream of a file's bytes (or a range of them). Iterate for `Bytes` pieces, or
/// use it as a [`Read`].
#[derive(Debug)]
pub struct FileStream {
    blocks: crate::blocks::Blocks,
    read: FileRead,
    pending: Bytes,
}

impl FileStream {
    /// The next non-empty piece of the file, or `None` at the end.
    pub fn next_piece(&mut self) -> Result<Option<Bytes>, NodeError> {
        if !self.pending.is_empty() {
            return Ok(Some(std::mem::take(&mut self.pending)));
        }
        while let Some(cid) = self.read.next_cid() {
            let block = self.blocks.get(&cid)?;
            let piece = self.read.feed(&block)?;
            if !piece.is_empty() {
                return Ok(Some(block.slice_ref(piece)));
            }
        }
        Ok(None)
    }
}

impl Iterator for FileStream {
    type Item = Result<Bytes, NodeError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_piece().transpose()
    }
}

impl Read for FileStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pending.is_empty() {
            match self.next_piece() {
                Ok(Some(piece)) => self.pending = piece,
                Ok(None) => return Ok(0),
                Err(e) => return Err(std::io::Error::other(e)),
            }
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending.split_to(n));
        Ok(n)
    }
}

/// One entry of `ls`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LsEntry {
    /// Name in the directory.
    pub name: String,
    /// Target CID.
    pub cid: Cid,
    /// What it is.
    pub kind: NodeKind,
    /// File size for files, DAG size (link Tsize) otherwise.
    pub size: u64,
}

impl Node {
    /// The entries of directory `cid`, whose root block is `block`.
    fn list_block(
        &self,
        cid: &Cid,
        block: &[u8],
        limits: DirLimits,
    ) -> Result<Vec<DirEntry>, NodeError> {
        let mut listing = DirListing::with_limits(cid, block, limits)?;
        while let Some(next) = listing.next_cid() {
            let block = self.blocks().get(&next)?;
            listing.feed(&block)?;
        }
        Ok(listing.entries())
    }

    /// Walks the UnixFS tree under `root` depth-first, entries in name order, on a stack of its
    /// own (never the thread's, whatever the depth) and at most [`MAX_TREE_DEPTH`] directories
    /// deep (deeper: [`DagError::LimitExceeded`]). `visit` sees each node with its kind, its
    /// root block and the context `child` derived from its parent's context and its name;
    /// directories are visited before their entries. With `once`, a node reached through
    /// several paths (a shared subtree) is visited the first time only, so the walk reads each
    /// distinct block once; without it, every path is visited.
    pub(crate) fn walk_tree<T>(
        &self,
        root: Cid,
        context: T,
        once: bool,
        mut visit: impl FnMut(&Cid, &NodeKind, &Bytes, &T) -> Result<(), NodeError>,
        child: impl Fn(&T, &str) -> T,
    ) -> Result<(), NodeError> {
        let mut seen = HashSet::from([root]);
        let mut stack = vec![(root, context, 0usize)];
        while let Some((cid, context, depth)) = stack.pop() {
            let block = self.blocks().get(&cid)?;
            let kind = describe(&cid, &block);
            visit(&cid, &kind, &block, &context)?;
            if !matches!(kind, NodeKind::Directory { .. }) {
                continue;
            }
            let entries = self.list_block(&cid, &block, DirLimits::default())?;
            if !entries.is_empty() && depth >= MAX_TREE_DEPTH {
                tracing::debug!(%root, %cid, depth, "tree walk: too deep");
                return Err(DagError::LimitExceeded {
                    root,
                    limit: Limit::Depth,
                    max: MAX_TREE_DEPTH as u64,
                }
                .into());
            }
            for entry in entries.into_iter().rev() {
                if once && !seen.insert(entry.cid) {
                    continue;
                }
                let context = child(&context, &entry.name);
                stack.push((entry.cid, context, depth + 1));
            }
        }
        Ok(())
    }

    /// Writes one node of [`Files::get_to_path`]: a file's bytes, a folder, a symlink.
    fn write_node(
        &self,
        cid: &Cid,
        kind: &NodeKind,
        block: &Bytes,
        out: &Path,
    ) -> Result<(), NodeError> {
        match kind {
            NodeKind::File { .. } => {
                let tmp = out.with_file_name(format!(
                    ".{}.cairn-tmp",
                    out.file_name().and_then(|n| n.to_str()).unwrap_or("out")
                ));
                let result = (|| {
                    let mut file = std::fs::File::create(&tmp)
                        .map_err(io_err(format!("create {}", tmp.display())))?;
                    for piece in self.files().cat(*cid, None) {
                        file.write_all(&piece?)
                            .map_err(io_err(format!("write {}", tmp.display())))?;
                    }
                    std::fs::rename(&tmp, out).map_err(io_err(format!("write {}", out.display())))
                })();
                if result.is_err() {
                    let _ = std::fs::remove_file(&tmp);
                }
                result
            }
            NodeKind::Directory { .. } => {
                std::fs::create_dir_all(out).map_err(io_err(format!("create {}", out.display())))
            }
            NodeKind::Symlink => {
                let target = cairn_dag::dir::symlink_target(cid, block)?;
                let _ = std::fs::remove_file(out);
                #[cfg(unix)]
                std::os::unix::fs::symlink(&target, out)
                    .map_err(io_err(format!("symlink {}", out.display())))?;
                #[cfg(not(unix))]
                std::fs::write(out, target).map_err(io_err(format!("write {}", out.display())))?;
                Ok(())
            }
            NodeKind::Other => Err(DagError::Unsupported(format!(
                "{cid} is neither a UnixFS file nor a directory"
            ))
            .into()),
        }
    }
}
impl Files<'_> {
    /// Resolves `CID[/path]` to the CID it names.
    pub fn resolve(&self, root: Cid, path: &str) -> Result<Cid, NodeError> {
        let mut resolve = PathResolve::new(root, path);
        while let Some(cid) = resolve.next_cid() {
            let block = self.node.blocks().get(&cid)?;
            resolve.feed(&block)?;
        }
        Ok(resolve.resolved())
    }

    /// Streams the file `cid`, or `range` of it (clamped to the file's end).
    pub fn cat(&self, cid: Cid, range: Option<Range<u64>>) -> FileStream {
        FileStream {
            blocks: self.node.blocks().clone(),
            read: FileRead::new(cid, range),
            pending: Bytes::new(),
        }
    }

    /// What the block `cid` is.
    pub fn describe(&self, cid: &Cid) -> Result<NodeKind, NodeError> {
        let block = self.node.blocks().get(cid)?;
        Ok(describe(cid, &block))
    }

    /// The entries of directory `cid` (plain or HAMT), sorted by name, within the default
    /// [`DirLimits`] (past them: [`DagError::LimitExceeded`]).
    pub fn list(&self, cid: &Cid) -> Result<Vec<DirEntry>, NodeError> {
        self.list_within(cid, DirLimits::default())
    }

    /// [`Files::list`] within `limits`.
    pub fn list_within(&self, cid: &Cid, limits: DirLimits) -> Result<Vec<DirEntry>, NodeError> {
        let block = self.node.blocks().get(cid)?;
        self.node.list_block(cid, &block, limits)
    }

    /// Like `ipfs ls`: each entry with its kind and size.
    pub fn ls(&self, cid: &Cid) -> Result<Vec<LsEntry>, NodeError> {
        self.list(cid)?
            .into_iter()
            .map(|e| {
                let kind = self.describe(&e.cid)?;
                let size = match kind {
                    NodeKind::File { size } => size,
                    _ => e.dag_size,
                };
                Ok(LsEntry {
                    name: e.name,
                    cid: e.cid,
                    kind,
                    size,
                })
            })
            .collect()
    }

    /// Writes the file or tree `cid` to `out` (files are overwritten, folders merged). Every
    /// path of the tree is written (a subtree linked twice is written twice); the walk is
    /// iterative and at most [`MAX_TREE_DEPTH`] levels deep, and the filesystem's own limit on
    /// a path's length (4096 bytes on Linux) usually comes first: either ends `get` with an
    /// error, what was written so far staying.
    pub fn get_to_path(&self, cid: &Cid, out: &Path) -> Result<(), NodeError> {
        self.node.walk_tree(
            *cid,
            out.to_path_buf(),
            false,
            |cid, kind, block, out| self.node.write_node(cid, kind, block, out),
            // DirListing has already refused names with '/', '.', '..'.
            |out, name| out.join(name),
        )
    }
}
