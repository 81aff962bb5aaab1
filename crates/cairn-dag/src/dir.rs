//! UnixFS directories: building a tree like `ipfs add -r` (plain directories, switching to a
//! HAMT shard of fanout 256 when the sum of name and CID lengths exceeds 256 KiB), classifying
//! nodes, listing (following HAMT shards) and resolving paths — all sans-I/O.

use std::collections::VecDeque;

use bytes::Bytes;
use cid::Cid;
use multihash_codetable::Code;
use rust_unixfs::dir::builder::{BufferingTreeBuilder, TreeOptions};
use rust_unixfs::dir::{Cache, DirLink, NodeDescription, ShardedLookup};
use rust_unixfs::{MaybeResolved, Metadata};

use crate::{Block, CidVersion, DAG_PB, DagError, RAW};

/// Builds a directory tree from `(path, link)` pairs; paths are relative, `/`-separated, and
/// share one top-level name (the root directory's own name).
pub struct DirectoryBuilder {
    inner: BufferingTreeBuilder,
}

impl std::fmt::Debug for DirectoryBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DirectoryBuilder")
    }
}

/// One built directory node.
#[derive(Debug, Clone)]
pub struct DirNode {
    /// Path of the directory within the tree (empty for an interior HAMT shard).
    pub path: String,
    /// The node's block.
    pub block: Block,
    /// Bytes of all blocks in the subtree (dag-pb Tsize).
    pub dag_size: u64,
}

impl DirectoryBuilder {
    /// A builder whose directory nodes use `version` (Kubo: directories follow `--cid-version`).
    pub fn new(version: CidVersion) -> Self {
        let mut opts = TreeOptions::default();
        opts.cid_version(version.to_cid_version());
        opts.hasher(Code::Sha2_256);
        DirectoryBuilder {
            inner: BufferingTreeBuilder::new(opts),
        }
    }

    /// Adds an entry (file, symlink or already-built directory) at `path`.
    pub fn add_link(&mut self, path: &str, cid: Cid, dag_size: u64) -> Result<(), DagError> {
        self.inner
            .put_link(path, cid, dag_size)
            .map_err(|e| DagError::Tree(e.to_string()))
    }

    /// Makes sure the directory at `path` exists, even if nothing is added under it.
    pub fn add_dir(&mut self, path: &str) -> Result<(), DagError> {
        self.inner
            .set_metadata(path, Metadata::default())
            .map_err(|e| DagError::Tree(e.to_string()))
    }

    /// Makes sure the directory at `path` exists and gives it UnixFS 1.5 metadata (mode,
    /// mtime; on a HAMT, the root shard carries it).
    pub fn add_dir_with(
        &mut self,
        path: &str,
        meta: &crate::meta::UnixMeta,
    ) -> Result<(), DagError> {
        self.inner
            .set_metadata(path, meta.to_unixfs())
            .map_err(|e| DagError::Tree(e.to_string()))
    }

    /// Renders every directory node, children before parents; the last one is the root.
    pub fn build(self) -> Result<Vec<DirNode>, DagError> {
        self.inner
            .build()
            .map(|node| {
                let node = node.map_err(|e| DagError::Tree(e.to_string()))?;
                Ok(DirNode {
                    path: node.path,
                    block: Block {
                        cid: node.cid,
                        data: Bytes::from(node.block.into_vec()),
                    },
                    dag_size: node.total_size,
                })
            })
            .collect()
    }
}

/// The block of a UnixFS symlink to `target`.
pub fn symlink(target: &str, version: CidVersion) -> Block {
    let (cid, data) = rust_unixfs::symlink::symlink_block(
        target,
        &Metadata::default(),
        version.to_cid_version(),
        Code::Sha2_256,
    );
    Block {
        cid,
        data: Bytes::from(data),
    }
}

/// The block of a UnixFS symlink to `target` carrying `meta` (UnixFS 1.5 mode/mtime).
pub fn symlink_with(target: &str, version: CidVersion, meta: &crate::meta::UnixMeta) -> Block {
    let (cid, data) = rust_unixfs::symlink::symlink_block(
        target,
        &meta.to_unixfs(),
        version.to_cid_version(),
        Code::Sha2_256,
    );
    Block {
        cid,
        data: Bytes::from(data),
    }
}

/// What a block is, as far as UnixFS is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    /// A file (dag-pb UnixFS file or a raw leaf) of `size` bytes.
    File {
        /// File size in bytes.
        size: u64,
    },
    /// A plain or HAMT-sharded directory.
    Directory {
        /// Whether the directory is a HAMT shard.
        sharded: bool,
    },
    /// A symlink.
    Symlink,
    /// Anything else (dag-cbor, non-UnixFS dag-pb, ...).
    Other,
}

