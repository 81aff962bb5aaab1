//! CARv1 (via `iroh-car`). Export writes blocks in depth-first pre-order, each block once —
//! the order `ipfs dag export` writes. One traversal, [`select_blocks`], serves both the whole-DAG
//! export and the trustless gateway's scoped exports: the blocks that resolve a path from the
//! root, then the entity at its end per [`DagScope`] and [`EntityBytes`]. It is a plain function
//! over a block getter, so it is tested without a store. Import verifies every block against its
//! CID; one bad block rejects the whole import and nothing of it stays stored. Roots are pinned
//! when their DAG is complete.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::str::FromStr;

use bytes::{Bytes, BytesMut};
use cairn_dag::dir::{DirListing, NodeKind, PathResolve, describe};
use cairn_dag::read::FileRead;
use cairn_dag::{Block, Cid};
use futures::{Stream, StreamExt};
use iroh_car::{CarHeader, CarReader, CarWriter};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use crate::{Node, NodeError};

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CarImport {
    /// Roots named in the CAR header.
    pub roots: Vec<Cid>,
    /// Blocks read.
    pub blocks: u64,
    /// Roots pinned (their DAG is complete in the store).
    pub pinned: Vec<Cid>,
    /// Roots not pinned because blocks are missing.
    pub incomplete: Vec<Cid>,
}

/// What a CAR holds of the entity at the end of its path (the trustless gateway's `dag-scope`).
/// The blocks that resolve the path are always included, before the entity's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum DagScope {
    /// Only the entity's root block.
    Block,
    /// What it takes to read the entity: every block of a UnixFS file (or only those holding
    /// [`EntityBytes`]), a directory's node and its HAMT shards (not the children); the root
    /// block of anything else.
    Entity,
    /// The whole DAG below the entity.
    #[default]
    All,
}

impl DagScope {
    /// The query-parameter spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DagScope::Block => "block",
            DagScope::Entity => "entity",
            DagScope::All => "all",
        }
    }
}

impl std::fmt::Display for DagScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `dag-scope` or `entity-bytes` value that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {param} {value:?}: {reason}")]
pub struct ScopeParseError {
    /// The parameter (`dag-scope`, `entity-bytes`).
    pub param: &'static str,
    /// The value given.
    pub value: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl FromStr for DagScope {
    type Err = ScopeParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "block" => Ok(DagScope::Block),
            "entity" => Ok(DagScope::Entity),
            "all" => Ok(DagScope::All),
            _ => Err(ScopeParseError {
                param: "dag-scope",
                value: s.to_owned(),
                reason: "expected block, entity or all",
            }),
        }
    }
}

/// `entity-bytes=from:to`: an inclusive byte range of a file; negative values count from the
/// end (`-1` is the last byte), `to = None` is `*` (the end of the file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EntityBytes {
    /// First byte (negative: from the end).
    pub from: i64,
    /// Last byte, inclusive (negative: from the end; `None`: `*`).
    pub to: Option<i64>,
}

impl FromStr for EntityBytes {
    type Err = ScopeParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| ScopeParseError {
            param: "entity-bytes",
            value: s.to_owned(),
            reason,
        };
        let number = |v: &str| {
            // digits with an optional leading '-': no '+', no spaces
            let digits = v.strip_prefix('-').unwrap_or(v);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err("expected from:to with integers, to may be *"));
            }
            v.parse::<i64>().map_err(|_| err("number out of range"))
        };
        let (from, to) = s.split_once(':').ok_or_else(|| err("expected from:to"))?;
        let from = number(from)?;
        let to = match to {
            "*" => None,
            to => Some(number(to)?),
        };
        if let Some(to) = to
            && (from >= 0) == (to >= 0)
            && from > to
        {
            return Err(err("from is after to"));
        }
        Ok(EntityBytes { from, to })
    }
}

impl std::fmt::Display for EntityBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.to {
            Some(to) => write!(f, "{}:{to}", self.from),
            None => write!(f, "{}:*", self.from),
        }
    }
}

impl EntityBytes {
    fn first_byte(&self, size: u64) -> u64 {
        if self.from >= 0 {
            self.from as u64
        } else {
            size.saturating_sub(self.from.unsigned_abs())
        }
    }

