//! UnixFS directories: building a tree like `ipfs add -r` (plain directories, switching to a
//! HAMT shard of fanout 256 when the sum of name and CID lengths exceeds 256 KiB), classifying
//! nodes, listing (following HAMT shards, each distinct shard once, within [`DirLimits`]) and
//! resolving paths (by name hash in a HAMT, see [`crate::hamt`]) — all sans-I/O. Also the depth
//! bound of walks over a whole tree, [`MAX_TREE_DEPTH`].

use std::collections::{HashSet, VecDeque};

use bytes::Bytes;
use cid::Cid;
use multihash_codetable::Code;
use rust_unixfs::dir::builder::{BufferingTreeBuilder, TreeOptions};
use rust_unixfs::dir::{DirLink, NodeDescription};
use rust_unixfs::{MaybeResolved, Metadata};

use crate::hamt::{self, LookupStep, ShardLookup, SlotLink};
use crate::{Block, CidVersion, DAG_PB, DagError, Limit, RAW};

/// Directory levels a walk over a UnixFS tree (the hard check, `get`) follows below its root: a
/// node deeper than this ends the walk with [`DagError::LimitExceeded`]. No real tree comes
/// near it: a path is at most 4096 bytes on Linux, so a folder `ipfs add -r` reads has at most
/// 2048 levels, and an S3 key (at most 1024 bytes) makes at most 512.
pub const MAX_TREE_DEPTH: usize = 4096;

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
        DAG_PB => match crate::meta::describe_pb(block) {
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
    // Only a symlink goes to the walker: on a HAMT shard it would read the link names, and
    // rust-unixfs's walker slices them at byte 2 even inside a character (a panic).
    if describe(cid, block) != NodeKind::Symlink {
        return Err(DagError::malformed(cid, "not a symlink"));
    }
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

/// Bounds of one directory listing ([`DirListing::with_limits`]).
///
/// A listing reads each distinct shard block once, however often the shards link to it (in a
/// valid HAMT no shard is linked twice; a crafted one may link every slot to one shared child,
/// which as a tree has 256^depth paths). Its work and memory are therefore linear in the bytes
/// of the distinct blocks it is fed. These caps bound that too, so that a listing ends with
/// [`DagError::LimitExceeded`] rather than growing without end: they are generous, because a
/// bucket's objects index is one directory and millions of entries are legitimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirLimits {
    /// Most entries listed (default 10 million, roughly 1.5 GB of listing in memory).
    pub max_entries: usize,
    /// Most distinct HAMT shard blocks read (default 10 million: a valid HAMT has fewer shards
    /// than entries, since every shard holds at least two).
    pub max_shards: usize,
}

impl DirLimits {
    /// The default [`max_entries`](Self::max_entries).
    pub const DEFAULT_MAX_ENTRIES: usize = 10_000_000;
    /// The default [`max_shards`](Self::max_shards).
    pub const DEFAULT_MAX_SHARDS: usize = 10_000_000;
}

impl Default for DirLimits {
    fn default() -> Self {
        DirLimits {
            max_entries: Self::DEFAULT_MAX_ENTRIES,
            max_shards: Self::DEFAULT_MAX_SHARDS,
        }
    }
}

/// Shard levels a listing follows: a level consumes at least one bit of the 64-bit name hash
/// whatever the fanout (the listing, unlike a lookup, takes HAMTs of any fanout).
const MAX_LISTING_DEPTH: usize = 64;

/// Sans-I/O listing of a directory, following HAMT shards: feed the blocks
/// [`next_cid`](Self::next_cid) asks for, then take [`entries`](Self::entries). Each distinct
/// shard is asked for once, and the listing stays within its [`DirLimits`].
#[derive(Debug)]
pub struct DirListing {
    root: Cid,
    limits: DirLimits,
    /// Shards to read, with their level (the root shard is level 0).
    pending: VecDeque<(Cid, usize)>,
    /// Every shard queued so far, the root included.
    seen: HashSet<Cid>,
    entries: Vec<DirEntry>,
}

impl DirListing {
    /// Starts listing the directory whose root block is `block`, within the default limits.
    pub fn start(cid: &Cid, block: &[u8]) -> Result<Self, DagError> {
        Self::with_limits(cid, block, DirLimits::default())
    }

    /// Starts listing the directory whose root block is `block`, within `limits`.
    pub fn with_limits(cid: &Cid, block: &[u8], limits: DirLimits) -> Result<Self, DagError> {
        let mut listing = DirListing {
            root: *cid,
            limits,
            pending: VecDeque::new(),
            seen: HashSet::from([*cid]),
            entries: Vec::new(),
        };
        if cid.codec() != DAG_PB {
            return Err(DagError::NotADirectory(*cid));
        }
        match crate::meta::describe_pb(block) {
            NodeDescription::Directory { links } => {
                for DirLink {
                    name,
                    target,
                    tsize,
                } in links
                {
                    checked_name(cid, &name)?;
                    listing.push_entry(name, target, tsize)?;
                }
            }
            NodeDescription::HamtShard { links } => {
                listing.add_shard_links(cid, 0, links)?;
            }
            _ => return Err(DagError::NotADirectory(*cid)),
        }
        Ok(listing)
    }