/// Classifies a block.
pub fn describe(cid: &Cid, block: &[u8]) -> NodeKind {
    match cid.codec() {
        RAW => NodeKind::File {
            size: block.len() as u64,
        },
        DAG_PB => match rust_unixfs::dir::describe(block) {
            NodeDescription::File { size } => NodeKind::File { size },
            NodeDescription::Directory { .. } => NodeKind::Directory { sharded: false },
            NodeDescription::HamtShard { .. } => NodeKind::Directory { sharded: true },
            NodeDescription::Symlink => NodeKind::Symlink,
            NodeDescription::Other => NodeKind::Other,
        },
        _ => NodeKind::Other,
    }
}

/// The target of a UnixFS symlink block.
pub fn symlink_target(cid: &Cid, block: &[u8]) -> Result<String, DagError> {
    let data = rust_unixfs::dagpb::node_data(block)
        .map_err(|e| DagError::malformed(cid, e))?
        .unwrap_or_default();
    // UnixFS Data message: field 1 Type (varint), field 2 Data (bytes). Walk it with the same
    // reader the walker uses rather than hand-parsing: the walker reports symlink targets.
    let mut walker = rust_unixfs::walk::Walker::new(*cid, String::new());
    match walker.next(block, &mut None) {
        Ok(rust_unixfs::walk::ContinuedWalk::Symlink(target, ..)) => {
            String::from_utf8(target.to_vec()).map_err(|e| DagError::malformed(cid, e))
        }
        _ => Err(DagError::malformed(
            cid,
            format!("not a symlink ({} data bytes)", data.len()),
        )),
    }
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// Entry name (never contains `/`, never `.` or `..`).
    pub name: String,
    /// Target.
    pub cid: Cid,
    /// dag-pb Tsize recorded on the link.
    pub dag_size: u64,
}

fn checked_name(parent: &Cid, name: &str) -> Result<(), DagError> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(DagError::malformed(
            parent,
            format!("unsafe entry name {name:?}"),
        ));
    }
    Ok(())
}

/// Sans-I/O listing of a directory, following HAMT shards: feed the blocks
/// [`next_cid`](Self::next_cid) asks for, then take [`entries`](Self::entries).
#[derive(Debug)]
pub struct DirListing {
    pending: VecDeque<Cid>,
    entries: Vec<DirEntry>,
}

impl DirListing {
    /// Starts listing the directory whose root block is `block`.
    pub fn start(cid: &Cid, block: &[u8]) -> Result<Self, DagError> {
        let mut listing = DirListing {
            pending: VecDeque::new(),
            entries: Vec::new(),
        };
        if cid.codec() != DAG_PB {
            return Err(DagError::NotADirectory(*cid));
        }
        match rust_unixfs::dir::describe(block) {
            NodeDescription::Directory { links } => {
                for DirLink {
                    name,
                    target,
                    tsize,
                } in links
                {
                    checked_name(cid, &name)?;
                    listing.entries.push(DirEntry {
                        name,
                        cid: target,
                        dag_size: tsize,
                    });
                }
            }
            NodeDescription::HamtShard { links } => {
                listing.add_shard_links(cid, links)?;
            }
            _ => return Err(DagError::NotADirectory(*cid)),
        }
        Ok(listing)
    }

    fn add_shard_links(&mut self, cid: &Cid, links: Vec<DirLink>) -> Result<(), DagError> {
        for link in links {
            if link.name.len() < 2 || !link.name.is_char_boundary(2) {
                return Err(DagError::malformed(cid, "HAMT link name too short"));
            }
            let (_, name) = link.name.split_at(2);
            if name.is_empty() {
                self.pending.push_back(link.target);
            } else {
                checked_name(cid, name)?;
                self.entries.push(DirEntry {
                    name: name.to_owned(),
                    cid: link.target,
                    dag_size: link.tsize,
                });
            }
        }
        Ok(())
    }

    /// The next HAMT shard block needed, if any.
    pub fn next_cid(&self) -> Option<Cid> {
        self.pending.front().copied()
    }

    /// Feeds the shard block named by [`next_cid`](Self::next_cid).
    pub fn feed(&mut self, block: &[u8]) -> Result<(), DagError> {
        let Some(cid) = self.pending.pop_front() else {
            return Err(DagError::Unsupported("listing already complete".into()));
        };
        match rust_unixfs::dir::describe(block) {
            NodeDescription::HamtShard { links } => self.add_shard_links(&cid, links),
            _ => Err(DagError::malformed(&cid, "HAMT bucket is not a shard")),
        }
    }

