//! Editing one UnixFS directory in place of rebuilding it: set or remove entries of a plain or
//! HAMT-sharded directory and re-encode only the nodes on the changed paths (path copying), so a
//! change in a huge directory writes O(depth) blocks. The result is byte-identical to what
//! [`crate::dir::DirectoryBuilder`] (and `ipfs add -r`) builds from scratch for the same entries:
//! a plain directory switches to a HAMT when the sum of name and CID lengths exceeds 256 KiB,
//! and back when it no longer does; HAMT buckets holding one entry collapse into their parent.
//!
//! Blocks are fetched through a caller's `load` function and new blocks are handed back in a
//! list: no I/O happens here.

use std::collections::{BTreeMap, HashSet};

use bytes::Bytes;
use cid::Cid;
use ipld_dagpb::{PbLink, PbNode};
use rust_unixfs::dir::{DirLink, NodeDescription};

use crate::hamt::{MAX_DEPTH, SlotLink, hash as hamt_hash, parse_link, shard_data};
use crate::{Block, CidVersion, DAG_PB, DagError};

/// Kubo's sharding threshold: a directory whose estimated size exceeds this becomes a HAMT.
pub const HAMT_THRESHOLD: u64 = 256 * 1024;

/// A directory entry's target and dag-pb Tsize.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryLink {
    /// Target CID.
    pub cid: Cid,
    /// Cumulative size of the target's DAG.
    pub dag_size: u64,
}

/// The re-encoded directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EditedDir {
    /// Its root link.
    pub link: EntryLink,
    /// Whether it has no entries.
    pub is_empty: bool,
}

fn link_size(name: &str, link: &EntryLink) -> i64 {
    (name.len() + link.cid.to_bytes().len()) as i64
}

#[derive(Debug)]
enum Slot {
    Value(String, EntryLink),
    Stored(EntryLink),
    Shard(Box<Shard>),
}

#[derive(Debug, Default)]
struct Shard {
    slots: BTreeMap<u8, Slot>,
}

#[derive(Debug)]
enum State {
    Plain(BTreeMap<String, EntryLink>),
    Hamt(Shard),
}

/// An open directory being edited.
#[derive(Debug)]
pub struct DirEditor {
    state: State,
    /// Change of the estimated size since opening (negative after removals).
    delta: i64,
    version: CidVersion,
}

fn parse_shard(cid: &Cid, links: Vec<DirLink>) -> Result<Shard, DagError> {
    let mut shard = Shard::default();
    for link in links {
        let target = EntryLink {
            cid: link.target,
            dag_size: link.tsize,
        };
        let (index, slot) = match parse_link(cid, &link.name)? {
            SlotLink::Shard(index) => (index, Slot::Stored(target)),
            SlotLink::Entry(index, name) => (index, Slot::Value(name.to_owned(), target)),
        };
        shard.slots.insert(index, slot);
    }
    Ok(shard)
}

fn load_shard<E: From<DagError>>(
    link: &EntryLink,
    load: &mut impl FnMut(&Cid) -> Result<Bytes, E>,
) -> Result<Shard, E> {
    let block = load(&link.cid)?;
    match crate::meta::describe_pb(&block) {
        NodeDescription::HamtShard { links } => Ok(parse_shard(&link.cid, links)?),
        _ => Err(DagError::malformed(&link.cid, "HAMT bucket is not a shard").into()),
    }
}

impl Shard {
    /// The child shard in `index`, loaded if it was only a link.
    fn child<E: From<DagError>>(
        &mut self,
        index: u8,
        load: &mut impl FnMut(&Cid) -> Result<Bytes, E>,
    ) -> Result<Option<&mut Shard>, E> {
        if let Some(Slot::Stored(link)) = self.slots.get(&index) {
            let loaded = load_shard(link, load)?;
            self.slots.insert(index, Slot::Shard(Box::new(loaded)));
        }
        Ok(match self.slots.get_mut(&index) {
            Some(Slot::Shard(s)) => Some(s),
            _ => None,
        })
    }

    fn get<E: From<DagError>>(
        &mut self,
        hash: &[u8; 8],
        depth: usize,
        name: &str,
        load: &mut impl FnMut(&Cid) -> Result<Bytes, E>,
    ) -> Result<Option<EntryLink>, E> {
        let index = hash[depth.min(MAX_DEPTH - 1)];
        if let Some(Slot::Value(n, link)) = self.slots.get(&index) {
            return Ok((n == name).then_some(*link));
        }
        match self.child(index, load)? {
            Some(child) if depth + 1 < MAX_DEPTH => child.get(hash, depth + 1, name, load),
            _ => Ok(None),
        }
    }

