//! Streaming UnixFS import. Bytes are cut into 256 KiB chunks; leaves are encoded, hashed and
//! written on the rayon pool (both cores), at most a few chunks in flight, so memory stays
//! bounded whatever the input size. Leaf links are put back in file order and fed to the
//! balanced layout, whose branch blocks are written as soon as they complete. All blocks of one
//! add go into one [`WriteBatch`], made durable by a single sync at commit.

use crate::Files;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;

use cairn_dag::file::{BalancedLayout, FileLink, encode_leaf};
use cairn_dag::{CHUNK_SIZE, Cid, CidVersion};
use cairn_store::{StoreError, WriteBatch};

use crate::{Node, NodeError, io_err};

type LeafResult = (u64, Result<FileLink, StoreError>);

/// Imports one file's bytes, pushed in pieces of any size.
pub struct FileImporter {
    batch: Arc<WriteBatch>,
    version: CidVersion,
    buf: Vec<u8>,
    dispatched: u64,
    linked: u64,
    in_flight: usize,
    max_in_flight: usize,
    tx: mpsc::Sender<LeafResult>,
    rx: mpsc::Receiver<LeafResult>,
    ready: BTreeMap<u64, FileLink>,
    layout: BalancedLayout,
    error: Option<StoreError>,
}

impl std::fmt::Debug for FileImporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileImporter")
            .field("dispatched", &self.dispatched)
            .field("linked", &self.linked)
            .finish_non_exhaustive()
    }
}

impl FileImporter {
    /// An importer writing into `batch`.
    pub fn new(batch: Arc<WriteBatch>, version: CidVersion) -> Self {
        let (tx, rx) = mpsc::channel();
        FileImporter {
            batch,
            version,
            buf: Vec::with_capacity(CHUNK_SIZE),
            dispatched: 0,
            linked: 0,
            in_flight: 0,
            max_in_flight: 2 * rayon::current_num_threads() + 2,
            tx,
            rx,
            ready: BTreeMap::new(),
            layout: BalancedLayout::new(version),
            error: None,
        }
    }

    /// Appends file bytes.
    pub fn write(&mut self, mut data: &[u8]) -> Result<(), NodeError> {
        while !data.is_empty() {
            let take = (CHUNK_SIZE - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == CHUNK_SIZE {
                self.dispatch()?;
            }
        }
        Ok(())
    }

    /// Reads `reader` to its end straight into chunk buffers (no intermediate copy); returns
    /// the number of bytes read.
    pub fn read_from(&mut self, reader: &mut impl Read) -> Result<u64, NodeError> {
        let mut total = 0u64;
        loop {
            let start = self.buf.len();
            self.buf.resize(CHUNK_SIZE, 0);
            let n = match reader.read(&mut self.buf[start..]) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                    self.buf.truncate(start);
                    continue;
                }
                Err(e) => {
                    self.buf.truncate(start);
                    return Err(NodeError::Io {
                        context: "read input".into(),
                        source: e,
                    });
                }
            };
            self.buf.truncate(start + n);
            total += n as u64;
            if self.buf.len() == CHUNK_SIZE {
                self.dispatch()?;
            } else if n == 0 && start == self.buf.len() {
                return Ok(total);
            }
        }
    }

    fn dispatch(&mut self) -> Result<(), NodeError> {
        while self.in_flight >= self.max_in_flight {
            self.collect_one()?;
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK_SIZE));
        let index = self.dispatched;
        self.dispatched += 1;
        self.in_flight += 1;
        let (batch, tx, version) = (self.batch.clone(), self.tx.clone(), self.version);
        rayon::spawn(move || {
            let (block, link) = encode_leaf(&chunk, version);
            drop(chunk);
            let result = batch.put(&block).map(|()| link);
            // Release the batch before reporting: commit needs the last reference.
            drop(batch);
            let _ = tx.send((index, result));
        });
        Ok(())
    }

    /// Waits for one leaf and links every leaf now in order.
    fn collect_one(&mut self) -> Result<(), NodeError> {
        let (index, result) = self
            .rx
            .recv()
            .expect("the importer holds a sender, so the channel stays open");
        self.in_flight -= 1;
        match result {
            Ok(link) => {
                self.ready.insert(index, link);
            }
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
        if self.error.is_some() {
            // Let the other leaves finish before reporting, so none outlives the batch.
            while self.in_flight > 0 {
                let _ = self.rx.recv();
                self.in_flight -= 1;
            }
            return Err(self.error.take().expect("checked above").into());
        }
        while let Some(link) = self.ready.remove(&self.linked) {
            self.linked += 1;
            for block in self.layout.push_leaf(link) {
                self.batch.put(&block)?;
            }
        }
        Ok(())
    }

    /// Ends the file; returns its root link (CID, file size, DAG size).
    pub fn finish(mut self) -> Result<FileLink, NodeError> {
        if !self.buf.is_empty() || self.dispatched == 0 {
            self.dispatch()?;
        }
        while self.in_flight > 0 {
            self.collect_one()?;
        }
        let (blocks, root) = self.layout.finish()?;
        for block in &blocks {
            self.batch.put(block)?;
        }
        Ok(root.link)
    }
}