    fn exceeded(&self, limit: Limit, max: usize) -> DagError {
        DagError::LimitExceeded {
            root: self.root,
            limit,
            max: max as u64,
        }
    }

    fn push_entry(&mut self, name: String, cid: Cid, dag_size: u64) -> Result<(), DagError> {
        if self.entries.len() >= self.limits.max_entries {
            return Err(self.exceeded(Limit::Entries, self.limits.max_entries));
        }
        self.entries.push(DirEntry {
            name,
            cid,
            dag_size,
        });
        Ok(())
    }

    fn add_shard_links(
        &mut self,
        cid: &Cid,
        depth: usize,
        links: Vec<DirLink>,
    ) -> Result<(), DagError> {
        for link in links {
            match hamt::parse_link(cid, &link.name)? {
                SlotLink::Shard(_) => {
                    // a shard linked again (only a crafted HAMT does that) is queued once
                    if !self.seen.insert(link.target) {
                        continue;
                    }
                    if depth + 1 >= MAX_LISTING_DEPTH {
                        return Err(self.exceeded(Limit::Depth, MAX_LISTING_DEPTH));
                    }
                    // `seen` holds the root too, which is not a shard read
                    if self.seen.len() - 1 > self.limits.max_shards {
                        return Err(self.exceeded(Limit::Shards, self.limits.max_shards));
                    }
                    self.pending.push_back((link.target, depth + 1));
                }
                SlotLink::Entry(_, name) => {
                    checked_name(cid, name)?;
                    self.push_entry(name.to_owned(), link.target, link.tsize)?;
                }
            }
        }
        Ok(())
    }

    /// The next HAMT shard block needed, if any.
    pub fn next_cid(&self) -> Option<Cid> {
        self.pending.front().map(|(cid, _)| *cid)
    }