    /// Inserts or replaces; returns the link replaced.
    fn insert<E: From<DagError>>(
        &mut self,
        hash: [u8; 8],
        depth: usize,
        name: String,
        link: EntryLink,
        load: &mut impl FnMut(&Cid) -> Result<Bytes, E>,
    ) -> Result<Option<EntryLink>, E> {
        if depth >= MAX_DEPTH {
            return Err(DagError::Tree(format!("HAMT hash collision on {name:?}")).into());
        }
        let index = hash[depth];
        match self.slots.get_mut(&index) {
            None => {
                self.slots.insert(index, Slot::Value(name, link));
                Ok(None)
            }
            Some(Slot::Value(n, old)) if *n == name => Ok(Some(std::mem::replace(old, link))),
            Some(Slot::Value(..)) => {
                let Some(Slot::Value(other, other_link)) = self.slots.remove(&index) else {
                    unreachable!("matched a value above")
                };
                let mut child = Shard::default();
                child.insert(hamt_hash(&other), depth + 1, other, other_link, load)?;
                child.insert(hash, depth + 1, name, link, load)?;
                self.slots.insert(index, Slot::Shard(Box::new(child)));
                Ok(None)
            }
            Some(_) => {
                let child = self.child(index, load)?.expect("a shard slot");
                child.insert(hash, depth + 1, name, link, load)
            }
        }
    }

    /// Removes; returns the link removed. Buckets left with one entry collapse upwards.
    fn remove<E: From<DagError>>(
        &mut self,
        hash: &[u8; 8],
        depth: usize,
        name: &str,
        load: &mut impl FnMut(&Cid) -> Result<Bytes, E>,
    ) -> Result<Option<EntryLink>, E> {
        if depth >= MAX_DEPTH {
            return Ok(None);
        }
        let index = hash[depth];
        match self.slots.get(&index) {
            None => return Ok(None),
            Some(Slot::Value(n, _)) if n != name => return Ok(None),
            Some(Slot::Value(..)) => {
                let Some(Slot::Value(_, link)) = self.slots.remove(&index) else {
                    unreachable!("matched a value above")
                };
                return Ok(Some(link));
            }
            Some(_) => {}
        }
        let child = self.child(index, load)?.expect("a shard slot");
        let removed = child.remove(hash, depth + 1, name, load)?;
        if removed.is_some() {
            match child.slots.len() {
                0 => {
                    self.slots.remove(&index);
                }
                1 if matches!(child.slots.values().next(), Some(Slot::Value(..))) => {
                    let only = child.slots.pop_first().expect("one slot").1;
                    self.slots.insert(index, only);
                }
                _ => {}
            }
        }
        Ok(removed)
    }