    /// The bytes of an entity of `size` bytes this names, as a half-open range; `None` when the
    /// range is empty (zero-length, or outside the entity).
    pub fn resolve(&self, size: u64) -> Option<Range<u64>> {
        let start = self.first_byte(size);
        let end = match self.to {
            None => size,
            Some(to) if to >= 0 => (to as u64).saturating_add(1).min(size),
            Some(to) => size.checked_sub(to.unsigned_abs())?.saturating_add(1),
        };
        (start < end).then_some(start..end)
    }

    /// Whether the range starts at or after the end of a non-empty entity of `size` bytes:
    /// nothing of it can be served (the gateway answers 400).
    pub fn starts_after(&self, size: u64) -> bool {
        size > 0 && self.first_byte(size) >= size
    }
}

/// Which blocks a scoped CAR holds: those resolving `path` below the root, then the entity at
/// its end per `scope`; `bytes` (with [`DagScope::Entity`]) limits a file to the blocks holding
/// that range. The default is the whole DAG of the root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CarSelection {
    /// `/`-separated path below the root (empty segments ignored).
    pub path: String,
    /// What of the entity at the end of the path.
    pub scope: DagScope,
    /// A byte range of a file entity (used with [`DagScope::Entity`]).
    pub bytes: Option<EntityBytes>,
}

/// Whether `cid` is an identity CID: its bytes are in the CID, no block is stored or sent.
pub fn is_identity(cid: &Cid) -> bool {
    cid.hash().code() == 0x00
}

/// The child shards of a HAMT directory node, in link order (not its entries).
fn shard_links(cid: &Cid, data: &Bytes) -> Result<Vec<Cid>, NodeError> {
    // A HAMT link is either an entry (name = 2 hex digits + entry name) or a child shard (the
    // 2 digits alone). The listing names the node's entries; every other link is a shard.
    let mut entries: HashMap<Cid, usize> = HashMap::new();
    for entry in DirListing::start(cid, data)?.entries() {
        *entries.entry(entry.cid).or_default() += 1;
    }
    let mut shards = Vec::new();
    for link in cairn_dag::links_of(cid, data)? {
        match entries.get_mut(&link) {
            Some(n) if *n > 0 => *n -= 1,
            _ => shards.push(link),
        }
    }
    Ok(shards)
}

/// One walk over a DAG: fetches blocks and emits each at most once. Identity CIDs are read from
/// the CID itself and never emitted (a CAR must not hold them).
struct Walk<G, E> {
    get: G,
    emit: E,
    emitted: HashSet<Cid>,
}

impl<G, E> Walk<G, E>
where
    G: FnMut(&Cid) -> Result<Bytes, NodeError>,
    E: FnMut(&Cid, &Bytes) -> Result<(), NodeError>,
{
    fn fetch(&mut self, cid: &Cid) -> Result<Bytes, NodeError> {
        if is_identity(cid) {
            return Ok(Bytes::copy_from_slice(cid.hash().digest()));
        }
        (self.get)(cid)
    }

    fn emit(&mut self, cid: &Cid, data: &Bytes) -> Result<(), NodeError> {
        if !is_identity(cid) && self.emitted.insert(*cid) {
            (self.emit)(cid, data)?;
        }
        Ok(())
    }

    /// Fetches and emits `cid`; returns its bytes.
    fn visit(&mut self, cid: &Cid) -> Result<Bytes, NodeError> {
        let data = self.fetch(cid)?;
        self.emit(cid, &data)?;
        Ok(data)
    }

    /// Depth-first pre-order from `start` (whose bytes are given), following `links`; a block
    /// is entered once.
    fn dfs(
        &mut self,
        start: Cid,
        data: Bytes,
        links: impl Fn(&Cid, &Bytes) -> Result<Vec<Cid>, NodeError>,
    ) -> Result<(), NodeError> {
        let mut entered = HashSet::from([start]);
        self.emit(&start, &data)?;
        let mut stack: Vec<Cid> = links(&start, &data)?.into_iter().rev().collect();
        while let Some(cid) = stack.pop() {
            if entered.insert(cid) {
                let data = self.visit(&cid)?;
                stack.extend(links(&cid, &data)?.into_iter().rev());
            }
        }
        Ok(())
    }

    /// The blocks of file `file` (whose root bytes are given) holding `range`, in file order
    /// with the branch nodes above them.
    fn file_range(&mut self, file: Cid, data: Bytes, range: Range<u64>) -> Result<(), NodeError> {
        // rust-unixfs keeps a block whose byte range merely touches the target (block end ==
        // target start), so the target is narrowed by a byte at each end, which leaves exactly
        // the overlapping blocks. A one-byte range cannot be narrowed: the walk stops at its
        // one leaf instead.
        let single = range.end - range.start == 1;
        let target = if single {
            range.end..range.end
        } else {
            range.start + 1..range.end - 1
        };
        let mut read = FileRead::new(file, Some(target));
        let mut root = Some(data);
        while let Some(cid) = read.next_cid() {
            let block = match root.take() {
                Some(data) => {
                    self.emit(&cid, &data)?;
                    data
                }
                None => self.visit(&cid)?,
            };
            read.feed(&block)?;
            if single && cairn_dag::links_of(&cid, &block)?.is_empty() {
                break;
            }
        }
        Ok(())
    }
}

