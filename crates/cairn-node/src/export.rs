//! Reading DAGs back: files and byte ranges as verified streams (only the blocks holding the
//! range are read), path resolution through plain and HAMT directories, listings, and writing a
//! file or a whole tree to the local filesystem.

use std::io::{Read, Write};
use std::ops::Range;
use std::path::Path;

use bytes::Bytes;
use cairn_dag::dir::{DirListing, NodeKind, PathResolve, describe};
use cairn_dag::read::FileRead;
use cairn_dag::{Cid, DagError};
use cairn_store::Store;

use crate::{Node, NodeError, io_err};

/// A verified stream of a file's bytes (or a range of them). Iterate for `Bytes` pieces, or
/// use it as a [`Read`].
#[derive(Debug)]
pub struct FileStream {
    store: Store,
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
            let block = self.store.get(&cid)?;
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
    /// Resolves `CID[/path]` to the CID it names.
    pub fn resolve(&self, root: Cid, path: &str) -> Result<Cid, NodeError> {
        let mut resolve = PathResolve::new(root, path);
        while let Some(cid) = resolve.next_cid() {
            let block = self.store().get(&cid)?;
            resolve.feed(&block)?;
        }
        Ok(resolve.resolved())
    }

    /// Streams the file `cid`, or `range` of it (clamped to the file's end).
    pub fn cat(&self, cid: Cid, range: Option<Range<u64>>) -> FileStream {
        FileStream {
            store: self.store().clone(),
            read: FileRead::new(cid, range),
            pending: Bytes::new(),
        }
    }

    /// What the block `cid` is.
    pub fn describe(&self, cid: &Cid) -> Result<NodeKind, NodeError> {
        let block = self.store().get(cid)?;
        Ok(describe(cid, &block))
    }

    /// The entries of directory `cid` (plain or HAMT), sorted by name.
    pub fn list(&self, cid: &Cid) -> Result<Vec<cairn_dag::dir::DirEntry>, NodeError> {
        let block = self.store().get(cid)?;
        let mut listing = DirListing::start(cid, &block)?;
        while let Some(next) = listing.next_cid() {
            let block = self.store().get(&next)?;
            listing.feed(&block)?;
        }
        Ok(listing.entries())
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

    /// Writes the file or tree `cid` to `out` (files are overwritten, folders merged).
    pub fn get_to_path(&self, cid: &Cid, out: &Path) -> Result<(), NodeError> {
        match self.describe(cid)? {
            NodeKind::File { .. } => {
                let tmp = out.with_file_name(format!(
                    ".{}.cairn-tmp",
                    out.file_name().and_then(|n| n.to_str()).unwrap_or("out")
                ));
                let result = (|| {
                    let mut file = std::fs::File::create(&tmp)
                        .map_err(io_err(format!("create {}", tmp.display())))?;
                    for piece in self.cat(*cid, None) {
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
                std::fs::create_dir_all(out)
                    .map_err(io_err(format!("create {}", out.display())))?;
                for entry in self.list(cid)? {
                    // DirListing has already refused names with '/', '.', '..'.
                    self.get_to_path(&entry.cid, &out.join(&entry.name))?;
                }
                Ok(())
            }
            NodeKind::Symlink => {
                let block = self.store().get(cid)?;
                let target = cairn_dag::dir::symlink_target(cid, &block)?;
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