/// Options of an add.
#[derive(Debug, Clone, Copy, Default)]
pub struct AddOptions {
    /// CIDv0 with dag-pb leaves (Kubo's default) or CIDv1 with raw leaves.
    pub cid_version: CidVersion,
    /// Add directories recursively (`-r`).
    pub recursive: bool,
    /// Include files and folders whose names start with `.` (Kubo: `--hidden`).
    pub hidden: bool,
    /// Pin the root (Kubo pins by default).
    pub pin: bool,
}

/// One entry added, as `ipfs add` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Added {
    /// Path relative to the added argument's parent (`tree/sub/a.txt`).
    pub path: String,
    /// Its CID.
    pub cid: Cid,
    /// File bytes (files) or DAG bytes (directories).
    pub size: u64,
}

impl Node {
    /// Adds a regular file or symlink; returns (CID, file size, DAG size).
    fn add_entry(
        &self,
        ctx: &AddCtx<'_>,
        path: &Path,
        meta: &std::fs::Metadata,
    ) -> Result<(Cid, u64, u64), NodeError> {
        let opts = ctx.opts;
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(path).map_err(io_err(format!("{}", path.display())))?;
            let target = target.to_str().ok_or_else(|| {
                NodeError::Unsupported(format!("{}: link target is not UTF-8", path.display()))
            })?;
            let block = cairn_dag::dir::symlink(target, opts.cid_version);
            ctx.batch.put(&block)?;
            let size = block.data.len() as u64;
            return Ok((block.cid, size, size));
        }
        if !meta.is_file() {
            return Err(NodeError::Unsupported(format!(
                "{}: not a regular file, directory or symlink",
                path.display()
            )));
        }
        let file = std::fs::File::open(path).map_err(io_err(format!("open {}", path.display())))?;
        let mut importer = FileImporter::new(ctx.batch.clone(), opts.cid_version);
        importer.read_from(&mut Progress {
            inner: file,
            report: ctx.progress,
        })?;
        let link = importer.finish()?;
        Ok((link.cid, link.file_size, link.dag_size))
    }
}
impl Files<'_> {
    /// Imports a byte stream as one UnixFS file and commits it; returns its root link.
    pub fn add_reader(
        &self,
        reader: &mut impl Read,
        cid_version: CidVersion,
        pin: bool,
    ) -> Result<FileLink, NodeError> {
        let batch = Arc::new(self.node.store().batch());
        let mut importer = FileImporter::new(batch.clone(), cid_version);
        importer.read_from(reader)?;
        let link = importer.finish()?;
        commit(batch, pin.then_some(link.cid))?;
        Ok(link)
    }

    /// Adds a file, or with `recursive` a directory tree, like `ipfs add [-r]`. Returns every
    /// entry added, the root last.
    pub fn add_path(&self, path: &Path, opts: AddOptions) -> Result<Vec<Added>, NodeError> {
        self.add_path_with_progress(path, opts, &|_| {})
    }

    /// [`add_path`](Self::add_path), calling `progress` with the count of file bytes read as
    /// the import goes.
    pub fn add_path_with_progress(
        &self,
        path: &Path,
        opts: AddOptions,
        progress: &dyn Fn(u64),
    ) -> Result<Vec<Added>, NodeError> {
        let ctx = AddCtx {
            opts,
            progress,
            batch: Arc::new(self.node.store().batch()),
        };
        let meta =
            std::fs::symlink_metadata(path).map_err(io_err(format!("{}", path.display())))?;
        let name = path_name(path)?;
        let mut added = Vec::new();
        if meta.is_dir() {
            if !opts.recursive {
                return Err(NodeError::Unsupported(format!(
                    "{} is a directory, use -r to add directories",
                    path.display()
                )));
            }
            let mut builder = cairn_dag::dir::DirectoryBuilder::new(opts.cid_version);
            builder.add_dir(&name)?;
            for entry in walk_tree(path, &name, opts.hidden)? {
                match entry.item {
                    TreeItem::Dir => builder.add_dir(&entry.rel)?,
                    TreeItem::File(file) | TreeItem::Symlink(file) => {
                        let meta = std::fs::symlink_metadata(&file)
                            .map_err(io_err(format!("{}", file.display())))?;
                        let (cid, size, dag_size) = self.node.add_entry(&ctx, &file, &meta)?;
                        builder.add_link(&entry.rel, cid, dag_size)?;
                        added.push(Added {
                            path: entry.rel,
                            cid,
                            size,
                        });
                    }
                }
            }
            finish_tree(&ctx.batch, builder, &mut added)?;
        } else {
            let (cid, size, _) = self.node.add_entry(&ctx, path, &meta)?;
            added.push(Added {
                path: name,
                cid,
                size,
            });
        }
        let root = added.last().expect("at least the argument itself").cid;
        commit(ctx.batch, opts.pin.then_some(root))?;
        if opts.pin {
            self.node.provide_queue().push([root]);
        }
        Ok(added)
    }
}

