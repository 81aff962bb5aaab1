//! The node's side of `cairn backup` / `cairn restore`:
//!
//! * [`Files::add_many`]: many files in one request and one write batch (one sync, one redb
//!   commit), framed as below; answers each file's root without metadata.
//! * [`Files::build_tree`]: the folders of a tree whose files are stored, with
//!   UnixFS 1.5 mode/mtime on file roots (see [`cairn_dag::meta::with_metadata`]),
//!   directories and symlinks; optionally recorded as a named snapshot in the same commit.
//! * named snapshots (`cairn_store::snapshots`): `name → [(time_ms, root)]`, GC roots.
//! * [`Files::ls_detailed`] / [`Files::stat_detailed`]: kinds, sizes, metadata and symlink
//!   targets for a restore.
//!
//! Framing of [`Files::add_many`]: for each file, chunks of `u32` big-endian length (1 to
//! [`MAX_CHUNK`]) followed by that many bytes, then a `u32` zero ending the file; the stream
//! ends after the last file's zero. A sender need not know a file's size in advance.

use crate::Files;
use std::io::Read;
use std::sync::Arc;

use bytes::Bytes;
use cairn_dag::dir::NodeKind;
use cairn_dag::file::FileLink;
use cairn_dag::meta::{UnixMeta, metadata_of, with_metadata_sized};
use cairn_dag::{Block, Cid, CidVersion};
use cairn_store::SnapshotRow;
use futures::Stream;

use crate::NodeError;
use crate::export::LsEntry;
use crate::import::{Added, FileImporter, StoredItem};

/// The largest chunk of an [`Files::add_many`] stream.
pub const MAX_CHUNK: u32 = 16 << 20;

/// Longest snapshot name, in bytes.
pub const MAX_NAME: usize = 255;

/// Which snapshots of a name [`Files::forget_snapshots`] forgets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forget {
    /// All of them.
    All,
    /// Those whose root is this CID.
    Cid(Cid),
    /// All but the newest `n`.
    KeepLast(usize),
}

/// Refuses names that are empty, too long, or hold a NUL or control character.
pub fn check_snapshot_name(name: &str) -> Result<(), NodeError> {
    if name.is_empty() || name.len() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(NodeError::Unsupported(format!(
            "invalid snapshot name {name:?} (1 to {MAX_NAME} bytes, no control characters)"
        )));
    }
    Ok(())
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// An entry of [`Files::ls_detailed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetailedEntry {
    /// Name, CID, kind and size, as `ls` gives them.
    pub entry: LsEntry,
    /// Its UnixFS 1.5 mode and mtime, if it carries them.
    pub meta: UnixMeta,
    /// A symlink's target.
    pub target: Option<String>,
}

/// Reads the body pieces a channel brings, on a blocking thread.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(piece) => self.current = piece,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

impl ChannelReader {
    /// The next bytes of the body, at most `max` (without copying); `None` at its end.
    fn next_bytes(&mut self, max: usize) -> Option<Bytes> {
        while self.current.is_empty() {
            self.current = self.rx.blocking_recv()?;
        }
        let n = max.min(self.current.len());
        Some(self.current.split_to(n))
    }
}

/// Reads a `u32` BE; `None` at a clean end of input before its first byte.
fn read_u32(input: &mut impl Read) -> Result<Option<u32>, NodeError> {
    let mut buf = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match input.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(NodeError::Unsupported("add-many stream cut short".into())),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(NodeError::Io {
                    context: "read the request body".into(),
                    source: e,
                });
            }
        }
    }
    Ok(Some(u32::from_be_bytes(buf)))
}

/// Where [`read_files`] puts one file's bytes: the node's importer, or a fuzz target's sink.
#[doc(hidden)]
pub trait FileSink {
    /// What a finished file gives.
    type Out;
    /// The next bytes of the file.
    fn write(&mut self, bytes: &[u8]) -> Result<(), NodeError>;
    /// The file ended.
    fn finish(self) -> Result<Self::Out, NodeError>;
}

