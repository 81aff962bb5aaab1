//! HAMT-sharded UnixFS directories as `ipfs add` makes them (fanout 256, murmur3-x64-64 of the
//! entry name). This module owns reading and writing one shard node — its parameters, its link
//! names (two hex digits naming the slot, then the entry's name, or nothing for a sub-shard),
//! its `Data` — the name hash, and the hash-directed lookup of one name, which reads one shard
//! per level (at most [`MAX_DEPTH`]) where a full scan would read every shard of the directory,
//! or, on a crafted DAG whose shards link to shared children, every path through them.
//!
//! Sans-I/O: the caller feeds the block [`ShardLookup::next_cid`] asks for.

use bytes::Bytes;
use cid::Cid;
use ipld_dagpb::{PbLink, PbNode};
use rust_unixfs::dir::{DirLink, NodeDescription};

use crate::meta::{WIRE_VARINT, fields};
use crate::{Block, CidVersion, DAG_PB, DagError, Limit};

/// Slots per shard.
pub const FANOUT: usize = 256;
/// Shard levels a name's 64-bit hash can direct, 8 bits per level: the root shard and seven
/// below it. No name leads to a shard deeper than that.
pub const MAX_DEPTH: usize = 8;
/// Multihash code of murmur3-x64-64, the hash UnixFS HAMTs use.
const HASH_MURMUR3: u64 = 0x22;
/// UnixFS `Data.Type` of a HAMT shard.
const TYPE_HAMT_SHARD: u8 = 5;

/// murmur3-x64-64 of `name` (the first half of murmur3-x64-128), big-endian: byte `d` is the
/// name's slot in the shard at level `d`.
pub fn hash(name: &str) -> [u8; 8] {
    let h =
        murmur3::murmur3_x64_128(&mut std::io::Cursor::new(name.as_bytes()), 0).unwrap_or_default();
    (h as u64).to_be_bytes()
}

/// One link of a shard, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotLink<'a> {
    /// An entry: its slot and its name.
    Entry(u8, &'a str),
    /// A sub-shard in the slot.
    Shard(u8),
}

impl SlotLink<'_> {
    /// The slot.
    pub fn slot(&self) -> u8 {
        match *self {
            SlotLink::Entry(slot, _) | SlotLink::Shard(slot) => slot,
        }
    }
}

/// Reads the name of a link of shard `shard`: two hex digits of slot, then the entry name (none
/// for a sub-shard). Anything else is malformed: a name such as `"0é"`, whose second character
/// is not one byte, is an error, never a panic.
pub fn parse_link<'a>(shard: &Cid, name: &'a str) -> Result<SlotLink<'a>, DagError> {
    let bad = || DagError::malformed(shard, format!("HAMT link name {name:?}"));
    let (Some(prefix), Some(rest)) = (name.get(..2), name.get(2..)) else {
        return Err(bad());
    };
    // `from_str_radix` would take "+1"
    if !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let slot = u8::from_str_radix(prefix, 16).map_err(|_| bad())?;
    Ok(if rest.is_empty() {
        SlotLink::Shard(slot)
    } else {
        SlotLink::Entry(slot, rest)
    })
}

/// Checks that the shard `cid` uses the parameters a hash-directed lookup relies on: murmur3,
/// fanout 256, and no file fields.
fn check_params(cid: &Cid, block: &[u8]) -> Result<(), DagError> {
    let data = rust_unixfs::dagpb::node_data(block)
        .map_err(|e| DagError::malformed(cid, e))?
        .unwrap_or_default();
    let (mut hash_type, mut fanout) = (None, None);
    for f in fields(data).ok_or_else(|| DagError::malformed(cid, "unreadable UnixFS data"))? {
        match (f.number, f.wire) {
            (3 | 4, _) => return Err(DagError::malformed(cid, "HAMT shard with file sizes")),
            (5, WIRE_VARINT) => hash_type = Some(f.varint),
            (6, WIRE_VARINT) => fanout = Some(f.varint),
            _ => {}
        }
    }
    if hash_type != Some(HASH_MURMUR3) || fanout != Some(FANOUT as u64) {
        return Err(DagError::Unsupported(format!(
            "HAMT shard {cid} with hash type {hash_type:?} and fanout {fanout:?} \
             (murmur3 0x22 and 256 are supported)"
        )));
    }
    Ok(())
}