    /// Every entry, stopping early (returning `false`) once their estimated size exceeds
    /// `limit`. `depth` is this shard's level. A stored sub-shard is loaded once: a valid HAMT
    /// never links one shard twice (each holds other names), so a repeated link is malformed
    /// rather than walked again, as is a sub-shard below the deepest level a hash can reach.
    fn entries_within<E: From<DagError>>(
        &mut self,
        depth: usize,
        limit: i64,
        acc: &mut Vec<(String, EntryLink)>,
        size: &mut i64,
        loaded: &mut HashSet<Cid>,
        load: &mut impl FnMut(&Cid) -> Result<Bytes, E>,
    ) -> Result<bool, E> {
        let indexes: Vec<u8> = self.slots.keys().copied().collect();
        for index in indexes {
            match self.slots.get(&index) {
                Some(Slot::Value(name, link)) => {
                    *size += link_size(name, link);
                    acc.push((name.clone(), *link));
                }
                Some(Slot::Stored(link)) if depth + 1 >= MAX_DEPTH => {
                    return Err(DagError::malformed(&link.cid, "HAMT deeper than 8 levels").into());
                }
                Some(Slot::Stored(link)) if !loaded.insert(link.cid) => {
                    return Err(DagError::malformed(&link.cid, "HAMT shard linked twice").into());
                }
                _ => {}
            }
            if let Some(child) = self.child(index, load)?
                && !child.entries_within(depth + 1, limit, acc, size, loaded, load)?
            {
                return Ok(false);
            }
            if *size > limit {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn encode(self, version: CidVersion, out: &mut Vec<Block>) -> Result<EntryLink, DagError> {
        let data = shard_data(self.slots.keys().copied());
        let mut links = Vec::with_capacity(self.slots.len());
        for (index, slot) in self.slots {
            let (name, link) = match slot {
                Slot::Value(name, link) => (format!("{index:02X}{name}"), link),
                Slot::Stored(link) => (format!("{index:02X}"), link),
                Slot::Shard(child) => (format!("{index:02X}"), child.encode(version, out)?),
            };
            links.push((name, link));
        }
        encode_node(links, data, version, out)
    }
}

fn encode_node(
    links: Vec<(String, EntryLink)>,
    data: Vec<u8>,
    version: CidVersion,
    out: &mut Vec<Block>,
) -> Result<EntryLink, DagError> {
    let links_size: u64 = links.iter().map(|(_, l)| l.dag_size).sum();
    let node = PbNode {
        links: links
            .into_iter()
            .map(|(name, link)| PbLink {
                cid: link.cid,
                name: Some(name),
                size: Some(link.dag_size),
            })
            .collect(),
        data: Some(Bytes::from(data)),
    };
    let block = Block::new(version, DAG_PB, node.into_bytes())?;
    let link = EntryLink {
        cid: block.cid,
        dag_size: block.data.len() as u64 + links_size,
    };
    out.push(block);
    Ok(link)
}

fn plain_size(entries: &BTreeMap<String, EntryLink>) -> i64 {
    entries.iter().map(|(n, l)| link_size(n, l)).sum()
}

impl DirEditor {
    /// A new, empty directory.
    pub fn empty(version: CidVersion) -> Self {
        DirEditor {
            state: State::Plain(BTreeMap::new()),
            delta: 0,
            version,
        }
    }

    /// Opens the directory whose root block is `block`; new nodes will use `version`.
    pub fn open(cid: &Cid, block: &[u8], version: CidVersion) -> Result<Self, DagError> {
        if cid.codec() != DAG_PB {
            return Err(DagError::NotADirectory(*cid));
        }
        let state = match crate::meta::describe_pb(block) {
            NodeDescription::Directory { links } => State::Plain(
                links
                    .into_iter()
                    .map(|l| {
                        let link = EntryLink {
                            cid: l.target,
                            dag_size: l.tsize,
                        };
                        (l.name, link)
                    })
                    .collect(),
            ),
            NodeDescription::HamtShard { links } => State::Hamt(parse_shard(cid, links)?),
            _ => return Err(DagError::NotADirectory(*cid)),
        };
        Ok(DirEditor {
            state,
            delta: 0,
            version,
        })
    }

    /// The entry called `name`, if any.
    pub fn get<E: From<DagError>>(
        &mut self,
        name: &str,
        load: &mut impl FnMut(&Cid) -> Result<Bytes, E>,
    ) -> Result<Option<EntryLink>, E> {
        match &mut self.state {
            State::Plain(entries) => Ok(entries.get(name).copied()),
            State::Hamt(root) => root.get(&hamt_hash(name), 0, name, load),
        }
    }

    /// Sets (`Some`) or removes (`None`) the entry called `name`.
    pub fn set<E: From<DagError>>(
        &mut self,
        name: &str,
        link: Option<EntryLink>,
        load: &mut impl FnMut(&Cid) -> Result<Bytes, E>,
    ) -> Result<(), E> {
        if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
            return Err(DagError::Tree(format!("invalid entry name {name:?}")).into());
        }
        let old = match (&mut self.state, link) {
            (State::Plain(entries), Some(link)) => entries.insert(name.to_owned(), link),
            (State::Plain(entries), None) => entries.remove(name),
            (State::Hamt(root), Some(link)) => {
                root.insert(hamt_hash(name), 0, name.to_owned(), link, load)?
            }
            (State::Hamt(root), None) => root.remove(&hamt_hash(name), 0, name, load)?,
        };
        self.delta +=
            link.map_or(0, |l| link_size(name, &l)) - old.map_or(0, |l| link_size(name, &l));
        Ok(())
    }

    /// Encodes the changed nodes into `out` (children before parents; the directory's root
    /// block last) and returns the directory's link.
    pub fn finish<E: From<DagError>>(
        self,
        load: &mut impl FnMut(&Cid) -> Result<Bytes, E>,
        out: &mut Vec<Block>,
    ) -> Result<EditedDir, E> {
        let version = self.version;
        let (plain, shard) = match self.state {
            State::Plain(entries) if plain_size(&entries) > HAMT_THRESHOLD as i64 => {
                let mut root = Shard::default();
                for (name, link) in entries {
                    root.insert(hamt_hash(&name), 0, name, link, load)?;
                }
                (None, Some(root))
            }
            State::Plain(entries) => (Some(entries), None),
            // A HAMT only shrinks below the threshold through removals (or shorter CIDs).
            State::Hamt(mut root) if self.delta < 0 => {
                let (mut all, mut size) = (Vec::new(), 0);
                let mut loaded = HashSet::new();
                if root.entries_within(
                    0,
                    HAMT_THRESHOLD as i64,
                    &mut all,
                    &mut size,
                    &mut loaded,
                    load,
                )? {
                    (Some(all.into_iter().collect()), None)
                } else {
                    (None, Some(root))
                }
            }
            State::Hamt(root) => (None, Some(root)),
        };
        if let Some(root) = shard {
            let link = root.encode(version, out)?;
            return Ok(EditedDir {
                link,
                is_empty: false,
            });
        }
        let entries = plain.unwrap_or_default();
        let is_empty = entries.is_empty();
        let link = encode_node(
            entries.into_iter().collect(),
            vec![0x08, 0x01],
            version,
            out,
        )?;
        Ok(EditedDir { link, is_empty })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dir::DirectoryBuilder;
    use crate::file::encode_bytes;
    use std::collections::HashMap;

    /// A block map standing in for the store.
    #[derive(Default)]
    struct Blocks(HashMap<Cid, Bytes>);

    impl Blocks {
        fn loader(&self) -> impl FnMut(&Cid) -> Result<Bytes, DagError> + '_ {
            |cid| {
                self.0
                    .get(cid)
                    .cloned()
                    .ok_or_else(|| DagError::Unsupported(format!("missing {cid}")))
            }
        }
    }

    fn file(i: usize, version: CidVersion) -> EntryLink {
        let (_, root) = encode_bytes(format!("hello {i}\n").as_bytes(), version);
        EntryLink {
            cid: root.link.cid,
            dag_size: root.link.dag_size,
        }
    }

    fn from_scratch(entries: &BTreeMap<String, EntryLink>, version: CidVersion) -> Cid {
        let mut b = DirectoryBuilder::new(version);
        b.add_dir("d").unwrap();
        for (name, link) in entries {
            b.add_link(&format!("d/{name}"), link.cid, link.dag_size)
                .unwrap();
        }
        b.build().unwrap().last().unwrap().block.cid
    }

    fn apply(
        blocks: &mut Blocks,
        root: Option<Cid>,
        changes: &[(String, Option<EntryLink>)],
        version: CidVersion,
    ) -> (EditedDir, usize) {
        let mut out = Vec::new();
        let edited = {
            let mut load = blocks.loader();
            let mut editor = match root {
                Some(cid) => DirEditor::open(&cid, &load(&cid).unwrap(), version).unwrap(),
                None => DirEditor::empty(version),
            };
            for (name, link) in changes {
                editor.set(name, *link, &mut load).unwrap();
            }
            editor.finish(&mut load, &mut out).unwrap()
        };
        let new = out
            .iter()
            .filter(|b| !blocks.0.contains_key(&b.cid))
            .count();
        for b in out {
            blocks.0.insert(b.cid, b.data);
        }
        (edited, new)
    }

    fn name(i: usize) -> String {
        format!("file-with-a-fairly-long-name-{i:05}.txt")
    }

    /// Growing past the threshold, editing inside the HAMT, and shrinking back below it give
    /// the same directory as building the same entries from scratch, at every step.
    #[test]
    fn edits_equal_builds_from_scratch_across_the_hamt_switch() {
        for version in [CidVersion::V0, CidVersion::V1] {
            let mut blocks = Blocks::default();
            let mut entries = BTreeMap::new();
            let mut root = None;
            let check = |blocks: &mut Blocks,
                         root: &mut Option<Cid>,
                         entries: &BTreeMap<String, EntryLink>,
                         changes: Vec<(String, Option<EntryLink>)>| {
                let (edited, _) = apply(blocks, *root, &changes, version);
                assert_eq!(edited.link.cid, from_scratch(entries, version));
                *root = Some(edited.link.cid);
            };
            // 3640 entries: plain; 3641: sharded (see dir.rs' reference vectors)
            let mut changes = Vec::new();
            for i in 0..3640 {
                entries.insert(name(i), file(i, version));
                changes.push((name(i), Some(file(i, version))));
            }
            check(&mut blocks, &mut root, &entries, changes);
            entries.insert(name(3640), file(3640, version));
            check(
                &mut blocks,
                &mut root,
                &entries,
                vec![(name(3640), Some(file(3640, version)))],
            );
            // edits inside the HAMT: replace, add, remove
            let mut changes = Vec::new();
            for i in (0..3641).step_by(97) {
                entries.insert(name(i), file(i + 1, version));
                changes.push((name(i), Some(file(i + 1, version))));
            }
            for i in 5000..5050 {
                entries.insert(name(i), file(i, version));
                changes.push((name(i), Some(file(i, version))));
            }
            check(&mut blocks, &mut root, &entries, changes);
            let mut changes = Vec::new();
            for i in (3000..5050).step_by(3) {
                if entries.remove(&name(i)).is_some() {
                    changes.push((name(i), None));
                }
            }
            check(&mut blocks, &mut root, &entries, changes);
            // removing everything collapses back to an empty plain directory
            let changes = entries.keys().map(|n| (n.clone(), None)).collect();
            entries.clear();
            check(&mut blocks, &mut root, &entries, changes);
        }
    }

    /// One change in a 10 000-entry HAMT re-encodes only the shards on its path.
    #[test]
    fn one_change_in_a_big_hamt_writes_depth_blocks() {
        let version = CidVersion::V1;
        let mut blocks = Blocks::default();
        let changes: Vec<_> = (0..10_000)
            .map(|i| (name(i), Some(file(i, version))))
            .collect();
        let (first, written) = apply(&mut blocks, None, &changes, version);
        assert!(written > 30, "{written}");
        let (_, written) = apply(
            &mut blocks,
            Some(first.link.cid),
            &[(name(4242), Some(file(0, version)))],
            version,
        );
        assert!(written <= 3, "{written} blocks for one change");
        let (_, written) = apply(
            &mut blocks,
            Some(first.link.cid),
            &[(name(4242), None)],
            version,
        );
        assert!(written <= 3, "{written} blocks for one removal");
    }

    #[test]
    fn get_finds_entries_in_plain_and_sharded_dirs() {
        let version = CidVersion::V0;
        let mut blocks = Blocks::default();
        for n in [10, 6000] {
            let changes: Vec<_> = (0..n).map(|i| (name(i), Some(file(i, version)))).collect();
            let (dir, _) = apply(&mut blocks, None, &changes, version);
            let mut load = blocks.loader();
            let mut editor =
                DirEditor::open(&dir.link.cid, &load(&dir.link.cid).unwrap(), version).unwrap();
            assert_eq!(
                editor.get(&name(7), &mut load).unwrap(),
                Some(file(7, version))
            );
            assert_eq!(editor.get("nope", &mut load).unwrap(), None);
            assert!(editor.set("a/b", None, &mut load).is_err());
        }
    }

    /// Shrinking a crafted HAMT whose slots share one child shard stops at the second link to
    /// it (a valid HAMT never has one) instead of loading the child for every slot.
    #[test]
    fn shrinking_a_hamt_with_a_shared_child_is_malformed() {
        let version = CidVersion::V1;
        let mut blocks = Blocks::default();
        let leaf = file(0, version);
        let child = crate::hamt::shard_node(&[("00x".into(), leaf.cid, 1)], version).unwrap();
        let slot = crate::hamt::hash("a")[0];
        let mut links = vec![(format!("{slot:02X}a"), leaf.cid, 1)];
        for other in (0..=255u8).filter(|s| *s != slot).take(2) {
            links.push((format!("{other:02X}"), child.cid, 1));
        }
        links.sort();
        let root = crate::hamt::shard_node(&links, version).unwrap();
        for b in [&child, &root] {
            blocks.0.insert(b.cid, b.data.clone());
        }
        let mut load = blocks.loader();
        let mut editor = DirEditor::open(&root.cid, &root.data, version).unwrap();
        editor.set("a", None, &mut load).unwrap();
        let mut out = Vec::new();
        assert!(matches!(
            editor.finish(&mut load, &mut out),
            Err(DagError::Malformed { .. })
        ));
    }
}
