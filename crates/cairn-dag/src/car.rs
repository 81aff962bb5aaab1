//! Which blocks a CAR holds: one traversal, [`select_blocks`], serves the whole-DAG export
//! (`cairn car export`, `ipfs dag export`'s order: depth-first pre-order, each block once) and
//! the trustless gateway's scoped exports — the blocks that resolve a path from the root, then
//! the entity at its end per [`DagScope`] and [`EntityBytes`]. It is a plain function over a
//! block getter and an emitter, generic over their error, so it runs over a store, a cluster
//! or a map in a test alike. Identity CIDs are read from the CID and never emitted.

use std::collections::{HashMap, HashSet};
use std::marker::PhantomData;
use std::ops::Range;
use std::str::FromStr;

use bytes::Bytes;

use crate::dir::{DirListing, NodeKind, PathResolve, describe};
use crate::read::FileRead;
use crate::{Cid, DagError};

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
fn shard_links(cid: &Cid, data: &Bytes) -> Result<Vec<Cid>, DagError> {
    // A HAMT link is either an entry (name = 2 hex digits + entry name) or a child shard (the
    // 2 digits alone). The listing names the node's entries; every other link is a shard.
    let mut entries: HashMap<Cid, usize> = HashMap::new();
    for entry in DirListing::start(cid, data)?.entries() {
        *entries.entry(entry.cid).or_default() += 1;
    }
    let mut shards = Vec::new();
    for link in crate::links_of(cid, data)? {
        match entries.get_mut(&link) {
            Some(n) if *n > 0 => *n -= 1,
            _ => shards.push(link),
        }
    }
    Ok(shards)
}

/// One walk over a DAG: fetches blocks and emits each at most once. Identity CIDs are read from
/// the CID itself and never emitted (a CAR must not hold them).
struct Walk<G, E, Er> {
    get: G,
    emit: E,
    emitted: HashSet<Cid>,
    error: PhantomData<fn() -> Er>,
}

impl<G, E, Er> Walk<G, E, Er>
where
    G: FnMut(&Cid) -> Result<Bytes, Er>,
    E: FnMut(&Cid, &Bytes) -> Result<(), Er>,
    Er: From<DagError>,
{
    fn fetch(&mut self, cid: &Cid) -> Result<Bytes, Er> {
        if is_identity(cid) {
            return Ok(Bytes::copy_from_slice(cid.hash().digest()));
        }
        (self.get)(cid)
    }

    fn emit(&mut self, cid: &Cid, data: &Bytes) -> Result<(), Er> {
        if !is_identity(cid) && self.emitted.insert(*cid) {
            (self.emit)(cid, data)?;
        }
        Ok(())
    }

    /// Fetches and emits `cid`; returns its bytes.
    fn visit(&mut self, cid: &Cid) -> Result<Bytes, Er> {
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
        links: impl Fn(&Cid, &Bytes) -> Result<Vec<Cid>, DagError>,
    ) -> Result<(), Er> {
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
    fn file_range(&mut self, file: Cid, data: Bytes, range: Range<u64>) -> Result<(), Er> {
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
            if single && crate::links_of(&cid, &block)?.is_empty() {
                break;
            }
        }
        Ok(())
    }
}

fn all_links(cid: &Cid, data: &Bytes) -> Result<Vec<Cid>, DagError> {
    crate::links_of(cid, data)
}

/// Selects the blocks of a CAR: fetches what it needs through `get` and hands each selected
/// block to `emit` once, in depth-first pre-order (the path's blocks first). Returns the number
/// of blocks emitted.
///
/// A path through something that is not a directory fails with `NotADirectory`, a missing
/// name with `NotFound`; a block `get` cannot produce fails the walk with `get`'s error.
pub fn select_blocks<Er: From<DagError>>(
    root: Cid,
    selection: &CarSelection,
    get: impl FnMut(&Cid) -> Result<Bytes, Er>,
    mut emit: impl FnMut(&Cid, &Bytes) -> Result<(), Er>,
) -> Result<u64, Er> {
    let mut count = 0u64;
    let mut walk = Walk {
        get,
        emit: |cid: &Cid, data: &Bytes| {
            count += 1;
            emit(cid, data)
        },
        emitted: HashSet::new(),
        error: PhantomData,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dir::DirectoryBuilder;
    use crate::file::{branch_links, encode_bytes};
    use crate::{CHUNK_SIZE, CidVersion};

    /// What a test's block getter fails with: a DAG error, or a block it does not have.
    #[derive(Debug)]
    enum TestError {
        Dag(Box<DagError>),
        Missing(Cid),
    }

    impl From<DagError> for TestError {
        fn from(e: DagError) -> Self {
            TestError::Dag(Box::new(e))
        }
    }

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

    fn select(blocks: &Blocks, root: Cid, selection: &CarSelection) -> Result<Vec<Cid>, TestError> {
        let mut out = Vec::new();
        let n = select_blocks(
            root,
            selection,
            |cid| blocks.get(cid).cloned().ok_or(TestError::Missing(*cid)),
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
            for link in crate::links_of(&cid, &blocks[&cid]).unwrap() {
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
        let f = crate::dir::DirListing::start(&sub, &blocks[&sub])
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
            Err(TestError::Dag(e)) if matches!(*e, DagError::NotFound { .. })
        ));
        assert!(matches!(
            select(&blocks, root, &scoped("g/x", DagScope::All, None)),
            Err(TestError::Dag(e)) if matches!(*e, DagError::NotADirectory(_))
        ));
        blocks.remove(&f);
        assert!(matches!(
            select(&blocks, root, &scoped("sub/f.bin", DagScope::All, None)),
            Err(TestError::Missing(c)) if c == f
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
}