/// The UnixFS `Data` of a shard whose occupied slots are `slots` (fanout 256, murmur3): the
/// bitfield, big-endian with leading zero bytes dropped, as Kubo writes it.
pub fn shard_data(slots: impl IntoIterator<Item = u8>) -> Vec<u8> {
    let mut bitfield = [0u8; FANOUT / 8];
    for slot in slots {
        bitfield[FANOUT / 8 - 1 - slot as usize / 8] |= 1 << (slot % 8);
    }
    let start = bitfield
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(bitfield.len() - 1);
    let bits = &bitfield[start..];
    // Type = HAMTShard, Data = bitfield, hashType = murmur3, fanout = 256
    let mut data = vec![0x08, TYPE_HAMT_SHARD, 0x12, bits.len() as u8];
    data.extend_from_slice(bits);
    data.extend_from_slice(&[0x28, HASH_MURMUR3 as u8, 0x30, 0x80, 0x02]);
    data
}

/// A shard node holding `links` as they are (names with their slot prefix, target, Tsize), its
/// bitfield set from the names. Meant for building test DAGs, crafted ones included: nothing
/// checks that names sit in the slots their hashes give.
pub fn shard_node(links: &[(String, Cid, u64)], version: CidVersion) -> Result<Block, DagError> {
    let placeholder = Cid::default();
    let slots = links
        .iter()
        .map(|(name, ..)| parse_link(&placeholder, name).map(|l| l.slot()))
        .collect::<Result<Vec<_>, _>>()?;
    let node = PbNode {
        links: links
            .iter()
            .map(|(name, cid, size)| PbLink {
                cid: *cid,
                name: Some(name.clone()),
                size: Some(*size),
            })
            .collect(),
        data: Some(Bytes::from(shard_data(slots))),
    };
    Block::new(version, DAG_PB, node.into_bytes())
}

/// What a shard fed to a [`ShardLookup`] said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupStep {
    /// The name's entry.
    Found(Cid),
    /// The name is not in the directory.
    NotFound,
    /// Feed the sub-shard [`ShardLookup::next_cid`] names.
    Next,
}

/// The hash-directed lookup of one name in a HAMT directory: at level `d`, slot `hash[d]` of
/// the shard holds the entry, a sub-shard to read next, or nothing. Each level reads one block,
/// so a lookup reads at most [`MAX_DEPTH`] blocks.
#[derive(Debug, Clone)]
pub struct ShardLookup {
    root: Cid,
    name: String,
    hash: [u8; 8],
    depth: usize,
    next: Cid,
}

impl ShardLookup {
    /// Looks `name` up in the HAMT directory whose root shard is `root`.
    pub fn new(root: Cid, name: &str) -> Self {
        ShardLookup {
            root,
            name: name.to_owned(),
            hash: hash(name),
            depth: 0,
            next: root,
        }
    }

    /// The shard to feed next.
    pub fn next_cid(&self) -> Cid {
        self.next
    }

    /// Feeds the shard [`next_cid`](Self::next_cid) names.
    pub fn feed(&mut self, block: &[u8]) -> Result<LookupStep, DagError> {
        match crate::meta::describe_pb(block) {
            NodeDescription::HamtShard { links } => self.feed_links(block, &links),
            _ => Err(DagError::malformed(
                &self.next,
                "HAMT bucket is not a shard",
            )),
        }
    }