impl FileSink for FileImporter {
    type Out = FileLink;
    fn write(&mut self, bytes: &[u8]) -> Result<(), NodeError> {
        FileImporter::write(self, bytes)
    }
    fn finish(self) -> Result<FileLink, NodeError> {
        FileImporter::finish(self)
    }
}

/// Reads the files of an [`Files::add_many`] stream (the framing of the module doc) from
/// `input`, each into a sink `start` makes; returns what the sinks gave, in order.
fn read_files<S: FileSink>(
    input: &mut ChannelReader,
    mut start: impl FnMut() -> S,
) -> Result<Vec<S::Out>, NodeError> {
    let mut out = Vec::new();
    while let Some(mut len) = read_u32(input)? {
        let mut sink = start();
        while len != 0 {
            if len > MAX_CHUNK {
                return Err(NodeError::Unsupported(format!(
                    "add-many chunk of {len} bytes (at most {MAX_CHUNK})"
                )));
            }
            let mut left = len as usize;
            while left > 0 {
                let piece = input
                    .next_bytes(left)
                    .ok_or_else(|| NodeError::Unsupported("add-many stream cut short".into()))?;
                sink.write(&piece)?;
                left -= piece.len();
            }
            len = read_u32(input)?
                .ok_or_else(|| NodeError::Unsupported("add-many stream cut short".into()))?;
        }
        out.push(sink.finish()?);
    }
    Ok(out)
}

/// [`read_files`] over a body that arrives as `pieces` (as [`Files::add_many`] receives it from
/// its request), for the fuzz targets (`fuzz/`).
#[doc(hidden)]
pub fn read_add_many<S: FileSink>(
    pieces: impl IntoIterator<Item = Bytes>,
    start: impl FnMut() -> S,
) -> Result<Vec<S::Out>, NodeError> {
    let pieces: Vec<Bytes> = pieces.into_iter().collect();
    let (tx, rx) = tokio::sync::mpsc::channel(pieces.len().max(1));
    for piece in pieces {
        tx.try_send(piece)
            .map_err(|e| NodeError::Unsupported(format!("add-many body: {e}")))?;
    }
    drop(tx);
    let mut input = ChannelReader {
        rx,
        current: Bytes::new(),
    };
    read_files(&mut input, start)
}