/// What a tree walk found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeItem {
    /// A folder (added even when empty, as Kubo does).
    Dir,
    /// A regular file at this path.
    File(std::path::PathBuf),
    /// A symlink at this path.
    Symlink(std::path::PathBuf),
}

/// One entry of a tree walk: its path relative to the added folder's parent (`tree/a/b.txt`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEntry {
    /// Relative path, `/`-separated, starting with the root folder's name.
    pub rel: String,
    /// What it is.
    pub item: TreeItem,
}

/// Walks a folder like `ipfs add -r`: entries sorted by name, depth first, names starting with
/// `.` skipped unless `hidden`. Anything but folders, files and symlinks is an error.
pub fn walk_tree(dir: &Path, rel: &str, hidden: bool) -> Result<Vec<TreeEntry>, NodeError> {
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(io_err(format!("list {}", dir.display())))?
        .collect::<Result<_, _>>()
        .map_err(io_err(format!("list {}", dir.display())))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = path_name(&path)?;
        if name.starts_with('.') && !hidden {
            continue;
        }
        let child = format!("{rel}/{name}");
        let meta =
            std::fs::symlink_metadata(&path).map_err(io_err(format!("{}", path.display())))?;
        if meta.is_dir() {
            out.push(TreeEntry {
                rel: child.clone(),
                item: TreeItem::Dir,
            });
            out.extend(walk_tree(&path, &child, hidden)?);
        } else if meta.file_type().is_symlink() {
            out.push(TreeEntry {
                rel: child,
                item: TreeItem::Symlink(path),
            });
        } else if meta.is_file() {
            out.push(TreeEntry {
                rel: child,
                item: TreeItem::File(path),
            });
        } else {
            return Err(NodeError::Unsupported(format!(
                "{}: not a regular file, directory or symlink",
                path.display()
            )));
        }
    }
    Ok(out)
}

/// Renders the directory nodes into `batch`, appending them (root last) to `added`.
pub(crate) fn finish_tree(
    batch: &WriteBatch,
    builder: cairn_dag::dir::DirectoryBuilder,
    added: &mut Vec<Added>,
) -> Result<(), NodeError> {
    for node in builder.build()? {
        batch.put(&node.block)?;
        if !node.path.is_empty() {
            added.push(Added {
                path: node.path,
                cid: node.block.cid,
                size: node.dag_size,
            });
        }
    }
    Ok(())
}

/// An entry of a tree whose files are already stored (sent by a client of the local API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredItem {
    /// A folder.
    Dir,
    /// A stored file's root and DAG size.
    File {
        /// Root.
        cid: Cid,
        /// dag-pb Tsize.
        dag_size: u64,
    },
    /// A symlink and its target.
    Symlink(String),
}

struct AddCtx<'a> {
    opts: AddOptions,
    progress: &'a dyn Fn(u64),
    batch: Arc<WriteBatch>,
}

/// A reader that reports how many bytes went through it.
struct Progress<'a, R> {
    inner: R,
    report: &'a dyn Fn(u64),
}

impl<R: Read> Read for Progress<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.report)(n as u64);
        Ok(n)
    }
}

fn path_name(path: &Path) -> Result<String, NodeError> {
    let name = match path.file_name() {
        Some(n) => n.to_owned(),
        None => std::fs::canonicalize(path)
            .map_err(io_err(format!("{}", path.display())))?
            .file_name()
            .map(|n| n.to_owned())
            .unwrap_or_else(|| "root".into()),
    };
    name.into_string()
        .map_err(|n| NodeError::Unsupported(format!("{n:?}: file name is not UTF-8")))
}

fn commit(batch: Arc<WriteBatch>, pin: Option<Cid>) -> Result<(), NodeError> {
    let batch = Arc::try_unwrap(batch)
        .map_err(|_| NodeError::Unsupported("import still running at commit".into()))?;
    batch.commit(pin.as_slice())?;
    Ok(())
}