    /// [`feed`](Self::feed) of a block already described as a shard with `links`.
    pub(crate) fn feed_links(
        &mut self,
        block: &[u8],
        links: &[DirLink],
    ) -> Result<LookupStep, DagError> {
        let cid = self.next;
        check_params(&cid, block)?;
        let slot = self.hash[self.depth];
        let mut in_slot = None;
        for link in links {
            // every name is checked, not only the slot's: a malformed shard is an error
            let parsed = parse_link(&cid, &link.name)?;
            if parsed.slot() == slot && in_slot.replace((parsed, link.target)).is_some() {
                return Err(DagError::malformed(
                    &cid,
                    format!("two links in HAMT slot {slot:02X}"),
                ));
            }
        }
        match in_slot {
            None => Ok(LookupStep::NotFound),
            Some((SlotLink::Entry(_, name), target)) if name == self.name => {
                Ok(LookupStep::Found(target))
            }
            Some((SlotLink::Entry(..), _)) => Ok(LookupStep::NotFound),
            Some((SlotLink::Shard(_), _)) if self.depth + 1 >= MAX_DEPTH => {
                Err(DagError::LimitExceeded {
                    root: self.root,
                    limit: Limit::Depth,
                    max: MAX_DEPTH as u64,
                })
            }
            Some((SlotLink::Shard(_), target)) => {
                self.depth += 1;
                self.next = target;
                Ok(LookupStep::Next)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dir::DirectoryBuilder;
    use crate::file::encode_bytes;
    use crate::{RAW, cid_of};
    use std::collections::HashMap;

    fn lookup(blocks: &HashMap<Cid, Bytes>, root: Cid, name: &str) -> (LookupStep, usize) {
        let mut l = ShardLookup::new(root, name);
        let mut reads = 0;
        loop {
            reads += 1;
            assert!(
                reads <= MAX_DEPTH,
                "a lookup read more than {MAX_DEPTH} shards"
            );
            match l.feed(&blocks[&l.next_cid()]).unwrap() {
                LookupStep::Next => {}
                step => return (step, reads),
            }
        }
    }

    /// Every name of the directories `ipfs add -r` shards (the reference importer's CIDs, see
    /// `dir::tests::hamt_trees_match_the_reference_importer`) resolves, reading at most four
    /// shards (the levels these trees have); names that are not there are not found.
    #[test]
    fn every_name_of_reference_hamts_resolves_by_its_hash() {
        for (n, v0) in [
            (3641, "QmdDhgcMmwY8AnSiMeERuDvqSNhBa2aAwFWzTvgbjbDtgd"),
            (6000, "Qmeo8ZBZkxW9v5wUy2RDAdYAUkzTj2LjxYAf36eWR1YwSJ"),
        ] {
            let mut builder = DirectoryBuilder::new(CidVersion::V0);
            let mut files = Vec::new();
            for i in 0..n {
                let (_, file) = encode_bytes(format!("hello {i}\n").as_bytes(), CidVersion::V0);
                let name = format!("file-with-a-fairly-long-name-{i:05}.txt");
                builder
                    .add_link(&format!("big/{name}"), file.link.cid, file.link.dag_size)
                    .unwrap();
                files.push((name, file.link.cid));
            }
            let nodes = builder.build().unwrap();
            let root = nodes.last().unwrap().block.cid;
            assert_eq!(root.to_string(), v0);
            let blocks: HashMap<Cid, Bytes> = nodes
                .iter()
                .map(|n| (n.block.cid, n.block.data.clone()))
                .collect();
            let mut most = 0;
            for (name, cid) in &files {
                let (step, reads) = lookup(&blocks, root, name);
                assert_eq!(step, LookupStep::Found(*cid), "{name}");
                most = most.max(reads);
            }
            assert!(most <= 4, "{most} reads");
            for name in ["nope", "file-with-a-fairly-long-name-99999.txt", "é"] {
                assert_eq!(lookup(&blocks, root, name).0, LookupStep::NotFound);
            }
        }
    }

    #[test]
    fn link_names_parse_or_fail() {
        let cid = Cid::default();
        assert_eq!(parse_link(&cid, "0A").unwrap(), SlotLink::Shard(10));
        assert_eq!(parse_link(&cid, "ffx").unwrap(), SlotLink::Entry(255, "x"));
        for bad in ["", "0", "0é", "é0", "+1x", "G0x", "\u{1F600}"] {
            assert!(
                matches!(parse_link(&cid, bad), Err(DagError::Malformed { .. })),
                "{bad:?}"
            );
        }
    }

    /// A shard whose slot chain is longer than a 64-bit hash can direct ends the lookup with a
    /// depth error.
    #[test]
    fn a_chain_deeper_than_the_hash_is_a_depth_error() {
        let leaf = cid_of(CidVersion::V1, RAW, b"x").unwrap();
        let name = "x";
        let h = hash(name);
        let mut blocks = HashMap::new();
        let mut next = shard_node(&[(format!("{:02X}{name}", h[7]), leaf, 1)], CidVersion::V1)
            .unwrap()
            .cid;
        let mut chain = Vec::new();
        for depth in (0..MAX_DEPTH + 1).rev() {
            let block = shard_node(
                &[(format!("{:02X}", h[depth.min(7)]), next, 1)],
                CidVersion::V1,
            )
            .unwrap();
            next = block.cid;
            chain.push(block);
        }
        for b in chain {
            blocks.insert(b.cid, b.data);
        }
        let mut l = ShardLookup::new(next, name);
        let mut result = Ok(LookupStep::Next);
        for _ in 0..=MAX_DEPTH {
            result = l.feed(&blocks[&l.next_cid()]);
            if !matches!(result, Ok(LookupStep::Next)) {
                break;
            }
        }
        assert!(matches!(
            result,
            Err(DagError::LimitExceeded {
                limit: Limit::Depth,
                ..
            })
        ));
    }
}
