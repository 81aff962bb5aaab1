//! Sans-I/O reading of a UnixFS file: the caller fetches the block [`FileRead::next_cid`] asks
//! for and [`FileRead::feed`]s it; the reader returns the file bytes that block holds within the
//! wanted range. Only blocks overlapping the range are ever asked for.
//!
//! A crafted file can link one block many times over with a size of 0 (174 links to a node of
//! 174 links to …: 174⁴ visits of 4 blocks, no bytes). Repeats are legitimate when they carry
//! bytes (a file of zeros repeats one leaf), so the read is bounded by what it yields: blocks
//! that contribute no bytes may number [`MAX_EMPTY_BLOCKS`] plus one per 16 bytes read, far
//! above any honest layout (one branch per 174 leaves), and past that the read fails with
//! [`Limit::EmptyBlocks`].

use std::ops::Range;

use cid::Cid;
use rust_unixfs::file::visit::{Cache, FileVisit, IdleFileVisit};

use crate::{DagError, Limit, RAW};

/// Blocks without file bytes a read may visit before any byte (a path down a deep tree, the
/// neighbours a range touches), beyond one per 16 bytes read.
pub const MAX_EMPTY_BLOCKS: u64 = 4096;

enum State {
    Start(Option<Range<u64>>),
    Walking(FileVisit),
    Done,
}

/// An in-progress read of (a range of) one file.
pub struct FileRead {
    root: Cid,
    state: State,
    cache: Option<Cache>,
    /// Bytes yielded so far.
    yielded: u64,
    /// Blocks fed that yielded nothing.
    empty: u64,
}