impl Files<'_> {
    /// Imports the files of a framed stream (see the module doc) into one write batch and
    /// commits it unpinned: one sync, one transaction. Returns each file's root link, in order.
    /// Blocks already stored are not written again.
    pub async fn add_many<S, E>(
        &self,
        mut body: S,
        version: CidVersion,
    ) -> Result<Vec<FileLink>, NodeError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
        let node = self.node.clone();
        let worker = tokio::task::spawn_blocking(move || {
            let mut input = ChannelReader {
                rx,
                current: Bytes::new(),
            };
            let (batch, placer) = node.write_batch(None)?;
            let batch = Arc::new(batch);
            let links = read_files(&mut input, || FileImporter::new(batch.clone(), version))?;
            crate::placed(placer)?;
            let batch = Arc::try_unwrap(batch)
                .map_err(|_| NodeError::Unsupported("import still running at commit".into()))?;
            batch.commit(&[])?;
            Ok::<_, NodeError>(links)
        });
        let failure = crate::objects::feed(&mut body, tx).await;
        let result = worker
            .await
            .map_err(|e| NodeError::Unsupported(format!("add-many task: {e}")))?;
        match failure {
            // The worker saw a clean end of a cut body: the body's error is the answer.
            Some(e) => Err(e),
            None => result,
        }
    }

    /// Builds the folders of a tree whose files are stored (each checked complete), giving
    /// each entry its metadata: file roots get it through
    /// [`with_metadata`](cairn_dag::meta::with_metadata) (the stored root itself stays as it
    /// is), directories and symlinks are encoded with it. `root_meta` is the top folder's.
    /// With `snapshot`, the root is recorded as a new snapshot of that name in the commit
    /// that makes the folders durable. Returns the folders, root last, and the snapshot.
    pub fn build_tree(
        &self,
        root: &str,
        root_meta: &UnixMeta,
        entries: &[(String, StoredItem, UnixMeta)],
        cid_version: CidVersion,
        pin: bool,
        snapshot: Option<&str>,
    ) -> Result<(Vec<Added>, Option<SnapshotRow>), NodeError> {
        if let Some(name) = snapshot {
            check_snapshot_name(name)?;
        }
        let batch = self.node.store().batch();
        let mut builder = cairn_dag::dir::DirectoryBuilder::new(cid_version);
        // (the top folder's metadata must come first: rust-unixfs refuses it later)
        builder.add_dir_with(root, root_meta)?;
        let prefix = format!("{root}/");
        for (rel, item, meta) in entries {
            if !rel.starts_with(&prefix) {
                return Err(NodeError::Unsupported(format!(
                    "{rel:?} is not under {root:?}"
                )));
            }
            match item {
                StoredItem::Dir => builder.add_dir_with(rel, meta)?,
                StoredItem::File { cid, dag_size } => {
                    // Held: the tree links it, and GC must not take it before the commit.
                    if !self.node.check_held(cid, &batch)?.missing.is_empty() {
                        return Err(NodeError::Unsupported(format!(
                            "{rel}: {cid} is not (completely) stored; upload it again"
                        )));
                    }
                    if meta.is_empty() {
                        builder.add_link(rel, *cid, *dag_size)?;
                    } else {
                        let data = self.node.blocks().get(cid)?;
                        let (block, size) = with_metadata_sized(&Block { cid: *cid, data }, meta)?;
                        batch.put(&block)?;
                        builder.add_link(rel, block.cid, size)?;
                    }
                }
                StoredItem::Symlink(target) => {
                    let block = cairn_dag::dir::symlink_with(target, cid_version, meta);
                    batch.put(&block)?;
                    builder.add_link(rel, block.cid, block.data.len() as u64)?;
                }
            }
        }
        let mut added = Vec::new();
        crate::import::finish_tree(&batch, builder, &mut added)?;
        let root_cid = added
            .last()
            .map(|a| a.cid)
            .ok_or_else(|| NodeError::Unsupported("empty tree".into()))?;
        let row = batch.commit_with(|txn| {
            if pin {
                txn.pin(&root_cid)?;
            }
            let Some(name) = snapshot else {
                return Ok::<_, NodeError>(None);
            };
            let row = SnapshotRow {
                name: name.to_owned(),
                time_ms: next_time(txn, name)?,
                cid: root_cid,
            };
            txn.put_snapshot(&row.name, row.time_ms, &row.cid)?;
            Ok(Some(row))
        })?;
        if pin {
            self.node.provide_queue().push([root_cid]);
        }
        Ok((added, row))
    }

    /// Records `cid` (whose DAG must be complete here) as a new snapshot of `name`.
    pub fn add_snapshot(&self, name: &str, cid: &Cid) -> Result<SnapshotRow, NodeError> {
        check_snapshot_name(name)?;
        // Held until the snapshot is committed: GC cannot sweep the DAG in between.
        let batch = self
            .node
            .hold_whole(cid, &format!("keep {cid} as a snapshot"))?;
        batch.commit_with(|txn| {
            let row = SnapshotRow {
                name: name.to_owned(),
                time_ms: next_time(txn, name)?,
                cid: *cid,
            };
            txn.put_snapshot(&row.name, row.time_ms, &row.cid)?;
            Ok::<_, NodeError>(row)
        })
    }

    /// Forgets snapshots of `name` — those `which` names — in one commit and returns them,
    /// oldest first. Their blocks go at the next GC unless something else keeps them.
    pub fn forget_snapshots(
        &self,
        name: &str,
        which: &Forget,
    ) -> Result<Vec<SnapshotRow>, NodeError> {
        self.node.store().update(|txn| {
            // Read beside the write transaction: it holds the write lock, so this is current.
            let rows = self.node.store().snapshots(Some(name))?;
            if rows.is_empty() {
                return Err(NodeError::Unsupported(format!(
                    "no snapshot named {name:?}"
                )));
            }
            let gone: Vec<SnapshotRow> = match which {
                Forget::All => rows,
                Forget::Cid(cid) => rows.into_iter().filter(|r| r.cid == *cid).collect(),
                Forget::KeepLast(n) => {
                    let drop = rows.len().saturating_sub(*n);
                    rows.into_iter().take(drop).collect()
                }
            };
            for row in &gone {
                txn.delete_snapshot(&row.name, row.time_ms)?;
            }
            Ok(gone)
        })
    }

    /// Every snapshot, or those of `name`: by name, oldest first.
    pub fn snapshots(&self, name: Option<&str>) -> Result<Vec<SnapshotRow>, NodeError> {
        Ok(self.node.store().snapshots(name)?)
    }

    /// What `cid` is, with its metadata and (for a symlink) its target.
    pub fn stat_detailed(
        &self,
        cid: &Cid,
    ) -> Result<(NodeKind, UnixMeta, Option<String>), NodeError> {
        let block = self.node.blocks().get(cid)?;
        let kind = cairn_dag::dir::describe(cid, &block);
        // Metadata is optional: a node whose fields cannot be read is listed without it.
        let meta = match kind {
            NodeKind::Other => UnixMeta::default(),
            _ => metadata_of(cid, &block).unwrap_or_default(),
        };
        let target = match kind {
            NodeKind::Symlink => Some(cairn_dag::dir::symlink_target(cid, &block)?),
            _ => None,
        };
        Ok((kind, meta, target))
    }

    /// [`Files::ls`] with each entry's metadata and symlink target (one block read per entry).
    pub fn ls_detailed(&self, cid: &Cid) -> Result<Vec<DetailedEntry>, NodeError> {
        self.list(cid)?
            .into_iter()
            .map(|e| {
                let (kind, meta, target) = self.stat_detailed(&e.cid)?;
                let size = match kind {
                    NodeKind::File { size } => size,
                    _ => e.dag_size,
                };
                Ok(DetailedEntry {
                    entry: LsEntry {
                        name: e.name,
                        cid: e.cid,
                        kind,
                        size,
                    },
                    meta,
                    target,
                })
            })
            .collect()
    }
}