    /// The entries, sorted by name (a HAMT keeps them in hash order; a listing should not).
    pub fn entries(mut self) -> Vec<DirEntry> {
        self.entries
            .sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        self.entries
    }
}

/// Sans-I/O resolution of `root/a/b/c` through plain and HAMT directories.
pub struct PathResolve {
    current: Cid,
    segments: VecDeque<String>,
    lookup: Option<ShardedLookup<'static>>,
    cache: Option<Cache>,
}

impl std::fmt::Debug for PathResolve {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PathResolve")
            .field("current", &self.current)
            .field("segments", &self.segments)
            .finish_non_exhaustive()
    }
}

impl PathResolve {
    /// Resolves `path` (segments separated by `/`; empty segments ignored) under `root`.
    pub fn new(root: Cid, path: &str) -> Self {
        PathResolve {
            current: root,
            segments: path
                .split('/')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            lookup: None,
            cache: None,
        }
    }

    /// The block needed next, or `None` when [`resolved`](Self::resolved) is the answer.
    pub fn next_cid(&self) -> Option<Cid> {
        if self.segments.is_empty() {
            return None;
        }
        Some(match &self.lookup {
            Some(lookup) => *lookup.pending_links().0,
            None => self.current,
        })
    }

    /// Feeds the block named by [`next_cid`](Self::next_cid).
    pub fn feed(&mut self, block: &[u8]) -> Result<(), DagError> {
        let Some(name) = self.segments.front().cloned() else {
            return Ok(());
        };
        let parent = self.current;
        let step = match self.lookup.take() {
            Some(lookup) => lookup
                .continue_walk(block, &mut self.cache)
                .map_err(|e| DagError::malformed(&parent, e))?,
            None => {
                if parent.codec() != DAG_PB {
                    return Err(DagError::NotADirectory(parent));
                }
                match rust_unixfs::resolve(block, &name, &mut self.cache) {
                    Ok(step) => step,
                    Err(rust_unixfs::ResolveError::UnexpectedType(_)) => {
                        return Err(DagError::NotADirectory(parent));
                    }
                    Err(e) => return Err(DagError::malformed(&parent, e)),
                }
            }
        };
        match step {
            MaybeResolved::Found(cid) => {
                self.current = cid;
                self.segments.pop_front();
            }
            MaybeResolved::NeedToLoadMore(lookup) => self.lookup = Some(lookup.with_owned_needle()),
            MaybeResolved::NotFound => return Err(DagError::NotFound { parent, name }),
        }
        Ok(())
    }

