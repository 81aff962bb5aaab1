//! Helpers shared by Cairn's fuzz targets (`fuzz_targets/`): turning fuzz input into a small
//! set of content-addressed blocks, and the seed inputs each target starts from.
//!
//! Every target calls the decoding or walking function the node itself runs on untrusted
//! bytes; nothing here re-implements one.

use std::collections::HashMap;

use bytes::Bytes;
use cairn_dag::{Cid, CidVersion, DAG_CBOR, DAG_PB, RAW, cid_of};

pub mod seeds;

/// A little reader over fuzz input: each call takes what it needs and never fails (past the
/// end it gives zeros and empty slices).
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// Reads `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    /// One byte (0 past the end).
    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// A little-endian `u16`.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    /// Up to `n` bytes.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    /// A byte string prefixed by its length (one byte).
    pub fn short(&mut self) -> &'a [u8] {
        let n = self.byte() as usize;
        self.take(n)
    }

    /// What is left.
    pub fn rest(&mut self) -> &'a [u8] {
        self.take(self.data.len())
    }

    /// Whether nothing is left.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// How a block of a [`BlockSet`] is named, from the low two bits of its header byte.
pub fn kind(header: u8) -> (CidVersion, u64) {
    match header & 3 {
        0 => (CidVersion::V0, DAG_PB),
        1 => (CidVersion::V1, DAG_PB),
        2 => (CidVersion::V1, RAW),
        _ => (CidVersion::V1, DAG_CBOR),
    }
}

/// The header byte of a block named as `kind` gives, its links rewritten or not.
pub fn header(version: CidVersion, codec: u64, rewrite: bool) -> u8 {
    let k = match (version, codec) {
        (CidVersion::V0, _) => 0,
        (_, DAG_PB) => 1,
        (_, RAW) => 2,
        _ => 3,
    };
    k | if rewrite { 4 } else { 0 }
}

/// A set of blocks, each stored under its own (sha2-256) CID, as a block store would hold them.
#[derive(Debug, Default)]
pub struct BlockSet {
    /// The blocks by CID.
    pub blocks: HashMap<Cid, Bytes>,
    /// Their CIDs in the order they were given (the last one is the walks' root).
    pub order: Vec<Cid>,
}

impl BlockSet {
    /// Reads blocks until the input ends: each is a header byte ([`kind`] in the low two bits;
    /// bit 2: rewrite its links), a `u16` length and the bytes.
    ///
    /// Fuzzed bytes cannot carry the sha2-256 of other fuzzed bytes, so a dag-pb block whose
    /// header asks for it has its links rewritten: a link whose CID's last byte is below 0x80
    /// is pointed at an earlier block of the set (that byte, modulo their number), the others
    /// are kept. The block is then encoded again and stored under its new CID. This gives
    /// real DAGs of any shape a hash allows: shared children, long chains, HAMT shards linking
    /// each other, but no cycles (neither can a store's).
    pub fn read(input: &mut Input<'_>, max_blocks: usize) -> Self {
        let mut set = BlockSet::default();
        while !input.is_empty() && set.order.len() < max_blocks {
            let h = input.byte();
            let len = input.u16() as usize;
            let mut data = Bytes::copy_from_slice(input.take(len));
            let (version, codec) = kind(h);
            if h & 4 != 0
                && codec == DAG_PB
                && !set.order.is_empty()
                && let Ok(mut node) = ipld_dagpb::PbNode::from_bytes(data.clone())
            {
                for link in &mut node.links {
                    let b = link.cid.hash().digest().last().copied().unwrap_or(0);
                    if b < 0x80 {
                        link.cid = set.order[b as usize % set.order.len()];
                    }
                }
                data = Bytes::from(node.into_bytes());
            }
            let Ok(cid) = cid_of(version, codec, &data) else {
                continue;
            };
            set.blocks.insert(cid, data);
            set.order.push(cid);
        }
        set
    }

    /// The root: the last block given.
    pub fn root(&self) -> Option<Cid> {
        self.order.last().copied()
    }

    /// A block, or `None` when the set does not hold it.
    pub fn get(&self, cid: &Cid) -> Option<&Bytes> {
        self.blocks.get(cid)
    }

    /// The encoding [`BlockSet::read`] reads: `(header, bytes)` in order. Links are given as
    /// they should end up (already the CIDs of earlier blocks), so `header` need not ask for
    /// a rewrite.
    pub fn encode(blocks: &[(u8, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (h, data) in blocks {
            out.push(*h);
            out.extend_from_slice(&(data.len() as u16).to_le_bytes());
            out.extend_from_slice(data);
        }
        out
    }
}

/// Writes the seeds of `target` into the folder `CAIRN_FUZZ_SEEDS` names, if it is set, and
/// exits: run a target binary once with it to (re)make `fuzz/seeds/<target>/`.
pub fn write_seeds_if_asked(target: &str) {
    let Some(dir) = std::env::var_os("CAIRN_FUZZ_SEEDS") else {
        return;
    };
    let dir = std::path::Path::new(&dir);
    std::fs::create_dir_all(dir).expect("create the seeds folder");
    for (name, bytes) in seeds::seeds(target) {
        std::fs::write(dir.join(name), bytes).expect("write a seed");
    }
    std::process::exit(0);
}