impl std::fmt::Debug for FileRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileRead")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl FileRead {
    /// Reads `range` (clamped to the file) of the file rooted at `root`, or all of it.
    pub fn new(root: Cid, range: Option<Range<u64>>) -> Self {
        FileRead {
            root,
            state: State::Start(range),
            cache: None,
            yielded: 0,
            empty: 0,
        }
    }

    /// The block to feed next, or `None` when the read is complete.
    pub fn next_cid(&self) -> Option<Cid> {
        match &self.state {
            State::Start(_) => Some(self.root),
            State::Walking(visit) => Some(*visit.pending_links().0),
            State::Done => None,
        }
    }

    /// Feeds the block named by [`next_cid`](Self::next_cid) (already verified by the caller);
    /// returns the file bytes it contributes, possibly none.
    pub fn feed<'a>(&mut self, block: &'a [u8]) -> Result<&'a [u8], DagError> {
        let bytes = self.step(block)?;
        if bytes.is_empty() {
            self.empty += 1;
            let max = MAX_EMPTY_BLOCKS.saturating_add(self.yielded / 16);
            if self.empty > max {
                self.state = State::Done;
                return Err(DagError::LimitExceeded {
                    root: self.root,
                    limit: Limit::EmptyBlocks,
                    max,
                });
            }
        }
        self.yielded += bytes.len() as u64;
        Ok(bytes)
    }

    fn step<'a>(&mut self, block: &'a [u8]) -> Result<&'a [u8], DagError> {
        let cid = self
            .next_cid()
            .ok_or_else(|| DagError::Unsupported("read already complete".into()))?;
        if cid.codec() != RAW {
            crate::meta::check_pb(&cid, block)?;
        }
        match std::mem::replace(&mut self.state, State::Done) {
            State::Start(range) => {
                let mut idle = IdleFileVisit::default();
                if let Some(r) = range {
                    idle = idle.with_target_range(r);
                }
                let (bytes, _size, _meta, next) = if cid.codec() == RAW {
                    idle.start_from_raw(block)
                } else {
                    idle.start(block).map_err(|e| match e {
                        rust_unixfs::file::FileReadFailed::UnexpectedType(_) => {
                            DagError::NotAFile(cid)
                        }
                        other => DagError::malformed(&cid, other),
                    })?
                };
                if let Some(v) = next {
                    self.state = State::Walking(v);
                }
                Ok(bytes)
            }
            State::Walking(visit) => {
                let (bytes, next) = visit
                    .continue_walk(block, &mut self.cache)
                    .map_err(|e| DagError::malformed(&cid, e))?;
                if let Some(v) = next {
                    self.state = State::Walking(v);
                }
                Ok(bytes)
            }
            State::Done => unreachable!("next_cid returned Some"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::encode_bytes;
    use crate::{Block, CidVersion};
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn read_all(blocks: &[Block], root: Cid, range: Option<Range<u64>>) -> (Vec<u8>, usize) {
        let map: HashMap<Cid, &Block> = blocks.iter().map(|b| (b.cid, b)).collect();
        let mut read = FileRead::new(root, range);
        let mut out = Vec::new();
        let mut fetched = 0;
        while let Some(cid) = read.next_cid() {
            fetched += 1;
            out.extend_from_slice(read.feed(&map[&cid].data).unwrap());
        }
        (out, fetched)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]
        #[test]
        fn ranges_equal_slices(len in 0usize..1_500_000, a in any::<u64>(), b in any::<u64>(), v1 in any::<bool>()) {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 + i / 251) as u8).collect();
            let version = if v1 { CidVersion::V1 } else { CidVersion::V0 };
            let (blocks, root) = encode_bytes(&data, version);
            let (all, _) = read_all(&blocks, root.link.cid, None);
            prop_assert_eq!(&all, &data);
            let start = if len == 0 { 0 } else { a % len as u64 };
            let end = start + b % (len as u64 - start + 1);
            let (part, _) = read_all(&blocks, root.link.cid, Some(start..end));
            prop_assert_eq!(&part[..], &data[start as usize..end as usize]);
        }
    }

    #[test]
    fn a_range_touches_only_its_blocks() {
        let data = vec![7u8; 10 * crate::CHUNK_SIZE];
        let data: Vec<u8> = data
            .iter()
            .enumerate()
            .map(|(i, _)| (i % 253) as u8)
            .collect();
        let (blocks, root) = encode_bytes(&data, CidVersion::V1);
        let start = 3 * crate::CHUNK_SIZE as u64 + 5;
        let (part, fetched) = read_all(&blocks, root.link.cid, Some(start..start + 10));
        assert_eq!(&part[..], &data[start as usize..start as usize + 10]);
        assert_eq!(fetched, 2, "root + one leaf");
    }

    /// A file of four blocks whose zero-size links fan out 174 ways at each of four levels
    /// (174⁴ ≈ 9·10⁸ visits, no bytes) ends in a limit error after a few thousand blocks;
    /// honest files far larger than the budget, and a file of one repeated leaf, still read.
    #[test]
    fn shared_empty_children_are_bounded() {
        use rust_unixfs::file::adder::{FileBranchLink, rebuild_file_branch};
        let (leaf, link) = crate::file::encode_leaf(b"", CidVersion::V1);
        let mut blocks = vec![leaf];
        let mut child = link.cid;
        for _ in 0..4 {
            let links = vec![
                FileBranchLink {
                    cid: child,
                    blocksize: 0,
                    tsize: 0,
                };
                174
            ];
            let (cid, data) = rebuild_file_branch(
                0,
                &links,
                cid::Version::V1,
                multihash_codetable::Code::Sha2_256,
            );
            blocks.push(Block {
                cid,
                data: data.into(),
            });
            child = cid;
        }
        let map: HashMap<Cid, &Block> = blocks.iter().map(|b| (b.cid, b)).collect();
        let mut read = FileRead::new(child, None);
        let mut fed = 0u64;
        let err = loop {
            let cid = read.next_cid().expect("the read ends in an error first");
            fed += 1;
            if let Err(e) = read.feed(&map[&cid].data) {
                break e;
            }
        };
        assert!(
            matches!(
                err,
                DagError::LimitExceeded {
                    limit: Limit::EmptyBlocks,
                    ..
                }
            ),
            "{err}"
        );
        assert!(fed <= MAX_EMPTY_BLOCKS + 1, "{fed}");
        assert_eq!(read.next_cid(), None);

        // one leaf repeated: every visit yields bytes, nothing is refused
        let zeros = vec![0u8; 40 * crate::CHUNK_SIZE];
        let (blocks, root) = encode_bytes(&zeros, CidVersion::V1);
        assert_eq!(read_all(&blocks, root.link.cid, None).0, zeros);
    }
}