/// A time for a new snapshot of `name`: now, or just after its newest one (so times are
/// distinct and ordered even if the clock stepped back).
fn next_time(txn: &cairn_store::MetaTxn<'_>, name: &str) -> Result<u64, NodeError> {
    let now = now_ms();
    Ok(match txn.latest_snapshot(name)? {
        Some(last) if last.time_ms >= now => last.time_ms + 1,
        _ => now,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_dag::meta::UnixTime;

    fn frames(files: &[&[u8]], chunk: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for f in files {
            for c in f.chunks(chunk) {
                out.extend_from_slice(&(c.len() as u32).to_be_bytes());
                out.extend_from_slice(c);
            }
            out.extend_from_slice(&0u32.to_be_bytes());
        }
        out
    }

    fn body(
        bytes: Vec<u8>,
        piece: usize,
    ) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Unpin {
        let pieces: Vec<Result<Bytes, std::io::Error>> = bytes
            .chunks(piece)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        futures::stream::iter(pieces)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn add_many_equals_add_and_trees_carry_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let node = crate::Node::open(dir.path()).unwrap();
        let big: Vec<u8> = (0..700_000u32).map(|i| (i % 253) as u8).collect();
        let files: [&[u8]; 4] = [b"hello\n", b"", &big, b"hello\n"];
        for version in [CidVersion::V0, CidVersion::V1] {
            let links = node
                .files()
                .add_many(body(frames(&files, 100_000), 7_777), version)
                .await
                .unwrap();
            assert_eq!(links.len(), 4);
            for (f, l) in files.iter().zip(&links) {
                let (_, root) = cairn_dag::file::encode_bytes(f, version);
                assert_eq!(*l, root.link);
            }
        }
        // a cut stream stores nothing new and fails
        let mut cut = frames(&[b"never stored before"], 5);
        cut.truncate(cut.len() - 2);
        assert!(
            node.files()
                .add_many(body(cut, 3), CidVersion::V1)
                .await
                .is_err()
        );
        let (_, never) = cairn_dag::file::encode_bytes(b"never", CidVersion::V1);
        assert!(!node.store().has(&never.link.cid).unwrap());

        let links = node
            .files()
            .add_many(body(frames(&files, 1 << 20), 1 << 16), CidVersion::V1)
            .await
            .unwrap();
        let t = |secs| Some(UnixTime { secs, nsecs: 7 });
        let m = move |mode, secs| UnixMeta {
            mode: Some(mode),
            mtime: t(secs),
        };
        let file = |i: usize| StoredItem::File {
            cid: links[i].cid,
            dag_size: links[i].dag_size,
        };
        let entries = vec![
            ("t/a".to_owned(), file(0), m(0o600, 1)),
            ("t/d".to_owned(), StoredItem::Dir, m(0o750, 2)),
            ("t/d/big".to_owned(), file(2), m(0o755, 3)),
            ("t/d/empty".to_owned(), file(1), UnixMeta::default()),
            ("t/e".to_owned(), StoredItem::Dir, UnixMeta::default()),
            (
                "t/ln".to_owned(),
                StoredItem::Symlink("d/big".into()),
                UnixMeta {
                    mode: None,
                    mtime: t(4),
                },
            ),
        ];
        let node2 = node.clone();
        let (added, row) = tokio::task::spawn_blocking(move || {
            node2.files().build_tree(
                "t",
                &m(0o700, 5),
                &entries,
                CidVersion::V1,
                false,
                Some("t"),
            )
        })
        .await
        .unwrap()
        .unwrap();
        let root = added.last().unwrap().cid;
        let row = row.unwrap();
        assert_eq!((row.name.as_str(), row.cid), ("t", root));
        let (kind, meta, _) = node.files().stat_detailed(&root).unwrap();
        assert_eq!(
            (kind, meta),
            (NodeKind::Directory { sharded: false }, m(0o700, 5))
        );
        let top = node.files().ls_detailed(&root).unwrap();
        let names: Vec<&str> = top.iter().map(|e| e.entry.name.as_str()).collect();
        assert_eq!(names, ["a", "d", "e", "ln"]);
        assert_eq!(top[0].meta, m(0o600, 1));
        assert_eq!(top[0].entry.size, 6);
        assert_eq!(top[1].meta, m(0o750, 2));
        assert!(top[2].meta.is_empty());
        assert_eq!(top[3].target.as_deref(), Some("d/big"));
        assert_eq!(top[3].meta.mtime, t(4));
        let d = node.files().ls_detailed(&top[1].entry.cid).unwrap();
        assert_eq!(d[0].meta, m(0o755, 3));
        assert_eq!(d[0].entry.kind, NodeKind::File { size: 700_000 });
        // without metadata the stored root is linked as it is
        assert_eq!(d[1].entry.cid, links[1].cid);
        let read: Vec<u8> = node
            .files()
            .cat(d[0].entry.cid, None)
            .map(|p| p.unwrap().to_vec())
            .collect::<Vec<_>>()
            .concat();
        assert_eq!(read, big);
        assert!(node.files().check(&root, true).unwrap().is_ok());

        // a second snapshot of the name is newer; GC keeps both, unpinned
        let again = node.files().add_snapshot("t", &links[0].cid).unwrap();
        assert!(again.time_ms > row.time_ms);
        let all = node.files().snapshots(Some("t")).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].cid, links[0].cid);
        node.repo().collect_garbage().unwrap();
        assert!(node.files().check(&root, true).unwrap().is_ok());
        assert!(check_snapshot_name("a\0b").is_err());
        assert!(check_snapshot_name("").is_err());
        assert!(node.files().add_snapshot("x", &never.link.cid).is_err());
    }
}