fn all_links(cid: &Cid, data: &Bytes) -> Result<Vec<Cid>, NodeError> {
    Ok(cairn_dag::links_of(cid, data)?)
}

/// Selects the blocks of a CAR: fetches what it needs through `get` and hands each selected
/// block to `emit` once, in depth-first pre-order (the path's blocks first). Returns the number
/// of blocks emitted.
///
/// A path through something that is not a directory fails with `NotADirectory`, a missing
/// name with `NotFound`; a block `get` cannot produce fails the walk with `get`'s error.
pub fn select_blocks(
    root: Cid,
    selection: &CarSelection,
    get: impl FnMut(&Cid) -> Result<Bytes, NodeError>,
    mut emit: impl FnMut(&Cid, &Bytes) -> Result<(), NodeError>,
) -> Result<u64, NodeError> {
    let mut count = 0u64;
    let mut walk = Walk {
        get,
        emit: |cid: &Cid, data: &Bytes| {
            count += 1;
            emit(cid, data)
        },
        emitted: HashSet::new(),
    };
    let mut resolve = PathResolve::new(root, &selection.path);
    while let Some(cid) = resolve.next_cid() {
        let data = walk.visit(&cid)?;
        resolve.feed(&data)?;
    }
    let entity = resolve.resolved();
    let data = walk.fetch(&entity)?;
    match (selection.scope, describe(&entity, &data)) {
        (DagScope::Block, _) => walk.emit(&entity, &data)?,
        (DagScope::All, _) => walk.dfs(entity, data, all_links)?,
        (DagScope::Entity, NodeKind::File { size }) => match selection.bytes {
            None => walk.dfs(entity, data, all_links)?,
            Some(bytes) => match bytes.resolve(size) {
                None => walk.emit(&entity, &data)?,
                Some(range) => walk.file_range(entity, data, range)?,
            },
        },
        (DagScope::Entity, NodeKind::Directory { sharded: true }) => {
            walk.dfs(entity, data, shard_links)?
        }
        (DagScope::Entity, _) => walk.emit(&entity, &data)?,
    }
    drop(walk);
    Ok(count)
}

fn car_err(e: impl std::fmt::Display) -> NodeError {
    NodeError::Car(e.to_string())
}

/// The reading side of [`Node::car_import`]: a CARv1 stream's header, then its blocks, each
/// verified against its CID (a block that does not match fails the read). Public for the fuzz
/// targets (`fuzz/`), which feed it untrusted bytes as an import does.
#[doc(hidden)]
pub struct CarBlocks<R> {
    reader: CarReader<R>,
    count: u64,
}

impl<R: AsyncRead + Send + Unpin> CarBlocks<R> {
    /// Reads the header.
    pub async fn open(input: R) -> Result<Self, NodeError> {
        let reader = CarReader::new(input).await.map_err(car_err)?;
        Ok(CarBlocks { reader, count: 0 })
    }

    /// The roots the header names.
    pub fn roots(&self) -> &[Cid] {
        self.reader.header().roots()
    }

    /// The next block, verified; `None` at the end of the stream.
    pub async fn next_block(&mut self) -> Result<Option<Block>, NodeError> {
        let Some((cid, data)) = self.reader.next_block().await.map_err(car_err)? else {
            return Ok(None);
        };
        self.count += 1;
        let count = self.count;
        Block::verified(cid, data)
            .map(Some)
            .map_err(|e| NodeError::Car(format!("block #{count}: {e}")))
    }
}