    /// The CID the path names, once [`next_cid`](Self::next_cid) is `None`.
    pub fn resolved(&self) -> Cid {
        self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::encode_bytes;
    use std::collections::HashMap;

    fn store(nodes: &[DirNode], extra: &[Block]) -> HashMap<Cid, Bytes> {
        nodes
            .iter()
            .map(|n| (n.block.cid, n.block.data.clone()))
            .chain(extra.iter().map(|b| (b.cid, b.data.clone())))
            .collect()
    }

    fn list(blocks: &HashMap<Cid, Bytes>, cid: Cid) -> Vec<DirEntry> {
        let mut listing = DirListing::start(&cid, &blocks[&cid]).unwrap();
        while let Some(next) = listing.next_cid() {
            listing.feed(&blocks[&next]).unwrap();
        }
        listing.entries()
    }

    fn resolve(blocks: &HashMap<Cid, Bytes>, root: Cid, path: &str) -> Result<Cid, DagError> {
        let mut r = PathResolve::new(root, path);
        while let Some(next) = r.next_cid() {
            r.feed(&blocks[&next])?;
        }
        Ok(r.resolved())
    }

    #[test]
    fn hamt_switch_list_and_resolve() {
        let (file_blocks, file) = encode_bytes(b"x", CidVersion::V1);
        let names: Vec<String> = (0..6000)
            .map(|i| format!("entry-with-a-longish-name-{i:05}"))
            .collect();
        let mut builder = DirectoryBuilder::new(CidVersion::V1);
        for n in &names {
            builder
                .add_link(&format!("d/{n}"), file.link.cid, file.link.dag_size)
                .unwrap();
        }
        let nodes = builder.build().unwrap();
        let root = nodes.last().unwrap().block.cid;
        let blocks = store(&nodes, &file_blocks);
        assert_eq!(
            describe(&root, &blocks[&root]),
            NodeKind::Directory { sharded: true }
        );
        let entries = list(&blocks, root);
        assert_eq!(entries.len(), names.len());
        assert_eq!(entries[0].name, names[0]);
        assert_eq!(
            resolve(&blocks, root, "entry-with-a-longish-name-04321").unwrap(),
            file.link.cid
        );
        assert!(matches!(
            resolve(&blocks, root, "nope"),
            Err(DagError::NotFound { .. })
        ));
    }

    /// Kubo (boxo) shards when the sum of name + CID byte lengths *exceeds* 256 KiB: exactly
    /// 262144 stays a plain directory, one byte more becomes a HAMT.
    #[test]
    fn hamt_switch_boundary_is_strictly_above_256_kib() {
        let (_, file) = encode_bytes(b"x", CidVersion::V1);
        assert_eq!(file.link.cid.to_bytes().len(), 36);
        for (extra, sharded) in [(0, false), (1, true)] {
            let mut builder = DirectoryBuilder::new(CidVersion::V1);
            for i in 0..4096 {
                // 4096 × (28 + 36) = 262144
                let mut name = format!("{i:028}");
                if i == 0 {
                    name.push_str(&"x".repeat(extra));
                }
                builder
                    .add_link(&format!("d/{name}"), file.link.cid, 1)
                    .unwrap();
            }
            let nodes = builder.build().unwrap();
            let root = nodes.last().unwrap();
            assert_eq!(
                describe(&root.block.cid, &root.block.data),
                NodeKind::Directory { sharded },
                "extra {extra}"
            );
        }
    }

    /// Whole trees equal to the JavaScript UnixFS importer configured like Kubo (see
    /// `cairn-node/tests/hamt.rs`, which adds one of them from disk): `big/` holding `n` files
    /// `file-with-a-fairly-long-name-NNNNN.txt` containing `hello N\n`.
    #[test]
    fn hamt_trees_match_the_reference_importer() {
        let cases = [
            (
                3640,
                "QmQUbt6e3fNNfSqGdEtkdaqVVRGZxdn6owV2s1nLi3B2Ac",
                "bafybeiddugtjcasdj5sxenwb3aowdmyizqmuqggejselv3vj4apoxb6huy",
            ),
            (
                3641,
                "QmdDhgcMmwY8AnSiMeERuDvqSNhBa2aAwFWzTvgbjbDtgd",
                "bafybeibgxunvau7byzbhf6jzh3j3j4n2cx6psu4rstenggzrac7ykp2cd4",
            ),
            (
                6000,
                "Qmeo8ZBZkxW9v5wUy2RDAdYAUkzTj2LjxYAf36eWR1YwSJ",
                "bafybeifohorsnsnxxrilkox43ztbrkd6ftmkpu4bwcjq77lobiqogdldoi",
            ),
        ];
        for (n, v0, v1) in cases {
            for (version, expected) in [(CidVersion::V0, v0), (CidVersion::V1, v1)] {
                let mut builder = DirectoryBuilder::new(version);
                for i in 0..n {
                    let (_, file) = encode_bytes(format!("hello {i}\n").as_bytes(), version);
                    let path = format!("big/file-with-a-fairly-long-name-{i:05}.txt");
                    builder
                        .add_link(&path, file.link.cid, file.link.dag_size)
                        .unwrap();
                }
                let nodes = builder.build().unwrap();
                assert_eq!(
                    nodes.last().unwrap().block.cid.to_string(),
                    expected,
                    "{n} {version:?}"
                );
            }
        }
    }

    #[test]
    fn small_dir_is_plain_and_paths_resolve() {
        let (fb, file) = encode_bytes(b"hello world\n", CidVersion::V0);
        let mut builder = DirectoryBuilder::new(CidVersion::V0);
        builder
            .add_link("t/a/b.txt", file.link.cid, file.link.dag_size)
            .unwrap();
        builder.add_dir("t/empty").unwrap();
        let link = symlink("a/b.txt", CidVersion::V0);
        builder
            .add_link("t/ln", link.cid, link.data.len() as u64)
            .unwrap();
        let nodes = builder.build().unwrap();
        let root = nodes.last().unwrap().block.cid;
        let mut blocks = store(&nodes, &fb);
        blocks.insert(link.cid, link.data.clone());
        assert_eq!(
            describe(&root, &blocks[&root]),
            NodeKind::Directory { sharded: false }
        );
        let names: Vec<String> = list(&blocks, root).into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["a", "empty", "ln"]);
        assert_eq!(resolve(&blocks, root, "/a//b.txt").unwrap(), file.link.cid);
        assert!(matches!(
            resolve(&blocks, root, "a/b.txt/c"),
            Err(DagError::NotADirectory(_))
        ));
        assert_eq!(symlink_target(&link.cid, &link.data).unwrap(), "a/b.txt");
        assert_eq!(describe(&link.cid, &link.data), NodeKind::Symlink);
    }
}