    /// Feeds the shard block named by [`next_cid`](Self::next_cid).
    pub fn feed(&mut self, block: &[u8]) -> Result<(), DagError> {
        let Some((cid, depth)) = self.pending.pop_front() else {
            return Err(DagError::Unsupported("listing already complete".into()));
        };
        match crate::meta::describe_pb(block) {
            NodeDescription::HamtShard { links } => self.add_shard_links(&cid, depth, links),
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

/// Sans-I/O resolution of `root/a/b/c` through plain and HAMT directories. A name is looked up
/// in a HAMT by its hash ([`ShardLookup`]), reading one shard per level.
#[derive(Debug)]
pub struct PathResolve {
    current: Cid,
    segments: VecDeque<String>,
    /// The lookup of the first segment, once `current` turned out to be a HAMT.
    lookup: Option<ShardLookup>,
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
        }
    }

    /// The block needed next, or `None` when [`resolved`](Self::resolved) is the answer.
    pub fn next_cid(&self) -> Option<Cid> {
        if self.segments.is_empty() {
            return None;
        }
        Some(match &self.lookup {
            Some(lookup) => lookup.next_cid(),
            None => self.current,
        })
    }

    /// Feeds the block named by [`next_cid`](Self::next_cid).
    pub fn feed(&mut self, block: &[u8]) -> Result<(), DagError> {
        let Some(name) = self.segments.front() else {
            return Ok(());
        };
        let parent = self.current;
        let step = match &mut self.lookup {
            Some(lookup) => lookup.feed(block)?,
            None if parent.codec() != DAG_PB => return Err(DagError::NotADirectory(parent)),
            None => match crate::meta::describe_pb(block) {
                NodeDescription::HamtShard { links } => {
                    let lookup = self.lookup.insert(ShardLookup::new(parent, name));
                    lookup.feed_links(block, &links)?
                }
                // plain directories (and dag-pb nodes without UnixFS data): one block, its
                // links matched by name
                _ if !crate::meta::pb_well_formed(block) => {
                    return Err(DagError::malformed(
                        &parent,
                        "not well-formed dag-pb protobuf",
                    ));
                }
                _ => match rust_unixfs::resolve(block, name, &mut None) {
                    Ok(MaybeResolved::Found(cid)) => LookupStep::Found(cid),
                    Ok(MaybeResolved::NotFound) => LookupStep::NotFound,
                    Ok(MaybeResolved::NeedToLoadMore(_)) => {
                        return Err(DagError::malformed(&parent, "unexpected HAMT shard"));
                    }
                    Err(rust_unixfs::ResolveError::UnexpectedType(_)) => {
                        return Err(DagError::NotADirectory(parent));
                    }
                    Err(e) => return Err(DagError::malformed(&parent, e)),
                },
            },
        };
        match step {
            LookupStep::Found(cid) => {
                self.current = cid;
                self.segments.pop_front();
                self.lookup = None;
            }
            LookupStep::NotFound => {
                let name = self.segments.pop_front().unwrap_or_default();
                return Err(DagError::NotFound { parent, name });
            }
            LookupStep::Next => {}
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

    /// Feeds a listing, giving up after `cap` feeds (a runaway walk fails instead of running
    /// on); returns the outcome and the number of feeds.
    fn list_capped(
        blocks: &HashMap<Cid, Bytes>,
        cid: Cid,
        cap: usize,
    ) -> (Result<Vec<DirEntry>, DagError>, usize) {
        let mut feeds = 0;
        let outcome = (|| {
            let mut listing = DirListing::start(&cid, &blocks[&cid])?;
            while let Some(next) = listing.next_cid() {
                feeds += 1;
                assert!(feeds <= cap, "more than {cap} feeds");
                listing.feed(&blocks[&next])?;
            }
            Ok(listing.entries())
        })();
        (outcome, feeds)
    }

    /// Resolves `path`, giving up after `cap` blocks; returns the outcome and the blocks read.
    fn resolve_capped(
        blocks: &HashMap<Cid, Bytes>,
        root: Cid,
        path: &str,
        cap: usize,
    ) -> (Result<Cid, DagError>, usize) {
        let mut r = PathResolve::new(root, path);
        let mut reads = 0;
        let outcome = (|| {
            while let Some(next) = r.next_cid() {
                reads += 1;
                assert!(reads <= cap, "more than {cap} blocks read");
                r.feed(&blocks[&next])?;
            }
            Ok(r.resolved())
        })();
        (outcome, reads)
    }

    /// The HAMT bomb of the security review (H3): four shards, each linking all 256 slots to
    /// the next one, the last holding 256 entries named "f" (one per slot) → a raw leaf. As a
    /// tree it has 256⁴ paths.
    fn hamt_bomb() -> (Cid, Cid, HashMap<Cid, Bytes>) {
        let leaf = Block::new(CidVersion::V1, RAW, &b"x"[..]).unwrap();
        let mut blocks = HashMap::from([(leaf.cid, leaf.data.clone())]);
        let links = |suffix: &str, to: Cid| -> Vec<(String, Cid, u64)> {
            (0..256)
                .map(|i| (format!("{i:02X}{suffix}"), to, 1))
                .collect()
        };
        let mut shard = crate::hamt::shard_node(&links("f", leaf.cid), CidVersion::V1).unwrap();
        for _ in 0..3 {
            blocks.insert(shard.cid, shard.data.clone());
            shard = crate::hamt::shard_node(&links("", shard.cid), CidVersion::V1).unwrap();
        }
        blocks.insert(shard.cid, shard.data.clone());
        (shard.cid, leaf.cid, blocks)
    }

    /// A shard linked from every slot of its parent is read once: the listing of the bomb
    /// feeds its three sub-shards once each and holds the last one's 256 entries.
    #[test]
    fn hamt_bomb_lists_each_shard_once() {
        let (root, _, blocks) = hamt_bomb();
        let (entries, feeds) = list_capped(&blocks, root, 64);
        assert_eq!(feeds, 3);
        assert_eq!(entries.unwrap().len(), 256);
    }

    /// Lookups in the bomb follow one slot per level: four shards read, found or not.
    #[test]
    fn hamt_bomb_lookups_read_one_shard_per_level() {
        let (root, leaf, blocks) = hamt_bomb();
        let (found, reads) = resolve_capped(&blocks, root, "f", 64);
        assert_eq!(found.unwrap(), leaf);
        assert_eq!(reads, 4);
        for name in ["nope", "index.html", "f/x"] {
            let (outcome, reads) = resolve_capped(&blocks, root, name, 64);
            assert!(outcome.is_err(), "{name}");
            assert!(reads <= 5, "{name}: {reads} reads");
        }
    }

    /// A HAMT link name whose second character is not one byte ("0é") is a malformed shard:
    /// listing and lookup both answer an error (rust-unixfs's lookup panicked on `&name[2..]`).
    #[test]
    fn malformed_hamt_link_names_are_errors_not_panics() {
        let leaf = Block::new(CidVersion::V1, RAW, &b"x"[..]).unwrap();
        let data = crate::hamt::shard_data([0u8]);
        let node = ipld_dagpb::PbNode {
            links: vec![ipld_dagpb::PbLink {
                cid: leaf.cid,
                name: Some("0é".into()),
                size: Some(1),
            }],
            data: Some(Bytes::from(data)),
        };
        let shard = Block::new(CidVersion::V1, DAG_PB, node.into_bytes()).unwrap();
        let blocks = HashMap::from([
            (leaf.cid, leaf.data.clone()),
            (shard.cid, shard.data.clone()),
        ]);
        for name in ["é", "x", "0é"] {
            let (outcome, _) = resolve_capped(&blocks, shard.cid, name, 8);
            assert!(
                matches!(outcome, Err(DagError::Malformed { .. })),
                "{name}: {outcome:?}"
            );
        }
        assert!(matches!(
            list_capped(&blocks, shard.cid, 8).0,
            Err(DagError::Malformed { .. })
        ));
        // so is asking for a symlink's target (rust-unixfs's walker panicked the same way;
        // found by the `dag_pb` fuzz target)
        assert!(matches!(
            symlink_target(&shard.cid, &shard.data),
            Err(DagError::Malformed { .. })
        ));
    }

    /// Every name of a HAMT directory resolves through the path resolver reading one shard
    /// per level (four at most for 6000 entries), not a scan of the shards.
    #[test]
    fn hamt_paths_resolve_along_one_path_of_shards() {
        let (file_blocks, file) = encode_bytes(b"x", CidVersion::V1);
        let mut builder = DirectoryBuilder::new(CidVersion::V1);
        let names: Vec<String> = (0..6000).map(|i| format!("entry-{i:05}")).collect();
        for n in &names {
            builder
                .add_link(&format!("d/{n}/f"), file.link.cid, file.link.dag_size)
                .unwrap();
        }
        let nodes = builder.build().unwrap();
        let root = nodes.last().unwrap().block.cid;
        let blocks = store(&nodes, &file_blocks);
        for n in names.iter().step_by(7) {
            let (outcome, reads) = resolve_capped(&blocks, root, &format!("{n}/f"), 5);
            assert_eq!(outcome.unwrap(), file.link.cid);
            assert!(reads <= 5, "{n}: {reads}");
        }
    }

    /// A listing reads every shard of a valid HAMT once, and past one of its caps ends with a
    /// typed error rather than a partial answer.
    #[test]
    fn listings_stop_at_their_limits() {
        let (file_blocks, file) = encode_bytes(b"x", CidVersion::V1);
        let mut builder = DirectoryBuilder::new(CidVersion::V1);
        for i in 0..6000 {
            let path = format!("d/entry-with-a-longish-name-{i:05}");
            builder
                .add_link(&path, file.link.cid, file.link.dag_size)
                .unwrap();
        }
        let nodes = builder.build().unwrap();
        let sub_shards = nodes.iter().filter(|n| n.path.is_empty()).count();
        let root = nodes.last().unwrap().block.cid;
        let blocks = store(&nodes, &file_blocks);
        let (entries, feeds) = list_capped(&blocks, root, sub_shards);
        assert_eq!(entries.unwrap().len(), 6000);
        assert_eq!(feeds, sub_shards);

        let list_within = |cid: Cid, limits: DirLimits| -> Result<usize, DagError> {
            let mut listing = DirListing::with_limits(&cid, &blocks[&cid], limits)?;
            while let Some(next) = listing.next_cid() {
                listing.feed(&blocks[&next])?;
            }
            Ok(listing.entries().len())
        };
        let exceeded = |r: Result<usize, DagError>, which: Limit| matches!(r, Err(DagError::LimitExceeded { limit, .. }) if limit == which);
        let limits = |max_entries, max_shards| DirLimits {
            max_entries,
            max_shards,
        };
        assert_eq!(list_within(root, limits(6000, sub_shards)).unwrap(), 6000);
        assert!(exceeded(
            list_within(root, limits(5999, sub_shards)),
            Limit::Entries
        ));
        assert!(exceeded(
            list_within(root, limits(6000, sub_shards - 1)),
            Limit::Shards
        ));

        let mut builder = DirectoryBuilder::new(CidVersion::V1);
        for name in ["a", "b", "c"] {
            builder
                .add_link(&format!("p/{name}"), file.link.cid, 1)
                .unwrap();
        }
        let nodes = builder.build().unwrap();
        let plain = nodes.last().unwrap().block.cid;
        let blocks = store(&nodes, &[]);
        let listing = DirListing::with_limits(&plain, &blocks[&plain], limits(3, 0)).unwrap();
        assert!(listing.next_cid().is_none());
        assert_eq!(listing.entries().len(), 3);
        assert!(matches!(
            DirListing::with_limits(&plain, &blocks[&plain], limits(2, 0)),
            Err(DagError::LimitExceeded {
                limit: Limit::Entries,
                ..
            })
        ));
    }
}