impl Node {
    /// The bytes of one block, verified; an identity CID's bytes come from the CID itself.
    pub fn block(&self, cid: &Cid) -> Result<Bytes, NodeError> {
        if is_identity(cid) {
            return Ok(Bytes::copy_from_slice(cid.hash().digest()));
        }
        Ok(self.store().get(cid)?)
    }

    /// [`select_blocks`] over this node's store (blocking: call it off the async workers).
    pub fn car_blocks(
        &self,
        root: Cid,
        selection: &CarSelection,
        emit: impl FnMut(&Cid, &Bytes) -> Result<(), NodeError>,
    ) -> Result<u64, NodeError> {
        select_blocks(root, selection, |cid| self.block(cid), emit)
    }

    /// Writes the DAG under `root` as a CARv1 stream; returns the number of blocks.
    pub async fn car_export<W: AsyncWrite + Send + Unpin>(
        &self,
        root: Cid,
        out: W,
    ) -> Result<u64, NodeError> {
        self.car_export_scoped(root, CarSelection::default(), out)
            .await
    }

    /// Writes the blocks `selection` names (see [`select_blocks`]) as a CARv1 stream whose
    /// header root is `root`; returns the number of blocks. The blocks are read on a blocking
    /// thread, a few ahead of the writer.
    pub async fn car_export_scoped<W: AsyncWrite + Send + Unpin>(
        &self,
        root: Cid,
        selection: CarSelection,
        out: W,
    ) -> Result<u64, NodeError> {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<(Cid, Bytes)>(16);
        let node = self.clone();
        let reader = tokio::task::spawn_blocking(move || {
            node.car_blocks(root, &selection, |cid, data| {
                tx.blocking_send((*cid, data.clone()))
                    .map_err(|_| car_err("export cancelled"))
            })
        });
        let mut writer = CarWriter::new(CarHeader::new_v1(vec![root]), out);
        let written = async {
            writer.write_header().await.map_err(car_err)?;
            while let Some((cid, data)) = rx.recv().await {
                writer.write(cid, &data).await.map_err(car_err)?;
            }
            Ok::<_, NodeError>(())
        }
        .await;
        drop(rx); // a failed write stops the reader at its next block
        let count = reader
            .await
            .map_err(|e| NodeError::Unsupported(format!("CAR export task: {e}")));
        written?;
        let count = count??;
        writer.finish().await.map_err(car_err)?;
        Ok(count)
    }

    /// The scoped CAR as a stream of byte pieces (for a response body). A failure after the
    /// first piece ends the stream with the error, so a reader cannot take a cut CAR for a
    /// whole one.
    pub fn car_stream(
        &self,
        root: Cid,
        selection: CarSelection,
    ) -> impl Stream<Item = Result<Bytes, NodeError>> + Send + 'static {
        let (writer, reader) = tokio::io::duplex(256 * 1024);
        let node = self.clone();
        let export =
            tokio::spawn(async move { node.car_export_scoped(root, selection, writer).await });
        let pieces = futures::stream::unfold(reader, |mut reader| async move {
            let mut buf = BytesMut::with_capacity(64 * 1024);
            match reader.read_buf(&mut buf).await {
                Ok(0) => None,
                Ok(_) => Some((Ok(buf.freeze()), reader)),
                Err(e) => Some((Err(car_err(e)), reader)),
            }
        });
        let outcome = futures::stream::once(async move {
            let failure = match export.await {
                Ok(Ok(_)) => return None,
                Ok(Err(e)) => e,
                Err(e) => car_err(format!("CAR export task: {e}")),
            };
            tracing::warn!(%root, "CAR export failed: {failure}");
            Some(Err(failure))
        })
        .filter_map(std::future::ready);
        pieces.chain(outcome)
    }

    /// Imports a CARv1 stream. Every block is verified first; any bad block fails the whole
    /// import with nothing stored. With `pin_roots`, each root whose DAG is complete is pinned.
    /// The stream is read here; blocks are written, synced and checked on a blocking thread.
    pub async fn car_import<R: AsyncRead + Send + Unpin>(
        &self,
        input: R,
        pin_roots: bool,
    ) -> Result<CarImport, NodeError> {
        let mut reader = CarBlocks::open(input).await?;
        let roots = reader.roots().to_vec();
        // `None` marks the end of a CAR read whole: without it nothing is committed.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Option<Block>>(16);
        let node = self.clone();
        let writer = tokio::task::spawn_blocking(move || {
            let batch = node.store().batch();
            let mut result = CarImport {
                roots,
                ..Default::default()
            };
            loop {
                match rx.blocking_recv() {
                    Some(Some(block)) => batch.put(&block)?,
                    Some(None) => break,
                    None => return Err(car_err("import cut short")),
                }
                result.blocks += 1;
            }
            if pin_roots {
                // Checked against the batch (its blocks and those stored already, all held),
                // then pinned in the commit that makes the blocks durable: GC never sees the
                // blocks without their pins.
                for root in result.roots.clone() {
                    if node.check_held(&root, &batch)?.missing.is_empty() {
                        result.pinned.push(root);
                    } else {
                        result.incomplete.push(root);
                    }
                }
            }
            batch.commit(&result.pinned)?;
            Ok(result)
        });
        let read = async {
            while let Some(block) = reader.next_block().await? {
                if tx.send(Some(block)).await.is_err() {
                    return Ok(()); // the writer failed; its error is the answer
                }
            }
            let _ = tx.send(None).await;
            Ok::<_, NodeError>(())
        }
        .await;
        drop(tx);
        let written = writer
            .await
            .map_err(|e| NodeError::Unsupported(format!("CAR import task: {e}")))?;
        read?;
        written
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_dag::dir::DirectoryBuilder;
    use cairn_dag::file::{branch_links, encode_bytes};
    use cairn_dag::{CHUNK_SIZE, CidVersion};
    use cairn_store::StoreError;

    type Blocks = HashMap<Cid, Bytes>;

    /// xorshift bytes: no two chunks alike.
    fn bytes(len: usize, seed: u8) -> Vec<u8> {
        let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ u64::from(seed);
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn add_file(blocks: &mut Blocks, data: &[u8], version: CidVersion) -> (Cid, u64) {
        let (file_blocks, root) = encode_bytes(data, version);
        blocks.extend(file_blocks.into_iter().map(|b| (b.cid, b.data)));
        (root.link.cid, root.link.dag_size)
    }

    /// `dir` holding `entries` (path → file bytes); returns the root and every directory node's
    /// (path, CID), root last.
    fn add_tree(blocks: &mut Blocks, entries: &[(String, Vec<u8>)]) -> (Cid, Vec<(String, Cid)>) {
        let mut builder = DirectoryBuilder::new(CidVersion::V1);
        for (path, data) in entries {
            let (cid, size) = add_file(blocks, data, CidVersion::V1);
            builder.add_link(&format!("dir/{path}"), cid, size).unwrap();
        }
        let nodes = builder.build().unwrap();
        let dirs: Vec<(String, Cid)> = nodes
            .iter()
            .map(|n| (n.path.clone(), n.block.cid))
            .collect();
        blocks.extend(nodes.into_iter().map(|n| (n.block.cid, n.block.data)));
        (dirs.last().unwrap().1, dirs)
    }

    fn select(blocks: &Blocks, root: Cid, selection: &CarSelection) -> Result<Vec<Cid>, NodeError> {
        let mut out = Vec::new();
        let n = select_blocks(
            root,
            selection,
            |cid| {
                blocks
                    .get(cid)
                    .cloned()
                    .ok_or(NodeError::Store(StoreError::NotFound(*cid)))
            },
            |cid, data| {
                assert_eq!(&blocks[cid], data);
                out.push(*cid);
                Ok(())
            },
        )?;
        assert_eq!(n as usize, out.len());
        let distinct: HashSet<_> = out.iter().collect();
        assert_eq!(distinct.len(), out.len(), "a block emitted twice");
        Ok(out)
    }

    fn scoped(path: &str, scope: DagScope, bytes: Option<&str>) -> CarSelection {
        CarSelection {
            path: path.to_owned(),
            scope,
            bytes: bytes.map(|b| b.parse().unwrap()),
        }
    }

    /// Reference pre-order DFS (recursive), following the links `keep` accepts.
    fn reference_dfs(blocks: &Blocks, cid: Cid, keep: &dyn Fn(&Cid) -> bool) -> Vec<Cid> {
        fn go(
            blocks: &Blocks,
            cid: Cid,
            keep: &dyn Fn(&Cid) -> bool,
            seen: &mut HashSet<Cid>,
            out: &mut Vec<Cid>,
        ) {
            if !seen.insert(cid) {
                return;
            }
            out.push(cid);
            for link in cairn_dag::links_of(&cid, &blocks[&cid]).unwrap() {
                if keep(&link) {
                    go(blocks, link, keep, seen, out);
                }
            }
        }
        let mut out = Vec::new();
        go(blocks, cid, keep, &mut HashSet::new(), &mut out);
        out
    }

    #[test]
    fn whole_dag_is_depth_first_pre_order_once_each() {
        let mut blocks = Blocks::new();
        let same = bytes(3 * CHUNK_SIZE, 1);
        let (root, _) = add_tree(
            &mut blocks,
            &[
                ("a.bin".into(), same.clone()),
                ("sub/b.bin".into(), same.clone()),
                ("sub/c.txt".into(), b"hello".to_vec()),
                ("z.bin".into(), bytes(CHUNK_SIZE + 1, 2)),
            ],
        );
        let all = select(&blocks, root, &CarSelection::default()).unwrap();
        assert_eq!(all, reference_dfs(&blocks, root, &|_| true));
        assert_eq!(all.len(), blocks.len(), "every block, once");
        assert_eq!(all[0], root);
    }

    #[test]
    fn block_scope_and_paths() {
        let mut blocks = Blocks::new();
        let (file, _) = add_file(&mut blocks, &bytes(2 * CHUNK_SIZE, 3), CidVersion::V0);
        assert_eq!(
            select(&blocks, file, &scoped("", DagScope::Block, None)).unwrap(),
            [file]
        );
        let (root, dirs) = add_tree(
            &mut blocks,
            &[
                ("sub/f.bin".into(), bytes(2 * CHUNK_SIZE, 4)),
                ("g".into(), b"g".to_vec()),
            ],
        );
        let sub = dirs.iter().find(|(p, _)| p == "dir/sub").unwrap().1;
        let f = cairn_dag::dir::DirListing::start(&sub, &blocks[&sub])
            .unwrap()
            .entries()[0]
            .cid;
        // the path's blocks, then the entity
        assert_eq!(
            select(&blocks, root, &scoped("sub/f.bin", DagScope::Block, None)).unwrap(),
            [root, sub, f]
        );
        let whole = select(&blocks, root, &scoped("/sub//f.bin", DagScope::All, None)).unwrap();
        assert_eq!(whole[..2], [root, sub]);
        assert_eq!(whole[2..], reference_dfs(&blocks, f, &|_| true));
        // a directory entity without shards is its one block; `all` takes its children
        assert_eq!(
            select(&blocks, root, &scoped("sub", DagScope::Entity, None)).unwrap(),
            [root, sub]
        );
        assert_eq!(
            select(&blocks, root, &scoped("sub", DagScope::All, None))
                .unwrap()
                .len(),
            2 + 3
        );
        assert!(matches!(
            select(&blocks, root, &scoped("nope", DagScope::All, None)),
            Err(NodeError::Dag(e)) if matches!(*e, cairn_dag::DagError::NotFound { .. })
        ));
        assert!(matches!(
            select(&blocks, root, &scoped("g/x", DagScope::All, None)),
            Err(NodeError::Dag(e)) if matches!(*e, cairn_dag::DagError::NotADirectory(_))
        ));
        blocks.remove(&f);
        assert!(matches!(
            select(&blocks, root, &scoped("sub/f.bin", DagScope::All, None)),
            Err(NodeError::Store(StoreError::NotFound(c))) if c == f
        ));
    }

    #[test]
    fn file_entity_and_entity_bytes_take_only_the_needed_leaves() {
        let mut blocks = Blocks::new();
        let size = 10 * CHUNK_SIZE as u64 + 100;
        let (file, _) = add_file(&mut blocks, &bytes(size as usize, 5), CidVersion::V1);
        let leaves: Vec<Cid> = branch_links(&file, &blocks[&file])
            .unwrap()
            .into_iter()
            .map(|l| l.cid)
            .collect();
        assert_eq!(leaves.len(), 11);
        let entity = |b: Option<&str>| select(&blocks, file, &scoped("", DagScope::Entity, b));
        let mut whole = vec![file];
        whole.extend(&leaves);
        assert_eq!(entity(None).unwrap(), whole);
        assert_eq!(entity(Some("0:*")).unwrap(), whole);
        assert_eq!(entity(Some("0:0")).unwrap(), [file, leaves[0]]);
        assert_eq!(entity(Some("-1:*")).unwrap(), [file, leaves[10]]);
        let c = CHUNK_SIZE as i64;
        assert_eq!(
            entity(Some(&format!("{}:{}", 3 * c + 5, 4 * c + 5))).unwrap(),
            [file, leaves[3], leaves[4]]
        );
        // ranges on leaf boundaries take no neighbour
        for (b, want) in [
            (format!("{c}:{}", 2 * c - 1), vec![leaves[1]]),
            (format!("{}:{c}", c - 1), vec![leaves[0], leaves[1]]),
            (format!("{c}:{c}"), vec![leaves[1]]),
            (format!("{}:{}", c - 1, c - 1), vec![leaves[0]]),
            (format!("{}:{}", 2 * c - 2, 2 * c - 1), vec![leaves[1]]),
        ] {
            let mut expected = vec![file];
            expected.extend(want);
            assert_eq!(entity(Some(&b)).unwrap(), expected, "{b}");
        }
        // 500 bytes from the start to 1000 bytes from the end: the last leaf holds only 100
        assert_eq!(entity(Some("499:-1000")).unwrap(), whole[..11]);
        // an empty or out-of-range request is the root block only
        assert_eq!(entity(Some(&format!("{size}:*"))).unwrap(), [file]);
        assert_eq!(
            entity(Some(&format!("{}:-{}", 5 * c, 6 * c))).unwrap(),
            [file]
        );
        assert_eq!(entity(Some(&format!("0:-{}", size + 1))).unwrap(), [file]);
    }

    #[test]
    fn hamt_entity_is_the_shards_not_the_entries() {
        let mut blocks = Blocks::new();
        let entries: Vec<(String, Vec<u8>)> = (0..4000)
            .map(|i| {
                (
                    format!("a-rather-long-file-name-to-force-sharding-{i:05}.txt"),
                    format!("file {i}\n").into_bytes(),
                )
            })
            .collect();
        let (root, dirs) = add_tree(&mut blocks, &entries);
        assert_eq!(
            describe(&root, &blocks[&root]),
            NodeKind::Directory { sharded: true }
        );
        let shards: HashSet<Cid> = dirs.iter().map(|(_, c)| *c).collect();
        assert!(shards.len() > 2, "interior shards exist");
        let entity = select(&blocks, root, &scoped("", DagScope::Entity, None)).unwrap();
        assert_eq!(
            entity,
            reference_dfs(&blocks, root, &|c| shards.contains(c))
        );
        assert_eq!(
            entity.iter().collect::<HashSet<_>>(),
            shards.iter().collect()
        );
        // entity-bytes means nothing to a directory
        assert_eq!(
            select(&blocks, root, &scoped("", DagScope::Entity, Some("0:10"))).unwrap(),
            entity
        );
        assert_eq!(
            select(&blocks, root, &CarSelection::default())
                .unwrap()
                .len(),
            blocks.len()
        );
        // a path through the HAMT reads only the shards on the way
        let name = &entries[1234].0;
        let path = select(&blocks, root, &scoped(name, DagScope::Block, None)).unwrap();
        assert!(
            path.len() >= 3 && path.len() < shards.len(),
            "{}",
            path.len()
        );
        assert!(path[..path.len() - 1].iter().all(|c| shards.contains(c)));
        let file = *path.last().unwrap();
        assert_eq!(blocks[&file], Bytes::from(entries[1234].1.clone()));
    }

    #[test]
    fn identity_cids_are_never_emitted() {
        let probe: Cid = "bafkqaaa".parse().unwrap();
        let none = Blocks::new();
        assert!(
            select(&none, probe, &CarSelection::default())
                .unwrap()
                .is_empty()
        );
        assert!(
            select(&none, probe, &scoped("", DagScope::Entity, Some("0:*")))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn scope_and_entity_bytes_parse() {
        assert_eq!("all".parse(), Ok(DagScope::All));
        assert_eq!("entity".parse(), Ok(DagScope::Entity));
        assert_eq!("block".parse(), Ok(DagScope::Block));
        for bad in ["", "ALL", "blocks", "entity "] {
            assert!(bad.parse::<DagScope>().is_err(), "{bad:?}");
        }
        let eb = |s: &str| s.parse::<EntityBytes>();
        assert_eq!(eb("0:*"), Ok(EntityBytes { from: 0, to: None }));
        assert_eq!(
            eb("-1024:*"),
            Ok(EntityBytes {
                from: -1024,
                to: None
            })
        );
        assert_eq!(
            eb("499:-1000"),
            Ok(EntityBytes {
                from: 499,
                to: Some(-1000)
            })
        );
        assert_eq!(
            eb("5:5"),
            Ok(EntityBytes {
                from: 5,
                to: Some(5)
            })
        );
        for ok in ["0:*", "-1024:*", "499:-1000", "5:5", "-10:-5", "-3:7"] {
            assert_eq!(eb(ok).unwrap().to_string(), ok);
        }
        for bad in [
            "",
            ":",
            "1",
            "1:",
            ":2",
            "*:*",
            "a:b",
            "+1:2",
            " 1:2",
            "1:2 ",
            "6:5",
            "-5:-10",
            "1:2:3",
            "99999999999999999999:*",
            "--1:*",
        ] {
            assert!(eb(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn entity_bytes_resolve_against_a_size() {
        let r = |s: &str, size| s.parse::<EntityBytes>().unwrap().resolve(size);
        assert_eq!(r("0:*", 100), Some(0..100));
        assert_eq!(r("0:0", 100), Some(0..1));
        assert_eq!(r("10:19", 100), Some(10..20));
        assert_eq!(r("10:1000", 100), Some(10..100));
        assert_eq!(r("-10:*", 100), Some(90..100));
        assert_eq!(r("-1000:*", 100), Some(0..100));
        assert_eq!(r("-10:-1", 100), Some(90..100));
        assert_eq!(r("-10:-2", 100), Some(90..99));
        assert_eq!(r("5:-90", 100), Some(5..11));
        assert_eq!(r("0:-100", 100), Some(0..1));
        assert_eq!(r("0:-101", 100), None);
        assert_eq!(r("50:-60", 100), None);
        assert_eq!(r("100:*", 100), None);
        assert_eq!(r("0:*", 0), None);
        let after = |s: &str, size| s.parse::<EntityBytes>().unwrap().starts_after(size);
        assert!(after("100:*", 100) && after("200:300", 100));
        assert!(!after("99:*", 100) && !after("-1000:*", 100) && !after("0:*", 0));
    }

    #[tokio::test]
    async fn scoped_export_and_stream_are_valid_cars() {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::open(dir.path()).unwrap();
        let data = bytes(3 * CHUNK_SIZE + 7, 9);
        let link = node
            .add_reader(&mut &data[..], CidVersion::V0, true)
            .unwrap();
        let parse = |car: Vec<u8>| async move {
            let mut reader = CarReader::new(&car[..]).await.unwrap();
            let roots = reader.header().roots().to_vec();
            let mut blocks = Vec::new();
            while let Some((cid, data)) = reader.next_block().await.unwrap() {
                cairn_dag::verify(&cid, &data).unwrap();
                blocks.push(cid);
            }
            (roots, blocks)
        };
        let mut car = Vec::new();
        assert_eq!(node.car_export(link.cid, &mut car).await.unwrap(), 5);
        let (roots, all) = parse(car).await;
        assert_eq!((roots, all.len()), (vec![link.cid], 5));

        let selection = scoped("", DagScope::Entity, Some("-7:*"));
        let pieces: Vec<_> = node.car_stream(link.cid, selection).collect().await;
        let car: Vec<u8> = pieces
            .into_iter()
            .flat_map(|p| p.unwrap().to_vec())
            .collect();
        let (roots, some) = parse(car).await;
        assert_eq!(roots, vec![link.cid]);
        assert_eq!(some, [all[0], all[4]]);

        // a missing block ends the stream with an error, never a clean end
        let leaf = all[2];
        for shard in std::fs::read_dir(dir.path().join("blocks")).unwrap() {
            for file in std::fs::read_dir(shard.unwrap().path()).unwrap() {
                let path = file.unwrap().path();
                let data = std::fs::read(&path).unwrap();
                if cairn_dag::cid_of(CidVersion::V0, cairn_dag::DAG_PB, &data).ok() == Some(leaf) {
                    std::fs::remove_file(path).unwrap();
                }
            }
        }
        let pieces: Vec<_> = node
            .car_stream(link.cid, CarSelection::default())
            .collect()
            .await;
        assert!(pieces.iter().any(Result::is_ok), "the first blocks came");
        assert!(pieces.last().unwrap().is_err());
    }
}
